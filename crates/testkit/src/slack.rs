//! A double of the Slack Web API: `chat.postMessage`, `auth.test`,
//! `users.list`, with Slack's auth errors, per-channel rate limiting (HTTP 429
//! with `Retry-After`), and injectable faults (5xx, hangs, forced 429s, API
//! errors).
//!
//! Methods are served at `{api_url}/{method}`, as on `https://slack.com/api`.
//! Besides the API it serves `GET /_double/posted`, `GET /_double/attempts`
//! and `POST /_double/reset` (used by the `slack-double` binary).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};

use crate::server::{Server, lock, parse_form};

/// The bot token the double expects unless configured otherwise.
pub const DEFAULT_TOKEN: &str = "xoxb-test-token";

/// Slack's limit on `text` length for `chat.postMessage` (`msg_too_long`).
const MAX_TEXT_CHARS: usize = 40_000;
/// Slack's limit on the number of blocks in one message (`invalid_blocks`).
const MAX_BLOCKS: usize = 50;

/// How the double is set up.
#[derive(Clone, Debug)]
pub struct SlackConfig {
    /// Expected bot token, sent as `Authorization: Bearer <token>`
    /// (or as a `token` form field). Default `"xoxb-test-token"`.
    pub token: String,
    /// `None`: every channel / user ID is accepted. `Some(list)`: IDs not in
    /// the list get `channel_not_found` (user IDs included, for DMs).
    pub known_channels: Option<Vec<String>>,
    /// Per-channel token bucket for `chat.postMessage`; `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Workspace members returned by `users.list`, in this order.
    pub users: Vec<SlackUser>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            token: DEFAULT_TOKEN.to_owned(),
            known_channels: None,
            rate_limit: None,
            users: Vec::new(),
        }
    }
}

/// A token bucket per channel: `burst` posts at once, refilled at
/// `per_second`. Real Slack allows about 1 message per second per channel
/// with short bursts.
#[derive(Clone, Debug)]
pub struct RateLimit {
    /// Refill rate, messages per second, per channel. `<= 0` = no refill.
    pub per_second: f64,
    /// Bucket size (at least 1 is used).
    pub burst: u32,
    /// Value of the `Retry-After` header on a 429. `0` = computed from the
    /// refill rate (seconds until one token is back, rounded up, at least 1).
    pub retry_after_secs: u64,
}

/// A workspace member for `users.list`.
#[derive(Clone, Debug)]
pub struct SlackUser {
    /// `U…` ID.
    pub id: String,
    /// The legacy username handle (`name`).
    pub name: String,
    /// `profile.display_name` (also used as `real_name`).
    pub display_name: String,
    /// Deactivated account.
    pub deleted: bool,
}

/// A failure injected into `chat.postMessage` (other methods are unaffected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Behave normally.
    None,
    /// Answer with this HTTP status and a plain-text body (e.g. 500, 502, 503).
    Status(u16),
    /// Accept the request and never answer; the client must time out.
    /// Released (connection reset) when the double stops.
    Hang,
    /// HTTP 429 with `Retry-After`, whatever the bucket says.
    RateLimited {
        /// Value of the `Retry-After` header.
        retry_after_secs: u64,
    },
    /// HTTP 200 `{"ok":false,"error":<this>}`, e.g. `"channel_not_found"`.
    Error(String),
}

/// A message the double accepted.
#[derive(Clone, Debug, Serialize)]
pub struct Posted {
    /// The `channel` argument as sent (a `U…` ID for a DM; the response
    /// carries the `D…` channel ID instead).
    pub channel: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    pub unfurl_links: Option<bool>,
    pub unfurl_media: Option<bool>,
    pub thread_ts: Option<String>,
    /// The `ts` returned to the client.
    pub ts: String,
    #[serde(skip)]
    pub at: Instant,
}

/// One request to the API, accepted or not.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Slack method, e.g. `"chat.postMessage"`.
    pub method: String,
    pub channel: Option<String>,
    /// HTTP status answered; `0` for a request that was left hanging.
    pub status: u16,
    /// Slack `error` of an `ok:false` answer (`"ratelimited"` for a 429,
    /// `"hang"` for a hanging request); `None` on success and on
    /// [`Fault::Status`].
    pub error: Option<String>,
    pub at: Instant,
}

