//! Fault tests: what GitHub was told (`202`) is what Slack gets, exactly once,
//! whatever happens in between — kill -9 mid-stream, Slack failing in every
//! way at once, PostgreSQL going away, SIGTERM under load.
//!
//! `delivery.rs` covers the single faults (a 429 storm on one channel, Slack
//! down then back, one hanging send, kill -9 with sends queued, SIGTERM with a
//! slow send); these combine them with concurrent traffic. Every test is
//! bounded in time and uses loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use crate::support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{
    Launch, SECRET, Sent, Server, client, fixture, members, post, posted_counts, pr_of, request,
    target,
};
use serde_json::{Value, json};
use testkit::slack::{Fault, RateLimit, SlackConfig, SlackDouble};

/// A push to an open PR: stored, no notification (most real traffic).
fn synchronize(number: u64) -> Value {
    let mut p = fixture("pull_request.synchronize");
    p["pull_request"]["number"] = json!(number);
    p
}

/// Traffic for [`stream_deliveries`].
struct Traffic {
    base: String,
    /// Concurrent clients.
    tasks: usize,
    prefix: &'static str,
    /// Review requests rotate over r0…r{reviewers-1}.
    reviewers: usize,
    /// One delivery in this many is a review request; the rest are pushes.
    every_nth_is_request: usize,
    pause: Duration,
}

/// Streams deliveries until `stop` is set or the server stops answering;
/// every attempt is recorded in `log`.
fn stream_deliveries(
    t: Traffic,
    stop: Arc<std::sync::atomic::AtomicBool>,
    log: Arc<Mutex<Vec<Sent>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let t = Arc::new(t);
    (0..t.tasks)
        .map(|task| {
            let (t, stop, log) = (t.clone(), stop.clone(), log.clone());
            tokio::spawn(async move {
                let http = client();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let n = 1000 * (task as u64 + 1) + i;
                    let body = if (i as usize).is_multiple_of(t.every_nth_is_request) {
                        request(&format!("r{}", n as usize % t.reviewers), n)
                    } else {
                        synchronize(n)
                    };
                    let sent =
                        post(&http, &t.base, &format!("{}-{task}-{i}", t.prefix), &body).await;
                    let failed = sent.status.is_none();
                    log.lock().unwrap().push(sent);
                    if failed {
                        // The server is gone: this client stops, as GitHub would
                        // (it redelivers later).
                        break;
                    }
                    i += 1;
                    tokio::time::sleep(t.pause).await;
                }
            })
        })
        .collect()
}

/// The review requests among `log` that were acknowledged with `202 queued`,
/// and those that got no answer at all.
fn split_acknowledged(log: &[Sent]) -> (Vec<Sent>, Vec<Sent>) {
    let requests = log
        .iter()
        .filter(|s| s.body["action"] == "review_requested");
    let acked: Vec<Sent> = requests
        .clone()
        .filter(|s| s.status == Some(202))
        .cloned()
        .collect();
    let unanswered: Vec<Sent> = requests.filter(|s| s.status.is_none()).cloned().collect();
    (acked, unanswered)
}

