//! `prpr catch-up`: one catch-up pass by hand.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use prpr::app;
use prpr::clock::Clock;
use prpr::config::{env_help, parse_duration};
use prpr::github::catchup::{CatchUp, Outcome, PassOptions, retention};

use super::{ConfigArg, load_config, rate_summary};

/// Ask GitHub to redeliver the webhook deliveries prpr missed.
///
/// Runs one catch-up pass now, as `prpr serve` does every
/// [github] catch_up_interval: finds the hooks pointing at [github]
/// webhook_url (repository hooks of [github] repos, organization hooks of
/// [github] orgs, the App's hook in App mode), lists their deliveries back to
/// --since, and redelivers each one GitHub marks failed that prpr never
/// stored. Prints each missed delivery (GUID, event, action, time) and what
/// was done about it.
///
/// Needs GITHUB_TOKEN (Webhooks: read & write) or GITHUB_APP_ID and
/// GITHUB_APP_PRIVATE_KEY, PRPR_WEBHOOK_URL, and the store of DATABASE_URL
/// (to know what prpr already has).
#[derive(Args)]
#[command(after_help = env_help())]
pub(crate) struct CatchUpCmd {
    #[command(flatten)]
    config: ConfigArg,
    /// How far back to look: "2h", "30m", "1d" (at most as long as the
    /// server keeps deliveries: 3 days on GitHub.com, 7 on GitHub Enterprise
    /// Server). Default: back to the last pass.
    #[arg(long, value_parser = since)]
    since: Option<Duration>,
    /// Only list what would be redelivered.
    #[arg(long)]
    dry_run: bool,
}

fn since(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(d)
}

impl CatchUpCmd {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let Some(cfg) = load_config(&self.config, true) else {
            return Ok(ExitCode::FAILURE);
        };
        let keeps = retention(&cfg.github.api_url);
        if let Some(d) = self.since
            && d > keeps
        {
            eprintln!(
                "prpr: --since {}: {} keeps deliveries {} days; use at most \"{}d\"",
                since_text(d),
                cfg.github.api_url,
                keeps.as_secs() / 86_400,
                keeps.as_secs() / 86_400
            );
            return Ok(ExitCode::from(2));
        }
        let store = Arc::new(app::connect_store(&cfg.database.url).await?);
        let job = match CatchUp::from_config(&cfg, store, Clock::system()) {
            Ok(j) => j,
            Err(why) => {
                eprintln!("prpr: catch-up is off: {why}");
                return Ok(ExitCode::from(2));
            }
        };
        let report = match job
            .pass(PassOptions {
                since: self.since,
                dry_run: self.dry_run,
            })
            .await
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("prpr: catch-up failed: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        if report.leased_elsewhere {
            eprintln!(
                "prpr: a running prpr is doing a catch-up pass right now; try again in a minute"
            );
            return Ok(ExitCode::FAILURE);
        }
        for m in &report.missed {
            let did = match &m.outcome {
                Outcome::Redelivered => "redelivery requested".to_string(),
                Outcome::WouldRedeliver => "would redeliver (dry run)".to_string(),
                Outcome::NotAttempted => "not attempted (stopped early)".to_string(),
                Outcome::Failed(why) => format!("redelivery refused: {why}"),
            };
            println!(
                "{}  {}.{}  {}  {}",
                m.guid,
                m.event,
                m.action.as_deref().unwrap_or("-"),
                m.delivered_at,
                did
            );
        }
        println!(
            "hooks {}, checked {}, missing {}, redelivered {}, {}",
            report.hooks,
            report.checked,
            report.missing,
            report.redelivered,
            rate_summary(report.rate_remaining, report.stopped_early.as_deref())
        );
        let failed = report
            .missed
            .iter()
            .any(|m| matches!(m.outcome, Outcome::Failed(_)));
        Ok(if failed || report.stopped_early.is_some() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// `d` as the largest whole unit `--since` accepts ("5d", "90m").
fn since_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
