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
pub mod decode;
pub mod signature;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::Notify;

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
}

pub fn router(intake: Arc<Intake>) -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .route("/", post(webhook))
        .route("/aws/events", post(aws_events::handle))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { reply(StatusCode::NOT_FOUND, json!({"error": "not found"})) })
        .with_state(intake)
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn reject(status: StatusCode, error: impl std::fmt::Display) -> Response {
    reply(status, json!({ "error": error.to_string() }))
}

async fn healthz() -> Response {
    reply(StatusCode::OK, json!({"status": "ok"}))
}

async fn readyz(State(app): State<Arc<Intake>>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await {
        Ok(Ok(())) => reply(StatusCode::OK, json!({"status": "ready"})),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "error": "store unavailable"}),
            )
        }
        Err(_) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "error": "store did not answer within 2s"}),
        ),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

async fn webhook(State(app): State<Arc<Intake>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let delivery = header_str(&headers, "x-github-delivery")
        .unwrap_or("-")
        .to_string();
    let event_name = header_str(&headers, "x-github-event")
        .unwrap_or("-")
        .to_string();
    let response = handle(&app, &headers, body).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match response.extensions().get::<Logged>() {
        Some(l) => tracing::info!(
            delivery_id = %delivery, event = %event_name, action = l.action.as_deref(), repo = l.repo.as_deref(),
            pr = l.number, outcome = l.outcome, notifications = l.notifications, skipped = %l.skipped.join("; "),
            status, latency_ms, "delivery"
        ),
        None => {
            tracing::warn!(delivery_id = %delivery, event = %event_name, status, latency_ms, "delivery rejected")
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
    // A client that trickles its body must not hold a connection (and, at
    // shutdown, the whole process) for ever.
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let is_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if is_limit {
                too_large()
            } else {
                reject(StatusCode::BAD_REQUEST, "could not read request body")
            };
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

    match &app.verifier {
        Some(v) => {
            let sha256 = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
            let sha1 = headers.get("x-hub-signature").map(|v| v.as_bytes());
            if let Err(e) = v.verify(sha256, sha1, &bytes) {
                return reject(StatusCode::UNAUTHORIZED, e);
            }
        }
        None => tracing::warn!(
            "accepting an unsigned delivery: --insecure-accept-unsigned is set; anyone can send events"
        ),
    }

    let Some(event_name) = header_str(headers, "x-github-event") else {
        return reject(StatusCode::BAD_REQUEST, "missing X-GitHub-Event header");
    };
    let Some(delivery_id) = header_str(headers, "x-github-delivery") else {
        return reject(StatusCode::BAD_REQUEST, "missing X-GitHub-Delivery header");
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
                skipped: Vec::new(),
            });
            r
        }
        Ok(Recorded::Stored { queued, decision }) => {
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
                skipped: decision.skipped,
            });
            r
        }
        Err(e) => {
            tracing::error!(delivery_id, error = %e, "store unavailable; delivery not accepted");
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable; the delivery was not stored, retry later",
            )
        }
    }
}
