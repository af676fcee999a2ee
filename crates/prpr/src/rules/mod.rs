//! Who gets told what: pure functions of (event, stored PR state, config).
//!
//! Nothing here does I/O, and nothing here writes Slack markup. [`decide`]
//! takes a decoded event, the state prpr has kept for that pull request, and
//! the notification settings, and returns the notices to queue (as data, see
//! [`crate::notice`]) plus the PR's next state. That keeps every rule
//! testable with plain values and lets the store run the whole decision inside
//! the transaction that records the delivery.
//!
//! One file per kind of notice: [`review_request`], [`review`], [`mention`],
//! [`merged`], and [`ecs`] for ECS deploy trouble (not GitHub events: it has
//! its own entry point, [`ecs::decide`]); [`recipients`] turns a GitHub login or team into Slack targets;
//! [`team_expansion`] passes a team's review request on to its members
//! (decided here, carried out later by [`crate::outbox::teams`]).

pub mod card;
pub mod ecs;
pub mod mention;
pub mod merged;
pub mod recipients;
pub mod review;
pub mod review_request;
pub mod route;
pub mod routing;
pub mod team_expansion;

use crate::config::NotifyConfig;
use crate::github::{Account, Event, PullRequest};
pub use crate::notice::{Decision, Kind, Notification, PrState};
use crate::notice::{Place, Pr, is_dm};

/// Runs the rule for `event`, keeps the PR's card current, and places
/// channel notices in the PR's thread when threads are on.
pub fn decide(event: &Event, state: &PrState, cfg: &NotifyConfig) -> Decision {
    let mut d = notices(event, state, cfg);
    let card = card::next(event, state.card.as_ref());
    if card.is_some() && card != state.card {
        let mut next = d.state.take().unwrap_or_else(|| state.clone());
        next.card = card.clone();
        d.state = Some(next);
        d.card_changed = true;
    }
    if let Some(card) = &card {
        routing::apply(&mut d, event, state, card, cfg);
    }
    place_in_threads(&mut d, state, cfg);
    d
}

/// Places channel notices about a PR in its thread when threads are on
/// (the card as root for `opened`, a reply for the rest), and marks the
/// PR as threaded.
pub(crate) fn place_in_threads(d: &mut Decision, state: &PrState, cfg: &NotifyConfig) {
    if !cfg.threads {
        return;
    }
    let mut threaded = false;
    for n in &mut d.notifications {
        if !is_dm(&n.channel) && n.notice.pr().is_some() && n.place.is_message() {
            n.place = match n.kind() {
                Kind::Opened => Place::Root,
                kind => Place::Reply {
                    broadcast: cfg.broadcast.contains(&kind),
                },
            };
            threaded = true;
        }
    }
    if threaded && !state.threaded {
        let mut next = d.state.take().unwrap_or_else(|| state.clone());
        next.threaded = true;
        d.state = Some(next);
    }
}

/// The notices the event's own rule decides.
fn notices(event: &Event, state: &PrState, cfg: &NotifyConfig) -> Decision {
    let sender = match event {
        Event::Ping | Event::Other { .. } => return Decision::skip("no rule for this event"),
        Event::PullRequest(e) => &e.sender,
        Event::Review(e) => &e.sender,
        Event::IssueComment(e) => &e.sender,
        Event::ReviewComment(e) => &e.sender,
    };
    if is_bot(sender, cfg) {
        // State still follows the PR (a bot may request reviews or be removed),
        // but a bot's actions never notify anyone.
        let mut d = match event {
            Event::PullRequest(e) => review_request::on_pull_request(e, state, cfg),
            Event::Review(e) => review::on_review(e, state, cfg),
            _ => Decision::default(),
        };
        d.notifications.clear();
        d.expansions.clear();
        d.skipped = vec![format!("sender {} is a bot", sender.login)];
        // Nobody was told, so nothing the bot requested counts as announced:
        // a later `ready_for_review` still announces it.
        if let Some(next) = &mut d.state {
            next.requested.retain(|k| state.requested.contains(k));
            next.requested_teams
                .retain(|k| state.requested_teams.contains(k));
            if next == state {
                d.state = None;
            }
        }
        return d;
    }
    match event {
        Event::PullRequest(e) => match e.action.as_str() {
            "closed" => merged::on_closed(e, cfg),
            _ => review_request::on_pull_request(e, state, cfg),
        },
        Event::Review(e) => review::on_review(e, state, cfg),
        Event::IssueComment(e) => mention::on_issue_comment(e, cfg),
        Event::ReviewComment(e) => mention::on_review_comment(e, cfg),
        Event::Ping | Event::Other { .. } => Decision::skip("no rule for this event"),
    }
}

