//! The store contract, run against SQLite and PostgreSQL alike.
//!
//! Each scenario is written once as an `async fn(Store)`; the macro at the end
//! runs it on a fresh SQLite file and on a fresh PostgreSQL database (skipped,
//! with a message, when no PostgreSQL is reachable and `PRPR_REQUIRE_POSTGRES`
//! is not set).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use crate::support;

use std::sync::Arc;

use prpr::github::Subject;
use prpr::notice::{Address, Card, Decision, Notice, Notification, Place, Pr, PrState, PrStatus};
use prpr::store::{DeliveryMeta, OutboxItem, OutboxStatus, Recorded, Store};

fn subject(repo: &str, number: u64) -> Subject {
    Subject {
        action: Some("review_requested".into()),
        repo: Some(repo.into()),
        number: Some(number),
    }
}

/// A notice told apart from the others by `tag` (its merger's name).
fn note(channel: &str, tag: &str) -> Notification {
    Notification::new(
        channel,
        Address::Nobody,
        Notice::Merged {
            pr: Pr {
                repo: "acme/app".into(),
                number: 1,
                title: "t".into(),
                author: "a".into(),
                link: "https://github.com/acme/app/pull/1".into(),
                size: None,
            },
            by: tag.into(),
        },
    )
}

/// The tag of a queued [`note`]: the notice comes back as it was stored.
fn tag(item: &OutboxItem) -> String {
    let stored: serde_json::Value = serde_json::from_str(&item.payload).unwrap();
    stored["notice"]["by"].as_str().unwrap().to_string()
}

/// Records delivery `id` for acme/app#`n`, queuing `notes` and adding `login` to `requested`.
async fn record(
    store: &Store,
    id: &str,
    n: u64,
    login: &str,
    notes: Vec<Notification>,
) -> Recorded {
    let s = subject("acme/app", n);
    let meta = DeliveryMeta {
        id,
        event: "pull_request",
        subject: &s,
        history_since: None,
    };
    store
        .record(&meta, 1_000, |recall| {
            let mut next = recall.pr.clone();
            next.requested.insert(login.into());
            Decision {
                notifications: notes,
                state: Some(next),
                ..Decision::default()
            }
        })
        .await
        .expect("record")
}

async fn dedup_and_state(store: Store) {
    let r = record(&store, "d1", 1, "alice", vec![note("U1", "hello")]).await;
    assert!(
        matches!(&r, Recorded::Stored { queued, .. } if queued.len() == 1),
        "{r:?}"
    );
    assert_eq!(
        record(&store, "d1", 1, "bob", vec![note("U1", "again")]).await,
        Recorded::Duplicate
    );
    // The duplicate changed nothing: state and outbox as after the first.
    let st = store.pr_state("acme/app", 1).await.unwrap().unwrap();
    assert_eq!(
        st.requested.into_iter().collect::<Vec<_>>(),
        vec!["alice".to_string()]
    );
    assert_eq!(store.list(true, 100).await.unwrap().len(), 1);
    // The rules see the state left by earlier deliveries.
    let s = subject("acme/app", 1);
    let meta = DeliveryMeta {
        id: "d2",
        event: "pull_request",
        subject: &s,
        history_since: None,
    };
    store
        .record(&meta, 2_000, |recall| {
            assert!(recall.pr.requested.contains("alice"));
            Decision::default()
        })
        .await
        .unwrap();
    assert_eq!(store.delivery_count().await.unwrap(), 2);
}