/// Handle to a running Slack double. Cheap to clone; all clones share the
/// same server and records.
#[derive(Clone)]
pub struct SlackDouble {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    config: SlackConfig,
    started: Instant,
    state: Mutex<SlackState>,
    posted_count: watch::Sender<usize>,
    stopped: Arc<Notify>,
}

#[derive(Default)]
struct SlackState {
    posted: Vec<Posted>,
    attempts: Vec<Attempt>,
    standing: Option<Fault>,
    next: VecDeque<Fault>,
    buckets: HashMap<String, Bucket>,
    last_ts_micros: u64,
    request_seq: u64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl SlackDouble {
    /// Starts the double on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// If no loopback port can be bound (a broken test environment).
    pub async fn start(config: SlackConfig) -> SlackDouble {
        match Self::start_on(config, 0).await {
            Ok(d) => d,
            Err(e) => panic!("slack double: cannot bind 127.0.0.1:0: {e}"),
        }
    }

    /// Starts the double on `127.0.0.1:port` (`0` = any free port).
    pub async fn start_on(config: SlackConfig, port: u16) -> std::io::Result<SlackDouble> {
        let stopped = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            config,
            started: Instant::now(),
            state: Mutex::new(SlackState::default()),
            posted_count: watch::Sender::new(0),
            stopped: Arc::clone(&stopped),
        });
        let router = router(Arc::clone(&shared));
        let server = Server::start(router, port, stopped).await?;
        Ok(SlackDouble {
            inner: Arc::new(Inner { shared, server }),
        })
    }

    /// `http://127.0.0.1:PORT/api`; methods are at `{api_url}/chat.postMessage`.
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url())
    }

    /// `http://127.0.0.1:PORT` (where the `/_double/*` endpoints live).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.inner.server.port()
    }

    /// Accepted messages, in arrival order.
    #[must_use]
    pub fn posted(&self) -> Vec<Posted> {
        lock(&self.inner.shared.state).posted.clone()
    }

    /// Every request, including rejected ones, in arrival order.
    #[must_use]
    pub fn attempts(&self) -> Vec<Attempt> {
        lock(&self.inner.shared.state).attempts.clone()
    }

    /// Waits until at least `n` messages were accepted, or `timeout`; returns
    /// [`posted`](Self::posted) either way.
    pub async fn wait_for_posted(&self, n: usize, timeout: Duration) -> Vec<Posted> {
        let mut rx = self.inner.shared.posted_count.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n)).await;
        self.posted()
    }

    /// Standing fault for `chat.postMessage` from now on ([`Fault::None`] to
    /// heal).
    pub fn set_fault(&self, fault: Fault) {
        lock(&self.inner.shared.state).standing = match fault {
            Fault::None => None,
            f => Some(f),
        };
    }

    /// The next `n` `chat.postMessage` calls get `fault`, then the standing
    /// mode applies again. Calls add up: `fail_next(1, A); fail_next(1, B)`
    /// fails the next call with A and the one after with B.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut state = lock(&self.inner.shared.state);
        state.next.extend(std::iter::repeat_n(fault, n));
    }

    /// Forgets posted messages, attempts, rate-limit buckets and faults.
    pub fn reset(&self) {
        reset(&self.inner.shared);
    }

    /// Stops listening: new connections are refused and requests in flight
    /// (including hanging ones) see their connection reset. Records are kept;
    /// [`restart`](Self::restart) serves again on the same port.
    pub async fn stop(&self) {
        self.inner.server.stop().await;
    }

    /// [`stop`](Self::stop), consuming this handle (other clones can still
    /// [`restart`](Self::restart)).
    pub async fn shutdown(self) {
        self.stop().await;
    }

    /// Serves again on the same port after [`stop`](Self::stop), keeping
    /// records and faults. No-op when running.
    pub async fn restart(&self) -> std::io::Result<()> {
        self.inner.server.restart().await
    }
}

