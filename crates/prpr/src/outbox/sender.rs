//! The sender task: takes due messages from the outbox and delivers them.
//!
//! It runs beside the HTTP server and is woken when intake queues something,
//! when a retry or rate-limit wait ends, or by a slow poll (another task on a
//! shared PostgreSQL may have queued work). Per channel it sends one message at
//! a time, oldest first, within the channel's rate; different channels go out
//! concurrently. The outcome of each attempt is written back to the store:
//! sent (with Slack's `ts`), rescheduled with backoff, or dead-lettered.
//!
//! Guarantee: at least once. A message is marked sent only after Slack said
//! ok; if the process dies between the two, the lease expires and it is sent
//! again — the only way a duplicate can reach Slack.
//!
//! A claim is short ([`SenderOptions::send_lease`]) and renewed while its send
//! lasts: a live sender keeps its messages however slow Slack is, and the
//! messages of a killed one (and every later message to their channels,
//! which wait behind them) are taken over within seconds instead of a
//! minute.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::backoff;
use super::quiet;
use super::ratelimit::ChannelLimiter;
use super::threads;
use crate::clock::Clock;
use crate::notice::{Place, is_dm};
use crate::slack::render::{self, Stored};
use crate::slack::{InThread, Posted, Publisher, SendError};
use crate::store::{OutboxItem, Store};

/// Bounds of the time between two outbox passes (see [`Sender::run`]).
const MIN_PASS_INTERVAL: Duration = Duration::from_millis(5);
const MAX_PASS_INTERVAL: Duration = Duration::from_millis(200);

/// Channel heads read per pass: more than the sends that can start at once,
/// so rate-limited channels do not hide ready ones.
const HEADS_PER_PASS: i64 = 256;

/// How the sender behaves; defaults suit Slack, tests shorten the waits.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    pub per_channel_per_sec: f64,
    pub burst: u32,
    pub max_attempts: u32,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// How long a claimed thread update is reserved for this process.
    pub lease: Duration,
    /// How long a claimed message is reserved for this process; renewed
    /// every third of it while the send is in progress, so only a dead
    /// sender's claims run out.
    pub send_lease: Duration,
    /// Sends in flight at once (across channels). Why 128: Slack answers in
    /// 100–300 ms, so 200 channels at 1 message/s keep 20–60 sends in
    /// flight; with 16 a backlog over many channels drained at a fraction of
    /// what Slack allows (about 63 sends/s for 200 channels).
    pub concurrency: usize,
    /// Poll interval when nothing wakes the sender.
    pub poll: Duration,
    /// The least time between two updates of one thread root (`[slack]
    /// update_interval`): a root just posted is not updated before it.
    pub update_interval: Duration,
    /// Whether thread roots carry reactions for the PR's state.
    pub reactions: bool,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            per_channel_per_sec: 1.0,
            burst: 3,
            max_attempts: 12,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            lease: Duration::from_secs(60),
            send_lease: Duration::from_secs(15),
            concurrency: 128,
            poll: Duration::from_secs(2),
            update_interval: Duration::from_secs(2),
            reactions: false,
        }
    }
}

pub struct Sender {
    store: Arc<Store>,
    publisher: Arc<Publisher>,
    limiter: Arc<Mutex<ChannelLimiter>>,
    opts: SenderOptions,
    wake: Arc<Notify>,
    clock: Clock,
    /// Where each attempt's outcome is told, for a caller waiting on its
    /// messages (`prpr replay`).
    outcomes: Option<mpsc::UnboundedSender<(i64, Outcome)>>,
    /// Whether other processes may be sending from the same store: then the
    /// leases found at start are theirs, not a previous life's.
    shared: bool,
}

/// What happened to one message, for the caller waiting on it (replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retrying,
    Dead,
    /// The store could not record the result; the lease will expire.
    Unrecorded,
}

/// The system's wall clock in milliseconds, for one-off commands that run
/// outside a server (the server itself reads its injected [`Clock`]).
pub fn now_ms() -> i64 {
    Clock::system().now_ms()
}

impl Sender {
    pub fn new(
        store: Arc<Store>,
        publisher: Arc<Publisher>,
        opts: SenderOptions,
        wake: Arc<Notify>,
        clock: Clock,
    ) -> Sender {
        Sender {
            store,
            publisher,
            limiter: Arc::new(Mutex::new(ChannelLimiter::new(
                opts.per_channel_per_sec,
                opts.burst,
            ))),
            opts,
            wake,
            clock,
            outcomes: None,
            shared: false,
        }
    }

