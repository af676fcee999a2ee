//! The other commands: `config check`, `config example`, `replay`, and the
//! server on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use crate::support;

use std::process::Command;
use std::time::Duration;

use crate::support::{Launch, Server, fixture};
use serde_json::json;
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

/// An empty secret once turned signature checking off silently; now it is
/// reported by `config check` and `serve` refuses it without the flag.
#[test]
fn an_empty_webhook_secret_is_reported_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prpr.toml");
    std::fs::write(&cfg, "[github]\nwebhook_secret = \"\"\n").unwrap();
    let db = format!("sqlite://{}", dir.path().join("prpr.db").display());
    let path = cfg.to_str().unwrap();
    let check = prpr(&["config", "check", "--config", path], &[]);
    assert_eq!(check.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains(&format!("{path}:2: warning: github.webhook_secret is empty: treated as not set; signatures cannot be checked, so `prpr serve` refuses to start unless given --insecure-accept-unsigned")),
        "{stdout}"
    );
    for env in [
        &[("DATABASE_URL", db.as_str())][..],
        &[
            ("DATABASE_URL", db.as_str()),
            ("GITHUB_WEBHOOK_SECRET", "   "),
        ][..],
    ] {
        let serve = prpr(&["serve", "--config", path, "--port", "0"], env);
        assert_eq!(serve.status.code(), Some(1), "{serve:?}");
        let stderr = String::from_utf8_lossy(&serve.stderr);
        assert!(
            stderr.contains("no webhook secret configured: set GITHUB_WEBHOOK_SECRET"),
            "{stderr}"
        );
    }
    // Without a secret at all, `config check` still says signatures are off.
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "").unwrap();
    let check = prpr(
        &["config", "check", "--config", bare.to_str().unwrap()],
        &[],
    );
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("NO webhook secret: `prpr serve` refuses to start unless given --insecure-accept-unsigned"),
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

#[test]
fn config_check_reports_every_problem_of_a_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prpr.toml");
    // A misspelt key used to hide everything after it.
    std::fs::write(
        &cfg,
        "[notify]\ndelivry = \"channel\"\nchannel = \"C0GENERAL1\"\n\n[members]\nalice = \"alice\"\n\n[slack]\nburst = \"three\"\nbot_tokn = \"xoxb-1\"\n\n[databse]\nurl = \"sqlite://x.db\"\n",
    )
    .unwrap();
    let out = prpr(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        &[("PRPR_DELIVERY", "sometimes")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = cfg.display().to_string();
    let expected = [
        format!("{path}:2: error: unknown key `delivry` in [notify]; did you mean `delivery`?"),
        format!(
            "{path}:6: error: [members] alice = \"alice\": expected a Slack user ID like \"U012AB3CD\""
        ),
        format!("{path}:9: error: slack.burst: invalid type: string \"three\", expected u32"),
        format!("{path}:10: error: unknown key `bot_tokn` in [slack]; did you mean `bot_token`?"),
        format!("{path}:12: error: unknown key `databse`; did you mean `database`?"),
        "environment: error: PRPR_DELIVERY=\"sometimes\": expected dm, channel or both".to_string(),
    ];
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "{stdout}"
    );
}

#[test]
fn config_check_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prpr.toml");
    std::fs::write(
        &cfg,
        "[github]\nwebhook_secret = 31415926535\n[slack]\nbot_token = \"xoxp-user-s3cret\"\n",
    )
    .unwrap();
    let out = prpr(
        &["config", "check", "--config", cfg.to_str().unwrap()],
        &[
            ("DATABASE_URL", "mysql://prpr:hunter2@db/prpr"),
            ("GITHUB_TOKEN", "ghp_t0ken"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in ["31415926535", "s3cret", "hunter2", "ghp_t0ken"] {
        assert!(!all.contains(secret), "{secret} printed in:\n{all}");
    }
    // The problems are still there, named.
    assert!(
        all.contains("github.webhook_secret: must be a string"),
        "{all}"
    );
    assert!(
        all.contains("slack.bot_token does not start with xoxb-"),
        "{all}"
    );
    assert!(
        all.contains("environment: error: DATABASE_URL must start with sqlite:"),
        "{all}"
    );
}

#[test]
fn every_command_help_says_what_it_does_and_what_it_reads() {
    for (args, says) in [
        (&["serve"][..], "Listens on PORT"),
        (&["replay"], "waits up to 120 s"),
        (&["webhook"], "Needs GITHUB_TOKEN"),
        (&["outbox", "list"], "Pending and dead-lettered messages"),
        (&["outbox", "retry"], "Requeue a message"),
        (&["config", "check"], "Every problem is listed in one run"),
    ] {
        let mut argv = args.to_vec();
        argv.push("--help");
        let out = prpr(&argv, &[]);
        assert!(out.status.success(), "{argv:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.to_lowercase().contains(&says.to_lowercase()),
            "{argv:?}:\n{help}"
        );
        for var in [
            "PRPR_CONFIG",
            "DATABASE_URL",
            "SLACK_BOT_TOKEN",
            "GITHUB_WEBHOOK_SECRET or SECRET_TOKEN",
            "PRPR_CHANNEL or MENTION_COMMENT_ROOM",
        ] {
            assert!(
                help.contains(var),
                "{argv:?} does not mention {var}:\n{help}"
            );
        }
    }
}

#[tokio::test]
async fn replay_sends_through_slack_and_fails_when_a_message_is_dead_lettered() {
    // Only the channel exists: the DM to octocat gets channel_not_found.
    let slack = SlackDouble::start(SlackConfig {
        known_channels: Some(vec!["C0GENERAL1".into()]),
        ..SlackConfig::default()
    })
    .await;
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
    let api = slack.api_url();
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", db.as_str()),
        ("SLACK_API_URL", api.as_str()),
        ("SLACK_BOT_TOKEN", "xoxb-test-token"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let args: Vec<String> = [
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--event",
        "pull_request",
        payload.to_str().unwrap(),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let run = |env: Vec<(String, String)>, args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            prpr(&args, &env)
        })
    };
    let out = run(env.clone(), args.clone()).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(slack.posted().is_empty());
    let list = prpr(
        &["outbox", "list", "--config", cfg.to_str().unwrap()],
        &[("DATABASE_URL", db.as_str())],
    );
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("channel_not_found"),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );

    // Channel delivery reaches a channel that exists: sent, exit 0.
    // (A fresh store: the first run recorded this request as announced.)
    let db2 = format!("sqlite://{}", dir.path().join("r2.db").display());
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k != "DATABASE_URL")
        .collect();
    env.push(("DATABASE_URL".into(), db2));
    env.push(("PRPR_DELIVERY".into(), "channel".into()));
    let out = run(env, args).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The PR's thread: its card, then the request as a reply.
    let posted = slack.posted();
    assert_eq!(posted.len(), 2, "{posted:#?}");
    assert!(posted.iter().all(|p| p.channel == "C0GENERAL1"));
    assert_eq!(posted[1].thread_ts.as_deref(), Some(posted[0].ts.as_str()));
    let text = posted[1].text.as_deref().unwrap_or_default();
    assert!(text.contains("<@U0OCTOCAT1>"), "{text}");
}