/// Waits until every `(channel, PR)` in `want` was posted, or `timeout`.
async fn wait_for_all(slack: &SlackDouble, want: &[(String, u64)], timeout: Duration) -> bool {
    let start = Instant::now();
    loop {
        let got = posted_counts(slack);
        if want.iter().all(|k| got.contains_key(k)) {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- kill -9 mid-stream ------------------------------------------------------------

#[tokio::test]
async fn kill9_while_streaming_and_sending_then_every_acknowledged_delivery_arrives_once() {
    let _heavy = support::heavy().await;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = members(
        12,
        "[slack]\nper_channel_per_sec = 4.0\nburst = 1\nretry_initial_ms = 50\nretry_max_ms = 200\nmax_attempts = 1000\ntimeout_secs = 30",
    );
    let mut s = Server::start(Some(&slack), Launch::with_config(config)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks = stream_deliveries(
        Traffic {
            base: s.base.clone(),
            tasks: 4,
            prefix: "k9",
            reviewers: 12,
            every_nth_is_request: 2,
            pause: Duration::from_millis(5),
        },
        stop.clone(),
        log.clone(),
    );
    // Some notifications go out normally…
    let before = slack.wait_for_posted(5, Duration::from_secs(10)).await;
    assert!(before.len() >= 5, "nothing was sent before the fault");
    // …then Slack stops answering: sends in flight hang, the rest stay queued.
    slack.set_fault(Fault::Hang);
    assert!(
        support::eventually(Duration::from_secs(5), || slack
            .attempts()
            .iter()
            .filter(|a| a.status == 0)
            .count()
            >= 2)
        .await,
        "no send was left hanging"
    );
    // Wait until every send that got past the fault before it was set is
    // recorded as sent, so the kill cannot fall between Slack's "ok" and the
    // store's "sent" (the one window where at-least-once delivery may
    // duplicate). Slack hangs from now on, so the two stay equal.
    let start = Instant::now();
    while s.outbox().await.sent != slack.posted().len() as i64 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "Slack's answers were never recorded as sent: {:?}",
            s.outbox().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Enough deliveries acknowledged to make the kill meaningful.
    assert!(
        support::eventually(Duration::from_secs(10), || split_acknowledged(
            &log.lock().unwrap()
        )
        .0
        .len()
            >= 20)
        .await,
        "too little traffic before the kill"
    );
    let posted_before_kill = slack.posted().len();
    s.kill9().await;
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    let (acked, unanswered) = split_acknowledged(&log);
    let all_unanswered = log.iter().filter(|s| s.status.is_none()).count();
    assert!(
        acked.len() >= 20,
        "too little traffic before the kill: {}",
        acked.len()
    );
    for s in &acked {
        assert_eq!(s.reply["status"], "queued", "{:?}", s);
    }

    // Slack recovers (the hung requests are released); prpr restarts on the same file.
    slack.set_fault(Fault::None);
    slack.stop().await;
    slack.restart().await.unwrap();
    let s = s.restart().await;
    let want: Vec<(String, u64)> = acked.iter().map(|s| target(&s.body)).collect();
    assert!(
        wait_for_all(&slack, &want, Duration::from_secs(60)).await,
        "acknowledged notifications missing after restart: {:?}",
        want.iter()
            .filter(|k| !posted_counts(&slack).contains_key(*k))
            .collect::<Vec<_>>()
    );

    // GitHub redelivers what got no answer: each is now either a duplicate
    // (it had been stored before the kill) or stored now; never lost twice.
    let http = client();
    let mut redelivered = Vec::new();
    for u in &unanswered {
        let again = post(&http, &s.base, &u.delivery, &u.body).await;
        assert_eq!(again.status, Some(202), "{again:?}");
        assert!(
            again.reply["status"] == "duplicate" || again.reply["status"] == "queued",
            "{again:?}"
        );
        redelivered.push(target(&u.body));
    }
    assert!(wait_for_all(&slack, &redelivered, Duration::from_secs(30)).await);
    // Nothing left to send: the counts below are final.
    s.drained(Duration::from_secs(30)).await;

    let counts = posted_counts(&slack);
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dupes.is_empty(),
        "sent more than once (per recipient): {dupes:?}"
    );
    let expected: std::collections::BTreeSet<_> = want.iter().chain(&redelivered).collect();
    let unexpected: Vec<_> = counts.keys().filter(|k| !expected.contains(k)).collect();
    assert!(
        unexpected.is_empty(),
        "sent without being delivered: {unexpected:?}"
    );
    eprintln!(
        "kill -9: {} review requests acknowledged, {} unanswered ({} requests of any kind), {} posted before the kill, {} after",
        acked.len(),
        unanswered.len(),
        all_unanswered,
        posted_before_kill,
        counts.len() - posted_before_kill
    );
    drop(s);
}

// ---- Slack failing every way, several PRs --------------------------------------------

#[tokio::test]
async fn slack_500s_hangs_and_429s_across_several_prs_deliver_once_in_order() {
    let _heavy = support::heavy().await;
    // Slack's own limit (5/s per channel, burst 2, 429 + Retry-After: 1) with
    // prpr configured faster than that, so it must obey the 429s.
    let slack = SlackDouble::start(SlackConfig {
        rate_limit: Some(RateLimit {
            per_second: 5.0,
            burst: 2,
            retry_after_secs: 1,
        }),
        ..SlackConfig::default()
    })
    .await;
    // Team requests on four PRs go to one channel per team, review requests to
    // each reviewer's DMs: several channels, several PRs each.
    let config = members(
        3,
        "delivery = \"both\"\nthreads = false\n[slack]\nper_channel_per_sec = 20.0\nburst = 10\nretry_initial_ms = 50\nretry_max_ms = 300\nmax_attempts = 1000\ntimeout_secs = 1",
    );
    let s = Server::start(Some(&slack), Launch::with_config(config)).await;

    // Phase 1: Slack answers 500 to everything.
    slack.set_fault(Fault::Status(500));
    let http = client();
    let mut sent_order: Vec<(String, u64)> = Vec::new();
    let deliver = |sent_order: &mut Vec<(String, u64)>, reviewer: usize, pr: u64| {
        sent_order.push((format!("U0R{reviewer:05}"), pr));
        // `delivery = "both"`: the general channel gets a mention too.
        sent_order.push(("C0GENERAL1".into(), pr));
        request(&format!("r{reviewer}"), pr)
    };
    let mut n = 0;
    for pr in [11u64, 12, 13, 14] {
        for reviewer in 0..3 {
            let body = deliver(&mut sent_order, reviewer, pr);
            let r = post(&http, &s.base, &format!("mix-{n}"), &body).await;
            assert_eq!(
                (r.status, r.reply["notifications"].as_u64()),
                (Some(202), Some(2)),
                "{r:?}"
            );
            n += 1;
        }
        if pr == 12 {
            // Phase 1 has really met Slack's 500s (and retried them).
            assert!(
                support::eventually(Duration::from_secs(10), || slack
                    .attempts()
                    .iter()
                    .filter(|a| a.status == 500)
                    .count()
                    >= 3)
                .await,
                "prpr did not retry the 500s"
            );
            // Phase 2: a scripted mix of every failure, then the limit alone.
            slack.set_fault(Fault::None);
            for f in [
                Fault::Status(502),
                Fault::Hang,
                Fault::RateLimited {
                    retry_after_secs: 1,
                },
                Fault::Status(500),
                Fault::Status(503),
                Fault::Hang,
                Fault::RateLimited {
                    retry_after_secs: 1,
                },
                Fault::Status(504),
            ] {
                slack.fail_next(1, f);
            }
        }
    }
    let expected = sent_order.len();
    let posted = slack
        .wait_for_posted(expected, Duration::from_secs(60))
        .await;
    let outbox = s.drained(Duration::from_secs(30)).await;
    assert_eq!(outbox.dead, 0, "{outbox:?}");
    let posted_all = slack.posted();
    assert_eq!(
        posted_all.len(),
        expected,
        "each exactly once: {:#?}",
        posted
            .iter()
            .map(|p| (&p.channel, p.text.as_deref()))
            .collect::<Vec<_>>()
    );
    // Per channel, in the order the events arrived (so per PR too).
    let mut by_channel: HashMap<String, Vec<u64>> = HashMap::new();
    for p in &posted_all {
        by_channel
            .entry(p.channel.clone())
            .or_default()
            .push(pr_of(p.text.as_deref().unwrap_or("")));
    }
    let mut want: HashMap<String, Vec<u64>> = HashMap::new();
    for (c, pr) in &sent_order {
        want.entry(c.clone()).or_default().push(*pr);
    }
    assert_eq!(by_channel, want);
    let attempts = slack.attempts();
    let count =
        |f: &dyn Fn(&testkit::slack::Attempt) -> bool| attempts.iter().filter(|a| f(a)).count();
    assert!(
        count(&|a| a.status == 500) >= 3,
        "Slack's 500s were retried"
    );
    assert!(count(&|a| a.status == 0) == 2, "two sends hung");
    assert!(count(&|a| a.status == 429) >= 2, "429s were answered");
    assert!(
        s.log_events("slack send")
            .iter()
            .all(|l| l["outcome"] != "dead"),
        "nothing dead-lettered"
    );
}

// ---- PostgreSQL unavailable ---------------------------------------------------------

/// Runs SQL as the admin user on the shared server (never on the test's own database).
async fn admin_sql(sql: &str) {
    use sqlx::Connection;
    let admin = std::env::var("PRPR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn postgres_going_away_answers_503_then_resumes_without_losing_anything() {
    let _heavy = support::heavy().await;
    let Some(pg) = support::postgres_db().await else {
        return;
    };
    let url = pg.url.clone();
    let db = url.rsplit('/').next().unwrap().to_string();
    assert!(db.starts_with("prpr_test_"), "{db}");
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        Launch {
            config: members(
                6,
                "[slack]\nper_channel_per_sec = 50.0\nburst = 50\nretry_initial_ms = 50\nretry_max_ms = 300\nmax_attempts = 1000\ntimeout_secs = 2",
            ),
            database_url: Some(url.clone()),
            ..Launch::default()
        },
    )
    .await;
    let http = client();
    let mut acked = Vec::new();
    for i in 0..3u64 {
        let r = post(
            &http,
            &s.base,
            &format!("pg-a{i}"),
            &request(&format!("r{i}"), 100 + i),
        )
        .await;
        assert_eq!(r.status, Some(202), "{r:?}");
        acked.push(target(&r.body));
    }
    assert!(wait_for_all(&slack, &acked, Duration::from_secs(10)).await);

    // "Stop" this test's database: no new connections, existing ones killed.
    admin_sql(&format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false")).await;
    admin_sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
    ))
    .await;

    let t = Instant::now();
    let mut refused = Vec::new();
    for i in 0..3u64 {
        let r = post(
            &http,
            &s.base,
            &format!("pg-b{i}"),
            &request(&format!("r{}", 3 + i), 200 + i),
        )
        .await;
        assert_eq!(r.status, Some(503), "{r:?}");
        assert_eq!(
            r.reply["error"],
            "store unavailable; the delivery was not stored, retry later"
        );
        refused.push(r);
    }
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "503s took {:?}",
        t.elapsed()
    );
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(
        s.get("/healthz").await.0,
        200,
        "liveness does not depend on the store"
    );

    // The database comes back: readiness follows, GitHub's redeliveries are stored.
    admin_sql(&format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true")).await;
    let mut ready = false;
    for _ in 0..150 {
        if s.get("/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz did not recover");
    for r in &refused {
        let again = post(&http, &s.base, &r.delivery, &r.body).await;
        assert_eq!(
            (again.status, again.reply["status"].as_str()),
            (Some(202), Some("queued")),
            "{again:?}"
        );
        acked.push(target(&r.body));
    }
    // Deliveries acknowledged before the outage are still known (not redone).
    let dup = post(&http, &s.base, "pg-a0", &request("r0", 100)).await;
    assert_eq!(dup.reply["status"], "duplicate", "{dup:?}");

    assert!(wait_for_all(&slack, &acked, Duration::from_secs(20)).await);
    s.drained(Duration::from_secs(20)).await;
    let counts = posted_counts(&slack);
    assert_eq!(counts.len(), acked.len(), "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

// ---- SIGTERM under load ---------------------------------------------------------------

/// Starts a delivery whose body is only half sent; the server is then
/// processing it. `finish` sends the rest and reads the answer.
struct HalfSent {
    tcp: tokio::net::TcpStream,
    rest: Vec<u8>,
}

async fn half_send(base: &str, delivery: &str, body: &Value) -> HalfSent {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let bytes = body.to_string().into_bytes();
    let sig = testkit::sign::sha256_header(SECRET.as_bytes(), &bytes);
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-github-event: pull_request\r\nx-github-delivery: {delivery}\r\nx-hub-signature-256: {sig}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        bytes.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let half = bytes.len() / 2;
    tcp.write_all(&bytes[..half]).await.unwrap();
    HalfSent {
        tcp,
        rest: bytes[half..].to_vec(),
    }
}

/// Returns once the server has accepted every connection opened before this
/// call: connections are accepted in the order they were queued, so a new
/// connection that gets an answer comes after all of them.
async fn accepted_barrier(base: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply))
        .await
        .expect("an answer")
        .expect("read");
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

impl HalfSent {
    async fn finish(mut self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.tcp.write_all(&self.rest).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), self.tcp.read_to_end(&mut reply))
            .await
            .expect("an answer")
            .expect("read");
        String::from_utf8_lossy(&reply).into_owned()
    }
}

#[tokio::test]
async fn sigterm_under_load_finishes_requests_keeps_the_queue_and_exits_zero() {
    let _heavy = support::heavy().await;
    // Slack allows 2/s per channel; prpr sends 1/s per channel: a queue builds up.
    let slack = SlackDouble::start(SlackConfig {
        rate_limit: Some(RateLimit {
            per_second: 2.0,
            burst: 2,
            retry_after_secs: 1,
        }),
        ..SlackConfig::default()
    })
    .await;
    let config = members(
        8,
        "[slack]\nper_channel_per_sec = 1.0\nburst = 1\nretry_initial_ms = 50\nmax_attempts = 1000\ntimeout_secs = 2",
    );
    let mut s = Server::start(Some(&slack), Launch::with_config(config)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks = stream_deliveries(
        Traffic {
            base: s.base.clone(),
            tasks: 4,
            prefix: "term",
            reviewers: 8,
            every_nth_is_request: 4,
            pause: Duration::from_millis(2),
        },
        stop.clone(),
        log.clone(),
    );
    // Traffic is flowing and a queue is building up.
    assert!(
        support::eventually(Duration::from_secs(10), || log.lock().unwrap().len() >= 40
            && !slack.posted().is_empty())
        .await,
        "no traffic"
    );
    // Three deliveries the server is in the middle of reading.
    let mut slow = Vec::new();
    let mut slow_targets = Vec::new();
    for i in 0..3u64 {
        let body = request(&format!("r{i}"), 9000 + i);
        slow_targets.push(target(&body));
        slow.push(half_send(&s.base, &format!("term-slow-{i}"), &body).await);
    }
    accepted_barrier(&s.base).await;

    let signal = Instant::now();
    s.sigterm();
    // The server is shutting down before the slow requests finish.
    s.logged(
        "shutdown requested: finishing in-flight requests and Slack sends",
        1,
        Duration::from_secs(10),
    )
    .await;
    // In-flight requests finish after the signal, with their 202.
    for h in slow {
        let reply = h.finish().await;
        assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
        assert!(reply.contains(r#""status":"queued""#), "{reply}");
    }
    let status = s
        .wait_exit(Duration::from_secs(25))
        .await
        .expect("exited within 25 s of SIGTERM");
    assert!(status.success(), "{status}");
    assert!(signal.elapsed() < Duration::from_secs(25));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let log_text = s.log().join("\n");
    assert!(log_text.contains("shutdown complete"), "{log_text}");

    let log = log.lock().unwrap().clone();
    let (acked, unanswered) = split_acknowledged(&log);
    // Requests cut off by the shutdown: every one of them was sent after the
    // signal or at most a moment before it (an idle keep-alive connection
    // closing as the client reuses it, the HTTP/1.1 race GitHub retries).
    let cut_before: Vec<_> = log
        .iter()
        .filter(|x| x.status.is_none() && x.started < signal)
        .map(|x| signal - x.started)
        .collect();
    assert!(
        cut_before.iter().all(|d| *d < Duration::from_millis(250)),
        "requests sent well before SIGTERM got no answer: {cut_before:?}"
    );
    let answered: usize = log.iter().filter(|x| x.status.is_some()).count();
    assert!(
        log.iter()
            .all(|x| x.status.is_none() || x.status == Some(202)),
        "every answered request was accepted"
    );
    let sent_before_exit = slack.posted().len();

    // Queued sends went out before the exit or are still queued: the next
    // start sends them, and nothing acknowledged is lost or doubled.
    let s = s.restart().await;
    let want: Vec<(String, u64)> = acked
        .iter()
        .map(|x| target(&x.body))
        .chain(slow_targets.iter().cloned())
        .collect();
    assert!(
        wait_for_all(&slack, &want, Duration::from_secs(60)).await,
        "missing after restart: {:?}",
        want.iter()
            .filter(|k| !posted_counts(&slack).contains_key(*k))
            .collect::<Vec<_>>()
    );
    s.drained(Duration::from_secs(30)).await;
    let counts = posted_counts(&slack);
    assert!(
        counts.values().all(|&n| n == 1),
        "sent more than once: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let allowed: std::collections::BTreeSet<_> = want
        .iter()
        .cloned()
        .chain(unanswered.iter().map(|x| target(&x.body)))
        .collect();
    assert!(counts.keys().all(|k| allowed.contains(k)), "{counts:?}");
    eprintln!(
        "SIGTERM under load: {answered} requests answered 202 ({} review requests), {} cut off ({} of them started before the signal), {} slow in-flight requests finished; {sent_before_exit} notifications sent before exit, {} after restart",
        acked.len(),
        log.len() - answered,
        cut_before.len(),
        slow_targets.len(),
        counts.len() - sent_before_exit
    );
    assert!(
        sent_before_exit < want.len(),
        "the queue was not exercised: everything went out before the exit"
    );
    drop(s);
}

// ---- SIGTERM the moment the port opens ------------------------------------------------

/// ECS may stop a task as soon as it is up. A SIGTERM that arrives right
/// after the port opens must still be a graceful shutdown (exit 0), not the
/// default action of the signal (killed, exit 143): the handlers have to be in
/// place before the server accepts anything.
#[tokio::test]
async fn sigterm_as_soon_as_the_port_opens_is_still_graceful() {
    let _heavy = support::heavy().await;
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("prpr.db").display());
    for run in 0..25 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut prpr = Command::new(support::bin())
            .arg("serve")
            .env_clear()
            .env("PORT", port.to_string())
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("DATABASE_URL", &db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A shell already waiting to send the signal: its builtin `kill` runs
        // microseconds after the port opens, not a fork+exec later.
        let mut killer = Command::new("sh")
            .arg("-c")
            .arg(format!("read _ && kill -TERM {}", prpr.id()))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "run {run}: prpr did not open its port"
            );
            assert!(prpr.try_wait().unwrap().is_none(), "run {run}: prpr exited");
            std::thread::sleep(Duration::from_micros(100));
        }
        killer.stdin.take().unwrap().write_all(b"\n").unwrap();
        killer.wait().unwrap();
        let status = loop {
            if let Some(s) = prpr.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "run {run}: no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(
            status.success(),
            "run {run}: SIGTERM right after start-up ended prpr with {status}"
        );
    }
}

/// Polls `/readyz` until it answers `want`.
async fn ready_becomes(s: &Server, want: u16, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = s.get("/readyz").await;
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "/readyz still {status} {body} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_database_deleted_while_serving_gets_503_not_202_and_recovers_when_restored() {
    let _heavy = support::heavy().await;
    use sqlx::Connection;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        Launch::with_config(members(3, "[store]\nunhealthy_after_secs = 1")),
    )
    .await;
    assert_eq!(
        s.deliver("pull_request", "del-1", &request("r0", 1))
            .await
            .0,
        202
    );
    s.drained(Duration::from_secs(10)).await;

    // A backup, then the database goes (an operator's rm, a volume swapped).
    let db = s.dir.path().join("prpr.db");
    let backup = s.dir.path().join("backup.db");
    let mut conn = sqlx::SqliteConnection::connect(&s.database_url)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "VACUUM INTO '{}'",
        backup.display()
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }

    // Nothing is acknowledged into a file no restart would see.
    let (status, reply) = s.deliver("pull_request", "del-2", &request("r1", 2)).await;
    assert_eq!(status, 503, "{reply}");
    ready_becomes(&s, 503, Duration::from_secs(3)).await;
    let (_, ready) = s.get("/readyz").await;
    assert!(
        ready["error"]
            .as_str()
            .unwrap()
            .contains("was deleted while prpr was using it"),
        "{ready}"
    );

    // Left so past store.unhealthy_after_secs, liveness fails too (ECS
    // would replace the task).
    let unhealthy = support::eventually(Duration::from_secs(5), || {
        !s.log_events("store unusable: /readyz answers 503")
            .is_empty()
    })
    .await;
    assert!(unhealthy);
    let start = Instant::now();
    loop {
        let (status, body) = s.get("/healthz").await;
        if status == 503 {
            assert_eq!(body["status"], "unhealthy", "{body}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "/healthz still {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The operator restores it: service resumes without a restart.
    std::fs::rename(&backup, &db).unwrap();
    let took = ready_becomes(&s, 200, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5));
    assert_eq!(s.get("/healthz").await.0, 200);
    let (status, reply) = s.deliver("pull_request", "del-2", &request("r1", 2)).await;
    assert_eq!(status, 202, "{reply}");
    let (status, reply) = s.deliver("pull_request", "del-1", &request("r0", 1)).await;
    assert_eq!((status, reply["status"].as_str()), (202, Some("duplicate")));
    s.drained(Duration::from_secs(10)).await;
    slack.wait_for_posted(2, Duration::from_secs(10)).await;
    let counts = posted_counts(&slack);
    assert_eq!(counts.values().sum::<usize>(), 2, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

#[tokio::test]
async fn a_connection_left_inside_a_transaction_does_not_poison_the_store() {
    let _heavy = support::heavy().await;
    // The store's pool as prpr builds it; a transaction forgotten on one of
    // its connections stands for a COMMIT that failed and a rollback that
    // failed too (a full disk).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("prpr.db").display());
    let store = prpr::store::Store::connect(&url).await.unwrap();
    store.poison_one_connection_for_tests().await.unwrap();
    for i in 0..8 {
        store
            .probe_write(i)
            .await
            .expect("every connection usable again");
    }
}

#[tokio::test]
async fn postgres_backends_killed_mid_load_poison_nothing() {
    let _heavy = support::heavy().await;
    let Some(pg) = support::postgres_db().await else {
        return;
    };
    let db = pg.url.rsplit('/').next().unwrap().to_string();
    assert!(db.starts_with("prpr_test_"), "{db}");
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        Launch {
            config: members(
                6,
                "[slack]\nper_channel_per_sec = 50.0\nburst = 50\nretry_initial_ms = 50\nretry_max_ms = 300\nmax_attempts = 1000\ntimeout_secs = 2",
            ),
            database_url: Some(pg.url.clone()),
            ..Launch::default()
        },
    )
    .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks = stream_deliveries(
        Traffic {
            base: s.base.clone(),
            tasks: 4,
            prefix: "kill",
            reviewers: 6,
            every_nth_is_request: 2,
            pause: Duration::from_millis(5),
        },
        stop.clone(),
        log.clone(),
    );
    // prpr's backends are killed, inside transactions or not, again and again.
    let enough = |n: usize| {
        let log = log.clone();
        move || log.lock().unwrap().len() >= n
    };
    assert!(support::eventually(Duration::from_secs(10), enough(20)).await);
    for round in 0..5 {
        admin_sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        ))
        .await;
        assert!(
            support::eventually(Duration::from_secs(10), enough(40 + 20 * round)).await,
            "traffic stalled"
        );
    }
    // After the last kill, deliveries are stored again within 5 s.
    let last_kill = Instant::now();
    let recovered = support::eventually(Duration::from_secs(5), || {
        log.lock()
            .unwrap()
            .iter()
            .any(|r| r.started > last_kill && r.status == Some(202))
    })
    .await;
    assert!(recovered, "no 202 within 5 s of the last kill");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    for r in &log {
        assert!(
            matches!(r.status, Some(202) | Some(503)),
            "only 202 or 503: {r:?}"
        );
    }
    let (acked, _) = split_acknowledged(&log);
    let want: Vec<(String, u64)> = acked.iter().map(|r| target(&r.body)).collect();
    // A message whose claim or "sent" mark died with its backend stays
    // leased until the lease runs out (15 s), then goes out: at least once, late.
    assert!(wait_for_all(&slack, &want, Duration::from_secs(75)).await);
    s.drained(Duration::from_secs(75)).await;
    let counts = posted_counts(&slack);
    for k in &want {
        assert_eq!(counts.get(k), Some(&1), "{k:?} in {counts:?}");
    }
    // (A delivery whose COMMIT landed just as its backend died may be posted
    // though answered 503: at least once, never twice.)
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

// ---- the disk and the database server misbehaving ---------------------------------

/// Says on the real stderr (the harness captures `eprintln!` of passing
/// tests) that a fault test could not run here, and why.
fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// Runs a command; its stderr (or how it failed to start) on failure.
fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

fn is_root() -> bool {
    sh("id", &["-u"]).is_ok_and(|u| u.trim() == "0")
}

/// Review requests acknowledged `202 queued` are each posted exactly once.
async fn each_posted_once(s: &Server, slack: &SlackDouble, acked: &[(String, u64)]) {
    assert!(
        wait_for_all(slack, acked, Duration::from_secs(20)).await,
        "not all acknowledged review requests reached Slack: {:?}",
        posted_counts(slack)
    );
    s.drained(Duration::from_secs(20)).await;
    let counts = posted_counts(slack);
    for k in acked {
        assert_eq!(counts.get(k), Some(&1), "{k:?} in {counts:?}");
    }
    assert_eq!(counts.len(), acked.len(), "{counts:?}");
}

/// Files made immutable (`chattr +i`) until dropped: read-only even for root,
/// which file permissions are not (the tests run as root in CI).
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(files: &[PathBuf]) -> Result<Immutable, String> {
        let mut done = Immutable(Vec::new());
        for f in files {
            sh("chattr", &["+i", &f.display().to_string()])?;
            done.0.push(f.clone());
        }
        Ok(done)
    }

    fn clear(&mut self) {
        for f in self.0.drain(..) {
            let _ = sh("chattr", &["-i", &f.display().to_string()]);
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        self.clear();
    }
}

#[tokio::test]
async fn read_only_database_files_get_503_then_resume_within_5_s_of_being_writable() {
    let _heavy = support::heavy().await;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(Some(&slack), Launch::with_config(members(4, ""))).await;
    let mut acked = Vec::new();
    let (status, reply) = s.deliver("pull_request", "ro-1", &request("r0", 1)).await;
    assert_eq!(status, 202, "{reply}");
    acked.push(target(&request("r0", 1)));
    // Nothing in flight to Slack when the fault starts (a send recorded
    // during it would be sent again when its lease ends: at least once).
    assert!(wait_for_all(&slack, &acked, Duration::from_secs(10)).await);
    s.drained(Duration::from_secs(10)).await;

    let db = s.dir.path().join("prpr.db");
    let files: Vec<PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|x| PathBuf::from(format!("{}{x}", db.display())))
        .filter(|p| p.exists())
        .collect();
    let mut ro = match Immutable::set(&files) {
        Ok(g) => g,
        Err(why) => {
            skipped(
                "read_only_database_files",
                &format!(
                    "cannot make the database read-only with chattr +i ({why}); root ignores file modes"
                ),
            );
            return;
        }
    };

    // During the fault: every delivery refused, /readyz says so.
    let mut refused = Vec::new();
    for i in 0..3u64 {
        let body = request(&format!("r{}", 1 + i), 10 + i);
        let (status, reply) = s.deliver("pull_request", &format!("ro-b{i}"), &body).await;
        assert_eq!(status, 503, "read-only database: {reply}");
        assert_eq!(
            reply["error"],
            "store unavailable; the delivery was not stored, retry later"
        );
        refused.push((format!("ro-b{i}"), body));
    }
    ready_becomes(&s, 503, Duration::from_secs(3)).await;
    assert_eq!(
        s.get("/healthz").await.0,
        200,
        "not yet past unhealthy_after"
    );

    // Writable again: service resumes by itself within 5 s.
    ro.clear();
    let took = ready_becomes(&s, 200, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    for (id, body) in &refused {
        // GitHub's "Redeliver" of what got 503.
        let (status, reply) = s.deliver("pull_request", id, body).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (202, Some("queued")),
            "{reply}"
        );
        acked.push(target(body));
    }
    each_posted_once(&s, &slack, &acked).await;
}

/// A tmpfs mounted for one test, unmounted (lazily) when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        if !cfg!(target_os = "linux") {
            return Err("tmpfs resizing is Linux only".into());
        }
        if !is_root() {
            return Err("mounting a tmpfs needs root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().display().to_string();
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "prprfault",
                &path,
            ],
        )?;
        Ok(Tmpfs { dir })
    }

    fn resize(&self, size: &str) -> Result<(), String> {
        let path = self.dir.path().display().to_string();
        sh("mount", &["-o", &format!("remount,size={size}"), &path]).map(|_| ())
    }

    /// Writes a file until the volume is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.path().join("filler")).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).and_then(|_| f.flush()).is_ok() {}
        // The last partial pages too.
        while f.write_all(&[0u8; 512]).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = sh("umount", &["-l", &self.dir.path().display().to_string()]);
    }
}

