//! Catch-up against the GitHub double: the deliveries GitHub failed to make
//! are redelivered — the double's attempts really reach a running prpr, which
//! posts to the Slack double — exactly those, within the rate limit, with a
//! token or as a GitHub App whose installation tokens expire.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::time::Duration;

use serde_json::json;
use testkit::github::{APP_PRIVATE_KEY_PEM, DeliveryRecord, GitHubDouble, GitHubFault, HookRef};
use testkit::slack::{SlackConfig, SlackDouble};

use crate::support::{
    BASE_CONFIG, HOOK_EVENTS, Launch, SECRET, Server, eventually, free_port, request,
};

const GH_TOKEN: &str = "ghp_catchup_test";

fn dms(slack: &SlackDouble, user: &str) -> usize {
    slack.posted().iter().filter(|p| p.channel == user).count()
}

/// `prpr catch-up ARGS` on `server`'s config and database, with a token.
/// Async: the doubles run on this test's runtime, which must keep serving
/// while the command runs.
async fn catch_up_cli(
    server: &Server,
    gh: &GitHubDouble,
    webhook_url: &str,
    args: &[&str],
) -> (bool, String, String) {
    let out = tokio::process::Command::new(crate::support::bin())
        .arg("catch-up")
        .args(args)
        .arg("--config")
        .arg(server.dir.path().join("prpr.toml"))
        .env_clear()
        .env("DATABASE_URL", &server.database_url)
        .env("GITHUB_TOKEN", GH_TOKEN)
        .env("GITHUB_API_URL", gh.api_url())
        .env("PRPR_WEBHOOK_URL", webhook_url)
        .env("LOG_FORMAT", "json")
        .output()
        .await
        .expect("run prpr catch-up");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn redelivers_exactly_the_missed_failed_deliveries() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let gh = GitHubDouble::start(GH_TOKEN).await;
    let config = format!("{BASE_CONFIG}\n[github]\nrepos = [\"acme/app\"]\n");
    let server = Server::start(Some(&slack), Launch::with_config(config)).await;
    // Without credentials catch-up is off, said once, and prpr serves.
    let off = server
        .logged("catch-up off", 1, Duration::from_secs(5))
        .await;
    assert_eq!(off.len(), 1);
    let url = format!("{}/webhook", server.base);
    // Another hook on the repository, not prpr's: never looked at.
    let other = gh.add_hook_with_secret("acme/app", "https://ci.example/hook", "x", &HOOK_EVENTS);
    let id = gh.add_hook_with_secret("acme/app", &url, SECRET, &HOOK_EVENTS);
    let hook = HookRef::Repo {
        repo: "acme/app".into(),
        id,
    };
    let min = |m: u64| Duration::from_secs(60 * m);

    let missed = gh.add_failed_delivery(&hook, "pull_request", &request("octocat", 1), min(10));
    // Failed for GitHub, but prpr stored it (it timed out after storing).
    let stored = gh.add_failed_delivery(&hook, "pull_request", &request("Codertocat", 2), min(20));
    let (status, _) = server
        .deliver("pull_request", &stored.guid, &request("Codertocat", 2))
        .await;
    assert_eq!(status, 202);
    // Delivered fine; an event prpr does not handle; older than --since;
    // already redelivered successfully (by hand) although prpr lost it since.
    let ok = gh.add_delivery(&hook, "pull_request", &request("hubot", 3), 200, min(30));
    let ping = gh.add_failed_delivery(
        &hook,
        "ping",
        &json!({"zen": "Keep it logically awesome."}),
        min(40),
    );
    let old = gh.add_failed_delivery(&hook, "pull_request", &request("hubot", 4), min(300));
    let settled = gh.add_failed_delivery(&hook, "pull_request", &request("hubot", 5), min(50));
    gh.add_redelivery(&settled, 200, min(45));
    let elsewhere = gh.add_failed_delivery(
        &HookRef::Repo {
            repo: "acme/app".into(),
            id: other,
        },
        "pull_request",
        &request("hubot", 6),
        min(5),
    );
    let posted_before = slack.posted().len();
    // The first request meets a secondary limit: waited out, then done.
    gh.set_fault_for(
        GitHubFault::SecondaryForbidden {
            retry_after_secs: 1,
        },
        1,
    );

    let (ok_exit, stdout, stderr) = catch_up_cli(&server, &gh, &url, &["--since", "2h"]).await;
    assert!(ok_exit, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{}  pull_request.review_requested", missed.guid)),
        "{stdout}"
    );
    assert!(stdout.contains("redelivery requested"), "{stdout}");
    assert!(stdout.contains("missing 1, redelivered 1"), "{stdout}");
    for not in [&stored, &ok, &ping, &old, &settled, &elsewhere] {
        assert!(
            !stdout.contains(&not.guid),
            "{} listed:\n{stdout}",
            not.event
        );
    }
    assert_eq!(gh.redelivery_requests(), vec![missed.id]);
    let requests = gh.requests();
    assert_eq!(requests[0].2, 403, "{requests:?}");
    assert_eq!(requests[1].2, 200, "{requests:?}");

    // The attempt reached prpr (signed with the hook's secret), which posted it.
    assert!(
        eventually(Duration::from_secs(15), || dms(&slack, "U0OCTOCAT1") == 1).await,
        "no DM for the redelivered review request: {:#?}\n{}",
        slack.posted(),
        server.log().join("\n")
    );
    let redelivery: Vec<DeliveryRecord> = gh
        .deliveries()
        .into_iter()
        .filter(|d| d.guid == missed.guid && d.redelivery)
        .collect();
    assert_eq!(redelivery.len(), 1);
    assert_eq!(redelivery[0].status_code, 202);
    assert!(
        server
            .store()
            .await
            .has_delivery(&missed.guid)
            .await
            .unwrap()
    );
    server.drained(Duration::from_secs(15)).await;
    assert!(slack.posted().len() > posted_before);

    // A second pass finds nothing missing: the redelivery is stored now.
    let (ok_exit, stdout, stderr) = catch_up_cli(&server, &gh, &url, &["--since", "2h"]).await;
    assert!(ok_exit, "{stdout}\n{stderr}");
    assert!(stdout.contains("missing 0, redelivered 0"), "{stdout}");
    assert_eq!(gh.redelivery_requests().len(), 1);
    assert_eq!(dms(&slack, "U0OCTOCAT1"), 1);

    // --dry-run lists without asking.
    let lost = gh.add_failed_delivery(&hook, "pull_request", &request("hubot", 7), min(1));
    let (_, stdout, _) = catch_up_cli(&server, &gh, &url, &["--since", "1h", "--dry-run"]).await;
    assert!(
        stdout.contains(&format!("{}  pull_request.review_requested", lost.guid)),
        "{stdout}"
    );
    assert!(stdout.contains("would redeliver (dry run)"), "{stdout}");
    assert_eq!(gh.redelivery_requests().len(), 1);
    // A --since beyond what the server keeps is a precise error: the double
    // is not api.github.com, so it is taken for a GitHub Enterprise Server,
    // which keeps deliveries 7 days (GitHub.com 3).
    let (ok_exit, _, stderr) = catch_up_cli(&server, &gh, &url, &["--since", "8d"]).await;
    assert!(!ok_exit);
    assert!(
        stderr.contains("--since 8d") && stderr.contains("keeps deliveries 7 days"),
        "{stderr}"
    );
    let (ok_exit, stdout, stderr) =
        catch_up_cli(&server, &gh, &url, &["--since", "5d", "--dry-run"]).await;
    assert!(ok_exit, "{stdout}\n{stderr}");
    assert!(stdout.contains(&old.guid), "5 h old, within 5d:\n{stdout}");
}

