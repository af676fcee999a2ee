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

    // A DM to a user ID answers with the D… channel.
    let (_, _, v) = post_json(&d, Some(TOKEN), json!({"channel": "U0ALICE", "text": "dm"})).await;
    assert_eq!(v["channel"], "D0ALICE");
    // A threaded reply (its root must be in the same channel).
    let (_, _, v) = post_json(
        &d,
        Some(TOKEN),
        json!({"channel": "C0CHAN", "text": "reply", "thread_ts": parent_ts}),
    )
    .await;
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
    assert_eq!(posted.len(), 5);
    assert_eq!(posted[0].channel, "C0CHAN");
    assert_eq!(posted[0].text.as_deref(), Some("hi"));
    assert_eq!(posted[0].blocks.as_ref(), Some(&blocks));
    assert_eq!(posted[0].unfurl_links, Some(false));
    assert_eq!(posted[0].unfurl_media, Some(false));
    assert_eq!(posted[0].ts, parent_ts);
    assert_eq!(posted[1].channel, "U0ALICE");
    assert_eq!(posted[1].thread_ts, None);
    assert_eq!(posted[2].thread_ts.as_deref(), Some(parent_ts.as_str()));
    assert!(!posted[2].reply_broadcast);
    assert_eq!(posted[3].text.as_deref(), Some("a & b"));
    assert_eq!(posted[3].unfurl_links, Some(true));
    assert_eq!(posted[3].blocks, Some(json!([{"type": "divider"}])));
    assert_eq!(posted[4].unfurl_links, None);
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

/// Calls `method` with a JSON body and the right token.
async fn call(
    d: &SlackDouble,
    method: &str,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = client()
        .post(format!("{}/{method}", d.api_url()))
        .header("content-type", "application/json; charset=utf-8")
        .bearer_auth(TOKEN)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, v)
}