#[tokio::test]
async fn a_full_tmpfs_gets_503_then_resumes_within_5_s_of_growing() {
    let _heavy = support::heavy().await;
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(why) => {
            skipped("a_full_tmpfs", &format!("cannot mount a tmpfs: {why}"));
            return;
        }
    };
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        Launch {
            config: members(4, ""),
            database_url: Some(format!(
                "sqlite://{}",
                fs.dir.path().join("prpr.db").display()
            )),
            ..Launch::default()
        },
    )
    .await;
    let mut acked = Vec::new();
    for i in 0..2u64 {
        let body = request(&format!("r{i}"), 1 + i);
        let (status, reply) = s
            .deliver("pull_request", &format!("full-a{i}"), &body)
            .await;
        assert_eq!(status, 202, "{reply}");
        acked.push(target(&body));
    }
    // A 4 MB volume is under store.min_free (50 MB): said, yet still ready.
    let (status, ready) = s.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["low_disk"]["min_free"], 50_000_000, "{ready}");
    assert!(
        ready["low_disk"]["free_bytes"].as_u64().unwrap() < 4 << 20,
        "{ready}"
    );
    s.logged(
        "low disk space on the database volume: deliveries fail once it is full; free some space or grow the volume",
        1,
        Duration::from_secs(5),
    )
    .await;
    // Nothing in flight to Slack when the disk fills.
    assert!(wait_for_all(&slack, &acked, Duration::from_secs(10)).await);
    s.drained(Duration::from_secs(10)).await;

    fs.fill();
    // Pushes (no notification) until the WAL needs a page the disk lacks;
    // a commit that still fits in pages SQLite already has is stored (202).
    let mut first_refused = None;
    for i in 0..2000u64 {
        let (status, reply) = s
            .deliver("pull_request", &format!("full-p{i}"), &synchronize(100 + i))
            .await;
        assert!(matches!(status, 202 | 503), "{status} {reply}");
        if status == 503 {
            first_refused = Some(i);
            break;
        }
    }
    let first = first_refused.expect("a full disk refuses deliveries");
    let body = request("r2", 50);
    let (status, reply) = s.deliver("pull_request", "full-b0", &body).await;
    assert_eq!(status, 503, "after push {first} was refused: {reply}");
    ready_becomes(&s, 503, Duration::from_secs(3)).await;
    let (_, ready) = s.get("/readyz").await;
    assert!(
        ready["low_disk"]["free_bytes"].as_u64().unwrap() < 64 * 1024,
        "{ready}"
    );

    // The volume grows: service resumes by itself within 5 s.
    fs.resize("16m").unwrap();
    let took = ready_becomes(&s, 200, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    let (status, reply) = s.deliver("pull_request", "full-b0", &body).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (202, Some("queued")),
        "{reply}"
    );
    acked.push(target(&body));
    let body = request("r3", 51);
    let (status, reply) = s.deliver("pull_request", "full-c0", &body).await;
    assert_eq!(status, 202, "{reply}");
    acked.push(target(&body));
    each_posted_once(&s, &slack, &acked).await;
}

