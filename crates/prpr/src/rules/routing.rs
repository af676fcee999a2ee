//! Filters and routes applied to what the rules decided: which PRs are
//! talked about at all, and which channels hear about them.
//!
//! The rule files decide *who* is told (a reviewer, an author, a team); this
//! step decides *where* in Slack, from the PR's card (its repository,
//! author, title, labels, base branch, draft state and requested teams):
//!
//! - `[filters]` first: a PR they exclude gets no notice at all, DMs
//!   included — a PR that stops matching (a label removed, a `WIP` title)
//!   stops being talked about.
//! - Then `[[routes]]`, per notice: every route that takes its kind and
//!   matches the PR gets a copy in its channel, addressed to the same person
//!   (a real `<@U…>` mention) or team; a notice taken by a route no longer
//!   goes to `notify.channel`. A notice no route takes goes where it went
//!   before routes existed. DMs (`notify.delivery`) do not depend on routes.
//! - `opened` routes get the PR's card when it is opened, made ready for
//!   review, reopened, or starts matching (a label added), once per channel.

use super::route::{self, PrFacts};
use crate::config::NotifyConfig;
use crate::github::Event;
use crate::notice::{
    Address, Card, Decision, Kind, Notice, Notification, PrState, PrStatus, is_dm,
};

/// The channel of a notice that has no place of its own and exists only for
/// routes to take (a merge without `notify.merged_channel`); dropped when no
/// route does.
pub const NOWHERE: &str = "";

/// Applies `[filters]` and `[[routes]]` to `d` (see the module docs).
pub fn apply(d: &mut Decision, event: &Event, state: &PrState, card: &Card, cfg: &NotifyConfig) {
    let teams = card.teams();
    let facts = facts(card, &teams);
    if !filter_and_route(d, cfg, &facts) {
        return;
    }
    opened(d, event, state, card, cfg, &facts);
}

/// [`apply`] for notices decided without an event (a team request passed on
/// to its members): `[filters]` and route copies, no `opened` cards.
pub fn apply_to_notices(d: &mut Decision, card: &Card, cfg: &NotifyConfig) {
    let teams = card.teams();
    filter_and_route(d, cfg, &facts(card, &teams));
}

/// Filters, then route copies; `false` when nothing more is to be done
/// (the PR is filtered out, or there are no routes).
fn filter_and_route(d: &mut Decision, cfg: &NotifyConfig, facts: &PrFacts) -> bool {
    if let Err(why) = route::filter(&cfg.filters, facts) {
        let before = d.notifications.len();
        d.notifications.retain(|n| n.notice.pr().is_none());
        // Nobody is told about a filtered PR, its team's members neither.
        d.expansions.clear();
        // Said only when the filter silenced something, or nothing else
        // explains the silence: a draft already skipped by its rule needs no
        // second reason.
        if before > d.notifications.len() || (d.notifications.is_empty() && d.skipped.is_empty()) {
            d.skipped.push(format!("filtered out: {why}"));
        }
        return false;
    }
    if cfg.routes.is_empty() {
        return false;
    }
    route_copies(d, cfg, facts);
    true
}

/// What routes and filters look at, from the card.
pub fn facts<'a>(card: &'a Card, teams: &'a [String]) -> PrFacts<'a> {
    PrFacts {
        repo: &card.pr.repo,
        author: &card.pr.author,
        title: &card.pr.title,
        draft: card.status == PrStatus::Draft,
        labels: &card.labels,
        base: card.base.as_deref(),
        teams,
    }
}

/// Each notice once more in every channel of a route that takes it.
fn route_copies(d: &mut Decision, cfg: &NotifyConfig, facts: &PrFacts) {
    let mut out: Vec<Notification> = Vec::with_capacity(d.notifications.len());
    let mut done: Vec<&Notice> = Vec::new();
    let all = std::mem::take(&mut d.notifications);
    for n in &all {
        if n.notice.pr().is_none() || done.contains(&&n.notice) {
            continue;
        }
        done.push(&n.notice);
        let same: Vec<&Notification> = all.iter().filter(|m| m.notice == n.notice).collect();
        let routed = route::route(cfg, n.kind(), facts);
        let taken: Vec<&String> = if routed.used_default() {
            Vec::new()
        } else {
            routed.channels.iter().collect()
        };
        // The address a channel copy names: the one a channel copy already
        // has, else the DM's recipient as a real mention.
        let address = same
            .iter()
            .find(|m| !is_dm(&m.channel))
            .map(|m| m.address.clone())
            .or_else(|| {
                same.iter()
                    .find(|m| is_dm(&m.channel))
                    .map(|m| Address::User {
                        id: m.channel.clone(),
                    })
            })
            .unwrap_or(Address::Nobody);
        for m in &same {
            // A notice a route took does not also go to the default channel.
            let to_default = cfg.channel.as_deref() == Some(m.channel.as_str());
            if m.channel != NOWHERE && (taken.is_empty() || !to_default) {
                out.push((*m).clone());
            }
        }
        for channel in taken {
            if !out
                .iter()
                .any(|m| m.notice == n.notice && &m.channel == channel)
            {
                out.push(Notification::new(
                    channel.clone(),
                    address.clone(),
                    n.notice.clone(),
                ));
            }
        }
    }
    // Notices not about a PR (none today from GitHub events) pass as they were.
    out.extend(all.iter().filter(|n| n.notice.pr().is_none()).cloned());
    if out.is_empty() && !all.is_empty() {
        d.skipped.push("no route took the notice".into());
    }
    d.notifications = out;
}