    /// Tells `(outbox ID, outcome)` of every attempt to `tx`.
    pub fn with_outcomes(mut self, tx: mpsc::UnboundedSender<(i64, Outcome)>) -> Sender {
        self.outcomes = Some(tx);
        self
    }

    /// For a one-off sender beside a server (`prpr replay`): leases found at
    /// start belong to a live process and are left alone.
    pub fn beside_others(mut self) -> Sender {
        self.shared = true;
        self
    }

    /// Runs until `shutdown` turns true, then waits for sends already started
    /// (each bounded by the HTTP timeout) and returns. Queued messages stay
    /// queued for the next start.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let released = if self.shared {
            Ok(0)
        } else {
            self.store.release_leases_if_sole_sender().await
        };
        match released {
            Ok(n) if n > 0 => tracing::info!(
                released = n,
                "resuming messages a previous process had claimed"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not release stale leases"),
        }
        let mut in_flight = InFlight::default();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let clock = self.clock.clone();
        let mut last_prune = clock.instant();
        let mut last_pass = clock.instant() - MIN_PASS_INTERVAL;
        let mut pass_interval = MIN_PASS_INTERVAL;
        let mut saturated = false;
        let mut renew = tokio::time::interval(self.opts.send_lease / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Under a stream of deliveries every commit wakes the sender;
            // one pass per MIN_PASS_INTERVAL serves them all, so the outbox
            // is not re-read per delivery on the core intake needs.
            // The interval grows with the cost of a pass (a long backlog makes
            // the heads query slower): passes then take at most ~10 % of a core.
            // Except when a pass had more ready messages than free send
            // slots: the next pass then follows as soon as an eighth of the
            // slots are free again (and MIN_PASS_INTERVAL has passed). Its
            // cost is spread over the sends it starts, and pacing it like an
            // idle pass capped a backlog's drain far below Slack's allowance.
            let since = clock.instant() - last_pass;
            if since < pass_interval {
                tokio::time::sleep(pass_interval - since).await;
            }
            last_pass = clock.instant();
            let pass = self.dispatch(&mut in_flight, &mut tasks, saturated).await;
            saturated = pass.saturated;
            let next_ready = pass.next_ready;
            pass_interval = if pass.saturated {
                MIN_PASS_INTERVAL
            } else {
                ((clock.instant() - last_pass) * 10).clamp(MIN_PASS_INTERVAL, MAX_PASS_INTERVAL)
            };

            if clock.instant() - last_prune > Duration::from_secs(3600) {
                last_prune = clock.instant();
                let cutoff = clock.now_ms() - 30 * 24 * 3600 * 1000;
                match self.store.prune(cutoff).await {
                    Ok(n) => tracing::info!(
                        rows = n,
                        "pruned deliveries and sent messages older than 30 days"
                    ),
                    Err(e) => tracing::warn!(error = %e, "prune failed"),
                }
            }

            let sleep_for = next_ready.map_or(self.opts.poll, |at| {
                at.saturating_duration_since(clock.instant())
                    .min(self.opts.poll)
            });
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep_for) => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    finished(&mut in_flight, done);
                    // Collect whatever else finished meanwhile.
                    while let Some(done) = tasks.try_join_next_with_id() {
                        finished(&mut in_flight, done);
                    }
                }
                _ = renew.tick() => self.renew(&in_flight).await,
                _ = shutdown.changed() => {}
            }
        }
        let pending = tasks.len();
        if pending > 0 {
            tracing::info!(in_flight = pending, "waiting for Slack sends in flight");
        }
        loop {
            tokio::select! {
                done = tasks.join_next_with_id() => match done {
                    Some(done) => finished(&mut in_flight, done),
                    None => break,
                },
                _ = renew.tick() => self.renew(&in_flight).await,
            }
        }
    }

    /// Extends the claims of the sends in progress. A failure is only
    /// logged: the claims then run out after `send_lease`, and another
    /// sender may send those messages again (at least once).
    async fn renew(&self, in_flight: &InFlight) {
        let ids = in_flight.outbox_ids();
        if ids.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        let until = now + self.opts.send_lease.as_millis() as i64;
        if let Err(e) = self.store.renew_leases(&ids, now, until).await {
            tracing::warn!(error = %e, in_flight = ids.len(), "could not renew the claims of Slack sends in progress");
        }
    }

    /// Claims and starts what can go now, claiming every pick in one
    /// statement. Says when something not yet ready (a retry's due time,
    /// another sender's lease, a channel's rate slot) becomes ready, so the
    /// loop can sleep until then, and whether ready messages were left for
    /// want of a free send slot.
    ///
    /// After a saturated pass, a pass with fewer than an eighth of the slots
    /// free returns at once: a pass reads the heads of the whole backlog,
    /// and doing that for every finished send (a slow Slack, many channels)
    /// would cost a core.
    async fn dispatch(
        &self,
        in_flight: &mut InFlight,
        tasks: &mut JoinSet<()>,
        after_saturated: bool,
    ) -> Pass {
        let slots = self.opts.concurrency.saturating_sub(tasks.len());
        let enough = if after_saturated {
            (self.opts.concurrency / 8).max(1)
        } else {
            1
        };
        if slots < enough {
            return Pass {
                next_ready: None,
                saturated: true,
            };
        }
        let heads = match self.store.heads(HEADS_PER_PASS).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "outbox unavailable; will retry");
                return Pass {
                    next_ready: Some(self.clock.instant() + Duration::from_secs(1)),
                    saturated: false,
                };
            }
        };
        let now = self.clock.now_ms();
        let mut earliest: Option<Instant> = None;
        let mut wake_at =
            |at: Instant| earliest = Some(earliest.map_or(at, |e: Instant| e.min(at)));
        let mut picked = Vec::new();
        let mut saturated = false;
        {
            let mut limiter = self.limiter.lock().await;
            for head in heads {
                let item = head.item;
                // In flight here: its completion wakes the loop.
                if in_flight.busy(&item.channel) {
                    continue;
                }
                let ready_at = head
                    .next_attempt_at
                    .max(head.lease_until.unwrap_or(i64::MIN));
                if ready_at > now {
                    wake_at(self.clock.instant() + Duration::from_millis((ready_at - now) as u64));
                    continue;
                }
                if picked.len() >= slots {
                    saturated = true;
                    break;
                }
                if let Err(at) = limiter.try_acquire(&item.channel, self.clock.instant()) {
                    wake_at(at);
                    continue;
                }
                picked.push(item);
            }
        }
        let lease_until = now + self.opts.send_lease.as_millis() as i64;
        let ids: Vec<i64> = picked.iter().map(|i| i.id).collect();
        let claimed: HashSet<i64> = match self.store.claim_many(&ids, now, lease_until).await {
            Ok(c) => c.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "claiming outbox messages failed");
                return Pass {
                    next_ready: Some(self.clock.instant() + Duration::from_secs(1)),
                    saturated: false,
                };
            }
        };
        for item in picked {
            // Another sender's now, or no longer pending.
            if !claimed.contains(&item.id) {
                continue;
            }
            let (channel, outbox_id) = (item.channel.clone(), item.id);
            let (store, publisher, limiter, opts, clock) = (
                self.store.clone(),
                self.publisher.clone(),
                self.limiter.clone(),
                self.opts.clone(),
                self.clock.clone(),
            );
            let outcomes = self.outcomes.clone();
            let task = tasks.spawn(async move {
                let id = item.id;
                let outcome = deliver(&store, &publisher, &limiter, &opts, &clock, item).await;
                if let Some(tx) = outcomes {
                    let _ = tx.send((id, outcome));
                }
            });
            in_flight.start(task.id(), channel, outbox_id);
        }
        Pass {
            next_ready: earliest,
            saturated,
        }
    }
}

