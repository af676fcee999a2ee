//! The Slack double answers as the real Web API does.

// A test crate: a panic is a test failure with a backtrace (as clippy.toml
// allows inside #[test] fns; this extends it to the helpers here).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::slack::{Fault, RateLimit, SlackConfig, SlackDouble, SlackUser};

const TOKEN: &str = "xoxb-test-token";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post_json(
    d: &SlackDouble,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client()
        .post(format!("{}/chat.postMessage", d.api_url()))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, v)
}

#[tokio::test]
async fn auth_errors_match_slack() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let msg = json!({"channel": "C1", "text": "hi"});

    let (s, _, v) = post_json(&d, None, msg.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"ok": false, "error": "not_authed"}));

    let (s, _, v) = post_json(&d, Some("xoxb-wrong"), msg.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"ok": false, "error": "invalid_auth"}));

    let (_, _, v) = post_json(&d, Some(TOKEN), msg).await;
    assert_eq!(v["ok"], true);

    // auth.test
    let r: Value = client()
        .post(format!("{}/auth.test", d.api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["user_id"], "U0BOT");
    assert_eq!(r["bot_id"], "B0BOT");
    assert_eq!(r["team_id"], "T0TEST");
    assert_eq!(r["url"], "https://test.slack.com/");
    let r: Value = client()
        .post(format!("{}/auth.test", d.api_url()))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"ok": false, "error": "invalid_auth"}));

    // Only the good post was recorded; all requests are attempts.
    assert_eq!(d.posted().len(), 1);
    let errors: Vec<Option<String>> = d.attempts().into_iter().map(|a| a.error).collect();
    assert_eq!(
        errors,
        vec![
            Some("not_authed".into()),
            Some("invalid_auth".into()),
            None,
            None,
            Some("invalid_auth".into())
        ]
    );
}