/// A PostgreSQL cluster of the test's own (`initdb` + `pg_ctl`) on a free
/// port: restarting the shared server would break every other test using it.
/// Stopped and deleted when dropped.
struct PrivateCluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivateCluster {
    fn pg_ctl(&self, args: &[&str]) -> Result<String, String> {
        let data = self.dir.path().join("data").display().to_string();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        as_postgres("pg_ctl", &all)
    }

    fn start() -> Result<PrivateCluster, String> {
        for tool in ["initdb", "pg_ctl"] {
            sh("sh", &["-c", &format!("command -v {tool}")])
                .map_err(|_| format!("{tool} is not on PATH"))?;
        }
        let dir = tempfile::Builder::new()
            .prefix("prpr-pgfault")
            .tempdir()
            .map_err(|e| e.to_string())?;
        if is_root() {
            // initdb refuses to run as root.
            sh("chown", &["postgres:", &dir.path().display().to_string()])?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let c = PrivateCluster { dir, port };
        let data = c.dir.path().join("data").display().to_string();
        as_postgres(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        )?;
        c.up()?;
        Ok(c)
    }

    fn up(&self) -> Result<(), String> {
        let log = self.dir.path().join("log").display().to_string();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.pg_ctl(&["-l", &log, "-o", &opts, "-w", "start"])
            .map(|_| ())
    }

    fn down(&self) -> Result<(), String> {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]).map(|_| ())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root.
fn as_postgres(program: &str, args: &[&str]) -> Result<String, String> {
    if is_root() {
        let mut all = vec!["-u", "postgres", "--", program];
        all.extend_from_slice(args);
        sh("runuser", &all)
    } else {
        sh(program, args)
    }
}

#[tokio::test]
async fn postgres_restarted_mid_load_gets_503_then_resumes_within_5_s() {
    let _heavy = support::heavy().await;
    // The suite's convention: no PostgreSQL, no PostgreSQL tests.
    if support::postgres_db().await.is_none() {
        return;
    }
    let pg = match tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap()
    {
        Ok(pg) => pg,
        Err(why) => {
            skipped(
                "postgres_restarted_mid_load",
                &format!("cannot run a private PostgreSQL cluster: {why}"),
            );
            return;
        }
    };
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        Launch {
            config: members(
                6,
                "[slack]\nper_channel_per_sec = 50.0\nburst = 50\nretry_initial_ms = 50\nretry_max_ms = 300\nmax_attempts = 1000\ntimeout_secs = 2",
            ),
            database_url: Some(pg.url()),
            ..Launch::default()
        },
    )
    .await;
    let http = client();
    let mut acked = Vec::new();
    for i in 0..3u64 {
        let body = request(&format!("r{i}"), 100 + i);
        let r = post(&http, &s.base, &format!("pgr-a{i}"), &body).await;
        assert_eq!(r.status, Some(202), "{r:?}");
        acked.push(target(&body));
    }
    // Nothing in flight to Slack at the restart (a "sent" mark lost with the
    // server would mean a second post when its lease ends: at least once).
    assert!(wait_for_all(&slack, &acked, Duration::from_secs(10)).await);
    s.drained(Duration::from_secs(10)).await;

