//! Reminders, held in hand with a manual clock: scheduled digests through
//! the outbox to the Slack double, every slot once (also with three stores
//! on one PostgreSQL database), grace after downtime, daylight-saving
//! nights, personal reminders, quiet hours holding DMs then summarising
//! them, snooze, and the `/prpr` slash command's signing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use prpr::clock::Clock;
use prpr::config::{Config, DeliveryMode, LocalTime, Personal, Schedule, Secret, SlackUser, Zone};
use prpr::github::Event;
use prpr::intake::{self, Intake, commands::Commands};
use prpr::outbox::SenderOptions;
use prpr::reminders::Scheduler;
use prpr::slack::Publisher;
use prpr::slack::client::SlackClient;
use prpr::store::Store;
use serde_json::{Value, json};
use sha2::Sha256;
use testkit::slack::{Posted, SlackConfig, SlackDouble};
use tokio::sync::{Notify, watch};

use crate::support::{self, eventually};

const DIGEST_CHANNEL: &str = "C0BACKEND1";
const ALICE: &str = "U0ALICE001";
const BOB: &str = "U0BOB00001";
const SIGNING_SECRET: &str = "0123456789abcdef0123456789abcdef";

fn ms(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_millisecond()
}

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.notify.delivery = DeliveryMode::Dm;
    for (login, id) in [("alice", ALICE), ("bob", BOB), ("carol", "U0CAROL001")] {
        cfg.notify.members.insert(login, SlackUser::Id(id.into()));
    }
    cfg.slack.signing_secret = Some(Secret::new(SIGNING_SECRET));
    cfg
}

fn schedule(times: &[&str], zone: &str) -> Schedule {
    let mut s = Schedule::new("backend-morning", DIGEST_CHANNEL);
    s.times = times.iter().map(|t| LocalTime::parse(t).unwrap()).collect();
    s.timezone = Zone::parse(zone).unwrap();
    s.days = vec![
        jiff::civil::Weekday::Monday,
        jiff::civil::Weekday::Tuesday,
        jiff::civil::Weekday::Wednesday,
        jiff::civil::Weekday::Thursday,
        jiff::civil::Weekday::Friday,
        jiff::civil::Weekday::Saturday,
        jiff::civil::Weekday::Sunday,
    ];
    s
}

/// An `opened` pull request with its review requests, as GitHub shapes it.
fn opened(repo: &str, number: u64, reviewers: &[&str], teams: &[&str], created: &str) -> Value {
    json!({
        "action": "opened",
        "number": number,
        "pull_request": {
            "number": number, "title": format!("Change {number} <!channel>"),
            "html_url": format!("https://github.com/{repo}/pull/{number}"),
            "user": {"login": "carol", "type": "User"}, "draft": false, "state": "open", "merged": false,
            "requested_reviewers": reviewers.iter().map(|l| json!({"login": l, "type": "User"})).collect::<Vec<_>>(),
            "requested_teams": teams.iter().map(|t| json!({"slug": t})).collect::<Vec<_>>(),
            "labels": [], "base": {"ref": "main"},
            "created_at": created, "updated_at": created
        },
        "repository": {"full_name": repo, "owner": {"login": "acme", "type": "Organization"}},
        "sender": {"login": "carol", "type": "User"}
    })
}

/// A review request to `reviewer` (a DM to them with DM delivery).
fn requested(repo: &str, number: u64, reviewer: &str) -> Value {
    let mut v = opened(repo, number, &[reviewer], &[], "2026-03-01T00:00:00Z");
    v["action"] = json!("review_requested");
    v["requested_reviewer"] = json!({"login": reviewer, "type": "User"});
    v
}

