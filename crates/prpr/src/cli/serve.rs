//! `prpr serve`.

use std::process::ExitCode;

use clap::Args;

use prpr::app::{self, ServeOptions};
use prpr::config::{self, ProcessEnv, env_help};
use prpr::telemetry;

use super::ConfigArg;

/// Run the webhook server and the Slack sender.
///
/// Listens on PORT for GitHub's webhook deliveries at /webhook, checks their
/// signature, queues the notifications they call for and sends them to Slack.
/// Health: /readyz (a delivery could be stored now) and /healthz (up, unless
/// the store has been unusable for [store] unhealthy_after_secs).
/// SIGTERM or Ctrl-C: finishes in-flight requests and sends, then exits 0.
#[derive(Args)]
#[command(after_help = env_help())]
pub(crate) struct Serve {
    #[command(flatten)]
    config: ConfigArg,
    /// Port to listen on (overrides PORT and the config file).
    #[arg(long)]
    port: Option<u16>,
    /// Accept deliveries without a signature when no secret is configured. Local testing only.
    #[arg(long)]
    insecure_accept_unsigned: bool,
}

impl Serve {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let loaded = config::load(self.config.config.as_deref(), &ProcessEnv);
        // Logging is configured by the config, so its problems are logged
        // once it is set up: as JSON on Fargate, where stderr is CloudWatch.
        telemetry::init(loaded.config.log.format);
        for p in &loaded.problems {
            if p.is_error {
                tracing::error!(source = %p.source, line = p.line, "{}", p.message);
            } else {
                tracing::warn!(source = %p.source, line = p.line, "{}", p.message);
            }
        }
        if loaded.has_errors() {
            eprintln!("prpr: the configuration has errors; run `prpr config check` to list them");
            return Ok(ExitCode::FAILURE);
        }
        let mut cfg = loaded.config;
        if let Some(p) = self.port {
            cfg.server.port = p;
        }
        app::serve(
            cfg,
            ServeOptions {
                insecure_accept_unsigned: self.insecure_accept_unsigned,
            },
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    }
}
