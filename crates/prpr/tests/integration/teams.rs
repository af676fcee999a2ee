//! Team review requests passed on to the team's members: held in hand with
//! a manual clock (the debounce passes with `advance`, not in real seconds),
//! the real store (SQLite, and PostgreSQL for the store's part), the sender
//! against the Slack double and the expander against the GitHub double.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::sync::Arc;
use std::time::Duration;

use prpr::clock::Clock;
use prpr::config::{NotifyConfig, Secret, SlackUser, TeamTarget};
use prpr::github::Event;
use prpr::github::client::{Credentials, GitHubClient};
use prpr::outbox::SenderOptions;
use prpr::outbox::teams::{ExpanderOptions, TeamExpander};
use prpr::slack::Publisher;
use prpr::slack::client::SlackClient;
use prpr::store::Store;
use serde_json::{Value, json};
use testkit::github::{GitHubDouble, GitHubFault};
use testkit::slack::{SlackConfig, SlackDouble};

use crate::support;

const GH_TOKEN: &str = "ghp_teams_test";
const TEAM_CHANNEL: &str = "C0DOCS0001";
/// Members with Slack IDs: `<login>` → `U0<LOGIN>`.
const PEOPLE: [&str; 12] = [
    "carol", "alice", "bob", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];

fn slack_id(login: &str) -> String {
    format!("U0{:0<9}", login.to_ascii_uppercase())
}

/// A `pull_request` event about acme/app#`number` by carol; `f` adjusts it.
fn pr_event(action: &str, number: u64, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "action": action,
        "number": number,
        "pull_request": {
            "number": number, "title": "Document the cache", "html_url": format!("https://github.com/acme/app/pull/{number}"),
            "user": {"login": "carol", "type": "User"}, "draft": false, "state": "open", "merged": false,
            "additions": 10, "deletions": 2, "requested_reviewers": [], "requested_teams": [],
            "labels": [], "base": {"ref": "main"}
        },
        "repository": {"full_name": "acme/app", "owner": {"login": "acme", "type": "Organization"}},
        "sender": {"login": "carol", "type": "User"}
    });
    f(&mut v);
    v
}

/// Who GitHub lists as requested after an event.
fn waiting(v: &mut Value, people: &[&str], teams: &[&str]) {
    v["pull_request"]["requested_reviewers"] = json!(
        people
            .iter()
            .map(|l| json!({"login": l, "type": "User"}))
            .collect::<Vec<_>>()
    );
    v["pull_request"]["requested_teams"] = json!(
        teams
            .iter()
            .map(|s| json!({"slug": s, "name": s}))
            .collect::<Vec<_>>()
    );
}

fn team_requested(number: u64, slug: &str, people: &[&str]) -> Value {
    pr_event("review_requested", number, |v| {
        v["requested_team"] = json!({"slug": slug, "name": slug});
        waiting(v, people, &[slug]);
    })
}

fn person_requested(number: u64, login: &str, people: &[&str], teams: &[&str]) -> Value {
    pr_event("review_requested", number, |v| {
        v["requested_reviewer"] = json!({"login": login, "type": "User"});
        waiting(v, people, teams);
    })
}

fn team_removed(number: u64, slug: &str, people: &[&str]) -> Value {
    pr_event("review_request_removed", number, |v| {
        v["requested_team"] = json!({"slug": slug, "name": slug});
        waiting(v, people, &[]);
    })
}

/// The store, Slack, GitHub, the sender running, the expander in hand.
struct Rig {
    store: Arc<Store>,
    slack: SlackDouble,
    gh: GitHubDouble,
    clock: Clock,
    cfg: NotifyConfig,
    expander: TeamExpander,
    wake: Arc<tokio::sync::Notify>,
    stop: tokio::sync::watch::Sender<bool>,
    sender: tokio::task::JoinHandle<()>,
    n: usize,
}

