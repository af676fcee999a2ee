//! Test harness: the real `prpr` binary on a random port, against a Slack
//! double, a real SQLite file or a fresh PostgreSQL database.
// Test helpers panic on purpose: a failed setup is a failed test, with its message.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SECRET: &str = "test-webhook-secret";
pub const TOKEN: &str = testkit::slack::DEFAULT_TOKEN;

/// The events a webhook pointing at prpr is subscribed to (what catch-up
/// asks GitHub about).
pub const HOOK_EVENTS: [&str; 4] = [
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "issue_comment",
];

/// Members and channels most tests use.
pub const BASE_CONFIG: &str = r#"
[notify]
channel = "C0GENERAL1"

[slack]
per_channel_per_sec = 50.0
burst = 50
retry_initial_ms = 50
retry_max_ms = 400
timeout_secs = 2

[members]
octocat = "U0OCTOCAT1"
Codertocat = "U0CODERTO1"
hubot = "U0HUBOT001"
"#;

pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A review request for `reviewer` on PR `number` (GitHub's payload shape).
pub fn request(reviewer: &str, number: u64) -> Value {
    let mut p = fixture("pull_request.review_requested.user");
    p["requested_reviewer"]["login"] = serde_json::json!(reviewer);
    p["pull_request"]["number"] = serde_json::json!(number);
    p
}

/// (channel, PR) a review request from [`request`] with a reviewer of
/// [`members`] notifies: the reviewer's DM.
pub fn target(body: &Value) -> (String, u64) {
    let login = body["requested_reviewer"]["login"].as_str().unwrap();
    let i: usize = login.trim_start_matches('r').parse().unwrap();
    (
        format!("U0R{i:05}"),
        body["pull_request"]["number"].as_u64().unwrap(),
    )
}

/// The PR number in a notification text (`…Hello-World#123>`).
pub fn pr_of(text: &str) -> u64 {
    text.split("Hello-World#")
        .nth(1)
        .and_then(|r| {
            r.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no PR number in {text:?}"))
}

/// (channel, PR) → how many times Slack accepted it.
pub fn posted_counts(
    slack: &testkit::slack::SlackDouble,
) -> std::collections::BTreeMap<(String, u64), usize> {
    let mut m = std::collections::BTreeMap::new();
    for p in slack.posted() {
        *m.entry((p.channel.clone(), pr_of(p.text.as_deref().unwrap_or(""))))
            .or_insert(0) += 1;
    }
    m
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub struct Sent {
    pub delivery: String,
    pub body: Value,
    /// `None`: no answer (connection refused, reset, timed out).
    pub status: Option<u16>,
    pub reply: Value,
    pub started: Instant,
}

/// A client that does not reuse a connection across a server restart.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// POSTs a signed `pull_request` delivery to `{base}/webhook`; a failure to
/// connect or a cut-off answer is recorded as no answer, as GitHub would.
pub async fn post(http: &reqwest::Client, base: &str, delivery: &str, body: &Value) -> Sent {
    let started = Instant::now();
    let (status, reply) = post_text(http, base, delivery, body.to_string()).await;
    Sent {
        delivery: delivery.to_string(),
        body: body.clone(),
        status,
        reply,
        started,
    }
}

/// [`post`] of a body already serialized: the status (`None`: no answer)
/// and the reply.
pub async fn post_text(
    http: &reqwest::Client,
    base: &str,
    delivery: &str,
    body: String,
) -> (Option<u16>, Value) {
    let sig = testkit::sign::sha256_header(SECRET.as_bytes(), body.as_bytes());
    let resp = http
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await;
    match resp {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.text().await {
                Ok(t) => (
                    Some(status),
                    serde_json::from_str(&t).unwrap_or(Value::String(t)),
                ),
                // The answer was cut off: GitHub would not count it as delivered.
                Err(_) => (None, Value::Null),
            }
        }
        Err(_) => (None, Value::Null),
    }
}

/// A port free right now, so a server can be started (and restarted) on a
/// port known in advance.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config with reviewers r0…r{n-1}, each mapped to a Slack user (so each
/// gets DMs), the default channel, and `extra` TOML after `[notify]`.
pub fn members(n: usize, extra: &str) -> String {
    let mut c = format!("[notify]\nchannel = \"C0GENERAL1\"\n{extra}\n[members]\n");
    for i in 0..n {
        c.push_str(&format!("r{i} = \"U0R{i:05}\"\n"));
    }
    c
}

/// How to start a server.
pub struct Launch {
    pub config: String,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    pub database_url: Option<String>,
}

impl Default for Launch {
    fn default() -> Self {
        Launch {
            config: BASE_CONFIG.to_string(),
            env: Vec::new(),
            args: Vec::new(),
            database_url: None,
        }
    }
}

impl Launch {
    /// The defaults with this config file.
    pub fn with_config(config: impl Into<String>) -> Launch {
        Launch {
            config: config.into(),
            ..Launch::default()
        }
    }
}

pub struct Server {
    child: Child,
    pub base: String,
    pub dir: Arc<tempfile::TempDir>,
    pub database_url: String,
    lines: Arc<Mutex<Vec<String>>>,
    /// The tasks reading stdout and stderr: done once the process has exited
    /// and everything it wrote has been read.
    readers: Vec<tokio::task::JoinHandle<()>>,
    launch_env: Vec<(String, String)>,
    launch_args: Vec<String>,
    config_path: PathBuf,
    http: reqwest::Client,
    /// The test's own handle on the server's database, opened on first use.
    store: tokio::sync::OnceCell<prpr::store::Store>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_prpr")
}

impl Server {
    /// Starts `prpr serve` with a fresh SQLite file (unless the launch names a
    /// database) and waits until it listens.
    pub async fn start(slack: Option<&testkit::slack::SlackDouble>, launch: Launch) -> Server {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let config_path = dir.path().join("prpr.toml");
        std::fs::write(&config_path, &launch.config).expect("write config");
        let database_url = launch
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("prpr.db").display()));
        let mut env = vec![
            ("GITHUB_WEBHOOK_SECRET".to_string(), SECRET.to_string()),
            ("DATABASE_URL".to_string(), database_url.clone()),
        ];
        if let Some(s) = slack {
            env.push(("SLACK_BOT_TOKEN".into(), TOKEN.into()));
            env.push(("SLACK_API_URL".into(), s.api_url()));
        }
        env.extend(launch.env);
        Server::spawn(dir, config_path, database_url, env, launch.args).await
    }

    async fn spawn(
        dir: Arc<tempfile::TempDir>,
        config_path: PathBuf,
        database_url: String,
        env: Vec<(String, String)>,
        args: Vec<String>,
    ) -> Server {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn prpr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            readers.push(tokio::spawn(async move {
                let mut r = BufReader::new(stream).lines();
                while let Ok(Some(line)) = r.next_line().await {
                    lines.lock().unwrap().push(line);
                }
            }));
        }
        let started = Instant::now();
        let addr = loop {
            if let Some(addr) = lines.lock().unwrap().iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["message"] == "prpr listening")
                    .then(|| v["addr"].as_str().map(str::to_string))?
            }) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "prpr exited with {status} before listening:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prpr did not start:\n{}",
                lines.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let port = addr.rsplit(':').next().expect("port").to_string();
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            database_url,
            lines,
            readers,
            launch_env: env,
            launch_args: args,
            config_path,
            http: reqwest::Client::new(),
            store: tokio::sync::OnceCell::new(),
        }
    }

    /// A new process on the same database and config (after a crash or stop).
    pub async fn restart(self) -> Server {
        let Server {
            dir,
            config_path,
            database_url,
            launch_env,
            launch_args,
            mut child,
            ..
        } = self;
        let _ = child.start_kill();
        let _ = child.wait().await;
        Server::spawn(dir, config_path, database_url, launch_env, launch_args).await
    }

    /// The server's database, as the test sees it (a second connection).
    pub async fn store(&self) -> &prpr::store::Store {
        self.store
            .get_or_try_init(|| prpr::store::Store::connect(&self.database_url))
            .await
            .expect("open the server's database")
    }

    /// The outbox right now.
    pub async fn outbox(&self) -> prpr::store::OutboxCounts {
        self.store()
            .await
            .outbox_counts()
            .await
            .expect("count the outbox")
    }

    /// Waits until nothing is pending in the outbox (every message sent or
    /// dead-lettered) and returns the final counts. This is how a test proves
    /// "nothing more arrives": once the queue is empty the sender has nothing
    /// left to send, so whatever Slack has recorded by now is all it gets.
    pub async fn drained(&self, timeout: Duration) -> prpr::store::OutboxCounts {
        let start = Instant::now();
        loop {
            let counts = self.outbox().await;
            if counts.pending == 0 {
                return counts;
            }
            assert!(
                start.elapsed() < timeout,
                "the outbox did not drain within {timeout:?}: {counts:?}\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the server has logged `message` at least `n` times.
    pub async fn logged(&self, message: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let ok = eventually(timeout, || self.log_events(message).len() >= n).await;
        let events = self.log_events(message);
        assert!(
            ok,
            "expected {n} log lines {message:?}, saw {}:\n{}",
            events.len(),
            self.log().join("\n")
        );
        events
    }

    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Parsed JSON log lines whose message is `message`.
    pub fn log_events(&self, message: &str) -> Vec<Value> {
        self.log()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }

    /// Console-publisher lines (`[channel] text`).
    pub fn console_lines(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.starts_with('['))
            .collect()
    }

    /// POSTs a signed JSON delivery.
    pub async fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> (u16, Value) {
        let body = payload.to_string().into_bytes();
        let sig = testkit::sign::sha256_header(SECRET.as_bytes(), &body);
        self.post_raw(
            "/webhook",
            &[
                ("content-type", "application/json"),
                ("x-github-event", event),
                ("x-github-delivery", delivery),
                ("x-hub-signature-256", &sig),
            ],
            body,
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// SIGKILL, as the kernel's OOM killer or ECS after the stop timeout would.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("kill");
        let _ = self.child.wait().await;
    }

    pub fn sigterm(&self) {
        let ok = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// Waits for the process to exit and for everything it wrote to be
    /// read, so [`Server::log`] is then complete.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)?;
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
        Some(status)
    }

    /// Runs another prpr command against this server's config and database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .env_clear()
            .env("DATABASE_URL", &self.database_url)
            .env("LOG_FORMAT", "json")
            .output()
            .expect("run prpr")
    }
}

/// Taken by the tests that load the machine on purpose (streams of
/// deliveries, kills, a Slack double restarted on its port) and judge how
/// prpr copes: at most two of them run at once (one per core, as when each
/// suite was its own binary), while the light tests run beside them, so a
/// fault test measures prpr and not its neighbours.
pub async fn heavy() -> tokio::sync::SemaphorePermit<'static> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS
        .get_or_init(|| tokio::sync::Semaphore::new(2))
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    eventually_async(timeout, async || f()).await
}

