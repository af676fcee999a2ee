//! Delivery guarantees against a misbehaving Slack and a dying process:
//! rate limits, outages, dead letters, kill -9 and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use crate::support::{Launch, Server, fixture, members, request};
use testkit::slack::{Fault, RateLimit, SlackConfig, SlackDouble};

fn count_by_channel(posted: &[testkit::slack::Posted]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for p in posted {
        *m.entry(p.channel.clone()).or_insert(0) += 1;
    }
    m
}

#[tokio::test]
async fn rate_limit_storm_delivers_each_message_exactly_once_in_order() {
    let _heavy = support::heavy().await;
    // Slack allows 5/s per channel with a burst of 2 and answers 429 + Retry-After: 1 beyond it.
    let slack = SlackDouble::start(SlackConfig {
        rate_limit: Some(RateLimit {
            per_second: 5.0,
            burst: 2,
            retry_after_secs: 1,
        }),
        ..SlackConfig::default()
    })
    .await;
    // prpr is configured faster than Slack allows, so it must rely on 429 handling.
    // Messages of their own (no threads): twelve posts, one per request.
    let config = "[notify]\nchannel = \"C0GENERAL1\"\ndelivery = \"channel\"\nthreads = false\n[slack]\nper_channel_per_sec = 50.0\nburst = 20\nretry_initial_ms = 50\nmax_attempts = 2\n[members]\nr0 = \"U0R00000\"\n";
    let s = Server::start(Some(&slack), Launch::with_config(config)).await;
    // 12 review requests on 12 PRs, all to the one channel.
    for i in 0..12u64 {
        assert_eq!(
            s.deliver(
                "pull_request",
                &format!("storm-{i}"),
                &request("r0", 100 + i)
            )
            .await
            .0,
            202
        );
    }
    let posted = slack.wait_for_posted(12, Duration::from_secs(30)).await;
    // Nothing is left to send, so nothing more can arrive.
    let outbox = s.drained(Duration::from_secs(30)).await;
    assert_eq!((outbox.sent, outbox.dead), (12, 0), "{outbox:?}");
    let posted_all = slack.posted();
    assert_eq!(
        posted_all.len(),
        12,
        "each exactly once: {:?}",
        posted.iter().map(|p| p.text.clone()).collect::<Vec<_>>()
    );
    let limited = slack.attempts().iter().filter(|a| a.status == 429).count();
    assert!(limited > 0, "the double really rate limited prpr");
    // In the order the events arrived, although many attempts were refused
    // (429s do not count towards max_attempts = 2: nothing was dead-lettered).
    let numbers: Vec<String> = posted_all
        .iter()
        .map(|p| {
            p.text
                .as_deref()
                .unwrap_or("")
                .split("Hello-World#")
                .nth(1)
                .unwrap_or("")
                .split('>')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let expected: Vec<String> = (100..112).map(|n| n.to_string()).collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn slack_down_for_a_while_then_everything_arrives_once() {
    let _heavy = support::heavy().await;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = members(
        5,
        "[slack]\nretry_initial_ms = 50\nretry_max_ms = 300\nmax_attempts = 50\ntimeout_secs = 1",
    );
    let s = Server::start(Some(&slack), Launch::with_config(config)).await;
    slack.set_fault(Fault::Status(503));
    for i in 0..5 {
        assert_eq!(
            s.deliver(
                "pull_request",
                &format!("down-{i}"),
                &request(&format!("r{i}"), 7)
            )
            .await
            .0,
            202
        );
    }
    assert!(
        support::eventually(Duration::from_secs(10), || slack
            .attempts()
            .iter()
            .filter(|a| a.status == 503)
            .count()
            >= 5)
        .await,
        "prpr kept retrying"
    );
    assert!(slack.posted().is_empty());
    assert_eq!(s.outbox().await.pending, 5, "nothing given up on");
    // Then Slack stops answering at all (connection refused), then comes back.
    slack.stop().await;
    let retries_before = s.log_events("slack send").len();
    s.logged("slack send", retries_before + 3, Duration::from_secs(10))
        .await;
    slack.set_fault(Fault::None);
    slack.restart().await.unwrap();
    let posted = slack.wait_for_posted(5, Duration::from_secs(15)).await;
    let outbox = s.drained(Duration::from_secs(15)).await;
    assert_eq!((outbox.sent, outbox.dead), (5, 0), "{outbox:?}");
    assert_eq!(slack.posted().len(), 5, "{posted:#?}");
    let counts = count_by_channel(&slack.posted());
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let retries = s
        .log_events("slack send")
        .iter()
        .filter(|l| l["outcome"] == "retry")
        .count();
    assert!(retries >= 5);
}

#[tokio::test]
async fn slack_hanging_past_the_timeout_is_retried() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = members(1, "[slack]\nretry_initial_ms = 50\ntimeout_secs = 1");
    let s = Server::start(Some(&slack), Launch::with_config(config)).await;
    slack.fail_next(1, Fault::Hang);
    s.deliver("pull_request", "hang-1", &request("r0", 1)).await;
    let posted = slack.wait_for_posted(1, Duration::from_secs(10)).await;
    assert_eq!(posted.len(), 1);
    let retry = s
        .log_events("slack send")
        .into_iter()
        .find(|l| l["outcome"] == "retry")
        .expect("a retry was logged");
    assert!(
        retry["error"].as_str().unwrap().starts_with("timed out"),
        "{retry}"
    );
}

#[tokio::test]
async fn permanent_errors_are_dead_lettered_listed_and_retried() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(Some(&slack), Launch::with_config(members(2, ""))).await;
    slack.fail_next(1, Fault::Error("channel_not_found".into()));
    s.deliver("pull_request", "dl-1", &request("r0", 1)).await;
    assert!(
        support::eventually(Duration::from_secs(5), || s
            .log_events("slack send")
            .iter()
            .any(|l| l["outcome"] == "dead"))
        .await
    );
    assert!(slack.posted().is_empty());

    let out = s.cli(&["outbox", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        listing.contains("dead")
            && listing.contains("channel_not_found")
            && listing.contains("U0R00000"),
        "{listing}"
    );

    let out = s.cli(&["outbox", "retry", "--all-dead"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1 dead-lettered message(s) requeued"
    );
    // The running server picks it up on its next poll.
    let posted = slack.wait_for_posted(1, Duration::from_secs(10)).await;
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].channel, "U0R00000");
    let out = s.cli(&["outbox", "retry", "999"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "prpr: no pending or dead-lettered message with id 999"
    );
}

#[tokio::test]
async fn invalid_token_is_dead_lettered_with_the_reason_and_never_logged() {
    let slack = SlackDouble::start(SlackConfig {
        token: "xoxb-the-right-one".into(),
        ..SlackConfig::default()
    })
    .await;
    let s = Server::start(Some(&slack), Launch::with_config(members(1, ""))).await;
    s.deliver("pull_request", "auth-1", &request("r0", 1)).await;
    assert!(
        support::eventually(Duration::from_secs(5), || s
            .log_events("slack send")
            .iter()
            .any(|l| l["outcome"] == "dead" && l["error"] == "invalid_auth"))
        .await
    );
    let log = s.log().join("\n");
    assert!(
        !log.contains(support::TOKEN),
        "the token leaked into the logs"
    );
    assert!(
        !log.contains(support::SECRET),
        "the webhook secret leaked into the logs"
    );
}

#[tokio::test]
async fn killed_with_messages_queued_delivers_them_after_restart() {
    let _heavy = support::heavy().await;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = members(
        20,
        "[slack]\nretry_initial_ms = 50\nmax_attempts = 100\ntimeout_secs = 1",
    );
    let mut s = Server::start(Some(&slack), Launch::with_config(config)).await;
    // Slack is hanging: every send is in flight or queued when the process dies.
    slack.set_fault(Fault::Hang);
    for i in 0..20 {
        assert_eq!(
            s.deliver(
                "pull_request",
                &format!("k-{i}"),
                &request(&format!("r{i}"), 9)
            )
            .await
            .0,
            202
        );
    }
    // Killed while sends are in flight.
    assert!(
        support::eventually(Duration::from_secs(10), || slack
            .attempts()
            .iter()
            .any(|a| a.error.as_deref() == Some("hang")))
        .await
    );
    s.kill9().await;
    slack.set_fault(Fault::None);
    slack.stop().await; // close the hung connections
    slack.restart().await.unwrap();
    let s = s.restart().await;
    let posted = slack.wait_for_posted(20, Duration::from_secs(15)).await;
    let outbox = s.drained(Duration::from_secs(15)).await;
    assert_eq!((outbox.sent, outbox.dead), (20, 0), "{outbox:?}");
    assert_eq!(slack.posted().len(), 20, "{posted:#?}");
    let counts = count_by_channel(&slack.posted());
    assert_eq!(counts.len(), 20);
    assert!(
        counts.values().all(|&n| n == 1),
        "exactly once per recipient: {counts:?}"
    );
    drop(s);
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let mut s = Server::start(Some(&slack), Launch::with_config(members(3, ""))).await;
    for i in 0..3 {
        assert_eq!(
            s.deliver(
                "pull_request",
                &format!("t-{i}"),
                &request(&format!("r{i}"), 3)
            )
            .await
            .0,
            202
        );
    }
    s.sigterm();
    let status = s
        .wait_exit(Duration::from_secs(25))
        .await
        .expect("exited within 25 s");
    assert!(status.success(), "{status}");
    let log = s.log().join("\n");
    assert!(log.contains("shutdown complete"), "{log}");
    // Whatever was not sent before the exit is still queued and goes out on the next start.
    let sent_before = slack.posted().len();
    let s = s.restart().await;
    let posted = slack.wait_for_posted(3, Duration::from_secs(10)).await;
    assert_eq!(posted.len(), 3, "sent before exit: {sent_before}");
    assert_eq!(count_by_channel(&posted).len(), 3);
    drop(s);
}

#[tokio::test]
async fn sigterm_during_a_slow_send_waits_for_it() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let mut s = Server::start(
        Some(&slack),
        Launch::with_config(members(1, "[slack]\ntimeout_secs = 3")),
    )
    .await;
    slack.fail_next(1, Fault::Hang);
    s.deliver("pull_request", "slow-1", &request("r0", 3)).await;
    // The send has reached Slack (and hangs there) before the signal.
    assert!(
        support::eventually(Duration::from_secs(10), || slack
            .attempts()
            .iter()
            .any(|a| a.error.as_deref() == Some("hang")))
        .await
    );
    let t = std::time::Instant::now();
    s.sigterm();
    let status = s
        .wait_exit(Duration::from_secs(25))
        .await
        .expect("exited within 25 s");
    assert!(status.success());
    // It waited for the in-flight send to end (the 3 s client timeout), not more.
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        s.log()
            .join("\n")
            .contains("waiting for Slack sends in flight")
    );
}