/// Does now the part of [`decide`]'s work that depends on the event alone:
/// the comment's mention scan (linear in its size), kept on the event.
///
/// Why: [`decide`] runs inside [`crate::store::Store::record`]'s transaction,
/// which on SQLite holds the only write lock. Scanning a long comment's
/// Markdown there made every concurrent delivery wait behind it (past
/// GitHub's 10 s timeout for a comment of 100,000 mentions), so the pipeline
/// prepares first and `decide` then only reads the result.
pub fn prepare(event: &Event) {
    mention::scan(event);
}

fn is_bot(sender: &Account, cfg: &NotifyConfig) -> bool {
    cfg.ignore_bots
        && (sender.is_bot_account()
            || cfg
                .bots
                .iter()
                .any(|b| b.eq_ignore_ascii_case(&sender.login)))
}

/// The facts about `pr` a notice carries, linking to `link` (the PR, or the
/// review or comment the notice is about).
fn pr_facts(pr: &PullRequest, repo: &str, link: &str) -> Pr {
    Pr {
        repo: repo.to_string(),
        number: pr.number,
        title: pr.title.clone(),
        author: pr.user.login.clone(),
        link: link.to_string(),
        size: pr.additions.zip(pr.deletions),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders for rule tests: small, explicit payloads in GitHub's shapes.
    use crate::config::{DeliveryMode, NotifyConfig, SlackUser, TeamTarget};
    use crate::github::Event;

    pub fn cfg() -> NotifyConfig {
        let mut c = NotifyConfig {
            delivery: DeliveryMode::Dm,
            channel: Some("C0GENERAL1".into()),
            ..NotifyConfig::default()
        };
        for (login, id) in [
            ("alice", "U0ALICE01"),
            ("bob", "U0BOB0001"),
            ("carol", "U0CAROL01"),
        ] {
            c.members.insert(login, SlackUser::Id(id.into()));
        }
        c.members
            .insert("hank", SlackUser::Handle("hank_slack".into()));
        c.teams.insert(
            "acme/backend",
            TeamTarget {
                usergroup: Some("S0BACKEND1".into()),
                channel: Some("C0BACKEND1".into()),
            },
        );
        c.teams.insert(
            "acme/docs",
            TeamTarget {
                usergroup: None,
                channel: Some("C0DOCS0001".into()),
            },
        );
        c
    }

    pub fn pr_json(author: &str, draft: bool) -> serde_json::Value {
        serde_json::json!({
            "number": 42, "title": "Add <caching> & stuff", "html_url": "https://github.com/acme/app/pull/42",
            "user": {"login": author, "type": "User"}, "draft": draft, "merged": false,
            "additions": 120, "deletions": 7,
            "requested_reviewers": [], "requested_teams": []
        })
    }

    pub fn event(name: &str, v: serde_json::Value) -> Event {
        Event::parse(name, v.to_string().as_bytes()).expect("valid test payload")
    }

    /// `(channel, first line of the text)` of each notification, as a
    /// reader scanning Slack sees them.
    pub fn first_lines(d: &crate::notice::Decision) -> Vec<(&str, String)> {
        d.notifications
            .iter()
            .map(|n| {
                (
                    n.channel.as_str(),
                    n.text().lines().next().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    pub fn base(action: &str, sender: &str) -> serde_json::Value {
        serde_json::json!({
            "action": action,
            "repository": {"full_name": "acme/app", "owner": {"login": "acme", "type": "Organization"}},
            "sender": {"login": sender, "type": if sender.ends_with("[bot]") { "Bot" } else { "User" }}
        })
    }
}
