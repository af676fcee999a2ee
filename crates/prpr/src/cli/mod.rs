//! The `prpr` command line, one module per command: `serve`, `replay`,
//! `webhook`, `outbox`, `config`, `route`, `catch-up`, `reminders`.
//!
//! Exit codes: 0 done; 1 a failure (bad configuration, a message that could
//! not be sent, a rejected API call); 2 bad input on the command line (an
//! unreadable or invalid payload, missing credentials).

mod catch_up;
mod config;
mod outbox;
mod reminders;
mod replay;
mod route;
mod serve;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use prpr::config::{Config, ProcessEnv, env_help};

#[derive(Parser)]
#[command(
    name = "prpr",
    version,
    about = "GitHub pull-request notifications on Slack: review requests, reviews and mentions.",
    after_help = env_help()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The config file option every command that reads the configuration takes.
#[derive(Args, Clone)]
pub(crate) struct ConfigArg {
    /// TOML config file (env: PRPR_CONFIG). Environment variables override it.
    #[arg(long, short = 'c', global = true)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    Serve(serve::Serve),
    Replay(replay::Replay),
    Webhook(webhook::Webhook),
    Outbox(outbox::Outbox),
    Config(config::ConfigCmd),
    Route(route::RouteCmd),
    CatchUp(catch_up::CatchUpCmd),
    Reminders(reminders::RemindersCmd),
}

pub fn main() -> ExitCode {
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(c) => c.run().await,
            Command::Replay(c) => c.run().await,
            Command::Webhook(c) => c.run().await,
            Command::Outbox(c) => c.run().await,
            Command::Config(c) => Ok(c.run()),
            Command::Route(c) => Ok(c.run()),
            Command::CatchUp(c) => c.run().await,
            Command::Reminders(c) => c.run().await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("prpr: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config for a one-off command, printing its problems to stderr
/// (warnings too, unless `quiet_warnings`). `None` when there are errors.
pub(crate) fn load_config(arg: &ConfigArg, quiet_warnings: bool) -> Option<Config> {
    let loaded = prpr::config::load(arg.config.as_deref(), &ProcessEnv);
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

/// The end of a GitHub pass's summary line: `rate remaining N`, and why the
/// pass stopped early if it did (`prpr catch-up`, `prpr reminders resync`).
pub(crate) fn rate_summary(remaining: Option<u64>, stopped_early: Option<&str>) -> String {
    format!(
        "rate remaining {}{}",
        remaining.map_or_else(|| "unknown".to_string(), |n| n.to_string()),
        stopped_early
            .map(|w| format!("; stopped early: {w}"))
            .unwrap_or_default()
    )
}
