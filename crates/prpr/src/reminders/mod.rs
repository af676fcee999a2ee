//! Reminders: channel digests at set times (`[[reminders.schedules]]`) and
//! personal DMs listing what waits for someone's review.
//!
//! The open-PR picture is the cards prpr keeps from events (`pr_state`);
//! [`digest`] turns them into pages, pure. The [`Scheduler`] is a task
//! beside the sender: on each tick it works out which slots — (schedule,
//! local date, local time) — have fallen due, and claims each one with a row
//! in `reminder_slots` in the same transaction that queues its messages, so
//! however many prpr tasks share a PostgreSQL database, a slot is sent once.
//! Messages go through the outbox like every notice: retries, rate limits,
//! per-channel order, quiet hours.
//!
//! The cards come from webhook events and, with GitHub credentials, from
//! the REST backfill ([`crate::github::backfill`]: at start and every
//! `[reminders] resync`), which writes the same cards into `pr_state`
//! (through `rules::card`); every reminder picks them up.

pub mod digest;
pub mod prefs;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Weekday;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::reminders::WEEKDAYS;
use crate::config::{Config, LocalTime, Schedule, SlackUser, Zone};
use crate::notice::{Address, Card, Notice, Notification};
use crate::store::{SlotKey, Store, StoreError};
use digest::{Person, Snoozes};
use prefs::{RemindPref, UserPrefs};

/// How far back the scheduler looks for slots. A slot older than `grace`
/// but within this is recorded as skipped (and logged); one older still was
/// missed before this prpr's time and is not mentioned.
const LOOKBACK: Duration = Duration::from_secs(24 * 3600);

/// Each schedule's slots that fell due in `(now - lookback, now]`.
pub fn due_slots(
    name: &str,
    days: &[Weekday],
    times: &[LocalTime],
    zone: &Zone,
    now_ms: i64,
    lookback: Duration,
) -> Vec<SlotKey> {
    let Ok(now) = Timestamp::from_millisecond(now_ms) else {
        return Vec::new();
    };
    let today = now.to_zoned(zone.tz.clone()).date();
    let since = now_ms - lookback.as_millis() as i64;
    let mut out = Vec::new();
    let mut day = today;
    let mut dates = Vec::new();
    for _ in 0..3 {
        dates.push(day);
        match day.yesterday() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    dates.reverse();
    for d in dates {
        if !days.contains(&d.weekday()) {
            continue;
        }
        for t in times {
            let Some(due) = prefs::instant(d, *t, zone) else {
                continue;
            };
            if due > since && due <= now_ms {
                out.push(SlotKey {
                    schedule: name.to_string(),
                    date: d.to_string(),
                    time: t.to_string(),
                    due_at: due,
                });
            }
        }
    }
    out
}

/// A schedule's messages as they would be sent at `now_ms`: one
/// notification per page, none when nothing passes the filters.
pub fn schedule_notifications(
    s: &Schedule,
    cfg: &Config,
    cards: &[Card],
    snoozes: &Snoozes,
    now_ms: i64,
) -> Vec<Notification> {
    digest::channel_digest(s, cards, &cfg.notify, snoozes, now_ms)
        .into_iter()
        .map(|d| Notification::new(s.channel.clone(), Address::Nobody, Notice::Digest(d)))
        .collect()
}

/// Reads the cards and snoozes and builds a schedule's messages: what the
/// scheduler, `prpr reminders preview` and `prpr reminders send` share.
pub async fn build_schedule(
    store: &Store,
    cfg: &Config,
    s: &Schedule,
    now_ms: i64,
) -> Result<Vec<Notification>, StoreError> {
    let cards = store.open_cards().await?;
    let snoozes = store.snoozes(now_ms).await?;
    Ok(schedule_notifications(s, cfg, &cards, &snoozes, now_ms))
}

/// One person's reminder: who, when, and which teams count as theirs.
#[derive(Debug, Clone)]
pub struct PersonalPlan {
    pub user_id: String,
    pub login: String,
    pub teams: Vec<String>,
    pub days: Vec<Weekday>,
    pub times: Vec<LocalTime>,
    pub zone: Zone,
    pub ignore_drafts: bool,
}

impl PersonalPlan {
    /// Its slots' schedule name.
    pub fn slot_name(&self) -> String {
        format!("personal:{}", self.user_id)
    }

    pub fn person(&self) -> Person<'_> {
        Person {
            user_id: &self.user_id,
            login: &self.login,
            teams: &self.teams,
            ignore_drafts: self.ignore_drafts,
        }
    }
}

