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
mod reminders;
mod teams;
mod threads;

pub use outbox::{Head, OutboxCounts, OutboxItem, OutboxRow, OutboxStatus};
pub use reminders::{HELD, HeldRow, SlotKey};
pub use teams::{DueExpansion, ExpansionRow};
pub use threads::{DueUpdate, ThreadRoot};

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::Mutex;

use crate::github::Subject;
use crate::notice::{Decision, Place, PrState};

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

/// Writes one PR's whole state (`$json`, serialised) inside `$tx`.
macro_rules! write_pr_state {
    ($tx:expr, $repo:expr, $number:expr, $json:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO pr_state (repo, number, state, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, number) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind($repo)
        .bind($number)
        .bind($json)
        .bind($now)
        .execute(&mut *$tx)
        .await?
    };
}
pub(crate) use write_pr_state;

/// The stored state of PR `$repo#$number` inside write transaction `$tx`,
/// locked on PostgreSQL until the transaction ends (SQLite's `BEGIN
/// IMMEDIATE` already makes one writer at a time), so concurrent writers
/// about one PR apply in turn. Default when prpr knows nothing of it.
/// Expands inside an `async` block that returns `Result<_, StoreError>`.
macro_rules! pr_state_for_update {
    ($tx:ident, $dialect:expr, $repo:expr, $number:expr, $now_ms:expr) => {{
        let (repo, number): (&str, i64) = ($repo, $number);
        let sql = match $dialect {
            // One writer at a time already (BEGIN IMMEDIATE).
            Dialect::Sqlite => "SELECT state FROM pr_state WHERE repo = $1 AND number = $2",
            Dialect::Postgres => {
                // Create the row first so there is something to lock:
                // concurrent deliveries for one PR then apply in turn.
                sqlx::query("INSERT INTO pr_state (repo, number, state, updated_at) VALUES ($1, $2, '{}', $3) ON CONFLICT (repo, number) DO NOTHING")
                    .bind(repo)
                    .bind(number)
                    .bind($now_ms)
                    .execute(&mut *$tx)
                    .await?;
                "SELECT state FROM pr_state WHERE repo = $1 AND number = $2 FOR UPDATE"
            }
        };
        match sqlx::query(sql).bind(repo).bind(number).fetch_optional(&mut *$tx).await? {
            Some(row) => {
                let json: String = row.try_get("state")?;
                serde_json::from_str::<PrState>(&json)
                    .map_err(|e| StoreError::Corrupt(format!("pr_state {repo}#{number}: {e}")))?
            }
            None => PrState::default(),
        }
    }};
}
pub(crate) use pr_state_for_update;

