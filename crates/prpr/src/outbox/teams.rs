//! The team expander: passes team review requests on to the team's members.
//!
//! The rules decide, inside the intake transaction, that a team's request is
//! to be passed on ([`crate::rules::team_expansion`]); the store keeps that
//! as a row due after `[notify] team_debounce`. This task claims due rows
//! with a lease (so several prpr tasks on one PostgreSQL database never
//! expand one row twice), reads the team's members from GitHub
//! (`GET /orgs/{org}/teams/{slug}/members`, kept for `[github] team_cache`),
//! and hands them to the pure rule, which decides from the PR's state at that
//! moment; the store queues the result and marks the row done in one
//! transaction. A failed member lookup is retried with backoff like a Slack
//! send; after `[slack] max_attempts` (or at once when GitHub says the team
//! cannot be read) the team's channel is told nobody was DMed.
//!
//! Rows fall due no sooner than the debounce after they are written, so the
//! task polls (at most [`POLL`] apart) rather than being woken by intake.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{Notify, watch};

use super::backoff;
use crate::clock::Clock;
use crate::config::{Config, NotifyConfig};
use crate::github::client::{As, Credentials, GitHubClient, GitHubError};
use crate::rules::team_expansion;
use crate::store::{DueExpansion, Store};

/// Rows looked at per pass.
const BATCH: i64 = 20;
/// Longest wait between passes (another task may have written rows).
const POLL: Duration = Duration::from_secs(1);
/// Pages of members read at most (100 a page).
const MAX_PAGES: usize = 10;

/// How the expander works, from the config.
#[derive(Debug, Clone)]
pub struct ExpanderOptions {
    /// How long a member list is reused.
    pub cache: Duration,
    /// Member lookups before the team's channel is told instead.
    pub max_attempts: u32,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// How long a claimed row is this task's (longer than a lookup can take).
    pub lease: Duration,
}

impl ExpanderOptions {
    pub fn from_config(cfg: &Config) -> ExpanderOptions {
        ExpanderOptions {
            cache: cfg.github.team_cache,
            max_attempts: cfg.slack.max_attempts,
            retry_initial: Duration::from_millis(cfg.slack.retry_initial_ms),
            retry_max: Duration::from_millis(cfg.slack.retry_max_ms),
            lease: Duration::from_secs(120),
        }
    }
}

#[derive(Deserialize)]
struct Member {
    login: String,
}

pub struct TeamExpander {
    store: Arc<Store>,
    github: Arc<GitHubClient>,
    notify: Arc<NotifyConfig>,
    opts: ExpanderOptions,
    clock: Clock,
    /// The sender's wake-up, rung when notices were queued.
    wake: Arc<Notify>,
    /// This task's name on leases.
    owner: String,
    /// Lower-cased `org/slug` → (members, read at unix ms).
    cache: HashMap<String, (Vec<String>, i64)>,
}

impl super::Passes for TeamExpander {
    fn next_pass(&mut self) -> impl Future<Output = Duration> + Send {
        TeamExpander::pass(self)
    }
}

impl TeamExpander {
    /// A GitHub client from the config's credentials, or why expansion is off.
    pub fn github(cfg: &Config, clock: &Clock) -> Result<Arc<GitHubClient>, String> {
        let Some(credentials) = Credentials::from_config(&cfg.github) else {
            return Err("no GitHub token or App credentials (GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY) to read team members".into());
        };
        GitHubClient::new(&cfg.github.api_url, credentials, clock.clone())
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    pub fn new(
        store: Arc<Store>,
        github: Arc<GitHubClient>,
        notify: Arc<NotifyConfig>,
        opts: ExpanderOptions,
        clock: Clock,
        wake: Arc<Notify>,
    ) -> TeamExpander {
        TeamExpander {
            store,
            github,
            notify,
            opts,
            clock,
            wake,
            owner: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            cache: HashMap::new(),
        }
    }

    /// Runs until `shutdown` turns true; an expansion in progress finishes first.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        super::passes(self, shutdown).await;
    }