async fn ingest(store: &Store, cfg: &Config, id: &str, event: &str, payload: Value, now: i64) {
    let e = Event::parse(event, payload.to_string().as_bytes()).unwrap();
    prpr::pipeline::ingest(store, &cfg.notify, id, event, &e, now)
        .await
        .unwrap();
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<Store> {
    let url = format!("sqlite://{}", dir.path().join("prpr.db").display());
    Arc::new(Store::connect(&url).await.unwrap())
}

/// A sender on `store` to the Slack double, polling often (the manual clock
/// moves without waking it).
fn start_sender(
    store: &Arc<Store>,
    slack: &SlackDouble,
    clock: &Clock,
) -> (Arc<Notify>, watch::Sender<bool>) {
    let client = SlackClient::new(
        &slack.api_url(),
        Secret::new(support::TOKEN),
        Duration::from_secs(5),
    )
    .unwrap();
    let opts = SenderOptions {
        per_channel_per_sec: 100.0,
        burst: 100,
        poll: Duration::from_millis(25),
        ..SenderOptions::default()
    };
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let sender = prpr::outbox::Sender::new(
        store.clone(),
        Arc::new(Publisher::Slack(client)),
        opts,
        wake.clone(),
        clock.clone(),
    );
    tokio::spawn(sender.run(stopped));
    (wake, stop)
}

fn to(slack: &SlackDouble, channel: &str) -> Vec<Posted> {
    slack
        .posted()
        .into_iter()
        .filter(|p| p.channel == channel)
        .collect()
}

fn blocks_text(p: &Posted) -> String {
    p.blocks.as_ref().map(|b| b.to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_digest_is_sent_once_through_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    // Monday 2026-03-02 08:00 Tokyo.
    let clock = Clock::manual(ms("2026-03-01T23:00:00Z"));
    let mut cfg = config();
    let mut s = schedule(&["09:30"], "Asia/Tokyo");
    s.repos = vec![prpr::config::Glob::new("acme/*").unwrap()];
    cfg.reminders.schedules = vec![s];
    ingest(
        &store,
        &cfg,
        "d1",
        "pull_request",
        opened("acme/api", 1, &["alice"], &[], "2026-02-27T00:00:00Z"),
        clock.now_ms(),
    )
    .await;
    ingest(
        &store,
        &cfg,
        "d2",
        "pull_request",
        opened(
            "acme/web",
            2,
            &["bob"],
            &["backend"],
            "2026-02-28T00:00:00Z",
        ),
        clock.now_ms(),
    )
    .await;
    ingest(
        &store,
        &cfg,
        "d3",
        "pull_request",
        opened("other/x", 3, &["bob"], &[], "2026-02-28T00:00:00Z"),
        clock.now_ms(),
    )
    .await;
    let (wake, _stop) = start_sender(&store, &slack, &clock);
    let scheduler = Scheduler::new(store.clone(), Arc::new(cfg), clock.clone(), wake.clone());

    // Yesterday's slot fell due before this prpr ran: recorded as skipped.
    let first = scheduler.tick().await.unwrap();
    assert!(
        first
            .iter()
            .all(|f| f.outcome == "skipped" && f.slot.date == "2026-03-01"),
        "{first:?}"
    );
    assert!(
        scheduler.tick().await.unwrap().is_empty(),
        "not due before 09:30"
    );
    clock.advance(Duration::from_secs(91 * 60)); // 09:31 Tokyo
    let fired = scheduler.tick().await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].outcome, "queued");
    assert_eq!(fired[0].slot.date, "2026-03-02");
    assert!(
        scheduler.tick().await.unwrap().is_empty(),
        "a slot fires once"
    );

    assert!(
        eventually(Duration::from_secs(10), || to(&slack, DIGEST_CHANNEL).len()
            == 1)
        .await
    );
    let digest = &to(&slack, DIGEST_CHANNEL)[0];
    let blocks = blocks_text(digest);
    assert!(
        blocks.contains("acme/api") && blocks.contains("acme/web"),
        "{blocks}"
    );
    assert!(!blocks.contains("other/x"), "repos filter: {blocks}");
    assert!(
        blocks.contains("<@U0ALICE001>") && blocks.contains("<@U0BOB00001>"),
        "{blocks}"
    );
    assert!(
        blocks.contains("&lt;!channel&gt;") && !blocks.contains("<!channel>"),
        "escaped: {blocks}"
    );
    assert!(blocks.contains("3d old"), "age: {blocks}");

    // The same moment a day later with the PRs merged: an empty slot
    // sends nothing.
    clock.advance(Duration::from_secs(24 * 3600));
    for (i, (repo, n)) in [("acme/api", 1), ("acme/web", 2)].into_iter().enumerate() {
        let mut v = opened(repo, n, &[], &[], "2026-02-27T00:00:00Z");
        v["action"] = json!("closed");
        v["pull_request"]["state"] = json!("closed");
        v["pull_request"]["merged"] = json!(true);
        ingest(
            &store,
            &config(),
            &format!("m{i}"),
            "pull_request",
            v,
            clock.now_ms(),
        )
        .await;
    }
    let fired = scheduler.tick().await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].outcome, "empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_missed_while_down_is_sent_within_grace_and_skipped_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let mut cfg = config();
    cfg.reminders.schedules = vec![schedule(&["09:00", "12:00"], "UTC")];
    cfg.reminders.grace = Duration::from_secs(30 * 60);
    ingest(
        &store,
        &cfg,
        "d1",
        "pull_request",
        opened("acme/api", 1, &["alice"], &[], "2026-03-01T00:00:00Z"),
        ms("2026-03-02T00:00:00Z"),
    )
    .await;
    // prpr comes back at 12:20: 09:00 is 3 h 20 late (skipped), 12:00 is 20 min late (sent).
    let clock = Clock::manual(ms("2026-03-02T12:20:00Z"));
    let scheduler = Scheduler::new(
        store.clone(),
        Arc::new(cfg),
        clock.clone(),
        Arc::new(Notify::new()),
    );
    let fired = scheduler.tick().await.unwrap();
    let outcomes: Vec<(&str, &str, &str)> = fired
        .iter()
        .map(|f| (f.slot.date.as_str(), f.slot.time.as_str(), f.outcome))
        .collect();
    assert!(
        outcomes.contains(&("2026-03-02", "09:00", "skipped")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("2026-03-02", "12:00", "queued")),
        "{outcomes:?}"
    );
    let digests = store
        .list(false, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "reminder")
        .count();
    assert_eq!(digests, 1, "only the 12:00 digest was queued");
    assert!(scheduler.tick().await.unwrap().is_empty());
}