/// Writes what `$decision` decided inside transaction `$tx`, for delivery
/// `$delivery_id` about PR `$pr_key` (`Option<(&str, i64)>`): the PR's next
/// state, a bump of its threads' card revision, its notices in the outbox
/// (a thread's root first when a notice opens one), and its team
/// expansions. Evaluates to the queued outbox IDs. Shared by
/// [`Store::record`] and the team expander's [`Store::finish_expansion`], so
/// a notice queued later is queued exactly as one queued at intake.
macro_rules! apply_decision {
    ($tx:ident, $delivery_id:expr, $pr_key:expr, $decision:expr, $now_ms:expr) => {{
        let (delivery_id, pr_key, decision, now_ms): (&str, Option<(&str, i64)>, &Decision, i64) =
            ($delivery_id, $pr_key, $decision, $now_ms);
        if let (Some((repo, number)), Some(next)) = (pr_key, &decision.state) {
            let json = serde_json::to_string(next).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            $crate::store::write_pr_state!($tx, repo, number, json, now_ms);
        }

        // A changed card is shown by every thread of the PR: each
        // root's next update (coalesced by the thread updater) takes it.
        // Most PRs have no thread (DMs only): no statement for them.
        if let Some((repo, number)) = pr_key
            && decision.card_changed
            && decision.state.as_ref().is_some_and(|s| s.threaded)
        {
            sqlx::query("UPDATE threads SET want_rev = want_rev + 1 WHERE repo = $1 AND number = $2")
                .bind(repo)
                .bind(number)
                .execute(&mut *$tx)
                .await?;
        }

        let mut queued: Vec<i64> = Vec::with_capacity(decision.notifications.len());
        for n in &decision.notifications {
            let thread = match (n.place, n.notice.pr()) {
                (Place::Message, _) | (_, None) => None,
                (place, Some(key)) => Some((place, key)),
            };
            // What this notice queues in its channel, in order: the
            // root first when it opens the PR's thread, then itself.
            let mut rows: Vec<(&str, String)> = Vec::with_capacity(2);
            if let Some((_, (repo, number))) = thread {
                // Per-channel order makes the root go before its replies.
                let opened = sqlx::query(
                    "INSERT INTO threads (channel, repo, number, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (channel, repo, number) DO NOTHING",
                )
                .bind(&n.channel)
                .bind(repo)
                .bind(number as i64)
                .bind(now_ms)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if opened == 1 {
                    rows.push(("root", serde_json::json!({"root": {"repo": repo, "number": number}}).to_string()));
                }
            }
            if !matches!(thread, Some((Place::Root, _))) {
                // The notice as data, rendered only when it is sent.
                rows.push((n.kind().as_str(), serde_json::json!({"address": n.address, "notice": n.notice, "place": n.place}).to_string()));
            }
            for (kind, message) in rows {
                let id: i64 = sqlx::query(
                    "INSERT INTO outbox (delivery_id, channel, kind, message, status, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) RETURNING id",
                )
                .bind(delivery_id)
                .bind(&n.channel)
                .bind(kind)
                .bind(message)
                .bind(now_ms)
                .fetch_one(&mut *$tx)
                .await?
                .try_get("id")?;
                queued.push(id);
            }
        }

        // Team requests to pass on to members once the debounce is over. A
        // team asked again while its expansion waits replaces it.
        for x in &decision.expansions {
            let Some((repo, number)) = x.notice.pr() else { continue };
            let json = serde_json::to_string(x).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO team_expansions (delivery_id, repo, number, team, expansion, status, attempts, due_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7) \
                 ON CONFLICT (repo, number, team) WHERE status = 'pending' DO UPDATE SET \
                 delivery_id = excluded.delivery_id, expansion = excluded.expansion, due_at = excluded.due_at, attempts = 0",
            )
            .bind(delivery_id)
            .bind(repo)
            .bind(number as i64)
            .bind(format!("{}/{}", x.org, x.slug).to_ascii_lowercase())
            .bind(json)
            .bind(now_ms.saturating_add(i64::try_from(x.delay_ms).unwrap_or(i64::MAX)))
            .bind(now_ms)
            .execute(&mut *$tx)
            .await?;
        }
        queued
    }};
}
pub(crate) use apply_decision;

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
    #[error("the database file {0} was deleted while prpr was using it")]
    FileGone(String),
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
// One per delivery, returned and dropped: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
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
    /// The SQLite file as opened, to notice it deleted or replaced.
    file: Option<Arc<FileWatch>>,
}

/// Why: SQLite keeps writing to a deleted file's open descriptor, so without
/// this a deleted database went on acknowledging deliveries (`202`) that no
/// restart would ever see. The path's device and inode are compared with the
/// file opened; a missing file refuses writes, a different one (restored from
/// a backup, say) becomes the database: connections opened before the
/// change are closed instead of reused.
#[derive(Debug)]
struct FileWatch {
    path: PathBuf,
    state: std::sync::Mutex<FileState>,
}

#[derive(Debug)]
struct FileState {
    identity: Option<(u64, u64)>,
    /// Connections older than this point at a file that is no longer the database.
    replaced_at: Option<std::time::Instant>,
}

fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl FileWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Is the path still the file in use? Adopts a replacement.
    fn check(&self) -> Result<(), StoreError> {
        let now = identity(&self.path);
        let mut s = self.lock();
        match now {
            None => Err(StoreError::FileGone(self.path.display().to_string())),
            // Not learnt yet (the pool is in use by the migrations at start):
            // the file in use is this one, nothing was replaced.
            Some(id) if s.identity.is_none() => {
                s.identity = Some(id);
                Ok(())
            }
            Some(id) if Some(id) != s.identity => {
                tracing::warn!(path = %self.path.display(), "the database file was replaced: reopening connections on the new file");
                s.identity = Some(id);
                s.replaced_at = Some(std::time::Instant::now());
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    /// Connections open now are not to be used again (see
    /// [`Store::after_write_error`]).
    fn retire_connections(&self) {
        self.lock().replaced_at = Some(std::time::Instant::now());
    }

    /// Was a connection of this age opened before the file was replaced?
    fn is_stale(&self, age: Duration) -> bool {
        let s = self.lock();
        match (s.replaced_at, std::time::Instant::now().checked_sub(age)) {
            (Some(replaced), Some(opened)) => opened <= replaced,
            _ => false,
        }
    }
}

/// The pool's `after_release` hook. A connection can come back still inside
/// a transaction — a `COMMIT` that failed (disk full), a statement that failed
/// and whose rollback failed too. Reused, it would fail every later use with
/// "attempted to call begin_with at non-zero transaction depth" until the
/// pool recycled it (half an hour). So it is rolled back explicitly and then
/// closed (sqlx's own count of its depth cannot be reset from outside), and
/// the pool opens a fresh one.
macro_rules! release_fn {
    ($name:ident, $conn:ty) => {
        async fn $name(conn: &mut $conn, stale: bool) -> Result<bool, sqlx::Error> {
            if stale {
                return Ok(false);
            }
            if !conn.is_in_transaction() {
                return Ok(true);
            }
            let rolled_back = tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::raw_sql("ROLLBACK").execute(&mut *conn),
            )
            .await;
            tracing::warn!(
                rolled_back = matches!(rolled_back, Ok(Ok(_))),
                "a database connection came back inside a failed transaction: rolled back and closed"
            );
            Ok(false)
        }
    };
}
release_fn!(release_sqlite, sqlx::SqliteConnection);
release_fn!(release_pg, sqlx::PgConnection);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects (creating a SQLite file if missing) and runs migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let mut file = None;
        let (pool, dialect) = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: a commit survives a process crash (kill -9);
                // only an OS crash or power loss can lose the last commits.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            // The file is created here, once, and never by the pool: a
            // connection opened after the file was deleted would otherwise
            // create an empty database, and prpr would carry on in it.
            sqlx::ConnectOptions::connect(&opts).await?.close().await?;
            let opts = opts.create_if_missing(false);
            let path = opts.get_filename().to_path_buf();
            let watch = (!url.contains(":memory:") && !path.as_os_str().is_empty()).then(|| {
                Arc::new(FileWatch {
                    path,
                    state: std::sync::Mutex::new(FileState {
                        identity: None,
                        replaced_at: None,
                    }),
                })
            });
            let (w1, w2) = (watch.clone(), watch.clone());
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .before_acquire(move |_conn, meta| {
                    // A stat per use: every user of the pool (the sender too)
                    // notices a replaced file, not only deliveries. A missing
                    // file keeps the old connections: a new one would create
                    // an empty database, and deliveries are refused anyway.
                    let stale = w1.as_ref().is_some_and(|w| {
                        let _ = w.check();
                        w.is_stale(meta.age)
                    });
                    Box::pin(async move { Ok(!stale) })
                })
                .after_release(move |conn, meta| {
                    let stale = w2.as_ref().is_some_and(|w| w.is_stale(meta.age));
                    Box::pin(release_sqlite(conn, stale))
                })
                .connect_with(opts)
                .await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            if let Some(w) = &watch {
                w.lock().identity = identity(&w.path);
            }
            file = watch;
            (Pool::Sqlite(pool), Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(5))
                // A killed backend or a restarted server: found before use.
                .test_before_acquire(true)
                .after_release(|conn, _| Box::pin(release_pg(conn, false)))
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
            file,
        })
    }

    /// Returns a connection to the pool still inside a transaction, as a
    /// failed `COMMIT` whose rollback also failed would. For the fault tests.
    #[doc(hidden)]
    pub async fn poison_one_connection_for_tests(&self) -> Result<(), StoreError> {
        with_pool!(self, p => {
            let mut conn = p.acquire().await?;
            let tx = sqlx::Connection::begin(&mut *conn).await?;
            std::mem::forget(tx);
            Ok(())
        })
    }

    /// On SQLite, fails if the database file is gone (see [`FileWatch`]).
    fn check_file(&self) -> Result<(), StoreError> {
        match &self.file {
            Some(w) => w.check(),
            None => Ok(()),
        }
    }

    /// Could a delivery be stored now? A real write, committed: a store that
    /// answers reads but cannot write (a read-only file or volume, a
    /// PostgreSQL replica after a failover, a full disk) is not ready. For
    /// `/readyz` and `/healthz`, which rate-limit it. The table comes from a
    /// migration (`0002_health_probe`), so the probe is plain DML.
    pub async fn probe_write(&self, now_ms: i64) -> Result<(), StoreError> {
        self.check_file()?;
        let _guard = self.write_guard().await;
        let dialect = self.dialect;
        let result: Result<(), StoreError> = async { with_pool!(self, p => {
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            sqlx::query("INSERT INTO health_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at")
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }) }
        .await;
        self.after_write_error(&result);
        result
    }

    /// After a write that failed because of the file (SQLite: read-only,
    /// I/O error, disk full, cannot open), every connection open now is
    /// retired, and the pool opens new ones. Why: SQLite opens a file it
    /// may not write read-only and stays so, so a connection opened while
    /// the file was read-only (`chattr +i`, a read-only remount) kept
    /// failing with "attempt to write a readonly database" long after the
    /// file was writable again.
    fn after_write_error<T>(&self, result: &Result<T, StoreError>) {
        let Err(StoreError::Db(sqlx::Error::Database(e))) = result else {
            return;
        };
        let primary = e
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .map(|c| c & 0xff);
        // SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
        if let (Some(w), Some(8 | 10 | 13 | 14)) = (&self.file, primary) {
            w.retire_connections();
        }
    }

    /// Bytes free (for an unprivileged writer) on the SQLite database's
    /// volume; `None` on PostgreSQL (its disk is on another machine) or when
    /// the volume cannot be asked. Why: a full disk fails every delivery, so
    /// an operator wants to hear before it happens (`[store] min_free`).
    pub fn free_space(&self) -> Option<u64> {
        let w = self.file.as_ref()?;
        // The directory: the file itself may be gone (deleted), its volume not.
        let dir = match w.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let st = rustix::fs::statvfs(dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
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
        self.check_file()?;
        let _guard = self.write_guard().await;
        let dialect = self.dialect;
        let result: Result<Recorded, StoreError> = async { with_pool!(self, p => {
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
                Some((repo, number)) => pr_state_for_update!(tx, dialect, repo, number, now_ms),
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
            let queued = apply_decision!(tx, d.id, pr_key, &decision, now_ms);

            if !queued.is_empty() {
                sqlx::query("UPDATE deliveries SET outcome = 'queued', notifications = $1 WHERE id = $2")
                    .bind(queued.len() as i64)
                    .bind(d.id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Recorded::Stored { queued, decision })
        }) }
        .await;
        self.after_write_error(&result);
        result
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
            let c = sqlx::query("DELETE FROM team_expansions WHERE status = 'done' AND done_at < $1").bind(before_ms).execute(p).await?.rows_affected();
            Ok(a + b + c)
        })
    }
}

