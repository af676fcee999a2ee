//! One Slack thread per pull request: the root card, replies in its thread,
//! the root kept current (coalesced `chat.update`s), reactions, a root
//! deleted in Slack, and a restart between root and reply — against the Slack
//! double, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::sync::Arc;
use std::time::Duration;

use prpr::clock::Clock;
use prpr::config::{DeliveryMode, NotifyConfig, Secret, SlackUser};
use prpr::github::Event;
use prpr::outbox::SenderOptions;
use prpr::outbox::threads::ThreadUpdater;
use prpr::slack::Publisher;
use prpr::slack::client::SlackClient;
use prpr::store::Store;
use serde_json::{Value, json};
use testkit::slack::{Posted, SlackConfig, SlackDouble};

use crate::support::{self, Launch, Server};

const CHANNEL: &str = "C0GENERAL1";

/// A `pull_request` event about acme/app#7 by carol, as GitHub shapes it;
/// `f` adjusts it.
fn pr_event(action: &str, sender: &str, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "action": action,
        "number": 7,
        "pull_request": {
            "number": 7, "title": "Cache the avatars", "html_url": "https://github.com/acme/app/pull/7",
            "user": {"login": "carol", "type": "User"}, "draft": false, "state": "open", "merged": false,
            "additions": 10, "deletions": 2, "requested_reviewers": [], "requested_teams": [],
            "labels": [], "base": {"ref": "main"}
        },
        "repository": {"full_name": "acme/app", "owner": {"login": "acme", "type": "Organization"}},
        "sender": {"login": sender, "type": "User"}
    });
    f(&mut v);
    v
}

/// `reviewer` asked; `waiting` is everyone GitHub lists as requested after it.
fn requested(reviewer: &str, waiting: &[&str]) -> Value {
    pr_event("review_requested", "carol", |v| {
        v["requested_reviewer"] = json!({"login": reviewer, "type": "User"});
        v["pull_request"]["requested_reviewers"] = json!(
            waiting
                .iter()
                .map(|l| json!({"login": l, "type": "User"}))
                .collect::<Vec<_>>()
        );
    })
}

fn review(reviewer: &str, state: &str, waiting: &[&str]) -> Value {
    let mut v = pr_event("submitted", reviewer, |v| {
        v["pull_request"]["requested_reviewers"] = json!(
            waiting
                .iter()
                .map(|l| json!({"login": l, "type": "User"}))
                .collect::<Vec<_>>()
        );
    });
    v["review"] = json!({
        "user": {"login": reviewer, "type": "User"}, "state": state, "body": "",
        "html_url": "https://github.com/acme/app/pull/7#pullrequestreview-1"
    });
    v
}

fn comment(by: &str, body: &str) -> Value {
    json!({
        "action": "created",
        "issue": {
            "number": 7, "title": "Cache the avatars", "html_url": "https://github.com/acme/app/pull/7",
            "user": {"login": "carol", "type": "User"}, "labels": [],
            "pull_request": {"url": "https://api.github.com/repos/acme/app/pulls/7"}
        },
        "comment": {"body": body, "html_url": "https://github.com/acme/app/pull/7#issuecomment-1", "user": {"login": by, "type": "User"}},
        "repository": {"full_name": "acme/app", "owner": {"login": "acme", "type": "Organization"}},
        "sender": {"login": by, "type": "User"}
    })
}

const MEMBERS: &str =
    "[members]\nalice = \"U0ALICE001\"\nbob = \"U0BOB00001\"\ncarol = \"U0CAROL001\"\n";

fn text(p: &Posted) -> &str {
    p.text.as_deref().unwrap_or("")
}

