//! The reminders backfill against the GitHub double: the open-PR picture
//! after downtime (a PR opened and one merged while prpr was down) as the
//! digest shows it, on SQLite and PostgreSQL; an event newer than GitHub's
//! snapshot kept; pagination past 100 PRs; globs expanded through the
//! owner's repository list; a low rate limit ending a pass early; and
//! `prpr reminders resync` then `preview` from the command line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::sync::Arc;
use std::time::Duration;

use prpr::clock::Clock;
use prpr::config::{Config, DeliveryMode, Glob, LocalTime, Schedule, Secret, SlackUser};
use prpr::github::Event;
use prpr::github::backfill::{Backfill, Outcome, PassReport};
use prpr::notice::{PrStatus, ReviewState};
use prpr::slack::render;
use prpr::store::Store;
use serde_json::{Value, json};
use testkit::github::{GitHubDouble, GitHubFault};

use crate::support;

const GH_TOKEN: &str = "ghp_backfill_test";
const CHANNEL: &str = "C0BACKEND1";

fn config(gh: &GitHubDouble, repos: &[&str]) -> Config {
    let mut cfg = Config::default();
    cfg.notify.delivery = DeliveryMode::Dm;
    for (login, id) in [
        ("alice", "U0ALICE001"),
        ("bob", "U0BOB00001"),
        ("carol", "U0CAROL001"),
    ] {
        cfg.notify.members.insert(login, SlackUser::Id(id.into()));
    }
    cfg.github.token = Some(Secret::new(GH_TOKEN));
    cfg.github.api_url = gh.api_url();
    cfg.github.repos = repos.iter().map(|r| r.to_string()).collect();
    let mut s = Schedule::new("backend", CHANNEL);
    s.times = vec![LocalTime::parse("09:30").unwrap()];
    s.repos = vec![Glob::new("acme/*").unwrap()];
    cfg.reminders.schedules = vec![s];
    cfg
}

/// A pull request as GitHub shapes it, in a `pull_request` event and in the
/// REST API alike.
fn pr(repo: &str, number: u64, title: &str, reviewers: &[&str], updated: &str) -> Value {
    json!({
        "number": number, "title": title,
        "html_url": format!("https://github.com/{repo}/pull/{number}"),
        "user": {"login": "carol", "type": "User"}, "draft": false, "state": "open",
        "requested_reviewers": reviewers.iter().map(|l| json!({"login": l, "type": "User"})).collect::<Vec<_>>(),
        "requested_teams": [],
        "labels": [], "base": {"ref": "main"},
        "created_at": "2026-03-01T00:00:00Z", "updated_at": updated
    })
}

/// A `pull_request` event: `opened`, or `review_requested` (of its first
/// requested reviewer) when it has any.
async fn ingest(store: &Store, cfg: &Config, id: &str, pull: Value) {
    let repo = pull["html_url"]
        .as_str()
        .unwrap()
        .split('/')
        .collect::<Vec<_>>()[3..5]
        .join("/");
    let first = pull["requested_reviewers"][0].clone();
    let mut payload = json!({
        "action": "opened", "number": pull["number"], "pull_request": pull,
        "repository": {"full_name": repo, "owner": {"login": "acme", "type": "Organization"}},
        "sender": {"login": "carol", "type": "User"}
    });
    if !first.is_null() {
        payload["action"] = json!("review_requested");
        payload["requested_reviewer"] = first;
    }
    let e = Event::parse("pull_request", payload.to_string().as_bytes()).unwrap();
    prpr::pipeline::ingest(store, &cfg.notify, id, "pull_request", &e, 0)
        .await
        .unwrap();
}

async fn pass(cfg: &Config, store: &Arc<Store>) -> PassReport {
    Backfill::from_config(cfg, store.clone(), Clock::system(), true)
        .unwrap()
        .pass(true)
        .await
        .unwrap()
}

