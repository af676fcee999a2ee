//! The thread updater: keeps each PR's root card current in Slack.
//!
//! When a PR changes (a reviewer requested or removed, a review, draft or
//! ready, a new title, merged, closed, reopened) its card changes, and the
//! store bumps the revision every thread of that PR wants to show. This task
//! finds roots whose revision Slack does not show yet and replaces them with
//! `chat.update`: at most one update per root per `update_interval` (changes
//! in quick succession become one update, always rendered from the latest
//! state, so an update is never lost behind a newer one, only replaced by
//! it), paced across the workspace within Slack's `chat.update` limit, and
//! retried with backoff when Slack fails. A root someone deleted in Slack is
//! posted again and the thread map follows it.

use std::time::Duration;

use tokio::sync::watch;

use super::backoff;
use super::ratelimit::ChannelLimiter;
use super::sender::SenderOptions;
use crate::clock::Clock;
use crate::notice::Card;
use crate::slack::render;
use crate::slack::{Publisher, SendError};
use crate::store::{DueUpdate, Store};

/// Slack's `chat.update` is a Tier 3 method: about 50 calls a minute per
/// workspace. Updates are paced below that, with a small burst.
const UPDATES_PER_SEC: f64 = 45.0 / 60.0;
const UPDATE_BURST: u32 = 5;
/// The limiter key (one bucket for the whole workspace).
const WORKSPACE: &str = "chat.update";
/// Roots looked at per pass.
const BATCH: i64 = 50;
/// Longest wait between passes when nothing is known to be due (another
/// prpr task may have changed a card).
const POLL: Duration = Duration::from_secs(1);

pub struct ThreadUpdater {
    store: std::sync::Arc<Store>,
    publisher: std::sync::Arc<Publisher>,
    opts: SenderOptions,
    clock: Clock,
    limiter: ChannelLimiter,
}

impl super::Passes for ThreadUpdater {
    fn next_pass(&mut self) -> impl Future<Output = Duration> + Send {
        ThreadUpdater::pass(self)
    }
}

impl ThreadUpdater {
    pub fn new(
        store: std::sync::Arc<Store>,
        publisher: std::sync::Arc<Publisher>,
        opts: SenderOptions,
        clock: Clock,
    ) -> ThreadUpdater {
        ThreadUpdater {
            store,
            publisher,
            opts,
            clock,
            limiter: ChannelLimiter::new(UPDATES_PER_SEC, UPDATE_BURST),
        }
    }

    /// Runs until `shutdown` turns true; an update in progress finishes first.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        super::passes(self, shutdown).await;
    }

    /// Updates what is due; returns how long to wait before the next pass.
    pub async fn pass(&mut self) -> Duration {
        let now = self.clock.now_ms();
        let due = match self.store.due_updates(now, BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "thread updates: store unavailable; will retry");
                return POLL;
            }
        };
        for u in due {
            if let Err(at) = self.limiter.try_acquire(WORKSPACE, self.clock.instant()) {
                return at.saturating_duration_since(self.clock.instant()).min(POLL);
            }
            let lease_until = self.clock.now_ms() + self.opts.lease.as_millis() as i64;
            match self
                .store
                .claim_update(
                    &u.channel,
                    &u.repo,
                    u.number,
                    self.clock.now_ms(),
                    lease_until,
                )
                .await
            {
                Ok(true) => self.update(u).await,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "thread updates: claim failed"),
            }
        }
        let next = self.store.next_update_at().await.ok().flatten();
        super::wait_until(next, self.clock.now_ms(), POLL)
    }

    async fn update(&mut self, u: DueUpdate) {
        let (channel, repo, number) = (u.channel.as_str(), u.repo.as_str(), u.number);
        let interval = self.opts.update_interval.as_millis() as i64;
        let Some(card) = &u.card else {
            let _ = self
                .store
                .update_failed(
                    channel,
                    repo,
                    number,
                    self.clock.now_ms() + interval,
                    false,
                    "no card",
                    Some(u.want_rev),
                )
                .await;
            return;
        };
        let result = self
            .publisher
            .update(channel, &u.root_ts, &render::card(card))
            .await;
        let now = self.clock.now_ms();
        let recorded = match result {
            Ok(()) => {
                let reactions = if self.opts.reactions {
                    sync_reactions(&self.publisher, channel, &u.root_ts, &u.reactions, card).await
                } else {
                    u.reactions.clone()
                };
                tracing::info!(
                    channel,
                    repo,
                    number,
                    rev = u.want_rev,
                    "thread root updated"
                );
                self.store
                    .set_root(
                        None,
                        now,
                        channel,
                        repo,
                        number,
                        Some(&u.root_ts),
                        u.want_rev,
                        now + interval,
                        &reactions,
                    )
                    .await
            }
            Err(SendError::Gone(why)) => {
                tracing::warn!(channel, repo, number, error = %why, "the thread's root was deleted in Slack: posting it again");
                match repost_root(
                    &self.store,
                    &self.publisher,
                    &self.opts,
                    &self.clock,
                    channel,
                    repo,
                    number,
                )
                .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => self.failed(&u, e).await,
                }
            }
            Err(e) => self.failed(&u, e).await,
        };
        if let Err(e) = recorded {
            tracing::warn!(channel, repo, number, error = %e, "could not record a thread update; it is retried when its lease ends");
        }
    }

    /// Schedules the next attempt after a failed update, or gives it up.
    async fn failed(
        &mut self,
        u: &DueUpdate,
        e: SendError,
    ) -> Result<(), crate::store::StoreError> {
        let (channel, repo, number) = (u.channel.as_str(), u.repo.as_str(), u.number);
        let now = self.clock.now_ms();
        let attempt = u.attempts as u32 + 1;
        match e {
            SendError::RateLimited(wait) => {
                self.limiter.block(WORKSPACE, self.clock.instant() + wait);
                self.store
                    .update_failed(
                        channel,
                        repo,
                        number,
                        now + wait.as_millis() as i64,
                        false,
                        "rate limited",
                        None,
                    )
                    .await
            }
            SendError::Transient(why) if attempt < self.opts.max_attempts => {
                let wait = backoff::delay(attempt, self.opts.retry_initial, self.opts.retry_max);
                tracing::warn!(channel, repo, number, attempt, error = %why, retry_in_ms = wait.as_millis() as u64, "thread root update failed");
                self.store
                    .update_failed(
                        channel,
                        repo,
                        number,
                        now + wait.as_millis() as i64,
                        true,
                        &why,
                        None,
                    )
                    .await
            }
            SendError::Transient(why) | SendError::Permanent(why) | SendError::Gone(why) => {
                tracing::error!(channel, repo, number, attempt, error = %why, "thread root update given up; the next change to the PR tries again");
                let next = now + self.opts.update_interval.as_millis() as i64;
                self.store
                    .update_failed(channel, repo, number, next, true, &why, Some(u.want_rev))
                    .await
            }
        }
    }
}

