//! Team expansions: team review requests waiting to be passed on to the
//! team's members (see [`crate::rules::team_expansion`]).
//!
//! Rows are written by [`Store::record`] in the transaction that records the
//! delivery, due after the debounce. The team expander
//! ([`crate::outbox::teams`]) claims a due row with a lease (a
//! compare-and-set `UPDATE`, as the outbox does), so several prpr tasks on
//! one PostgreSQL database never expand one row at once, reads the members
//! from GitHub, and then [`Store::finish_expansion`] decides from the PR's
//! state as it is at that moment, queues the notices and marks the row done
//! in one transaction: a crash re-does an expansion whole or not at all,
//! and a task whose lease ran out cannot finish a row another task took.

use serde::Serialize;
use sqlx::Row;

use super::{Dialect, Pool, Store, StoreError, apply_decision, pr_state_for_update, with_pool};
use crate::notice::{Decision, Place, PrState, TeamExpansion};

/// A due expansion, as the expander needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueExpansion {
    pub id: i64,
    pub delivery_id: String,
    pub repo: String,
    pub number: u64,
    pub expansion: TeamExpansion,
    /// Failed member lookups so far.
    pub attempts: i64,
}

/// A row as diagnostics and tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpansionRow {
    pub id: i64,
    pub repo: String,
    pub number: u64,
    /// `org/slug`, lower-cased.
    pub team: String,
    /// `pending` or `done`.
    pub status: String,
    pub attempts: i64,
    pub due_at: i64,
    /// What was done (`queued 2`, or why nothing was).
    pub outcome: Option<String>,
    pub last_error: Option<String>,
}

impl Store {
    /// Pending expansions due at `now_ms` and not leased, oldest due first,
    /// at most `limit`.
    pub async fn due_expansions(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueExpansion>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, delivery_id, repo, number, expansion, attempts FROM team_expansions \
                 WHERE status = 'pending' AND due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
                 ORDER BY due_at, id LIMIT $2",
            )
            .bind(now_ms)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    let id: i64 = r.try_get("id")?;
                    let json: String = r.try_get("expansion")?;
                    let expansion = serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("team_expansions {id}: {e}")))?;
                    Ok(DueExpansion {
                        id,
                        delivery_id: r.try_get("delivery_id")?,
                        repo: r.try_get("repo")?,
                        number: r.try_get::<i64, _>("number")? as u64,
                        expansion,
                        attempts: r.try_get("attempts")?,
                    })
                })
                .collect()
        })
    }

    /// When the next pending expansion falls due (or its lease ends), if any.
    pub async fn next_expansion_at(&self) -> Result<Option<i64>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query(
                "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > due_at THEN lease_until ELSE due_at END) AS at \
                 FROM team_expansions WHERE status = 'pending'",
            )
            .fetch_one(p)
            .await?;
            Ok(row.try_get("at")?)
        })
    }

    /// Reserves expansion `id` for `owner` until `lease_until`; `false` when
    /// another task holds it or it is done.
    pub async fn claim_expansion(
        &self,
        id: i64,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            let n = sqlx::query(
                "UPDATE team_expansions SET lease_owner = $1, lease_until = $2 \
                 WHERE id = $3 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $4)",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(id)
            .bind(now_ms)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// The member lookup failed: try again at `retry_at` (the lease is
    /// given back).
    pub async fn expansion_failed(
        &self,
        id: i64,
        owner: &str,
        retry_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query(
                "UPDATE team_expansions SET attempts = attempts + 1, due_at = $1, last_error = $2, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE id = $3 AND status = 'pending' AND lease_owner = $4",
            )
            .bind(retry_at)
            .bind(error)
            .bind(id)
            .bind(owner)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// Finishes expansion `row` under `owner`'s lease, atomically: reads the
    /// PR's state (locked, as [`Store::record`] does), lets the pure
    /// `decide` say what to queue, queues it as intake would and marks the
    /// row done. `None` when the row is no longer this task's to finish
    /// (done by another, or its lease taken over): nothing was written.
    pub async fn finish_expansion(
        &self,
        row: &DueExpansion,
        owner: &str,
        now_ms: i64,
        decide: impl FnOnce(&PrState) -> Decision,
    ) -> Result<Option<(Vec<i64>, Decision)>, StoreError> {
        self.check_file()?;
        let _guard = self.write_guard().await;
        let dialect = self.dialect;
        let result: Result<_, StoreError> = async { with_pool!(self, p => {
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            // The PR's row first, then the expansion's: the order intake
            // takes them in, so the two never wait on each other.
            let number = row.number as i64;
            let state = pr_state_for_update!(tx, dialect, row.repo.as_str(), number, now_ms);
            let decision = decide(&state);
            let outcome = if decision.notifications.is_empty() {
                decision.skipped.join("; ")
            } else {
                format!("queued {}", decision.notifications.len())
            };
            let mine = sqlx::query(
                "UPDATE team_expansions SET status = 'done', done_at = $1, outcome = $2, lease_until = NULL \
                 WHERE id = $3 AND status = 'pending' AND lease_owner = $4",
            )
            .bind(now_ms)
            .bind(outcome)
            .bind(row.id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if mine == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let queued = apply_decision!(tx, row.delivery_id.as_str(), Some((row.repo.as_str(), number)), &decision, now_ms);
            tx.commit().await?;
            Ok(Some((queued, decision)))
        }) }
        .await;
        self.after_write_error(&result);
        result
    }

    /// Every expansion of `repo#number`, oldest first (tests, diagnostics).
    pub async fn expansions(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Vec<ExpansionRow>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, repo, number, team, status, attempts, due_at, outcome, last_error \
                 FROM team_expansions WHERE repo = $1 AND number = $2 ORDER BY id",
            )
            .bind(repo)
            .bind(number as i64)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ExpansionRow {
                        id: r.try_get("id")?,
                        repo: r.try_get("repo")?,
                        number: r.try_get::<i64, _>("number")? as u64,
                        team: r.try_get("team")?,
                        status: r.try_get("status")?,
                        attempts: r.try_get("attempts")?,
                        due_at: r.try_get("due_at")?,
                        outcome: r.try_get("outcome")?,
                        last_error: r.try_get("last_error")?,
                    })
                })
                .collect()
        })
    }
}