/// The digest `prpr reminders preview backend` would print now, as text.
async fn digest(store: &Store, cfg: &Config) -> String {
    let s = &cfg.reminders.schedules[0];
    let notes = prpr::reminders::build_schedule(store, cfg, s, Clock::system().now_ms())
        .await
        .unwrap();
    notes
        .iter()
        .map(|n| render::render(&n.address, &n.notice).text)
        .collect::<Vec<_>>()
        .join("\n")
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<Store> {
    let url = format!("sqlite://{}", dir.path().join("prpr.db").display());
    Arc::new(Store::connect(&url).await.unwrap())
}

/// Stores to run on: SQLite, and PostgreSQL when there is one.
async fn stores(dir: &tempfile::TempDir) -> (Vec<Arc<Store>>, Option<support::PgDb>) {
    let mut out = vec![sqlite(dir).await];
    let pg = support::postgres_db().await;
    if let Some(db) = &pg {
        out.push(Arc::new(Store::connect(&db.url).await.unwrap()));
    }
    (out, pg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_after_downtime_shows_a_pr_opened_while_prpr_was_down() {
    let dir = tempfile::tempdir().unwrap();
    let (stores, _pg) = stores(&dir).await;
    for store in stores {
        let gh = GitHubDouble::start(GH_TOKEN).await;
        let cfg = config(&gh, &["acme/api"]);
        let old = "2026-03-01T00:00:00Z";
        // What prpr saw before it went down: PRs 1, 2 and 4 opened.
        ingest(
            &store,
            &cfg,
            "d1",
            pr("acme/api", 1, "Keep me", &["alice"], old),
        )
        .await;
        ingest(
            &store,
            &cfg,
            "d2",
            pr("acme/api", 2, "Merge me", &["bob"], old),
        )
        .await;
        // PR 4's last event is newer than anything GitHub will list.
        let future = "2030-01-01T00:00:00Z";
        ingest(
            &store,
            &cfg,
            "d4",
            pr("acme/api", 4, "Fresh title", &["bob"], future),
        )
        .await;
        let outbox_before = store.outbox_counts().await.unwrap();
        let before = digest(&store, &cfg).await;
        assert!(before.contains("Merge me"), "{before}");

        // GitHub meanwhile: PR 1 as it was, PR 2 merged, PR 3 opened with
        // requests to alice and a team and a review by bob; PR 4 listed
        // with an older snapshot.
        gh.add_pull(
            "acme/api",
            1,
            &pr("acme/api", 1, "Keep me", &["alice"], old),
        );
        gh.add_pull("acme/api", 2, &pr("acme/api", 2, "Merge me", &["bob"], old));
        gh.close_pull("acme/api", 2, true);
        let mut three = pr("acme/api", 3, "Opened while down", &["alice"], old);
        three["requested_teams"] = json!([{"slug": "backend", "name": "Backend"}]);
        three["updated_at"] = json!("2026-03-02T00:00:00Z");
        gh.add_pull("acme/api", 3, &three);
        gh.add_review("acme/api", 3, "bob", "COMMENTED");
        gh.add_review("acme/api", 3, "bob", "APPROVED");
        gh.add_review("acme/api", 3, "bob", "COMMENTED");
        gh.add_review("acme/api", 3, "carol", "APPROVED"); // the author's own
        gh.add_pull(
            "acme/api",
            4,
            &pr(
                "acme/api",
                4,
                "Stale title",
                &["bob"],
                "2026-03-03T00:00:00Z",
            ),
        );

        let report = pass(&cfg, &store).await;
        assert_eq!(
            (
                report.repos,
                report.prs,
                report.closed,
                report.stopped_early.as_deref()
            ),
            (1, 3, 1, None),
            "{report:#?}"
        );
        let kept: Vec<u64> = report
            .found
            .iter()
            .filter(|f| f.outcome == Outcome::KeptNewer)
            .map(|f| f.card.pr.number)
            .collect();
        assert_eq!(kept, vec![4]);

        let after = digest(&store, &cfg).await;
        assert!(after.contains("Opened while down"), "{after}");
        let line = after
            .lines()
            .find(|l| l.contains("Opened while down"))
            .unwrap();
        assert!(
            line.contains("waiting for <@U0ALICE001>") && line.contains("acme/backend"),
            "requested reviewer and team: {line}"
        );
        assert!(line.contains("1 approval"), "bob's approval stands: {line}");
        assert!(!after.contains("Merge me"), "merged while down: {after}");
        assert!(after.contains("Keep me"), "{after}");
        assert!(
            after.contains("Fresh title") && !after.contains("Stale title"),
            "the newer event wins: {after}"
        );
        let merged = store.pr_state("acme/api", 2).await.unwrap().unwrap();
        assert_eq!(merged.card.unwrap().status, PrStatus::Merged);
        // The rest of the stored state is the events' own.
        let one = store.pr_state("acme/api", 1).await.unwrap().unwrap();
        assert!(one.requested.contains("alice"), "{one:?}");
        let three = store.pr_state("acme/api", 3).await.unwrap().unwrap();
        let reviewers: Vec<(String, ReviewState)> = three
            .card
            .unwrap()
            .reviewers
            .into_iter()
            .map(|r| (r.name, r.state))
            .collect();
        assert_eq!(
            reviewers,
            vec![
                ("bob".to_string(), ReviewState::Approved),
                ("alice".to_string(), ReviewState::Pending),
                ("acme/backend".to_string(), ReviewState::Pending),
            ]
        );
        // Nothing was told to anyone.
        assert_eq!(store.outbox_counts().await.unwrap(), outbox_before);

        // A second pass: nothing new.
        let again = pass(&cfg, &store).await;
        assert_eq!(
            (again.prs, again.updated, again.closed),
            (3, 0, 0),
            "{again:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globs_expand_through_the_owner_list_and_pages_go_past_100() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let gh = GitHubDouble::start(GH_TOKEN).await;
    for n in 1..=130 {
        gh.add_pull("acme/api", n, &json!({"title": format!("Api change {n}")}));
    }
    gh.add_pull("acme/web", 7, &json!({"title": "Web change"}));
    gh.add_pull("acme/docs", 8, &json!({"title": "Docs change"}));
    gh.add_pull("other/x", 9, &json!({"title": "Not served"}));
    gh.add_pull("solo/tool", 10, &json!({"title": "A user's repository"}));
    gh.mark_user("solo");
    let cfg = config(&gh, &["acme/[aw]*", "solo/*"]);

    let report = pass(&cfg, &store).await;
    assert_eq!(
        (report.repos, report.prs, report.updated),
        (3, 132, 132),
        "{:?}",
        report.failed
    );
    let repos: std::collections::BTreeSet<String> = store
        .open_cards()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.pr.repo)
        .collect();
    assert_eq!(
        repos.into_iter().collect::<Vec<_>>(),
        vec!["acme/api", "acme/web", "solo/tool"]
    );
    let requests: Vec<String> = gh.requests().into_iter().map(|r| r.1).collect();
    assert!(
        requests.contains(&"/orgs/acme/repos?per_page=100".to_string()),
        "{requests:?}"
    );
    assert!(
        requests.contains(&"/users/solo/repos?per_page=100".to_string()),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/repos/acme/api/pulls?") && r.contains("page=2")),
        "second page: {requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_rate_limit_ends_a_pass_early_and_closes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let gh = GitHubDouble::start(GH_TOKEN).await;
    let mut cfg = config(&gh, &["acme/api"]);
    cfg.github.catch_up_rate_floor = 5;
    // prpr holds PR 99 as open; GitHub no longer lists it.
    ingest(
        &store,
        &cfg,
        "d99",
        pr("acme/api", 99, "Held", &["alice"], "2026-03-01T00:00:00Z"),
    )
    .await;
    for n in 1..=20 {
        gh.add_pull("acme/api", n, &json!({}));
    }
    gh.set_rate_limit(12, Duration::from_secs(3600));
    // The first request meets a secondary limit: waited out, then done.
    gh.set_fault_for(
        GitHubFault::SecondaryForbidden {
            retry_after_secs: 1,
        },
        1,
    );

    let report = pass(&cfg, &store).await;
    let why = report.stopped_early.clone().unwrap_or_default();
    assert!(why.contains("rate limit low"), "{report:#?}");
    assert!(report.prs < 20 && report.prs > 0, "{report:#?}");
    assert_eq!(report.rate_remaining, Some(5));
    assert_eq!(report.closed, 0);
    let held = store.pr_state("acme/api", 99).await.unwrap().unwrap();
    assert_eq!(held.card.unwrap().status, PrStatus::Open, "not closed");
    let requests = gh.requests();
    assert_eq!(requests[0].2, 403, "{requests:?}");
    assert_eq!(requests[1].2, 200, "{requests:?}");
    // An incomplete pass is not a complete one: the next periodic pass runs.
    gh.set_rate_limit(5000, Duration::from_secs(3600));
    let next = Backfill::from_config(&cfg, store.clone(), Clock::system(), true)
        .unwrap()
        .pass(false)
        .await
        .unwrap();
    assert_eq!(
        (next.recent, next.prs, next.closed),
        (None, 20, 1),
        "{next:#?}"
    );
    // That one was complete: a periodic pass within resync is skipped.
    let skipped = Backfill::from_config(&cfg, store.clone(), Clock::system(), true)
        .unwrap()
        .pass(false)
        .await
        .unwrap();
    assert!(skipped.recent.is_some(), "{skipped:#?}");
    // Another task holding the lease: nothing is read.
    let now = Clock::system().now_ms();
    assert!(
        store
            .lease(
                prpr::github::backfill::JOB,
                "another-task",
                now,
                now + 60_000
            )
            .await
            .unwrap()
            .is_some()
    );
    let before = gh.requests().len();
    let elsewhere = pass(&cfg, &store).await;
    assert!(elsewhere.leased_elsewhere, "{elsewhere:#?}");
    assert_eq!(gh.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_then_preview_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let gh = GitHubDouble::start(GH_TOKEN).await;
    let mut opened = pr(
        "acme/api",
        3,
        "Opened while down",
        &["alice"],
        "2026-03-02T00:00:00Z",
    );
    opened["requested_teams"] = json!([{"slug": "backend"}]);
    gh.add_pull("acme/api", 3, &opened);
    gh.add_review("acme/api", 3, "bob", "APPROVED");
    let config = dir.path().join("prpr.toml");
    std::fs::write(
        &config,
        r#"
[github]
repos = ["acme/*"]

[members]
alice = "U0ALICE001"
bob = "U0BOB00001"

[[reminders.schedules]]
name = "backend"
channel = "C0BACKEND1"
times = ["09:30"]
"#,
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("prpr.db").display());
    let run = |args: &[&str]| {
        tokio::process::Command::new(support::bin())
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("DATABASE_URL", &db)
            .env("GITHUB_TOKEN", GH_TOKEN)
            .env("GITHUB_API_URL", gh.api_url())
            .output()
    };
    let out = run(&["reminders", "resync"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "acme/api#3  open  updated  \"Opened while down\"  by carol  waiting: alice, acme/backend  approved: bob"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("repos 1, prs 1, updated 1, closed 0, rate remaining"),
        "{stdout}"
    );
    let out = run(&["reminders", "preview", "backend"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Opened while down") && stdout.contains("<@U0ALICE001>"),
        "{stdout}"
    );

    let help = std::process::Command::new(support::bin())
        .args(["reminders", "resync", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Backfill the open-PR picture") && help.contains("Pull requests: read"),
        "{help}"
    );
}

/// `prpr serve` backfills at start: a PR opened while it was down is in the
/// picture before any event about it, and Slack hears nothing of it.
/// Without credentials the backfill is off, said once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_backfills_at_start_and_says_when_it_is_off() {
    use testkit::slack::{SlackConfig, SlackDouble};
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let gh = GitHubDouble::start(GH_TOKEN).await;
    gh.add_pull(
        "acme/api",
        3,
        &pr(
            "acme/api",
            3,
            "Opened while down",
            &["octocat"],
            "2026-03-02T00:00:00Z",
        ),
    );
    let config = format!(
        "{}\n[github]\nrepos = [\"acme/*\"]\n\n[[reminders.schedules]]\nname = \"backend\"\nchannel = \"C0BACKEND1\"\ntimes = [\"09:30\"]\n",
        support::BASE_CONFIG
    );
    let off =
        support::Server::start(Some(&slack), support::Launch::with_config(config.clone())).await;
    let said = off
        .logged("reminders backfill off", 1, Duration::from_secs(5))
        .await;
    assert!(
        said[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("GITHUB_TOKEN"),
        "{said:?}"
    );
    drop(off);

    let mut launch = support::Launch::with_config(config);
    launch.env = vec![
        ("GITHUB_TOKEN".into(), GH_TOKEN.into()),
        ("GITHUB_API_URL".into(), gh.api_url()),
    ];
    let server = support::Server::start(Some(&slack), launch).await;
    let pass = server
        .logged("reminders backfill pass", 1, Duration::from_secs(15))
        .await;
    assert_eq!(
        (
            pass[0]["repos"].as_u64(),
            pass[0]["prs"].as_u64(),
            pass[0]["updated"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{pass:?}"
    );
    let cards = server.store().await.open_cards().await.unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].pr.title, "Opened while down");
    assert_eq!(server.outbox().await.pending, 0, "nothing queued for Slack");
    assert!(slack.posted().is_empty(), "{:?}", slack.posted());
}
