//! The HTTP contract GitHub (and an operator) sees: statuses and messages for
//! every kind of input, signatures, dedup, health checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use crate::support;

use std::time::Duration;

use crate::support::{SECRET, Server, fixture};
use serde_json::{Value, json};
use testkit::slack::{SlackConfig, SlackDouble};

async fn server() -> (Server, SlackDouble) {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    (
        Server::start(Some(&slack), support::Launch::default()).await,
        slack,
    )
}

fn signed_headers<'a>(
    event: &'a str,
    delivery: &'a str,
    sig: &'a str,
    ctype: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("content-type", ctype),
        ("x-github-event", event),
        ("x-github-delivery", delivery),
        ("x-hub-signature-256", sig),
    ]
}

#[tokio::test]
async fn githubs_signature_vector_over_http() {
    // The documented vector: with this secret, this body has this signature.
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        support::Launch {
            env: vec![(
                "GITHUB_WEBHOOK_SECRET".into(),
                "It's a Secret to Everybody".into(),
            )],
            ..Default::default()
        },
    )
    .await;
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    // The body is not JSON, so getting past the signature check means a 400 about JSON, not a 401.
    let (status, body) = s
        .post_raw(
            "/webhook",
            &signed_headers("push", "vec-1", sig, "application/json"),
            b"Hello, World!".to_vec(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("body is not valid JSON"),
        "{body}"
    );
    let (status, body) = s
        .post_raw(
            "/webhook",
            &signed_headers("push", "vec-2", sig, "application/json"),
            b"Hello, World?".to_vec(),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": "signature does not match (is the webhook secret the same on both sides?)"})
    );
}

#[tokio::test]
async fn bad_inputs_get_precise_statuses_and_messages() {
    let (s, slack) = server().await;
    let payload = fixture("pull_request.opened").to_string().into_bytes();
    let sig = testkit::sign::sha256_header(SECRET.as_bytes(), &payload);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no signature",
            vec![
                ("content-type", "application/json"),
                ("x-github-event", "pull_request"),
                ("x-github-delivery", "b1"),
            ],
            payload.clone(),
            401,
            "missing X-Hub-Signature-256 header (set a secret on the GitHub webhook)",
        ),
        (
            "wrong signature",
            signed_headers(
                "pull_request",
                "b2",
                "sha256=0000000000000000000000000000000000000000000000000000000000000000",
                "application/json",
            ),
            payload.clone(),
            401,
            "signature does not match (is the webhook secret the same on both sides?)",
        ),
        (
            "malformed signature",
            signed_headers("pull_request", "b3", "sha256=zz", "application/json"),
            payload.clone(),
            401,
            "malformed X-Hub-Signature-256 header: expected sha256= followed by 64 hex digits",
        ),
        (
            "sha1 only, not allowed",
            vec![
                ("content-type", "application/json"),
                ("x-github-event", "pull_request"),
                ("x-github-delivery", "b4"),
                (
                    "x-hub-signature",
                    "sha1=0000000000000000000000000000000000000000",
                ),
            ],
            payload.clone(),
            401,
            "only an SHA-1 X-Hub-Signature was sent; it is not accepted unless github.allow_sha1_signatures is set",
        ),
        (
            "missing event header",
            vec![
                ("content-type", "application/json"),
                ("x-github-delivery", "b5"),
                ("x-hub-signature-256", &sig),
            ],
            payload.clone(),
            400,
            "missing X-GitHub-Event header",
        ),
        (
            "missing delivery header",
            vec![
                ("content-type", "application/json"),
                ("x-github-event", "pull_request"),
                ("x-hub-signature-256", &sig),
            ],
            payload.clone(),
            400,
            "missing X-GitHub-Delivery header",
        ),
        (
            "other content type",
            signed_headers("pull_request", "b6", &sig, "text/plain"),
            payload.clone(),
            415,
            "unsupported Content-Type \"text/plain\": send application/json or application/x-www-form-urlencoded",
        ),
    ];
    for (name, headers, body, status, message) in cases {
        let (got, reply) = s.post_raw("/webhook", &headers, body).await;
        assert_eq!(
            (got, reply["error"].as_str().unwrap_or("")),
            (status, message),
            "{name}"
        );
    }

    // Malformed JSON and a wrong shape, correctly signed.
    for (body, status, prefix) in [
        (
            b"{\"action\":".to_vec(),
            400,
            "body is not valid JSON: EOF while parsing",
        ),
        (
            br#"{"action":"opened","pull_request":{"number":"two"}}"#.to_vec(),
            400,
            "pull_request payload: pull_request.number: invalid type: string \"two\"",
        ),
    ] {
        let sig = testkit::sign::sha256_header(SECRET.as_bytes(), &body);
        let (got, reply) = s
            .post_raw(
                "/webhook",
                &signed_headers("pull_request", "b7", &sig, "application/json"),
                body,
            )
            .await;
        assert_eq!(got, status);
        assert!(
            reply["error"].as_str().unwrap().starts_with(prefix),
            "{reply}"
        );
    }

    // A form body without payload=.
    let form = b"foo=bar".to_vec();
    let sig = testkit::sign::sha256_header(SECRET.as_bytes(), &form);
    let (got, reply) = s
        .post_raw(
            "/webhook",
            &signed_headers(
                "pull_request",
                "b8",
                &sig,
                "application/x-www-form-urlencoded",
            ),
            form,
        )
        .await;
    assert_eq!(
        (got, reply),
        (400, json!({"error": "form body has no payload field"}))
    );

    // Nothing rejected reached Slack or the store.
    assert_eq!(s.outbox().await, Default::default(), "nothing queued");
    assert_eq!(s.store().await.delivery_count().await.unwrap(), 0);
    assert!(slack.posted().is_empty());
    // One client's rejections: the first of each second in full, the rest
    // counted (see `a_flood_of_oversized_headers_costs_bounded_logs`).
    let lines = s
        .logged("delivery rejected", 1, Duration::from_secs(5))
        .await;
    assert!(lines.len() <= 10, "{lines:?}");
    assert!(s.log_events("delivery").is_empty());
}

