//! The outbox table: notifications waiting for Slack, sent, or dead-lettered.
//!
//! Ordering: only the oldest pending message of each channel is ever handed
//! out ("channel heads"), so messages to one person or channel arrive in the
//! order their events did, even across retries. Claiming takes a time-limited
//! lease with a compare-and-set `UPDATE`, so several prpr tasks on one
//! PostgreSQL database never send the same row at the same time, and a task
//! killed mid-send leaves a lease that simply expires.

use serde::Serialize;
use sqlx::Row;

use super::{Dialect, Pool, Store, StoreError, with_pool};

/// A message handed to the sender.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    /// What to send, as stored: a notice as JSON (see
    /// [`crate::slack::render::Stored`]). The store keeps it as data and never
    /// interprets it; the sender renders it when it sends.
    pub payload: String,
    pub attempts: i64,
    pub delivery_id: String,
}

/// A channel's oldest pending message and when it may be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub item: OutboxItem,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
}

impl Head {
    /// The earliest time it may be claimed: due, and no other sender's lease.
    pub fn ready_at(&self) -> i64 {
        self.next_attempt_at
            .max(self.lease_until.unwrap_or(i64::MIN))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Dead,
}

impl OutboxStatus {
    fn parse(s: &str) -> Result<OutboxStatus, StoreError> {
        match s {
            "pending" => Ok(OutboxStatus::Pending),
            "sent" => Ok(OutboxStatus::Sent),
            "dead" => Ok(OutboxStatus::Dead),
            other => Err(StoreError::Corrupt(format!("outbox status {other:?}"))),
        }
    }
}

/// How many messages are in each state: what "the outbox has drained"
/// means (nothing pending), for `replay`, health output and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sent: i64,
    pub dead: i64,
}

/// A row as `prpr outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub delivery_id: String,
    pub channel: String,
    pub kind: String,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub slack_ts: Option<String>,
    pub created_at: i64,
    /// The stored notice (see [`OutboxItem::payload`]); the CLI renders it.
    #[serde(skip)]
    pub payload: String,
}

/// Records a message Slack accepted (`$1` now, `$2` Slack's `ts`, `$3` the
/// row): also used when a thread's root is recorded with its `ts`.
pub(super) const MARK_SENT: &str = "UPDATE outbox SET status = 'sent', sent_at = $1, slack_ts = $2, lease_until = NULL, \
     attempts = attempts + 1, last_error = NULL WHERE id = $3";