fn reset(shared: &Shared) {
    let mut state = lock(&shared.state);
    state.posted.clear();
    state.attempts.clear();
    state.buckets.clear();
    state.standing = None;
    state.next.clear();
    drop(state);
    shared.posted_count.send_replace(0);
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/{method}", any(api))
        .route("/_double/posted", get(double_posted))
        .route("/_double/count", get(double_count))
        .route("/_double/attempts", get(double_attempts))
        .route("/_double/reset", post(double_reset))
        .with_state(shared)
}

/// Posted as served by `GET /_double/posted`.
#[derive(Serialize)]
struct PostedOut<'a> {
    #[serde(flatten)]
    posted: &'a Posted,
    /// Milliseconds between the double's start and the post's arrival.
    received_ms: f64,
}

/// `{"posted": n}`: how many messages were posted, without the messages.
/// For runs that post tens of thousands (the benchmark's drain).
async fn double_count(State(shared): State<Arc<Shared>>) -> Response {
    let n = lock(&shared.state).posted.len();
    axum::Json(json!({ "posted": n })).into_response()
}

async fn double_posted(State(shared): State<Arc<Shared>>) -> Response {
    let state = lock(&shared.state);
    let out: Vec<PostedOut<'_>> = state
        .posted
        .iter()
        .map(|p| PostedOut {
            posted: p,
            received_ms: p.at.saturating_duration_since(shared.started).as_secs_f64() * 1000.0,
        })
        .collect();
    axum::Json(out).into_response()
}

async fn double_attempts(State(shared): State<Arc<Shared>>) -> Response {
    let state = lock(&shared.state);
    let out: Vec<Value> = state
        .attempts
        .iter()
        .map(|a| {
            json!({
                "method": a.method,
                "channel": a.channel,
                "status": a.status,
                "error": a.error,
                "received_ms": a.at.saturating_duration_since(shared.started).as_secs_f64() * 1000.0,
            })
        })
        .collect();
    axum::Json(out).into_response()
}

async fn double_reset(State(shared): State<Arc<Shared>>) -> Response {
    reset(&shared);
    axum::Json(json!({"ok": true})).into_response()
}

/// Arguments of a Web API call, from the query string and the body.
struct Args {
    map: Map<String, Value>,
    is_json: bool,
    json_without_charset: bool,
}

impl Args {
    fn str(&self, key: &str) -> Option<String> {
        match self.map.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.map.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.as_str() {
                "true" | "1" => Some(true),
                "false" | "0" | "" => Some(false),
                _ => None,
            },
            Value::Number(n) => Some(n.as_u64() != Some(0)),
            _ => None,
        }
    }
}

fn parse_args(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<Args, &'static str> {
    let mut map = Map::new();
    for (k, v) in parse_form(query.unwrap_or("")) {
        map.insert(k, Value::String(v));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_json = content_type.starts_with("application/json");
    if is_json {
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => map.extend(obj),
                _ => return Err("invalid_json"),
            }
        }
    } else if !body.is_empty() {
        let text = std::str::from_utf8(body).map_err(|_| "invalid_form_data")?;
        for (k, v) in parse_form(text) {
            map.insert(k, Value::String(v));
        }
    }
    Ok(Args {
        map,
        is_json,
        json_without_charset: is_json && !content_type.contains("charset"),
    })
}

enum Auth {
    Ok,
    NotAuthed,
    Invalid,
}

fn check_auth(config: &SlackConfig, headers: &HeaderMap, args: &Args) -> Auth {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = match header {
        Some(h) => match h.strip_prefix("Bearer ") {
            Some(t) => Some(t.trim().to_owned()),
            None => return Auth::Invalid,
        },
        // Slack takes `token` as a form argument, but not in a JSON body.
        None if !args.is_json => args.str("token"),
        None => None,
    };
    match token {
        None => Auth::NotAuthed,
        Some(t) if t.is_empty() => Auth::NotAuthed,
        Some(t) if t == config.token => Auth::Ok,
        Some(_) => Auth::Invalid,
    }
}