/// [`eventually`] for a condition that itself awaits (a store query).
pub async fn eventually_async(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f().await
}

// ---- PostgreSQL -------------------------------------------------------------

/// A PostgreSQL database made for one test, dropped when the test ends (even
/// when it fails), so repeated runs do not pile up databases on the server.
pub struct PgDb {
    pub url: String,
    admin: String,
    name: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        use sqlx::Connection;
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop cannot await: a short-lived thread with its own runtime does
        // it. FORCE ends connections a killed server may have left behind.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A fresh PostgreSQL database for one test, or `None` (with a message) when
/// no server is reachable. `PRPR_REQUIRE_POSTGRES=1` (set by `.ci/run`) turns
/// a missing server into a failure, so CI cannot silently skip these suites.
pub async fn postgres_db() -> Option<PgDb> {
    /// Says so once per test binary, on the real stderr: the test harness
    /// captures `eprintln!` of passing tests, and a skip must be visible.
    fn skipped(why: &str) {
        use std::io::Write;
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the PostgreSQL tests of this suite: {why}. Start PostgreSQL or set PRPR_TEST_POSTGRES_URL to run them."
            );
        });
    }
    use sqlx::Connection;
    let admin = std::env::var("PRPR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let required = std::env::var("PRPR_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let conn =
        tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(&admin)).await;
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            assert!(
                !required,
                "PostgreSQL required but not reachable at {admin}: {e}"
            );
            skipped(&format!("PostgreSQL not reachable at {admin} ({e})"));
            return None;
        }
        Err(_) => {
            assert!(!required, "PostgreSQL required but {admin} did not answer");
            skipped(&format!("PostgreSQL at {admin} did not answer"));
            return None;
        }
    };
    let name = format!("prpr_test_{}_{}", std::process::id(), fastrand::u64(..));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    Some(PgDb {
        url: format!("{base}/{name}"),
        admin,
        name,
    })
}
