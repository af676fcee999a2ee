//! The reminders backfill: the open-PR picture, read from GitHub's REST API.
//!
//! Why: reminders list what prpr knows of each open pull request (its card
//! in `pr_state`, kept current by events through [`crate::rules::card`]). A
//! PR opened, reviewed or closed while prpr was down, or before it was
//! installed, is not in that picture; GitHub's list is. A pass:
//!
//! 1. expands the repositories prpr serves: `[github] repos` (a glob such as
//!    `acme/*` against `GET /orgs/{org}/repos`, or `/users/{user}/repos`) and
//!    every repository of `[github] orgs`; archived ones are left out;
//! 2. per repository lists the open PRs (`GET …/pulls?state=open`, 100 a
//!    page) — requested reviewers and teams come in each item — and each
//!    PR's reviews (`GET …/pulls/{n}/reviews`), and writes the card
//!    ([`card::from_rest`]) into the PR's stored state without touching the
//!    rest of it, unless an event newer than this snapshot wrote it
//!    ([`card::merge_rest`]);
//! 3. asks GitHub about each PR prpr holds as open that the list no longer
//!    shows (`GET …/pulls/{n}`): merged or closed, it leaves the picture.
//!
//! It sends nothing to Slack: it only refreshes what reminders read. It stops
//! early when GitHub's remaining rate limit falls to `[github]
//! catch_up_rate_floor` (the client waits out `retry-after` on secondary
//! limits), and a repository whose list could not be read completely closes
//! nothing. Several tasks on one database take turns through a lease (the
//! `catch_up` table's `backfill` row, catch-up's mechanism), and a periodic
//! pass is skipped when another task completed one within `[reminders]
//! resync`. Each pass logs one line: `repos`, `prs`, `updated`, `closed`,
//! `rate_remaining`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;

use super::client::{As, Credentials, GitHubClient, GitHubError};
use super::{PullRequest, ReviewItem};
use crate::clock::Clock;
use crate::config::{Config, Glob};
use crate::intake::commands::parse_pr_url;
use crate::notice::{Card, PrStatus};
use crate::rules::card;
use crate::store::{Store, StoreError};

/// The backfill's row in the jobs' lease table.
pub const JOB: &str = "backfill";
/// A pass holds the lease this long at most (a crashed task's lease expires).
const LEASE: Duration = Duration::from_secs(30 * 60);
/// Pages read per list at most (10 000 open PRs, or repositories).
const MAX_PAGES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    GitHub(#[from] GitHubError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What the backfill needs from the config.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// `owner/name`, or globs like `acme/*`.
    pub repos: Vec<String>,
    /// Every repository of these.
    pub orgs: Vec<String>,
    /// Zero: at start only.
    pub resync: Duration,
    pub rate_floor: u64,
}

/// What happened to one PR's card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The stored card changed.
    Updated,
    /// Already what GitHub shows.
    Unchanged,
    /// An event newer than the snapshot wrote it: kept.
    KeptNewer,
}

/// One PR the pass looked at, as its card now reads (GitHub's view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub card: Card,
    pub outcome: Outcome,
}

/// What one pass saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Repositories read (after glob expansion).
    pub repos: usize,
    /// Open PRs listed.
    pub prs: usize,
    /// Cards written (new or changed), the closed ones included.
    pub updated: usize,
    /// PRs prpr held as open that are merged or closed now.
    pub closed: usize,
    pub rate_remaining: Option<u64>,
    /// Why the pass ended early (rate limit), if it did.
    pub stopped_early: Option<String>,
    /// Another task holds the lease: nothing was done.
    pub leased_elsewhere: bool,
    /// Not forced, and a complete pass ended less than `resync` ago (unix
    /// ms of its start): nothing was done.
    pub recent: Option<i64>,
    /// Repositories that could not be read (and why): nothing of theirs closed.
    pub failed: Vec<(String, String)>,
    pub found: Vec<Found>,
}

/// An item of `GET /orgs/{org}/repos`.
#[derive(Deserialize)]
struct RepoItem {
    full_name: String,
    #[serde(default)]
    archived: bool,
}

