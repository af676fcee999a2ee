//! Where a webhook enters: the HTTP server.
//!
//! `POST /webhook` (and `POST /`, the Ruby prpr's path) does only what must
//! happen before GitHub gets an answer: size and type checks, the signature,
//! decoding, and one store transaction ([`crate::pipeline::ingest`]). Slack is
//! never called here — the sender is woken instead — so the answer comes in
//! milliseconds and a Slack outage cannot make GitHub's delivery fail.
//!
//! Every answer is a small JSON object; errors carry a human-readable `error`
//! and never a stack trace. `202` is only sent once the delivery is durably
//! stored, so GitHub's "delivered" means prpr will act on it.

pub mod aws_events;
pub mod commands;
pub mod decode;
pub mod guard;
pub mod signature;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::clock::Clock;
use crate::config::{NotifyConfig, OpsConfig};
use crate::github::Event;
use crate::pipeline;
use crate::store::{Recorded, Store};
use signature::Verifier;

/// GitHub caps webhook payloads at 25 MB.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// GitHub gives up after 10 s; a body still arriving after this is not coming.
const BODY_TIMEOUT: Duration = Duration::from_secs(15);

/// Delivery IDs are GUIDs; anything much longer is not from GitHub.
const MAX_DELIVERY_ID: usize = 128;

/// What the handlers share.
pub struct Intake {
    pub store: Arc<Store>,
    pub notify: Arc<NotifyConfig>,
    /// `[ops]`: the `/aws/events` token and the ops rule's settings.
    pub ops: Arc<OpsConfig>,
    /// `None` only with `--insecure-accept-unsigned`.
    pub verifier: Option<Verifier>,
    /// Wakes the sender after something was queued.
    pub wake: Arc<Notify>,
    /// When a delivery was received (stored with it).
    pub clock: Clock,
    /// Limits on what clients can make the server log and hold.
    pub guards: Guards,
    /// What `/readyz` and `/healthz` say about the store.
    pub health: Health,
    /// The `/prpr` slash command; `None` (404) without a signing secret.
    pub commands: Option<Arc<commands::Commands>>,
}

/// The store's health as the load balancer should see it.
///
/// Why a write: a store that answers reads but cannot write (read-only file,
/// full disk, a replica after failover) once kept `/readyz` at 200 while every
/// delivery got 503. Why rate-limited: the probe is a committed write, and
/// health checks may come from several balancers. Why `/healthz` fails too
/// after [`Health::unhealthy_after`]: a store that stays unusable (a poisoned
/// file, a deleted database) is not fixed by waiting, and only a failing
/// liveness check makes ECS replace the task.
pub struct Health {
    pub unhealthy_after: Duration,
    /// Results younger than this are reused.
    probe_every: Duration,
    /// Held across a probe, so concurrent checks share one.
    state: tokio::sync::Mutex<HealthState>,
    /// Apart from `state`: deliveries update it and must never wait for a
    /// probe in progress.
    unusable_since: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// `[store] min_free`: below this many free bytes on the SQLite volume,
    /// a warning and `low_disk` in `/readyz` (0: never).
    pub min_free: u64,
}

/// Free space under `[store] min_free`, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowDisk {
    pub free_bytes: u64,
    pub min_free: u64,
}

/// The low-disk warning is logged at most this often: `/readyz` is probed
/// every few seconds by each balancer, and a filling disk is news once a
/// minute, not once a probe.
const LOW_DISK_LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct HealthState {
    last_probe: Option<(tokio::time::Instant, Result<(), String>)>,
    low_disk: Option<LowDisk>,
    low_disk_logged: Option<tokio::time::Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health::new(Duration::from_secs(120))
    }
}

impl Health {
    pub fn new(unhealthy_after: Duration) -> Health {
        Health {
            unhealthy_after,
            probe_every: Duration::from_secs(1),
            state: tokio::sync::Mutex::new(HealthState::default()),
            unusable_since: std::sync::Mutex::new(None),
            min_free: crate::config::DEFAULT_MIN_FREE,
        }
    }

    /// With `[store] min_free` = `bytes` (0 turns the check off).
    pub fn with_min_free(mut self, bytes: u64) -> Health {
        self.min_free = bytes;
        self
    }

    /// Free space under `min_free` at the last probe, if it was.
    async fn low_disk(&self) -> Option<LowDisk> {
        self.state.lock().await.low_disk
    }