#[tokio::test]
async fn bodies_over_25_mb_get_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (s, _slack) = server().await;
    // Announced as too large: refused before a byte of it is read.
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-github-event: push\r\nx-github-delivery: big-1\r\ncontent-length: {}\r\n\r\n",
        25 * 1024 * 1024 + 1
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(
        reply.ends_with(r#"{"error":"body larger than 25 MB (GitHub's limit)"}"#),
        "{reply}"
    );

    // Streamed without a length (chunked): cut off at the limit.
    let big = vec![b' '; 25 * 1024 * 1024 + 1];
    let stream = futures_stream(big);
    let resp = reqwest::Client::new()
        .post(format!("{}/webhook", s.base))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", "big-2")
        // Well-formed, so the body is read (and hashed) until the limit.
        .header(
            "x-hub-signature-256",
            "sha256=0000000000000000000000000000000000000000000000000000000000000000",
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    if let Ok(resp) = resp {
        assert_eq!(resp.status().as_u16(), 413);
    } // else: the server closed the connection mid-upload after answering, which is also a refusal.
}

/// The body in 1 MiB chunks, so no Content-Length is sent.
fn futures_stream(
    body: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    struct Chunks(Vec<u8>, usize);
    impl futures_core::Stream for Chunks {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            let start = self.1;
            if start >= self.0.len() {
                return std::task::Poll::Ready(None);
            }
            let end = (start + (1 << 20)).min(self.0.len());
            self.1 = end;
            std::task::Poll::Ready(Some(Ok(self.0[start..end].to_vec())))
        }
    }
    Chunks(body, 0)
}

#[tokio::test]
async fn form_encoded_payloads_like_the_ruby_prpr_and_post_root() {
    let (s, slack) = server().await;
    let payload = fixture("pull_request.review_requested.user").to_string();
    let form = serde_urlencoded::to_string([("payload", payload.as_str())])
        .unwrap()
        .into_bytes();
    let sig = testkit::sign::sha256_header(SECRET.as_bytes(), &form);
    let (status, reply) = s
        .post_raw(
            "/",
            &signed_headers(
                "pull_request",
                "form-1",
                &sig,
                "application/x-www-form-urlencoded",
            ),
            form,
        )
        .await;
    assert_eq!(
        (status, reply),
        (202, json!({"status": "queued", "notifications": 1}))
    );
    let posted = slack.wait_for_posted(1, Duration::from_secs(5)).await;
    assert_eq!(posted[0].channel, "U0OCTOCAT1");
}