/// The card, once, in every `opened` route's channel.
fn opened(
    d: &mut Decision,
    event: &Event,
    state: &PrState,
    card: &Card,
    cfg: &NotifyConfig,
    facts: &PrFacts,
) {
    let Event::PullRequest(e) = event else { return };
    let moment = matches!(
        e.action.as_str(),
        "opened"
            | "ready_for_review"
            | "reopened"
            | "labeled"
            | "unlabeled"
            | "edited"
            | "synchronize"
    );
    if !moment || !matches!(card.status, PrStatus::Open | PrStatus::Draft) {
        return;
    }
    let routed = route::route(cfg, Kind::Opened, facts);
    if routed.used_default() {
        return;
    }
    let mut next = d.state.take().unwrap_or_else(|| state.clone());
    for channel in routed.channels {
        if next.carded.insert(channel.clone()) {
            d.notifications.push(Notification::new(
                channel,
                Address::Nobody,
                Notice::Opened { card: card.clone() },
            ));
        }
    }
    d.state = (next != *state).then_some(next);
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{PrState, decide};
    use crate::config::{Glob, Route, TitleTerm};
    use crate::notice::{Address, Kind, Place};
    use serde_json::json;

    fn requested(
        repo: &str,
        labels: &[&str],
        f: impl FnOnce(&mut serde_json::Value),
    ) -> crate::github::Event {
        let mut v = base("review_requested", "carol");
        v["repository"]["full_name"] = json!(repo);
        v["pull_request"] = pr_json("carol", false);
        v["pull_request"]["labels"] = json!(
            labels
                .iter()
                .map(|l| json!({"name": l}))
                .collect::<Vec<_>>()
        );
        v["pull_request"]["base"] = json!({"ref": "main"});
        v["pull_request"]["requested_reviewers"] = json!([{"login": "alice"}]);
        v["requested_reviewer"] = json!({"login": "alice"});
        f(&mut v);
        event("pull_request", v)
    }

    fn route(channel: &str, f: impl FnOnce(&mut Route)) -> Route {
        let mut r = Route::to(channel);
        f(&mut r);
        r
    }

    /// (channel, place, kind) of each notification.
    fn sent(d: &crate::notice::Decision) -> Vec<(String, Place, Kind)> {
        d.notifications
            .iter()
            .map(|n| (n.channel.clone(), n.place, n.kind()))
            .collect()
    }

    const REPLY: Place = Place::Reply { broadcast: false };

    #[test]
    fn every_matching_route_gets_a_copy_and_the_default_channel_does_not() {
        let mut c = cfg();
        c.routes = vec![
            route("C0API00001", |r| {
                r.repos = vec![Glob::new("acme/api").unwrap()]
            }),
            route("C0BACKEND1", |r| r.labels = vec!["backend".into()]),
            route("C0WEB00001", |r| {
                r.repos = vec![Glob::new("acme/web-*").unwrap()]
            }),
        ];
        let d = decide(
            &requested("acme/api", &["Backend"], |_| {}),
            &PrState::default(),
            &c,
        );
        assert_eq!(
            sent(&d),
            vec![
                ("U0ALICE01".into(), Place::Message, Kind::ReviewRequested),
                ("C0API00001".into(), REPLY, Kind::ReviewRequested),
                ("C0BACKEND1".into(), REPLY, Kind::ReviewRequested),
            ]
        );
        // The reviewer is named with a real mention in the route channels.
        assert_eq!(
            d.notifications[1].address,
            Address::User {
                id: "U0ALICE01".into()
            }
        );

        // `stop`: later routes are not looked at.
        c.routes[0].stop = true;
        let d = decide(
            &requested("acme/api", &["backend"], |_| {}),
            &PrState::default(),
            &c,
        );
        assert_eq!(sent(&d).len(), 2);
        assert_eq!(d.notifications[1].channel, "C0API00001");

        // No route matches: as before routes existed (a DM; no channel copy
        // with delivery = dm).
        let d = decide(
            &requested("acme/other", &[], |_| {}),
            &PrState::default(),
            &c,
        );
        assert_eq!(
            sent(&d),
            vec![("U0ALICE01".into(), Place::Message, Kind::ReviewRequested)]
        );
    }

    #[test]
    fn routes_take_only_their_kinds_and_merges_need_no_merged_channel() {
        let mut c = cfg();
        c.routes = vec![route("C0MERGES01", |r| r.kinds = vec![Kind::Merged])];
        let d = decide(&requested("acme/app", &[], |_| {}), &PrState::default(), &c);
        assert!(sent(&d).iter().all(|(ch, ..)| ch != "C0MERGES01"));
        let mut v = base("closed", "alice");
        v["pull_request"] = pr_json("carol", false);
        v["pull_request"]["state"] = json!("closed");
        v["pull_request"]["merged"] = json!(true);
        let d = decide(&event("pull_request", v), &PrState::default(), &c);
        assert_eq!(sent(&d), vec![("C0MERGES01".into(), REPLY, Kind::Merged)]);
    }

    #[test]
    fn filters_silence_a_pr_entirely_and_say_why() {
        let mut c = cfg();
        c.filters.exclude_title = vec![TitleTerm::parse("wip").unwrap()];
        let d = decide(
            &requested("acme/app", &[], |v| {
                v["pull_request"]["title"] = json!("WIP: caching")
            }),
            &PrState::default(),
            &c,
        );
        assert!(d.notifications.is_empty());
        assert!(
            d.skipped
                .iter()
                .any(|s| s.contains("filtered out") && s.contains("wip")),
            "{:?}",
            d.skipped
        );
        // The card still follows the PR: it shows up when the title changes.
        assert!(d.state.unwrap().card.is_some());

        let mut c = cfg();
        c.filters.require_labels = vec!["ready".into()];
        let d = decide(
            &requested("acme/app", &["later"], |_| {}),
            &PrState::default(),
            &c,
        );
        assert!(d.notifications.is_empty());
        let d = decide(
            &requested("acme/app", &["Ready"], |_| {}),
            &PrState::default(),
            &c,
        );
        assert_eq!(d.notifications.len(), 1);

        let mut c = cfg();
        c.filters.exclude_authors = vec![Glob::new("car*").unwrap()];
        assert!(
            decide(&requested("acme/app", &[], |_| {}), &PrState::default(), &c)
                .notifications
                .is_empty()
        );
    }

    #[test]
    fn opened_routes_get_the_card_once_and_when_a_label_makes_it_match() {
        let mut c = cfg();
        c.routes = vec![route("C0BACKEND1", |r| {
            r.kinds = vec![Kind::Opened];
            r.labels = vec!["backend".into()];
        })];
        let pr_event = |action: &str, labels: &[&str]| {
            let mut v = base(action, "carol");
            v["pull_request"] = pr_json("carol", false);
            v["pull_request"]["labels"] = json!(
                labels
                    .iter()
                    .map(|l| json!({"name": l}))
                    .collect::<Vec<_>>()
            );
            event("pull_request", v)
        };
        // Opened without the label: nothing.
        let d = decide(&pr_event("opened", &[]), &PrState::default(), &c);
        assert!(d.notifications.is_empty());
        let state = d.state.unwrap();
        // The label is added: the card, as the thread's root.
        let d = decide(&pr_event("labeled", &["backend"]), &state, &c);
        assert_eq!(
            sent(&d),
            vec![("C0BACKEND1".into(), Place::Root, Kind::Opened)]
        );
        let state = d.state.unwrap();
        // Another label event: not twice.
        let d = decide(&pr_event("labeled", &["backend", "db"]), &state, &c);
        assert!(d.notifications.is_empty());
        // Without threads the card is a message of its own.
        c.threads = false;
        let d = decide(&pr_event("opened", &["backend"]), &PrState::default(), &c);
        assert_eq!(
            sent(&d),
            vec![("C0BACKEND1".into(), Place::Message, Kind::Opened)]
        );
    }

    #[test]
    fn drafts_get_nothing_until_ready_unless_allowed() {
        let mut c = cfg();
        c.routes = vec![route("C0ALLPRS01", |r| r.kinds = vec![Kind::Opened])];
        let mut v = base("opened", "carol");
        v["pull_request"] = pr_json("carol", true);
        let d = decide(&event("pull_request", v.clone()), &PrState::default(), &c);
        assert!(d.notifications.is_empty(), "a draft is quiet");
        let mut ready = v.clone();
        ready["action"] = json!("ready_for_review");
        ready["pull_request"]["draft"] = json!(false);
        let d2 = decide(&event("pull_request", ready), &d.state.unwrap(), &c);
        assert_eq!(
            sent(&d2),
            vec![("C0ALLPRS01".into(), Place::Root, Kind::Opened)]
        );
        c.filters.drafts = true;
        let d = decide(&event("pull_request", v), &PrState::default(), &c);
        assert_eq!(d.notifications.len(), 1, "drafts = true shows drafts");
    }
}
