//! A double of the Slack Web API: `chat.postMessage` (with threads),
//! `chat.update`, `reactions.add`, `reactions.remove`, `auth.test`,
//! `users.list`, with Slack's auth errors, rate limiting (HTTP 429 with
//! `Retry-After`), and injectable faults (5xx, hangs, forced 429s, API
//! errors) per method.
//!
//! Methods are served at `{api_url}/{method}`, as on `https://slack.com/api`.
//! Slash commands' `response_url`s are served at `POST /commands/…`
//! ([`SlackDouble::response_url`], [`SlackDouble::responses`]).
//! Besides the API it serves `GET /_double/posted`, `GET /_double/attempts`,
//! `GET /_double/updates`, `POST /_double/delete` and `POST /_double/reset`
//! (used by the `slack-double` binary).
//!
//! # Messages, threads, edits, reactions
//!
//! - `chat.postMessage` with `thread_ts` posts a reply: `thread_ts` must be
//!   the `ts` of a live (not deleted) top-level message in the same channel,
//!   else `thread_not_found`, as Slack answers. `reply_broadcast` ("also send
//!   to channel") is recorded in [`Posted::reply_broadcast`].
//! - `chat.update` (`channel`, `ts`, `text`, `blocks`) edits a message in
//!   place: [`SlackDouble::posted`] always shows the current text and blocks
//!   (with [`Posted::edited`] counting edits) and
//!   [`SlackDouble::updates`] keeps the history of accepted edits. As on
//!   Slack, omitting `blocks` keeps the previous blocks and `blocks: []`
//!   removes them; omitting `text` keeps the previous text. Unknown or
//!   deleted messages answer `message_not_found`. Slack's `chat.update` is
//!   Tier 3 (about 50 per minute per workspace): set
//!   [`SlackConfig::update_rate_limit`] to enforce a workspace-wide bucket.
//! - `reactions.add` / `reactions.remove` (`channel`, `timestamp`, `name`)
//!   keep a set of reaction names per message ([`SlackDouble::reactions`]);
//!   errors `message_not_found`, `already_reacted`, `no_reaction`,
//!   `invalid_name`.
//! - [`SlackDouble::delete_message`] deletes a message as a person would in
//!   Slack's UI (prpr is not told). Afterwards `chat.update` and reactions on
//!   it answer `message_not_found` and replies to it `thread_not_found`. The
//!   message stays in [`SlackDouble::posted`] with [`Posted::deleted`] set, so
//!   tests can still count what was sent.
//!
//! A message posted to a user ID (`U…`, a DM) is answered with a `D…` channel
//! ID; later calls may name either.
//!
//! # Faults
//!
//! [`SlackDouble::set_fault`] and [`SlackDouble::fail_next`] apply to
//! `chat.postMessage` (as they always did);
//! [`SlackDouble::set_method_fault`] and [`SlackDouble::fail_next_method`]
//! take the method name (`"chat.update"`, `"reactions.add"`, …);
//! [`SlackDouble::fail_every`] fails a steady fraction of
//! `chat.postMessage` calls. A fault
//! answers before authentication and validation, as a failing load balancer
//! or Slack outage would.

use std::collections::{BTreeSet, HashMap, VecDeque};
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
    /// One token bucket for the whole workspace for `chat.update` (Slack's
    /// Tier 3: about 50 per minute, i.e. `per_second: 50.0 / 60.0`);
    /// `None` = unlimited.
    pub update_rate_limit: Option<RateLimit>,
    /// Workspace members returned by `users.list`, in this order.
    pub users: Vec<SlackUser>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            token: DEFAULT_TOKEN.to_owned(),
            known_channels: None,
            rate_limit: None,
            update_rate_limit: None,
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

/// A failure injected into one API method (see [`SlackDouble::set_fault`] and
/// [`SlackDouble::set_method_fault`]).
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

/// A message posted to a slash command's `response_url`.
#[derive(Clone, Debug, Serialize)]
pub struct Responded {
    /// The path after `/commands/`, naming the command invocation.
    pub path: String,
    /// The JSON body as posted (`response_type`, `text`, `blocks`).
    pub body: Value,
}