async fn channel_heads_in_order_one_at_a_time(store: Store) {
    record(
        &store,
        "a",
        1,
        "x",
        vec![note("C1", "c1-first"), note("C2", "c2-first")],
    )
    .await;
    record(&store, "b", 2, "x", vec![note("C1", "c1-second")]).await;
    let heads = store.due(5_000, 10).await.unwrap();
    let texts: Vec<String> = heads.iter().map(tag).collect();
    assert_eq!(
        texts,
        vec!["c1-first", "c2-first"],
        "only the oldest message per channel"
    );
    // A claimed head blocks its channel; the claim is exclusive.
    assert!(store.claim(heads[0].id, 5_000, 65_000).await.unwrap());
    assert!(
        !store.claim(heads[0].id, 5_000, 65_000).await.unwrap(),
        "second claim must fail"
    );
    let texts: Vec<String> = store
        .due(5_000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|h| tag(&h))
        .collect();
    assert_eq!(texts, vec!["c2-first".to_string()]);
    // Sent: the next one of C1 becomes the head.
    store
        .mark_sent(heads[0].id, 6_000, Some("1700000000.000100"))
        .await
        .unwrap();
    let texts: Vec<String> = store
        .due(6_000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|h| tag(&h))
        .collect();
    assert_eq!(
        texts,
        vec!["c2-first".to_string(), "c1-second".to_string()],
        "oldest head first"
    );
    // An expired lease frees the message for another sender.
    let c2 = store
        .due(6_000, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.channel == "C2")
        .unwrap();
    assert!(store.claim(c2.id, 6_000, 7_000).await.unwrap());
    assert!(!store.claim(c2.id, 6_500, 9_000).await.unwrap());
    assert!(
        store.claim(c2.id, 7_000, 9_000).await.unwrap(),
        "lease expired"
    );
    // Several heads in one statement: only the free ones are leased.
    let c1 = store
        .due(9_000, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.channel == "C1")
        .unwrap();
    let mut got = store
        .claim_many(&[c1.id, c2.id, 999_999], 8_000, 20_000)
        .await
        .unwrap();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![c1.id],
        "C2 is still leased until 9,000; 999,999 does not exist"
    );
    assert_eq!(
        store
            .claim_many(&[c1.id, c2.id], 9_000, 20_000)
            .await
            .unwrap(),
        vec![c2.id]
    );
    assert!(
        store
            .claim_many(&[], 9_000, 20_000)
            .await
            .unwrap()
            .is_empty()
    );
    // A sender renews the claims of its sends in progress: nobody else gets
    // them until the renewed lease runs out; a lease already run out (the
    // message may be another sender's now) is not renewed.
    assert_eq!(
        store
            .renew_leases(&[c1.id, c2.id], 19_000, 30_000)
            .await
            .unwrap(),
        2
    );
    assert!(
        store
            .claim_many(&[c1.id, c2.id], 25_000, 40_000)
            .await
            .unwrap()
            .is_empty(),
        "renewed until 30,000"
    );
    assert_eq!(
        store
            .renew_leases(&[c1.id, c2.id], 30_000, 50_000)
            .await
            .unwrap(),
        0,
        "run out at 30,000"
    );
    assert_eq!(store.renew_leases(&[], 30_000, 50_000).await.unwrap(), 0);
}

async fn retries_dead_letters_and_requeue(store: Store) {
    record(
        &store,
        "a",
        1,
        "x",
        vec![note("C1", "one"), note("C1", "two")],
    )
    .await;
    let head = store.due(2_000, 10).await.unwrap().remove(0);
    store.claim(head.id, 2_000, 60_000).await.unwrap();
    store
        .reschedule(head.id, 10_000, true, "HTTP 503")
        .await
        .unwrap();
    assert!(
        store.due(5_000, 10).await.unwrap().is_empty(),
        "head waits; the channel waits with it (order)"
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(10_000));
    let again = store.due(10_000, 10).await.unwrap().remove(0);
    assert_eq!((again.id, again.attempts), (head.id, 1));
    store
        .reschedule(head.id, 10_000, false, "rate limited")
        .await
        .unwrap();
    assert_eq!(
        store.due(10_000, 10).await.unwrap()[0].attempts,
        1,
        "rate limiting is not an attempt"
    );
    store.mark_dead(head.id, "channel_not_found").await.unwrap();
    let texts: Vec<String> = store
        .due(10_000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|h| tag(&h))
        .collect();
    assert_eq!(
        texts,
        vec!["two".to_string()],
        "a dead head no longer blocks"
    );
    let rows = store.list(false, 10).await.unwrap();
    let dead = rows.iter().find(|r| r.id == head.id).unwrap();
    assert_eq!(
        (dead.status, dead.last_error.as_deref()),
        (OutboxStatus::Dead, Some("channel_not_found"))
    );
    assert_eq!(store.retry_all_dead(20_000).await.unwrap(), 1);
    assert!(store.retry(head.id, 20_000).await.unwrap());
    assert!(!store.retry(424242, 20_000).await.unwrap());
}

