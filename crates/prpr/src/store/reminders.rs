//! What reminders need from the store: the open cards, claiming a schedule
//! slot (exactly once across tasks), people's settings and snoozes, and the
//! outbox rows quiet hours hold.

use sqlx::Row;

use super::{Dialect, Pool, Store, StoreError, pr_state_for_update, with_pool, write_pr_state};
use crate::notice::{Card, Notification, PrState, PrStatus};
use crate::reminders::prefs::{Quiet, RemindPref, UserPrefs};

/// Marks outbox rows held by the recipient's quiet hours (`last_error`):
/// the sender sends them as one summary when quiet hours end.
pub const HELD: &str = "held: quiet hours";

/// One slot of a schedule: its name, local date and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotKey {
    pub schedule: String,
    /// `YYYY-MM-DD` in the schedule's zone.
    pub date: String,
    /// `HH:MM`.
    pub time: String,
    pub due_at: i64,
}

impl SlotKey {
    /// The outbox's `delivery_id` for what the slot queued.
    pub fn id(&self) -> String {
        format!("reminder:{}:{}T{}", self.schedule, self.date, self.time)
    }
}

/// A held outbox row, for the quiet-hours summary.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldRow {
    pub id: i64,
    pub payload: String,
}

/// The columns of `user_prefs` a command sets.
#[derive(Clone, Copy)]
enum Pref {
    Quiet,
    Remind,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// One outbox row for a notification, as [`Store::record`] writes them.
/// A macro, like `with_pool!`, so the same code serves both backends'
/// transactions.
macro_rules! insert_notification {
    ($tx:expr, $delivery:expr, $n:expr, $now:expr) => {{
        let n: &Notification = $n;
        let message = serde_json::to_string(
            &serde_json::json!({"address": n.address, "notice": n.notice, "place": n.place}),
        )
        .map_err(corrupt)?;
        let id: i64 = sqlx::query(
            "INSERT INTO outbox (delivery_id, channel, kind, message, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) RETURNING id",
        )
        .bind($delivery)
        .bind(n.channel.as_str())
        .bind(n.kind().as_str())
        .bind(message)
        .bind($now)
        .fetch_one(&mut *$tx)
        .await?
        .try_get("id")?;
        id
    }};
}

impl Store {
    /// Every open or draft PR's card. Rows that do not parse are skipped
    /// with a warning: one damaged row must not silence every reminder.
    pub async fn open_cards(&self) -> Result<Vec<Card>, StoreError> {
        let rows: Vec<String> = with_pool!(self, p => {
            sqlx::query(
                "SELECT state FROM pr_state WHERE state LIKE '%\"status\":\"open\"%' OR state LIKE '%\"status\":\"draft\"%'",
            )
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("state"))
            .collect::<Result<_, _>>()?
        });
        let mut cards = Vec::with_capacity(rows.len());
        for json in rows {
            match serde_json::from_str::<PrState>(&json) {
                Ok(PrState { card: Some(c), .. })
                    if matches!(c.status, PrStatus::Open | PrStatus::Draft) =>
                {
                    cards.push(c)
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "a pr_state row does not parse; left out of reminders")
                }
            }
        }
        Ok(cards)
    }

    /// Rewrites one PR's card with `merge(stored card)`, keeping the rest
    /// of its stored state (announced requests, threads, carded channels):
    /// the REST backfill's write. `merge` returns `None` to leave the row as
    /// it is (an event newer than the backfill's snapshot). The row is read
    /// and written in one transaction (locked on PostgreSQL), so a delivery
    /// for the same PR applies before or after, never in between. Nothing is
    /// queued: a backfill refreshes the picture, it tells nobody. True when
    /// the card changed.
    pub async fn merge_card(
        &self,
        repo: &str,
        number: u64,
        now_ms: i64,
        merge: impl FnOnce(Option<&Card>) -> Option<Card>,
    ) -> Result<bool, StoreError> {
        self.check_file()?;
        let _guard = self.write_guard().await;
        let dialect = self.dialect;
        let number = number as i64;
        with_pool!(self, p => {
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            let mut state = pr_state_for_update!(tx, dialect, repo, number, now_ms);
            let Some(card) = merge(state.card.as_ref()) else {
                tx.rollback().await?;
                return Ok(false);
            };
            if state.card.as_ref() == Some(&card) {
                tx.rollback().await?;
                return Ok(false);
            }
            state.card = Some(card);
            let json = serde_json::to_string(&state).map_err(corrupt)?;
            write_pr_state!(tx, repo, number, json, now_ms);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Has this slot been claimed (by any task)?
    pub async fn slot_taken(&self, key: &SlotKey) -> Result<bool, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT 1 AS one FROM reminder_slots WHERE schedule = $1 AND local_date = $2 AND local_time = $3")
                .bind(&key.schedule)
                .bind(&key.date)
                .bind(&key.time)
                .fetch_optional(p)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Claims a slot and queues its messages, in one transaction: the
    /// primary key lets exactly one task (of however many share the
    /// database) insert the row, and only that task's messages are
    /// committed. False when the slot was already claimed.
    pub async fn claim_slot(
        &self,
        key: &SlotKey,
        outcome: &str,
        now_ms: i64,
        notifications: &[Notification],
    ) -> Result<bool, StoreError> {
        self.check_file()?;
        let _guard = self.write_guard().await;
        let dialect = self.dialect;
        let delivery = key.id();
        with_pool!(self, p => {
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            let inserted = sqlx::query(
                "INSERT INTO reminder_slots (schedule, local_date, local_time, due_at, outcome, fired_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (schedule, local_date, local_time) DO NOTHING",
            )
            .bind(&key.schedule)
            .bind(&key.date)
            .bind(&key.time)
            .bind(key.due_at)
            .bind(outcome)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            for n in notifications {
                insert_notification!(tx, delivery.as_str(), n, now_ms);
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Queues reminder messages outside any slot (`prpr reminders send`).
    pub async fn enqueue(
        &self,
        delivery_id: &str,
        notifications: &[Notification],
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.check_file()?;
        let _guard = self.write_guard().await;
        let dialect = self.dialect;
        with_pool!(self, p => {
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            let mut ids = Vec::new();
            for n in notifications {
                ids.push(insert_notification!(tx, delivery_id, n, now_ms));
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// How many slots were claimed, per outcome (for tests and diagnostics).
    pub async fn slot_outcomes(
        &self,
        schedule: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT local_date, local_time, outcome FROM reminder_slots WHERE schedule = $1 ORDER BY due_at")
                .bind(schedule)
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("local_date")?, r.try_get("local_time")?, r.try_get("outcome")?)))
                .collect()
        })
    }

    /// A person's settings; default when they never set any.
    pub async fn user_prefs(&self, user_id: &str) -> Result<UserPrefs, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT quiet, remind FROM user_prefs WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(p)
                .await?;
            match row {
                None => Ok(UserPrefs::default()),
                Some(r) => prefs_of(r.try_get("quiet")?, r.try_get("remind")?),
            }
        })
    }

    /// Everyone's settings (the scheduler's personal reminders).
    pub async fn all_user_prefs(&self) -> Result<Vec<(String, UserPrefs)>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT user_id, quiet, remind FROM user_prefs ORDER BY user_id")
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("user_id")?, prefs_of(r.try_get("quiet")?, r.try_get("remind")?)?)))
                .collect()
        })
    }

    /// Sets (or with `None` clears) a person's quiet hours.
    pub async fn set_quiet(
        &self,
        user_id: &str,
        quiet: Option<&Quiet>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let json = quiet
            .map(serde_json::to_string)
            .transpose()
            .map_err(corrupt)?;
        self.set_pref(user_id, Pref::Quiet, json, now_ms).await
    }

    /// Sets a person's reminder (`None`: back to the config's default).
    pub async fn set_remind(
        &self,
        user_id: &str,
        remind: Option<&RemindPref>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let json = remind
            .map(serde_json::to_string)
            .transpose()
            .map_err(corrupt)?;
        self.set_pref(user_id, Pref::Remind, json, now_ms).await
    }

    async fn set_pref(
        &self,
        user_id: &str,
        column: Pref,
        json: Option<String>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let sql = match column {
            Pref::Quiet => {
                "INSERT INTO user_prefs (user_id, quiet, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET quiet = excluded.quiet, updated_at = excluded.updated_at"
            }
            Pref::Remind => {
                "INSERT INTO user_prefs (user_id, remind, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET remind = excluded.remind, updated_at = excluded.updated_at"
            }
        };
        let _guard = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query(sql).bind(user_id).bind(json).bind(now_ms).execute(p).await?;
            Ok(())
        })
    }

    /// No reminders about `repo#number` for `user_id` until `until_ms`.
    pub async fn snooze(
        &self,
        user_id: &str,
        repo: &str,
        number: u64,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO snoozes (user_id, repo, number, until_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, repo, number) DO UPDATE SET until_at = excluded.until_at",
            )
            .bind(user_id)
            .bind(repo.to_lowercase())
            .bind(number as i64)
            .bind(until_ms)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// Snoozes in force at `now_ms`: `(user, lower-cased repo, number)`.
    pub async fn snoozes(
        &self,
        now_ms: i64,
    ) -> Result<crate::reminders::digest::Snoozes, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT user_id, repo, number FROM snoozes WHERE until_at > $1")
                .bind(now_ms)
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    let n: i64 = r.try_get("number")?;
                    Ok((r.try_get("user_id")?, r.try_get("repo")?, n as u64))
                })
                .collect()
        })
    }

    /// Holds a DM channel's messages until `until_ms`: its head waits until
    /// then (not counted as an attempt), and every pending row is marked
    /// [`HELD`] so they go out together as one summary.
    pub async fn hold_channel(
        &self,
        head_id: i64,
        channel: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE outbox SET last_error = $1 WHERE channel = $2 AND status = 'pending'")
                .bind(HELD)
                .bind(channel)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE outbox SET next_attempt_at = $1, lease_until = NULL WHERE id = $2 AND status = 'pending'")
                .bind(until_ms)
                .bind(head_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether this row is held by quiet hours.
    pub async fn is_held(&self, id: i64) -> Result<bool, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT last_error FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?;
            Ok(match row {
                Some(r) => r.try_get::<Option<String>, _>("last_error")?.as_deref() == Some(HELD),
                None => false,
            })
        })
    }

    /// A DM channel's pending rows, oldest first, at most `limit`: what a
    /// quiet-hours summary holds.
    pub async fn pending_in(&self, channel: &str, limit: i64) -> Result<Vec<HeldRow>, StoreError> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT id, message FROM outbox WHERE channel = $1 AND status = 'pending' ORDER BY id LIMIT $2")
                .bind(channel)
                .bind(limit)
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| Ok(HeldRow { id: r.try_get("id")?, payload: r.try_get("message")? }))
                .collect()
        })
    }

    /// Marks pending rows of `channel` held (the rest of a long summary).
    pub async fn mark_held(&self, channel: &str) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query("UPDATE outbox SET last_error = $1 WHERE channel = $2 AND status = 'pending'")
                .bind(HELD)
                .bind(channel)
                .execute(p)
                .await?;
            Ok(())
        })
    }
}

fn prefs_of(quiet: Option<String>, remind: Option<String>) -> Result<UserPrefs, StoreError> {
    Ok(UserPrefs {
        quiet: quiet
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(corrupt)?,
        remind: remind
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(corrupt)?,
    })
}
