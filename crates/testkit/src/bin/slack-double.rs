//! The Slack double as a separate process, for benchmarks.
//!
//! Prints `listening http://127.0.0.1:PORT/api` on stdout once ready, serves
//! the Slack Web API double plus `GET /_double/posted`,
//! `GET /_double/attempts`, `GET /_double/updates`, `POST /_double/delete`
//! and `POST /_double/reset`, and exits on SIGTERM or
//! SIGINT.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use testkit::slack::{RateLimit, SlackConfig, SlackDouble};

#[derive(Parser, Debug)]
#[command(
    about = "Slack Web API double (chat.postMessage, chat.update, reactions.add/remove, auth.test, users.list)"
)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Bot token to accept.
    #[arg(long, default_value = testkit::slack::DEFAULT_TOKEN)]
    token: String,
    /// Per-channel chat.postMessage rate (messages/second); unset = unlimited.
    #[arg(long)]
    rate_limit_per_sec: Option<f64>,
    /// Token-bucket size per channel (used with --rate-limit-per-sec).
    #[arg(long, default_value_t = 1)]
    burst: u32,
    /// Retry-After seconds on a 429; 0 = computed from the rate.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
    /// Workspace-wide chat.update rate (updates/second; Slack's Tier 3 is
    /// about 50/min = 0.83); unset = unlimited.
    #[arg(long)]
    update_rate_limit_per_sec: Option<f64>,
    /// Token-bucket size for chat.update (used with --update-rate-limit-per-sec).
    #[arg(long, default_value_t = 1)]
    update_burst: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = SlackConfig {
        token: args.token,
        rate_limit: args.rate_limit_per_sec.map(|per_second| RateLimit {
            per_second,
            burst: args.burst,
            retry_after_secs: args.retry_after,
        }),
        update_rate_limit: args.update_rate_limit_per_sec.map(|per_second| RateLimit {
            per_second,
            burst: args.update_burst,
            retry_after_secs: args.retry_after,
        }),
        ..SlackConfig::default()
    };
    let double = match SlackDouble::start_on(config, args.port).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "slack-double: cannot listen on 127.0.0.1:{}: {e}",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "listening {}", double.api_url())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    wait_for_signal().await;
    double.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