    /// Expands what is due; returns how long to wait before the next pass.
    pub async fn pass(&mut self) -> Duration {
        let now = self.clock.now_ms();
        let due = match self.store.due_expansions(now, BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "team expansion: store unavailable; will retry");
                return POLL;
            }
        };
        for row in due {
            let lease_until = self.clock.now_ms() + self.opts.lease.as_millis() as i64;
            match self
                .store
                .claim_expansion(row.id, &self.owner, self.clock.now_ms(), lease_until)
                .await
            {
                Ok(true) => self.expand(row).await,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "team expansion: claim failed"),
            }
        }
        let next = self.store.next_expansion_at().await.ok().flatten();
        super::wait_until(next, self.clock.now_ms(), POLL)
    }

    async fn expand(&mut self, row: DueExpansion) {
        let x = &row.expansion;
        let team = format!("{}/{}", x.org, x.slug);
        // Replaced or withdrawn meanwhile (the debounce's point): no GitHub call.
        let wanted = match self.store.pr_state(&row.repo, row.number).await {
            Ok(state) => team_expansion::still_wanted(x, &state.unwrap_or_default()).is_ok(),
            Err(e) => {
                tracing::warn!(error = %e, "team expansion: store unavailable; the row is retried when its lease ends");
                return;
            }
        };
        let members = if wanted {
            match self.members(&x.org, &x.slug).await {
                Ok(m) => Some(m),
                Err(e) => {
                    let attempt = row.attempts as u32 + 1;
                    let permanent = matches!(
                        e,
                        GitHubError::NotFound { .. }
                            | GitHubError::Unauthorized { .. }
                            | GitHubError::App(_)
                    );
                    if !permanent && attempt < self.opts.max_attempts {
                        let wait =
                            backoff::delay(attempt, self.opts.retry_initial, self.opts.retry_max);
                        tracing::warn!(team = %team, attempt, error = %e, retry_in_ms = wait.as_millis() as u64, "team expansion: cannot list the team's members; will retry");
                        let retry_at = self.clock.now_ms() + wait.as_millis() as i64;
                        if let Err(e) = self
                            .store
                            .expansion_failed(row.id, &self.owner, retry_at, &e.to_string())
                            .await
                        {
                            tracing::warn!(error = %e, "team expansion: could not record the failure; retried when the lease ends");
                        }
                        return;
                    }
                    tracing::error!(team = %team, attempt, error = %e, "team expansion: cannot list the team's members (the token needs Members: read); telling the team's channel that nobody was DMed");
                    None
                }
            }
        } else {
            Some(Vec::new())
        };
        let cfg = self.notify.clone();
        let finished = self
            .store
            .finish_expansion(&row, &self.owner, self.clock.now_ms(), |state| {
                team_expansion::expand(x, members.as_deref(), state, &cfg)
            })
            .await;
        match finished {
            Ok(Some((queued, decision))) => {
                tracing::info!(
                    team = %team,
                    repo = %row.repo,
                    number = row.number,
                    delivery = %row.delivery_id,
                    queued = queued.len(),
                    skipped = %decision.skipped.join("; "),
                    "team request expanded"
                );
                if !queued.is_empty() {
                    self.wake.notify_one();
                }
            }
            Ok(None) => {
                tracing::info!(team = %team, "team expansion: done by another task")
            }
            Err(e) => {
                tracing::warn!(team = %team, error = %e, "team expansion: could not queue; retried when the lease ends")
            }
        }
    }

    /// The team's member logins, from the cache while fresh, else GitHub.
    async fn members(&mut self, org: &str, slug: &str) -> Result<Vec<String>, GitHubError> {
        let key = format!("{org}/{slug}").to_ascii_lowercase();
        let now = self.clock.now_ms();
        if let Some((list, at)) = self.cache.get(&key)
            && now - at < self.opts.cache.as_millis() as i64
        {
            return Ok(list.clone());
        }
        let path = format!("/orgs/{org}/teams/{slug}/members?per_page=100");
        let list: Vec<String> = self
            .github
            .all::<Member>(&path, &As::Account(org.to_string()), MAX_PAGES)
            .await?
            .into_iter()
            .map(|m| m.login)
            .collect();
        self.cache.insert(key, (list.clone(), now));
        Ok(list)
    }
}
