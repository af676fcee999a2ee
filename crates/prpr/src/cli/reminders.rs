//! `prpr reminders preview NAME` and `prpr reminders send NAME`.
//!
//! Both build the digest with the scheduler's own code
//! ([`prpr::reminders::build_schedule`]) from the store's open-PR cards at
//! this moment. `preview` prints it and sends nothing; `send` queues it in
//! the outbox and sends it as `prpr replay` does (order, rate limits,
//! retries), outside any schedule slot, so the scheduled sends still happen.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use tokio::sync::{Notify, mpsc, watch};

use prpr::app;
use prpr::clock::Clock;
use prpr::config::env_help;
use prpr::outbox::Sender;
use prpr::outbox::sender::Outcome;
use prpr::slack::Publisher;
use prpr::slack::render;

use super::{ConfigArg, load_config};

/// How long `send` waits for Slack before leaving the rest to `prpr serve`.
const WAIT: Duration = Duration::from_secs(60);

/// Channel digests from `[[reminders.schedules]]`, on demand.
#[derive(Args)]
pub(crate) struct RemindersCmd {
    #[command(subcommand)]
    command: RemindersCommand,
}

#[derive(Subcommand)]
enum RemindersCommand {
    /// Print the digest the schedule would send now (nothing is sent).
    #[command(after_help = env_help())]
    Preview {
        #[command(flatten)]
        config: ConfigArg,
        /// The schedule's `name`.
        name: String,
        /// Print the Block Kit JSON of each message instead of its text.
        #[arg(long)]
        json: bool,
    },
    /// Send the schedule's digest now.
    #[command(after_help = env_help())]
    Send {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
}

impl RemindersCmd {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let (RemindersCommand::Preview { config, name, .. }
        | RemindersCommand::Send { config, name }) = &self.command;
        let Some(mut cfg) = load_config(config, true) else {
            return Ok(ExitCode::FAILURE);
        };
        let Some(schedule) = cfg.reminders.schedule(name).cloned() else {
            let names: Vec<&str> = cfg
                .reminders
                .schedules
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            eprintln!(
                "prpr: no schedule named {name:?}; configured: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
            return Ok(ExitCode::from(2));
        };
        let store = Arc::new(app::connect_store(&cfg.database.url).await?);
        let clock = Clock::system();
        let publisher = app::publisher(&cfg)?;
        if matches!(self.command, RemindersCommand::Send { .. })
            && let Publisher::Slack(client) = &publisher
        {
            app::resolve_member_handles(&mut cfg, client).await;
        }
        let now = clock.now_ms();
        let notes = prpr::reminders::build_schedule(&store, &cfg, &schedule, now).await?;
        match self.command {
            RemindersCommand::Preview { json, .. } => {
                if notes.is_empty() {
                    println!(
                        "(nothing to send: no open pull request passes the schedule's filters)"
                    );
                }
                for n in &notes {
                    let m = render::render(&n.address, &n.notice);
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"channel": n.channel, "text": m.text, "blocks": m.blocks})
                        );
                    } else {
                        println!("# to {}\n{}\n", n.channel, m.text);
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            RemindersCommand::Send { .. } => {
                if notes.is_empty() {
                    eprintln!(
                        "nothing to send: no open pull request passes the schedule's filters"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                let id = format!("reminders-send:{}:{now}", schedule.name);
                let queued = store.enqueue(&id, &notes, now).await?;
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
                let task = tokio::spawn(sender.run(stop_rx));
                let mut waiting: HashSet<i64> = queued.into_iter().collect();
                let mut failed = false;
                let deadline = tokio::time::Instant::now() + WAIT;
                while !waiting.is_empty() {
                    match tokio::time::timeout_at(deadline, outcomes.recv()).await {
                        Ok(Some((id, Outcome::Sent))) => {
                            waiting.remove(&id);
                        }
                        Ok(Some((id, Outcome::Dead))) => failed |= waiting.remove(&id),
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => {
                            eprintln!(
                                "prpr: {} message(s) still queued after {} s; `prpr serve` sends them",
                                waiting.len(),
                                WAIT.as_secs()
                            );
                            break;
                        }
                    }
                }
                let _ = stop_tx.send(true);
                let _ = task.await;
                Ok(if failed {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                })
            }
        }
    }
}
