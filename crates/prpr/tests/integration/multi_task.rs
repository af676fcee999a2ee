//! Several tasks, proven: three `prpr serve` processes on one PostgreSQL
//! database, one of them killed with `kill -9` and restarted, while Slack
//! fails some sends. Every notification reaches Slack exactly once, nothing
//! stays pending, catch-up redelivers exactly what the killed task dropped,
//! and every reminder slot's digest goes out once.
//!
//! The kill lands while Slack answers 503 to every send and after every
//! message Slack accepted is recorded as sent: the one moment at-least-once
//! delivery may duplicate (Slack said ok, the task died before writing it
//! down) is then empty, so "exactly once" is what prpr must achieve.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::github::{GitHubDouble, HookRef};
use testkit::slack::{Fault, SlackConfig, SlackDouble};

use crate::support::{
    self, HOOK_EVENTS, Launch, SECRET, Server, client, eventually, eventually_async, free_port,
    members, post, post_text, posted_counts, request,
};

const GH_TOKEN: &str = "ghp_multitask_test";
/// Fast retries, no pacing below what the double allows, a short timeout.
const SLACK: &str = "[slack]\nper_channel_per_sec = 100.0\nburst = 100\nretry_initial_ms = 50\nretry_max_ms = 200\nmax_attempts = 1000\ntimeout_secs = 5\n";