#[tokio::test]
async fn a_pass_stops_early_when_the_rate_limit_is_low() {
    let gh = GitHubDouble::start(GH_TOKEN).await;
    let config =
        format!("{BASE_CONFIG}\n[github]\nrepos = [\"acme/app\"]\ncatch_up_rate_floor = 1\n");
    let server = Server::start(None, Launch::with_config(config)).await;
    let url = format!("{}/webhook", server.base);
    let id = gh.add_hook_with_secret("acme/app", &url, SECRET, &HOOK_EVENTS);
    let hook = HookRef::Repo {
        repo: "acme/app".into(),
        id,
    };
    for n in 0..5 {
        gh.add_failed_delivery(
            &hook,
            "pull_request",
            &request("octocat", 10 + n),
            Duration::from_secs(60),
        );
    }
    // 4 requests: the hooks, the deliveries, one redelivery; then 1 left = the floor.
    gh.set_rate_limit(4, Duration::from_secs(600));
    let (ok_exit, stdout, stderr) = catch_up_cli(&server, &gh, &url, &["--since", "1h"]).await;
    assert!(
        !ok_exit,
        "an incomplete pass exits 1:\n{stdout}\n{stderr}\n{:?}",
        gh.requests()
    );
    assert!(
        stdout.contains(
            "missing 5, redelivered 1, rate remaining 1; stopped early: GitHub rate limit low"
        ),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("not attempted (stopped early)").count(),
        4,
        "{stdout}"
    );
    assert_eq!(gh.redelivery_requests().len(), 1);
    // The budget was never overrun: no 403.
    assert!(
        gh.requests().iter().all(|r| r.2 != 403),
        "{:?}",
        gh.requests()
    );
    // Exhausted outright (another client spent it): the pass ends at once.
    gh.set_rate_limit(0, Duration::from_secs(600));
    let (ok_exit, stdout, _) = catch_up_cli(&server, &gh, &url, &["--since", "1h"]).await;
    assert!(!ok_exit);
    assert!(
        stdout.contains("stopped early: GitHub rate limit exhausted"),
        "{stdout}"
    );
    assert_eq!(gh.redelivery_requests().len(), 1);
}

