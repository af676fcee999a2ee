//! The `prpr` command line: `serve`, `replay`, `outbox`, `config`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::sync::Mutex;

use prpr::app::{self, ServeOptions};
use prpr::config::{self, Config, ProcessEnv};
use prpr::github::Event;
use prpr::outbox::ratelimit::ChannelLimiter;
use prpr::outbox::sender::{Outcome, deliver, now_ms};
use prpr::pipeline;
use prpr::store::{OutboxStatus, Recorded};
use prpr::telemetry;

#[derive(Parser)]
#[command(
    name = "prpr",
    version,
    about = "GitHub pull-request notifications on Slack: review requests, reviews and mentions."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// TOML config file (env: PRPR_CONFIG). Environment variables override it.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the webhook server and the Slack sender.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Port to listen on (overrides PORT and the config file).
        #[arg(long)]
        port: Option<u16>,
        /// Accept deliveries without a signature when no secret is configured. Local testing only.
        #[arg(long)]
        insecure_accept_unsigned: bool,
    },
    /// Run one payload through the rules and the publisher (the Ruby prpr's `bin/prpr`).
    Replay {
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
    },
    /// Create or update the repository webhook that sends prpr its events
    /// (the Ruby prpr's `bin/webhook`). Needs GITHUB_TOKEN and the webhook secret.
    Webhook {
        #[command(flatten)]
        config: ConfigArg,
        /// The repository, OWNER/REPO.
        repo: String,
        /// prpr's public URL, e.g. https://prpr.example.com/webhook.
        url: String,
    },
    /// Inspect and requeue notifications.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Check or print the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Pending and dead-lettered messages, with reasons.
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
    /// Requeue a message by ID, or every dead-lettered one.
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

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print every problem with its file and line; exit 1 if there are any.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a commented sample covering every key.
    Example,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("prpr: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("prpr: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config; prints problems to stderr. `None` when there are errors.
fn load_config(arg: &ConfigArg, quiet_warnings: bool) -> Option<Config> {
    let loaded = config::load(arg.config.as_deref(), &ProcessEnv);
    for p in &loaded.problems {
        if p.is_error || !quiet_warnings {
            eprintln!("{p}");
        }
    }
    if loaded.has_errors() {
        eprintln!(
            "prpr: the configuration has errors (see above); `prpr config check` lists them all"
        );
        return None;
    }
    Some(loaded.config)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            port,
            insecure_accept_unsigned,
        } => {
            let loaded = config::load(config.config.as_deref(), &ProcessEnv);
            telemetry::init(loaded.config.log_format);
            for p in &loaded.problems {
                if p.is_error {
                    tracing::error!(source = %p.source, line = p.line, "{}", p.message);
                } else {
                    tracing::warn!(source = %p.source, line = p.line, "{}", p.message);
                }
            }
            if loaded.has_errors() {
                eprintln!(
                    "prpr: the configuration has errors; run `prpr config check` to list them"
                );
                return Ok(ExitCode::FAILURE);
            }
            let mut cfg = loaded.config;
            if let Some(p) = port {
                cfg.port = p;
            }
            app::serve(
                cfg,
                ServeOptions {
                    insecure_accept_unsigned,
                },
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            config,
            event,
            delivery_id,
            file,
        } => {
            let Some(cfg) = load_config(&config, false) else {
                return Ok(ExitCode::FAILURE);
            };
            telemetry::init(cfg.log_format);
            replay(cfg, &event, delivery_id, &file).await
        }
        Command::Outbox { command } => outbox(command).await,
        Command::Webhook { config, repo, url } => {
            let Some(cfg) = load_config(&config, true) else {
                return Ok(ExitCode::FAILURE);
            };
            let (Some(token), Some(secret)) = (&cfg.github.token, &cfg.github.webhook_secret)
            else {
                eprintln!(
                    "prpr: `prpr webhook` needs GITHUB_TOKEN (to call the GitHub API) and GITHUB_WEBHOOK_SECRET (to sign deliveries)"
                );
                return Ok(ExitCode::from(2));
            };
            let api = prpr::webhook_setup::GitHubApi::new(&cfg.github.api_url, token.clone())?;
            match api.install(&repo, &url, secret).await {
                Ok(prpr::webhook_setup::Installed::Created { id }) => {
                    println!("created webhook {id} on {repo} → {url}")
                }
                Ok(prpr::webhook_setup::Installed::Updated { id }) => {
                    println!("updated webhook {id} on {repo} → {url}")
                }
                Err(e) => {
                    eprintln!("prpr: {e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
            println!(
                "events: {}; content type json; signed with the configured secret",
                prpr::webhook_setup::EVENTS.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            print!("{}", config::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check { config },
        } => {
            let loaded = config::load(config.config.as_deref(), &ProcessEnv);
            for p in &loaded.problems {
                println!("{p}");
            }
            let c = &loaded.config;
            if loaded.problems.is_empty() {
                println!(
                    "ok: {} member(s), delivery {:?}, store {}, publisher {}",
                    c.notify.members.len(),
                    c.notify.delivery,
                    c.database_url.split(':').next().unwrap_or("?"),
                    if c.slack.bot_token.is_some() {
                        "slack"
                    } else {
                        "console"
                    }
                );
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

async fn replay(
    cfg: Config,
    event_name: &str,
    delivery_id: Option<String>,
    file: &PathBuf,
) -> anyhow::Result<ExitCode> {
    let mut body = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut body).map(|_| ())
    } else {
        std::fs::read(file).map(|b| body = b)
    };
    if let Err(e) = read {
        eprintln!("prpr: cannot read {}: {e}", file.display());
        return Ok(ExitCode::from(2));
    }
    let event = match Event::parse(event_name, &body) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("prpr: {}: {e}", file.display());
            return Ok(ExitCode::from(2));
        }
    };
    let mut cfg = cfg;
    let store = app::connect_store(&cfg.database_url).await?;
    let publisher = app::publisher(&cfg)?;
    if let prpr::slack::Publisher::Slack(client) = &publisher {
        app::resolve_member_handles(&mut cfg, client).await;
    }
    let id = delivery_id.unwrap_or_else(|| format!("replay-{}", now_ms()));
    let queued =
        match pipeline::ingest(&store, &cfg.notify, &id, event_name, &event, now_ms()).await? {
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
    // Send this delivery's messages now, in order, honouring rate limits.
    let opts = app::sender_options(&cfg);
    let limiter = Mutex::new(ChannelLimiter::new(opts.per_channel_per_sec, opts.burst));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut failed = false;
    let store = Arc::new(store);
    loop {
        let mine: Vec<_> = store
            .due(now_ms(), 1000)
            .await?
            .into_iter()
            .filter(|i| queued.contains(&i.id))
            .collect();
        let still_pending = store
            .list(false, 100_000)
            .await?
            .into_iter()
            .any(|r| queued.contains(&r.id) && r.status == OutboxStatus::Pending);
        if !still_pending || tokio::time::Instant::now() > deadline {
            break;
        }
        if mine.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for item in mine {
            if store.claim(item.id, now_ms(), now_ms() + 60_000).await?
                && deliver(
                    &store,
                    &publisher,
                    &limiter,
                    &opts,
                    &prpr::clock::Clock::system(),
                    item,
                )
                .await
                    == Outcome::Dead
            {
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn outbox(command: OutboxCommand) -> anyhow::Result<ExitCode> {
    let config = match &command {
        OutboxCommand::List { config, .. } | OutboxCommand::Retry { config, .. } => config.clone(),
    };
    let Some(cfg) = load_config(&config, true) else {
        return Ok(ExitCode::FAILURE);
    };
    let store = app::connect_store(&cfg.database_url).await?;
    match command {
        OutboxCommand::List {
            all, json, limit, ..
        } => {
            let rows = store.list(all, limit).await?;
            if json {
                for r in &rows {
                    println!("{}", serde_json::to_string(r)?);
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
                    let first_line = r.text.lines().next().unwrap_or("");
                    let detail = r
                        .last_error
                        .as_deref()
                        .map_or_else(|| first_line.to_string(), |e| format!("{e} — {first_line}"));
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
