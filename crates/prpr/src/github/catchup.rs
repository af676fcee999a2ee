//! Catch-up: asks GitHub to redeliver what prpr missed.
//!
//! Why: GitHub never retries a failed webhook delivery. A deploy, a crash or
//! a load-balancer hiccup that answers 5xx or times out loses a review
//! request for good, unless someone clicks "Redeliver". prpr already
//! deduplicates by `X-GitHub-Delivery`, so redelivery is safe; it only has to
//! ask for it.
//!
//! A pass:
//! 1. finds the hooks pointing at `[github] webhook_url`: repository hooks of
//!    `[github] repos`, organization hooks of `[github] orgs`, and in App mode
//!    the App's own hook;
//! 2. lists their deliveries (newest first, cursor pages) back to where the
//!    last complete pass started, at most what the server keeps
//!    ([`retention`]: 3 days on GitHub.com, 7 on GitHub Enterprise Server);
//! 3. redelivers, once per GUID, each delivery GitHub marks failed whose
//!    GUID prpr has not stored, of an event prpr handles, and that no
//!    redelivery has already delivered successfully.
//!
//! It stops early when GitHub's remaining rate limit falls to
//! `[github] catch_up_rate_floor` (the next pass looks at the same window
//! again: what is done is skipped). Several tasks share the work through a
//! lease in the store, so one pass runs at a time and a redelivery is
//! requested once. Each pass logs one line: `checked`, `missing`,
//! `redelivered`, `rate_remaining`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;

use super::client::{As, Credentials, GitHubClient, GitHubError, parse_rfc3339_ms};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::webhook_setup::EVENTS;

/// GitHub.com (and GHE.com) keep a hook's deliveries 3 days.
pub const GITHUB_COM_RETENTION: Duration = Duration::from_secs(3 * 86_400);
/// GitHub Enterprise Server keeps them 7 days.
pub const GHES_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// How long the server at `api_url` keeps deliveries: never look further
/// back. GitHub.com's API is `api.github.com`, GHE.com's `api.<tenant>.ghe.com`;
/// anything else (`https://ghe.example.com/api/v3`) is a GHES.
pub fn retention(api_url: &str) -> Duration {
    let host = api_url
        .split("://")
        .nth(1)
        .unwrap_or(api_url)
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if host == "api.github.com" || host.ends_with(".ghe.com") {
        GITHUB_COM_RETENTION
    } else {
        GHES_RETENTION
    }
}
/// A pass holds the lease this long unless it renews it, which it does every
/// third of it while it runs (a pass may wait out GitHub's limits for
/// minutes): a task killed mid-pass holds up the other tasks' catch-up for
/// at most this long.
const LEASE: Duration = Duration::from_secs(30);
/// Each pass looks this much further back than where the last one started:
/// GitHub's `delivered_at` has whole seconds, and its clock is not ours.
/// What the overlap shows again is skipped (stored, or already successful).
const OVERLAP: Duration = Duration::from_secs(60);
/// Pages of deliveries read per hook and pass at most.
const MAX_PAGES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error("{0}")]
    GitHub(#[from] GitHubError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What catch-up needs from the config.
#[derive(Debug, Clone)]
pub struct CatchUpConfig {
    pub repos: Vec<String>,
    pub orgs: Vec<String>,
    pub webhook_url: String,
    pub interval: Duration,
    pub rate_floor: u64,
    /// How far back the server keeps deliveries ([`retention`]).
    pub retention: Duration,
}

/// A hook pointing at prpr, by its API path (`/repos/o/r/hooks/1`,
/// `/orgs/o/hooks/2`, `/app/hook`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookPath {
    pub path: String,
    /// Whose credential reads it.
    who: As,
}

/// One missed delivery and what the pass did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub delivered_at: String,
    pub hook: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// GitHub accepted the redelivery request (202).
    Redelivered,
    /// `--dry-run`: nothing asked.
    WouldRedeliver,
    /// GitHub refused it; the reason.
    Failed(String),
    /// The pass stopped (rate limit) before asking.
    NotAttempted,
}