/// What one [`Sender::dispatch`] pass found.
struct Pass {
    /// When the earliest message not ready now becomes ready.
    next_ready: Option<Instant>,
    /// Ready messages were left because every send slot was taken.
    saturated: bool,
}

/// Channels with a send in progress, and the message each sends, by the task
/// sending. Keyed by task ID so that even a task that panicked frees its
/// channel (its lease then expires and the message is retried).
#[derive(Default)]
struct InFlight {
    by_task: HashMap<tokio::task::Id, (String, i64)>,
    channels: HashSet<String>,
}

impl InFlight {
    fn start(&mut self, task: tokio::task::Id, channel: String, outbox_id: i64) {
        self.channels.insert(channel.clone());
        self.by_task.insert(task, (channel, outbox_id));
    }

    fn busy(&self, channel: &str) -> bool {
        self.channels.contains(channel)
    }

    /// The messages being sent, whose claims are renewed.
    fn outbox_ids(&self) -> Vec<i64> {
        self.by_task.values().map(|(_, id)| *id).collect()
    }
}

/// Frees the channel of a finished (or failed) send task.
fn finished(in_flight: &mut InFlight, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
    let id = match done {
        Ok((id, ())) => id,
        Err(e) => {
            tracing::error!(error = %e, "a Slack send task failed; its message is retried when its lease expires");
            e.id()
        }
    };
    if let Some((channel, _)) = in_flight.by_task.remove(&id) {
        in_flight.channels.remove(&channel);
    }
}