impl Store {
    /// Channel heads: for each channel, its oldest pending message, whether
    /// due or not, oldest first, at most `limit`. One pass over the
    /// `outbox_pending (channel, id)` index finds them, however long the queue
    /// behind them is; the sender learns from the same answer what to send now
    /// and when to look again.
    pub async fn heads(&self, limit: i64) -> Result<Vec<Head>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT o.id, o.channel, o.kind, o.message, o.attempts, o.delivery_id, o.next_attempt_at, o.lease_until \
                 FROM outbox o \
                 JOIN (SELECT MIN(id) AS head FROM outbox WHERE status = 'pending' GROUP BY channel) h ON o.id = h.head \
                 ORDER BY o.id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    let id: i64 = r.try_get("id")?;
                    Ok(Head {
                        item: OutboxItem {
                            id,
                            channel: r.try_get("channel")?,
                            kind: r.try_get("kind")?,
                            payload: r.try_get("message")?,
                            attempts: r.try_get("attempts")?,
                            delivery_id: r.try_get("delivery_id")?,
                        },
                        next_attempt_at: r.try_get("next_attempt_at")?,
                        lease_until: r.try_get("lease_until")?,
                    })
                })
                .collect()
        })
    }

    /// Due channel heads: each channel's oldest pending message, if it is due
    /// and not leased. At most `limit`, oldest first.
    pub async fn due(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        Ok(self
            .heads(i64::MAX)
            .await?
            .into_iter()
            .filter(|h| h.ready_at() <= now_ms)
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|h| h.item)
            .collect())
    }

    /// When the next channel head becomes due (or its lease ends), if any.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.heads(i64::MAX).await?.iter().map(Head::ready_at).min())
    }

    /// Takes a lease on a pending message until `lease_until_ms`. False when
    /// another sender holds it or it is no longer pending.
    pub async fn claim(
        &self,
        id: i64,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            let n = sqlx::query(
                "UPDATE outbox SET lease_until = $1 \
                 WHERE id = $2 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $3)",
            )
            .bind(lease_until_ms)
            .bind(id)
            .bind(now_ms)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// [`Store::claim`] for several messages in one statement: the IDs it
    /// leased (the others are leased by another sender or no longer
    /// pending). Why: a sender draining a backlog claims dozens of channel
    /// heads per pass, and one write per head queued each behind SQLite's
    /// single writer (and the `mark_sent`s of sends in flight).
    pub async fn claim_many(
        &self,
        ids: &[i64],
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let _g = self.write_guard().await;
        let sql = match self.dialect {
            // A JSON array of the IDs: one bind for any count.
            Dialect::Sqlite => {
                "UPDATE outbox SET lease_until = $1 \
                 WHERE id IN (SELECT value FROM json_each($3)) AND status = 'pending' \
                 AND (lease_until IS NULL OR lease_until <= $2) RETURNING id"
            }
            Dialect::Postgres => {
                "UPDATE outbox SET lease_until = $1 \
                 WHERE id IN (SELECT value::bigint FROM json_array_elements_text($3::json)) AND status = 'pending' \
                 AND (lease_until IS NULL OR lease_until <= $2) RETURNING id"
            }
        };
        let list = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        with_pool!(self, p => {
            let rows = sqlx::query(sql)
                .bind(lease_until_ms)
                .bind(now_ms)
                .bind(&list)
                .fetch_all(p)
                .await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        })
    }

    /// Extends the leases of messages still claimed (lease not yet run out)
    /// to `lease_until_ms`: the sender renews its sends in progress in one
    /// statement. A lease that has run out is left alone, since another
    /// sender may hold the message now.
    pub async fn renew_leases(
        &self,
        ids: &[i64],
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let _g = self.write_guard().await;
        let sql = match self.dialect {
            Dialect::Sqlite => {
                "UPDATE outbox SET lease_until = $1 \
                 WHERE id IN (SELECT value FROM json_each($3)) AND status = 'pending' AND lease_until > $2"
            }
            Dialect::Postgres => {
                "UPDATE outbox SET lease_until = $1 \
                 WHERE id IN (SELECT value::bigint FROM json_array_elements_text($3::json)) AND status = 'pending' AND lease_until > $2"
            }
        };
        let list = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        with_pool!(self, p => {
            Ok(sqlx::query(sql)
                .bind(lease_until_ms)
                .bind(now_ms)
                .bind(&list)
                .execute(p)
                .await?
                .rows_affected())
        })
    }

    pub async fn mark_sent(
        &self,
        id: i64,
        now_ms: i64,
        ts: Option<&str>,
    ) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query(MARK_SENT)
            .bind(now_ms)
            .bind(ts)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Puts a message back for a later attempt. `counted` is false for rate
    /// limiting, which is not the message's fault and never dead-letters it.
    pub async fn reschedule(
        &self,
        id: i64,
        next_at_ms: i64,
        counted: bool,
        error: &str,
    ) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query(
                "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + $2, last_error = $3, lease_until = NULL \
                 WHERE id = $4 AND status = 'pending'",
            )
            .bind(next_at_ms)
            .bind(i64::from(counted))
            .bind(error)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Gives up on a message: it stays, with the reason, for `prpr outbox list`
    /// and `prpr outbox retry`.
    pub async fn mark_dead(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query("UPDATE outbox SET status = 'dead', last_error = $1, attempts = attempts + 1, lease_until = NULL WHERE id = $2")
                .bind(reason)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Drops every lease. Only safe when this process is the only sender, i.e.
    /// on SQLite at start-up: leases left by a killed process then do not delay
    /// its messages. PostgreSQL leases simply expire.
    pub async fn release_leases_if_sole_sender(&self) -> Result<u64, StoreError> {
        if self.dialect != Dialect::Sqlite {
            return Ok(0);
        }
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            Ok(sqlx::query("UPDATE outbox SET lease_until = NULL WHERE status = 'pending' AND lease_until IS NOT NULL")
                .execute(p)
                .await?
                .rows_affected())
        })
    }

    /// Messages per state, in one query over the `outbox_status` index.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
                .fetch_all(p)
                .await?;
            let mut counts = OutboxCounts::default();
            for r in &rows {
                let n: i64 = r.try_get("n")?;
                match OutboxStatus::parse(&r.try_get::<String, _>("status")?)? {
                    OutboxStatus::Pending => counts.pending = n,
                    OutboxStatus::Sent => counts.sent = n,
                    OutboxStatus::Dead => counts.dead = n,
                }
            }
            Ok(counts)
        })
    }

    /// Pending and dead messages (or all, with `include_sent`), oldest first.
    pub async fn list(&self, include_sent: bool, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = if include_sent {
            "SELECT * FROM outbox ORDER BY id LIMIT $1"
        } else {
            "SELECT * FROM outbox WHERE status IN ('pending', 'dead') ORDER BY id LIMIT $1"
        };
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(limit).fetch_all(p).await?;
            rows.iter()
                .map(|r| {
                    Ok(OutboxRow {
                        id: r.try_get("id")?,
                        delivery_id: r.try_get("delivery_id")?,
                        channel: r.try_get("channel")?,
                        kind: r.try_get("kind")?,
                        status: OutboxStatus::parse(&r.try_get::<String, _>("status")?)?,
                        attempts: r.try_get("attempts")?,
                        next_attempt_at: r.try_get("next_attempt_at")?,
                        last_error: r.try_get("last_error")?,
                        slack_ts: r.try_get("slack_ts")?,
                        created_at: r.try_get("created_at")?,
                        payload: r.try_get("message")?,
                    })
                })
                .collect()
        })
    }

    /// Requeues one dead (or pending) message now, with a fresh attempt count.
    /// False when there is no such message or it was already sent.
    pub async fn retry(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            let n = sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL \
                 WHERE id = $2 AND status IN ('dead', 'pending')",
            )
            .bind(now_ms)
            .bind(id)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Requeues every dead message; returns how many.
    pub async fn retry_all_dead(&self, now_ms: i64) -> Result<u64, StoreError> {
        let _g = self.write_guard().await;
        with_pool!(self, p => {
            Ok(sqlx::query("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL WHERE status = 'dead'")
                .bind(now_ms)
                .execute(p)
                .await?
                .rows_affected())
        })
    }
}
