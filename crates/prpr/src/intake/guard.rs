//! What stands between a hostile client and the logs: header values made safe
//! to log, rejections summarised per client, and a JSON body on every error.
//!
//! Why: everything a client sends before its signature is checked is the
//! attacker's. A 400 KB `X-GitHub-Delivery` once became a 410 KB log line,
//! and one client produced 908 MB/s of logs (on CloudWatch, a bill and lost
//! logs). So a header value is logged only as a bounded, printable excerpt,
//! and a flood of rejections is one line per client per second plus a count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

/// Longest excerpt of a client's header value put in a log line.
pub const MAX_LOGGED: usize = 128;

/// Longest request target answered normally (`414` beyond).
pub const MAX_URI: usize = 8 * 1024;

/// Most header fields (`431` beyond). GitHub sends about 15.
pub const MAX_HEADERS: usize = 64;

/// Most bytes of header names and values together (`431` beyond).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A header as the handlers need to tell its cases apart: a value that is not
/// text is "invalid", not "missing" (the client did send it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderText<'a> {
    Missing,
    /// Present, but not visible ASCII/UTF-8 text.
    Invalid,
    Value(&'a str),
}

/// The header `name`, trimmed; blank counts as missing.
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> HeaderText<'a> {
    match headers.get(name) {
        None => HeaderText::Missing,
        Some(v) => match std::str::from_utf8(v.as_bytes()) {
            Err(_) => HeaderText::Invalid,
            Ok(s) if s.trim().is_empty() => HeaderText::Missing,
            Ok(s) => HeaderText::Value(s.trim()),
        },
    }
}

/// The header's value as it may appear in a log line: at most [`MAX_LOGGED`]
/// characters, anything but printable ASCII replaced by `?`, and a longer
/// value marked with its full length. `-` when absent.
pub fn loggable(headers: &HeaderMap, name: &str) -> String {
    let Some(v) = headers.get(name) else {
        return "-".into();
    };
    let bytes = v.as_bytes();
    let mut shown: String = bytes
        .iter()
        .take(MAX_LOGGED)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > MAX_LOGGED {
        shown.push_str(&format!("…({} bytes)", bytes.len()));
    }
    shown
}

/// One window of [`Rejections`].
struct Window {
    start: Instant,
    /// Rejections per client in this window; only the first was logged.
    per_client: HashMap<IpAddr, u64>,
    /// Rejections from clients beyond [`MAX_CLIENTS`] (none logged).
    others: u64,
}

/// Clients tracked per window: the map stays small whatever the traffic.
const MAX_CLIENTS: usize = 1024;

/// Rate-limits "delivery rejected" lines: the first rejection of a client in
/// each second is logged in full, the rest are counted, and the count is
/// logged as one summary line when the window ends (at the next rejection
/// from anyone after it).
pub struct Rejections {
    window: Duration,
    state: Mutex<Window>,
}

impl Default for Rejections {
    fn default() -> Self {
        Rejections::new(Duration::from_secs(1))
    }
}

impl Rejections {
    pub fn new(window: Duration) -> Rejections {
        Rejections {
            window,
            state: Mutex::new(Window {
                start: Instant::now(),
                per_client: HashMap::new(),
                others: 0,
            }),
        }
    }

    /// Counts a rejection from `client`; true if it is to be logged in full.
    pub fn should_log(&self, client: IpAddr) -> bool {
        // A poisoned lock only means another request panicked while counting:
        // the counts are still usable.
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now.duration_since(w.start) >= self.window {
            let window_ms = self.window.as_millis() as u64;
            for (client, count) in w.per_client.drain() {
                if count > 1 {
                    tracing::warn!(%client, rejected = count, logged = 1, window_ms, "deliveries rejected (summary)");
                }
            }
            if w.others > 0 {
                tracing::warn!(
                    rejected = w.others,
                    logged = 0,
                    window_ms,
                    "deliveries rejected from further clients (summary)"
                );
            }
            w.others = 0;
            w.start = now;
        }
        if let Some(count) = w.per_client.get_mut(&client) {
            *count += 1;
            return false;
        }
        if w.per_client.len() >= MAX_CLIENTS {
            w.others += 1;
            return false;
        }
        w.per_client.insert(client, 1);
        true
    }
}