/// Posts `text` to `channel` (in `thread`, if given) and returns its `ts`.
async fn post(d: &SlackDouble, channel: &str, text: &str, thread: Option<&str>) -> String {
    let mut body = json!({"channel": channel, "text": text});
    if let Some(t) = thread {
        body["thread_ts"] = json!(t);
    }
    let (_, _, v) = call(d, "chat.postMessage", body).await;
    assert_eq!(v["ok"], true, "{v}");
    v["ts"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn thread_replies_need_a_live_top_level_root_in_the_same_channel() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let root = post(&d, "C1", "root", None).await;
    let other = post(&d, "C2", "elsewhere", None).await;

    let (s, _, v) = call(
        &d,
        "chat.postMessage",
        json!({"channel": "C1", "text": "r1", "thread_ts": root}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ok"], true);
    assert_eq!(v["message"]["thread_ts"], json!(root));
    assert!(v["message"].get("subtype").is_none());
    let r1 = v["ts"].as_str().unwrap().to_owned();

    let (_, _, v) = call(
        &d,
        "chat.postMessage",
        json!({"channel": "C1", "text": "r2", "thread_ts": root, "reply_broadcast": true}),
    )
    .await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["message"]["subtype"], "thread_broadcast");

    // Unknown ts, a root in another channel, a reply as root: not found.
    for bad in ["1.000001".to_owned(), other, r1.clone()] {
        let (_, _, v) = call(
            &d,
            "chat.postMessage",
            json!({"channel": "C1", "text": "x", "thread_ts": bad}),
        )
        .await;
        assert_eq!(
            v,
            json!({"ok": false, "error": "thread_not_found"}),
            "{bad}"
        );
    }
    let failed: Vec<_> = d
        .attempts()
        .into_iter()
        .filter(|a| a.error.as_deref() == Some("thread_not_found"))
        .collect();
    assert_eq!(failed.len(), 3);

    let thread = d.thread("C1", &root);
    let texts: Vec<_> = thread.iter().map(|p| p.text.clone().unwrap()).collect();
    assert_eq!(texts, ["r1", "r2"]);
    assert!(!thread[0].reply_broadcast);
    assert!(thread[1].reply_broadcast);
    assert_eq!(thread[0].thread_ts.as_deref(), Some(root.as_str()));
    let top: Vec<_> = d.top_level("C1").into_iter().map(|p| p.ts).collect();
    assert_eq!(top, std::slice::from_ref(&root));
    assert!(d.thread("C2", &root).is_empty());

    // Form-encoded reply_broadcast is understood too.
    let resp = client()
        .post(format!("{}/chat.postMessage", d.api_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={TOKEN}&channel=C1&text=r3&thread_ts={root}&reply_broadcast=true"
        ))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["ok"], true);
    assert!(d.thread("C1", &root)[2].reply_broadcast);
}

#[tokio::test]
async fn chat_update_edits_in_place_and_keeps_a_history() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "v1"}}]);
    let (_, _, v) = call(
        &d,
        "chat.postMessage",
        json!({"channel": "C1", "text": "v1", "blocks": blocks}),
    )
    .await;
    let ts = v["ts"].as_str().unwrap().to_owned();

    let blocks2 = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "v2"}}]);
    let (s, _, v) = call(
        &d,
        "chat.update",
        json!({"channel": "C1", "ts": ts, "text": "v2", "blocks": blocks2}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["channel"], "C1");
    assert_eq!(v["ts"], json!(ts));
    assert_eq!(v["text"], "v2");
    assert_eq!(v["message"]["blocks"], blocks2);

    // Text only: blocks kept. Blocks as a string (form style) work too.
    let (_, _, v) = call(
        &d,
        "chat.update",
        json!({"channel": "C1", "ts": ts, "text": "v3"}),
    )
    .await;
    assert_eq!(v["ok"], true);
    let posted = d.posted();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].text.as_deref(), Some("v3"));
    assert_eq!(posted[0].blocks.as_ref(), Some(&blocks2));
    assert_eq!(posted[0].edited, 2);

    // `blocks: []` removes them.
    let (_, _, v) = call(
        &d,
        "chat.update",
        json!({"channel": "C1", "ts": ts, "text": "v4", "blocks": "[]"}),
    )
    .await;
    assert_eq!(v["ok"], true);
    assert_eq!(d.posted()[0].blocks, None);

    let updates = d.updates();
    assert_eq!(updates.len(), 3);
    assert_eq!(updates[0].channel, "C1");
    assert_eq!(updates[0].ts, ts);
    assert_eq!(updates[0].text.as_deref(), Some("v2"));
    assert_eq!(updates[0].blocks.as_ref(), Some(&blocks2));
    assert_eq!(updates[1].blocks.as_ref(), Some(&blocks2));
    assert_eq!(updates[2].text.as_deref(), Some("v4"));
    assert!(updates[0].at <= updates[2].at);

    // Errors.
    let (_, _, v) = call(
        &d,
        "chat.update",
        json!({"channel": "C2", "ts": ts, "text": "x"}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "message_not_found"}));
    let (_, _, v) = call(
        &d,
        "chat.update",
        json!({"channel": "C1", "ts": "1.000001", "text": "x"}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "message_not_found"}));
    let (_, _, v) = call(&d, "chat.update", json!({"channel": "C1", "ts": ts})).await;
    assert_eq!(v, json!({"ok": false, "error": "no_text"}));
    let (_, _, v) = call(
        &d,
        "chat.update",
        json!({"channel": "C1", "ts": ts, "blocks": [{"x": 1}]}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "invalid_blocks"}));
    let resp = client()
        .post(format!("{}/chat.update", d.api_url()))
        .json(&json!({"channel": "C1", "ts": ts, "text": "x"}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v, json!({"ok": false, "error": "not_authed"}));
    assert_eq!(d.updates().len(), 3);
    assert_eq!(d.posted()[0].edited, 3);

    // The history is served for the binary.
    let out: Value = client()
        .get(format!("{}/_double/updates", d.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out.as_array().unwrap().len(), 3);
    assert_eq!(out[2]["text"], "v4");
}

#[tokio::test]
async fn a_dm_can_be_updated_by_its_d_channel() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let (_, _, v) = call(
        &d,
        "chat.postMessage",
        json!({"channel": "U123", "text": "hi"}),
    )
    .await;
    assert_eq!(v["channel"], "D123");
    let ts = v["ts"].as_str().unwrap().to_owned();
    let (_, _, v) = call(
        &d,
        "chat.update",
        json!({"channel": "D123", "ts": ts, "text": "hey"}),
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(d.posted()[0].text.as_deref(), Some("hey"));
    assert_eq!(d.top_level("D123").len(), 1);
}

#[tokio::test]
async fn chat_update_has_its_own_workspace_rate_limit() {
    let d = SlackDouble::start(SlackConfig {
        update_rate_limit: Some(RateLimit {
            per_second: 0.0,
            burst: 2,
            retry_after_secs: 7,
        }),
        ..SlackConfig::default()
    })
    .await;
    let a = post(&d, "C1", "a", None).await;
    let b = post(&d, "C2", "b", None).await;
    for (ch, ts) in [("C1", &a), ("C2", &b)] {
        let (s, _, v) = call(
            &d,
            "chat.update",
            json!({"channel": ch, "ts": ts, "text": "x"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // Across channels: the bucket is the workspace's.
    let (s, h, v) = call(
        &d,
        "chat.update",
        json!({"channel": "C1", "ts": a, "text": "y"}),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "7");
    assert_eq!(v["error"], "ratelimited");
    assert_eq!(d.posted()[0].text.as_deref(), Some("x"));
    // Posts are not limited by it.
    post(&d, "C1", "c", None).await;
    let last = d.attempts().into_iter().rev().nth(1).unwrap();
    assert_eq!((last.method.as_str(), last.status), ("chat.update", 429));
}

#[tokio::test]
async fn reactions_are_a_set_per_message() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let ts = post(&d, "C1", "root", None).await;
    let add = |name: &'static str| {
        call(
            &d,
            "reactions.add",
            json!({"channel": "C1", "timestamp": ts, "name": name}),
        )
    };
    let (s, _, v) = add("tada").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"ok": true}));
    assert_eq!(add(":white_check_mark:").await.2["ok"], true);
    assert_eq!(
        add("tada").await.2,
        json!({"ok": false, "error": "already_reacted"})
    );
    assert_eq!(d.reactions("C1", &ts), ["tada", "white_check_mark"]);

    let (_, _, v) = call(
        &d,
        "reactions.remove",
        json!({"channel": "C1", "timestamp": ts, "name": "tada"}),
    )
    .await;
    assert_eq!(v, json!({"ok": true}));
    let (_, _, v) = call(
        &d,
        "reactions.remove",
        json!({"channel": "C1", "timestamp": ts, "name": "tada"}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "no_reaction"}));
    assert_eq!(d.reactions("C1", &ts), ["white_check_mark"]);

    let (_, _, v) = call(
        &d,
        "reactions.add",
        json!({"channel": "C2", "timestamp": ts, "name": "x"}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "message_not_found"}));
    let (_, _, v) = call(
        &d,
        "reactions.add",
        json!({"channel": "C1", "timestamp": ts, "name": ""}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "invalid_name"}));
    let (_, _, v) = call(&d, "reactions.add", json!({"channel": "C1", "name": "x"})).await;
    assert_eq!(v, json!({"ok": false, "error": "no_item_specified"}));
    assert!(d.reactions("C1", "1.000001").is_empty());
    let methods: Vec<_> = d.attempts().iter().map(|a| a.method.clone()).collect();
    assert!(methods.iter().any(|m| m == "reactions.remove"));
}

