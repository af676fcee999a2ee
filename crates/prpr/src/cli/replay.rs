//! `prpr replay`.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::{Notify, mpsc, watch};

use prpr::app;
use prpr::clock::Clock;
use prpr::config::{Config, env_help};
use prpr::github::Event;
use prpr::outbox::Sender;
use prpr::outbox::sender::{Outcome, now_ms};
use prpr::pipeline;
use prpr::slack::Publisher;
use prpr::store::Recorded;
use prpr::telemetry;

use super::{ConfigArg, load_config};

/// How long replay waits for its messages (retries included) before leaving
/// them to a server.
const WAIT: Duration = Duration::from_secs(120);

/// Run one payload through the rules and the publisher (the Ruby prpr's
/// `bin/prpr`).
///
/// The payload is recorded as a delivery (the same delivery ID twice is sent
/// once), its notifications queued in the store and sent — to Slack with
/// SLACK_BOT_TOKEN, else printed on stdout. Waits up to 120 s for them,
/// retries included. Exit 1 if one is dead-lettered, 2 if the payload cannot
/// be read or parsed.
#[derive(Args)]
#[command(after_help = env_help())]
pub(crate) struct Replay {
    #[command(flatten)]
    config: ConfigArg,
    /// The X-GitHub-Event name, e.g. pull_request.
    #[arg(long)]
    event: String,
    /// Delivery ID to record it under (default: a fresh replay-… ID).
    #[arg(long)]
    delivery_id: Option<String>,
    /// The JSON payload file, or - for stdin.
    file: PathBuf,
}

impl Replay {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let Some(cfg) = load_config(&self.config, false) else {
            return Ok(ExitCode::FAILURE);
        };
        telemetry::init(cfg.log.format);
        let body = match read_payload(&self.file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("prpr: cannot read {}: {e}", self.file.display());
                return Ok(ExitCode::from(2));
            }
        };
        let event = match Event::parse(&self.event, &body) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("prpr: {}: {e}", self.file.display());
                return Ok(ExitCode::from(2));
            }
        };
        replay(cfg, &self.event, self.delivery_id, &event).await
    }
}

pub(crate) fn read_payload(file: &Path) -> std::io::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body)?;
        Ok(body)
    } else {
        std::fs::read(file)
    }
}

async fn replay(
    mut cfg: Config,
    event_name: &str,
    delivery_id: Option<String>,
    event: &Event,
) -> anyhow::Result<ExitCode> {
    let store = Arc::new(app::connect_store(&cfg.database.url).await?);
    let publisher = app::publisher(&cfg)?;
    if let Publisher::Slack(client) = &publisher {
        app::resolve_member_handles(&mut cfg, client).await;
    }
    let clock = Clock::system();
    let id = delivery_id.unwrap_or_else(|| format!("replay-{}", now_ms()));
    let queued = match pipeline::ingest(&store, &cfg.notify, &id, event_name, event, clock.now_ms())
        .await?
    {
        Recorded::Duplicate => {
            eprintln!("prpr: delivery {id} was already processed; nothing sent");
            return Ok(ExitCode::SUCCESS);
        }
        Recorded::Stored { queued, decision } => {
            for reason in &decision.skipped {
                eprintln!("skipped: {reason}");
            }
            queued
        }
    };
    if queued.is_empty() {
        eprintln!("no notification for this payload");
        return Ok(ExitCode::SUCCESS);
    }

    // The server's own sender sends them (order, rate limits, retries), told
    // to report outcomes and to leave a running server's leases alone.
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let sender = Sender::new(
        store.clone(),
        Arc::new(publisher),
        app::sender_options(&cfg),
        Arc::new(Notify::new()),
        clock.clone(),
    )
    .with_outcomes(outcomes_tx)
    .beside_others();
    let sender_task = tokio::spawn(sender.run(stop_rx));

    let mut waiting: HashSet<i64> = queued.iter().copied().collect();
    let mut failed = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !waiting.is_empty() {
        match tokio::time::timeout_at(deadline, outcomes.recv()).await {
            Ok(Some((id, outcome))) => match outcome {
                Outcome::Sent => {
                    waiting.remove(&id);
                }
                Outcome::Dead => {
                    failed |= waiting.remove(&id);
                }
                // Retried by the sender (a 429, a 5xx, or a lease that expires).
                Outcome::Retrying | Outcome::Unrecorded => {}
            },
            Ok(None) => break,
            Err(_) => {
                eprintln!(
                    "prpr: {} message(s) still queued after {} s; `prpr outbox list` shows them, `prpr serve` sends them",
                    waiting.len(),
                    WAIT.as_secs()
                );
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Err(e) = sender_task.await {
        tracing::error!(error = %e, "the sender task failed");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