/// What one pass saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub hooks: usize,
    /// Deliveries listed in the window.
    pub checked: usize,
    /// Failed, not stored, not redelivered since, of an event prpr handles.
    pub missing: usize,
    pub redelivered: usize,
    pub rate_remaining: Option<u64>,
    /// Why the pass ended early (rate limit), if it did.
    pub stopped_early: Option<String>,
    /// Another task holds the lease: nothing was done.
    pub leased_elsewhere: bool,
    pub missed: Vec<Missed>,
}

/// How to run one pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions {
    /// Look back this far instead of to the last pass (`prpr catch-up --since`).
    pub since: Option<Duration>,
    /// List what would be redelivered; ask nothing.
    pub dry_run: bool,
}

#[derive(Deserialize)]
struct HookView {
    id: u64,
    #[serde(default)]
    config: HookConfig,
}

#[derive(Deserialize, Default)]
struct HookConfig {
    #[serde(default)]
    url: Option<String>,
}

/// An item of `GET …/deliveries`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryItem {
    pub id: u64,
    pub guid: String,
    pub delivered_at: String,
    #[serde(default)]
    pub redelivery: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_code: u16,
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
}

impl DeliveryItem {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// The catch-up job.
pub struct CatchUp {
    client: Arc<GitHubClient>,
    store: Arc<Store>,
    cfg: CatchUpConfig,
    clock: Clock,
    /// This task's name on the lease.
    owner: String,
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl CatchUp {
    /// From the config, or why catch-up is off.
    pub fn from_config(cfg: &Config, store: Arc<Store>, clock: Clock) -> Result<CatchUp, String> {
        let gh = &cfg.github;
        let Some(credentials) = Credentials::from_config(gh) else {
            return Err("no GitHub token or App credentials (GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY)".into());
        };
        let Some(webhook_url) = gh.webhook_url.clone() else {
            return Err(
                "github.webhook_url (PRPR_WEBHOOK_URL) is not set, so prpr cannot tell its hooks"
                    .into(),
            );
        };
        let app = matches!(credentials, Credentials::App { .. });
        if gh.repos.is_empty() && gh.orgs.is_empty() && !app {
            return Err("no github.repos or github.orgs to check (and not a GitHub App)".into());
        }
        let client = GitHubClient::new(&gh.api_url, credentials, clock.clone())
            .map_err(|e| e.to_string())?;
        Ok(CatchUp {
            client: Arc::new(client),
            store,
            cfg: CatchUpConfig {
                repos: gh.repos.clone(),
                orgs: gh.orgs.clone(),
                webhook_url,
                interval: gh.catch_up_interval,
                rate_floor: gh.catch_up_rate_floor,
                retention: retention(&gh.api_url),
            },
            clock,
            owner: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
        })
    }

    /// The hooks pointing at prpr. A repository or organization that cannot
    /// be read is logged and skipped: the others are still checked.
    pub async fn hooks(&self) -> Result<Vec<HookPath>, CatchUpError> {
        let mut out = Vec::new();
        let url = &self.cfg.webhook_url;
        let mut lists: Vec<(String, As)> = Vec::new();
        for repo in &self.cfg.repos {
            let owner = repo.split('/').next().unwrap_or_default().to_string();
            lists.push((format!("/repos/{repo}/hooks"), As::Account(owner)));
        }
        for org in &self.cfg.orgs {
            lists.push((format!("/orgs/{org}/hooks"), As::Account(org.clone())));
        }
        for (base, who) in lists {
            match self
                .client
                .all::<HookView>(&format!("{base}?per_page=100"), &who, 10)
                .await
            {
                Ok(hooks) => out.extend(
                    hooks
                        .into_iter()
                        .filter(|h| h.config.url.as_deref().is_some_and(|u| same_url(u, url)))
                        .map(|h| HookPath {
                            path: format!("{base}/{}", h.id),
                            who: who.clone(),
                        }),
                ),
                Err(e @ (GitHubError::RateLimited { .. } | GitHubError::SecondaryLimit { .. })) => {
                    return Err(e.into());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "catch-up: cannot list the webhooks of {base}; skipped")
                }
            }
        }
        if self.client.is_app() {
            #[derive(Deserialize)]
            struct AppHook {
                #[serde(default)]
                url: Option<String>,
            }
            match self
                .client
                .get::<AppHook>("/app/hook/config", &As::App)
                .await
            {
                Ok(h) if h.url.as_deref().is_some_and(|u| same_url(u, url)) => out.push(HookPath {
                    path: "/app/hook".into(),
                    who: As::App,
                }),
                Ok(_) => {}
                Err(GitHubError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "catch-up: cannot read the App's webhook; skipped")
                }
            }
        }
        Ok(out)
    }