#[tokio::test]
async fn ping_unknown_events_and_duplicates() {
    let (s, slack) = server().await;
    assert_eq!(
        s.deliver("ping", "p-1", &fixture("ping")).await,
        (200, json!({"status": "pong"}))
    );
    assert_eq!(
        s.deliver("push", "push-1", &fixture("push")).await,
        (202, json!({"status": "ignored", "notifications": 0}))
    );

    let review = fixture("pull_request.review_requested.user");
    assert_eq!(
        s.deliver("pull_request", "dup-1", &review).await,
        (202, json!({"status": "queued", "notifications": 1}))
    );
    // GitHub's "Redeliver" sends the same delivery ID again.
    assert_eq!(
        s.deliver("pull_request", "dup-1", &review).await,
        (202, json!({"status": "duplicate"}))
    );
    assert_eq!(
        s.deliver("pull_request", "dup-1", &review).await,
        (202, json!({"status": "duplicate"}))
    );
    let outbox = s.drained(Duration::from_secs(5)).await;
    assert_eq!(outbox.sent, 1, "{outbox:?}");
    assert_eq!(
        slack.posted().len(),
        1,
        "a redelivered ID produces no second message"
    );

    let lines = s.logged("delivery", 4, Duration::from_secs(5)).await;
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        vec!["ignored", "queued", "duplicate", "duplicate"]
    );
    let queued = &lines[1];
    assert_eq!(queued["delivery_id"], "dup-1");
    assert_eq!(queued["event"], "pull_request");
    assert_eq!(queued["action"], "review_requested");
    assert_eq!(queued["repo"], "Codertocat/Hello-World");
    assert_eq!(queued["pr"], 2);
    assert!(queued["latency_ms"].as_f64().is_some());
}

#[tokio::test]
async fn health_and_readiness() {
    let (s, _slack) = server().await;
    assert_eq!(s.get("/healthz").await, (200, json!({"status": "ok"})));
    assert_eq!(s.get("/readyz").await, (200, json!({"status": "ready"})));
    assert_eq!(s.get("/nope").await, (404, json!({"error": "not found"})));
}

#[tokio::test]
async fn store_unavailable_means_503_and_nothing_acknowledged_is_lost() {
    use sqlx::Connection;
    let (s, slack) = server().await;
    // Another process holds SQLite's write lock (a stuck writer, a backup tool…).
    let mut blocker = sqlx::SqliteConnection::connect(&s.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let (status, reply) = s
        .deliver(
            "pull_request",
            "down-1",
            &fixture("pull_request.review_requested.user"),
        )
        .await;
    assert_eq!(
        (status, reply),
        (
            503,
            json!({"error": "store unavailable; the delivery was not stored, retry later"})
        )
    );
    let (status, ready) = s.get("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "unavailable");

    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    drop(blocker);
    assert_eq!(s.get("/readyz").await.0, 200);
    // GitHub (or an operator) redelivers the refused delivery: it is processed as new.
    let (status, reply) = s
        .deliver(
            "pull_request",
            "down-1",
            &fixture("pull_request.review_requested.user"),
        )
        .await;
    assert_eq!(
        (status, reply),
        (202, json!({"status": "queued", "notifications": 1}))
    );
    assert_eq!(
        slack.wait_for_posted(1, Duration::from_secs(5)).await.len(),
        1
    );
    let _: Value = json!(null);
}

/// Sends `request` on a fresh connection and reads the answer to the end.
async fn raw(s: &Server, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply))
        .await
        .expect("an answer")
        .expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn every_error_has_a_json_body() {
    let (s, _slack) = server().await;
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "GET /webhook HTTP/1.1\r\nhost: prpr\r\nconnection: close\r\n\r\n".into(),
            "HTTP/1.1 405",
            r#"{"error":"method not allowed"}"#,
        ),
        (
            format!(
                "GET /{} HTTP/1.1\r\nhost: prpr\r\nconnection: close\r\n\r\n",
                "a".repeat(10_000)
            ),
            "HTTP/1.1 414",
            r#"{"error":"request target longer than 8192 bytes"}"#,
        ),
        (
            format!(
                "POST /webhook HTTP/1.1\r\nhost: prpr\r\n{}connection: close\r\ncontent-length: 0\r\n\r\n",
                (0..80)
                    .map(|i| format!("x-h{i}: v\r\n"))
                    .collect::<String>()
            ),
            "HTTP/1.1 431",
            r#"{"error":"request headers too large: at most 64 fields and 32 KB"}"#,
        ),
        (
            format!(
                "POST /webhook HTTP/1.1\r\nhost: prpr\r\nx-big: {}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                "v".repeat(40_000)
            ),
            "HTTP/1.1 431",
            r#"{"error":"request headers too large: at most 64 fields and 32 KB"}"#,
        ),
    ];
    for (request, status, body) in cases {
        let reply = raw(&s, request.as_bytes()).await;
        assert!(reply.starts_with(status), "{reply}");
        assert!(reply.contains("content-type: application/json"), "{reply}");
        assert!(reply.ends_with(body), "{reply}");
    }

    // A header that is not text was sent, so it is invalid, not missing.
    let payload = fixture("pull_request.opened").to_string();
    let sig = testkit::sign::sha256_header(SECRET.as_bytes(), payload.as_bytes());
    let mut request = format!(
        "POST /webhook HTTP/1.1\r\nhost: prpr\r\ncontent-type: application/json\r\nx-hub-signature-256: {sig}\r\nx-github-delivery: u-1\r\ncontent-length: {}\r\nconnection: close\r\nx-github-event: pull",
        payload.len()
    )
    .into_bytes();
    request.extend_from_slice(b"\xff\xfe\r\n\r\n");
    request.extend_from_slice(payload.as_bytes());
    let reply = raw(&s, &request).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.ends_with(r#"{"error":"invalid X-GitHub-Event header: not visible ASCII text"}"#),
        "{reply}"
    );
}