#[tokio::test]
async fn a_message_deleted_in_slack_is_gone_for_update_reactions_and_replies() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let root = post(&d, "C1", "root", None).await;
    let reply = post(&d, "C1", "reply", Some(&root)).await;
    assert!(d.delete_message("C1", &root));
    assert!(!d.delete_message("C1", &root), "already deleted");
    assert!(!d.delete_message("C2", &reply), "wrong channel");

    let (_, _, v) = call(
        &d,
        "chat.update",
        json!({"channel": "C1", "ts": root, "text": "x"}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "message_not_found"}));
    for m in ["reactions.add", "reactions.remove"] {
        let (_, _, v) = call(
            &d,
            m,
            json!({"channel": "C1", "timestamp": root, "name": "tada"}),
        )
        .await;
        assert_eq!(v, json!({"ok": false, "error": "message_not_found"}), "{m}");
    }
    let (_, _, v) = call(
        &d,
        "chat.postMessage",
        json!({"channel": "C1", "text": "x", "thread_ts": root}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "thread_not_found"}));

    // Still recorded, marked deleted; its replies stay in the thread.
    let posted = d.posted();
    assert_eq!(posted.len(), 2);
    assert!(posted[0].deleted);
    assert!(d.top_level("C1").is_empty());
    assert_eq!(d.thread("C1", &root).len(), 1);

    // Over HTTP, for the binary.
    let v: Value = client()
        .post(format!("{}/_double/delete", d.base_url()))
        .json(&json!({"channel": "C1", "ts": reply}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"ok": true}));
    let v: Value = client()
        .post(format!("{}/_double/delete", d.base_url()))
        .json(&json!({"channel": "C1", "ts": reply}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"ok": false, "error": "message_not_found"}));
    assert!(d.thread("C1", &root).is_empty());
    let out: Value = client()
        .get(format!("{}/_double/posted", d.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out[1]["deleted"], true);
    assert_eq!(out[1]["thread_ts"], json!(root));
}