#[tokio::test]
async fn without_a_token_messages_are_printed() {
    let s = Server::start(None, Launch::default()).await;
    s.deliver(
        "pull_request",
        "console-1",
        &fixture("pull_request.review_requested.user"),
    )
    .await;
    assert!(support::eventually(Duration::from_secs(5), || !s.console_lines().is_empty()).await);
    assert_eq!(
        s.console_lines(),
        vec!["[U0OCTOCAT1] :eyes: @Codertocat requested your review on <https://github.com/Codertocat/Hello-World/pull/2|Codertocat/Hello-World#2>".to_string()]
    );
    assert!(
        s.log()
            .iter()
            .any(|l| l == "    *Update the README with new information.* · by @Codertocat · +1 −1")
    );
}

#[tokio::test]
async fn refuses_to_start_without_a_secret() {
    let out = std::process::Command::new(support::bin())
        .arg("serve")
        .env_clear()
        .env("PORT", "0")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no webhook secret configured: set GITHUB_WEBHOOK_SECRET"),
        "{err}"
    );
}

#[tokio::test]
async fn insecure_mode_warns_on_every_request() {
    let s = Server::start(
        None,
        Launch {
            env: vec![("GITHUB_WEBHOOK_SECRET".into(), String::new())],
            args: vec!["--insecure-accept-unsigned".into()],
            ..Launch::default()
        },
    )
    .await;
    for i in 0..2 {
        let (status, _) = s
            .post_raw(
                "/webhook",
                &[
                    ("content-type", "application/json"),
                    ("x-github-event", "push"),
                    ("x-github-delivery", &format!("u-{i}")),
                ],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(status, 202);
    }
    let warnings = s
        .log()
        .iter()
        .filter(|l| l.contains("accepting an unsigned delivery"))
        .count();
    assert_eq!(warnings, 2);
    assert!(
        s.log()
            .iter()
            .any(|l| l.contains("accepting UNSIGNED deliveries"))
    );
}
