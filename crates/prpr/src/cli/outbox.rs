//! `prpr outbox list` and `prpr outbox retry`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use prpr::app;
use prpr::config::env_help;
use prpr::outbox::sender::now_ms;
use prpr::store::OutboxStatus;

use super::{ConfigArg, load_config};

/// Inspect and requeue notifications.
///
/// Reads the store of DATABASE_URL (or the config file's [database] url): the
/// same store `prpr serve` sends from.
#[derive(Args)]
pub(crate) struct Outbox {
    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Pending and dead-lettered messages, with reasons.
    #[command(after_help = env_help())]
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Include sent messages.
        #[arg(long)]
        all: bool,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Requeue a message by ID, or every dead-lettered one; a running
    /// `prpr serve` sends them.
    #[command(after_help = env_help())]
    Retry {
        #[command(flatten)]
        config: ConfigArg,
        /// The outbox ID (see `prpr outbox list`).
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<i64>,
        #[arg(long)]
        all_dead: bool,
    },
}

impl Outbox {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let (OutboxCommand::List { config, .. } | OutboxCommand::Retry { config, .. }) =
            &self.command;
        let Some(cfg) = load_config(config, true) else {
            return Ok(ExitCode::FAILURE);
        };
        let store = app::connect_store(&cfg.database.url).await?;
        match self.command {
            OutboxCommand::List {
                all, json, limit, ..
            } => {
                let rows = store.list(all, limit).await?;
                if json {
                    for r in &rows {
                        let mut row = serde_json::to_value(r)?;
                        row["text"] = serde_json::Value::String(text_of(r));
                        println!("{row}");
                    }
                } else if rows.is_empty() {
                    println!("outbox is empty (nothing pending or dead-lettered)");
                } else {
                    println!(
                        "{:>6}  {:<8}  {:>3}  {:<12}  {:<16}  reason / text",
                        "id", "status", "try", "channel", "kind"
                    );
                    for r in &rows {
                        let status = match r.status {
                            OutboxStatus::Pending => "pending",
                            OutboxStatus::Sent => "sent",
                            OutboxStatus::Dead => "dead",
                        };
                        let text = text_of(r);
                        let first_line = text.lines().next().unwrap_or("");
                        let detail = r.last_error.as_deref().map_or_else(
                            || first_line.to_string(),
                            |e| format!("{e} — {first_line}"),
                        );
                        println!(
                            "{:>6}  {:<8}  {:>3}  {:<12}  {:<16}  {}",
                            r.id, status, r.attempts, r.channel, r.kind, detail
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            OutboxCommand::Retry { id: Some(id), .. } => {
                if store.retry(id, now_ms()).await? {
                    println!("message {id} requeued");
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("prpr: no pending or dead-lettered message with id {id}");
                    Ok(ExitCode::FAILURE)
                }
            }
            OutboxCommand::Retry { id: None, .. } => {
                let n = store.retry_all_dead(now_ms()).await?;
                println!("{n} dead-lettered message(s) requeued");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// The message text a row will send (or sent), rendered from its notice; the
/// raw payload when it cannot be read, so the operator still sees something.
fn text_of(row: &prpr::store::OutboxRow) -> String {
    prpr::slack::render::Stored::parse(&row.payload)
        .map(|s| s.render().text)
        .unwrap_or_else(|_| row.payload.clone())
}