/// A message the double accepted, as it is now (after any `chat.update`).
#[derive(Clone, Debug, Serialize)]
pub struct Posted {
    /// The `channel` argument as sent (a `U…` ID for a DM; the response
    /// carries the `D…` channel ID instead).
    pub channel: String,
    /// Current text (the latest `chat.update`'s, if any).
    pub text: Option<String>,
    /// Current blocks (the latest `chat.update`'s, if any).
    pub blocks: Option<Value>,
    pub unfurl_links: Option<bool>,
    pub unfurl_media: Option<bool>,
    /// `Some(root ts)` for a reply in a thread.
    pub thread_ts: Option<String>,
    /// `reply_broadcast` as sent ("also send to channel"); `false` when
    /// absent.
    pub reply_broadcast: bool,
    /// The `ts` returned to the client.
    pub ts: String,
    /// How many `chat.update` calls changed this message.
    pub edited: u32,
    /// Deleted with [`SlackDouble::delete_message`].
    pub deleted: bool,
    /// When the post arrived (not changed by edits).
    #[serde(skip)]
    pub at: Instant,
}

/// One accepted `chat.update`, with the text and blocks the message had
/// after it.
#[derive(Clone, Debug, Serialize)]
pub struct Update {
    /// The `channel` argument as sent.
    pub channel: String,
    pub ts: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
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
    /// How many `response_url` posts were accepted.
    responded_count: watch::Sender<usize>,
    stopped: Arc<Notify>,
}

#[derive(Default)]
struct SlackState {
    posted: Vec<Posted>,
    /// `ts` → index in `posted` (a `ts` is unique across channels here).
    by_ts: HashMap<String, usize>,
    updates: Vec<Update>,
    /// Reaction names per message index in `posted`.
    reactions: HashMap<usize, BTreeSet<String>>,
    attempts: Vec<Attempt>,
    /// Injected faults by method name.
    faults: HashMap<String, MethodFaults>,
    buckets: HashMap<String, Bucket>,
    /// The workspace-wide `chat.update` bucket.
    update_bucket: HashMap<String, Bucket>,
    last_ts_micros: u64,
    request_seq: u64,
    /// Posts to `response_url`s, in arrival order.
    responded: Vec<Responded>,
}

#[derive(Default)]
struct MethodFaults {
    standing: Option<Fault>,
    next: VecDeque<Fault>,
    /// `(n, fault)`: every n-th call not taken by `next` or `standing`.
    every: Vec<(u64, Fault)>,
    /// Calls counted for `every`.
    calls: u64,
}

impl SlackState {
    /// Index of the message `ts` in `channel` (either the channel as posted
    /// or, for a DM, its `D…` ID), deleted or not.
    fn find(&self, channel: &str, ts: &str) -> Option<usize> {
        let &i = self.by_ts.get(ts)?;
        let p = self.posted.get(i)?;
        (p.channel == channel || dm_channel_id(&p.channel) == channel).then_some(i)
    }

    /// Like [`find`](Self::find), but only a message that is not deleted.
    fn find_live(&self, channel: &str, ts: &str) -> Option<usize> {
        self.find(channel, ts).filter(|&i| !self.posted[i].deleted)
    }

    /// The fault for the next call of `method`, if any.
    fn take_fault(&mut self, method: &str) -> Option<Fault> {
        let f = self.faults.get_mut(method)?;
        if let Some(fault) = f.next.pop_front().or_else(|| f.standing.clone()) {
            return Some(fault);
        }
        f.calls += 1;
        let calls = f.calls;
        f.every
            .iter()
            .find(|(n, _)| calls.is_multiple_of(*n))
            .map(|(_, fault)| fault.clone())
    }
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
            responded_count: watch::Sender::new(0),
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

    /// Accepted `chat.update` calls, in arrival order.
    #[must_use]
    pub fn updates(&self) -> Vec<Update> {
        lock(&self.inner.shared.state).updates.clone()
    }

    /// Top-level messages of `channel` that are not deleted, in order (the
    /// channel as posted, or a DM's `D…` ID). Replies sent with
    /// `reply_broadcast` are not included: they belong to their thread.
    #[must_use]
    pub fn top_level(&self, channel: &str) -> Vec<Posted> {
        let state = lock(&self.inner.shared.state);
        state
            .posted
            .iter()
            .filter(|p| {
                p.thread_ts.is_none()
                    && !p.deleted
                    && (p.channel == channel || dm_channel_id(&p.channel) == channel)
            })
            .cloned()
            .collect()
    }