/// Europe/Berlin: 02:30 does not exist on 29 March 2026 and happens twice on
/// 25 October. Ticking every five minutes through both nights, each local
/// date's slot fires once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daylight_saving_nights_neither_skip_nor_double_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let mut cfg = config();
    cfg.reminders.schedules = vec![schedule(&["02:30"], "Europe/Berlin")];
    ingest(
        &store,
        &cfg,
        "d1",
        "pull_request",
        opened("acme/api", 1, &["alice"], &[], "2026-03-01T00:00:00Z"),
        ms("2026-03-01T00:00:00Z"),
    )
    .await;
    for (from, to, date) in [
        ("2026-03-28T23:00:00Z", "2026-03-29T04:00:00Z", "2026-03-29"),
        ("2026-10-24T22:00:00Z", "2026-10-25T04:00:00Z", "2026-10-25"),
    ] {
        let clock = Clock::manual(ms(from));
        let scheduler = Scheduler::new(
            store.clone(),
            Arc::new(cfg.clone()),
            clock.clone(),
            Arc::new(Notify::new()),
        );
        // The day before's slot is long past grace: claimed as skipped first.
        let mut fired_on_date = Vec::new();
        while clock.now_ms() <= ms(to) {
            for f in scheduler.tick().await.unwrap() {
                if f.slot.date == date {
                    fired_on_date.push((f.slot.due_at, f.outcome));
                }
            }
            clock.advance(Duration::from_secs(300));
        }
        assert_eq!(fired_on_date.len(), 1, "{date}: {fired_on_date:?}");
        assert_eq!(fired_on_date[0].1, "queued");
    }
    let slots = store.slot_outcomes("backend-morning").await.unwrap();
    let spring = slots.iter().filter(|s| s.0 == "2026-03-29").count();
    let autumn = slots.iter().filter(|s| s.0 == "2026-10-25").count();
    assert_eq!((spring, autumn), (1, 1), "{slots:?}");
}