/// The whole life of a PR in one channel: one root, replies in event order,
/// and a final root that says merged and shows each reviewer's last state.
async fn the_life_of_a_pr_is_one_thread(database_url: Option<String>) {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = format!(
        "[notify]\nchannel = \"{CHANNEL}\"\nmerged_channel = \"{CHANNEL}\"\ndelivery = \"channel\"\nreactions = true\n\
         [slack]\nper_channel_per_sec = 50.0\nburst = 50\nretry_initial_ms = 50\nupdate_interval = \"100ms\"\n{MEMBERS}"
    );
    let mut launch = Launch::with_config(config);
    launch.database_url = database_url;
    let s = Server::start(Some(&slack), launch).await;
    let merged = pr_event("closed", "alice", |v| {
        v["pull_request"]["state"] = json!("closed");
        v["pull_request"]["merged"] = json!(true);
        v["pull_request"]["merged_by"] = json!({"login": "alice", "type": "User"});
    });
    let steps: Vec<(&str, Value)> = vec![
        ("pull_request", pr_event("opened", "carol", |_| {})),
        ("pull_request", requested("alice", &["alice"])),
        ("pull_request", requested("bob", &["alice", "bob"])),
        ("issue_comment", comment("alice", "@carol why a cache?")),
        (
            "pull_request_review",
            review("bob", "changes_requested", &["alice"]),
        ),
        ("pull_request", requested("bob", &["alice", "bob"])),
        ("pull_request_review", review("bob", "approved", &["alice"])),
        ("pull_request_review", review("alice", "approved", &[])),
        ("pull_request", merged),
    ];
    for (i, (event, payload)) in steps.iter().enumerate() {
        let (status, body) = s.deliver(event, &format!("life-{i}"), payload).await;
        assert_eq!(status, 202, "{event}: {body}");
    }
    let outbox = s.drained(Duration::from_secs(20)).await;
    assert_eq!(outbox.dead, 0, "{outbox:?}");

    let posted = slack.posted();
    let roots: Vec<&Posted> = posted.iter().filter(|p| p.thread_ts.is_none()).collect();
    assert_eq!(roots.len(), 1, "exactly one root: {posted:#?}");
    let root = roots[0];
    assert_eq!(root.channel, CHANNEL);
    let replies: Vec<&str> = posted
        .iter()
        .filter(|p| p.thread_ts.as_deref() == Some(root.ts.as_str()))
        .map(text)
        .collect();
    assert_eq!(
        replies.len(),
        posted.len() - 1,
        "all the rest in its thread"
    );
    let expected = [
        "<@U0ALICE001> :eyes: @carol requested your review",
        "<@U0BOB00001> :eyes: @carol requested your review",
        "<@U0CAROL001> :wave: @alice mentioned you",
        "<@U0CAROL001> :warning: @bob requested changes on",
        "<@U0BOB00001> :repeat: @carol re-requested your review",
        "<@U0CAROL001> :white_check_mark: @bob approved",
        "<@U0CAROL001> :white_check_mark: @alice approved",
        ":tada: <https://github.com/acme/app/pull/7|acme/app#7> merged by @alice",
    ];
    assert_eq!(replies.len(), expected.len(), "{replies:#?}");
    for (reply, start) in replies.iter().zip(expected) {
        assert!(
            reply.starts_with(start),
            "{reply:?} should start with {start:?}"
        );
    }
    assert!(
        posted.iter().all(|p| !p.reply_broadcast),
        "nothing broadcast by default"
    );

    // The root catches up with the last state (its updates are coalesced
    // and come after the replies' events).
    let final_root = |slack: &SlackDouble| {
        slack
            .posted()
            .into_iter()
            .find(|p| p.ts == root.ts)
            .map(|p| p.text.unwrap_or_default())
            .unwrap_or_default()
    };
    let want = [
        ":large_purple_circle: *Merged*",
        ":white_check_mark: @alice (approved)",
        ":white_check_mark: @bob (approved)",
    ];
    let caught_up = support::eventually(Duration::from_secs(20), || {
        let t = final_root(&slack);
        want.iter().all(|w| t.contains(w))
    })
    .await;
    assert!(caught_up, "root: {}", final_root(&slack));
    let reactions_done = support::eventually(Duration::from_secs(20), || {
        slack.reactions(CHANNEL, &root.ts)
            == vec!["tada".to_string(), "white_check_mark".to_string()]
    })
    .await;
    assert!(reactions_done, "{:?}", slack.reactions(CHANNEL, &root.ts));
    // Coalesced: fewer edits than changes (none at all when the root went
    // out after the last event, already showing the final state).
    let updates = slack.updates().len();
    assert!(
        updates < steps.len(),
        "{updates} updates for {} changes: coalesced",
        steps.len()
    );
}

