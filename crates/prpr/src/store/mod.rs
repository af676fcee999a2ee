//! Where state lives: deliveries (dedup), PR state and the outbox.
//!
//! One interface, two backends chosen by `DATABASE_URL`: SQLite (embedded, the
//! default, WAL mode) for a single task, PostgreSQL when several tasks share
//! the work. The SQL is written once — both engines take `$1` placeholders,
//! `ON CONFLICT` and partial indexes — and the few places that differ (how a
//! write transaction starts, row locks) branch on [`Dialect`].
//!
//! The central operation is [`Store::record`]: in **one transaction** it
//! inserts the delivery ID (a redelivery stops here: duplicate), reads the PR
//! state, runs the rules, writes the new state and queues the notifications.
//! Either all of that is durable, or none of it is and GitHub gets a `503`.

mod outbox;

pub use outbox::{Head, OutboxCounts, OutboxItem, OutboxRow, OutboxStatus};

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::Mutex;

use crate::github::Subject;
use crate::notice::{Decision, PrState};

/// Which SQL engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to whichever pool this store has. The body is
/// compiled once per backend, so the same query code serves both.
macro_rules! with_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Store failures. All of them mean "not stored": intake answers `503`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The cause is part of the message, not a `source`: otherwise `{:#}`
    // chains (anyhow in the CLI) print it twice.
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("unsupported DATABASE_URL scheme (expected sqlite: or postgres://)")]
    Scheme,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

/// The delivery being recorded.
#[derive(Debug, Clone)]
pub struct DeliveryMeta<'a> {
    pub id: &'a str,
    pub event: &'a str,
    pub subject: &'a Subject,
    /// For events judged by what came before them (ECS task stops: is this a
    /// restart loop?): the earliest receipt time of earlier deliveries of the
    /// same event and subject to hand to `decide`, read inside the
    /// transaction so concurrent deliveries are judged in turn.
    pub history_since: Option<i64>,
}

/// An earlier delivery of the same event and subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub received_at: i64,
    /// It queued notifications (an alert went out for it).
    pub notified: bool,
}

/// What `decide` is given: the PR's stored state (default when new or not
/// about a PR) and, when asked for, earlier deliveries (newest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recall {
    pub pr: PrState,
    pub history: Vec<Seen>,
}

/// What [`Store::record`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Stored, with this many notifications queued (possibly zero: ignored).
    Stored {
        queued: Vec<i64>,
        decision: Decision,
    },
    /// The delivery ID was already stored; nothing was done.
    Duplicate,
}