/// Three prpr tasks (three `Store`s, three schedulers) on one PostgreSQL
/// database tick at the same moments: every slot is queued exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres_fire_each_slot_exactly_once() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    let mut cfg = config();
    cfg.reminders.schedules = vec![schedule(&["09:00", "09:30", "10:00"], "UTC")];
    let cfg = Arc::new(cfg);
    let clock = Clock::manual(ms("2026-03-02T08:55:00Z"));
    let mut schedulers = Vec::new();
    for _ in 0..3 {
        let store = Arc::new(Store::connect(&db.url).await.unwrap());
        schedulers.push(Scheduler::new(
            store,
            cfg.clone(),
            clock.clone(),
            Arc::new(Notify::new()),
        ));
    }
    let store = Store::connect(&db.url).await.unwrap();
    ingest(
        &store,
        &cfg,
        "d1",
        "pull_request",
        opened("acme/api", 1, &["alice"], &[], "2026-03-01T00:00:00Z"),
        clock.now_ms(),
    )
    .await;
    let before = store.outbox_counts().await.unwrap().pending;
    let schedulers = Arc::new(schedulers);
    let mut fired_total = 0;
    for _ in 0..16 {
        clock.advance(Duration::from_secs(5 * 60));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let s = schedulers.clone();
            tasks.push(tokio::spawn(async move { s[i].tick().await.unwrap() }));
        }
        for t in tasks {
            fired_total += t
                .await
                .unwrap()
                .iter()
                .filter(|f| f.slot.date == "2026-03-02")
                .count();
        }
    }
    assert_eq!(fired_total, 3, "three slots, each fired by one instance");
    assert_eq!(store.outbox_counts().await.unwrap().pending - before, 3);
    let today: Vec<_> = store
        .slot_outcomes("backend-morning")
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.0 == "2026-03-02")
        .collect();
    assert_eq!(today.len(), 3, "{today:?}");
    assert!(today.iter().all(|s| s.2 == "queued"), "{today:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_reminders_list_direct_and_team_requests_and_nothing_when_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let clock = Clock::manual(ms("2026-03-02T07:00:00Z")); // Monday, 08:00 Berlin
    let mut cfg = config();
    cfg.notify.delivery = DeliveryMode::Channel; // review requests not DMed: only reminders reach DMs
    cfg.notify.channel = Some("C0GENERAL1".into());
    let personal = |login: &str, teams: &[&str]| Personal {
        login: login.into(),
        days: prpr::config::reminders::WEEKDAYS.to_vec(),
        times: vec![LocalTime::parse("09:00").unwrap()],
        timezone: Zone::parse("Europe/Berlin").unwrap(),
        teams: teams.iter().map(|t| t.to_string()).collect(),
        ignore_drafts: true,
    };
    cfg.reminders.personal = vec![personal("alice", &["acme/backend"]), personal("bob", &[])];
    let now = clock.now_ms();
    ingest(
        &store,
        &cfg,
        "d1",
        "pull_request",
        opened("acme/api", 1, &["alice"], &[], "2026-02-20T00:00:00Z"),
        now,
    )
    .await;
    ingest(
        &store,
        &cfg,
        "d2",
        "pull_request",
        opened("acme/web", 2, &[], &["backend"], "2026-02-10T00:00:00Z"),
        now,
    )
    .await;
    ingest(
        &store,
        &cfg,
        "d3",
        "pull_request",
        opened("acme/web", 3, &["carol"], &[], "2026-02-01T00:00:00Z"),
        now,
    )
    .await;
    let (wake, _stop) = start_sender(&store, &slack, &clock);
    let scheduler = Scheduler::new(store.clone(), Arc::new(cfg), clock.clone(), wake);
    clock.advance(Duration::from_secs(3600));
    let fired = scheduler.tick().await.unwrap();
    let mut outcomes: Vec<(String, &str)> = fired
        .iter()
        .map(|f| (f.slot.schedule.clone(), f.outcome))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec![
            (format!("personal:{ALICE}"), "queued"),
            (format!("personal:{BOB}"), "empty")
        ]
    );
    assert!(eventually(Duration::from_secs(10), || to(&slack, ALICE).len() == 1).await);
    let dm = blocks_text(&to(&slack, ALICE)[0]);
    assert!(dm.contains("pull/1|#1"), "a direct request: {dm}");
    assert!(dm.contains("pull/2|#2"), "a request to alice's team: {dm}");
    assert!(!dm.contains("pull/3|"), "{dm}");
    assert!(
        to(&slack, BOB).is_empty(),
        "nothing is sent when nothing waits"
    );
}