/// The backfill job.
pub struct Backfill {
    client: Arc<GitHubClient>,
    store: Arc<Store>,
    cfg: BackfillConfig,
    clock: Clock,
    /// This task's name on the lease.
    owner: String,
    /// `prpr serve` shutting down: a pass ends between requests.
    stop: Option<watch::Receiver<bool>>,
}

/// GitHub's rate limits (primary, or secondary beyond what the client waits out): the pass stops.
fn is_limit(e: &GitHubError) -> bool {
    matches!(
        e,
        GitHubError::RateLimited { .. } | GitHubError::SecondaryLimit { .. }
    )
}

fn is_glob(repo: &str) -> bool {
    repo.contains(['*', '?', '[', '{'])
}

fn owner_of(repo: &str) -> &str {
    repo.split('/').next().unwrap_or_default()
}

impl Backfill {
    /// From the config, or why the backfill is off. `for_cli`: asked for
    /// by hand, so it runs even when nothing in the config reads the
    /// picture.
    pub fn from_config(
        cfg: &Config,
        store: Arc<Store>,
        clock: Clock,
        for_cli: bool,
    ) -> Result<Backfill, String> {
        let gh = &cfg.github;
        let Some(credentials) = Credentials::from_config(gh) else {
            return Err("no GitHub token or App credentials (GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY)".into());
        };
        if gh.repos.is_empty() && gh.orgs.is_empty() {
            return Err("no github.repos or github.orgs to read".into());
        }
        // The scheduler's work is what reads the picture (and `/prpr pending`).
        if !for_cli && !crate::reminders::Scheduler::has_work(cfg) {
            return Err(
                "no reminders configured ([[reminders.schedules]], [[reminders.personal]] or the /prpr command)"
                    .into(),
            );
        }
        let client = GitHubClient::new(&gh.api_url, credentials, clock.clone())
            .map_err(|e| e.to_string())?;
        Ok(Backfill {
            client: Arc::new(client),
            store,
            cfg: BackfillConfig {
                repos: gh.repos.clone(),
                orgs: gh.orgs.clone(),
                resync: cfg.reminders.resync,
                rate_floor: gh.catch_up_rate_floor,
            },
            clock,
            owner: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            stop: None,
        })
    }