    fn rate_low(&self) -> Option<String> {
        self.client.rate_low(self.cfg.rate_floor)
    }

    /// One pass under the lease. Without `opts.since`, a complete pass moves
    /// the window's start to its own start.
    pub async fn pass(&self, opts: PassOptions) -> Result<PassReport, CatchUpError> {
        let now = self.clock.now_ms();
        let lease_until = now + LEASE.as_millis() as i64;
        let Some(checked_to) = self
            .store
            .catch_up_lease(&self.owner, now, lease_until)
            .await?
        else {
            return Ok(PassReport {
                leased_elsewhere: true,
                ..PassReport::default()
            });
        };
        let oldest = now - self.cfg.retention.as_millis() as i64;
        let since = match opts.since {
            Some(d) => now - d.as_millis() as i64,
            None => checked_to - OVERLAP.as_millis() as i64,
        }
        .max(oldest);
        let result = self.renewing_lease(self.pass_within(since, opts)).await;
        let complete = matches!(&result, Ok(r) if r.stopped_early.is_none());
        let record = (complete && opts.since.is_none() && !opts.dry_run).then_some(now);
        if let Err(e) = self.store.catch_up_release(&self.owner, record).await {
            tracing::warn!(error = %e, "catch-up: cannot release the lease; it expires by itself");
        }
        result
    }