fn slack_json(status: StatusCode, body: &Value, req_id: u64) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{req_id:016x}")) {
        h.insert("x-slack-req-id", v);
    }
    resp
}

fn slack_error(error: &str, req_id: u64) -> Response {
    slack_json(
        StatusCode::OK,
        &json!({"ok": false, "error": error}),
        req_id,
    )
}

fn rate_limited(retry_after_secs: u64, req_id: u64) -> Response {
    let mut resp = slack_json(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"ok": false, "error": "ratelimited"}),
        req_id,
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

fn plain_status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut resp = (status, format!("{} {reason}\n", status.as_u16())).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

impl Shared {
    fn record(
        &self,
        method: &str,
        channel: Option<String>,
        status: u16,
        error: Option<&str>,
        at: Instant,
    ) {
        lock(&self.state).attempts.push(Attempt {
            method: method.to_owned(),
            channel,
            status,
            error: error.map(str::to_owned),
            at,
        });
    }

    /// Records and builds an `ok:false` answer.
    fn fail(
        &self,
        method: &str,
        channel: Option<String>,
        error: &str,
        at: Instant,
        req_id: u64,
    ) -> Response {
        self.record(method, channel, 200, Some(error), at);
        slack_error(error, req_id)
    }
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let req_id = {
        let mut state = lock(&shared.state);
        state.request_seq += 1;
        state.request_seq
    };
    let args = match parse_args(&headers, query.as_deref(), &body) {
        Ok(a) => a,
        Err(e) => return shared.fail(&method, None, e, at, req_id),
    };
    match method.as_str() {
        "chat.postMessage" => post_message(&shared, &headers, &args, at, req_id).await,
        "auth.test" => match check_auth(&shared.config, &headers, &args) {
            Auth::NotAuthed => shared.fail(&method, None, "not_authed", at, req_id),
            Auth::Invalid => shared.fail(&method, None, "invalid_auth", at, req_id),
            Auth::Ok => {
                shared.record(&method, None, 200, None, at);
                slack_json(
                    StatusCode::OK,
                    &json!({
                        "ok": true,
                        "url": "https://test.slack.com/",
                        "team": "Test",
                        "user": "prpr",
                        "team_id": "T0TEST",
                        "user_id": "U0BOT",
                        "bot_id": "B0BOT",
                        "is_enterprise_install": false,
                    }),
                    req_id,
                )
            }
        },
        "users.list" => users_list(&shared, &headers, &args, at, req_id),
        _ => {
            shared.record(&method, None, 200, Some("unknown_method"), at);
            slack_json(
                StatusCode::OK,
                &json!({"ok": false, "error": "unknown_method", "req_method": method}),
                req_id,
            )
        }
    }
}

