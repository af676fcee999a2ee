//! `prpr-bench`: the figures in BENCHMARKS.md, reproducible.
//!
//! Drives the **release** `prpr` binary and the `slack-double` binary as
//! separate processes on 127.0.0.1, with a SQLite store in a temporary
//! directory, and measures:
//!
//! * **intake** — signed `pull_request` deliveries built from GitHub's real
//!   payloads (tests/fixtures/github, 23–27 KB compact), unique delivery IDs,
//!   N keep-alive connections: requests/s and p50/p99/max latency of the
//!   `202`, with the server pinned to one core (`taskset -c 0`,
//!   `TOKIO_WORKER_THREADS=1`) and on all cores;
//! * **memory** — VmRSS when idle after start, VmHWM (peak) after each intake run;
//! * **start-up** — exec → `/readyz` 200 with an existing database, median of runs;
//! * **end to end** — delivery sent → `chat.postMessage` received by the
//!   double, p50/p99, no rate limiting;
//! * **burst** — 100 notifications to one channel with the double enforcing
//!   1 message/s per channel (429 + Retry-After beyond it): total time, and
//!   proof that each arrived exactly once and in order;
//! * **drain** — a backlog of 50,000 notifications over 200 channels (queued by
//!   a prpr that hardly sends, then drained by a restarted one), each
//!   allowed prpr's default 1 message/s (burst 3), with a double that answers
//!   at once: sends/s once intake has stopped (the ceiling is 200/s), and
//!   proof that each arrived exactly once;
//! * **storm** — a PR comment mentioning 100,000 unmapped logins (1.6 MB):
//!   its `202` latency, and the latency of small deliveries sent while it is
//!   being handled (the mention scan runs before the store's write lock, so
//!   they do not queue behind it).
//!
//! * **reminders-digest** — in process, no binaries: a scheduled digest of
//!   300 open PRs over 12 repositories built from their cards (filters,
//!   grouping, paging) and rendered to Block Kit, median and max of runs.
//!
//! `--smoke` runs each part briefly and checks only that it works.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde_json::{Value, json};

const SECRET: &str = "bench-webhook-secret";
const TOKEN: &str = testkit::slack::DEFAULT_TOKEN;
/// Reviewers r0…r{MEMBERS-1}, each mapped to a Slack user ID.
const MEMBERS: usize = 50;
/// Channels (DMs) the drain run's backlog is spread over.
const DRAIN_CHANNELS: usize = 200;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "prpr-bench",
    about = "Benchmarks of the release prpr binary (see BENCHMARKS.md)"
)]
struct Args {
    /// The release prpr binary. Default: $CARGO_TARGET_DIR/release/prpr, else target/release/prpr.
    #[arg(long)]
    prpr: Option<PathBuf>,
    /// The slack-double binary. Default: next to the prpr binary.
    #[arg(long)]
    slack_double: Option<PathBuf>,
    /// GitHub payload fixtures. Default: crates/prpr/tests/fixtures/github.
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Each benchmark briefly; checks only that it works (CI).
    #[arg(long)]
    smoke: bool,
    /// Deliveries per intake run (after a warm-up of 10 %).
    #[arg(long, default_value_t = 30_000)]
    requests: usize,
    /// Concurrent keep-alive connections for the intake runs.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Start-up runs (the median is reported).
    #[arg(long, default_value_t = 21)]
    startup_runs: usize,
    /// Deliveries for the end-to-end latency run (one notification each).
    #[arg(long, default_value_t = 1000)]
    e2e: usize,
    /// Notifications to one rate-limited channel.
    #[arg(long, default_value_t = 100)]
    burst: usize,
    /// Notifications queued over DRAIN_CHANNELS channels for the drain run.
    #[arg(long, default_value_t = 50_000)]
    drain: usize,
    /// Intake payload mix: `realistic` (every pull_request fixture in turn,
    /// 1 in 7 a review request that queues a notification), `ignored` (only
    /// pushes to PRs: no notification) or `queued` (only review requests).
    #[arg(long, default_value = "realistic")]
    mix: String,
    /// prpr's per-channel send rate during the intake runs (`slack.per_channel_per_sec`;
    /// default prpr's own default, 1/s, as against real Slack).
    #[arg(long, default_value_t = 1.0)]
    intake_send_rate: f64,
    /// prpr's per-channel rate for the burst run (default: prpr's default, 1/s).
    #[arg(long, default_value_t = 1.0)]
    burst_send_rate: f64,
    /// prpr's per-channel burst for the burst run (default: prpr's default, 3).
    #[arg(long, default_value_t = 3)]
    burst_send_burst: u32,
    /// Only these parts (comma-separated): intake1, intakeall, startup, e2e,
    /// burst, drain, storm, reminders-digest.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl Args {
    fn wants(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

fn main() -> std::process::ExitCode {
    match run_all() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prpr-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_all() -> Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.requests = 400;
        args.connections = 4;
        args.startup_runs = 3;
        args.e2e = 20;
        args.burst = 5;
        args.drain = 1_000;
    }
    let prpr = args.prpr.clone().unwrap_or_else(default_prpr);
    let double = args.slack_double.clone().unwrap_or_else(|| {
        prpr.parent()
            .unwrap_or_else(|| Path::new("."))
            .join("slack-double")
    });
    let needs_binaries = ["intake1", "intakeall", "startup", "e2e", "burst"]
        .iter()
        .any(|p| args.wants(p));
    for (what, p) in [("prpr", &prpr), ("slack-double", &double)] {
        if !needs_binaries {
            break;
        }
        ensure!(
            p.is_file(),
            "{what} binary not found at {} (build it: cargo build --release -p prpr -p testkit; or pass --{what} PATH)",
            p.display()
        );
    }
    let fixtures = args.fixtures.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../prpr/tests/fixtures/github")
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = taskset_works();
    let env = Env {
        prpr,
        double,
        cores,
        pin,
        fixtures,
    };
    println!("{}", env.describe());
    if !pin {
        println!(
            "WARNING: taskset is not available; the server is limited by TOKIO_WORKER_THREADS=1 only"
        );
    }

    let mut results = BTreeMap::new();
    results.insert("machine".to_string(), json!(env.describe()));
    let mut failures = Vec::new();
    let mut run = |name: &str, f: &dyn Fn() -> Result<Value>| {
        if !args.wants(name) {
            return;
        }
        println!("\n== {name} ==");
        match f() {
            Ok(v) => {
                results.insert(name.to_string(), v);
            }
            Err(e) => {
                println!("FAILED: {name}: {e:#}");
                failures.push(format!("{name}: {e:#}"));
            }
        }
    };
    run("intake1", &|| intake(&env, &args, true));
    run("intakeall", &|| intake(&env, &args, false));
    run("startup", &|| startup(&env, &args));
    run("e2e", &|| e2e(&env, &args));
    run("burst", &|| burst(&env, &args));
    run("drain", &|| drain(&env, &args));
    run("storm", &|| storm(&env));
    run("reminders-digest", &|| reminders_digest(&args));
    set_own_affinity(&env, None);

    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !failures.is_empty() {
        bail!(
            "{} benchmark(s) failed: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    println!(
        "\nall benchmarks ran{}",
        if args.smoke {
            " (smoke mode: no thresholds checked)"
        } else {
            ""
        }
    );
    Ok(())
}

fn default_prpr() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("release").join("prpr")
}

struct Env {
    prpr: PathBuf,
    double: PathBuf,
    cores: usize,
    pin: bool,
    fixtures: PathBuf,
}

impl Env {
    fn describe(&self) -> String {
        let mem_kb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        format!(
            "machine: {} cores, {:.1} GiB RAM; load average at start: {}; prpr: {}",
            self.cores,
            mem_kb as f64 / 1024.0 / 1024.0,
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            self.prpr.display()
        )
    }