    /// The repositories to read, `owner/name` as GitHub spells them when it
    /// listed them. An owner whose list cannot be read is reported and
    /// skipped; a rate limit ends the pass.
    async fn repos(&self, report: &mut PassReport) -> Result<Vec<String>, GitHubError> {
        let mut out: Vec<String> = Vec::new();
        let mut listed: HashMap<String, Vec<String>> = HashMap::new();
        let mut wanted: Vec<(String, Option<Glob>)> = Vec::new();
        for repo in &self.cfg.repos {
            if is_glob(repo) {
                match Glob::new(repo) {
                    Ok(g) => wanted.push((owner_of(repo).to_string(), Some(g))),
                    Err(e) => report.failed.push((repo.clone(), e)),
                }
            } else {
                out.push(repo.clone());
            }
        }
        for org in &self.cfg.orgs {
            wanted.push((org.clone(), None));
        }
        for (owner, glob) in wanted {
            let key = owner.to_ascii_lowercase();
            if !listed.contains_key(&key) {
                match self.owner_repos(&owner).await {
                    Ok(names) => {
                        listed.insert(key.clone(), names);
                    }
                    Err(e) if is_limit(&e) => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %e, owner = %owner, "reminders backfill: cannot list the repositories; skipped");
                        report.failed.push((format!("{owner}/*"), e.to_string()));
                        listed.insert(key.clone(), Vec::new());
                    }
                }
            }
            let names = listed.get(&key).map(Vec::as_slice).unwrap_or_default();
            out.extend(
                names
                    .iter()
                    .filter(|n| glob.as_ref().is_none_or(|g| g.is_match(n)))
                    .cloned(),
            );
        }
        let mut seen = HashSet::new();
        out.retain(|r| seen.insert(r.to_ascii_lowercase()));
        Ok(out)
    }

    /// Why the pass should end now: GitHub's rate limit is low, or prpr is
    /// shutting down (the lease is released either way).
    fn should_stop(&self) -> Option<String> {
        if self.stop.as_ref().is_some_and(|s| *s.borrow()) {
            return Some("prpr is shutting down".into());
        }
        self.client.rate_low(self.cfg.rate_floor)
    }

    /// An organization's (or else a user's) repositories, archived ones left out.
    async fn owner_repos(&self, owner: &str) -> Result<Vec<String>, GitHubError> {
        let who = As::Account(owner.to_string());
        let items: Vec<RepoItem> = match self
            .client
            .all(
                &format!("/orgs/{owner}/repos?per_page=100"),
                &who,
                MAX_PAGES,
            )
            .await
        {
            Err(GitHubError::NotFound { .. }) => {
                self.client
                    .all(
                        &format!("/users/{owner}/repos?per_page=100"),
                        &who,
                        MAX_PAGES,
                    )
                    .await?
            }
            other => other?,
        };
        Ok(items
            .into_iter()
            .filter(|r| !r.archived)
            .map(|r| r.full_name)
            .collect())
    }

    /// One pass under the lease. Unless `force`d, skipped when a complete
    /// pass started less than `[reminders] resync` ago.
    pub async fn pass(&self, force: bool) -> Result<PassReport, BackfillError> {
        let now = self.clock.now_ms();
        let Some(last) = self
            .store
            .lease(JOB, &self.owner, now, now + LEASE.as_millis() as i64)
            .await?
        else {
            return Ok(PassReport {
                leased_elsewhere: true,
                ..PassReport::default()
            });
        };
        let resync = self.cfg.resync.as_millis() as i64;
        let mut report = PassReport::default();
        let result = if !force && last > 0 && now - last < resync {
            report.recent = Some(last);
            Ok(())
        } else {
            self.pass_within(now, &mut report).await
        };
        report.rate_remaining = self.client.rate_limit().remaining;
        let complete = result.is_ok() && report.recent.is_none() && report.stopped_early.is_none();
        if let Err(e) = self
            .store
            .release(JOB, &self.owner, complete.then_some(now))
            .await
        {
            tracing::warn!(error = %e, "reminders backfill: cannot release the lease; it expires by itself");
        }
        result.map(|()| report)
    }

    async fn pass_within(&self, now: i64, report: &mut PassReport) -> Result<(), BackfillError> {
        let repos = match self.repos(report).await {
            Ok(r) => r,
            Err(e) => {
                report.stopped_early = Some(e.to_string());
                return Ok(());
            }
        };
        // What prpr holds as open now, by lower-cased repository.
        let mut held: HashMap<String, Vec<Card>> = HashMap::new();
        for c in self.store.open_cards().await? {
            held.entry(c.pr.repo.to_ascii_lowercase())
                .or_default()
                .push(c);
        }
        for repo in repos {
            if let Some(why) = self.should_stop() {
                report.stopped_early = Some(why);
                break;
            }
            let held = held.remove(&repo.to_ascii_lowercase()).unwrap_or_default();
            match self.repo(&repo, &held, now, report).await {
                Ok(()) => report.repos += 1,
                Err(BackfillError::GitHub(e)) if is_limit(&e) => {
                    report.stopped_early = Some(e.to_string());
                }
                Err(BackfillError::GitHub(e)) => {
                    tracing::warn!(error = %e, repo = %repo, "reminders backfill: cannot read the repository's pull requests; skipped");
                    report.failed.push((repo.clone(), e.to_string()));
                }
                Err(e) => return Err(e),
            }
            if report.stopped_early.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// One repository: its open PRs with their reviews, then the PRs prpr
    /// holds as open that GitHub no longer lists. A rate limit met inside
    /// ends it with `stopped_early` set (and nothing closed).
    async fn repo(
        &self,
        repo: &str,
        held: &[Card],
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), BackfillError> {
        let who = As::Account(owner_of(repo).to_string());
        let mut open: HashSet<u64> = HashSet::new();
        let mut next = Some(format!("/repos/{repo}/pulls?state=open&per_page=100"));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let (prs, link) = self.client.page::<PullRequest>(&url, &who).await?;
            for pr in prs {
                if let Some(why) = self.should_stop() {
                    report.stopped_early = Some(why);
                    return Ok(());
                }
                report.prs += 1;
                open.insert(pr.number);
                let reviews: Vec<ReviewItem> = self
                    .client
                    .all(
                        &format!("/repos/{repo}/pulls/{}/reviews?per_page=100", pr.number),
                        &who,
                        MAX_PAGES,
                    )
                    .await?;
                self.write(repo, &pr, Some(&reviews), now, report).await?;
            }
            if pages >= MAX_PAGES && link.is_some() {
                // Not the whole list: nothing can be told closed.
                tracing::warn!(repo = %repo, "reminders backfill: more than {} open pull requests; the rest next pass", MAX_PAGES * 100);
                return Ok(());
            }
            next = link;
        }
        for gone in held.iter().filter(|c| !open.contains(&c.pr.number)) {
            if let Some(why) = self.should_stop() {
                report.stopped_early = Some(why);
                return Ok(());
            }
            let number = gone.pr.number;
            match self
                .client
                .get::<PullRequest>(&format!("/repos/{repo}/pulls/{number}"), &who)
                .await
            {
                // Listed on no page (the list shifted while it was read):
                // still open, its card refreshed without its reviews.
                Ok(pr) => self.write(repo, &pr, None, now, report).await?,
                // Gone from GitHub altogether (a repository transferred):
                // out of the picture.
                Err(GitHubError::NotFound { .. }) => {
                    let closed = Card {
                        status: PrStatus::Closed,
                        ..gone.clone()
                    };
                    let changed = self
                        .store
                        .merge_card(&gone.pr.repo, number, now, |_| Some(closed.clone()))
                        .await?;
                    self.tally(closed, changed, false, report);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes one PR's card through the store, merging with what is stored.
    async fn write(
        &self,
        repo: &str,
        pr: &PullRequest,
        reviews: Option<&[ReviewItem]>,
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), BackfillError> {
        // The PR's own link spells the repository as GitHub does, so the
        // row is the one events write.
        let repo = parse_pr_url(&pr.html_url)
            .map(|(r, _)| r)
            .filter(|r| r.eq_ignore_ascii_case(repo))
            .unwrap_or_else(|| repo.to_string());
        let mut seen: Option<Card> = None;
        let mut kept = false;
        let changed = self
            .store
            .merge_card(&repo, pr.number, now, |prev| {
                let fresh = card::from_rest(pr, reviews, &repo, prev);
                seen = Some(fresh.clone());
                let merged = card::merge_rest(prev, fresh);
                kept = merged.is_none();
                merged
            })
            .await?;
        if let Some(card) = seen {
            self.tally(card, changed, kept, report);
        }
        Ok(())
    }

    fn tally(&self, card: Card, changed: bool, kept: bool, report: &mut PassReport) {
        let outcome = match (changed, kept) {
            (_, true) => Outcome::KeptNewer,
            (true, _) => Outcome::Updated,
            (false, _) => Outcome::Unchanged,
        };
        if outcome == Outcome::Updated {
            report.updated += 1;
            if matches!(card.status, PrStatus::Merged | PrStatus::Closed) {
                report.closed += 1;
            }
        }
        report.found.push(Found { card, outcome });
    }

    /// Runs a pass now and every `[reminders] resync` (only now when it is
    /// zero), until `stop`.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.stop = Some(stop.clone());
        let mut force = true;
        loop {
            let mut wait = self.cfg.resync;
            match self.pass(force).await {
                Ok(r) if r.leased_elsewhere => {
                    // Another task's pass, or a crashed task's lease: try
                    // again when it has surely expired.
                    tracing::debug!("reminders backfill: another task holds the lease");
                    wait = LEASE;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    continue;
                }
                Ok(PassReport {
                    recent: Some(last), ..
                }) => {
                    // Another task's pass: the next one is due a resync after it.
                    let since = Duration::from_millis((self.clock.now_ms() - last).max(0) as u64);
                    wait = self
                        .cfg
                        .resync
                        .saturating_sub(since)
                        .max(Duration::from_secs(60));
                }
                Ok(r) => tracing::info!(
                    repos = r.repos,
                    prs = r.prs,
                    updated = r.updated,
                    closed = r.closed,
                    failed = r.failed.len(),
                    rate_remaining = r.rate_remaining,
                    stopped_early = r.stopped_early.as_deref(),
                    "reminders backfill pass"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "reminders backfill pass failed; trying again next resync")
                }
            }
            force = false;
            if self.cfg.resync.is_zero() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
