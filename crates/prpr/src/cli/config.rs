//! `prpr config check` and `prpr config example`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use prpr::config::{self, ProcessEnv, env_help};

use super::ConfigArg;

/// Check or print the configuration.
#[derive(Args)]
pub(crate) struct ConfigCmd {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print every problem with its file and line; exit 1 if there are any.
    ///
    /// Reads the file and the environment as `prpr serve` would, and the
    /// members file it names. Every problem is listed in one run, misspelt
    /// keys with the nearest known one. Secrets are never printed.
    #[command(after_help = env_help())]
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a commented sample covering every key.
    Example,
}

impl ConfigCmd {
    pub(crate) fn run(self) -> ExitCode {
        match self.command {
            ConfigCommand::Example => {
                print!("{}", config::EXAMPLE);
                ExitCode::SUCCESS
            }
            ConfigCommand::Check { config } => check(&config),
        }
    }
}

fn check(arg: &ConfigArg) -> ExitCode {
    let loaded = config::load(arg.config.as_deref(), &ProcessEnv);
    for p in &loaded.problems {
        println!("{p}");
    }
    if !loaded.problems.is_empty() {
        return ExitCode::FAILURE;
    }
    let c = &loaded.config;
    println!(
        "ok: {} member(s), delivery {:?}, store {}, publisher {}, {}",
        c.notify.members.len(),
        c.notify.delivery,
        c.database.url.split(':').next().unwrap_or("?"),
        if c.slack.bot_token.is_some() {
            "slack"
        } else {
            "console"
        },
        if c.github.webhook_secret.is_some() {
            "signatures checked"
        } else {
            "NO webhook secret: `prpr serve` refuses to start unless given --insecure-accept-unsigned"
        }
    );
    ExitCode::SUCCESS
}