fn json_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// Refuses oversized request targets and header sections with a JSON `414`
/// or `431` (hyper's own limits, set higher, answer without a body), and
/// gives every error the router or a layer produced without a body — `405`,
/// `413`, … — the `{"error": …}` body the README promises.
pub async fn json_errors(req: Request, next: Next) -> Response {
    if req.uri().to_string().len() > MAX_URI {
        return json_error(
            StatusCode::URI_TOO_LONG,
            &format!("request target longer than {MAX_URI} bytes"),
        );
    }
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!(
                "request headers too large: at most {MAX_HEADERS} fields and {} KB",
                MAX_HEADER_BYTES / 1024
            ),
        );
    }
    let res = next.run(req).await;
    let status = res.status();
    let empty = axum::body::HttpBody::size_hint(res.body()).exact() == Some(0);
    if (status.is_client_error() || status.is_server_error())
        && empty
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        let reason = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase();
        let mut replaced = json_error(status, &reason);
        // Keep what the status needs (`Allow` on a 405, `Retry-After` …).
        for (name, value) in res.headers() {
            if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
                replaced.headers_mut().append(name, value.clone());
            }
        }
        return replaced;
    }
    res
}

/// An empty body, for tests of [`json_errors`].
#[cfg(test)]
fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::HeaderValue;

    #[test]
    fn loggable_values_are_bounded_and_printable() {
        let mut h = HeaderMap::new();
        h.insert("x-github-delivery", HeaderValue::from_static("abc-123"));
        assert_eq!(loggable(&h, "x-github-delivery"), "abc-123");
        assert_eq!(loggable(&h, "x-github-event"), "-");
        let long = "a".repeat(400_000);
        h.insert("x-github-event", HeaderValue::from_str(&long).unwrap());
        let shown = loggable(&h, "x-github-event");
        assert_eq!(shown, format!("{}…(400000 bytes)", "a".repeat(128)));
        h.insert(
            "x-github-event",
            HeaderValue::from_bytes(b"push\xff\tx").unwrap(),
        );
        assert_eq!(loggable(&h, "x-github-event"), "push??x");
        assert_eq!(header_text(&h, "x-github-event"), HeaderText::Invalid);
        assert_eq!(header_text(&h, "x-none"), HeaderText::Missing);
        assert_eq!(
            header_text(&h, "x-github-delivery"),
            HeaderText::Value("abc-123")
        );
    }

    #[tokio::test]
    async fn one_line_per_client_per_window() {
        tokio::time::pause();
        let r = Rejections::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(r.should_log(a));
        assert!(r.should_log(b));
        for _ in 0..1000 {
            assert!(!r.should_log(a));
        }
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!r.should_log(a));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(r.should_log(a), "a new window logs again");
    }

    #[tokio::test]
    async fn bodiless_errors_get_a_json_body() {
        let app = axum::Router::new()
            .route("/x", axum::routing::get(|| async { "ok" }))
            .route(
                "/teapot",
                axum::routing::get(|| async { empty(StatusCode::IM_A_TEAPOT) }),
            )
            .layer(axum::middleware::from_fn(json_errors));
        let call = |req: Request| {
            let app = app.clone();
            async move {
                let res = tower_call(app, req).await;
                let status = res.status();
                let allow = res.headers().get(header::ALLOW).cloned();
                let body = http_body_util::BodyExt::collect(res.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                (status, allow, String::from_utf8_lossy(&body).into_owned())
            }
        };
        let post = Request::post("/x").body(Body::empty()).unwrap();
        let (status, allow, body) = call(post).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(allow.is_some(), "Allow is kept");
        assert_eq!(body, r#"{"error":"method not allowed"}"#);
        let (status, _, body) = call(Request::get("/teapot").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(body, r#"{"error":"i'm a teapot"}"#);
        let long = format!("/x?{}", "a".repeat(MAX_URI));
        let (status, _, body) = call(Request::get(long).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::URI_TOO_LONG);
        assert_eq!(body, r#"{"error":"request target longer than 8192 bytes"}"#);
        let mut big = Request::get("/x");
        for i in 0..=MAX_HEADERS {
            big = big.header(format!("x-h{i}"), "v");
        }
        let (status, _, body) = call(big.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(
            body.starts_with(r#"{"error":"request headers too large"#),
            "{body}"
        );
        let (status, _, body) = call(Request::get("/x").body(Body::empty()).unwrap()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }

    async fn tower_call(app: axum::Router, req: Request) -> Response {
        use tower_service::Service;
        let mut app = app;
        match app.call(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}