#[tokio::test]
async fn the_life_of_a_pr_is_one_thread_on_sqlite() {
    the_life_of_a_pr_is_one_thread(None).await;
}

#[tokio::test]
async fn the_life_of_a_pr_is_one_thread_on_postgres() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    the_life_of_a_pr_is_one_thread(Some(db.url.clone())).await;
}

/// Held in hand with a manual clock: ten quick changes make one update,
/// always the latest state; nothing is updated before its interval; a root
/// deleted in Slack is posted again and the next reply goes under it.
async fn updates_are_coalesced_and_a_deleted_root_comes_back(store: Store) {
    let store = Arc::new(store);
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let clock = Clock::manual(1_800_000_000_000);
    let client = SlackClient::new(
        &slack.api_url(),
        Secret::new(support::TOKEN),
        Duration::from_secs(5),
    )
    .unwrap();
    let publisher = Arc::new(Publisher::Slack(client));
    let opts = SenderOptions {
        per_channel_per_sec: 100.0,
        burst: 100,
        update_interval: Duration::from_secs(2),
        reactions: true,
        ..SenderOptions::default()
    };
    let mut cfg = NotifyConfig {
        channel: Some(CHANNEL.into()),
        delivery: DeliveryMode::Channel,
        reactions: true,
        ..NotifyConfig::default()
    };
    for (login, id) in [
        ("alice", "U0ALICE001"),
        ("bob", "U0BOB00001"),
        ("carol", "U0CAROL001"),
    ] {
        cfg.members.insert(login, SlackUser::Id(id.into()));
    }
    let mut n = 0;
    let mut ingest = async |event: &str, payload: Value| {
        n += 1;
        let e = Event::parse(event, payload.to_string().as_bytes()).unwrap();
        prpr::pipeline::ingest(&store, &cfg, &format!("d{n}"), event, &e, clock.now_ms())
            .await
            .unwrap();
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sender = prpr::outbox::Sender::new(
        store.clone(),
        publisher.clone(),
        opts.clone(),
        wake.clone(),
        clock.clone(),
    );
    let sender_task = tokio::spawn(sender.run(stopped));
    let mut updater = ThreadUpdater::new(store.clone(), publisher.clone(), opts, clock.clone());

    ingest("pull_request", requested("alice", &["alice"])).await;
    wake.notify_one();
    let posted = slack.wait_for_posted(2, Duration::from_secs(10)).await;
    let root_ts = posted[0].ts.clone();
    assert_eq!(posted[1].thread_ts.as_deref(), Some(root_ts.as_str()));

    // Ten title edits in a row.
    for i in 1..=10 {
        ingest(
            "pull_request",
            pr_event("edited", "carol", |v| {
                v["pull_request"]["title"] = json!(format!("Cache the avatars, take {i}"));
                v["pull_request"]["requested_reviewers"] = json!([{"login": "alice"}]);
            }),
        )
        .await;
    }
    updater.pass().await;
    assert!(slack.updates().is_empty(), "not before the interval");
    clock.advance(Duration::from_secs(2));
    updater.pass().await;
    updater.pass().await;
    let updates = slack.updates();
    assert_eq!(updates.len(), 1, "ten changes, one update");
    assert!(
        updates[0].text.as_deref().unwrap_or("").contains("take 10"),
        "{:?}",
        updates[0].text
    );

    // Approved: the update adds the reaction.
    ingest("pull_request_review", review("alice", "approved", &[])).await;
    wake.notify_one();
    let posted = slack.wait_for_posted(3, Duration::from_secs(10)).await;
    assert!(text(&posted[2]).contains("@alice approved"), "{posted:#?}");
    assert_eq!(posted[2].thread_ts.as_deref(), Some(root_ts.as_str()));
    clock.advance(Duration::from_secs(2));
    updater.pass().await;
    assert_eq!(slack.updates().len(), 2);
    assert_eq!(
        slack.reactions(CHANNEL, &root_ts),
        vec!["white_check_mark".to_string()]
    );

    // Someone deletes the root in Slack; the next change posts it again.
    slack.delete_message(CHANNEL, &root_ts);
    ingest(
        "pull_request",
        pr_event("edited", "carol", |v| {
            v["pull_request"]["title"] = json!("Cache avatars")
        }),
    )
    .await;
    clock.advance(Duration::from_secs(2));
    updater.pass().await;
    let thread = store
        .thread_root(CHANNEL, "acme/app", 7)
        .await
        .unwrap()
        .unwrap();
    let new_root = thread.root_ts.unwrap();
    assert_ne!(new_root, root_ts, "posted again");
    assert_eq!(
        slack.reactions(CHANNEL, &new_root),
        vec!["white_check_mark".to_string()]
    );
    // The next reply goes under the new root.
    ingest("pull_request", requested("bob", &["bob"])).await;
    wake.notify_one();
    // The deleted root stays in the double's record, marked deleted.
    let all = slack.wait_for_posted(5, Duration::from_secs(10)).await;
    assert!(all[0].deleted);
    let last = all.last().unwrap();
    assert!(text(last).contains("requested your review"), "{all:#?}");
    assert_eq!(last.thread_ts.as_deref(), Some(new_root.as_str()));

    let _ = stop.send(true);
    sender_task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_coalesced_and_a_deleted_root_comes_back_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    updates_are_coalesced_and_a_deleted_root_comes_back(Store::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_coalesced_and_a_deleted_root_comes_back_on_postgres() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    updates_are_coalesced_and_a_deleted_root_comes_back(Store::connect(&db.url).await.unwrap())
        .await;
}

/// prpr restarted between a root and the next reply: the reply still goes
/// into the thread (the map is in the store, not in memory).
#[tokio::test]
async fn a_restart_between_root_and_reply_keeps_the_thread() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = format!(
        "[notify]\nchannel = \"{CHANNEL}\"\ndelivery = \"channel\"\n[slack]\nper_channel_per_sec = 50.0\nburst = 50\n{MEMBERS}"
    );
    let s = Server::start(Some(&slack), Launch::with_config(config)).await;
    assert_eq!(
        s.deliver("pull_request", "r-1", &requested("alice", &["alice"]))
            .await
            .0,
        202
    );
    s.drained(Duration::from_secs(10)).await;
    let s = s.restart().await;
    assert_eq!(
        s.deliver("pull_request", "r-2", &requested("bob", &["alice", "bob"]))
            .await
            .0,
        202
    );
    s.drained(Duration::from_secs(10)).await;
    let posted = slack.posted();
    assert_eq!(posted.len(), 3, "{posted:#?}");
    assert_eq!(posted[2].thread_ts.as_deref(), Some(posted[0].ts.as_str()));
    assert!(text(&posted[2]).contains("<@U0BOB00001>"));
}

/// `threads = false`: today's behaviour, every notice a message of its own;
/// `broadcast` sends a kind's replies to the channel too.
#[tokio::test]
async fn threads_off_and_broadcast() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = format!(
        "[notify]\nchannel = \"{CHANNEL}\"\ndelivery = \"channel\"\nthreads = false\n[slack]\nper_channel_per_sec = 50.0\nburst = 50\n{MEMBERS}"
    );
    let s = Server::start(Some(&slack), Launch::with_config(config)).await;
    s.deliver("pull_request", "o-1", &requested("alice", &["alice"]))
        .await;
    s.drained(Duration::from_secs(10)).await;
    let posted = slack.posted();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].thread_ts, None);

    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = format!(
        "[notify]\nchannel = \"{CHANNEL}\"\ndelivery = \"channel\"\nbroadcast = [\"review_submitted\"]\n[slack]\nper_channel_per_sec = 50.0\nburst = 50\n{MEMBERS}"
    );
    let s = Server::start(Some(&slack), Launch::with_config(config)).await;
    s.deliver("pull_request", "b-1", &requested("alice", &["alice"]))
        .await;
    s.deliver(
        "pull_request_review",
        "b-2",
        &review("alice", "approved", &[]),
    )
    .await;
    s.drained(Duration::from_secs(10)).await;
    let posted = slack.posted();
    assert_eq!(posted.len(), 3, "{posted:#?}");
    assert!(!posted[1].reply_broadcast, "a request is not broadcast");
    assert!(posted[2].reply_broadcast, "an approval is");
}