    /// Checked with every write probe (so at most once a second): free space
    /// on the SQLite volume against `min_free`.
    fn check_free_space(&self, s: &mut HealthState, store: &Store, now: tokio::time::Instant) {
        let low = match store.free_space() {
            Some(free_bytes) if free_bytes < self.min_free => Some(LowDisk {
                free_bytes,
                min_free: self.min_free,
            }),
            _ => None,
        };
        if let Some(low) = low {
            let due = s
                .low_disk_logged
                .is_none_or(|at| now.duration_since(at) >= LOW_DISK_LOG_EVERY);
            if due {
                tracing::warn!(
                    free_bytes = low.free_bytes,
                    min_free = low.min_free,
                    "low disk space on the database volume: deliveries fail once it is full; free some space or grow the volume"
                );
                s.low_disk_logged = Some(now);
            }
        } else if s.low_disk.is_some() {
            tracing::info!("disk space on the database volume is above store.min_free again");
            s.low_disk_logged = None;
        }
        s.low_disk = low;
    }

    /// The store's state now: a write probe at most once per second.
    async fn probe(&self, store: &Store, clock: &Clock) -> Result<(), String> {
        let mut s = self.state.lock().await;
        let now = tokio::time::Instant::now();
        if let Some((at, result)) = &s.last_probe
            && now.duration_since(*at) < self.probe_every
        {
            return result.clone();
        }
        let result =
            match tokio::time::timeout(Duration::from_secs(2), store.probe_write(clock.now_ms()))
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the store did not answer within 2 s".to_string()),
            };
        self.check_free_space(&mut s, store, now);
        let was_failing = matches!(s.last_probe, Some((_, Err(_))));
        match &result {
            Ok(()) => {
                if was_failing {
                    tracing::info!("store usable again: /readyz answers 200");
                }
                *self.since() = None;
            }
            Err(e) => {
                if !was_failing {
                    tracing::warn!(error = %e, "store unusable: /readyz answers 503");
                }
                self.since().get_or_insert(now);
            }
        }
        s.last_probe = Some((now, result.clone()));
        result
    }

    fn since(&self) -> std::sync::MutexGuard<'_, Option<tokio::time::Instant>> {
        self.unusable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A delivery's store transaction failed or succeeded.
    fn observed(&self, ok: bool) {
        let mut since = self.since();
        if ok {
            *since = None;
        } else {
            since.get_or_insert_with(tokio::time::Instant::now);
        }
    }
}

/// What bounds a client's cost to the server; `Default` is production's.
///
/// Why a budget: bodies are read before anything else can be decided, and
/// 40 concurrent 24 MB bodies once took the process from 13 MB to 1 GB and
/// over its task's memory limit. Beyond the budget a request gets `503` with
/// `Retry-After` before its body is read.
pub struct Guards {
    /// Summarises "delivery rejected" lines per client.
    pub rejections: guard::Rejections,
    /// One permit per request being handled.
    requests: Arc<Semaphore>,
    /// One permit per KiB of request body held.
    body_kib: Arc<Semaphore>,
}

impl Default for Guards {
    fn default() -> Self {
        Guards::new(DEFAULT_MAX_INFLIGHT_BODY, DEFAULT_MAX_CONCURRENT_REQUESTS)
    }
}

/// `[server] max_inflight_body`'s default: 64 MB.
pub const DEFAULT_MAX_INFLIGHT_BODY: u64 = 64 * 1024 * 1024;
/// `[server] max_concurrent_requests`'s default.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

/// Body bytes reserved for one request, given back when dropped.
struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    fn kib(&self) -> usize {
        self.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }
    fn bytes(&self) -> usize {
        self.kib() * 1024
    }
}

impl Guards {
    /// At most `max_body` bytes of request bodies held at once (at least one
    /// maximal body, so a delivery GitHub may send can always get through
    /// alone) and at most `max_requests` requests handled at once.
    pub fn new(max_body: u64, max_requests: usize) -> Guards {
        let kib = (max_body / 1024).max(MAX_BODY as u64 / 1024) as usize;
        Guards {
            rejections: guard::Rejections::default(),
            requests: Arc::new(Semaphore::new(
                max_requests.clamp(1, Semaphore::MAX_PERMITS),
            )),
            body_kib: Arc::new(Semaphore::new(kib.min(Semaphore::MAX_PERMITS))),
        }
    }

    fn kib(bytes: usize) -> u32 {
        bytes.div_ceil(1024).clamp(1, u32::MAX as usize) as u32
    }

    fn reserve(&self, bytes: usize) -> Option<Reservation> {
        if bytes == 0 {
            return Some(Reservation(None));
        }
        self.body_kib
            .clone()
            .try_acquire_many_owned(Self::kib(bytes))
            .ok()
            .map(|p| Reservation(Some(p)))
    }

