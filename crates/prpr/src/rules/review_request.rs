//! "You were asked to review PR X" — once, to the right person or team.
//!
//! GitHub sends one `review_requested` delivery per reviewer or team. A request
//! is announced once: the PR state remembers it until it is removed or answered
//! by a review, and a request to someone who already reviewed says
//! *re-requested*. Drafts stay quiet; `ready_for_review` announces everyone
//! still requested.

use crate::config::NotifyConfig;
use crate::github::PullRequestEvent;
use crate::notice::{Notice, Whom};

use super::recipients::{self, Unmapped};
use super::team_expansion;
use super::{Decision, Notification, PrState, pr_facts};

pub fn on_pull_request(e: &PullRequestEvent, state: &PrState, cfg: &NotifyConfig) -> Decision {
    let org = &e.repository.owner.login;
    match e.action.as_str() {
        "review_requested" => {
            let mut next = state.clone();
            let mut d = Decision::default();
            if let Some(reviewer) = &e.requested_reviewer {
                let key = reviewer.login.to_ascii_lowercase();
                if reviewer.login.eq_ignore_ascii_case(&e.sender.login) {
                    d.skipped
                        .push(format!("{} requested their own review", reviewer.login));
                } else if e.pull_request.draft {
                    // Not remembered: `ready_for_review` announces it.
                    d.skipped.push("pull request is a draft".into());
                } else if state.requested.contains(&key) {
                    d.skipped
                        .push(format!("review from {} already requested", reviewer.login));
                } else {
                    let again = state.reviewed.contains(&key);
                    d.notifications = tell_reviewer(e, &reviewer.login, again, cfg);
                    next.requested.insert(key);
                }
            } else if let Some(team) = &e.requested_team {
                let key = format!("{org}/{}", team.slug).to_ascii_lowercase();
                if e.pull_request.draft {
                    d.skipped.push("pull request is a draft".into());
                } else if state.requested_teams.contains(&key) {
                    d.skipped.push(format!(
                        "review from team {org}/{} already requested",
                        team.slug
                    ));
                } else {
                    tell_team(&mut d, e, org, &team.slug, cfg);
                    next.requested_teams.insert(key);
                }
            } else {
                d.skipped
                    .push("review_requested without requested_reviewer or requested_team".into());
            }
            if d.notifications.is_empty() && d.skipped.is_empty() && d.expansions.is_empty() {
                d.skipped
                    .push("nobody to tell (no Slack mapping and no default channel)".into());
            }
            d.state = (next != *state).then_some(next);
            d
        }
        "review_request_removed" => {
            let mut next = state.clone();
            if let Some(r) = &e.requested_reviewer {
                next.requested.remove(&r.login.to_ascii_lowercase());
            }
            if let Some(t) = &e.requested_team {
                next.requested_teams
                    .remove(&format!("{org}/{}", t.slug).to_ascii_lowercase());
            }
            Decision {
                state: (next != *state).then_some(next),
                skipped: vec!["review request removed".into()],
                ..Decision::default()
            }
        }
        "ready_for_review" => {
            let mut next = state.clone();
            let mut d = Decision::default();
            // Everyone requested and not yet told: requests made while the PR
            // was a draft. Those announced before it went back to draft are
            // still open and are not repeated.
            let mut already = 0;
            for r in &e.pull_request.requested_reviewers {
                let key = r.login.to_ascii_lowercase();
                if r.login.eq_ignore_ascii_case(&e.sender.login) {
                    continue;
                }
                if state.requested.contains(&key) {
                    already += 1;
                    continue;
                }
                d.notifications.extend(tell_reviewer(
                    e,
                    &r.login,
                    state.reviewed.contains(&key),
                    cfg,
                ));
                next.requested.insert(key);
            }
            for t in &e.pull_request.requested_teams {
                let key = format!("{org}/{}", t.slug).to_ascii_lowercase();
                if state.requested_teams.contains(&key) {
                    already += 1;
                    continue;
                }
                tell_team(&mut d, e, org, &t.slug, cfg);
                next.requested_teams.insert(key);
            }
            if d.notifications.is_empty() && d.expansions.is_empty() {
                d.skipped.push(if already > 0 {
                    "every requested reviewer was already told".into()
                } else {
                    "no reviewer requested yet".into()
                });
            }
            d.state = (next != *state).then_some(next);
            d
        }
        other => Decision::skip(format!("no rule for pull_request.{other}")),
    }
}

fn tell_reviewer(
    e: &PullRequestEvent,
    login: &str,
    again: bool,
    cfg: &NotifyConfig,
) -> Vec<Notification> {
    recipients::person(
        login,
        cfg,
        Unmapped::NameInChannel,
        request(e, Whom::You, again),
    )
}