/// Background GitHub jobs' bookkeeping (table `catch_up`, one row per job:
/// catch-up's `deliveries`, the reminders backfill's `backfill`): the lease
/// that makes one pass at a time across tasks, and when the last complete
/// pass started (`checked_to`).
impl Store {
    /// Takes the catch-up lease (job `deliveries`); see [`Store::lease`].
    pub async fn catch_up_lease(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.lease("deliveries", owner, now_ms, until_ms).await
    }

    /// Releases the catch-up lease; see [`Store::release`].
    pub async fn catch_up_release(
        &self,
        owner: &str,
        checked_to: Option<i64>,
    ) -> Result<(), StoreError> {
        self.release("deliveries", owner, checked_to).await
    }

    /// Takes `job`'s lease for `owner` until `until_ms` unless another
    /// owner holds an unexpired one. `Some(checked_to)` (unix ms, 0 before
    /// the first pass) when taken.
    pub async fn lease(
        &self,
        job: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.check_file()?;
        let _guard = self.write_guard().await;
        with_pool!(self, p => {
            let row = sqlx::query(
                "INSERT INTO catch_up (id, lease_owner, lease_until, checked_to) VALUES ($4, $1, $2, 0) \
                 ON CONFLICT (id) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until \
                 WHERE catch_up.lease_until < $3 OR catch_up.lease_owner = $1 \
                 RETURNING checked_to",
            )
            .bind(owner)
            .bind(until_ms)
            .bind(now_ms)
            .bind(job)
            .fetch_optional(p)
            .await?;
            match row {
                Some(r) => Ok(Some(r.try_get("checked_to")?)),
                None => Ok(None),
            }
        })
    }

    /// Releases `job`'s lease; a complete pass also records how far it
    /// checked (or when it started).
    pub async fn release(
        &self,
        job: &str,
        owner: &str,
        checked_to: Option<i64>,
    ) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        with_pool!(self, p => {
            sqlx::query(
                "UPDATE catch_up SET lease_until = 0, checked_to = COALESCE($2, checked_to) \
                 WHERE id = $3 AND lease_owner = $1",
            )
            .bind(owner)
            .bind(checked_to)
            .bind(job)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// Has a delivery with this `X-GitHub-Delivery` been stored?
    pub async fn has_delivery(&self, id: &str) -> Result<bool, StoreError> {
        with_pool!(self, p => {
            Ok(sqlx::query("SELECT 1 AS one FROM deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
                .is_some())
        })
    }
}