    /// Grows `r` to cover `bytes` (a chunked body's next chunk), in 1 MiB
    /// steps so a body of small chunks does not take the lock per chunk.
    fn grow(&self, r: &mut Reservation, bytes: usize) -> bool {
        let want = Self::kib(bytes.max(r.bytes() + 1024 * 1024).min(MAX_BODY));
        let more = want.saturating_sub(r.kib() as u32);
        match self.body_kib.clone().try_acquire_many_owned(more) {
            Ok(p) => {
                match &mut r.0 {
                    Some(held) => held.merge(p),
                    None => r.0 = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }
}

pub fn router(intake: Arc<Intake>) -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .route("/", post(webhook))
        .route("/aws/events", post(aws_events::handle))
        .route("/slack/commands", post(commands::handle))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { reply(StatusCode::NOT_FOUND, json!({"error": "not found"})) })
        .layer(axum::middleware::from_fn(guard::json_errors))
        .with_state(intake)
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn reject(status: StatusCode, error: impl std::fmt::Display) -> Response {
    reply(status, json!({ "error": error.to_string() }))
}

/// Seconds a client told `503` for lack of memory or slots is asked to wait.
const RETRY_AFTER_SECS: u64 = 5;

/// `503` with `Retry-After`: the server is at its budget, not broken.
fn busy(why: &str) -> Response {
    let mut r = reject(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{why}; retry in {RETRY_AFTER_SECS} s"),
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(RETRY_AFTER_SECS),
    );
    r
}

/// Up, unless the store has been unusable for longer than
/// `[store] unhealthy_after_secs`.
async fn healthz(State(app): State<Arc<Intake>>) -> Response {
    let failing = app.health.since().is_some();
    if failing && app.health.probe(&app.store, &app.clock).await.is_err() {
        let since = *app.health.since();
        if let Some(since) = since
            && since.elapsed() >= app.health.unhealthy_after
        {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unhealthy", "error": format!("store unusable for {} s", since.elapsed().as_secs())}),
            );
        }
    }
    reply(StatusCode::OK, json!({"status": "ok"}))
}

/// Ready when a delivery could be stored now. Low disk space (SQLite) is
/// reported in `low_disk` but does not make it unready: deliveries still
/// succeed, and taking the only task out of service would lose them all.
async fn readyz(State(app): State<Arc<Intake>>) -> Response {
    let probed = app.health.probe(&app.store, &app.clock).await;
    let (status, mut body) = match probed {
        Ok(()) => (StatusCode::OK, json!({"status": "ready"})),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "error": format!("store unavailable: {e}")}),
        ),
    };
    if let Some(low) = app.health.low_disk().await {
        body["low_disk"] = json!({"free_bytes": low.free_bytes, "min_free": low.min_free});
    }
    reply(status, body)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    match guard::header_text(headers, name) {
        guard::HeaderText::Value(v) => Some(v),
        _ => None,
    }
}

/// A required GitHub header: missing and not-text are told apart, since a
/// client that sent bytes it thinks are a value wants to hear "invalid".
fn required<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    match guard::header_text(headers, name) {
        guard::HeaderText::Value(v) => Ok(v),
        guard::HeaderText::Missing => Err(format!("missing {name} header")),
        guard::HeaderText::Invalid => Err(format!("invalid {name} header: not visible ASCII text")),
    }
}

async fn webhook(State(app): State<Arc<Intake>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let response = handle(&app, &headers, body).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Only bounded excerpts of what the client sent reach the log.
    let delivery = guard::loggable(&headers, "x-github-delivery");
    let event_name = guard::loggable(&headers, "x-github-event");
    match response.extensions().get::<Logged>() {
        Some(l) => tracing::info!(
            delivery_id = %delivery, event = %event_name, action = l.action.as_deref(), repo = l.repo.as_deref(),
            pr = l.number, outcome = l.outcome, notifications = l.notifications, team_expansions = l.team_expansions, skipped = %l.skipped.join("; "),
            status, latency_ms, "delivery"
        ),
        None => {
            let client = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
            if app.guards.rejections.should_log(client) {
                tracing::warn!(delivery_id = %delivery, event = %event_name, %client, status, latency_ms, "delivery rejected")
            }
        }
    }
    response
}

/// What the delivery log line says about an accepted delivery.
#[derive(Clone)]
struct Logged {
    action: Option<String>,
    repo: Option<String>,
    number: Option<u64>,
    outcome: &'static str,
    notifications: usize,
    /// Team requests to pass on to members after the debounce.
    team_expansions: usize,
    skipped: Vec<String>,
}