    /// Replies in the thread of `root_ts` in `channel`, in order (also when
    /// the root was deleted, as Slack keeps the replies).
    #[must_use]
    pub fn thread(&self, channel: &str, root_ts: &str) -> Vec<Posted> {
        let state = lock(&self.inner.shared.state);
        state
            .posted
            .iter()
            .filter(|p| {
                p.thread_ts.as_deref() == Some(root_ts)
                    && !p.deleted
                    && (p.channel == channel || dm_channel_id(&p.channel) == channel)
            })
            .cloned()
            .collect()
    }

    /// Reaction names on message `ts` in `channel`, sorted (empty for an
    /// unknown message).
    #[must_use]
    pub fn reactions(&self, channel: &str, ts: &str) -> Vec<String> {
        let state = lock(&self.inner.shared.state);
        state
            .find(channel, ts)
            .and_then(|i| state.reactions.get(&i))
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Deletes message `ts` in `channel` as a person would in Slack (prpr is
    /// not told). Returns `false` when there is no such message, or it was
    /// already deleted.
    pub fn delete_message(&self, channel: &str, ts: &str) -> bool {
        delete_message(&self.inner.shared, channel, ts)
    }

    /// Waits until at least `n` messages were accepted, or `timeout`; returns
    /// [`posted`](Self::posted) either way.
    pub async fn wait_for_posted(&self, n: usize, timeout: Duration) -> Vec<Posted> {
        let mut rx = self.inner.shared.posted_count.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n)).await;
        self.posted()
    }

    /// A slash command's `response_url` on this double, as Slack sends
    /// one in the command's form (`https://hooks.slack.com/commands/…` on
    /// Slack). Each `id` is its own URL.
    #[must_use]
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/commands/T0000TEST/{id}/c2VjcmV0", self.base_url())
    }

    /// What was posted to `response_url`s, in arrival order.
    #[must_use]
    pub fn responses(&self) -> Vec<Responded> {
        lock(&self.inner.shared.state).responded.clone()
    }

    /// Waits until at least `n` `response_url` posts arrived, or `timeout`;
    /// returns [`responses`](Self::responses) either way.
    pub async fn wait_for_responses(&self, n: usize, timeout: Duration) -> Vec<Responded> {
        let mut rx = self.inner.shared.responded_count.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n)).await;
        self.responses()
    }

    /// Standing fault for `chat.postMessage` from now on ([`Fault::None`] to
    /// heal).
    pub fn set_fault(&self, fault: Fault) {
        self.set_method_fault(POST_MESSAGE, fault);
    }

    /// The next `n` `chat.postMessage` calls get `fault`, then the standing
    /// mode applies again. Calls add up: `fail_next(1, A); fail_next(1, B)`
    /// fails the next call with A and the one after with B.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.fail_next_method(POST_MESSAGE, n, fault);
    }

    /// Every `n`-th `chat.postMessage` call gets `fault`, for good: a steady
    /// fraction of failures under load. Several can be set (the first whose
    /// `n` divides the call count applies); [`fail_next`](Self::fail_next)
    /// and [`set_fault`](Self::set_fault) come first and are not counted.
    pub fn fail_every(&self, n: u64, fault: Fault) {
        let mut state = lock(&self.inner.shared.state);
        state
            .faults
            .entry(POST_MESSAGE.to_owned())
            .or_default()
            .every
            .push((n.max(1), fault));
    }

    /// Standing fault for calls of `method` (e.g. `"chat.update"`) from now
    /// on ([`Fault::None`] to heal). Other methods are unaffected.
    pub fn set_method_fault(&self, method: &str, fault: Fault) {
        let mut state = lock(&self.inner.shared.state);
        state.faults.entry(method.to_owned()).or_default().standing = match fault {
            Fault::None => None,
            f => Some(f),
        };
    }

    /// The next `n` calls of `method` get `fault`, then its standing mode
    /// applies again; calls add up as with [`fail_next`](Self::fail_next).
    pub fn fail_next_method(&self, method: &str, n: usize, fault: Fault) {
        let mut state = lock(&self.inner.shared.state);
        state
            .faults
            .entry(method.to_owned())
            .or_default()
            .next
            .extend(std::iter::repeat_n(fault, n));
    }

    /// Forgets posted messages, updates, reactions, attempts, rate-limit
    /// buckets and faults.
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
    state.by_ts.clear();
    state.updates.clear();
    state.reactions.clear();
    state.attempts.clear();
    state.buckets.clear();
    state.update_bucket.clear();
    state.faults.clear();
    state.responded.clear();
    drop(state);
    shared.posted_count.send_replace(0);
    shared.responded_count.send_replace(0);
}

