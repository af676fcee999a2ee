//! `prpr reminders preview NAME`, `prpr reminders send NAME` and `prpr
//! reminders resync`.
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
use prpr::github::backfill::{self, Backfill, Found};
use prpr::notice::{PrStatus, ReviewState};
use prpr::outbox::Sender;
use prpr::outbox::sender::Outcome;
use prpr::slack::Publisher;
use prpr::slack::render;

use super::{ConfigArg, load_config, rate_summary};

/// How long `send` waits for Slack before leaving the rest to `prpr serve`.
const WAIT: Duration = Duration::from_secs(60);

/// Channel digests from `[[reminders.schedules]]`, on demand, and the
/// open-PR picture's backfill from GitHub.
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
    /// Backfill the open-PR picture from GitHub's REST API now.
    ///
    /// Runs one backfill pass, as `prpr serve` does at start and every
    /// [reminders] resync: for each repository of [github] repos (globs
    /// such as acme/* expand against the organization's repositories) and
    /// [github] orgs, lists the open pull requests with their requested
    /// reviewers and teams and their reviews, and writes each PR's card into
    /// the store; PRs prpr holds as open that GitHub shows merged or closed
    /// leave the picture. A card an event wrote after GitHub's snapshot is
    /// kept. Nothing is sent to Slack. Prints each PR found and a summary.
    ///
    /// Needs GITHUB_TOKEN (Pull requests: read, Metadata: read) or
    /// GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY, and the store of
    /// DATABASE_URL. Stops early when GitHub's remaining rate limit falls
    /// to [github] catch_up_rate_floor.
    #[command(after_help = env_help())]
    Resync {
        #[command(flatten)]
        config: ConfigArg,
    },
}

impl RemindersCmd {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let (config, name) = match &self.command {
            RemindersCommand::Resync { config } => return resync(config).await,
            RemindersCommand::Preview { config, name, .. }
            | RemindersCommand::Send { config, name } => (config, name),
        };
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
            RemindersCommand::Resync { .. } => Ok(ExitCode::SUCCESS),
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

/// `prpr reminders resync`: one backfill pass, and what it found.
async fn resync(config: &ConfigArg) -> anyhow::Result<ExitCode> {
    let Some(cfg) = load_config(config, true) else {
        return Ok(ExitCode::FAILURE);
    };
    let store = Arc::new(app::connect_store(&cfg.database.url).await?);
    let job = match Backfill::from_config(&cfg, store, Clock::system(), true) {
        Ok(j) => j,
        Err(why) => {
            eprintln!("prpr: the backfill is off: {why}");
            return Ok(ExitCode::from(2));
        }
    };
    let report = match job.pass(true).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("prpr: the backfill failed: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if report.leased_elsewhere {
        eprintln!("prpr: a running prpr is backfilling right now; try again in a minute");
        return Ok(ExitCode::FAILURE);
    }
    for f in &report.found {
        println!("{}", found_line(f));
    }
    for (repo, why) in &report.failed {
        eprintln!("prpr: {repo}: not read: {why}");
    }
    println!(
        "repos {}, prs {}, updated {}, closed {}, {}",
        report.repos,
        report.prs,
        report.updated,
        report.closed,
        rate_summary(report.rate_remaining, report.stopped_early.as_deref())
    );
    Ok(
        if report.stopped_early.is_some() || !report.failed.is_empty() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// `acme/api#12  open  updated  "Title"  by carol  waiting: alice, acme/backend  approved: bob`
fn found_line(f: &Found) -> String {
    let c = &f.card;
    let status = match c.status {
        PrStatus::Open => "open",
        PrStatus::Draft => "draft",
        PrStatus::Merged => "merged",
        PrStatus::Closed => "closed",
    };
    let outcome = match f.outcome {
        backfill::Outcome::Updated => "updated",
        backfill::Outcome::Unchanged => "unchanged",
        backfill::Outcome::KeptNewer => "kept (an event is newer)",
    };
    let with = |state: ReviewState| {
        c.reviewers
            .iter()
            .filter(|r| r.state == state)
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = format!(
        "{}#{}  {status}  {outcome}  {:?}  by {}",
        c.pr.repo, c.pr.number, c.pr.title, c.pr.author
    );
    for (label, state) in [
        ("waiting", ReviewState::Pending),
        ("approved", ReviewState::Approved),
        ("changes requested", ReviewState::ChangesRequested),
        ("commented", ReviewState::Commented),
    ] {
        let who = with(state);
        if !who.is_empty() {
            line.push_str(&format!("  {label}: {who}"));
        }
    }
    line
}