    // Load through the restart: pushes, each a full store transaction.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks = stream_deliveries(
        Traffic {
            base: s.base.clone(),
            tasks: 3,
            prefix: "pgr",
            reviewers: 6,
            // Each client's first delivery is a review request, the rest pushes.
            every_nth_is_request: usize::MAX,
            pause: Duration::from_millis(10),
        },
        stop.clone(),
        log.clone(),
    );
    let count = |after: Instant, status: u16| {
        let log = log.clone();
        move || {
            log.lock()
                .unwrap()
                .iter()
                .any(|r| r.started > after && r.status == Some(status))
        }
    };
    let started = Instant::now();
    assert!(support::eventually(Duration::from_secs(10), || log.lock().unwrap().len() >= 12).await);
    assert!(count(started, 202)());
    let (early, _) = split_acknowledged(&log.lock().unwrap());
    acked.extend(early.iter().map(|r| target(&r.body)));
    assert!(wait_for_all(&slack, &acked, Duration::from_secs(10)).await);

    let pg = Arc::new(pg);
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.down())
        .await
        .unwrap()
        .unwrap();
    let stopped = Instant::now();
    assert!(
        support::eventually(Duration::from_secs(15), count(stopped, 503)).await,
        "no 503 while PostgreSQL was down"
    );
    ready_becomes(&s, 503, Duration::from_secs(10)).await;

    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.up())
        .await
        .unwrap()
        .unwrap();
    let back = Instant::now();
    assert!(
        support::eventually(Duration::from_secs(5), count(back, 202)).await,
        "no 202 within 5 s of PostgreSQL's return"
    );
    ready_becomes(
        &s,
        200,
        Duration::from_secs(5).saturating_sub(back.elapsed()),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    for r in log.lock().unwrap().iter() {
        assert!(
            matches!(r.status, Some(202) | Some(503)),
            "only 202 or 503: {r:?}"
        );
    }

    // After the restart, review requests go out once each.
    for i in 3..6u64 {
        let body = request(&format!("r{i}"), 100 + i);
        let r = post(&http, &s.base, &format!("pgr-c{i}"), &body).await;
        assert_eq!(r.status, Some(202), "{r:?}");
        acked.push(target(&body));
    }
    each_posted_once(&s, &slack, &acked).await;
}

