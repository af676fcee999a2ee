//! A team's review request passed on to its members, one DM each.
//!
//! A team mapped to a Slack user group is pinged as a group; a team without
//! one only gets a line in a channel, which nobody feels addressed by. So,
//! when GitHub credentials exist, the rules [`defer`] such a request: the
//! store keeps it beside the delivery, and after `[notify] team_debounce`
//! the team expander ([`crate::outbox::teams`]) reads the team's members
//! from GitHub and asks [`expand`] what to queue. Both halves are pure
//! functions of the stored PR state, so the decision made after the wait is
//! made from what GitHub did meanwhile:
//!
//! - GitHub's team auto-assignment replaces the team request by member
//!   requests within seconds. Those members were told by their own request,
//!   and once the team request is gone nothing more is sent: each member is
//!   told once.
//! - The PR's author, whoever asked, and anyone requested by name are left
//!   out; each remaining member gets exactly what a request by name would
//!   have given them (their DM, or a mention in a channel, routes included).
//! - More than `[notify] team_expand_max` of them, or no member list from
//!   GitHub: one notice in the team's channel says nobody was DMed.

use crate::config::NotifyConfig;
use crate::notice::{
    Decision, NotExpanded, Notice, PrState, PrStatus, ReviewState, TeamExpansion, Whom,
};

use super::recipients::{self, Unmapped};
use super::{place_in_threads, routing};

/// The expansion of team `org/slug`'s request `notice`, when it is to be
/// passed on: expansion is on (GitHub credentials, a non-zero
/// `team_expand_max`) and the team has no user group to ping instead.
pub fn defer(
    org: &str,
    slug: &str,
    sender: &str,
    notice: &Notice,
    cfg: &NotifyConfig,
) -> Option<TeamExpansion> {
    if !cfg.expand_teams || cfg.team_expand_max == 0 {
        return None;
    }
    if cfg
        .teams
        .get(org, slug)
        .is_some_and(|t| t.usergroup.is_some())
    {
        return None;
    }
    Some(TeamExpansion {
        org: org.to_string(),
        slug: slug.to_string(),
        notice: notice.clone(),
        sender: sender.to_string(),
        delay_ms: cfg.team_debounce.as_millis() as u64,
    })
}

/// Is the expansion still to be done, given the PR as it stands now? The
/// reason when not: the team request was removed (replaced by member
/// requests, or withdrawn), or the PR is no longer open for review.
pub fn still_wanted(x: &TeamExpansion, state: &PrState) -> Result<(), String> {
    let team = format!("{}/{}", x.org, x.slug);
    let Some(card) = &state.card else {
        return Err(format!(
            "nothing known about the PR of team {team}'s request"
        ));
    };
    if card.status != PrStatus::Open {
        return Err(format!(
            "the PR is no longer open for review; team {team} not expanded"
        ));
    }
    let requested = card
        .reviewers
        .iter()
        .any(|r| r.team && r.state == ReviewState::Pending && r.name.eq_ignore_ascii_case(&team));
    if !requested {
        return Err(format!(
            "the review request to team {team} was removed (replaced by member requests, or withdrawn)"
        ));
    }
    Ok(())
}

/// The members to tell: not the PR's author, not who asked, not anyone
/// requested by name (they were told by their own request), each once,
/// in the order GitHub lists them.
pub fn to_tell(x: &TeamExpansion, members: &[String], state: &PrState) -> Vec<String> {
    let author = match &x.notice {
        Notice::ReviewRequested { pr, .. } => pr.author.as_str(),
        _ => "",
    };
    let by_name = |login: &str| {
        let key = login.to_ascii_lowercase();
        state.requested.contains(&key)
            || state.card.as_ref().is_some_and(|c| {
                c.reviewers.iter().any(|r| {
                    !r.team && r.state == ReviewState::Pending && r.name.eq_ignore_ascii_case(login)
                })
            })
    };
    let mut out: Vec<String> = Vec::new();
    for m in members {
        if m.eq_ignore_ascii_case(author)
            || m.eq_ignore_ascii_case(&x.sender)
            || by_name(m)
            || out.iter().any(|o| o.eq_ignore_ascii_case(m))
        {
            continue;
        }
        out.push(m.clone());
    }
    out
}