/// A store failure met while sending: worth retrying, like a network error.
pub(super) fn store_unavailable(e: crate::store::StoreError) -> SendError {
    SendError::Transient(format!("store: {e}"))
}

/// Posts a thread's root again (it was deleted in Slack) and records its
/// new `ts`; returns it.
pub async fn repost_root(
    store: &Store,
    publisher: &Publisher,
    opts: &SenderOptions,
    clock: &Clock,
    channel: &str,
    repo: &str,
    number: u64,
) -> Result<String, SendError> {
    let unavailable = store_unavailable;
    let thread = store
        .thread_root(channel, repo, number)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| SendError::Permanent(format!("no thread for {repo}#{number}")))?;
    let card = thread
        .card
        .ok_or_else(|| SendError::Permanent(format!("nothing known about {repo}#{number}")))?;
    let posted = publisher.post(channel, &render::card(&card)).await?;
    let ts = posted
        .ts
        .ok_or_else(|| SendError::Permanent("Slack returned no ts for the root".into()))?;
    let reactions = if opts.reactions {
        sync_reactions(publisher, channel, &ts, &[], &card).await
    } else {
        Vec::new()
    };
    let now = clock.now_ms();
    store
        .set_root(
            None,
            now,
            channel,
            repo,
            number,
            Some(&ts),
            thread.want_rev,
            now + opts.update_interval.as_millis() as i64,
            &reactions,
        )
        .await
        .map_err(unavailable)?;
    Ok(ts)
}

/// Brings the root's reactions from `shown` to what `card` calls for;
/// returns what it carries afterwards (a failed call leaves that reaction as
/// it was, for the next update to retry).
pub async fn sync_reactions(
    publisher: &Publisher,
    channel: &str,
    ts: &str,
    shown: &[String],
    card: &Card,
) -> Vec<String> {
    let want = card.reactions();
    let mut now: Vec<String> = shown.to_vec();
    for name in shown {
        if !want.contains(name.as_str()) {
            match publisher.react(channel, ts, name, false).await {
                Ok(()) => now.retain(|n| n != name),
                Err(e) => {
                    tracing::warn!(channel, reaction = %name, error = %e, "reactions.remove failed")
                }
            }
        }
    }
    for name in want {
        if !now.iter().any(|n| n == name) {
            match publisher.react(channel, ts, name, true).await {
                Ok(()) => now.push(name.to_string()),
                Err(e) => {
                    tracing::warn!(channel, reaction = %name, error = %e, "reactions.add failed")
                }
            }
        }
    }
    now.sort();
    now
}