fn delete_message(shared: &Shared, channel: &str, ts: &str) -> bool {
    let mut state = lock(&shared.state);
    match state.find_live(channel, ts) {
        Some(i) => {
            state.posted[i].deleted = true;
            true
        }
        None => false,
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/{method}", any(api))
        .route("/commands/{*rest}", post(respond_url))
        .route("/_double/posted", get(double_posted))
        .route("/_double/count", get(double_count))
        .route("/_double/attempts", get(double_attempts))
        .route("/_double/updates", get(double_updates))
        .route("/_double/delete", post(double_delete))
        .route("/_double/reset", post(double_reset))
        .with_state(shared)
}

/// Slack takes at most this many posts per `response_url`.
const RESPONSE_URL_USES: usize = 5;

/// `POST /commands/…`: a slash command's `response_url`. Slack takes a
/// JSON message (`text`, `blocks`, `response_type`) at most five times per
/// URL; the double records it and answers as Slack does.
async fn respond_url(
    State(shared): State<Arc<Shared>>,
    Path(rest): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    if body.get("text").is_none() && body.get("blocks").is_none() {
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    let mut state = lock(&shared.state);
    if state.responded.iter().filter(|r| r.path == rest).count() >= RESPONSE_URL_USES {
        return (StatusCode::NOT_FOUND, "used_url").into_response();
    }
    state.responded.push(Responded { path: rest, body });
    shared.responded_count.send_replace(state.responded.len());
    (StatusCode::OK, "ok").into_response()
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

async fn double_updates(State(shared): State<Arc<Shared>>) -> Response {
    let state = lock(&shared.state);
    let out: Vec<Value> = state
        .updates
        .iter()
        .map(|u| {
            json!({
                "channel": u.channel,
                "ts": u.ts,
                "text": u.text,
                "blocks": u.blocks,
                "received_ms": u.at.saturating_duration_since(shared.started).as_secs_f64() * 1000.0,
            })
        })
        .collect();
    axum::Json(out).into_response()
}

/// `POST /_double/delete` with `channel` and `ts` (JSON or form): deletes
/// the message as a person would; `{"ok":false,"error":"message_not_found"}`
/// when there is no such live message.
async fn double_delete(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Ok(args) = parse_args(&headers, query.as_deref(), &body) else {
        return axum::Json(json!({"ok": false, "error": "invalid_arguments"})).into_response();
    };
    let (Some(channel), Some(ts)) = (args.str("channel"), args.str("ts")) else {
        return axum::Json(json!({"ok": false, "error": "invalid_arguments"})).into_response();
    };
    if delete_message(&shared, &channel, &ts) {
        axum::Json(json!({"ok": true})).into_response()
    } else {
        axum::Json(json!({"ok": false, "error": "message_not_found"})).into_response()
    }
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

const POST_MESSAGE: &str = "chat.postMessage";
const UPDATE: &str = "chat.update";
const REACTIONS_ADD: &str = "reactions.add";
const REACTIONS_REMOVE: &str = "reactions.remove";

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
    let known = matches!(
        method.as_str(),
        POST_MESSAGE | UPDATE | REACTIONS_ADD | REACTIONS_REMOVE | "auth.test" | "users.list"
    );
    if known {
        let channel = args.str("channel").filter(|c| !c.is_empty());
        if let Some(resp) = injected_fault(&shared, &method, channel, at, req_id).await {
            return resp;
        }
    }
    match method.as_str() {
        POST_MESSAGE => post_message(&shared, &headers, &args, at, req_id),
        UPDATE => update_message(&shared, &headers, &args, at, req_id),
        REACTIONS_ADD | REACTIONS_REMOVE => react(&shared, &method, &headers, &args, at, req_id),
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

/// Applies the injected fault for `method`, if one is due: `Some(answer)`,
/// or `None` to go on normally.
async fn injected_fault(
    shared: &Shared,
    method: &str,
    channel: Option<String>,
    at: Instant,
    req_id: u64,
) -> Option<Response> {
    let fault = lock(&shared.state).take_fault(method);
    match fault {
        None | Some(Fault::None) => None,
        Some(Fault::Status(code)) => {
            shared.record(method, channel, code, None, at);
            Some(plain_status(code))
        }
        Some(Fault::Hang) => {
            // Registered before the attempt is visible, so a `stop` that
            // follows a test's observation of this attempt always wakes it.
            let released = shared.stopped.notified();
            shared.record(method, channel, 0, Some("hang"), at);
            released.await;
            Some(plain_status(503))
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            shared.record(method, channel, 429, Some("ratelimited"), at);
            Some(rate_limited(retry_after_secs, req_id))
        }
        Some(Fault::Error(e)) => Some(shared.fail(method, channel, &e, at, req_id)),
    }
}

/// `Some(answer)` unless the call carries the expected token.
fn authorize(
    shared: &Shared,
    method: &str,
    headers: &HeaderMap,
    args: &Args,
    channel: Option<&String>,
    at: Instant,
    req_id: u64,
) -> Option<Response> {
    match check_auth(&shared.config, headers, args) {
        Auth::Ok => None,
        Auth::NotAuthed => Some(shared.fail(method, channel.cloned(), "not_authed", at, req_id)),
        Auth::Invalid => Some(shared.fail(method, channel.cloned(), "invalid_auth", at, req_id)),
    }
}

/// The `blocks` argument: `Ok(None)` when absent (or null / empty string),
/// `Ok(Some(array))` (possibly empty) when valid, else Slack's error code.
fn parse_blocks(args: &Args) -> Result<Option<Vec<Value>>, &'static str> {
    let blocks = match args.map.get("blocks") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) => return Err("invalid_blocks_format"),
        },
        Some(v) => v.clone(),
    };
    match blocks {
        Value::Array(a)
            if a.len() > MAX_BLOCKS
                || !a
                    .iter()
                    .all(|b| b.get("type").is_some_and(Value::is_string)) =>
        {
            Err("invalid_blocks")
        }
        Value::Array(a) => Ok(Some(a)),
        _ => Err("invalid_blocks_format"),
    }
}

fn post_message(
    shared: &Shared,
    headers: &HeaderMap,
    args: &Args,
    at: Instant,
    req_id: u64,
) -> Response {
    const M: &str = POST_MESSAGE;
    let channel = args.str("channel").filter(|c| !c.is_empty());
    if let Some(resp) = authorize(shared, M, headers, args, channel.as_ref(), at, req_id) {
        return resp;
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
    let blocks = match parse_blocks(args) {
        Ok(b) => b.filter(|a| !a.is_empty()).map(Value::Array),
        Err(e) => return shared.fail(M, Some(channel), e, at, req_id),
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
    let reply_broadcast = thread_ts.is_some() && args.bool("reply_broadcast").unwrap_or(false);

    let mut state = lock(&shared.state);
    if let Some(root) = &thread_ts {
        let is_live_root = state
            .find_live(&channel, root)
            .is_some_and(|i| state.posted[i].thread_ts.is_none());
        if !is_live_root {
            drop(state);
            return shared.fail(M, Some(channel), "thread_not_found", at, req_id);
        }
    }
    if let Some(limit) = &shared.config.rate_limit
        && let Some(wait) = take_token(&mut state.buckets, &channel, limit, at)
    {
        state.attempts.push(Attempt {
            method: M.to_owned(),
            channel: Some(channel),
            status: 429,
            error: Some("ratelimited".to_owned()),
            at,
        });
        return rate_limited(retry_after(limit, wait), req_id);
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
        if reply_broadcast {
            message["subtype"] = Value::String("thread_broadcast".to_owned());
        }
    }
    let index = state.posted.len();
    state.by_ts.insert(ts.clone(), index);
    state.posted.push(Posted {
        channel: channel.clone(),
        text,
        blocks,
        unfurl_links: args.bool("unfurl_links"),
        unfurl_media: args.bool("unfurl_media"),
        thread_ts,
        reply_broadcast,
        ts: ts.clone(),
        edited: 0,
        deleted: false,
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

/// `chat.update`: edits a live message's text and/or blocks.
fn update_message(
    shared: &Shared,
    headers: &HeaderMap,
    args: &Args,
    at: Instant,
    req_id: u64,
) -> Response {
    const M: &str = UPDATE;
    let channel = args.str("channel").filter(|c| !c.is_empty());
    if let Some(resp) = authorize(shared, M, headers, args, channel.as_ref(), at, req_id) {
        return resp;
    }
    let Some(channel) = channel else {
        return shared.fail(M, None, "channel_not_found", at, req_id);
    };
    let Some(ts) = args.str("ts").filter(|t| !t.is_empty()) else {
        return shared.fail(M, Some(channel), "message_not_found", at, req_id);
    };
    let text = args.str("text").filter(|t| !t.is_empty());
    let blocks = match parse_blocks(args) {
        Ok(b) => b,
        Err(e) => return shared.fail(M, Some(channel), e, at, req_id),
    };
    if text.is_none() && blocks.as_ref().is_none_or(Vec::is_empty) {
        return shared.fail(M, Some(channel), "no_text", at, req_id);
    }
    if text
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS)
    {
        return shared.fail(M, Some(channel), "msg_too_long", at, req_id);
    }

    let mut state = lock(&shared.state);
    let Some(i) = state.find_live(&channel, &ts) else {
        drop(state);
        return shared.fail(M, Some(channel), "message_not_found", at, req_id);
    };
    if let Some(limit) = &shared.config.update_rate_limit
        && let Some(wait) = take_token(&mut state.update_bucket, "", limit, at)
    {
        state.attempts.push(Attempt {
            method: M.to_owned(),
            channel: Some(channel),
            status: 429,
            error: Some("ratelimited".to_owned()),
            at,
        });
        return rate_limited(retry_after(limit, wait), req_id);
    }

    let message = &mut state.posted[i];
    if let Some(t) = text {
        message.text = Some(t);
    }
    if let Some(b) = blocks {
        // As on Slack: absent keeps the blocks, `[]` removes them.
        message.blocks = (!b.is_empty()).then_some(Value::Array(b));
    }
    message.edited += 1;
    let update = Update {
        channel: channel.clone(),
        ts: ts.clone(),
        text: message.text.clone(),
        blocks: message.blocks.clone(),
        at,
    };
    let mut out = json!({
        "type": "message",
        "user": "U0BOT",
        "bot_id": "B0BOT",
        "text": message.text.clone().unwrap_or_default(),
        "edited": {"user": "U0BOT", "ts": ts},
    });
    if let Some(b) = &message.blocks {
        out["blocks"] = b.clone();
    }
    let reply_channel = dm_channel_id(&message.channel);
    let text_out = message.text.clone().unwrap_or_default();
    state.updates.push(update);
    state.attempts.push(Attempt {
        method: M.to_owned(),
        channel: Some(channel),
        status: 200,
        error: None,
        at,
    });
    drop(state);
    slack_json(
        StatusCode::OK,
        &json!({"ok": true, "channel": reply_channel, "ts": ts, "text": text_out, "message": out}),
        req_id,
    )
}

/// `reactions.add` / `reactions.remove` on a live message.
fn react(
    shared: &Shared,
    method: &str,
    headers: &HeaderMap,
    args: &Args,
    at: Instant,
    req_id: u64,
) -> Response {
    let channel = args.str("channel").filter(|c| !c.is_empty());
    if let Some(resp) = authorize(shared, method, headers, args, channel.as_ref(), at, req_id) {
        return resp;
    }
    let (Some(channel), Some(ts)) = (channel, args.str("timestamp").filter(|t| !t.is_empty()))
    else {
        let channel = args.str("channel");
        return shared.fail(method, channel, "no_item_specified", at, req_id);
    };
    // Slack accepts the name with or without surrounding colons.
    let name = args
        .str("name")
        .map(|n| n.trim_matches(':').to_owned())
        .filter(|n| !n.is_empty());
    let Some(name) = name else {
        return shared.fail(method, Some(channel), "invalid_name", at, req_id);
    };

    let mut state = lock(&shared.state);
    let Some(i) = state.find_live(&channel, &ts) else {
        drop(state);
        return shared.fail(method, Some(channel), "message_not_found", at, req_id);
    };
    let set = state.reactions.entry(i).or_default();
    let error = if method == REACTIONS_ADD {
        (!set.insert(name)).then_some("already_reacted")
    } else {
        (!set.remove(&name)).then_some("no_reaction")
    };
    drop(state);
    if let Some(e) = error {
        return shared.fail(method, Some(channel), e, at, req_id);
    }
    shared.record(method, Some(channel), 200, None, at);
    slack_json(StatusCode::OK, &json!({"ok": true}), req_id)
}

/// `Retry-After` for a 429 from `limit` when the next token is `wait` away.
fn retry_after(limit: &RateLimit, wait: Duration) -> u64 {
    if limit.retry_after_secs > 0 {
        limit.retry_after_secs
    } else {
        wait.as_secs_f64().ceil().max(1.0) as u64
    }
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