    /// Runs `work`, renewing this task's lease every third of [`LEASE`].
    /// A lease that ran out and was taken by another task is logged; the
    /// pass goes on (at worst a redelivery is asked for twice, and prpr
    /// answers the second `duplicate`).
    async fn renewing_lease<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let period = LEASE / 3;
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = renew.tick() => {
                    let now = self.clock.now_ms();
                    let until = now + LEASE.as_millis() as i64;
                    match self.store.catch_up_lease(&self.owner, now, until).await {
                        Ok(Some(_)) => {}
                        Ok(None) => tracing::warn!("catch-up: the pass outlived its lease and another task took it over"),
                        Err(e) => tracing::warn!(error = %e, "catch-up: cannot renew the lease; it runs out unless a later renewal succeeds"),
                    }
                }
            }
        }
    }

    async fn pass_within(
        &self,
        since_ms: i64,
        opts: PassOptions,
    ) -> Result<PassReport, CatchUpError> {
        let mut report = PassReport::default();
        let hooks = match self.hooks().await {
            Ok(h) => h,
            Err(CatchUpError::GitHub(
                e @ (GitHubError::RateLimited { .. } | GitHubError::SecondaryLimit { .. }),
            )) => {
                report.stopped_early = Some(e.to_string());
                report.rate_remaining = self.client.rate_limit().remaining;
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        report.hooks = hooks.len();
        'hooks: for hook in &hooks {
            if let Some(why) = self.rate_low() {
                report.stopped_early = Some(why);
                break;
            }
            // Newest first: read pages until one reaches back past `since`.
            let mut items: Vec<DeliveryItem> = Vec::new();
            let mut next = Some(format!("{}/deliveries?per_page=100", hook.path));
            let mut pages = 0;
            while let Some(url) = next.take() {
                pages += 1;
                let page = match self.client.page::<DeliveryItem>(&url, &hook.who).await {
                    Ok(p) => p,
                    Err(
                        e @ (GitHubError::RateLimited { .. } | GitHubError::SecondaryLimit { .. }),
                    ) => {
                        report.stopped_early = Some(e.to_string());
                        break 'hooks;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, hook = %hook.path, "catch-up: cannot list deliveries; hook skipped");
                        continue 'hooks;
                    }
                };
                let (list, link) = page;
                let mut reached_end = false;
                for item in list {
                    match parse_rfc3339_ms(&item.delivered_at) {
                        Ok(at) if at >= since_ms => items.push(item),
                        Ok(_) => reached_end = true,
                        Err(e) => {
                            tracing::warn!(error = %e, guid = %item.guid, "catch-up: a delivery with an unreadable time; skipped")
                        }
                    }
                }
                if !reached_end && pages < MAX_PAGES {
                    next = link;
                }
                if next.is_some()
                    && let Some(why) = self.rate_low()
                {
                    report.stopped_early = Some(why);
                    break 'hooks;
                }
            }
            report.checked += items.len();
            // Per GUID: a success anywhere (original or redelivery) settles it.
            let mut by_guid: HashMap<&str, Vec<&DeliveryItem>> = HashMap::new();
            for item in &items {
                by_guid.entry(item.guid.as_str()).or_default().push(item);
            }
            let mut todo: Vec<&DeliveryItem> = Vec::new();
            for (guid, attempts) in by_guid {
                if attempts.iter().any(|a| a.ok()) {
                    continue;
                }
                let Some(newest) = attempts.iter().max_by_key(|a| a.id) else {
                    continue;
                };
                if !EVENTS.contains(&newest.event.as_str()) {
                    continue;
                }
                if self.store.has_delivery(guid).await? {
                    continue;
                }
                todo.push(newest);
            }
            // Oldest first: the order they happened in.
            todo.sort_by_key(|d| d.id);
            for item in todo {
                report.missing += 1;
                let outcome = if report.stopped_early.is_some() {
                    Outcome::NotAttempted
                } else if opts.dry_run {
                    Outcome::WouldRedeliver
                } else if let Some(why) = self.rate_low() {
                    report.stopped_early = Some(why);
                    Outcome::NotAttempted
                } else {
                    let path = format!("{}/deliveries/{}/attempts", hook.path, item.id);
                    match self.client.post_empty(&path, &hook.who).await {
                        Ok(_) => {
                            report.redelivered += 1;
                            Outcome::Redelivered
                        }
                        Err(
                            e @ (GitHubError::RateLimited { .. }
                            | GitHubError::SecondaryLimit { .. }),
                        ) => {
                            report.stopped_early = Some(e.to_string());
                            Outcome::Failed(e.to_string())
                        }
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                };
                report.missed.push(Missed {
                    guid: item.guid.clone(),
                    event: item.event.clone(),
                    action: item.action.clone(),
                    delivered_at: item.delivered_at.clone(),
                    hook: hook.path.clone(),
                    outcome,
                });
            }
            if report.stopped_early.is_some() {
                break;
            }
        }
        report.rate_remaining = self.client.rate_limit().remaining;
        Ok(report)
    }

    /// Runs a pass now and every `[github] catch_up_interval`, until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            match self.pass(PassOptions::default()).await {
                Ok(r) if r.leased_elsewhere => {
                    tracing::debug!("catch-up: another task is running a pass");
                }
                Ok(r) => {
                    for m in r
                        .missed
                        .iter()
                        .filter(|m| matches!(m.outcome, Outcome::Failed(_)))
                    {
                        if let Outcome::Failed(why) = &m.outcome {
                            tracing::warn!(guid = %m.guid, event = %m.event, error = %why, "catch-up: redelivery refused");
                        }
                    }
                    tracing::info!(
                        hooks = r.hooks,
                        checked = r.checked,
                        missing = r.missing,
                        redelivered = r.redelivered,
                        rate_remaining = r.rate_remaining,
                        stopped_early = r.stopped_early.as_deref(),
                        "catch-up pass"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "catch-up pass failed; trying again next interval")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_com_keeps_three_days_and_enterprise_server_seven() {
        for url in [
            "https://api.github.com",
            "https://API.GitHub.com/",
            "https://api.acme.ghe.com",
        ] {
            assert_eq!(retention(url), GITHUB_COM_RETENTION, "{url}");
        }
        for url in [
            "https://ghe.example.com/api/v3",
            "http://127.0.0.1:8080",
            "https://github.acme.internal:8443/api/v3",
        ] {
            assert_eq!(retention(url), GHES_RETENTION, "{url}");
        }
    }
}