#[tokio::test]
async fn faults_per_method() {
    let d = SlackDouble::start(SlackConfig::default()).await;
    let ts = post(&d, "C1", "root", None).await;
    d.fail_next_method("chat.update", 1, Fault::Status(503));
    d.fail_next_method("chat.update", 1, Fault::Error("ratelimited".into()));
    d.fail_next_method(
        "reactions.add",
        1,
        Fault::RateLimited {
            retry_after_secs: 2,
        },
    );
    let upd = json!({"channel": "C1", "ts": ts, "text": "x"});

    // chat.postMessage is not affected.
    post(&d, "C1", "still fine", None).await;
    assert_eq!(
        call(&d, "chat.update", upd.clone()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(&d, "chat.update", upd.clone()).await.2,
        json!({"ok": false, "error": "ratelimited"})
    );
    assert_eq!(call(&d, "chat.update", upd.clone()).await.2["ok"], true);
    let (s, h, _) = call(
        &d,
        "reactions.add",
        json!({"channel": "C1", "timestamp": ts, "name": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "2");

    // Standing fault, then healed.
    d.set_method_fault("chat.update", Fault::Status(500));
    assert_eq!(
        call(&d, "chat.update", upd.clone()).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        call(&d, "chat.update", upd.clone()).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    post(&d, "C1", "posts still fine", None).await;
    d.set_method_fault("chat.update", Fault::None);
    assert_eq!(call(&d, "chat.update", upd.clone()).await.2["ok"], true);
    // The old API is chat.postMessage's.
    d.fail_next(1, Fault::Status(502));
    assert_eq!(call(&d, "chat.update", upd.clone()).await.2["ok"], true);
    assert_eq!(
        call(
            &d,
            "chat.postMessage",
            json!({"channel": "C1", "text": "x"})
        )
        .await
        .0,
        StatusCode::BAD_GATEWAY
    );
    let statuses: Vec<u16> = d
        .attempts()
        .iter()
        .filter(|a| a.method == "chat.update")
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses, vec![503, 200, 200, 500, 500, 200, 200]);
    assert_eq!(d.updates().len(), 3);

    // reset forgets everything.
    d.set_method_fault("chat.update", Fault::Status(500));
    d.reset();
    assert!(d.updates().is_empty());
    assert!(d.posted().is_empty());
    let ts = post(&d, "C1", "again", None).await;
    assert_eq!(
        call(
            &d,
            "chat.update",
            json!({"channel": "C1", "ts": ts, "text": "x"})
        )
        .await
        .2["ok"],
        true
    );
}
