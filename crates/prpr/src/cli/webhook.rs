//! `prpr webhook`.

use std::process::ExitCode;

use clap::Args;

use prpr::config::env_help;
use prpr::webhook_setup::{EVENTS, GitHubApi, Installed};

use super::{ConfigArg, load_config};

/// Create or update the repository webhook that sends prpr its events (the
/// Ruby prpr's `bin/webhook`).
///
/// Needs GITHUB_TOKEN (a token that may administer the repository's hooks)
/// and GITHUB_WEBHOOK_SECRET (the hook signs deliveries with it). Run again
/// with a new secret to rotate it: the same hook is updated, not duplicated.
/// GitHub Enterprise: set GITHUB_API_URL or GITHUB_HOST.
///
/// As a GitHub App instead (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY, used by
/// catch-up), the App needs these permissions: Pull requests: read; Members:
/// read (organization, for team members); Webhooks: read & write (repository,
/// and organization for org hooks) so catch-up can list and redeliver
/// deliveries. Subscribe it to the events Pull request, Pull request review,
/// Pull request review comment and Issue comment, with the App's webhook URL
/// pointing at prpr and its secret = GITHUB_WEBHOOK_SECRET.
#[derive(Args)]
#[command(after_help = env_help())]
pub(crate) struct Webhook {
    #[command(flatten)]
    config: ConfigArg,
    /// The repository, OWNER/REPO.
    repo: String,
    /// prpr's public URL, e.g. https://prpr.example.com/webhook.
    url: String,
}

impl Webhook {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let Some(cfg) = load_config(&self.config, true) else {
            return Ok(ExitCode::FAILURE);
        };
        let (Some(token), Some(secret)) = (&cfg.github.token, &cfg.github.webhook_secret) else {
            eprintln!(
                "prpr: `prpr webhook` needs GITHUB_TOKEN (to call the GitHub API) and GITHUB_WEBHOOK_SECRET (to sign deliveries)"
            );
            return Ok(ExitCode::from(2));
        };
        let (repo, url) = (&self.repo, &self.url);
        let api = GitHubApi::new(&cfg.github.api_url, token.clone())?;
        match api.install(repo, url, secret).await {
            Ok(Installed::Created { id }) => println!("created webhook {id} on {repo} → {url}"),
            Ok(Installed::Updated { id }) => println!("updated webhook {id} on {repo} → {url}"),
            Err(e) => {
                eprintln!("prpr: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
        println!(
            "events: {}; content type json; signed with the configured secret",
            EVENTS.join(", ")
        );
        Ok(ExitCode::SUCCESS)
    }
}