async fn post_message(
    shared: &Shared,
    headers: &HeaderMap,
    args: &Args,
    at: Instant,
    req_id: u64,
) -> Response {
    const M: &str = "chat.postMessage";
    let channel = args.str("channel").filter(|c| !c.is_empty());

    let fault = {
        let mut state = lock(&shared.state);
        state.next.pop_front().or_else(|| state.standing.clone())
    };
    match fault {
        None | Some(Fault::None) => {}
        Some(Fault::Status(code)) => {
            shared.record(M, channel, code, None, at);
            return plain_status(code);
        }
        Some(Fault::Hang) => {
            // Registered before the attempt is visible, so a `stop` that
            // follows a test's observation of this attempt always wakes it.
            let released = shared.stopped.notified();
            shared.record(M, channel, 0, Some("hang"), at);
            released.await;
            return plain_status(503);
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            shared.record(M, channel, 429, Some("ratelimited"), at);
            return rate_limited(retry_after_secs, req_id);
        }
        Some(Fault::Error(e)) => return shared.fail(M, channel, &e, at, req_id),
    }

    match check_auth(&shared.config, headers, args) {
        Auth::Ok => {}
        Auth::NotAuthed => return shared.fail(M, channel, "not_authed", at, req_id),
        Auth::Invalid => return shared.fail(M, channel, "invalid_auth", at, req_id),
    }

    let Some(channel) = channel else {
        return shared.fail(M, None, "channel_not_found", at, req_id);
    };
    if let Some(known) = &shared.config.known_channels
        && !known.iter().any(|k| k == &channel)
    {
        return shared.fail(M, Some(channel), "channel_not_found", at, req_id);
    }

    let text = args.str("text").filter(|t| !t.is_empty());
    let blocks = match args.map.get("blocks") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => Some(v),
            Err(_) => return shared.fail(M, Some(channel), "invalid_blocks_format", at, req_id),
        },
        Some(v) => Some(v.clone()),
    };
    let blocks = match blocks {
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(Value::Array(a))
            if a.len() > MAX_BLOCKS
                || !a
                    .iter()
                    .all(|b| b.get("type").is_some_and(Value::is_string)) =>
        {
            return shared.fail(M, Some(channel), "invalid_blocks", at, req_id);
        }
        Some(v @ Value::Array(_)) => Some(v),
        Some(_) => return shared.fail(M, Some(channel), "invalid_blocks_format", at, req_id),
        None => None,
    };
    let attachments = args
        .map
        .get("attachments")
        .is_some_and(|a| !a.is_null() && a != "");
    if text.is_none() && blocks.is_none() && !attachments {
        return shared.fail(M, Some(channel), "no_text", at, req_id);
    }
    if text
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS)
    {
        return shared.fail(M, Some(channel), "msg_too_long", at, req_id);
    }
    let thread_ts = args.str("thread_ts").filter(|t| !t.is_empty());

    let mut state = lock(&shared.state);
    if let Some(limit) = &shared.config.rate_limit
        && let Some(wait) = take_token(&mut state.buckets, &channel, limit, at)
    {
        let retry_after = if limit.retry_after_secs > 0 {
            limit.retry_after_secs
        } else {
            wait.as_secs_f64().ceil().max(1.0) as u64
        };
        state.attempts.push(Attempt {
            method: M.to_owned(),
            channel: Some(channel),
            status: 429,
            error: Some("ratelimited".to_owned()),
            at,
        });
        return rate_limited(retry_after, req_id);
    }

    let ts = next_ts(&mut state.last_ts_micros);
    let reply_channel = dm_channel_id(&channel);
    let mut message = json!({
        "type": "message",
        "user": "U0BOT",
        "bot_id": "B0BOT",
        "app_id": "A0TEST",
        "team": "T0TEST",
        "text": text.clone().unwrap_or_default(),
        "ts": ts,
    });
    if let Some(b) = &blocks {
        message["blocks"] = b.clone();
    }
    if let Some(t) = &thread_ts {
        message["thread_ts"] = Value::String(t.clone());
        message["parent_user_id"] = Value::String("U0BOT".to_owned());
    }
    state.posted.push(Posted {
        channel: channel.clone(),
        text,
        blocks,
        unfurl_links: args.bool("unfurl_links"),
        unfurl_media: args.bool("unfurl_media"),
        thread_ts,
        ts: ts.clone(),
        at,
    });
    let count = state.posted.len();
    state.attempts.push(Attempt {
        method: M.to_owned(),
        channel: Some(channel),
        status: 200,
        error: None,
        at,
    });
    drop(state);
    shared.posted_count.send_replace(count);

    let mut body = json!({"ok": true, "channel": reply_channel, "ts": ts, "message": message});
    if args.json_without_charset {
        body["warning"] = Value::String("missing_charset".to_owned());
        body["response_metadata"] = json!({"warnings": ["missing_charset"]});
    }
    slack_json(StatusCode::OK, &body, req_id)
}

/// Takes a token from `channel`'s bucket; on exhaustion returns how long until
/// one is back.
fn take_token(
    buckets: &mut HashMap<String, Bucket>,
    channel: &str,
    limit: &RateLimit,
    now: Instant,
) -> Option<Duration> {
    let capacity = f64::from(limit.burst.max(1));
    let bucket = buckets.entry(channel.to_owned()).or_insert(Bucket {
        tokens: capacity,
        last: now,
    });
    if limit.per_second > 0.0 {
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(capacity);
    }
    bucket.last = bucket.last.max(now);
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        None
    } else if limit.per_second > 0.0 {
        Some(Duration::from_secs_f64(
            (1.0 - bucket.tokens) / limit.per_second,
        ))
    } else {
        Some(Duration::from_secs(60))
    }
}