#[tokio::test]
async fn post_message_records_and_answers_like_slack() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]);
    let (s, h, v) = post_json(
        &d,
        Some(TOKEN),
        json!({"channel": "C0CHAN", "text": "hi", "blocks": blocks, "unfurl_links": false, "unfurl_media": false}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    assert_eq!(v["ok"], true);
    assert_eq!(v["channel"], "C0CHAN");
    assert_eq!(v["message"]["text"], "hi");
    assert_eq!(v["message"]["blocks"], blocks);
    assert!(v.get("warning").is_none());
    let parent_ts = v["ts"].as_str().unwrap().to_owned();

    // A DM to a user ID answers with the D… channel; a threaded reply.
    let (_, _, v) = post_json(
        &d,
        Some(TOKEN),
        json!({"channel": "U0ALICE", "text": "dm", "thread_ts": parent_ts}),
    )
    .await;
    assert_eq!(v["channel"], "D0ALICE");
    assert_eq!(v["message"]["thread_ts"], parent_ts.as_str());

    // Form-encoded, token as a form field, blocks as a JSON string.
    let resp = client()
        .post(format!("{}/chat.postMessage", d.api_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={TOKEN}&channel=C0CHAN&text=a+%26+b&unfurl_links=true&blocks={}",
            "%5B%7B%22type%22%3A%22divider%22%7D%5D"
        ))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");

    // JSON without charset: accepted with Slack's warning.
    let v: Value = client()
        .post(format!("{}/chat.postMessage", d.api_url()))
        .bearer_auth(TOKEN)
        .json(&json!({"channel": "C0CHAN", "text": "x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["warning"], "missing_charset");

    let posted = d.posted();
    assert_eq!(posted.len(), 4);
    assert_eq!(posted[0].channel, "C0CHAN");
    assert_eq!(posted[0].text.as_deref(), Some("hi"));
    assert_eq!(posted[0].blocks.as_ref(), Some(&blocks));
    assert_eq!(posted[0].unfurl_links, Some(false));
    assert_eq!(posted[0].unfurl_media, Some(false));
    assert_eq!(posted[0].ts, parent_ts);
    assert_eq!(posted[1].channel, "U0ALICE");
    assert_eq!(posted[1].thread_ts.as_deref(), Some(parent_ts.as_str()));
    assert_eq!(posted[2].text.as_deref(), Some("a & b"));
    assert_eq!(posted[2].unfurl_links, Some(true));
    assert_eq!(posted[2].blocks, Some(json!([{"type": "divider"}])));
    assert_eq!(posted[3].unfurl_links, None);
    // Serializable (without `at`).
    let s = serde_json::to_value(&posted[0]).unwrap();
    assert!(s.get("at").is_none());
    assert_eq!(s["ts"], parent_ts.as_str());
}

#[tokio::test]
async fn argument_errors() {
    let d = SlackDouble::start(SlackConfig {
        known_channels: Some(vec!["C1".into(), "U1".into()]),
        ..SlackConfig::default()
    })
    .await;
    let (_, _, v) = post_json(&d, Some(TOKEN), json!({"text": "hi"})).await;
    assert_eq!(v, json!({"ok": false, "error": "channel_not_found"}));
    let (_, _, v) = post_json(&d, Some(TOKEN), json!({"channel": "C2", "text": "hi"})).await;
    assert_eq!(v, json!({"ok": false, "error": "channel_not_found"}));
    let (_, _, v) = post_json(&d, Some(TOKEN), json!({"channel": "C1"})).await;
    assert_eq!(v, json!({"ok": false, "error": "no_text"}));
    let (_, _, v) = post_json(&d, Some(TOKEN), json!({"channel": "C1", "text": ""})).await;
    assert_eq!(v, json!({"ok": false, "error": "no_text"}));
    let (_, _, v) = post_json(
        &d,
        Some(TOKEN),
        json!({"channel": "C1", "text": "x".repeat(40_001)}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "msg_too_long"}));
    let (_, _, v) = post_json(
        &d,
        Some(TOKEN),
        json!({"channel": "C1", "blocks": [{"no": "type"}]}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "invalid_blocks"}));
    // Blocks alone are enough.
    let (_, _, v) = post_json(
        &d,
        Some(TOKEN),
        json!({"channel": "U1", "blocks": [{"type": "divider"}]}),
    )
    .await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["channel"], "D1");
    // Broken JSON.
    let v: Value = client()
        .post(format!("{}/chat.postMessage", d.api_url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json; charset=utf-8")
        .body("{not json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"ok": false, "error": "invalid_json"}));
    // Unknown method.
    let v: Value = client()
        .post(format!("{}/chat.nope", d.api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "unknown_method");
    assert_eq!(d.posted().len(), 1);
}

#[tokio::test]
async fn rate_limit_per_channel_with_retry_after() {
    let d = SlackDouble::start(SlackConfig {
        rate_limit: Some(RateLimit {
            per_second: 1.0,
            burst: 2,
            retry_after_secs: 7,
        }),
        ..SlackConfig::default()
    })
    .await;
    let msg = json!({"channel": "C1", "text": "hi"});
    for _ in 0..2 {
        let (s, _, v) = post_json(&d, Some(TOKEN), msg.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["ok"], true);
    }
    let (s, h, v) = post_json(&d, Some(TOKEN), msg.clone()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "7");
    assert_eq!(v, json!({"ok": false, "error": "ratelimited"}));
    // Another channel has its own bucket.
    let (s, _, _) = post_json(&d, Some(TOKEN), json!({"channel": "C2", "text": "hi"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d.posted().len(), 3, "the 429'd message is not recorded");
    let last = d.attempts().into_iter().rev().nth(1).unwrap();
    assert_eq!(
        (last.status, last.error.as_deref()),
        (429, Some("ratelimited"))
    );
    // The bucket refills at 1/s.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let (s, _, _) = post_json(&d, Some(TOKEN), msg).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn computed_retry_after() {
    let d = SlackDouble::start(SlackConfig {
        rate_limit: Some(RateLimit {
            per_second: 0.25,
            burst: 1,
            retry_after_secs: 0,
        }),
        ..SlackConfig::default()
    })
    .await;
    let msg = json!({"channel": "C1", "text": "hi"});
    assert_eq!(
        post_json(&d, Some(TOKEN), msg.clone()).await.0,
        StatusCode::OK
    );
    let (s, h, _) = post_json(&d, Some(TOKEN), msg).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "4");
}

#[tokio::test]
async fn faults() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let msg = json!({"channel": "C1", "text": "hi"});

    d.set_fault(Fault::Status(503));
    let (s, h, v) = post_json(&d, Some(TOKEN), msg.clone()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(v.is_string());
    // Other methods are not affected.
    let r = client()
        .post(format!("{}/auth.test", d.api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    d.set_fault(Fault::None);
    d.fail_next(2, Fault::Status(500));
    d.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: 3,
        },
    );
    d.fail_next(1, Fault::Error("channel_not_found".into()));
    assert_eq!(
        post_json(&d, Some(TOKEN), msg.clone()).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        post_json(&d, Some(TOKEN), msg.clone()).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let (s, h, v) = post_json(&d, Some(TOKEN), msg.clone()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "3");
    assert_eq!(v["error"], "ratelimited");
    let (s, _, v) = post_json(&d, Some(TOKEN), msg.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"ok": false, "error": "channel_not_found"}));
    let (s, _, v) = post_json(&d, Some(TOKEN), msg.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ok"], true);
    assert_eq!(d.posted().len(), 1);

    // fail_next on top of a standing fault: then back to the standing one.
    d.set_fault(Fault::Status(502));
    d.fail_next(1, Fault::None);
    assert_eq!(
        post_json(&d, Some(TOKEN), msg.clone()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post_json(&d, Some(TOKEN), msg).await.0,
        StatusCode::BAD_GATEWAY
    );
    let statuses: Vec<u16> = d
        .attempts()
        .iter()
        .filter(|a| a.method == "chat.postMessage")
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses, vec![503, 500, 500, 429, 200, 200, 200, 502]);
}

#[tokio::test]
async fn hang_makes_the_client_time_out() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    d.fail_next(1, Fault::Hang);
    let started = Instant::now();
    let err = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(format!("{}/chat.postMessage", d.api_url()))
        .bearer_auth(TOKEN)
        .json(&json!({"channel": "C1", "text": "hi"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let a = d.attempts();
    assert_eq!((a[0].status, a[0].error.as_deref()), (0, Some("hang")));
    assert!(d.posted().is_empty());
    // The next call is served normally.
    let (s, _, _) = post_json(&d, Some(TOKEN), json!({"channel": "C1", "text": "hi"})).await;
    assert_eq!(s, StatusCode::OK);

    // A hanging request in flight when the double stops sees its connection
    // closed instead of waiting forever.
    d.set_fault(Fault::Hang);
    let url = format!("{}/chat.postMessage", d.api_url());
    let pending = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth(TOKEN)
            .json(&json!({"channel": "C1", "text": "hi"}))
            .send()
            .await
    });
    while d.attempts().len() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    d.stop().await;
    let res = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    let err = res.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn shutdown_refuses_connections_and_restart_uses_the_same_port() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let url = d.api_url();
    let c = client();
    let send = |c: reqwest::Client, url: String| async move {
        c.post(format!("{url}/chat.postMessage"))
            .bearer_auth(TOKEN)
            .json(&json!({"channel": "C1", "text": "hi"}))
            .send()
            .await
    };
    // A pooled keep-alive connection exists before the stop.
    assert!(
        send(c.clone(), url.clone())
            .await
            .unwrap()
            .status()
            .is_success()
    );

    let handle = d.clone();
    d.shutdown().await;
    let err = send(c.clone(), url.clone()).await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let err = send(client(), url.clone()).await.unwrap_err();
    assert!(
        err.is_connect(),
        "fresh connection must be refused: {err:?}"
    );

    handle.restart().await.unwrap();
    assert_eq!(handle.api_url(), url);
    assert!(
        send(client(), url.clone())
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert_eq!(handle.posted().len(), 2, "records survive a restart");
    handle.restart().await.unwrap(); // no-op while running
}

#[tokio::test]
async fn ts_is_unique_and_increasing() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let url = d.api_url();
        tasks.push(tokio::spawn(async move {
            let v: Value = client()
                .post(format!("{url}/chat.postMessage"))
                .bearer_auth(TOKEN)
                .json(&json!({"channel": format!("C{}", i % 3), "text": "hi"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["ts"].as_str().unwrap().to_owned()
        }));
    }
    let mut returned = Vec::new();
    for t in tasks {
        returned.push(t.await.unwrap());
    }
    let posted: Vec<String> = d.posted().into_iter().map(|p| p.ts).collect();
    assert_eq!(posted.len(), 50);
    for w in posted.windows(2) {
        assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        let (a, b): (f64, f64) = (w[0].parse().unwrap(), w[1].parse().unwrap());
        assert!(a <= b);
    }
    returned.sort();
    let mut sorted = posted.clone();
    sorted.sort();
    assert_eq!(returned, sorted);
    let re_ok = posted.iter().all(|t| {
        let (s, m) = t.split_once('.').unwrap();
        s.len() == 10 && m.len() == 6 && t.chars().all(|c| c.is_ascii_digit() || c == '.')
    });
    assert!(re_ok, "{posted:?}");
}

#[tokio::test]
async fn users_list_paginates() {
    let users: Vec<SlackUser> = (0..5)
        .map(|i| SlackUser {
            id: format!("U{i}"),
            name: format!("user{i}"),
            display_name: format!("User {i}"),
            deleted: i == 4,
        })
        .collect();
    let d = SlackDouble::start(SlackConfig {
        users,
        ..SlackConfig::default()
    })
    .await;
    let mut cursor = String::new();
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        // Alternate GET with query and POST with a form, as clients do.
        let req = if pages % 2 == 0 {
            client().get(format!(
                "{}/users.list?limit=2&cursor={cursor}",
                d.api_url()
            ))
        } else {
            client()
                .post(format!("{}/users.list", d.api_url()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("limit=2&cursor={cursor}"))
        };
        let v: Value = req
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["ok"], true, "{v}");
        pages += 1;
        for m in v["members"].as_array().unwrap() {
            ids.push(m["id"].as_str().unwrap().to_owned());
            assert_eq!(m["is_bot"], false);
            assert!(
                m["profile"]["display_name"]
                    .as_str()
                    .unwrap()
                    .starts_with("User ")
            );
            assert!(m["profile"]["real_name"].is_string());
            assert_eq!(m["deleted"], m["id"] == "U4");
        }
        cursor = v["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        if cursor.is_empty() {
            break;
        }
        // Cursors are opaque and must be URL-encoded by the client.
        cursor = cursor.replace('=', "%3D");
    }
    assert_eq!(pages, 3);
    assert_eq!(ids, vec!["U0", "U1", "U2", "U3", "U4"]);

    // No limit: everything in one page.
    let v: Value = client()
        .get(format!("{}/users.list", d.api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["members"].as_array().unwrap().len(), 5);
    assert_eq!(v["response_metadata"]["next_cursor"], "");

    let v: Value = client()
        .get(format!("{}/users.list?cursor=garbage", d.api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"ok": false, "error": "invalid_cursor"}));
    let v: Value = client()
        .get(format!("{}/users.list", d.api_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"ok": false, "error": "not_authed"}));
}

#[tokio::test]
async fn wait_for_posted_returns_early_or_at_timeout() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let url = d.api_url();
    tokio::spawn(async move {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client()
                .post(format!("{url}/chat.postMessage"))
                .bearer_auth(TOKEN)
                .json(&json!({"channel": "C1", "text": "hi"}))
                .send()
                .await
                .unwrap();
        }
    });
    let started = Instant::now();
    let got = d.wait_for_posted(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(5));

    let started = Instant::now();
    let got = d.wait_for_posted(3, Duration::from_millis(200)).await;
    assert_eq!(got.len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(200));

    d.reset();
    assert!(d.posted().is_empty());
    assert!(d.attempts().is_empty());
}