/// The personal reminders in force: the config's `[[reminders.personal]]`,
/// each replaced or stopped by what the person set with `/prpr remind`,
/// plus people who set one from Slack only (their login from `[members]`).
pub fn personal_plans(cfg: &Config, prefs: &[(String, UserPrefs)]) -> Vec<PersonalPlan> {
    let pref_of = |id: &str| {
        prefs
            .iter()
            .find(|(u, _)| u == id)
            .and_then(|(_, p)| p.remind.clone())
    };
    let mut plans: Vec<PersonalPlan> = Vec::new();
    for p in &cfg.reminders.personal {
        let Some(SlackUser::Id(id)) = cfg.notify.members.get(&p.login) else {
            continue;
        };
        let mut plan = PersonalPlan {
            user_id: id.clone(),
            login: p.login.clone(),
            teams: p.teams.clone(),
            days: p.days.clone(),
            times: p.times.clone(),
            zone: p.timezone.clone(),
            ignore_drafts: p.ignore_drafts,
        };
        match pref_of(id) {
            Some(RemindPref::Off { .. }) => continue,
            Some(RemindPref::At { times, tz }) => {
                apply_pref(&mut plan, &times, &tz);
            }
            None => {}
        }
        plans.push(plan);
    }
    for (id, p) in prefs {
        let Some(RemindPref::At { times, tz }) = &p.remind else {
            continue;
        };
        if plans.iter().any(|pl| &pl.user_id == id) {
            continue;
        }
        let Some(login) = cfg.notify.members.login_of(id) else {
            tracing::debug!(user = %id, "a reminder set from Slack by someone not in [members]: no GitHub login to look for");
            continue;
        };
        let mut plan = PersonalPlan {
            user_id: id.clone(),
            login: login.to_string(),
            teams: Vec::new(),
            days: WEEKDAYS.to_vec(),
            times: Vec::new(),
            zone: Zone::utc(),
            ignore_drafts: true,
        };
        apply_pref(&mut plan, times, tz);
        plans.push(plan);
    }
    plans
}

fn apply_pref(plan: &mut PersonalPlan, times: &[String], tz: &str) {
    plan.times = times
        .iter()
        .filter_map(|t| LocalTime::parse(t).ok())
        .collect();
    if let Ok(z) = Zone::parse(tz) {
        plan.zone = z;
    }
}

/// A personal reminder's messages at `now_ms` (none when nothing waits).
pub fn personal_notifications(
    plan: &PersonalPlan,
    cfg: &Config,
    cards: &[Card],
    snoozes: &Snoozes,
    now_ms: i64,
) -> Vec<Notification> {
    digest::personal_digest(&plan.person(), cards, &cfg.notify, snoozes, now_ms)
        .into_iter()
        .map(|d| Notification::new(plan.user_id.clone(), Address::Nobody, Notice::Digest(d)))
        .collect()
}

/// What a tick did with one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub slot: SlotKey,
    /// `queued`, `empty` (nothing to list) or `skipped` (too late).
    pub outcome: &'static str,
    pub messages: usize,
}

/// The scheduler task: fires each due slot once.
pub struct Scheduler {
    store: Arc<Store>,
    cfg: Arc<Config>,
    clock: Clock,
    wake: Arc<Notify>,
    /// How often it looks; a slot goes out at most this late.
    pub every: Duration,
}

enum Job<'a> {
    Channel(&'a Schedule),
    Personal(PersonalPlan),
}

impl Scheduler {
    pub fn new(store: Arc<Store>, cfg: Arc<Config>, clock: Clock, wake: Arc<Notify>) -> Scheduler {
        Scheduler {
            store,
            cfg,
            clock,
            wake,
            every: Duration::from_secs(15),
        }
    }

    /// Whether there is anything to schedule (no task is spawned otherwise).
    pub fn has_work(cfg: &Config) -> bool {
        // People may set a reminder from Slack at any time: with members
        // and a signing secret, the task runs.
        !cfg.reminders.schedules.is_empty()
            || !cfg.reminders.personal.is_empty()
            || cfg.slack.signing_secret.is_some()
    }