    /// The CPU list the server gets: core 0 alone, or every core.
    fn server_cpus(&self, one_core: bool) -> String {
        if one_core {
            "0".into()
        } else {
            format!("0-{}", self.cores.saturating_sub(1))
        }
    }

    /// The load generator and the Slack double: the other core(s) when the
    /// server is on core 0 only, so they do not take its CPU time.
    fn client_cpus(&self, one_core: bool) -> Option<String> {
        if one_core && self.cores > 1 {
            Some(format!("1-{}", self.cores - 1))
        } else {
            None
        }
    }
}

fn taskset_works() -> bool {
    Command::new("taskset")
        .args(["-c", "0", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins every thread of this process (and so its future children) to `cpus`,
/// or to all cores with `None`.
fn set_own_affinity(env: &Env, cpus: Option<&str>) {
    if !env.pin {
        return;
    }
    let all = env.server_cpus(false);
    let list = cpus.unwrap_or(&all);
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", list, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- processes ---------------------------------------------------------------

/// A child process killed (SIGKILL) on drop unless stopped before.
struct Proc {
    child: Child,
    name: &'static str,
    log: Option<PathBuf>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits up to `timeout`.
    fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                bail!("{} did not exit within {timeout:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn log_tail(&self) -> String {
        let Some(p) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The Slack double as its own process; `rate` = (per second, burst, Retry-After).
fn start_double(env: &Env, rate: Option<(f64, u32, u64)>) -> Result<(Proc, String)> {
    let port = free_port()?;
    let mut cmd = Command::new(&env.double);
    cmd.args(["--port", &port.to_string()]);
    if let Some((per_sec, burst, retry_after)) = rate {
        cmd.args([
            "--rate-limit-per-sec",
            &per_sec.to_string(),
            "--burst",
            &burst.to_string(),
            "--retry-after",
            &retry_after.to_string(),
        ]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", env.double.display()))?;
    let stdout = child.stdout.take().context("slack-double stdout")?;
    let mut proc = Proc {
        child,
        name: "slack-double",
        log: None,
    };
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let Some(url) = line.trim().strip_prefix("listening ") else {
        let _ = proc.child.kill();
        bail!("slack-double printed {line:?} instead of `listening URL`");
    };
    let api = url.to_string();
    Ok((proc, api))
}

/// What a prpr server is started with.
struct Launch<'a> {
    dir: &'a Path,
    config: String,
    slack_api: &'a str,
    port: u16,
    /// `Some(cpus)`: run under `taskset -c cpus`.
    cpus: Option<String>,
    one_worker: bool,
}

fn spawn_prpr(env: &Env, l: &Launch<'_>) -> Result<Proc> {
    let config_path = l.dir.join("prpr.toml");
    std::fs::write(&config_path, &l.config)?;
    let log_path = l.dir.join("prpr.log");
    let log = File::options().create(true).append(true).open(&log_path)?;
    let mut cmd = match (&l.cpus, env.pin) {
        (Some(cpus), true) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(&env.prpr);
            c
        }
        _ => Command::new(&env.prpr),
    };
    cmd.arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", l.port.to_string())
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", l.dir.join("prpr.db").display()),
        )
        .env("SLACK_BOT_TOKEN", TOKEN)
        .env("SLACK_API_URL", l.slack_api)
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    if l.one_worker {
        cmd.env("TOKIO_WORKER_THREADS", "1");
    }
    // Log filter for prpr (e.g. PRPR_RUST_LOG=warn to measure without per-delivery lines).
    if let Ok(filter) = std::env::var("PRPR_RUST_LOG") {
        cmd.env("RUST_LOG", filter);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", env.prpr.display()))?;
    Ok(Proc {
        child,
        name: "prpr",
        log: Some(log_path),
    })
}

/// Polls `GET /readyz` until 200; returns when it answered.
fn wait_ready(proc: &mut Proc, port: u16, timeout: Duration) -> Result<Instant> {
    let start = Instant::now();
    loop {
        if readyz(port) == Some(200) {
            return Ok(Instant::now());
        }
        if let Some(s) = proc.child.try_wait()? {
            bail!("prpr exited with {s} before ready:\n{}", proc.log_tail());
        }
        if start.elapsed() > timeout {
            bail!("prpr not ready after {timeout:?}:\n{}", proc.log_tail());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// A minimal blocking `GET /readyz` (no client start-up cost in the timing).
fn readyz(port: u16) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        let n = s.read(&mut buf[got..]).ok()?;
        if n == 0 {
            break;
        }
        got += n;
    }
    std::str::from_utf8(&buf[..got])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `(VmRSS, VmHWM)` in KiB.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

fn members_config(extra: &str) -> String {
    let mut c = format!("{extra}\n[members]\n");
    for i in 0..MEMBERS {
        c.push_str(&format!("r{i} = \"U0R{i:05}\"\n"));
    }
    for i in 0..MEMBERS {
        c.push_str(&format!("rv{i:06} = \"U0RV{i:05}\"\n"));
    }
    c.push_str("codertocat = \"U0CODERTO1\"\noctocat = \"U0OCTOCAT1\"\n");
    c
}

// ---- payloads ----------------------------------------------------------------

fn fixture(env: &Env, name: &str) -> Result<Value> {
    let path = env.fixtures.join(format!("{name}.json"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// A signed delivery body, leaked so requests can send it without copying.
struct Body {
    bytes: &'static [u8],
    signature: String,
}

fn body(v: &Value) -> Body {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let signature = testkit::sign::sha256_header(SECRET.as_bytes(), &bytes);
    Body {
        bytes: Box::leak(bytes.into_boxed_slice()),
        signature,
    }
}

/// A review request for `reviewer` on PR `number` (GitHub's payload shape).
fn review_request(env: &Env, reviewer: &str, number: u64) -> Result<Value> {
    let mut p = fixture(env, "pull_request.review_requested.user")?;
    p["requested_reviewer"]["login"] = json!(reviewer);
    p["pull_request"]["number"] = json!(number);
    Ok(p)
}

/// A payload serialized once with placeholders for the PR number and the
/// reviewer, patched and signed per request: every delivery is about the PR
/// and reviewer the plan says, at a realistic size.
struct Template {
    bytes: Vec<u8>,
    number_at: Vec<usize>,
    login_at: Vec<usize>,
}

const NUMBER_MARK: &[u8] = b"987654321";
const LOGIN_MARK: &[u8] = b"rvMARKER";

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

fn template(env: &Env, name: &str) -> Result<Template> {
    let mut p = fixture(env, name)?;
    p["pull_request"]["number"] = json!(987_654_321u64);
    if p.get("requested_reviewer").is_some() {
        p["requested_reviewer"]["login"] = json!("rvMARKER");
    }
    let bytes = serde_json::to_vec(&p)?;
    let number_at = find_all(&bytes, NUMBER_MARK);
    let login_at = find_all(&bytes, LOGIN_MARK);
    ensure!(
        !number_at.is_empty(),
        "{name}: number placeholder not found"
    );
    Ok(Template {
        bytes,
        number_at,
        login_at,
    })
}

impl Template {
    /// The body for PR `number` (< 800 000 000) and reviewer rv`reviewer`, and its signature.
    fn render(&self, number: u64, reviewer: usize) -> (Vec<u8>, String) {
        let mut b = self.bytes.clone();
        let n = format!("{}", 100_000_000 + number % 800_000_000);
        let l = format!("rv{:06}", reviewer % 1_000_000);
        for &at in &self.number_at {
            b[at..at + NUMBER_MARK.len()].copy_from_slice(n.as_bytes());
        }
        for &at in &self.login_at {
            b[at..at + LOGIN_MARK.len()].copy_from_slice(l.as_bytes());
        }
        let sig = testkit::sign::sha256_header(SECRET.as_bytes(), &b);
        (b, sig)
    }
}

/// The templates and, for delivery `i`, which template, PR and reviewer.
struct Mix {
    templates: Vec<Template>,
    kind: String,
}

impl Mix {
    fn new(env: &Env, kind: &str) -> Result<Mix> {
        let names: &[&str] = match kind {
            // A PR's life, in order: 1 in 7 deliveries queues a notification.
            "realistic" => &[
                "pull_request.opened",
                "pull_request.review_requested.user",
                "pull_request.synchronize",
                "pull_request.review_request_removed",
                "pull_request.converted_to_draft",
                "pull_request.ready_for_review",
                "pull_request.closed.unmerged",
            ],
            "ignored" => &["pull_request.synchronize"],
            "queued" | "drain" => &["pull_request.review_requested.user"],
            other => bail!("unknown --mix {other} (realistic, ignored, queued)"),
        };
        Ok(Mix {
            templates: names
                .iter()
                .map(|n| template(env, n))
                .collect::<Result<_>>()?,
            kind: kind.to_string(),
        })
    }

    fn plan(&self, i: usize) -> (&Template, u64, usize) {
        let n = self.templates.len();
        match self.kind.as_str() {
            "realistic" => (&self.templates[i % n], (i / n) as u64, (i / n) % MEMBERS),
            "ignored" => (&self.templates[0], (i % 1000) as u64, 0),
            "drain" => (&self.templates[0], i as u64, i % DRAIN_CHANNELS),
            _ => (&self.templates[0], i as u64, i % MEMBERS),
        }
    }

    fn sizes(&self) -> (usize, usize) {
        let sizes = self.templates.iter().map(|t| t.bytes.len());
        (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0))
    }
}

fn http_client(connections: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(connections.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    delivery: &str,
    b: &Body,
) -> Result<(u16, Value)> {
    post_bytes(http, base, delivery, b.bytes, &b.signature).await
}

async fn post_bytes(
    http: &reqwest::Client,
    base: &str,
    delivery: &str,
    body: impl Into<reqwest::Body>,
    signature: &str,
) -> Result<(u16, Value)> {
    let resp = http
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, v))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

// ---- statistics --------------------------------------------------------------

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

// ---- intake + memory -----------------------------------------------------------

fn intake(env: &Env, args: &Args, one_core: bool) -> Result<Value> {
    let label = if one_core {
        "1 core (taskset -c 0, TOKIO_WORKER_THREADS=1)"
    } else {
        "all cores"
    };
    set_own_affinity(env, env.client_cpus(one_core).as_deref());
    let dir = tempfile::tempdir()?;
    let (_double, api) = start_double(env, None)?;
    let port = free_port()?;
    let mut server = spawn_prpr(
        env,
        &Launch {
            dir: dir.path(),
            config: members_config(&format!(
                "[notify]\nchannel = \"C0GENERAL1\"\n[slack]\nper_channel_per_sec = {:?}\nburst = 3\n",
                args.intake_send_rate
            )),
            slack_api: &api,
            port,
            cpus: Some(env.server_cpus(one_core)),
            one_worker: one_core,
        },
    )?;
    wait_ready(&mut server, port, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(1));
    let (idle_rss, _) = memory(server.pid())?;

    let mix = Arc::new(Mix::new(env, &args.mix)?);
    let (min_size, max_size) = mix.sizes();
    let base = format!("http://127.0.0.1:{port}");
    let warmup = (args.requests / 10).max(50);
    let load_before = loadavg();
    let rt = runtime()?;
    let (elapsed, mut lat, statuses, outcomes) = rt.block_on(async {
        let http = http_client(args.connections)?;
        run_load(&http, &base, &mix, 0, warmup, args.connections).await?;
        let t = Instant::now();
        let (lat, statuses, outcomes) =
            run_load(&http, &base, &mix, warmup, args.requests, args.connections).await?;
        anyhow::Ok((t.elapsed(), lat, statuses, outcomes))
    })?;
    drop(rt);
    let (rss_after, peak) = memory(server.pid())?;
    let load_after = loadavg();
    let status = server.terminate(Duration::from_secs(30))?;
    ensure!(status.success(), "prpr exited with {status} after SIGTERM");

    lat.sort_unstable();
    let ok = statuses.get(&202).copied().unwrap_or(0);
    ensure!(
        ok == args.requests,
        "not every delivery got 202: {statuses:?}\n{}",
        server.log_tail()
    );
    let rps = args.requests as f64 / elapsed.as_secs_f64();
    let r = json!({
        "mode": label,
        "mix": args.mix,
        "send_rate_per_channel": args.intake_send_rate,
        "requests": args.requests,
        "warmup": warmup,
        "connections": args.connections,
        "body_bytes": [min_size, max_size],
        "seconds": elapsed.as_secs_f64(),
        "requests_per_sec": rps,
        "p50_ms": pct(&lat, 0.50),
        "p99_ms": pct(&lat, 0.99),
        "max_ms": pct(&lat, 1.0),
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "outcomes": outcomes,
        "rss_idle_mib": mib(idle_rss),
        "rss_end_mib": mib(rss_after),
        "rss_peak_mib": mib(peak),
        "load_before": load_before,
        "load_after": load_after,
    });
    println!(
        "intake, {label}: {} deliveries ({}–{} bytes) over {} connections in {:.2} s: {:.0} req/s; \
         latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; outcomes {}",
        args.requests,
        min_size,
        max_size,
        args.connections,
        elapsed.as_secs_f64(),
        rps,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        r["outcomes"]
    );
    println!(
        "memory, {label}: RSS idle {:.1} MiB, at end {:.1} MiB, peak (VmHWM) {:.1} MiB; load {load_before} → {load_after}",
        mib(idle_rss),
        mib(rss_after),
        mib(peak)
    );
    Ok(r)
}

type LoadResult = (Vec<u64>, BTreeMap<u16, usize>, BTreeMap<String, usize>);

/// `count` deliveries over `connections` concurrent keep-alive connections.
async fn run_load(
    http: &reqwest::Client,
    base: &str,
    mix: &Arc<Mix>,
    first: usize,
    count: usize,
    connections: usize,
) -> Result<LoadResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let run_id = std::process::id();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, base, mix, next) = (http.clone(), base.to_string(), mix.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(count / connections + 1);
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let i = first + i;
                let (template, number, reviewer) = mix.plan(i);
                let (body, sig) = template.render(number, reviewer);
                let delivery = format!("bench-{run_id}-{i}");
                let t = Instant::now();
                let (status, v) = match post_bytes(&http, &base, &delivery, body, &sig).await {
                    Ok(r) => r,
                    Err(_) => (0, Value::Null),
                };
                lat.push(t.elapsed().as_micros() as u64);
                *statuses.entry(status).or_default() += 1;
                if let Some(o) = v["status"].as_str() {
                    *outcomes.entry(o.to_string()).or_default() += 1;
                }
            }
            (lat, statuses, outcomes)
        }));
    }
    let mut lat = Vec::with_capacity(count);
    let mut statuses = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    for t in tasks {
        let (l, s, o) = t.await?;
        lat.extend(l);
        for (k, v) in s {
            *statuses.entry(k).or_insert(0) += v;
        }
        for (k, v) in o {
            *outcomes.entry(k).or_insert(0) += v;
        }
    }
    Ok((lat, statuses, outcomes))
}

// ---- start-up ------------------------------------------------------------------

fn startup(env: &Env, args: &Args) -> Result<Value> {
    set_own_affinity(env, None);
    let dir = tempfile::tempdir()?;
    let (_double, api) = start_double(env, None)?;
    let config = members_config("[notify]\nchannel = \"C0GENERAL1\"\n");
    // First start creates and migrates the database; it is not counted.
    let mut times = Vec::new();
    for run in 0..=args.startup_runs {
        let port = free_port()?;
        let t = Instant::now();
        let mut p = spawn_prpr(
            env,
            &Launch {
                dir: dir.path(),
                config: config.clone(),
                slack_api: &api,
                port,
                cpus: None,
                one_worker: false,
            },
        )?;
        let ready = wait_ready(&mut p, port, Duration::from_secs(30))?;
        let ms = ready.duration_since(t).as_secs_f64() * 1000.0;
        let status = p.terminate(Duration::from_secs(30))?;
        ensure!(status.success(), "prpr exited with {status} after SIGTERM");
        if run > 0 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let db_kb = std::fs::metadata(dir.path().join("prpr.db")).map_or(0, |m| m.len() / 1024);
    println!(
        "start-up (exec → /readyz 200, existing {db_kb} KiB database, Slack auth.test included): median {median:.1} ms, min {:.1} ms, max {:.1} ms over {} runs; load {}",
        times[0],
        times[times.len() - 1],
        times.len(),
        loadavg()
    );
    Ok(json!({
        "runs": times.len(),
        "median_ms": median,
        "min_ms": times[0],
        "max_ms": times[times.len() - 1],
        "load": loadavg(),
    }))
}

// ---- end to end ----------------------------------------------------------------

/// The double's clock (ms since it started) minus ours (ms since `epoch`),
/// from the calibration post with the shortest round trip.
async fn clock_offset(
    http: &reqwest::Client,
    api: &str,
    base: &str,
    epoch: Instant,
) -> Result<f64> {
    let mut best: Option<(f64, String, f64)> = None; // (rtt, text, midpoint)
    for k in 0..20 {
        let text = format!("calibrate-{}-{k}", fastish_id());
        let t0 = epoch.elapsed().as_secs_f64() * 1000.0;
        let resp = http
            .post(format!("{api}/chat.postMessage"))
            .bearer_auth(TOKEN)
            // A channel of its own per post: a rate-limited double accepts each.
            .json(&json!({"channel": format!("C0CALIB{k:03}"), "text": text}))
            .send()
            .await?;
        let t1 = epoch.elapsed().as_secs_f64() * 1000.0;
        ensure!(resp.status().is_success(), "calibration post failed");
        let rtt = t1 - t0;
        if best.as_ref().is_none_or(|b| rtt < b.0) {
            best = Some((rtt, text, (t0 + t1) / 2.0));
        }
    }
    let (_, text, mid) = best.context("no calibration")?;
    let posted = double_posted(http, base).await?;
    let received = posted
        .iter()
        .find(|p| p["text"] == text.as_str())
        .and_then(|p| p["received_ms"].as_f64())
        .context("calibration post not found at the double")?;
    Ok(received - mid)
}

fn fastish_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

async fn double_posted(http: &reqwest::Client, base: &str) -> Result<Vec<Value>> {
    let v: Value = http
        .get(format!("{base}/_double/posted"))
        .send()
        .await?
        .json()
        .await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// PR number in a notification text (`…Hello-World#123>`).
fn pr_number(text: &str) -> Option<u64> {
    let rest = text.split("Hello-World#").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn e2e(env: &Env, args: &Args) -> Result<Value> {
    set_own_affinity(env, None);
    let dir = tempfile::tempdir()?;
    let (_double, api) = start_double(env, None)?;
    let double_base = api.trim_end_matches("/api").to_string();
    let port = free_port()?;
    // prpr's own limiter out of the way: this measures the pipeline.
    let config = members_config(
        "[notify]\nchannel = \"C0GENERAL1\"\n[slack]\nper_channel_per_sec = 1000.0\nburst = 1000\n",
    );
    let mut server = spawn_prpr(
        env,
        &Launch {
            dir: dir.path(),
            config,
            slack_api: &api,
            port,
            cpus: None,
            one_worker: false,
        },
    )?;
    wait_ready(&mut server, port, Duration::from_secs(30))?;
    let base = format!("http://127.0.0.1:{port}");
    let bodies: Vec<(u64, Body)> = (0..args.e2e as u64)
        .map(|i| {
            let n = 10_000 + i;
            review_request(env, &format!("r{}", i as usize % MEMBERS), n).map(|v| (n, body(&v)))
        })
        .collect::<Result<_>>()?;
    let rt = runtime()?;
    let result = rt.block_on(async {
        let http = http_client(4)?;
        let epoch = Instant::now();
        let offset_before = clock_offset(&http, &api, &double_base, epoch).await?;
        let mut sent_at = BTreeMap::new();
        for (i, (n, b)) in bodies.iter().enumerate() {
            let t = epoch.elapsed().as_secs_f64() * 1000.0;
            let (status, v) = post(&http, &base, &format!("e2e-{i}"), b).await?;
            ensure!(
                status == 202 && v["status"] == "queued",
                "delivery {i}: {status} {v}"
            );
            sent_at.insert(*n, t);
            // One delivery at a time, spaced: this measures latency, not a queue.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let posted = loop {
            let posted: Vec<Value> = double_posted(&http, &double_base)
                .await?
                .into_iter()
                .filter(|p| !p["channel"].as_str().unwrap_or("").starts_with("C0CALIB"))
                .collect();
            if posted.len() >= bodies.len() || Instant::now() > deadline {
                break posted;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let offset_after = clock_offset(&http, &api, &double_base, epoch).await?;
        ensure!(
            posted.len() == bodies.len(),
            "{} of {} notifications arrived",
            posted.len(),
            bodies.len()
        );
        let offset = (offset_before + offset_after) / 2.0;
        let mut lat = Vec::new();
        for p in &posted {
            let n = p["text"]
                .as_str()
                .and_then(pr_number)
                .context("PR number in text")?;
            let sent = sent_at.get(&n).context("posted a PR that was not sent")?;
            let received = p["received_ms"].as_f64().context("received_ms")? - offset;
            lat.push(((received - sent).max(0.0) * 1000.0) as u64);
        }
        lat.sort_unstable();
        anyhow::Ok((lat, offset_after - offset_before))
    })?;
    let (lat, drift) = result;
    let status = server.terminate(Duration::from_secs(30))?;
    ensure!(status.success(), "prpr exited with {status}");
    println!(
        "end to end (delivery sent → chat.postMessage at the double, no rate limit), {} notifications: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (clock calibration drift {drift:.3} ms); load {}",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        loadavg()
    );
    Ok(json!({
        "notifications": lat.len(),
        "p50_ms": pct(&lat, 0.5),
        "p99_ms": pct(&lat, 0.99),
        "max_ms": pct(&lat, 1.0),
        "calibration_drift_ms": drift,
        "load": loadavg(),
    }))
}

// ---- burst to one rate-limited channel -------------------------------------------

fn burst(env: &Env, args: &Args) -> Result<Value> {
    set_own_affinity(env, None);
    let dir = tempfile::tempdir()?;
    // Slack's documented limit: about 1 message per second per channel.
    let (_double, api) = start_double(env, Some((1.0, 1, 1)))?;
    let double_base = api.trim_end_matches("/api").to_string();
    let port = free_port()?;
    // By default prpr's defaults for the limiter (1/s, burst 3): prpr itself
    // goes a little faster than the double allows, so the 429 path is exercised.
    // Threads off: one top-level message per notice, as the scenario counts
    // them (with threads, root cards and their updates share the channel).
    let config = members_config(&format!(
        "[notify]\nchannel = \"C0BURST001\"\ndelivery = \"channel\"\nthreads = false\n[slack]\nper_channel_per_sec = {:?}\nburst = {}\n",
        args.burst_send_rate, args.burst_send_burst
    ));
    let mut server = spawn_prpr(
        env,
        &Launch {
            dir: dir.path(),
            config,
            slack_api: &api,
            port,
            cpus: None,
            one_worker: false,
        },
    )?;
    wait_ready(&mut server, port, Duration::from_secs(30))?;
    let base = format!("http://127.0.0.1:{port}");
    let n = args.burst;
    let bodies: Vec<Body> = (0..n as u64)
        .map(|i| {
            review_request(env, &format!("r{}", i as usize % MEMBERS), 20_000 + i).map(|v| body(&v))
        })
        .collect::<Result<_>>()?;
    let rt = runtime()?;
    let (total, posted, attempts) = rt.block_on(async {
        let http = http_client(4)?;
        let epoch = Instant::now();
        let offset = clock_offset(&http, &api, &double_base, epoch).await?;
        let first_sent = epoch.elapsed().as_secs_f64() * 1000.0;
        for (i, b) in bodies.iter().enumerate() {
            let (status, v) = post(&http, &base, &format!("burst-{i}"), b).await?;
            ensure!(
                status == 202 && v["status"] == "queued",
                "delivery {i}: {status} {v}"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(n as u64 * 3 + 60);
        let mut posted;
        loop {
            posted = double_posted(&http, &double_base)
                .await?
                .into_iter()
                .filter(|p| p["channel"] == "C0BURST001")
                .collect::<Vec<_>>();
            if posted.len() >= n || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Anything sent twice would show up within a few seconds.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let posted: Vec<Value> = double_posted(&http, &double_base)
            .await?
            .into_iter()
            .filter(|p| p["channel"] == "C0BURST001")
            .collect();
        let last = posted
            .iter()
            .filter_map(|p| p["received_ms"].as_f64())
            .fold(f64::NAN, f64::max);
        let total = (last - offset - first_sent) / 1000.0;
        let attempts: Vec<Value> = http
            .get(format!("{double_base}/_double/attempts"))
            .send()
            .await?
            .json::<Value>()
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default();
        anyhow::Ok((total, posted, attempts))
    })?;
    let status = server.terminate(Duration::from_secs(30))?;
    ensure!(status.success(), "prpr exited with {status}");
    let texts: Vec<&str> = posted.iter().filter_map(|p| p["text"].as_str()).collect();
    let distinct: HashSet<&str> = texts.iter().copied().collect();
    let numbers: Vec<u64> = texts.iter().filter_map(|t| pr_number(t)).collect();
    let expected: Vec<u64> = (0..n as u64).map(|i| 20_000 + i).collect();
    let in_order = numbers == expected;
    let limited = attempts
        .iter()
        .filter(|a| a["channel"] == "C0BURST001" && a["status"] == 429)
        .count();
    println!(
        "burst of {n} to one channel, prpr at {}/s burst {}, double at 1 msg/s (429 + Retry-After: 1 beyond): last arrived {total:.2} s after the first delivery (floor {} s); \
         {} posted, {} distinct texts, in order: {in_order}; 429s answered: {limited}; load {}",
        args.burst_send_rate,
        args.burst_send_burst,
        n.saturating_sub(1),
        posted.len(),
        distinct.len(),
        loadavg()
    );
    ensure!(
        posted.len() == n && distinct.len() == n,
        "expected each of {n} exactly once: {} posted, {} distinct",
        posted.len(),
        distinct.len()
    );
    ensure!(in_order, "not in order: {numbers:?}");
    Ok(json!({
        "notifications": n,
        "prpr_per_channel_per_sec": args.burst_send_rate,
        "prpr_burst": args.burst_send_burst,
        "total_s": total,
        "floor_s": n.saturating_sub(1),
        "posted": posted.len(),
        "distinct": distinct.len(),
        "in_order": in_order,
        "rate_limited_429": limited,
        "load": loadavg(),
    }))
}

// ---- a backlog over many channels -------------------------------------------------

async fn double_count(http: &reqwest::Client, base: &str) -> Result<usize> {
    let v: Value = http
        .get(format!("{base}/_double/count"))
        .send()
        .await?
        .json()
        .await?;
    v["posted"]
        .as_u64()
        .map(|n| n as usize)
        .context("count from the double")
}

fn drain(env: &Env, args: &Args) -> Result<Value> {
    set_own_affinity(env, None);
    let dir = tempfile::tempdir()?;
    // Answers at once, no rate limit of its own: prpr's limiter is the pace.
    let (_double, api) = start_double(env, None)?;
    let double_base = api.trim_end_matches("/api").to_string();
    let config = |per_sec: f64, burst: u32| {
        let mut c = format!(
            "[notify]\nchannel = \"C0GENERAL1\"\n[slack]\nper_channel_per_sec = {per_sec:?}\nburst = {burst}\n[members]\n"
        );
        for i in 0..DRAIN_CHANNELS {
            c.push_str(&format!("rv{i:06} = \"U0DR{i:05}\"\n"));
        }
        c
    };
    let launch = |config: String, port: u16| Launch {
        dir: dir.path(),
        config,
        slack_api: &api,
        port,
        cpus: None,
        one_worker: false,
    };
    // The backlog is queued by a prpr that hardly sends (one message per
    // channel, then one per ~3 h), then drained by one with prpr's default
    // pace per channel (1/s, burst 3) on the same database: 200/s at most
    // over 200 channels. So the figure is the sender's, however fast intake is.
    let port = free_port()?;
    let mut queuer = spawn_prpr(env, &launch(config(0.0001, 1), port))?;
    wait_ready(&mut queuer, port, Duration::from_secs(30))?;
    let base = format!("http://127.0.0.1:{port}");
    let mix = Arc::new(Mix::new(env, "drain")?);
    let n = args.drain;
    let rt = runtime()?;
    let http = http_client(16)?;
    let intake_s = rt.block_on(async {
        let t0 = Instant::now();
        let (_, statuses, _) = run_load(&http, &base, &mix, 0, n, 16).await?;
        ensure!(
            statuses.get(&202).copied().unwrap_or(0) == n,
            "not every delivery got 202: {statuses:?}"
        );
        anyhow::Ok(t0.elapsed().as_secs_f64())
    })?;
    let status = queuer.terminate(Duration::from_secs(30))?;
    ensure!(status.success(), "the queueing prpr exited with {status}");
    let at_restart = rt.block_on(double_count(&http, &double_base))?;

    let port = free_port()?;
    let mut server = spawn_prpr(env, &launch(config(1.0, 3), port))?;
    let t1 = Instant::now();
    wait_ready(&mut server, port, Duration::from_secs(30))?;
    let (drain_s, samples, posted) = rt.block_on(async {
        let deadline = t1 + Duration::from_secs(n as u64 / 20 + 60);
        // The count each second: the steady rate, not only the mean.
        let mut samples = vec![(0.0, at_restart)];
        let drain_s = loop {
            let c = double_count(&http, &double_base).await?;
            let t = t1.elapsed().as_secs_f64();
            if samples.last().is_some_and(|(at, _)| t - at >= 1.0) {
                samples.push((t, c));
            }
            if c >= n {
                break t;
            }
            ensure!(Instant::now() < deadline, "only {c} of {n} posted in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Anything sent twice would show up within a few seconds.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let posted = double_posted(&http, &double_base).await?;
        anyhow::Ok((drain_s, samples, posted))
    })?;
    let status = server.terminate(Duration::from_secs(30))?;
    ensure!(status.success(), "prpr exited with {status}");
    let at_intake_end = at_restart;
    let distinct: HashSet<(String, u64)> = posted
        .iter()
        .filter_map(|p| {
            Some((
                p["channel"].as_str()?.to_string(),
                pr_number(p["text"].as_str()?)?,
            ))
        })
        .collect();
    let remaining = n - at_intake_end.min(n);
    let rate = remaining as f64 / drain_s.max(1e-9);
    // The slowest whole second after the first (the burst allowance is spent then).
    let worst = samples
        .windows(2)
        .skip(1)
        .map(|w| (w[1].1 - w[0].1) as f64 / (w[1].0 - w[0].0))
        .fold(f64::INFINITY, f64::min);
    println!(
        "drain of {n} notifications over {DRAIN_CHANNELS} channels (prpr 1/s per channel, burst 3; double answers at once): \
         queued in {intake_s:.1} s ({at_intake_end} sent meanwhile); after a restart at full pace, the remaining {remaining} in {drain_s:.1} s: {rate:.0} sends/s \
         (ceiling {DRAIN_CHANNELS}/s; slowest second {worst:.0}/s); {} posted, {} distinct; load {}",
        posted.len(),
        distinct.len(),
        loadavg()
    );
    ensure!(
        posted.len() == n && distinct.len() == n,
        "expected each of {n} exactly once: {} posted, {} distinct",
        posted.len(),
        distinct.len()
    );
    if !args.smoke {
        ensure!(
            rate >= 0.8 * DRAIN_CHANNELS as f64,
            "drained at {rate:.0} sends/s, under 80 % of the {DRAIN_CHANNELS}/s Slack allows"
        );
    }
    Ok(json!({
        "notifications": n,
        "channels": DRAIN_CHANNELS,
        "intake_s": intake_s,
        "sent_while_queueing": at_intake_end,
        "drained_after_restart": remaining,
        "drain_s": drain_s,
        "sends_per_sec": rate,
        "slowest_second_per_sec": worst,
        "posted": posted.len(),
        "distinct": distinct.len(),
        "load": loadavg(),
    }))
}

// ---- a mention storm beside ordinary deliveries ------------------------------------

fn storm(env: &Env) -> Result<Value> {
    set_own_affinity(env, None);
    let dir = tempfile::tempdir()?;
    let (_double, api) = start_double(env, None)?;
    let port = free_port()?;
    let mut server = spawn_prpr(
        env,
        &Launch {
            dir: dir.path(),
            config: members_config("[notify]\nchannel = \"C0GENERAL1\"\n"),
            slack_api: &api,
            port,
            cpus: None,
            one_worker: false,
        },
    )?;
    wait_ready(&mut server, port, Duration::from_secs(30))?;
    let base = format!("http://127.0.0.1:{port}");
    let mut comment = fixture(env, "issue_comment.created.issue")?;
    comment["issue"]["pull_request"] =
        json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"});
    let text: String = (0..100_000).map(|i| format!("@stranger{i} ")).collect();
    comment["comment"]["body"] = json!(text);
    let big = body(&comment);
    let small: Vec<Body> = (0..20u64)
        .map(|i| {
            review_request(env, &format!("r{}", i as usize % MEMBERS), 30_000 + i).map(|v| body(&v))
        })
        .collect::<Result<_>>()?;
    let rt = runtime()?;
    let (storm_ms, small_ms) = rt.block_on(async {
        let http = http_client(8)?;
        let started = Instant::now();
        let storm = {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let resp = http
                    .post(format!("{base}/webhook"))
                    .header("content-type", "application/json")
                    .header("x-github-event", "issue_comment")
                    .header("x-github-delivery", "storm-1")
                    .header("x-hub-signature-256", &big.signature)
                    .body(big.bytes)
                    .send()
                    .await?;
                let status = resp.status().as_u16();
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                anyhow::Ok((status, v, started.elapsed()))
            })
        };
        // Small deliveries while the storm is being read, scanned and stored.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut small_ms = Vec::new();
        for (i, b) in small.iter().enumerate() {
            let t = Instant::now();
            let (status, v) = post(&http, &base, &format!("storm-small-{i}"), b).await?;
            ensure!(status == 202, "small delivery {i}: {status} {v}");
            small_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (status, v, took) = storm.await??;
        ensure!(status == 202, "the storm: {status} {v}");
        anyhow::Ok((took.as_secs_f64() * 1000.0, small_ms))
    })?;
    let status = server.terminate(Duration::from_secs(30))?;
    ensure!(status.success(), "prpr exited with {status}");
    let worst = small_ms.iter().copied().fold(0.0, f64::max);
    println!(
        "mention storm: a comment of 100,000 unmapped mentions answered 202 in {storm_ms:.0} ms; 20 review requests sent meanwhile: worst {worst:.1} ms; load {}",
        loadavg()
    );
    Ok(
        json!({"storm_ms": storm_ms, "small_worst_ms": worst, "small_ms": small_ms, "load": loadavg()}),
    )
}
/// A scheduled digest of 300 open PRs over 12 repositories: the scheduler's
/// own code (filters, grouping, oldest first, paging within 50 blocks) and
/// the rendering of every page, timed in process. Goal: under 50 ms.
fn reminders_digest(args: &Args) -> Result<Value> {
    use prpr::config::{Config, Glob, LocalTime, Schedule, SlackUser, TitleTerm};
    use prpr::notice::{Card, Pr, PrStatus, ReviewState, Reviewer};
    use prpr::reminders::digest::Snoozes;

    const NOW: i64 = 1_800_000_000_000;
    let mut cfg = Config::default();
    for i in 0..MEMBERS {
        cfg.notify
            .members
            .insert(&format!("r{i}"), SlackUser::Id(format!("U{i:08}")));
    }
    let cards: Vec<Card> = (0..300u64)
        .map(|i| {
            let repo = format!("acme/service-{:02}", i % 12);
            let state = |k: u64| match (i + k) % 5 {
                0 => ReviewState::Approved,
                1 => ReviewState::ChangesRequested,
                _ => ReviewState::Pending,
            };
            Card {
                pr: Pr {
                    link: format!("https://github.com/{repo}/pull/{}", i + 1),
                    repo,
                    number: i + 1,
                    title: format!("Refactor the <cache> layer & retry logic, part {i}"),
                    author: format!("r{}", i % 50),
                    size: Some((120, 40)),
                },
                status: PrStatus::Open,
                reviewers: (1..=3)
                    .map(|k| Reviewer {
                        name: format!("r{}", (i + k) % 50),
                        team: false,
                        state: state(k),
                    })
                    .chain([Reviewer {
                        name: "acme/backend".into(),
                        team: true,
                        state: ReviewState::Pending,
                    }])
                    .collect(),
                labels: vec!["backend".into()],
                base: Some("main".into()),
                created_at: Some(NOW - (i as i64 + 1) * 3_600_000),
                updated_at: Some(NOW - (i as i64 + 1) * 1_800_000),
            }
        })
        .collect();
    let mut s = Schedule::new("bench", "C0BENCH001");
    s.times = vec![LocalTime {
        hour: 9,
        minute: 30,
    }];
    s.repos = vec![Glob::new("acme/*").map_err(anyhow::Error::msg)?];
    s.ignore_labels = vec!["on-hold".into()];
    s.ignore_terms = vec![TitleTerm::parse("WIP").map_err(anyhow::Error::msg)?];
    s.remind_authors = true;
    let snoozes = Snoozes::new();
    let runs = if args.smoke { 5 } else { 101 };
    let mut times = Vec::with_capacity(runs);
    let mut pages = 0;
    let mut listed = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let notes = prpr::reminders::schedule_notifications(&s, &cfg, &cards, &snoozes, NOW);
        let mut blocks = 0;
        for n in &notes {
            let m = prpr::slack::render::render(&n.address, &n.notice);
            blocks += m.blocks.as_array().map_or(0, Vec::len);
        }
        times.push(started.elapsed());
        pages = notes.len();
        listed = blocks;
    }
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    println!(
        "300 PRs, 12 repositories: {pages} messages ({listed} blocks); median {:.2} ms, max {:.2} ms over {runs} runs",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    if !args.smoke {
        ensure!(
            median < Duration::from_millis(50),
            "the digest took {median:?} (goal: under 50 ms)"
        );
    }
    Ok(json!({
        "prs": 300, "repositories": 12, "messages": pages, "blocks": listed, "runs": runs,
        "median_ms": median.as_secs_f64() * 1e3, "max_ms": max.as_secs_f64() * 1e3
    }))
}