async fn handle(app: &Intake, headers: &HeaderMap, body: Body) -> Response {
    let too_large = || {
        reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body larger than {} MB (GitHub's limit)",
                MAX_BODY / (1024 * 1024)
            ),
        )
    };
    if let Some(len) = header_str(headers, "content-length").and_then(|v| v.parse::<u64>().ok())
        && len > MAX_BODY as u64
    {
        return too_large();
    }
    let encoding = match decode::encoding(headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes())) {
        Ok(e) => e,
        Err(e) => return reject(StatusCode::UNSUPPORTED_MEDIA_TYPE, e),
    };
    // The signature headers are checked before the body is read: an
    // unsigned 24 MB body costs nothing but its rejection.
    let mut check = match &app.verifier {
        Some(v) => {
            let sha256 = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
            let sha1 = headers.get("x-hub-signature").map(|v| v.as_bytes());
            match v.begin(sha256, sha1) {
                Ok(c) => Some(c),
                Err(e) => return reject(StatusCode::UNAUTHORIZED, e),
            }
        }
        None => {
            tracing::warn!(
                "accepting an unsigned delivery: --insecure-accept-unsigned is set; anyone can send events"
            );
            None
        }
    };
    let Ok(_request_slot) = app.guards.requests.clone().try_acquire_owned() else {
        return busy("too many requests in progress");
    };
    let announced = header_str(headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    // Bytes are reserved before they are read: the whole announced length at
    // once, or chunk by chunk for a chunked body.
    let Some(mut reserved) = app.guards.reserve(announced.unwrap_or(0).min(MAX_BODY)) else {
        return busy("too many request bodies in progress");
    };
    // A client that trickles its body must not hold a connection (and, at
    // shutdown, the whole process) for ever.
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(MAX_BODY));
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(
            deadline,
            http_body_util::BodyExt::frame(&mut body),
        )
        .await
        {
            Ok(Some(Ok(f))) => f,
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return reject(StatusCode::BAD_REQUEST, "could not read request body");
            }
            Err(_) => {
                return reject(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "request body not received within {} s",
                        BODY_TIMEOUT.as_secs()
                    ),
                );
            }
        };
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        if bytes.len() + chunk.len() > MAX_BODY {
            return too_large();
        }
        if bytes.len() + chunk.len() > reserved.bytes()
            && !app.guards.grow(&mut reserved, bytes.len() + chunk.len())
        {
            return busy("too many request bodies in progress");
        }
        if let Some(c) = &mut check {
            c.update(&chunk);
        }
        bytes.extend_from_slice(&chunk);
    }
    if let Some(c) = check
        && let Err(e) = c.finish()
    {
        return reject(StatusCode::UNAUTHORIZED, e);
    }

    let event_name = match required(headers, "X-GitHub-Event") {
        Ok(v) => v,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    let delivery_id = match required(headers, "X-GitHub-Delivery") {
        Ok(v) => v,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    if delivery_id.len() > MAX_DELIVERY_ID || !delivery_id.bytes().all(|b| b.is_ascii_graphic()) {
        return reject(
            StatusCode::BAD_REQUEST,
            "X-GitHub-Delivery must be at most 128 visible ASCII characters",
        );
    }

    let payload = match decode::payload(encoding, &bytes) {
        Ok(p) => p,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    let event = match Event::parse(event_name, &payload) {
        Ok(e) => e,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    if matches!(event, Event::Ping) {
        return reply(StatusCode::OK, json!({"status": "pong"}));
    }

    let subject = event.subject();
    match pipeline::ingest(
        &app.store,
        &app.notify,
        delivery_id,
        event_name,
        &event,
        app.clock.now_ms(),
    )
    .await
    {
        Ok(Recorded::Duplicate) => {
            let mut r = reply(StatusCode::ACCEPTED, json!({"status": "duplicate"}));
            r.extensions_mut().insert(Logged {
                action: subject.action,
                repo: subject.repo,
                number: subject.number,
                outcome: "duplicate",
                notifications: 0,
                team_expansions: 0,
                skipped: Vec::new(),
            });
            r
        }
        Ok(Recorded::Stored { queued, decision }) => {
            app.health.observed(true);
            if !queued.is_empty() {
                app.wake.notify_one();
            }
            let outcome = if queued.is_empty() {
                "ignored"
            } else {
                "queued"
            };
            let mut r = reply(
                StatusCode::ACCEPTED,
                json!({"status": outcome, "notifications": queued.len()}),
            );
            r.extensions_mut().insert(Logged {
                action: subject.action,
                repo: subject.repo,
                number: subject.number,
                outcome,
                notifications: queued.len(),
                team_expansions: decision.expansions.len(),
                skipped: decision.skipped,
            });
            r
        }
        Err(e) => {
            app.health.observed(false);
            tracing::error!(delivery_id, error = %e, "store unavailable; delivery not accepted");
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable; the delivery was not stored, retry later",
            )
        }
    }
}
