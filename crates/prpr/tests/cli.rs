//! The other commands: `config check`, `config example`, `replay`, and the
//! server on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{Launch, Server, fixture};
use testkit::slack::{SlackConfig, SlackDouble};

fn prpr(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(support::bin())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run prpr")
}

#[test]
fn config_check_lists_every_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prpr.toml");
    std::fs::write(&cfg, "members_file = \"MEMBERS.md\"\n[notify]\ndelivery = \"channel\"\n[members]\nalice = \"not-an-id\"\n").unwrap();
    std::fs::write(
        dir.path().join("MEMBERS.md"),
        "* @bob: U0BOB00001\n* @carol\n",
    )
    .unwrap();
    let out = prpr(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        &[("PORT", "x")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = cfg.display().to_string();
    let md = dir.path().join("MEMBERS.md").display().to_string();
    let expected = [
        format!("{path}:5: error: [members] alice = \"not-an-id\": expected a Slack user ID like \"U012AB3CD\""),
        "environment: error: PORT=\"x\" is not a port number (0-65535)".to_string(),
        format!("{md}:2: warning: expected `* @github_login: @slack_name_or_ID`, got `@carol`; line skipped"),
        "config: error: notify.delivery = \"channel\"/\"both\" needs notify.channel (or PRPR_CHANNEL)".to_string(),
    ];
    for line in &expected {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
}

#[test]
fn config_example_passes_its_own_check() {
    let out = prpr(&["config", "example"], &[]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prpr.toml");
    std::fs::write(&cfg, &out.stdout).unwrap();
    std::fs::write(dir.path().join("MEMBERS.md"), " * @alice: U0ALICE001\n").unwrap();
    let check = prpr(&["config", "check", "--config", cfg.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("ok: 2 member(s), delivery Dm, store sqlite, publisher console"),
        "{stdout}"
    );
}

#[test]
fn replay_prints_what_would_be_sent() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prpr.toml");
    std::fs::write(&cfg, support::BASE_CONFIG).unwrap();
    let payload = dir.path().join("p.json");
    std::fs::write(
        &payload,
        fixture("pull_request.review_requested.user").to_string(),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let env = [("DATABASE_URL", db.as_str()), ("LOG_FORMAT", "json")];
    let args = [
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--event",
        "pull_request",
        "--delivery-id",
        "r-1",
        payload.to_str().unwrap(),
    ];
    let out = prpr(&args, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[U0OCTOCAT1] :eyes: @Codertocat requested your review on <https://github.com/Codertocat/Hello-World/pull/2|Codertocat/Hello-World#2>"),
        "{stdout}"
    );
    // Same delivery ID again: nothing sent twice.
    let again = prpr(&args, &env);
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("delivery r-1 was already processed; nothing sent")
    );
    assert!(!String::from_utf8_lossy(&again.stdout).contains("[U0OCTOCAT1]"));

    std::fs::write(&payload, "{not json").unwrap();
    let bad = prpr(
        &[
            "replay",
            "--event",
            "pull_request",
            payload.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("body is not valid JSON"));
}

#[tokio::test]
async fn the_server_on_postgresql() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    let url = db.url.clone();
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let s = Server::start(
        Some(&slack),
        Launch {
            database_url: Some(url),
            ..Launch::default()
        },
    )
    .await;
    assert_eq!(s.get("/readyz").await, (200, json!({"status": "ready"})));
    let payload = fixture("pull_request.review_requested.user");
    assert_eq!(
        s.deliver("pull_request", "pg-1", &payload).await.1,
        json!({"status": "queued", "notifications": 1})
    );
    assert_eq!(
        s.deliver("pull_request", "pg-1", &payload).await.1,
        json!({"status": "duplicate"})
    );
    let posted = slack.wait_for_posted(1, Duration::from_secs(10)).await;
    let outbox = s.drained(Duration::from_secs(10)).await;
    assert_eq!((outbox.sent, outbox.dead), (1, 0), "{outbox:?}");
    assert_eq!(slack.posted().len(), 1, "{}", s.log().join("\n"));
    assert_eq!(posted[0].channel, "U0OCTOCAT1");
    assert!(s.log_events("prpr listening")[0]["store"] == "postgres");
}

#[tokio::test]
async fn webhook_command_creates_then_updates_the_hook() {
    let gh = testkit::github::GitHubDouble::start("ghp_test").await;
    // 120 unrelated hooks first: the command must page through them.
    for i in 0..120 {
        gh.add_hook("acme/app", &format!("https://other.example/{i}"), &["push"]);
    }
    let api = gh.api_url();
    let env = [
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_TOKEN", "ghp_test"),
        ("GITHUB_WEBHOOK_SECRET", "s3cret"),
    ];
    let run = |env: &[(&str, &str)]| {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                prpr(
                    &["webhook", "acme/app", "https://prpr.example.com/webhook"],
                    &env,
                )
            })
            .await
            .unwrap()
        }
    };
    let out = run(&env).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("created webhook 121 on acme/app → https://prpr.example.com/webhook")
    );
    let hook = gh
        .hooks("acme/app")
        .into_iter()
        .find(|h| h.url == "https://prpr.example.com/webhook")
        .unwrap();
    assert_eq!(hook.content_type, "json");
    assert_eq!(hook.secret.as_deref(), Some("s3cret"));
    assert_eq!(
        hook.events,
        vec![
            "pull_request",
            "pull_request_review",
            "pull_request_review_comment",
            "issue_comment"
        ]
    );

    // Again, with a new secret: the same hook is updated, not duplicated.
    let env2 = [
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_TOKEN", "ghp_test"),
        ("GITHUB_WEBHOOK_SECRET", "rotated"),
    ];
    let out = run(&env2).await;
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("updated webhook 121 on acme/app"));
    let ours: Vec<_> = gh
        .hooks("acme/app")
        .into_iter()
        .filter(|h| h.url == "https://prpr.example.com/webhook")
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].secret.as_deref(), Some("rotated"));

    // A bad token, an unknown repository: precise errors, exit 1.
    let bad = [
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_TOKEN", "wrong"),
        ("GITHUB_WEBHOOK_SECRET", "s"),
    ];
    let out = run(&bad).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("GitHub rejected the token (401 Bad credentials)")
    );
    let missing = tokio::task::spawn_blocking(move || {
        prpr(
            &["webhook", "acme/app", "https://x/webhook"],
            &[("GITHUB_TOKEN", "t")],
        )
    })
    .await
    .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("needs GITHUB_TOKEN"));
    // The token never appears in what the command prints.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong"));
}