impl Rig {
    async fn start(store: Store, team_expand_max: usize) -> Rig {
        let store = Arc::new(store);
        let slack = SlackDouble::start(SlackConfig::default()).await;
        let gh = GitHubDouble::start(GH_TOKEN).await;
        let clock = Clock::manual(1_800_000_000_000);
        let publisher = Arc::new(Publisher::Slack(
            SlackClient::new(
                &slack.api_url(),
                Secret::new(support::TOKEN),
                Duration::from_secs(5),
            )
            .unwrap(),
        ));
        let mut cfg = NotifyConfig {
            channel: Some("C0GENERAL1".into()),
            expand_teams: true,
            team_expand_max,
            ..NotifyConfig::default()
        };
        for login in PEOPLE {
            cfg.members.insert(login, SlackUser::Id(slack_id(login)));
        }
        cfg.teams.insert(
            "acme/docs",
            TeamTarget {
                usergroup: None,
                channel: Some(TEAM_CHANNEL.into()),
            },
        );
        let wake = Arc::new(tokio::sync::Notify::new());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let sender = tokio::spawn(
            prpr::outbox::Sender::new(
                store.clone(),
                publisher,
                SenderOptions {
                    per_channel_per_sec: 100.0,
                    burst: 100,
                    ..SenderOptions::default()
                },
                wake.clone(),
                clock.clone(),
            )
            .run(stopped),
        );
        let github = Arc::new(
            GitHubClient::new(
                &gh.api_url(),
                Credentials::Token(Secret::new(GH_TOKEN)),
                clock.clone(),
            )
            .unwrap(),
        );
        let expander = TeamExpander::new(
            store.clone(),
            github,
            Arc::new(cfg.clone()),
            ExpanderOptions {
                cache: Duration::from_secs(3600),
                max_attempts: 3,
                retry_initial: Duration::from_secs(1),
                retry_max: Duration::from_secs(2),
                lease: Duration::from_secs(60),
            },
            clock.clone(),
            wake.clone(),
        );
        Rig {
            store,
            slack,
            gh,
            clock,
            cfg,
            expander,
            wake,
            stop,
            sender,
            n: 0,
        }
    }

    /// One delivery through the pipeline, as intake records it.
    async fn deliver(&mut self, payload: Value) {
        self.n += 1;
        let e = Event::parse("pull_request", payload.to_string().as_bytes()).unwrap();
        prpr::pipeline::ingest(
            &self.store,
            &self.cfg,
            &format!("d{}", self.n),
            "pull_request",
            &e,
            self.clock.now_ms(),
        )
        .await
        .unwrap();
        self.wake.notify_one();
    }

    /// Messages Slack has received so far, once the outbox has drained.
    async fn settled(&self) -> Vec<testkit::slack::Posted> {
        let store = self.store.clone();
        assert!(
            support::eventually_async(Duration::from_secs(10), async || {
                store.outbox_counts().await.unwrap().pending == 0
            })
            .await,
            "the outbox drains"
        );
        self.slack.posted()
    }

    /// How many messages each of `logins` got by DM.
    async fn dms(&self, logins: &[&str]) -> Vec<(String, usize)> {
        let posted = self.settled().await;
        logins
            .iter()
            .map(|l| {
                let id = slack_id(l);
                (
                    l.to_string(),
                    posted.iter().filter(|p| p.channel == id).count(),
                )
            })
            .collect()
    }

    fn member_calls(&self, slug: &str) -> usize {
        let path = format!("/orgs/acme/teams/{slug}/members");
        self.gh
            .requests()
            .iter()
            .filter(|(_, p, _)| p.starts_with(&path))
            .count()
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.sender.await.unwrap();
    }
}

fn counts(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
    pairs.iter().map(|(l, n)| (l.to_string(), *n)).collect()
}

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