/// Quiet hours set with `/prpr quiet`: DMs are held (kept in the outbox) and
/// arrive as one summary when quiet hours end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_dms_then_send_one_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let clock = Clock::manual(ms("2026-03-02T20:00:00Z"));
    let cfg = config();
    let quiet = prpr::reminders::prefs::Quiet::parse("19:00-09:00", Some("UTC")).unwrap();
    store
        .set_quiet(ALICE, Some(&quiet), clock.now_ms())
        .await
        .unwrap();
    let (wake, _stop) = start_sender(&store, &slack, &clock);
    ingest(
        &store,
        &cfg,
        "d1",
        "pull_request",
        requested("acme/api", 1, "alice"),
        clock.now_ms(),
    )
    .await;
    ingest(
        &store,
        &cfg,
        "d2",
        "pull_request",
        requested("acme/web", 2, "alice"),
        clock.now_ms(),
    )
    .await;
    ingest(
        &store,
        &cfg,
        "d3",
        "pull_request",
        requested("acme/web", 3, "bob"),
        clock.now_ms(),
    )
    .await;
    wake.notify_one();
    // Bob has no quiet hours: his DM goes; by then Alice's head was looked
    // at in the same pass and held.
    assert!(eventually(Duration::from_secs(10), || to(&slack, BOB).len() == 1).await);
    let held = async || {
        let rows = store.list(false, 100).await.unwrap();
        rows.iter()
            .filter(|r| r.channel == ALICE && r.last_error.as_deref() == Some(prpr::store::HELD))
            .count()
    };
    crate::support::eventually_async(Duration::from_secs(10), async || held().await >= 2).await;
    assert_eq!(held().await, 2, "both of Alice's DMs are held");
    assert!(to(&slack, ALICE).is_empty());
    assert_eq!(
        store.outbox_counts().await.unwrap().pending,
        2,
        "kept, not dropped"
    );

    // 09:00 the next morning.
    clock.advance(Duration::from_secs(13 * 3600));
    wake.notify_one();
    assert!(eventually(Duration::from_secs(10), || to(&slack, ALICE).len() == 1).await);
    let summary = &to(&slack, ALICE)[0];
    let text = summary.text.clone().unwrap_or_default();
    assert!(text.contains("quiet hours (2 messages)"), "{text}");
    assert!(
        text.contains("acme/api#1") && text.contains("acme/web#2"),
        "{text}"
    );
    crate::support::eventually_async(Duration::from_secs(10), async || {
        store.outbox_counts().await.unwrap().pending == 0
    })
    .await;
    assert_eq!(store.outbox_counts().await.unwrap().pending, 0);
    assert_eq!(
        to(&slack, ALICE).len(),
        1,
        "one summary, not one message each"
    );
}

fn sign(ts: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

async fn command_server(store: Arc<Store>, cfg: Config, clock: Clock) -> String {
    command_server_acking(store, cfg, clock, prpr::intake::commands::ACK_AFTER).await
}

/// A command endpoint whose answers go to `response_url` when not ready
/// within `ack_after` (zero: always).
async fn command_server_acking(
    store: Arc<Store>,
    cfg: Config,
    clock: Clock,
    ack_after: Duration,
) -> String {
    let cfg = Arc::new(cfg);
    let intake = Arc::new(Intake {
        store,
        notify: Arc::new(cfg.notify.clone()),
        ops: Arc::new(Default::default()),
        verifier: None,
        wake: Arc::new(Notify::new()),
        clock,
        guards: Default::default(),
        health: Default::default(),
        commands: Commands::from_config(cfg)
            .map(|c| c.ack_after(ack_after))
            .map(Arc::new),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, intake::router(intake)).await });
    format!("http://{addr}/slack/commands")
}

