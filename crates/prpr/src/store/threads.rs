//! The thread map: for each (channel, pull request), where its root card is
//! in Slack and how current Slack's copy of it is.
//!
//! Rows are created by [`Store::record`] in the transaction that queues the
//! first notice about a PR in a channel (with the root's own outbox row ahead
//! of it). The sender fills in `root_ts` when the root is posted; the thread
//! updater ([`crate::outbox::threads`]) brings roots up to date. The card
//! shown is always read from the PR's state at the moment of rendering, so a
//! root is never updated to anything but the latest state.

use sqlx::Row;

use super::{Pool, Store, StoreError, with_pool};
use crate::notice::{Card, PrState};

/// A thread's root as the sender needs it to post it or reply under it.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRoot {
    pub root_ts: Option<String>,
    /// The card revision `card` is.
    pub want_rev: i64,
    /// Reactions the root carries now.
    pub reactions: Vec<String>,
    /// The PR's card (none for a PR prpr knows nothing about).
    pub card: Option<Card>,
}

/// A root whose card changed since Slack last showed it, and may be updated now.
#[derive(Debug, Clone, PartialEq)]
pub struct DueUpdate {
    pub channel: String,
    pub repo: String,
    pub number: u64,
    pub root_ts: String,
    pub want_rev: i64,
    pub reactions: Vec<String>,
    pub attempts: i64,
    pub card: Option<Card>,
}

fn card_of(json: Option<String>) -> Result<Option<Card>, StoreError> {
    match json {
        None => Ok(None),
        Some(j) => serde_json::from_str::<PrState>(&j)
            .map(|s| s.card)
            .map_err(|e| StoreError::Corrupt(format!("pr_state: {e}"))),
    }
}

fn reactions_of(json: &str) -> Vec<String> {
    // A damaged list only costs a reaction re-added (Slack: already_reacted).
    serde_json::from_str(json).unwrap_or_default()
}