#[tokio::test]
async fn a_flood_of_oversized_headers_costs_bounded_logs() {
    let (s, _slack) = server().await;
    let before: usize = s.log().iter().map(String::len).sum();
    let huge = "d".repeat(15_000);
    let sent = 300;
    for i in 0..sent {
        let (status, _) = s
            .post_raw(
                "/webhook",
                &[
                    ("content-type", "application/json"),
                    ("x-github-event", &huge),
                    ("x-github-delivery", &format!("{huge}{i}")),
                ],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(status, 401);
    }
    // Rejections keep coming until the flood's count has been summarised
    // (a summary is written when a window ends and the next rejection comes).
    let summarised = |s: &Server| -> u64 {
        s.log_events("delivery rejected").len() as u64
            + s.log_events("deliveries rejected (summary)")
                .iter()
                .map(|e| e["rejected"].as_u64().unwrap_or(0) - e["logged"].as_u64().unwrap_or(0))
                .sum::<u64>()
    };
    let start = std::time::Instant::now();
    let mut extra = 0;
    while summarised(&s) < sent {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the flood was not accounted for:\n{}",
            s.log().join("\n")
        );
        s.post_raw(
            "/webhook",
            &[("content-type", "application/json")],
            b"{}".to_vec(),
        )
        .await;
        extra += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let full = s.log_events("delivery rejected");
    for line in &full {
        for field in ["delivery_id", "event"] {
            let shown = line[field].as_str().unwrap();
            assert!(
                shown.chars().count() <= 128 + 20,
                "{field}: {} chars",
                shown.len()
            );
        }
    }
    let seconds = start.elapsed().as_secs() as usize + 5;
    assert!(
        full.len() <= seconds + extra,
        "{} full lines for {sent} rejections",
        full.len()
    );
    let written: usize = s.log().iter().map(String::len).sum::<usize>() - before;
    assert!(
        written < 200 * 1024,
        "{written} bytes of logs for {sent} requests carrying 30 KB of headers each"
    );
}

#[tokio::test]
async fn concurrent_large_bodies_stay_within_the_memory_budget() {
    let (s, _slack) = server().await;
    let body: &'static [u8] = Box::leak(vec![b' '; 24 * 1024 * 1024].into_boxed_slice());
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let req = client
            .post(format!("{}/webhook", s.base))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("mem-{i}"))
            // Well-formed but wrong: the body must be read to find out.
            .header(
                "x-hub-signature-256",
                "sha256=0000000000000000000000000000000000000000000000000000000000000000",
            )
            .body(body);
        tasks.push(tokio::spawn(async move {
            match req.send().await {
                Ok(r) => Some((
                    r.status().as_u16(),
                    r.headers().get("retry-after").is_some(),
                )),
                // Refused before its body was read: the server may close the
                // connection while the client is still uploading.
                Err(_) => None,
            }
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    for (status, retry_after) in outcomes.iter().flatten() {
        assert!(
            *status == 401 || (*status == 503 && *retry_after),
            "{outcomes:?}"
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB; {outcomes:?}");
    // And it still answers.
    assert_eq!(s.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn the_connection_cap_is_logged_when_reached() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        support::Launch::with_config(format!(
            "{}\n[server]\nmax_connections = 2\n",
            support::BASE_CONFIG
        )),
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let line = s
        .logged(
            "connection limit reached: new connections wait in the listen queue until one closes",
            1,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(line[0]["max_connections"], 2);
    // A third waits in the queue, and is served once a slot frees.
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: prpr\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    drop(first);
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut reply))
        .await
        .expect("served after a slot freed")
        .unwrap();
    assert!(String::from_utf8_lossy(&reply).ends_with(r#"{"status":"ok"}"#));
}