/// A team of three, one of them the author: the other two get one DM each,
/// after the debounce and not before; the team's channel still gets its
/// notice; a second request to the team within `team_cache` reads no members.
async fn a_team_request_dms_each_member_once(store: Store) {
    let mut rig = Rig::start(store, 8).await;
    rig.gh.add_team("acme", "docs", &["carol", "alice", "bob"]);
    rig.deliver(team_requested(1, "docs", &[])).await;
    rig.expander.pass().await;
    assert_eq!(rig.member_calls("docs"), 0, "nothing before the debounce");
    assert_eq!(
        rig.dms(&["alice", "bob"]).await,
        counts(&[("alice", 0), ("bob", 0)])
    );
    rig.clock.advance(Duration::from_secs(5));
    rig.expander.pass().await;
    rig.expander.pass().await;
    assert_eq!(
        rig.dms(&["alice", "bob", "carol"]).await,
        counts(&[("alice", 1), ("bob", 1), ("carol", 0)])
    );
    let posted = rig.settled().await;
    let dm = posted
        .iter()
        .find(|p| p.channel == slack_id("alice"))
        .unwrap();
    assert!(
        dm.text.as_deref().unwrap_or("").starts_with(
            ":eyes: @carol requested your review on <https://github.com/acme/app/pull/1|acme/app#1>"
        ),
        "{dm:#?}"
    );
    assert!(
        posted.iter().any(|p| p.channel == TEAM_CHANNEL
            && p.text
                .as_deref()
                .unwrap_or("")
                .contains("requested a review from team *acme/docs*")),
        "the team's channel is told as before: {posted:#?}"
    );
    let rows = rig.store.expansions("acme/app", 1).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status.as_str(), rows[0].outcome.as_deref()),
        ("done", Some("queued 2"))
    );
    assert_eq!(rig.member_calls("docs"), 1);

    // Another PR for the same team within team_cache: the members are not read again.
    rig.deliver(team_requested(2, "docs", &[])).await;
    rig.clock.advance(Duration::from_secs(5));
    rig.expander.pass().await;
    assert_eq!(
        rig.dms(&["alice", "bob"]).await,
        counts(&[("alice", 2), ("bob", 2)])
    );
    assert_eq!(rig.member_calls("docs"), 1, "cached for team_cache");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_request_dms_each_member_once_on_sqlite() {
    let (store, _dir) = sqlite().await;
    a_team_request_dms_each_member_once(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_request_dms_each_member_once_on_postgres() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    a_team_request_dms_each_member_once(Store::connect(&db.url).await.unwrap()).await;
}

/// GitHub's team auto-assignment within the debounce: team requested, two
/// members requested by name, team request removed. Each member is told
/// once, by their own request; the expansion reads no members and sends
/// nothing.
async fn auto_assignment_tells_each_member_once(store: Store) {
    let mut rig = Rig::start(store, 8).await;
    rig.gh.add_team("acme", "docs", &["alice", "bob", "dave"]);
    rig.deliver(team_requested(3, "docs", &[])).await;
    rig.clock.advance(Duration::from_secs(1));
    rig.deliver(person_requested(3, "alice", &["alice"], &["docs"]))
        .await;
    rig.deliver(person_requested(3, "bob", &["alice", "bob"], &["docs"]))
        .await;
    rig.clock.advance(Duration::from_secs(1));
    rig.deliver(team_removed(3, "docs", &["alice", "bob"]))
        .await;
    rig.clock.advance(Duration::from_secs(5));
    rig.expander.pass().await;
    assert_eq!(
        rig.dms(&["alice", "bob", "dave"]).await,
        counts(&[("alice", 1), ("bob", 1), ("dave", 0)])
    );
    assert_eq!(rig.member_calls("docs"), 0);
    let rows = rig.store.expansions("acme/app", 3).await.unwrap();
    assert_eq!(rows[0].status, "done");
    assert!(
        rows[0]
            .outcome
            .as_deref()
            .unwrap_or("")
            .contains("was removed"),
        "{rows:?}"
    );

    // Asked, withdrawn and asked again within the debounce: one waiting
    // expansion (the second replaces the first), each member told once.
    rig.deliver(team_requested(10, "docs", &[])).await;
    rig.deliver(team_removed(10, "docs", &[])).await;
    rig.deliver(team_requested(10, "docs", &[])).await;
    let rows = rig.store.expansions("acme/app", 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rig.clock.advance(Duration::from_secs(5));
    rig.expander.pass().await;
    assert_eq!(
        rig.dms(&["alice", "bob", "dave"]).await,
        counts(&[("alice", 2), ("bob", 2), ("dave", 1)])
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_assignment_tells_each_member_once_on_sqlite() {
    let (store, _dir) = sqlite().await;
    auto_assignment_tells_each_member_once(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_assignment_tells_each_member_once_on_postgres() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    auto_assignment_tells_each_member_once(Store::connect(&db.url).await.unwrap()).await;
}

/// The team still requested after the debounce, one member also asked by
/// name: that member is told once (by their own request), the others by
/// the expansion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_asked_by_name_is_not_told_again() {
    let (store, _dir) = sqlite().await;
    let mut rig = Rig::start(store, 8).await;
    rig.gh.add_team("acme", "docs", &["alice", "bob", "dave"]);
    rig.deliver(team_requested(4, "docs", &[])).await;
    rig.deliver(person_requested(4, "bob", &["bob"], &["docs"]))
        .await;
    rig.clock.advance(Duration::from_secs(5));
    rig.expander.pass().await;
    assert_eq!(
        rig.dms(&["alice", "bob", "dave"]).await,
        counts(&[("alice", 1), ("bob", 1), ("dave", 1)])
    );
    rig.stop().await;
}

/// Ten members to tell, `team_expand_max` 8: one notice in the team's
/// channel says so, and nobody is DMed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn above_the_cap_the_team_channel_is_told_instead() {
    let (store, _dir) = sqlite().await;
    let mut rig = Rig::start(store, 8).await;
    let ten = &PEOPLE[1..11];
    rig.gh.add_team("acme", "docs", ten);
    rig.deliver(team_requested(5, "docs", &[])).await;
    rig.clock.advance(Duration::from_secs(5));
    rig.expander.pass().await;
    let posted = rig.settled().await;
    let dms = posted.iter().filter(|p| p.channel.starts_with('U')).count();
    assert_eq!(dms, 0, "{posted:#?}");
    let said: Vec<&str> = posted
        .iter()
        .filter(|p| p.channel == TEAM_CHANNEL)
        .filter_map(|p| p.text.as_deref())
        .filter(|t| t.contains("nobody was messaged directly"))
        .collect();
    assert_eq!(said.len(), 1, "{posted:#?}");
    assert!(
        said[0].starts_with(":busts_in_silhouette: Team *acme/docs* has 10 members to ask, more than `team_expand_max` (8): nobody was messaged directly about <https://github.com/acme/app/pull/5|acme/app#5>."),
        "{}",
        said[0]
    );
    rig.stop().await;
}

/// GitHub fails the member lookup once: the row waits (backoff), nobody is
/// told yet; the next attempt succeeds and the members get their DMs.
/// A team GitHub will not show (404) falls back to the team's channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_error_is_retried_then_a_missing_team_told_in_its_channel() {
    let (store, _dir) = sqlite().await;
    let mut rig = Rig::start(store, 8).await;
    rig.gh.add_team("acme", "docs", &["alice", "bob"]);
    rig.deliver(team_requested(6, "docs", &[])).await;
    rig.clock.advance(Duration::from_secs(5));
    rig.gh.set_fault_for(GitHubFault::Status(502), 1);
    rig.expander.pass().await;
    let rows = rig.store.expansions("acme/app", 6).await.unwrap();
    assert_eq!(
        (rows[0].status.as_str(), rows[0].attempts),
        ("pending", 1),
        "{rows:?}"
    );
    assert!(
        rows[0].last_error.as_deref().unwrap_or("").contains("502"),
        "{rows:?}"
    );
    assert_eq!(
        rig.dms(&["alice", "bob"]).await,
        counts(&[("alice", 0), ("bob", 0)])
    );
    rig.clock.advance(Duration::from_secs(2));
    rig.expander.pass().await;
    assert_eq!(
        rig.dms(&["alice", "bob"]).await,
        counts(&[("alice", 1), ("bob", 1)])
    );
    assert_eq!(rig.member_calls("docs"), 2);

    // A team GitHub does not know (or the token may not read): its channel hears it.
    rig.deliver(team_requested(7, "ghosts", &[])).await;
    rig.clock.advance(Duration::from_secs(5));
    rig.expander.pass().await;
    let posted = rig.settled().await;
    assert!(
        posted.iter().any(|p| p.channel == "C0GENERAL1"
            && p.text.as_deref().unwrap_or("").starts_with(
                ":busts_in_silhouette: GitHub would not list the members of team *acme/ghosts*: nobody was messaged directly"
            )),
        "{posted:#?}"
    );
    rig.stop().await;
}

/// Two tasks on one database: a row is claimed by one of them at a time,
/// and a task whose lease ran out (another took the row over) cannot
/// finish it, so no team request is expanded twice.
async fn one_task_expands_a_row(store: Store) {
    let mut rig = Rig::start(store, 8).await;
    rig.gh.add_team("acme", "docs", &["alice", "bob"]);
    rig.deliver(team_requested(8, "docs", &[])).await;
    let now = rig.clock.now_ms();
    assert!(
        rig.store.due_expansions(now, 10).await.unwrap().is_empty(),
        "not due before the debounce"
    );
    rig.clock.advance(Duration::from_secs(5));
    let now = rig.clock.now_ms();
    let due = rig.store.due_expansions(now, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let row = &due[0];
    assert!(
        rig.store
            .claim_expansion(row.id, "a", now, now + 1000)
            .await
            .unwrap()
    );
    assert!(
        !rig.store
            .claim_expansion(row.id, "b", now, now + 1000)
            .await
            .unwrap(),
        "held by a"
    );
    assert!(
        rig.store.due_expansions(now, 10).await.unwrap().is_empty(),
        "a leased row is not handed out"
    );
    // a's lease runs out; b takes the row over and finishes it.
    rig.clock.advance(Duration::from_secs(1));
    let later = rig.clock.now_ms();
    assert!(
        rig.store
            .claim_expansion(row.id, "b", later, later + 1000)
            .await
            .unwrap()
    );
    let cfg = rig.cfg.clone();
    let members = vec!["alice".to_string(), "bob".to_string()];
    let finish = |owner: &'static str| {
        let (store, row, cfg, members) =
            (rig.store.clone(), row.clone(), cfg.clone(), members.clone());
        async move {
            store
                .finish_expansion(&row, owner, later, |state| {
                    prpr::rules::team_expansion::expand(&row.expansion, Some(&members), state, &cfg)
                })
                .await
                .unwrap()
        }
    };
    assert!(
        finish("a").await.is_none(),
        "a lost the row: nothing written"
    );
    let (queued, _) = finish("b").await.expect("b's to finish");
    assert_eq!(queued.len(), 2);
    assert!(finish("b").await.is_none(), "done once");
    rig.wake.notify_one();
    assert_eq!(
        rig.dms(&["alice", "bob"]).await,
        counts(&[("alice", 1), ("bob", 1)])
    );
    // The expander finds nothing left to do.
    rig.expander.pass().await;
    assert_eq!(rig.member_calls("docs"), 0);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_expands_a_row_on_sqlite() {
    let (store, _dir) = sqlite().await;
    one_task_expands_a_row(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_expands_a_row_on_postgres() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    one_task_expands_a_row(Store::connect(&db.url).await.unwrap()).await;
}

/// `prpr serve` with a GitHub token: the expander runs and a team's members
/// get their DMs after the debounce; without credentials the log says
/// expansion is off and the team's channel alone is told, as before.
#[tokio::test]
async fn serve_expands_with_a_token_and_says_off_without() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let gh = GitHubDouble::start(GH_TOKEN).await;
    gh.add_team("acme", "docs", &["carol", "alice", "bob"]);
    let config = format!(
        "[notify]\nchannel = \"C0GENERAL1\"\nteam_debounce = \"200ms\"\n[slack]\nper_channel_per_sec = 50.0\nburst = 50\n\
         [members]\nalice = \"{}\"\nbob = \"{}\"\n[teams]\n\"acme/docs\" = {{ channel = \"{TEAM_CHANNEL}\" }}\n",
        slack_id("alice"),
        slack_id("bob")
    );
    let server = support::Server::start(
        Some(&slack),
        support::Launch {
            config: config.clone(),
            env: vec![
                ("GITHUB_TOKEN".into(), GH_TOKEN.into()),
                ("GITHUB_API_URL".into(), gh.api_url()),
            ],
            ..support::Launch::default()
        },
    )
    .await;
    server
        .logged("team expansion on: a review request to a team without a user group is also DMed to its members", 1, Duration::from_secs(10))
        .await;
    let (status, _) = server
        .deliver("pull_request", "team-1", &team_requested(9, "docs", &[]))
        .await;
    assert_eq!(status, 202);
    let dm = |posted: &[testkit::slack::Posted], login: &str| {
        posted
            .iter()
            .filter(|p| p.channel == slack_id(login))
            .count()
    };
    assert!(
        support::eventually(Duration::from_secs(10), || {
            let posted = slack.posted();
            dm(&posted, "alice") == 1 && dm(&posted, "bob") == 1
        })
        .await,
        "{:#?}",
        slack.posted()
    );
    let expanded = server
        .logged("team request expanded", 1, Duration::from_secs(5))
        .await;
    assert_eq!(expanded[0]["queued"], 2, "{expanded:?}");

    let off = support::Server::start(Some(&slack), support::Launch::with_config(config)).await;
    let said = off
        .logged("team expansion off", 1, Duration::from_secs(10))
        .await;
    assert!(
        said[0]["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("no GitHub token or App credentials"),
        "{said:?}"
    );
}