/// The handle the rest of prpr uses.
#[derive(Debug)]
pub struct Store {
    pool: Pool,
    dialect: Dialect,
    /// SQLite allows one writer; queueing writers here (FIFO) instead of in
    /// SQLite's busy handler keeps latency flat under concurrent deliveries.
    write_lock: Mutex<()>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects (creating a SQLite file if missing) and runs migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let (pool, dialect) = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: a commit survives a process crash (kill -9);
                // only an OS crash or power loss can lose the last commits.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            (Pool::Sqlite(pool), Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            (Pool::Postgres(pool), Dialect::Postgres)
        } else {
            return Err(StoreError::Scheme);
        };
        Ok(Store {
            pool,
            dialect,
            write_lock: Mutex::new(()),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Can a delivery be stored right now? For `/readyz`. On SQLite this takes
    /// and releases the write lock, since a file that can be read but not
    /// written must not report ready; on PostgreSQL a round trip suffices.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let _guard = self.write_guard().await;
                let tx = p.begin_with("BEGIN IMMEDIATE").await?;
                tx.rollback().await?;
            }
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await?;
                conn.ping().await?;
            }
        }
        Ok(())
    }

    /// Serialises writers on SQLite; a no-op guard on PostgreSQL, where row
    /// locks do the job.
    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.dialect {
            Dialect::Sqlite => Some(self.write_lock.lock().await),
            Dialect::Postgres => None,
        }
    }

    /// Records a delivery and queues what the rules decide, atomically.
    ///
    /// `decide` gets the PR's stored state (default when new or when the event
    /// is not about a PR) and, with [`DeliveryMeta::history_since`], earlier
    /// deliveries of the same event and subject. It must be pure: it may run
    /// on a transaction that is then rolled back.
    pub async fn record(
        &self,
        d: &DeliveryMeta<'_>,
        now_ms: i64,
        decide: impl FnOnce(&Recall) -> Decision,
    ) -> Result<Recorded, StoreError> {
        let _guard = self.write_guard().await;
        let dialect = self.dialect;
        with_pool!(self, p => {
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            let inserted = sqlx::query(
                "INSERT INTO deliveries (id, event, action, repo, number, outcome, notifications, received_at) \
                 VALUES ($1, $2, $3, $4, $5, 'ignored', 0, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(d.id)
            .bind(d.event)
            .bind(d.subject.action.as_deref())
            .bind(d.subject.repo.as_deref())
            .bind(d.subject.number.map(|n| n as i64))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(Recorded::Duplicate);
            }

            let pr_key = d.subject.repo.as_deref().zip(d.subject.number.map(|n| n as i64));
            let state = match pr_key {
                Some((repo, number)) => {
                    let sql = match dialect {
                        // One writer at a time already (BEGIN IMMEDIATE).
                        Dialect::Sqlite => "SELECT state FROM pr_state WHERE repo = $1 AND number = $2",
                        Dialect::Postgres => {
                            // Create the row first so there is something to lock:
                            // concurrent deliveries for one PR then apply in turn.
                            sqlx::query("INSERT INTO pr_state (repo, number, state, updated_at) VALUES ($1, $2, '{}', $3) ON CONFLICT (repo, number) DO NOTHING")
                                .bind(repo)
                                .bind(number)
                                .bind(now_ms)
                                .execute(&mut *tx)
                                .await?;
                            "SELECT state FROM pr_state WHERE repo = $1 AND number = $2 FOR UPDATE"
                        }
                    };
                    match sqlx::query(sql).bind(repo).bind(number).fetch_optional(&mut *tx).await? {
                        Some(row) => {
                            let json: String = row.try_get("state")?;
                            serde_json::from_str::<PrState>(&json)
                                .map_err(|e| StoreError::Corrupt(format!("pr_state {repo}#{number}: {e}")))?
                        }
                        None => PrState::default(),
                    }
                }
                None => PrState::default(),
            };

            let mut history = Vec::new();
            if let (Some(since), Some(key)) = (d.history_since, d.subject.repo.as_deref()) {
                if dialect == Dialect::Postgres {
                    // One judge per subject at a time (SQLite's BEGIN IMMEDIATE
                    // already serialises everything).
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                        .bind(format!("{}|{key}", d.event))
                        .execute(&mut *tx)
                        .await?;
                }
                let rows = sqlx::query(
                    "SELECT received_at, notifications FROM deliveries \
                     WHERE event = $1 AND repo = $2 AND received_at >= $3 AND id <> $4 \
                     ORDER BY received_at DESC LIMIT 1000",
                )
                .bind(d.event)
                .bind(key)
                .bind(since)
                .bind(d.id)
                .fetch_all(&mut *tx)
                .await?;
                for r in &rows {
                    let notifications: i64 = r.try_get("notifications")?;
                    history.push(Seen {
                        received_at: r.try_get("received_at")?,
                        notified: notifications > 0,
                    });
                }
            }
            let decision = decide(&Recall { pr: state, history });

            if let (Some((repo, number)), Some(next)) = (pr_key, &decision.state) {
                let json = serde_json::to_string(next).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO pr_state (repo, number, state, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (repo, number) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                )
                    .bind(repo)
                    .bind(number)
                    .bind(json)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            }

            let mut queued = Vec::with_capacity(decision.notifications.len());
            for n in &decision.notifications {
                // The notice as data, rendered only when it is sent.
                let message = serde_json::to_string(&serde_json::json!({"address": n.address, "notice": n.notice}))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let id: i64 = sqlx::query(
                    "INSERT INTO outbox (delivery_id, channel, kind, message, status, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) RETURNING id",
                )
                .bind(d.id)
                .bind(&n.channel)
                .bind(n.kind().as_str())
                .bind(message)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
                queued.push(id);
            }

            if !queued.is_empty() {
                sqlx::query("UPDATE deliveries SET outcome = 'queued', notifications = $1 WHERE id = $2")
                    .bind(queued.len() as i64)
                    .bind(d.id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Recorded::Stored { queued, decision })
        })
    }

    /// The stored state of one PR (for tests and diagnostics).
    pub async fn pr_state(&self, repo: &str, number: u64) -> Result<Option<PrState>, StoreError> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT state FROM pr_state WHERE repo = $1 AND number = $2")
                .bind(repo)
                .bind(number as i64)
                .fetch_optional(p)
                .await?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let json: String = r.try_get("state")?;
                    serde_json::from_str(&json).map(Some).map_err(|e| StoreError::Corrupt(e.to_string()))
                }
            }
        })
    }

    /// Number of stored deliveries (for tests and the benchmark's sanity check).
    pub async fn delivery_count(&self) -> Result<i64, StoreError> {
        with_pool!(self, p => {
            Ok(sqlx::query("SELECT COUNT(*) AS n FROM deliveries").fetch_one(p).await?.try_get("n")?)
        })
    }

    /// Deletes deliveries and finished outbox rows older than `before_ms`.
    /// GitHub redelivers for at most 3 days (7 on GHES), so a 30-day window
    /// keeps dedup exact while the tables stay small.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        let _guard = self.write_guard().await;
        with_pool!(self, p => {
            let a = sqlx::query("DELETE FROM deliveries WHERE received_at < $1").bind(before_ms).execute(p).await?.rows_affected();
            let b = sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND sent_at < $1").bind(before_ms).execute(p).await?.rows_affected();
            Ok(a + b)
        })
    }
}
