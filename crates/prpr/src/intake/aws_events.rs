//! `POST /aws/events`: ECS events from an EventBridge API destination.
//!
//! EventBridge sends each event as its JSON envelope, with the connection's
//! API key in `x-prpr-events-token`. Without a configured token the endpoint
//! does not exist (404), so a prpr that does not use it exposes nothing. The
//! token is compared in constant time.
//!
//! Like `/webhook`, the event is stored before the answer (deduplicated by
//! the event's `id`, so EventBridge's retries never post twice) and the ops
//! rule runs inside that transaction; the sender posts what it queued.
//! EventBridge retries 5xx and 429 and sends 4xx straight to the dead-letter
//! queue, so a malformed event gets a 400 that names the problem and is
//! never retried.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{Intake, header_str, reject, reply};
use crate::ecs_event::Envelope;
use crate::rules::ecs;
use crate::store::{DeliveryMeta, Recorded};

/// EventBridge events are at most 256 KB; a little room above that.
const MAX_EVENT_BODY: usize = 512 * 1024;

pub(super) async fn handle(
    State(app): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(token) = &app.ops.events_token else {
        return reject(StatusCode::NOT_FOUND, "not found");
    };
    let given = headers
        .get("x-prpr-events-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(given.ct_eq(token.expose().as_bytes())) {
        tracing::warn!("aws event rejected: missing or wrong x-prpr-events-token");
        return reject(
            StatusCode::UNAUTHORIZED,
            "missing or wrong x-prpr-events-token",
        );
    }
    if let Some(ct) = header_str(&headers, header::CONTENT_TYPE.as_str())
        && !ct.to_ascii_lowercase().starts_with("application/json")
    {
        return reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {ct:?}: EventBridge events are application/json"),
        );
    }
    let bytes = match tokio::time::timeout(
        std::time::Duration::from_secs(15),
        axum::body::to_bytes(body, MAX_EVENT_BODY),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} KB", MAX_EVENT_BODY / 1024),
            );
        }
        Err(_) => {
            return reject(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received within 15 s",
            );
        }
    };
    let envelope = match Envelope::parse(&bytes) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "aws event rejected");
            return reject(StatusCode::BAD_REQUEST, e);
        }
    };
    let event = match envelope.event() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(event_id = %envelope.id, detail_type = %envelope.detail_type, error = %e, "aws event rejected");
            return reject(StatusCode::BAD_REQUEST, e);
        }
    };

    let now_ms = app.clock.now_ms();
    let (subject, needs_history) = ecs::subject(&event);
    let id = format!("aws:{}", envelope.id);
    let meta = DeliveryMeta {
        id: &id,
        event: &envelope.detail_type,
        subject: &subject,
        history_since: needs_history.then_some(now_ms - ecs::HISTORY_MS),
    };
    let recorded = app
        .store
        .record(&meta, now_ms, |recall| {
            ecs::decide(&event, &recall.history, now_ms, &app.ops)
        })
        .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match recorded {
        Ok(Recorded::Duplicate) => {
            tracing::info!(event_id = %envelope.id, detail_type = %envelope.detail_type, outcome = "duplicate", latency_ms, "aws event");
            reply(StatusCode::ACCEPTED, json!({"status": "duplicate"}))
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
            tracing::info!(
                event_id = %envelope.id, detail_type = %envelope.detail_type, action = subject.action.as_deref(),
                key = subject.repo.as_deref(), outcome, notifications = queued.len(),
                skipped = %decision.skipped.join("; "), latency_ms, "aws event"
            );
            reply(
                StatusCode::ACCEPTED,
                json!({"status": outcome, "notifications": queued.len()}),
            )
        }
        Err(e) => {
            tracing::error!(event_id = %envelope.id, error = %e, "store unavailable; aws event not accepted");
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable; the event was not stored, retry later",
            )
        }
    }
}