/// One attempt at one message, and its bookkeeping.
pub async fn deliver(
    store: &Store,
    publisher: &Publisher,
    limiter: &Mutex<ChannelLimiter>,
    opts: &SenderOptions,
    clock: &Clock,
    item: OutboxItem,
) -> Outcome {
    let attempt = item.attempts + 1;
    let started = clock.instant();
    let result = match Stored::parse(&item.payload) {
        Ok(stored) => match quiet::check(store, clock.now_ms(), &item).await {
            Ok(quiet::Quiet::Send) => {
                send(store, publisher, opts, clock, &item.channel, &stored).await
            }
            Ok(quiet::Quiet::Hold(until)) => {
                tracing::info!(outbox_id = item.id, channel = %item.channel, until_ms = until, "held by the recipient's quiet hours");
                return match store.hold_channel(item.id, &item.channel, until).await {
                    Ok(()) => Outcome::Retrying,
                    Err(e) => {
                        tracing::error!(outbox_id = item.id, error = %e, "could not hold a message for quiet hours; the message will be retried when its lease expires");
                        Outcome::Unrecorded
                    }
                };
            }
            Ok(quiet::Quiet::Summary(rows)) => {
                quiet::send_summary(store, publisher, &item, &rows, clock.now_ms())
                    .await
                    .map(|p| (p, None))
            }
            Err(e) => Err(SendError::Transient(format!("store: {e}"))),
        },
        // Written by a newer prpr, or damaged: no retry can fix it.
        Err(e) => Err(SendError::Permanent(format!(
            "unreadable outbox payload: {e}"
        ))),
    };
    let ms = (clock.instant() - started).as_millis() as u64;
    let (id, channel, kind) = (item.id, item.channel.as_str(), item.kind.as_str());
    let recorded = match &result {
        Ok((posted, root)) => {
            tracing::info!(outbox_id = id, delivery_id = %item.delivery_id, channel, kind, attempt, outcome = "sent", ts = posted.ts.as_deref(), latency_ms = ms, "slack send");
            // Slack has the message: failing to record that means sending it
            // again when the lease ends, so a lost connection (a database
            // failover, a killed backend) gets a few quick retries first.
            let mut retries = 0;
            loop {
                let now = clock.now_ms();
                let recorded = match root {
                    Some(r) => {
                        store
                            .set_root(
                                Some(id),
                                now,
                                channel,
                                &r.repo,
                                r.number,
                                posted.ts.as_deref(),
                                r.rev,
                                now + opts.update_interval.as_millis() as i64,
                                &r.reactions,
                            )
                            .await
                    }
                    None => store.mark_sent(id, now, posted.ts.as_deref()).await,
                };
                match recorded {
                    Ok(_) => break Ok(Outcome::Sent),
                    Err(e) if retries < 4 => {
                        retries += 1;
                        tracing::warn!(outbox_id = id, error = %e, retries, "recording a sent message failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100 << retries)).await;
                    }
                    Err(e) => break Err(e),
                }
            }
        }
        Err(SendError::RateLimited(wait)) => {
            tracing::warn!(
                outbox_id = id,
                channel,
                kind,
                attempt,
                outcome = "rate_limited",
                retry_after_ms = wait.as_millis() as u64,
                "slack send"
            );
            limiter.lock().await.block(channel, clock.instant() + *wait);
            let at = clock.now_ms() + wait.as_millis() as i64;
            store
                .reschedule(id, at, false, "rate limited")
                .await
                .map(|_| Outcome::Retrying)
        }
        Err(SendError::Transient(reason)) if (attempt as u32) < opts.max_attempts => {
            let wait = backoff::delay(attempt as u32, opts.retry_initial, opts.retry_max);
            tracing::warn!(outbox_id = id, channel, kind, attempt, outcome = "retry", error = %reason, retry_in_ms = wait.as_millis() as u64, "slack send");
            let at = clock.now_ms() + wait.as_millis() as i64;
            store
                .reschedule(id, at, true, reason)
                .await
                .map(|_| Outcome::Retrying)
        }
        Err(SendError::Transient(reason)) => {
            let why = format!("gave up after {attempt} attempts: {reason}");
            tracing::error!(outbox_id = id, channel, kind, attempt, outcome = "dead", error = %why, "slack send");
            store.mark_dead(id, &why).await.map(|_| Outcome::Dead)
        }
        Err(SendError::Permanent(reason) | SendError::Gone(reason)) => {
            tracing::error!(outbox_id = id, channel, kind, attempt, outcome = "dead", error = %reason, "slack send");
            store.mark_dead(id, reason).await.map(|_| Outcome::Dead)
        }
    };
    recorded.unwrap_or_else(|e| {
        tracing::error!(outbox_id = id, error = %e, "could not record the send outcome; the message will be retried when its lease expires");
        Outcome::Unrecorded
    })
}

/// A root just posted: what [`Store::set_root`] records with it.
#[derive(Debug, Clone)]
struct RootPosted {
    repo: String,
    number: u64,
    rev: i64,
    reactions: Vec<String>,
}

/// Sends one stored payload where it belongs: a root card, a reply in its
/// PR's thread, a DM (linking to the thread when there is one), or a
/// message of its own.
async fn send(
    store: &Store,
    publisher: &Publisher,
    opts: &SenderOptions,
    clock: &Clock,
    channel: &str,
    stored: &Stored,
) -> Result<(Posted, Option<RootPosted>), SendError> {
    let unavailable = threads::store_unavailable;
    match stored {
        Stored::Root { root } => {
            let thread = store
                .thread_root(channel, &root.repo, root.number)
                .await
                .map_err(unavailable)?;
            let Some(thread) = thread else {
                return Err(SendError::Permanent(format!(
                    "no thread for {}#{} in this channel",
                    root.repo, root.number
                )));
            };
            if let Some(ts) = thread.root_ts {
                // Posted already (by a send whose outcome was not recorded).
                return Ok((Posted { ts: Some(ts) }, None));
            }
            let Some(card) = thread.card else {
                return Err(SendError::Permanent(format!(
                    "nothing known about {}#{} to show",
                    root.repo, root.number
                )));
            };
            let posted = publisher.post(channel, &render::card(&card)).await?;
            let reactions = match &posted.ts {
                Some(ts) if opts.reactions => {
                    threads::sync_reactions(publisher, channel, ts, &[], &card).await
                }
                _ => Vec::new(),
            };
            Ok((
                posted,
                Some(RootPosted {
                    repo: root.repo.clone(),
                    number: root.number,
                    rev: thread.want_rev,
                    reactions,
                }),
            ))
        }
        Stored::Notice {
            address,
            notice,
            place: Place::Reply { broadcast },
        } => {
            let message = render::render(address, notice);
            let Some((repo, number)) = notice.pr() else {
                return publisher.post(channel, &message).await.map(|p| (p, None));
            };
            let root = store
                .thread_root(channel, repo, number)
                .await
                .map_err(unavailable)?
                .and_then(|t| t.root_ts);
            let Some(root_ts) = root else {
                // The root could not be posted (dead-lettered): the reply
                // still reaches the channel, as a message of its own.
                return publisher.post(channel, &message).await.map(|p| (p, None));
            };
            let thread = InThread {
                thread_ts: Some(&root_ts),
                broadcast: *broadcast,
            };
            match publisher.post_in(channel, &message, thread).await {
                Err(SendError::Gone(why)) => {
                    tracing::warn!(channel, repo, number, error = %why, "the thread's root was deleted in Slack: posting it again");
                    let new_ts =
                        threads::repost_root(store, publisher, opts, clock, channel, repo, number)
                            .await?;
                    let thread = InThread {
                        thread_ts: Some(&new_ts),
                        broadcast: *broadcast,
                    };
                    publisher
                        .post_in(channel, &message, thread)
                        .await
                        .map(|p| (p, None))
                }
                other => other.map(|p| (p, None)),
            }
        }
        Stored::Notice {
            address, notice, ..
        } => {
            // A DM about a PR links to the PR's channel thread, if any (no
            // lookup when the publisher cannot make links: the console, or
            // a workspace address not learnt).
            let link = match notice.pr() {
                Some((repo, number)) if is_dm(channel) && publisher.can_link() => store
                    .thread_of(repo, number)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|(c, ts)| publisher.permalink(&c, &ts)),
                _ => None,
            };
            let message = render::render_in(address, notice, link.as_deref());
            publisher.post(channel, &message).await.map(|p| (p, None))
        }
        Stored::Rendered(m) => publisher.post(channel, m).await.map(|p| (p, None)),
    }
}