#[tokio::test]
async fn as_a_github_app_serve_catches_up_and_refreshes_expired_tokens() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let gh = GitHubDouble::start(GH_TOKEN).await;
    gh.enable_app(4242);
    gh.add_installation("acme");
    // Tokens cached until 5 minutes before expiry: a 301 s token is reused
    // for one second, then replaced.
    gh.set_token_lifetime(Duration::from_secs(301));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/webhook");
    gh.set_app_hook(&url, SECRET, &HOOK_EVENTS);
    let repo_hook = gh.add_hook_with_secret("acme/app", &url, SECRET, &HOOK_EVENTS);
    let missed_app = gh.add_failed_delivery(
        &HookRef::App,
        "pull_request",
        &request("octocat", 21),
        Duration::from_secs(600),
    );
    let missed_repo = gh.add_failed_delivery(
        &HookRef::Repo {
            repo: "acme/app".into(),
            id: repo_hook,
        },
        "pull_request",
        &request("hubot", 22),
        Duration::from_secs(600),
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("app.pem");
    std::fs::write(&key, APP_PRIVATE_KEY_PEM).unwrap();
    let config =
        format!("{BASE_CONFIG}\n[github]\nrepos = [\"acme/app\"]\ncatch_up_interval = \"1s\"\n");
    let launch = Launch {
        env: vec![
            ("PORT".into(), port.to_string()),
            ("GITHUB_API_URL".into(), gh.api_url()),
            ("GITHUB_APP_ID".into(), "4242".into()),
            (
                "GITHUB_APP_PRIVATE_KEY_FILE".into(),
                key.display().to_string(),
            ),
            ("PRPR_WEBHOOK_URL".into(), url.clone()),
        ],
        ..Launch::with_config(config)
    };
    let server = Server::start(Some(&slack), launch).await;
    assert!(
        eventually(Duration::from_secs(20), || dms(&slack, "U0OCTOCAT1") == 1
            && dms(&slack, "U0HUBOT001") == 1)
        .await,
        "both missed deliveries reach Slack: {:#?}\n{}",
        slack.posted(),
        server.log().join("\n")
    );
    let mut asked = gh.redelivery_requests();
    asked.sort_unstable();
    assert_eq!(asked, vec![missed_app.id, missed_repo.id]);
    // Later passes: new tokens as the old ones near expiry, never a 401.
    assert!(
        eventually(Duration::from_secs(20), || gh.tokens_issued() >= 3).await,
        "tokens issued: {}\n{}",
        gh.tokens_issued(),
        server.log().join("\n")
    );
    let passes = server
        .logged("catch-up pass", 3, Duration::from_secs(10))
        .await;
    assert!(
        passes.iter().all(|p| p["rate_remaining"].is_u64()),
        "{passes:?}"
    );
    assert!(
        gh.requests().iter().all(|r| r.2 != 401),
        "{:?}",
        gh.requests()
    );
    assert_eq!(
        gh.redelivery_requests().len(),
        2,
        "nothing redelivered twice"
    );
    // A token GitHub no longer takes (expired early, revoked): the 401 makes
    // prpr drop it and get a new one, and the pass goes on.
    gh.set_token_lifetime(Duration::from_secs(3600));
    let issued = gh.tokens_issued();
    assert!(eventually(Duration::from_secs(10), || gh.tokens_issued() > issued).await);
    let issued = gh.tokens_issued();
    gh.expire_tokens();
    let passes_before = server.log_events("catch-up pass").len();
    assert!(
        eventually(Duration::from_secs(10), || gh.tokens_issued() > issued
            && server.log_events("catch-up pass").len() > passes_before + 1)
        .await
    );
    let rejected = gh.requests().iter().filter(|r| r.2 == 401).count();
    assert!(rejected >= 1, "{:?}", gh.requests());
    let last = server.log_events("catch-up pass").pop().unwrap();
    assert_eq!(last["hooks"], 2, "{last}");
    // The secret stays secret.
    let key_line = APP_PRIVATE_KEY_PEM.lines().nth(1).unwrap();
    assert!(!server.log().join("\n").contains(key_line));
    let _ = dir;
}