async fn concurrent_deliveries_for_one_pr_lose_no_update(store: Store) {
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            record(&store, &format!("c{i}"), 5, &format!("user{i}"), vec![]).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let st: PrState = store.pr_state("acme/app", 5).await.unwrap().unwrap();
    assert_eq!(
        st.requested.len(),
        20,
        "every delivery's state change survived: {st:?}"
    );
}

async fn prune_keeps_recent_rows(store: Store) {
    record(&store, "old", 1, "x", vec![]).await; // received_at 1_000
    let s = subject("acme/app", 2);
    let meta = DeliveryMeta {
        id: "new",
        event: "pull_request",
        subject: &s,
        history_since: None,
    };
    store
        .record(&meta, 50_000, |_| Decision::default())
        .await
        .unwrap();
    assert_eq!(store.prune(10_000).await.unwrap(), 1);
    assert_eq!(store.delivery_count().await.unwrap(), 1);
    // A pruned ID would be accepted again — which is why the window (30 days) is far beyond GitHub's 3-day redelivery.
}

/// Records delivery `id` about acme/app#1 that sets its card's title to
/// `title` and queues `notes`.
async fn record_card(store: &Store, id: &str, title: &str, notes: Vec<Notification>) -> Vec<i64> {
    let s = subject("acme/app", 1);
    let meta = DeliveryMeta {
        id,
        event: "pull_request",
        subject: &s,
        history_since: None,
    };
    let title = title.to_string();
    let r = store
        .record(&meta, 1_000, move |recall| {
            let mut next = recall.pr.clone();
            let changed = recall.pr.card.as_ref().map(|c| &c.pr.title) != Some(&title);
            let Notice::Merged { pr, .. } = &note("C1", "x").notice else {
                unreachable!()
            };
            next.card = Some(Card {
                pr: Pr {
                    title,
                    ..pr.clone()
                },
                status: PrStatus::Open,
                reviewers: vec![],
                labels: vec![],
                base: None,
                created_at: None,
                updated_at: None,
            });
            next.threaded = true;
            Decision {
                notifications: notes,
                state: Some(next),
                card_changed: changed,
                ..Decision::default()
            }
        })
        .await
        .expect("record");
    match r {
        Recorded::Stored { queued, .. } => queued,
        Recorded::Duplicate => panic!("duplicate"),
    }
}

fn reply(channel: &str, tag: &str) -> Notification {
    Notification {
        place: Place::Reply { broadcast: false },
        ..note(channel, tag)
    }
}