async fn post(url: &str, ts: i64, sig: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn form(user: &str, text: &str) -> String {
    form_to(user, text, "https://hooks.slack.com/commands/T1/1/x")
}

fn form_to(user: &str, text: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("command", "/prpr"),
        ("text", text),
        ("user_id", user),
        ("response_url", response_url),
    ])
    .unwrap()
}

/// An answer not ready in time (here: never in time, `ack_after` zero) is
/// acknowledged at once and posted to the command's `response_url`; a
/// `response_url` that is not Slack's is never posted to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_arrives_through_response_url() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let clock = Clock::manual(ms("2026-03-02T10:00:00Z"));
    let mut cfg = config();
    cfg.slack.api_url = slack.api_url();
    ingest(
        &store,
        &cfg,
        "d1",
        "pull_request",
        opened("acme/api", 7, &["alice"], &[], "2026-03-01T00:00:00Z"),
        clock.now_ms(),
    )
    .await;
    let url = command_server_acking(store, cfg, clock.clone(), Duration::ZERO).await;
    let now = clock.now_ms() / 1000;

    let body = form_to(ALICE, "pending", &slack.response_url("1"));
    let (status, reply) = post(&url, now, &sign(now, &body), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(
        reply["text"].as_str().unwrap().contains("Working on it"),
        "{reply}"
    );
    let late = slack.wait_for_responses(1, Duration::from_secs(10)).await;
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].body["response_type"], "ephemeral");
    let blocks = late[0].body["blocks"].to_string();
    assert!(
        blocks.contains("acme/api") && blocks.contains("/pull/7"),
        "{}",
        late[0].body
    );
    assert!(late[0].body["text"].is_string());

    // Not Slack's host: answered inline, nothing posted there.
    let body = form_to(ALICE, "help", "https://hooks.example.com/commands/T1/1/x");
    let (status, reply) = post(&url, now, &sign(now, &body), &body).await;
    assert_eq!(status, 200);
    assert!(
        reply["text"].as_str().unwrap().contains("/prpr pending"),
        "{reply}"
    );
    assert_eq!(slack.responses().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_command_signing_good_bad_stale_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = Clock::manual(ms("2026-03-02T10:00:00Z"));
    let url = command_server(store, config(), clock.clone()).await;
    let now = clock.now_ms() / 1000;
    let body = form(ALICE, "help");

    let (status, reply) = post(&url, now, &sign(now, &body), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(reply["text"].as_str().unwrap().contains("/prpr pending"));

    let (status, reply) = post(&url, now, &sign(now, &body), &body).await;
    assert_eq!(status, 401, "replayed");
    assert!(
        reply["error"].as_str().unwrap().contains("replayed"),
        "{reply}"
    );

    let other = form(ALICE, "pending");
    let (status, reply) = post(&url, now, &sign(now, &body), &other).await;
    assert_eq!(status, 401, "a signature of another body");
    assert!(
        reply["error"].as_str().unwrap().contains("does not match"),
        "{reply}"
    );

    let stale = now - 301;
    let (status, reply) = post(&url, stale, &sign(stale, &other), &other).await;
    assert_eq!(status, 401, "stale");
    assert!(
        reply["error"].as_str().unwrap().contains("5 minutes"),
        "{reply}"
    );

    let (status, _) = post(&url, now, "v0=nothex", &other).await;
    assert_eq!(status, 401);
}

/// `/prpr snooze` hides a PR from that person's reminders (and `pending`)
/// until it runs out; other people's reminders still list it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snooze_from_slack_hides_a_pr_from_reminders_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let clock = Clock::manual(ms("2026-03-02T10:00:00Z"));
    let cfg = config();
    ingest(
        &store,
        &cfg,
        "d1",
        "pull_request",
        opened(
            "acme/api",
            1,
            &["alice", "bob"],
            &[],
            "2026-03-01T00:00:00Z",
        ),
        clock.now_ms(),
    )
    .await;
    ingest(
        &store,
        &cfg,
        "d2",
        "pull_request",
        opened("acme/api", 2, &["alice"], &[], "2026-03-01T01:00:00Z"),
        clock.now_ms(),
    )
    .await;
    let url = command_server(store.clone(), cfg.clone(), clock.clone()).await;
    let send = async |text: &str| {
        let now = clock.now_ms() / 1000;
        let body = form(ALICE, text);
        post(&url, now, &sign(now, &body), &body).await
    };
    let (status, reply) = send("snooze https://github.com/acme/api/pull/1 1d").await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["text"].as_str().unwrap().contains("acme/api#1"),
        "{reply}"
    );

    let (_, reply) = send("pending").await;
    let shown = reply["blocks"].to_string();
    assert!(
        shown.contains("pull/2|#2") && !shown.contains("pull/1|#1"),
        "{shown}"
    );

    // Alice's and Bob's personal reminders a moment later.
    let plan = |login: &str, id: &str| prpr::reminders::PersonalPlan {
        user_id: id.into(),
        login: login.into(),
        teams: vec![],
        days: vec![],
        times: vec![],
        zone: Zone::utc(),
        ignore_drafts: true,
    };
    let numbers = async |login: &str, id: &str| {
        let now = clock.now_ms();
        let cards = store.open_cards().await.unwrap();
        let snoozes = store.snoozes(now).await.unwrap();
        let notes =
            prpr::reminders::personal_notifications(&plan(login, id), &cfg, &cards, &snoozes, now);
        let text: String = notes
            .iter()
            .map(|n| prpr::slack::render::render(&n.address, &n.notice).text)
            .collect();
        (text.contains("pull/1|#1"), text.contains("pull/2|#2"))
    };
    assert_eq!(numbers("alice", ALICE).await, (false, true));
    assert_eq!(
        numbers("bob", BOB).await,
        (true, false),
        "only Alice snoozed it"
    );
    clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(
        numbers("alice", ALICE).await,
        (true, true),
        "the snooze ran out"
    );

    // The other commands answer, and store what they set.
    let (_, reply) = send("quiet 19:00-09:00 Asia/Tokyo").await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("Quiet hours 19:00–09:00"),
        "{reply}"
    );
    let (_, reply) = send("remind 09:15 Europe/Berlin").await;
    assert!(reply["text"].as_str().unwrap().contains("09:15"), "{reply}");
    let prefs = store.user_prefs(ALICE).await.unwrap();
    assert!(prefs.quiet.is_some() && prefs.remind.is_some());
    let (_, reply) = send("remind 9am").await;
    assert!(
        reply["text"].as_str().unwrap().contains("not a time"),
        "{reply}"
    );
    let (_, reply) = send("quiet off").await;
    assert!(reply["text"].as_str().unwrap().contains("off"), "{reply}");
    assert!(store.user_prefs(ALICE).await.unwrap().quiet.is_none());
}

/// 300 open PRs over 12 repositories, through the store: every PR listed,
/// several messages, none over 50 blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_pr_digest_over_12_repositories_is_split_within_50_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let cfg = config();
    for i in 0..300u64 {
        let repo = format!("acme/repo-{:02}", i % 12);
        ingest(
            &store,
            &cfg,
            &format!("d{i}"),
            "pull_request",
            opened(&repo, i + 1, &["alice"], &[], "2026-03-01T00:00:00Z"),
            ms("2026-03-02T00:00:00Z"),
        )
        .await;
    }
    let s = schedule(&["09:00"], "UTC");
    let notes = prpr::reminders::build_schedule(&store, &cfg, &s, ms("2026-03-02T09:00:00Z"))
        .await
        .unwrap();
    assert!(notes.len() >= 7, "{} messages", notes.len());
    let mut listed = 0;
    for n in &notes {
        let m = prpr::slack::render::render(&n.address, &n.notice);
        let blocks = m.blocks.as_array().unwrap();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        listed += m.blocks.to_string().matches("|#").count();
    }
    assert_eq!(listed, 300);
}