fn reactions_json(r: &[String]) -> String {
    serde_json::to_string(r).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// The root of `repo#number`'s thread in `channel`, with the current card.
    pub async fn thread_root(
        &self,
        channel: &str,
        repo: &str,
        number: u64,
    ) -> Result<Option<ThreadRoot>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query(
                "SELECT t.root_ts, t.want_rev, t.reactions, s.state FROM threads t \
                 LEFT JOIN pr_state s ON s.repo = t.repo AND s.number = t.number \
                 WHERE t.channel = $1 AND t.repo = $2 AND t.number = $3",
            )
            .bind(channel)
            .bind(repo)
            .bind(number as i64)
            .fetch_optional(p)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some(ThreadRoot {
                    root_ts: r.try_get("root_ts")?,
                    want_rev: r.try_get("want_rev")?,
                    reactions: reactions_of(&r.try_get::<String, _>("reactions")?),
                    card: card_of(r.try_get("state")?)?,
                })),
            }
        })
    }

    /// A posted thread of `repo#number` in some channel: `(channel, root ts)`,
    /// for a DM to link to the discussion.
    pub async fn thread_of(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Option<(String, String)>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query(
                "SELECT channel, root_ts FROM threads WHERE repo = $1 AND number = $2 AND root_ts IS NOT NULL \
                 ORDER BY created_at, channel LIMIT 1",
            )
            .bind(repo)
            .bind(number as i64)
            .fetch_optional(p)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some((r.try_get("channel")?, r.try_get("root_ts")?))),
            }
        })
    }

    /// Records a posted (or re-posted) root: Slack's `ts`, the card revision
    /// it shows and its reactions; the next update waits until `due_at`.
    /// With `outbox_id`, the root's outbox row is marked sent in the same
    /// transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_root(
        &self,
        outbox_id: Option<i64>,
        now_ms: i64,
        channel: &str,
        repo: &str,
        number: u64,
        ts: Option<&str>,
        rev: i64,
        due_at: i64,
        reactions: &[String],
    ) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            if let Some(id) = outbox_id {
                sqlx::query(super::outbox::MARK_SENT)
                .bind(now_ms)
                .bind(ts)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE threads SET root_ts = $1, shown_rev = CASE WHEN shown_rev < $2 THEN $2 ELSE shown_rev END, \
                 update_due_at = $3, update_attempts = 0, lease_until = NULL, last_error = NULL, reactions = $4 \
                 WHERE channel = $5 AND repo = $6 AND number = $7",
            )
            .bind(ts)
            .bind(rev)
            .bind(due_at)
            .bind(reactions_json(reactions))
            .bind(channel)
            .bind(repo)
            .bind(number as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Roots to update now, most overdue first, at most `limit`.
    pub async fn due_updates(&self, now_ms: i64, limit: i64) -> Result<Vec<DueUpdate>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT t.channel, t.repo, t.number, t.root_ts, t.want_rev, t.reactions, t.update_attempts, s.state \
                 FROM threads t LEFT JOIN pr_state s ON s.repo = t.repo AND s.number = t.number \
                 WHERE t.root_ts IS NOT NULL AND t.want_rev > t.shown_rev AND t.update_due_at <= $1 \
                 AND (t.lease_until IS NULL OR t.lease_until <= $1) \
                 ORDER BY t.update_due_at LIMIT $2",
            )
            .bind(now_ms)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.into_iter()
                .map(|r| {
                    Ok(DueUpdate {
                        channel: r.try_get("channel")?,
                        repo: r.try_get("repo")?,
                        number: r.try_get::<i64, _>("number")? as u64,
                        root_ts: r.try_get("root_ts")?,
                        want_rev: r.try_get("want_rev")?,
                        reactions: reactions_of(&r.try_get::<String, _>("reactions")?),
                        attempts: r.try_get("update_attempts")?,
                        card: card_of(r.try_get("state")?)?,
                    })
                })
                .collect()
        })
    }

    /// When the next root update falls due, if any is waiting.
    pub async fn next_update_at(&self) -> Result<Option<i64>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query(
                "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > update_due_at THEN lease_until ELSE update_due_at END) AS at \
                 FROM threads WHERE root_ts IS NOT NULL AND want_rev > shown_rev",
            )
            .fetch_one(p)
            .await?;
            Ok(row.try_get("at")?)
        })
    }

    /// Reserves a root's update for this process until `lease_until`, so
    /// several prpr tasks never update one root at once.
    pub async fn claim_update(
        &self,
        channel: &str,
        repo: &str,
        number: u64,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            let n = sqlx::query(
                "UPDATE threads SET lease_until = $1 WHERE channel = $2 AND repo = $3 AND number = $4 \
                 AND (lease_until IS NULL OR lease_until <= $5)",
            )
            .bind(lease_until)
            .bind(channel)
            .bind(repo)
            .bind(number as i64)
            .bind(now_ms)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// A failed update: try again at `retry_at`. With `give_up_rev`, the
    /// update is abandoned (max attempts): that revision counts as shown, and
    /// the next change to the PR tries again.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_failed(
        &self,
        channel: &str,
        repo: &str,
        number: u64,
        retry_at: i64,
        counted: bool,
        error: &str,
        give_up_rev: Option<i64>,
    ) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query(
                "UPDATE threads SET update_due_at = $1, update_attempts = CASE WHEN $2 THEN 0 ELSE update_attempts + $3 END, \
                 last_error = $4, lease_until = NULL, \
                 shown_rev = CASE WHEN $2 AND shown_rev < $5 THEN $5 ELSE shown_rev END \
                 WHERE channel = $6 AND repo = $7 AND number = $8",
            )
            .bind(retry_at)
            .bind(give_up_rev.is_some())
            .bind(i64::from(counted))
            .bind(error)
            .bind(give_up_rev.unwrap_or(0))
            .bind(channel)
            .bind(repo)
            .bind(number as i64)
            .execute(p)
            .await?;
            Ok(())
        })
    }
}