/// Two routes take a PR (by repository and by label), `stop` keeps a later
/// one out, and each channel gets its own thread; the reviewer's DM links to
/// the first thread.
#[tokio::test]
async fn routes_give_each_channel_its_own_thread_and_dms_link_to_it() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = format!(
        "[notify]\nchannel = \"{CHANNEL}\"\ndelivery = \"dm\"\n\
         [[routes]]\nrepos = [\"acme/*\"]\nchannel = \"C0ACME0001\"\n\
         [[routes]]\nlabels = [\"backend\"]\nchannel = \"C0BACKEND1\"\nstop = true\n\
         [[routes]]\nchannel = \"C0NEVER001\"\n\
         [slack]\nper_channel_per_sec = 50.0\nburst = 50\n{MEMBERS}"
    );
    let s = Server::start(Some(&slack), Launch::with_config(config)).await;
    let mut first = requested("alice", &["alice"]);
    first["pull_request"]["labels"] = json!([{"name": "backend"}]);
    assert_eq!(s.deliver("pull_request", "rt-1", &first).await.0, 202);
    s.drained(Duration::from_secs(10)).await;
    let mut second = requested("bob", &["alice", "bob"]);
    second["pull_request"]["labels"] = json!([{"name": "backend"}]);
    assert_eq!(s.deliver("pull_request", "rt-2", &second).await.0, 202);
    s.drained(Duration::from_secs(10)).await;

    let posted = slack.posted();
    for channel in ["C0ACME0001", "C0BACKEND1"] {
        let roots = slack.top_level(channel);
        assert_eq!(roots.len(), 1, "{channel}: {posted:#?}");
        let replies = slack.thread(channel, &roots[0].ts);
        let texts: Vec<&str> = replies.iter().map(text).collect();
        assert_eq!(texts.len(), 2, "{channel}: {texts:#?}");
        assert!(texts[0].starts_with("<@U0ALICE001> :eyes:"), "{texts:?}");
        assert!(texts[1].starts_with("<@U0BOB00001> :eyes:"), "{texts:?}");
    }
    assert!(
        posted
            .iter()
            .all(|p| p.channel != "C0NEVER001" && p.channel != CHANNEL),
        "{posted:#?}"
    );
    // DMs are single messages; the second links to the thread that exists by then.
    let dms: Vec<&Posted> = posted
        .iter()
        .filter(|p| p.channel.starts_with('U'))
        .collect();
    assert_eq!(dms.len(), 2);
    assert!(dms.iter().all(|p| p.thread_ts.is_none()));
    let root = &slack.top_level("C0ACME0001")[0];
    let link = format!(
        "https://test.slack.com/archives/C0ACME0001/p{}",
        root.ts.replace('.', "")
    );
    assert!(text(dms[1]).contains(&link), "{}", text(dms[1]));

    // What `prpr route explain` says about the same payload.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, second.to_string()).unwrap();
    let out = s.cli(&["route", "explain", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("#1 → C0ACME0001: matched"), "{stdout}");
    assert!(
        stdout.contains("#3 → C0NEVER001: skipped (an earlier route has stop = true)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("C0BACKEND1 [review_requested] thread reply: <@U0BOB00001>"),
        "{stdout}"
    );
    assert_eq!(slack.posted().len(), posted.len(), "explain sends nothing");
}

/// Without a Slack token (the README's try-out) the console shows the thread
/// too: the card, then the reply marked `↳`; and a fresh start does not log a
/// "database file was replaced" warning.
#[tokio::test]
async fn the_console_prints_the_card_then_the_reply_in_its_thread() {
    let s = Server::start(
        None,
        Launch::with_config("[notify]\nchannel = \"#reviews\"\n"),
    )
    .await;
    let (status, body) = s
        .deliver(
            "pull_request",
            "console-1",
            &support::fixture("pull_request.review_requested.user"),
        )
        .await;
    assert_eq!(
        (status, body["notifications"].as_u64()),
        (202, Some(2)),
        "{body}"
    );
    s.drained(Duration::from_secs(10)).await;
    let lines = s.console_lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with("[#reviews] *Codertocat/Hello-World#2 Update the README"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("[#reviews] ↳ @octocat :eyes: @Codertocat requested your review"),
        "{lines:#?}"
    );
    assert!(
        !s.log().iter().any(|l| l.contains("was replaced")),
        "a fresh database is not 'replaced'"
    );
}