    /// One pass at the clock's now: claims every due slot not yet claimed.
    pub async fn tick(&self) -> Result<Vec<Fired>, StoreError> {
        let now = self.clock.now_ms();
        let grace = self.cfg.reminders.grace.as_millis() as i64;
        let lookback = LOOKBACK + self.cfg.reminders.grace;
        let prefs = self.store.all_user_prefs().await?;
        let mut jobs: Vec<(SlotKey, Job<'_>)> = Vec::new();
        for s in &self.cfg.reminders.schedules {
            for key in due_slots(&s.name, &s.days, &s.times, &s.timezone, now, lookback) {
                if !self.store.slot_taken(&key).await? {
                    jobs.push((key, Job::Channel(s)));
                }
            }
        }
        for plan in personal_plans(&self.cfg, &prefs) {
            for key in due_slots(
                &plan.slot_name(),
                &plan.days,
                &plan.times,
                &plan.zone,
                now,
                lookback,
            ) {
                if !self.store.slot_taken(&key).await? {
                    jobs.push((key, Job::Personal(plan.clone())));
                }
            }
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let cards = self.store.open_cards().await?;
        let snoozes = self.store.snoozes(now).await?;
        let mut fired = Vec::new();
        for (key, job) in jobs {
            let late = now - key.due_at;
            if late > grace {
                if self.store.claim_slot(&key, "skipped", now, &[]).await? {
                    tracing::warn!(
                        schedule = %key.schedule, date = %key.date, time = %key.time,
                        late_secs = late / 1000, grace_secs = grace / 1000,
                        "reminder slot skipped: missed by more than [reminders] grace (prpr was down)"
                    );
                    fired.push(Fired {
                        slot: key,
                        outcome: "skipped",
                        messages: 0,
                    });
                }
                continue;
            }
            let notes = match &job {
                Job::Channel(s) => schedule_notifications(s, &self.cfg, &cards, &snoozes, now),
                Job::Personal(p) => personal_notifications(p, &self.cfg, &cards, &snoozes, now),
            };
            let outcome = if notes.is_empty() { "empty" } else { "queued" };
            if self.store.claim_slot(&key, outcome, now, &notes).await? {
                tracing::info!(
                    schedule = %key.schedule, date = %key.date, time = %key.time,
                    outcome, messages = notes.len(), late_secs = late / 1000,
                    "reminder slot fired"
                );
                if !notes.is_empty() {
                    self.wake.notify_one();
                }
                fired.push(Fired {
                    slot: key,
                    outcome,
                    messages: notes.len(),
                });
            }
        }
        Ok(fired)
    }

    /// Ticks every [`Scheduler::every`] until `shutdown` turns true. A
    /// failed tick (the store unavailable) is logged and tried again at
    /// the next: the slot is still unclaimed, and within grace it still goes.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "reminder scheduler: tick failed; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>()
            .map(|t| t.as_millisecond())
            .unwrap_or(0)
    }

    #[test]
    fn slots_fall_due_in_the_zone_and_only_on_its_days() {
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        let times = [
            LocalTime::parse("09:30").unwrap(),
            LocalTime::parse("14:00").unwrap(),
        ];
        // Monday 2026-03-02 06:00 UTC = 15:00 Tokyo: both of today's slots.
        let got = due_slots(
            "s",
            &WEEKDAYS,
            &times,
            &tokyo,
            ms("2026-03-02T06:00:00Z"),
            Duration::from_secs(8 * 3600),
        );
        let keys: Vec<String> = got
            .iter()
            .map(|k| format!("{}T{}", k.date, k.time))
            .collect();
        assert_eq!(keys, vec!["2026-03-02T09:30", "2026-03-02T14:00"]);
        assert_eq!(got[0].due_at, ms("2026-03-02T00:30:00Z"));
        // Sunday: nothing.
        assert!(
            due_slots(
                "s",
                &WEEKDAYS,
                &times,
                &tokyo,
                ms("2026-03-01T06:00:00Z"),
                Duration::from_secs(8 * 3600)
            )
            .is_empty()
        );
    }

    #[test]
    fn every_hour_across_both_dst_changes_fires_each_slot_once() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let all = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ];
        let times = [LocalTime::parse("02:30").unwrap()];
        for (from, to) in [
            ("2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z"),
            ("2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z"),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            let mut now = ms(from);
            while now <= ms(to) {
                for k in due_slots(
                    "s",
                    &all,
                    &times,
                    &berlin,
                    now,
                    Duration::from_secs(24 * 3600),
                ) {
                    seen.insert((k.date, k.due_at));
                }
                now += 60_000;
            }
            let dates: Vec<&String> = seen.iter().map(|(d, _)| d).collect();
            assert_eq!(dates.len(), 3, "{seen:?}");
            let mut uniq = dates.clone();
            uniq.dedup();
            assert_eq!(uniq.len(), 3, "one instant per local date: {seen:?}");
        }
    }
}