async fn a_thread_opens_once_per_channel_and_its_root_follows_the_card(store: Store) {
    // The first notice in a channel queues the root ahead of itself.
    let q = record_card(
        &store,
        "t1",
        "v1",
        vec![reply("C1", "first"), note("U1", "dm")],
    )
    .await;
    assert_eq!(q.len(), 3, "root, reply, DM");
    let rows = store.list(true, 10).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.channel.as_str(), r.kind.as_str()))
            .collect::<Vec<_>>(),
        vec![("C1", "root"), ("C1", "merged"), ("U1", "merged")]
    );
    let root_row = rows[0].id;
    // A second notice in the same channel: no second root; another channel: its own.
    let q = record_card(
        &store,
        "t2",
        "v1",
        vec![reply("C1", "second"), reply("C2", "other")],
    )
    .await;
    assert_eq!(q.len(), 3, "reply, root in C2, reply");
    let t = store
        .thread_root("C1", "acme/app", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.root_ts.as_deref(), t.want_rev), (None, 1));
    assert_eq!(t.card.unwrap().pr.title, "v1");

    // The root is posted: recorded with the revision it shows.
    store
        .set_root(
            Some(root_row),
            2_000,
            "C1",
            "acme/app",
            1,
            Some("1700000000.000100"),
            1,
            4_000,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        store.thread_of("acme/app", 1).await.unwrap(),
        Some(("C1".to_string(), "1700000000.000100".to_string()))
    );
    assert!(
        store.due_updates(10_000, 10).await.unwrap().is_empty(),
        "nothing changed"
    );
    let sent: Vec<_> = store
        .list(true, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.status == OutboxStatus::Sent)
        .collect();
    assert_eq!(
        sent.iter()
            .map(|r| (r.id, r.slack_ts.as_deref()))
            .collect::<Vec<_>>(),
        vec![(root_row, Some("1700000000.000100"))]
    );

    // Two changes in a row: one update due, not before its interval, with the latest card.
    record_card(&store, "t3", "v2", vec![]).await;
    record_card(&store, "t4", "v3", vec![]).await;
    assert!(store.due_updates(3_999, 10).await.unwrap().is_empty());
    assert_eq!(store.next_update_at().await.unwrap(), Some(4_000));
    let due = store.due_updates(4_000, 10).await.unwrap();
    assert_eq!(due.len(), 1, "C2's root is not posted yet: {due:?}");
    let u = &due[0];
    assert_eq!((u.channel.as_str(), u.want_rev), ("C1", 3));
    assert_eq!(u.card.as_ref().unwrap().pr.title, "v3");
    assert!(
        store
            .claim_update("C1", "acme/app", 1, 4_000, 64_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_update("C1", "acme/app", 1, 4_000, 64_000)
            .await
            .unwrap(),
        "one updater at a time"
    );
    store
        .set_root(
            None,
            4_100,
            "C1",
            "acme/app",
            1,
            Some("1700000000.000100"),
            3,
            6_100,
            &["tada".to_string()],
        )
        .await
        .unwrap();
    assert!(store.due_updates(100_000, 10).await.unwrap().is_empty());
    let t = store
        .thread_root("C1", "acme/app", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.reactions, vec!["tada".to_string()]);
    // A change made while an update was in flight is not lost.
    record_card(&store, "t5", "v4", vec![]).await;
    let due = store.due_updates(6_100, 10).await.unwrap();
    assert_eq!((due.len(), due[0].want_rev), (1, 4));
    // A failed update waits; giving up marks that revision shown.
    store
        .update_failed("C1", "acme/app", 1, 9_000, true, "boom", None)
        .await
        .unwrap();
    assert!(store.due_updates(8_999, 10).await.unwrap().is_empty());
    assert_eq!(store.due_updates(9_000, 10).await.unwrap()[0].attempts, 1);
    store
        .update_failed("C1", "acme/app", 1, 9_000, true, "boom", Some(4))
        .await
        .unwrap();
    assert!(store.due_updates(100_000, 10).await.unwrap().is_empty());
}

async fn sqlite_store() -> Option<(Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Some((Store::connect(&url).await.expect("sqlite"), dir))
}

async fn postgres_store() -> Option<(Store, support::PgDb)> {
    let db = support::postgres_db().await?;
    Some((Store::connect(&db.url).await.expect("postgres"), db))
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = super::sqlite_store().await.unwrap();
                    super::$name(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((store, _db)) = super::postgres_store().await else { return };
                    super::$name(store).await;
                }
            )*
        }
    };
}

both_backends!(
    dedup_and_state,
    channel_heads_in_order_one_at_a_time,
    retries_dead_letters_and_requeue,
    concurrent_deliveries_for_one_pr_lose_no_update,
    prune_keeps_recent_rows,
    a_thread_opens_once_per_channel_and_its_root_follows_the_card,
);