/// One pass at a time across tasks: the lease is exclusive until released
/// or expired, on both engines.
#[tokio::test]
async fn the_catch_up_lease_is_exclusive_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!(
        "sqlite://{}",
        dir.path().join("lease.db").display()
    )];
    let pg = crate::support::postgres_db().await;
    if let Some(pg) = &pg {
        urls.push(pg.url.clone());
    }
    for url in urls {
        let a = prpr::store::Store::connect(&url).await.unwrap();
        let b = prpr::store::Store::connect(&url).await.unwrap();
        assert_eq!(a.catch_up_lease("a", 1_000, 61_000).await.unwrap(), Some(0));
        assert_eq!(
            b.catch_up_lease("b", 2_000, 62_000).await.unwrap(),
            None,
            "{url}"
        );
        a.catch_up_release("a", Some(1_000)).await.unwrap();
        assert_eq!(
            b.catch_up_lease("b", 3_000, 63_000).await.unwrap(),
            Some(1_000)
        );
        // b dies holding it: once expired, a takes over; b's late release is void.
        assert_eq!(
            a.catch_up_lease("a", 63_001, 123_001).await.unwrap(),
            Some(1_000)
        );
        b.catch_up_release("b", Some(99_999)).await.unwrap();
        assert_eq!(b.catch_up_lease("b", 64_000, 124_000).await.unwrap(), None);
        a.catch_up_release("a", None).await.unwrap();
        assert_eq!(
            b.catch_up_lease("b", 65_000, 125_000).await.unwrap(),
            Some(1_000)
        );
    }
}