/// Deliveries in the stream: `PRPR_MULTITASK_DELIVERIES`, default 1,200.
/// Why not 5,000: on 2 cores shared with other builds, a debug build moved
/// 25–35 deliveries a second through the three tasks (each waits on the
/// others and on PostgreSQL; none was busy), so 5,000 took about three
/// minutes; 1,200 keep the test within a minute and still put hundreds of
/// deliveries through the kill. On a quiet machine, set 5000.
fn deliveries() -> usize {
    std::env::var("PRPR_MULTITASK_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1200)
}
/// Reviewers the review requests rotate over: one DM channel each.
const REVIEWERS: usize = 250;
/// Requests in flight at once (each to its instance).
const CONCURRENCY: usize = 64;

/// `launch` on `port` of the shared database, with GitHub (catch-up) set up.
fn launch(config: &str, port: u16, db: &str, gh: Option<(&GitHubDouble, &str)>) -> Launch {
    let mut env = vec![("PORT".to_string(), port.to_string())];
    if let Some((gh, hook_url)) = gh {
        env.extend([
            ("GITHUB_TOKEN".to_string(), GH_TOKEN.to_string()),
            ("GITHUB_API_URL".to_string(), gh.api_url()),
            ("PRPR_WEBHOOK_URL".to_string(), hook_url.to_string()),
        ]);
    }
    Launch {
        env,
        database_url: Some(db.to_string()),
        ..Launch::with_config(config)
    }
}

/// Starts three tasks at once (each on its own port).
async fn start_three(slack: &SlackDouble, launches: [Launch; 3]) -> [Server; 3] {
    let [a, b, c] = launches;
    let (a, b, c) = tokio::join!(
        Server::start(Some(slack), a),
        Server::start(Some(slack), b),
        Server::start(Some(slack), c)
    );
    [a, b, c]
}

/// Waits until every message Slack accepted is recorded as sent, while Slack
/// answers 503 to every new send: no task is between Slack's "ok" and its
/// own record of it, so a kill now cannot cause a second post.
async fn settle_before_kill(slack: &SlackDouble, s: &Server) {
    slack.set_fault(Fault::Status(503));
    let settled = eventually_async(Duration::from_secs(15), async || {
        s.outbox().await.sent == slack.posted().len() as i64
    })
    .await;
    assert!(
        settled,
        "Slack's answers were never all recorded as sent: {:?} vs {} posted",
        s.outbox().await,
        slack.posted().len()
    );
}

/// How fast things go, for a failure message: the task's delivery latency
/// (median, 90th percentile, max), Slack's posts, the catch-up passes.
fn pace(s: &Server, slack: &SlackDouble) -> String {
    let mut ms: Vec<f64> = s
        .log_events("delivery")
        .iter()
        .filter_map(|l| l["latency_ms"].as_f64())
        .collect();
    ms.sort_by(f64::total_cmp);
    let q = |f: f64| {
        ms.get((ms.len() as f64 * f) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    format!(
        "{} deliveries at this task, latency ms p50 {:.0} p90 {:.0} max {:.0}; {} posted to Slack; {} catch-up passes",
        ms.len(),
        q(0.5),
        q(0.9),
        ms.last().copied().unwrap_or(0.0),
        slack.posted().len(),
        s.log_events("catch-up pass").len()
    )
}

/// One attempt of the stream: delivery `i` (GUID `mt-{i:05}`) and what
/// became of it (`None`: no answer).
#[derive(Debug, Clone, Copy)]
struct Attempt {
    i: usize,
    status: Option<u16>,
    /// How long the sender waited for the answer.
    ms: u64,
}

fn guid(i: usize) -> String {
    format!("mt-{i:05}")
}

/// The DM delivery `i` notifies: a review request for `r{i % REVIEWERS}` on
/// PR `10000 + i`, so each delivery has its own (channel, PR).
fn expected(i: usize) -> (String, u64) {
    (format!("U0R{:05}", i % REVIEWERS), 10_000 + i as u64)
}

/// Plays GitHub: delivery `i` goes to instance `i % 3`; one in ten is sent
/// again at the same time (same GUID) to the next instance. Each attempt is
/// recorded in the GitHub double, as GitHub would show it (2xx, the 5xx, or
/// 0 for no answer), once both are answered (GitHub's list shows a delivery
/// when it is done).
async fn stream(
    bases: [String; 3],
    gh: GitHubDouble,
    hook: HookRef,
    done: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Attempt>>>,
) {
    // Bodies are made from one serialized review request (parsing the
    // 30 kB fixture per delivery cost the test more CPU than prpr spent).
    const LOGIN: &str = "\"login\":\"r_reviewer_\"";
    const NUMBER: &str = "\"number\":999999999";
    let template = Arc::new(request("r_reviewer_", 999_999_999).to_string());
    assert_eq!(template.matches(LOGIN).count(), 1);
    assert_eq!(template.matches(NUMBER).count(), 1);
    let total = deliveries();
    let next = Arc::new(AtomicUsize::new(0));
    let bases = Arc::new(bases);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (next, bases, gh, hook, done, log, template) = (
            next.clone(),
            bases.clone(),
            gh.clone(),
            hook.clone(),
            done.clone(),
            log.clone(),
            template.clone(),
        );
        workers.spawn(async move {
            let http = client();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    break;
                }
                let (_, number) = expected(i);
                let body = template
                    .replace(LOGIN, &format!("\"login\":\"r{}\"", i % REVIEWERS))
                    .replace(NUMBER, &format!("\"number\":{number}"));
                let guid = guid(i);
                let t = Instant::now();
                let first = post_text(&http, &bases[i % 3], &guid, body.clone());
                let statuses = if i % 10 == 0 {
                    let again = post_text(&http, &bases[(i + 1) % 3], &guid, body.clone());
                    let (a, b) = tokio::join!(first, again);
                    vec![a.0, b.0]
                } else {
                    vec![first.await.0]
                };
                for (n, status) in statuses.iter().enumerate() {
                    gh.record_delivery(
                        &hook,
                        &guid,
                        "pull_request",
                        Some("review_requested"),
                        &body,
                        status.unwrap_or(0),
                        n > 0,
                    );
                }
                log.lock()
                    .unwrap()
                    .extend(statuses.into_iter().map(|status| Attempt {
                        i,
                        status,
                        ms: t.elapsed().as_millis() as u64,
                    }));
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while let Some(w) = workers.join_next().await {
        w.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tasks_a_stream_of_deliveries_kill9_and_catch_up_post_each_notification_once() {
    let _heavy = support::heavy().await;
    let Some(pg) = support::postgres_db().await else {
        return;
    };
    let started = Instant::now();
    let total = deliveries();
    let slack = SlackDouble::start(SlackConfig::default()).await;
    // Slack answers about one send in 29 with 429 + Retry-After and one in
    // 31 with a 503.
    slack.fail_every(
        29,
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    slack.fail_every(31, Fault::Status(503));
    let gh = GitHubDouble::start(GH_TOKEN).await;
    let ports = [free_port(), free_port(), free_port()];
    // The hook points at task A (the load balancer, in production), which
    // is never killed; every task runs catch-up (one pass at a time).
    let hook_url = format!("http://127.0.0.1:{}/webhook", ports[0]);
    let hook = HookRef::Repo {
        repo: "acme/app".into(),
        id: gh.add_hook_with_secret("acme/app", &hook_url, SECRET, &HOOK_EVENTS),
    };
    let config = members(
        REVIEWERS,
        &format!("{SLACK}[github]\nrepos = [\"acme/app\"]\ncatch_up_interval = \"2s\"\n"),
    );
    let [a, b, c] = start_three(
        &slack,
        ports.map(|p| launch(&config, p, &pg.url, Some((&gh, &hook_url)))),
    )
    .await;
    let bases = [a.base.clone(), b.base.clone(), c.base.clone()];
    let up = started.elapsed();

    let done = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let sender = tokio::spawn(stream(
        bases,
        gh.clone(),
        hook.clone(),
        done.clone(),
        log.clone(),
    ));
    let at = |n: usize| {
        let done = done.clone();
        move || done.load(Ordering::SeqCst) >= n
    };
    assert!(
        eventually(Duration::from_secs(40), at(total * 2 / 5)).await,
        "the stream stalled at {}; {}; sender waited ms {:?}",
        done.load(Ordering::SeqCst),
        pace(&a, &slack),
        {
            let mut ms: Vec<u64> = log.lock().unwrap().iter().map(|a| a.ms).collect();
            ms.sort_unstable();
            [ms.len() / 2, ms.len() * 9 / 10, ms.len().saturating_sub(1)]
                .map(|i| ms.get(i).copied().unwrap_or(0))
        }
    );
    settle_before_kill(&slack, &a).await;
    let mut b = b;
    b.kill9().await;
    let killed = (started.elapsed(), done.load(Ordering::SeqCst));
    slack.set_fault(Fault::None);
    assert!(
        eventually(Duration::from_secs(30), at(killed.1 + total / 10)).await,
        "the stream stalled at {} while B was down",
        done.load(Ordering::SeqCst)
    );
    let b = b.restart().await;
    sender.await.unwrap();
    let streamed = started.elapsed();

    // Every delivery sent is expected to notify its reviewer once: those
    // acknowledged, those B stored before dying, and those catch-up
    // redelivers.
    let log = log.lock().unwrap().clone();
    let mut by_delivery: BTreeMap<usize, Vec<Option<u16>>> = BTreeMap::new();
    for a in &log {
        by_delivery.entry(a.i).or_default().push(a.status);
    }
    assert_eq!(by_delivery.len(), total);
    let want: Vec<(String, u64)> = (0..total).map(expected).collect();
    let failed: BTreeSet<String> = by_delivery
        .iter()
        .filter(|(_, s)| s.iter().all(|s| !matches!(s, Some(200..=299))))
        .map(|(i, _)| guid(*i))
        .collect();
    for a in &log {
        assert!(
            matches!(a.status, None | Some(202)),
            "only 202 or no answer (B down): {a:?}"
        );
    }
    assert!(!failed.is_empty(), "nothing was dropped by the kill");

    let all_posted = eventually(Duration::from_secs(45), || {
        let got = posted_counts(&slack);
        want.iter().all(|k| got.contains_key(k))
    })
    .await;
    let counts = posted_counts(&slack);
    let missing: Vec<_> = want.iter().filter(|k| !counts.contains_key(*k)).collect();
    assert!(
        all_posted,
        "{} of {} notifications never reached Slack (e.g. {:?}); {} deliveries failed, redelivery asked for {}\n{}",
        missing.len(),
        want.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        failed.len(),
        gh.redelivery_requests().len(),
        a.log_events("catch-up pass")
            .iter()
            .chain(c.log_events("catch-up pass").iter())
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let outbox = a.drained(Duration::from_secs(30)).await;
    let finished = started.elapsed();

    // Exactly once, nothing else, nothing left behind.
    let counts = posted_counts(&slack);
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "posted more than once: {dupes:?}");
    assert_eq!(counts.len(), total, "posted without being delivered");
    assert_eq!(
        (outbox.pending, outbox.dead, outbox.sent),
        (0, 0, total as i64),
        "{outbox:?}"
    );

    // Catch-up asked GitHub to redeliver only deliveries no attempt of
    // which succeeded, each once, and each such redelivery was new to prpr
    // (answered `queued`, not `duplicate`): nothing stored was redelivered.
    let deliveries = gh.deliveries();
    let by_id: HashMap<u64, &testkit::github::DeliveryRecord> =
        deliveries.iter().map(|d| (d.id, d)).collect();
    let asked: Vec<&String> = gh
        .redelivery_requests()
        .iter()
        .map(|id| &by_id[id].guid)
        .collect();
    let asked_set: BTreeSet<String> = asked.iter().map(|g| (*g).clone()).collect();
    assert_eq!(asked.len(), asked_set.len(), "a redelivery asked twice");
    assert!(
        asked_set.is_subset(&failed),
        "redelivered although delivered: {:?}",
        asked_set.difference(&failed).collect::<Vec<_>>()
    );
    let outcomes: HashMap<String, Vec<String>> =
        a.log_events("delivery")
            .iter()
            .fold(HashMap::new(), |mut m, l| {
                m.entry(l["delivery_id"].as_str().unwrap_or("").to_string())
                    .or_default()
                    .push(l["outcome"].as_str().unwrap_or("").to_string());
                m
            });
    for g in &asked_set {
        assert_eq!(
            outcomes.get(g).map(Vec::as_slice),
            Some(&["queued".to_string()][..]),
            "the redelivery of {g} was not new to prpr"
        );
    }
    // What catch-up left alone among the failed ones, B had stored before
    // it died (its answer was lost with it).
    let store = a.store().await;
    let mut stored_by_b = 0;
    for g in failed.difference(&asked_set) {
        assert!(
            store.has_delivery(g).await.unwrap(),
            "{g} failed, was not redelivered, and is not stored"
        );
        stored_by_b += 1;
    }
    let redelivered = deliveries
        .iter()
        .filter(|d| d.redelivery && d.status_code == 202 && asked_set.contains(&d.guid))
        .count();
    assert_eq!(redelivered, asked_set.len(), "every redelivery reached A");
    let attempts = slack.attempts();
    let count = |code: u16| attempts.iter().filter(|a| a.status == code).count();
    assert!(count(429) > 0 && count(503) > 0, "Slack's faults were met");
    eprintln!(
        "three tasks: {total} deliveries ({} attempts), B killed at {:?} after {} and restarted; {} failed, {} redelivered by catch-up, {} stored by B before it died; Slack answered {} 429s and {} 503s; up {up:?}, streamed {streamed:?}, all posted {finished:?}",
        log.len(),
        killed.0,
        killed.1,
        failed.len(),
        asked_set.len(),
        stored_by_b,
        count(429),
        count(503),
    );
    assert!(
        finished < Duration::from_secs(60),
        "took {finished:?}, more than a minute"
    );
    drop((a, b, c));
}

// ---- schedules ---------------------------------------------------------------------

/// Local `HH:MM` in `zone`, `mins_ago` minutes before now: a slot already
/// due (within `[reminders] grace`), so no test waits for the wall clock.
fn minutes_ago(zone: &str, mins_ago: i64) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_mins(mins_ago))
        .unwrap()
        .to_zoned(tz)
        .strftime("%H:%M")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tasks_with_schedules_post_each_slot_once_across_a_kill9() {
    let _heavy = support::heavy().await;
    let Some(pg) = support::postgres_db().await else {
        return;
    };
    let slack = SlackDouble::start(SlackConfig::default()).await;
    // Open PRs first, through a task without reminders.
    let seed = Server::start(
        Some(&slack),
        launch(&members(4, SLACK), free_port(), &pg.url, None),
    )
    .await;
    let http = client();
    for i in 0..4u64 {
        let r = post(
            &http,
            &seed.base,
            &format!("sched-{i}"),
            &request(&format!("r{i}"), 500 + i),
        )
        .await;
        assert_eq!(r.status, Some(202), "{r:?}");
    }
    let dms = seed.drained(Duration::from_secs(20)).await.sent as usize;
    let mut seed = seed;
    seed.sigterm();
    seed.wait_exit(Duration::from_secs(20)).await.unwrap();

    // Four schedules in Tokyo time, each with a slot one to four minutes
    // ago, and one with two slots: six digests, each to its channel.
    let zone = "Asia/Tokyo";
    let mut schedules = String::new();
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for k in 0..4i64 {
        let channel = format!("C0DIGEST{k:02}");
        let times = if k == 0 {
            format!("\"{}\", \"{}\"", minutes_ago(zone, 2), minutes_ago(zone, 1))
        } else {
            format!("\"{}\"", minutes_ago(zone, k + 1))
        };
        schedules.push_str(&format!(
            "[[reminders.schedules]]\nname = \"s{k}\"\nchannel = \"{channel}\"\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\ntimes = [{times}]\ntimezone = \"{zone}\"\n"
        ));
        *want.entry(channel).or_default() += if k == 0 { 2 } else { 1 };
    }
    let slots: usize = want.values().sum();
    let config = format!("{}\n{schedules}", members(4, SLACK));
    // Slack is failing as the three start (and fire): the digests are queued,
    // none sent, when one of the tasks that fired a slot is killed.
    slack.set_fault(Fault::Status(503));
    let mut tasks: Vec<Server> = start_three(
        &slack,
        [free_port(), free_port(), free_port()].map(|p| launch(&config, p, &pg.url, None)),
    )
    .await
    .into();
    let fired = |t: &Server| t.log_events("reminder slot fired").len();
    assert!(
        eventually(Duration::from_secs(20), || tasks
            .iter()
            .map(fired)
            .sum::<usize>()
            >= slots)
        .await,
        "not every slot fired: {:?}",
        tasks.iter().map(fired).collect::<Vec<_>>()
    );
    let by_task: Vec<usize> = tasks.iter().map(fired).collect();
    assert_eq!(by_task.iter().sum::<usize>(), slots, "{by_task:?}");
    let victim = by_task.iter().position(|n| *n > 0).unwrap();
    settle_before_kill(&slack, &tasks[0]).await;
    let mut killed = tasks.remove(victim);
    killed.kill9().await;
    slack.set_fault(Fault::None);

    // Each slot's digest reaches its channel once, sent by the others.
    let digests = |slack: &SlackDouble| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for p in slack
            .posted()
            .iter()
            .filter(|p| p.channel.starts_with("C0DIGEST"))
        {
            *m.entry(p.channel.clone()).or_default() += 1;
        }
        m
    };
    assert!(
        eventually(Duration::from_secs(30), || digests(&slack) == want).await,
        "digests {:?}, want {want:?} ({by_task:?} fired by the three, task {victim} killed)",
        digests(&slack)
    );
    // The killed task comes back (and ticks at start): nothing fires again.
    let restarted = killed.restart().await;
    let outbox = tasks[0].drained(Duration::from_secs(20)).await;
    assert_eq!(digests(&slack), want);
    assert_eq!(
        (outbox.pending, outbox.dead, outbox.sent as usize),
        (0, 0, dms + slots),
        "{outbox:?}"
    );
    assert_eq!(
        restarted.log_events("reminder slot fired").len(),
        0,
        "a slot fired twice"
    );
    eprintln!(
        "three tasks, schedules: {slots} slots fired {by_task:?} by the three, task {victim} killed before any digest was sent; each digest posted once"
    );
}
