//! The `slack-double` binary, as the benchmarks run it.

// A test crate: a panic is a test failure with a backtrace (as clippy.toml
// allows inside #[test] fns; this extends it to the helpers here).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[tokio::test]
async fn binary_serves_reports_and_exits_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slack-double"))
        .args([
            "--port",
            "0",
            "--token",
            "xoxb-bench",
            "--rate-limit-per-sec",
            "1",
            "--burst",
            "2",
            "--retry-after",
            "5",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let api = line.trim().strip_prefix("listening ").unwrap().to_owned();
    assert!(
        api.starts_with("http://127.0.0.1:") && api.ends_with("/api"),
        "{line}"
    );
    let base = api.trim_end_matches("/api").to_owned();
    let c = reqwest::Client::new();

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = c
            .post(format!("{api}/chat.postMessage"))
            .bearer_auth("xoxb-bench")
            .json(&json!({"channel": "C1", "text": "hi", "unfurl_links": false}))
            .send()
            .await
            .unwrap();
        statuses.push((
            r.status().as_u16(),
            r.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
        ));
    }
    assert_eq!(
        statuses,
        vec![(200, None), (200, None), (429, Some("5".to_owned()))]
    );

    let posted: Value = c
        .get(format!("{base}/_double/posted"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let posted = posted.as_array().unwrap();
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[0]["channel"], "C1");
    assert_eq!(posted[0]["text"], "hi");
    assert_eq!(posted[0]["unfurl_links"], false);
    assert!(posted[0]["ts"].is_string());
    assert!(posted[0]["received_ms"].as_f64().unwrap() >= 0.0);
    assert!(posted[0].get("at").is_none());

    let attempts: Value = c
        .get(format!("{base}/_double/attempts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(attempts.as_array().unwrap().len(), 3);

    let r = c
        .post(format!("{base}/_double/reset"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let posted: Value = c
        .get(format!("{base}/_double/posted"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted, json!([]));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slack-double did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