#[tokio::test]
async fn postgres_backends_killed_inside_transactions_answer_503_at_worst_and_lose_nothing() {
    let _heavy = support::heavy().await;
    let Some(pg) = support::postgres_db().await else {
        return;
    };
    let db = pg.url.rsplit('/').next().unwrap().to_string();
    assert!(db.starts_with("prpr_test_"), "{db}");
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        Launch {
            config: members(
                6,
                "[slack]\nper_channel_per_sec = 50.0\nburst = 50\nretry_initial_ms = 50\nretry_max_ms = 300\nmax_attempts = 1000\ntimeout_secs = 2",
            ),
            database_url: Some(pg.url.clone()),
            ..Launch::default()
        },
    )
    .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks = stream_deliveries(
        Traffic {
            base: s.base.clone(),
            tasks: 4,
            prefix: "xact",
            reviewers: 6,
            every_nth_is_request: 2,
            pause: Duration::from_millis(2),
        },
        stop.clone(),
        log.clone(),
    );
    // Only backends of this test's own database, and only while they are
    // inside a transaction: the kill lands between BEGIN and COMMIT.
    use sqlx::Connection;
    let admin = std::env::var("PRPR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let kill = format!(
        "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity \
         WHERE datname = '{db}' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()"
    );
    let mut killed = 0;
    let started = Instant::now();
    while killed < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "caught only {killed} backends inside a transaction"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(kill.clone()))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        killed += rows.len();
        tokio::task::yield_now().await;
    }
    // After the last kill, deliveries are stored again within 5 s.
    let last_kill = Instant::now();
    let recovered = support::eventually(Duration::from_secs(5), || {
        log.lock()
            .unwrap()
            .iter()
            .any(|r| r.started > last_kill && r.status == Some(202))
    })
    .await;
    assert!(recovered, "no 202 within 5 s of the last kill");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    for r in &log {
        assert!(
            matches!(r.status, Some(202) | Some(503)),
            "only 202 or 503: {r:?}"
        );
    }
    let (acked, _) = split_acknowledged(&log);
    let want: Vec<(String, u64)> = acked.iter().map(|r| target(&r.body)).collect();
    // A "sent" mark killed with its backend is retried at once; only if every
    // retry failed would the message wait for its lease (15 s): at least once.
    assert!(wait_for_all(&slack, &want, Duration::from_secs(75)).await);
    s.drained(Duration::from_secs(75)).await;
    let counts = posted_counts(&slack);
    for k in &want {
        assert_eq!(counts.get(k), Some(&1), "{k:?} in {counts:?}");
    }
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}