/// The team's notice (its channel), and its members' turn later when the
/// team has no user group (see [`team_expansion`]).
fn tell_team(d: &mut Decision, e: &PullRequestEvent, org: &str, slug: &str, cfg: &NotifyConfig) {
    let whom = Whom::Team {
        org: org.to_string(),
        slug: slug.to_string(),
    };
    let notice = request(e, whom, false);
    d.expansions.extend(team_expansion::defer(
        org,
        slug,
        &e.sender.login,
        &notice,
        cfg,
    ));
    d.notifications
        .extend(recipients::team(org, slug, cfg, notice));
}

fn request(e: &PullRequestEvent, whom: Whom, again: bool) -> Notice {
    let pr = &e.pull_request;
    Notice::ReviewRequested {
        pr: pr_facts(pr, &e.repository.full_name, &pr.html_url),
        by: e.sender.login.clone(),
        whom,
        again,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Kind, PrState, decide};
    use crate::config::DeliveryMode;
    use serde_json::json;

    fn requested(sender: &str, reviewer: &str, draft: bool) -> crate::github::Event {
        let mut v = base("review_requested", sender);
        v["pull_request"] = pr_json("carol", draft);
        v["requested_reviewer"] = json!({"login": reviewer, "type": "User"});
        event("pull_request", v)
    }

    const PR_LINE: &str = "*Add &lt;caching&gt; &amp; stuff* · by @carol · +120 −7";

    #[test]
    fn review_request_dms_the_reviewer_once() {
        let cfg = cfg();
        let d = decide(
            &requested("carol", "Alice", false),
            &PrState::default(),
            &cfg,
        );
        assert_eq!(d.notifications.len(), 1);
        let n = &d.notifications[0];
        assert_eq!(n.channel, "U0ALICE01");
        assert_eq!(n.kind(), Kind::ReviewRequested);
        assert_eq!(
            n.text(),
            format!(
                ":eyes: @carol requested your review on <https://github.com/acme/app/pull/42|acme/app#42>\n{PR_LINE}"
            )
        );
        let state = d.state.expect("state changes");
        assert!(state.requested.contains("alice"));
        // The same request again (a second delivery, not a redelivery) is not announced twice.
        let again = decide(&requested("carol", "alice", false), &state, &cfg);
        assert!(again.notifications.is_empty());
        assert_eq!(
            again.skipped,
            vec!["review from alice already requested".to_string()]
        );
    }

    #[test]
    fn re_request_after_a_review_says_so() {
        let state = PrState {
            reviewed: ["alice".to_string()].into(),
            ..PrState::default()
        };
        let d = decide(&requested("carol", "alice", false), &state, &cfg());
        assert_eq!(
            d.notifications[0].text(),
            format!(
                ":repeat: @carol re-requested your review on <https://github.com/acme/app/pull/42|acme/app#42>\n{PR_LINE}"
            )
        );
    }

    #[test]
    fn channel_and_both_delivery() {
        let mut c = cfg();
        c.delivery = DeliveryMode::Channel;
        let d = decide(&requested("carol", "alice", false), &PrState::default(), &c);
        assert_eq!(d.notifications.len(), 1);
        assert_eq!(d.notifications[0].channel, "C0GENERAL1");
        assert!(
            d.notifications[0]
                .text()
                .starts_with("<@U0ALICE01> :eyes: @carol requested your review")
        );
        c.delivery = DeliveryMode::Both;
        let d = decide(&requested("carol", "alice", false), &PrState::default(), &c);
        let chans: Vec<_> = d.notifications.iter().map(|n| n.channel.as_str()).collect();
        assert_eq!(chans, vec!["U0ALICE01", "C0GENERAL1"]);
    }

    #[test]
    fn unmapped_reviewer_is_named_in_plain_text_in_the_default_channel() {
        let d = decide(
            &requested("carol", "zed", false),
            &PrState::default(),
            &cfg(),
        );
        assert_eq!(d.notifications.len(), 1);
        assert_eq!(d.notifications[0].channel, "C0GENERAL1");
        assert!(
            d.notifications[0]
                .text()
                .starts_with("@zed :eyes: @carol requested your review")
        );
        assert!(!d.notifications[0].text().contains("<@"));
        // Without a default channel nobody can be told, and the decision says why.
        let mut c = cfg();
        c.channel = None;
        let d = decide(&requested("carol", "zed", false), &PrState::default(), &c);
        assert!(d.notifications.is_empty());
        assert_eq!(
            d.skipped,
            vec!["nobody to tell (no Slack mapping and no default channel)".to_string()]
        );
    }

    #[test]
    fn skips_self_requests_bots_and_drafts() {
        let c = cfg();
        let d = decide(&requested("alice", "alice", false), &PrState::default(), &c);
        assert!(d.notifications.is_empty());
        assert_eq!(
            d.skipped,
            vec!["alice requested their own review".to_string()]
        );
        let d = decide(
            &requested("renovate[bot]", "alice", false),
            &PrState::default(),
            &c,
        );
        assert!(d.notifications.is_empty());
        assert_eq!(d.skipped, vec!["sender renovate[bot] is a bot".to_string()]);
        // Nobody was told about a bot's request, so it is not remembered as
        // announced: a later ready_for_review still announces it.
        assert!(d.state.is_none_or(|s| !s.requested.contains("alice")));
        let mut c2 = cfg();
        c2.bots = vec!["ci-user".into()];
        assert!(
            decide(
                &requested("CI-User", "alice", false),
                &PrState::default(),
                &c2
            )
            .notifications
            .is_empty()
        );
        let d = decide(&requested("carol", "alice", true), &PrState::default(), &c);
        assert!(d.notifications.is_empty());
        assert_eq!(d.skipped, vec!["pull request is a draft".to_string()]);
    }

    #[test]
    fn ready_for_review_tells_everyone_still_requested() {
        let mut v = base("ready_for_review", "carol");
        v["pull_request"] = pr_json("carol", false);
        v["pull_request"]["requested_reviewers"] = json!([{"login": "alice"}, {"login": "bob"}]);
        v["pull_request"]["requested_teams"] = json!([{"slug": "backend", "name": "Backend"}]);
        let state = PrState {
            reviewed: ["bob".to_string()].into(),
            ..PrState::default()
        };
        let d = decide(&event("pull_request", v), &state, &cfg());
        let got = first_lines(&d);
        assert_eq!(
            got.iter()
                .map(|(c, t)| (*c, t.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (
                    "U0ALICE01",
                    ":eyes: @carol requested your review on <https://github.com/acme/app/pull/42|acme/app#42>"
                ),
                (
                    "U0BOB0001",
                    ":repeat: @carol re-requested your review on <https://github.com/acme/app/pull/42|acme/app#42>"
                ),
                (
                    "C0BACKEND1",
                    "<!subteam^S0BACKEND1> :eyes: @carol requested a review from team *acme/backend* on <https://github.com/acme/app/pull/42|acme/app#42>"
                ),
            ]
        );
    }

    #[test]
    fn back_to_draft_and_ready_again_does_not_repeat_a_request() {
        let c = cfg();
        let d = decide(&requested("carol", "alice", false), &PrState::default(), &c);
        assert_eq!(d.notifications.len(), 1);
        let state = d.state.expect("remembered");
        let mut v = base("ready_for_review", "carol");
        v["pull_request"] = pr_json("carol", false);
        v["pull_request"]["requested_reviewers"] = json!([{"login": "alice"}, {"login": "bob"}]);
        let d = decide(&event("pull_request", v), &state, &c);
        let told: Vec<&str> = d.notifications.iter().map(|n| n.channel.as_str()).collect();
        assert_eq!(told, vec!["U0BOB0001"], "alice was already told");
    }

    fn team_requested(slug: &str) -> crate::github::Event {
        let mut v = base("review_requested", "carol");
        v["pull_request"] = pr_json("carol", false);
        v["requested_team"] = json!({"slug": slug, "name": slug});
        event("pull_request", v)
    }

    #[test]
    fn team_requests_use_group_then_channel_then_default() {
        let c = cfg();
        let d = decide(&team_requested("backend"), &PrState::default(), &c);
        assert_eq!(d.notifications[0].channel, "C0BACKEND1");
        assert!(d.notifications[0].text().starts_with(
            "<!subteam^S0BACKEND1> :eyes: @carol requested a review from team *acme/backend*"
        ));
        let d = decide(&team_requested("docs"), &PrState::default(), &c);
        assert_eq!(d.notifications[0].channel, "C0DOCS0001");
        assert!(
            d.notifications[0]
                .text()
                .starts_with(":eyes: @carol requested a review from team *acme/docs*")
        );
        let d = decide(&team_requested("unknown"), &PrState::default(), &c);
        assert_eq!(d.notifications[0].channel, "C0GENERAL1");
        assert!(
            d.notifications[0]
                .text()
                .starts_with(":eyes: @carol requested a review from team *acme/unknown*")
        );
        let mut c2 = cfg();
        c2.channel = None;
        let d = decide(&team_requested("unknown"), &PrState::default(), &c2);
        assert!(
            d.notifications.is_empty(),
            "never fails, just has nowhere to go"
        );
    }

    #[test]
    fn removal_forgets_the_request() {
        let mut v = base("review_request_removed", "carol");
        v["pull_request"] = pr_json("carol", false);
        v["requested_reviewer"] = json!({"login": "alice"});
        let state = PrState {
            requested: ["alice".to_string()].into(),
            ..PrState::default()
        };
        let d = decide(&event("pull_request", v), &state, &cfg());
        assert!(d.notifications.is_empty());
        let next = d.state.expect("the state changes");
        assert!(next.requested.is_empty() && next.requested_teams.is_empty());
    }
}