/// What to queue for a due expansion, given the team's `members` (`None`:
/// GitHub would not list them), the PR's current state and the settings.
/// The notices are filtered, routed and threaded as any other.
pub fn expand(
    x: &TeamExpansion,
    members: Option<&[String]>,
    state: &PrState,
    cfg: &NotifyConfig,
) -> Decision {
    if let Err(why) = still_wanted(x, state) {
        return Decision::skip(why);
    }
    let (Some(card), Notice::ReviewRequested { pr, by, .. }) = (&state.card, &x.notice) else {
        return Decision::skip("not a review request");
    };
    let mut d = Decision::default();
    let not_expanded = |why: NotExpanded| {
        let notice = Notice::TeamNotExpanded {
            pr: pr.clone(),
            org: x.org.clone(),
            slug: x.slug.clone(),
            why,
        };
        Decision {
            notifications: recipients::team(&x.org, &x.slug, cfg, notice)
                .into_iter()
                .collect(),
            ..Decision::default()
        }
    };
    match members {
        Some(list) => {
            let told = to_tell(x, list, state);
            if told.len() > cfg.team_expand_max {
                d = not_expanded(NotExpanded::TooMany {
                    members: told.len() as u32,
                    max: cfg.team_expand_max as u32,
                });
                routing::apply_to_notices(&mut d, card, cfg);
            } else if told.is_empty() {
                d.skipped.push(format!(
                    "no member of team {}/{} left to tell",
                    x.org, x.slug
                ));
            }
            let told = if told.len() > cfg.team_expand_max {
                Vec::new()
            } else {
                told
            };
            for login in &told {
                // One decision per member: routes copy each notice by itself.
                let notice = Notice::ReviewRequested {
                    pr: pr.clone(),
                    by: by.clone(),
                    whom: Whom::You,
                    again: state.reviewed.contains(&login.to_ascii_lowercase()),
                };
                let mut one = Decision {
                    notifications: recipients::person(login, cfg, Unmapped::NameInChannel, notice),
                    ..Decision::default()
                };
                routing::apply_to_notices(&mut one, card, cfg);
                d.notifications.append(&mut one.notifications);
                d.skipped.append(&mut one.skipped);
            }
        }
        None => {
            d = not_expanded(NotExpanded::Unavailable);
            routing::apply_to_notices(&mut d, card, cfg);
        }
    }
    place_in_threads(&mut d, state, cfg);
    d
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Kind, PrState, decide};
    use super::*;
    use crate::config::{DeliveryMode, SlackUser};
    use serde_json::json;

    fn expanding_cfg() -> NotifyConfig {
        let mut c = cfg();
        c.expand_teams = true;
        c.members.insert("dave", SlackUser::Id("U0DAVE001".into()));
        c
    }

    /// `carol` (the author) asks team `slug`; GitHub lists `requested_teams`
    /// and `reviewers` as requested after it.
    fn team_request(slug: &str, reviewers: &[&str]) -> crate::github::Event {
        let mut v = base("review_requested", "carol");
        v["pull_request"] = pr_json("carol", false);
        v["pull_request"]["requested_teams"] = json!([{"slug": slug}]);
        v["pull_request"]["requested_reviewers"] = json!(
            reviewers
                .iter()
                .map(|r| json!({"login": r}))
                .collect::<Vec<_>>()
        );
        v["requested_team"] = json!({"slug": slug, "name": slug});
        event("pull_request", v)
    }

    fn members(logins: &[&str]) -> Vec<String> {
        logins.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn a_team_without_a_user_group_is_deferred_only_with_credentials() {
        let d = decide(&team_request("docs", &[]), &PrState::default(), &cfg());
        assert!(d.expansions.is_empty(), "expansion off: exactly as before");
        let c = expanding_cfg();
        let d = decide(&team_request("docs", &[]), &PrState::default(), &c);
        assert_eq!(d.notifications.len(), 1, "the team's channel still told");
        assert_eq!(d.notifications[0].channel, "C0DOCS0001");
        assert_eq!(d.expansions.len(), 1);
        let x = &d.expansions[0];
        assert_eq!((x.org.as_str(), x.slug.as_str()), ("acme", "docs"));
        assert_eq!((x.sender.as_str(), x.delay_ms), ("carol", 5000));
        // A team with a user group is pinged as one: no expansion.
        let d = decide(&team_request("backend", &[]), &PrState::default(), &c);
        assert!(d.expansions.is_empty());
        // A bot's request tells nobody, members neither.
        let mut v = base("review_requested", "renovate[bot]");
        v["pull_request"] = pr_json("carol", false);
        v["requested_team"] = json!({"slug": "docs"});
        let d = decide(&event("pull_request", v), &PrState::default(), &c);
        assert!(d.expansions.is_empty());
        // team_expand_max = 0 turns it off.
        let mut off = expanding_cfg();
        off.team_expand_max = 0;
        assert!(
            decide(&team_request("docs", &[]), &PrState::default(), &off)
                .expansions
                .is_empty()
        );
    }

    /// The state after the team request, and its expansion.
    fn requested_state(c: &NotifyConfig, reviewers: &[&str]) -> (PrState, TeamExpansion) {
        let d = decide(&team_request("docs", reviewers), &PrState::default(), c);
        let x = d.expansions[0].clone();
        let mut state = d.state.expect("state");
        for r in reviewers {
            state.requested.insert(r.to_string());
        }
        (state, x)
    }

    #[test]
    fn members_but_the_author_the_sender_and_those_asked_by_name_are_dmed() {
        let mut c = expanding_cfg();
        c.threads = false;
        let (state, x) = requested_state(&c, &["bob"]);
        let list = members(&["carol", "alice", "bob", "dave", "ALICE"]);
        assert_eq!(to_tell(&x, &list, &state), vec!["alice", "dave"]);
        let d = expand(&x, Some(&list), &state, &c);
        let got = first_lines(&d);
        assert_eq!(
            got,
            vec![
                (
                    "U0ALICE01",
                    ":eyes: @carol requested your review on <https://github.com/acme/app/pull/42|acme/app#42>".to_string()
                ),
                (
                    "U0DAVE001",
                    ":eyes: @carol requested your review on <https://github.com/acme/app/pull/42|acme/app#42>".to_string()
                ),
            ]
        );
        assert!(
            d.notifications
                .iter()
                .all(|n| n.kind() == Kind::ReviewRequested)
        );
        // An unmapped member is named in the default channel, as a request by
        // name would; with channel delivery, a mention there.
        c.delivery = DeliveryMode::Channel;
        let d = expand(&x, Some(&members(&["zed", "alice"])), &state, &c);
        let texts: Vec<String> = d.notifications.iter().map(|n| n.text()).collect();
        assert!(
            texts[0].starts_with("@zed :eyes: @carol requested your review"),
            "{texts:?}"
        );
        assert!(texts[1].starts_with("<@U0ALICE01> :eyes:"), "{texts:?}");
    }

    #[test]
    fn above_the_cap_the_team_channel_hears_why_nobody_was_dmed() {
        let mut c = expanding_cfg();
        c.team_expand_max = 2;
        let (state, x) = requested_state(&c, &[]);
        let d = expand(&x, Some(&members(&["alice", "bob", "dave"])), &state, &c);
        assert_eq!(d.notifications.len(), 1);
        let n = &d.notifications[0];
        assert_eq!(n.channel, "C0DOCS0001");
        assert!(
            matches!(n.place, crate::notice::Place::Reply { .. }),
            "in the PR's thread"
        );
        assert_eq!(
            n.text().lines().next().unwrap_or(""),
            ":busts_in_silhouette: Team *acme/docs* has 3 members to ask, more than `team_expand_max` (2): nobody was messaged directly about <https://github.com/acme/app/pull/42|acme/app#42>."
        );
        let d = expand(&x, None, &state, &c);
        assert!(
            d.notifications[0]
                .text()
                .starts_with(":busts_in_silhouette: GitHub would not list the members of team *acme/docs*: nobody was messaged directly"),
            "{}",
            d.notifications[0].text()
        );
    }

    #[test]
    fn a_team_request_replaced_by_member_requests_is_not_expanded() {
        let c = expanding_cfg();
        let (state, x) = requested_state(&c, &[]);
        // GitHub's auto-assignment: the team request is removed.
        let mut v = base("review_request_removed", "carol");
        v["pull_request"] = pr_json("carol", false);
        v["pull_request"]["requested_reviewers"] = json!([{"login": "alice"}, {"login": "dave"}]);
        v["requested_team"] = json!({"slug": "docs"});
        let removed = decide(&event("pull_request", v), &state, &c);
        let after = removed.state.expect("state");
        let d = expand(&x, Some(&members(&["alice", "dave"])), &after, &c);
        assert!(d.notifications.is_empty());
        assert_eq!(
            d.skipped,
            vec!["the review request to team acme/docs was removed (replaced by member requests, or withdrawn)".to_string()]
        );
        // Closed meanwhile: nothing either.
        let mut closed = state.clone();
        if let Some(card) = &mut closed.card {
            card.status = PrStatus::Closed;
        }
        assert!(
            expand(&x, Some(&members(&["alice"])), &closed, &c)
                .notifications
                .is_empty()
        );
    }
}