/// A Slack `ts`: `"<unix seconds>.<6-digit micros>"`, strictly increasing
/// within the double.
fn next_ts(last_micros: &mut u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let micros = now.max(last_micros.saturating_add(1));
    *last_micros = micros;
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Posting to a user ID opens (or reuses) the DM; Slack answers with the
/// DM's `D…` channel ID.
fn dm_channel_id(channel: &str) -> String {
    match channel
        .strip_prefix('U')
        .or_else(|| channel.strip_prefix('W'))
    {
        Some(rest) if !rest.is_empty() => format!("D{rest}"),
        _ => channel.to_owned(),
    }
}

fn users_list(
    shared: &Shared,
    headers: &HeaderMap,
    args: &Args,
    at: Instant,
    req_id: u64,
) -> Response {
    const M: &str = "users.list";
    match check_auth(&shared.config, headers, args) {
        Auth::Ok => {}
        Auth::NotAuthed => return shared.fail(M, None, "not_authed", at, req_id),
        Auth::Invalid => return shared.fail(M, None, "invalid_auth", at, req_id),
    }
    let limit = match args.str("limit").filter(|l| !l.is_empty()) {
        None => 0,
        Some(l) => match l.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return shared.fail(M, None, "invalid_arguments", at, req_id),
        },
    };
    let users = &shared.config.users;
    let offset = match args.str("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match decode_cursor(&c) {
            Some(o) if o <= users.len() => o,
            _ => return shared.fail(M, None, "invalid_cursor", at, req_id),
        },
    };
    let end = if limit == 0 {
        users.len()
    } else {
        offset.saturating_add(limit).min(users.len())
    };
    let members: Vec<Value> = users[offset..end]
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "team_id": "T0TEST",
                "name": u.name,
                "deleted": u.deleted,
                "real_name": u.display_name,
                "is_bot": false,
                "is_app_user": false,
                "profile": {
                    "display_name": u.display_name,
                    "display_name_normalized": u.display_name,
                    "real_name": u.display_name,
                    "real_name_normalized": u.display_name,
                },
            })
        })
        .collect();
    let next_cursor = if end < users.len() {
        B64.encode(format!("offset:{end}"))
    } else {
        String::new()
    };
    shared.record(M, None, 200, None, at);
    slack_json(
        StatusCode::OK,
        &json!({
            "ok": true,
            "members": members,
            "cache_ts": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "response_metadata": {"next_cursor": next_cursor},
        }),
        req_id,
    )
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let raw = B64.decode(cursor).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_is_strictly_increasing_and_slack_shaped() {
        let mut last = 0;
        let a = next_ts(&mut last);
        let b = next_ts(&mut last);
        assert!(b > a, "{a} {b}");
        let (secs, micros) = a.split_once('.').unwrap();
        assert_eq!(secs.len(), 10);
        assert_eq!(micros.len(), 6);
    }

    #[test]
    fn dm_ids() {
        assert_eq!(dm_channel_id("U123ABC"), "D123ABC");
        assert_eq!(dm_channel_id("C123"), "C123");
        assert_eq!(dm_channel_id("U"), "U");
    }

    #[test]
    fn bucket_refills() {
        let limit = RateLimit {
            per_second: 2.0,
            burst: 2,
            retry_after_secs: 0,
        };
        let mut buckets = HashMap::new();
        let t0 = Instant::now();
        assert!(take_token(&mut buckets, "C1", &limit, t0).is_none());
        assert!(take_token(&mut buckets, "C1", &limit, t0).is_none());
        let wait = take_token(&mut buckets, "C1", &limit, t0).unwrap();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9);
        // Other channels have their own bucket.
        assert!(take_token(&mut buckets, "C2", &limit, t0).is_none());
        assert!(take_token(&mut buckets, "C1", &limit, t0 + Duration::from_millis(500)).is_none());
    }
}
