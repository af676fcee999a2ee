//! "You were mentioned in a comment" — for PR conversation comments, review
//! comments and review bodies.
//!
//! Every `@login` found by [`crate::github::mentions::extract`] that maps to a Slack
//! member is told, with a link to the comment; `@org/team` mentions go to the
//! team's user group. The commenter is never told about their own words, and a
//! login nobody mapped is not worth a channel post.

use crate::config::NotifyConfig;
pub use crate::github::mentions::Mention;
use crate::github::mentions::extract;
use crate::github::{Event, IssueCommentEvent, ReviewCommentEvent};
use crate::notice::{Notice, Notification, Pr, Whom, excerpt};

use super::recipients::{self, Unmapped};
use super::{Decision, pr_facts};

/// Where the mention happened.
pub struct Target<'a> {
    /// The PR, linking to the comment or review itself.
    pub pr: Pr,
    /// The repository's owner: a team of this organisation may be told in
    /// the default channel even without a user group.
    pub org: &'a str,
    pub commenter: &'a str,
}

/// Scans the comment `event` carries, if a mention rule will read it, and
/// keeps the result on the comment ([`crate::github::Comment::mentions`]):
/// for [`super::prepare`], before the store's write transaction.
pub fn scan(event: &Event) {
    match event {
        Event::IssueComment(e) if e.action == "created" && e.issue.pull_request.is_some() => {
            e.comment.mentions();
        }
        Event::ReviewComment(e) if e.action == "created" => {
            e.comment.mentions();
        }
        _ => {}
    }
}

pub fn on_issue_comment(e: &IssueCommentEvent, cfg: &NotifyConfig) -> Decision {
    if e.action != "created" {
        return Decision::skip(format!("no rule for issue_comment.{}", e.action));
    }
    if e.issue.pull_request.is_none() {
        return Decision::skip("comment on an issue, not a pull request");
    }
    let target = Target {
        pr: Pr {
            repo: e.repository.full_name.clone(),
            number: e.issue.number,
            title: e.issue.title.clone(),
            author: e.issue.user.login.clone(),
            link: e.comment.html_url.clone(),
            size: None,
        },
        org: &e.repository.owner.login,
        commenter: &e.comment.user.login,
    };
    decision(notify_scanned(
        &target,
        e.comment.body.as_deref().unwrap_or(""),
        Some(e.comment.mentions()),
        None,
        cfg,
    ))
}

pub fn on_review_comment(e: &ReviewCommentEvent, cfg: &NotifyConfig) -> Decision {
    if e.action != "created" {
        return Decision::skip(format!(
            "no rule for pull_request_review_comment.{}",
            e.action
        ));
    }
    let target = Target {
        pr: pr_facts(
            &e.pull_request,
            &e.repository.full_name,
            &e.comment.html_url,
        ),
        org: &e.repository.owner.login,
        commenter: &e.comment.user.login,
    };
    decision(notify_scanned(
        &target,
        e.comment.body.as_deref().unwrap_or(""),
        Some(e.comment.mentions()),
        None,
        cfg,
    ))
}

fn decision(notifications: Vec<Notification>) -> Decision {
    let skipped = if notifications.is_empty() {
        vec!["no mapped member mentioned".to_string()]
    } else {
        Vec::new()
    };
    Decision {
        notifications,
        skipped,
        ..Decision::default()
    }
}

/// Notifications for every mention in `body`, except the commenter and `skip`.
pub fn notify(
    t: &Target<'_>,
    body: &str,
    skip: Option<&str>,
    cfg: &NotifyConfig,
) -> Vec<Notification> {
    notify_scanned(t, body, None, skip, cfg)
}

/// [`notify`], with `body`'s mentions already extracted when `mentions` is
/// given (else they are extracted here).
pub fn notify_scanned(
    t: &Target<'_>,
    body: &str,
    mentions: Option<&[Mention]>,
    skip: Option<&str>,
    cfg: &NotifyConfig,
) -> Vec<Notification> {
    let scanned;
    let mentions = match mentions {
        Some(m) => m,
        None => {
            scanned = extract(body);
            &scanned
        }
    };
    let excerpt = excerpt(body, cfg.excerpt_lines, 500);
    let notice = |whom: Whom| Notice::Mentioned {
        pr: t.pr.clone(),
        by: t.commenter.to_string(),
        whom,
        excerpt: excerpt.clone(),
    };
    let mut out = Vec::new();
    // At most `max_mentions_per_comment` people (or teams) told: a comment
    // listing 10,000 members must not queue 10,000 messages.
    let (mut told, mut left_out) = (0usize, 0usize);
    for m in mentions {
        let before = out.len();
        match m {
            Mention::User(login) => {
                if login.eq_ignore_ascii_case(t.commenter)
                    || skip.is_some_and(|s| s.eq_ignore_ascii_case(login))
                    // Nobody to tell (Unmapped::Drop): skipped before a
                    // notice is built, so 100,000 strangers cost no copies.
                    || cfg.members.get(login).is_none()
                {
                    continue;
                }
                out.extend(recipients::person(
                    login,
                    cfg,
                    Unmapped::Drop,
                    notice(Whom::You),
                ));
            }
            Mention::Team { org, slug } => {
                // Only teams someone mapped: an unknown `@a/b` is often a path.
                let Some(target) = cfg.teams.get(org, slug) else {
                    continue;
                };
                if target.usergroup.is_none() && !org.eq_ignore_ascii_case(t.org) {
                    continue;
                }
                let whom = Whom::Team {
                    org: org.clone(),
                    slug: slug.clone(),
                };
                out.extend(recipients::team(org, slug, cfg, notice(whom)));
            }
        }
        if out.len() > before {
            if told < cfg.max_mentions_per_comment {
                told += 1;
            } else {
                out.truncate(before);
                left_out += 1;
            }
        }
    }
    if left_out > 0 {
        tracing::warn!(
            repo = t.pr.repo,
            pr = t.pr.number,
            told,
            left_out,
            "mention storm: only the first notify.max_mentions_per_comment people mentioned in the comment are told"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Kind, PrState, decide};
    use crate::config::DeliveryMode;
    use serde_json::json;

    fn issue_comment(commenter: &str, body: &str, on_pr: bool) -> crate::github::Event {
        let mut v = base("created", commenter);
        v["issue"] = json!({"number": 42, "title": "Add <caching> & stuff", "html_url": "https://github.com/acme/app/pull/42", "user": {"login": "carol"}});
        if on_pr {
            v["issue"]["pull_request"] =
                json!({"url": "https://api.github.com/repos/acme/app/pulls/42"});
        }
        v["comment"] = json!({"body": body, "html_url": "https://github.com/acme/app/pull/42#issuecomment-7", "user": {"login": commenter}});
        event("issue_comment", v)
    }

    #[test]
    fn mentioned_members_get_the_comment_link() {
        let d = decide(
            &issue_comment(
                "carol",
                "@alice can you check `@bob`?\n> @bob said no\n@zed too",
                true,
            ),
            &PrState::default(),
            &cfg(),
        );
        assert_eq!(d.notifications.len(), 1, "{:?}", d.notifications);
        let n = &d.notifications[0];
        assert_eq!((n.channel.as_str(), n.kind()), ("U0ALICE01", Kind::Mention));
        assert_eq!(
            n.text(),
            ":wave: @carol mentioned you on <https://github.com/acme/app/pull/42#issuecomment-7|acme/app#42>\n\
             *Add &lt;caching&gt; &amp; stuff*\n> @alice can you check `@bob`?\n> &gt; @bob said no\n> @zed too"
        );
    }

    #[test]
    fn no_self_mentions_no_plain_issues() {
        assert!(
            decide(
                &issue_comment("alice", "note to @alice", true),
                &PrState::default(),
                &cfg()
            )
            .notifications
            .is_empty()
        );
        let d = decide(
            &issue_comment("carol", "@alice", false),
            &PrState::default(),
            &cfg(),
        );
        assert!(d.notifications.is_empty());
        assert_eq!(
            d.skipped,
            vec!["comment on an issue, not a pull request".to_string()]
        );
    }

    #[test]
    fn team_mentions_use_the_user_group() {
        let d = decide(
            &issue_comment("carol", "@acme/backend and @some/path", true),
            &PrState::default(),
            &cfg(),
        );
        assert_eq!(d.notifications.len(), 1);
        assert_eq!(d.notifications[0].channel, "C0BACKEND1");
        assert!(
            d.notifications[0].text().starts_with(
                "<!subteam^S0BACKEND1> :wave: @carol mentioned team *acme/backend* on <"
            )
        );
    }

    #[test]
    fn slack_handles_and_channel_delivery() {
        let mut c = cfg();
        c.delivery = DeliveryMode::Channel;
        let d = decide(
            &issue_comment("carol", "@alice @hank", true),
            &PrState::default(),
            &c,
        );
        let firsts: Vec<_> = d
            .notifications
            .iter()
            .map(|n| {
                (
                    n.channel.clone(),
                    n.text().split(" :wave:").next().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(
            firsts,
            vec![
                ("C0GENERAL1".to_string(), "<@U0ALICE01>".to_string()),
                ("C0GENERAL1".to_string(), "@hank_slack".to_string())
            ]
        );
    }

    /// The pipeline scans before the transaction (`prepare`) and decides
    /// inside it with the kept scan: the answer is the one `decide` gives alone.
    #[test]
    fn prepared_decides_as_decide_does() {
        let mut review = base("created", "bob");
        review["pull_request"] = pr_json("carol", false);
        review["comment"] = json!({"body": "@alice @acme/backend", "html_url": "https://github.com/acme/app/pull/42#discussion_r1", "user": {"login": "bob"}});
        let events = [
            issue_comment("carol", "@alice can you check `@bob`? @acme/backend", true),
            issue_comment("carol", "@alice", false),
            issue_comment("dependabot[bot]", "@alice", true),
            issue_comment("alice", "note to @alice", true),
            event("pull_request_review_comment", review),
        ];
        for e in &events {
            let want = decide(e, &PrState::default(), &cfg());
            let prepared = e.clone();
            super::super::prepare(&prepared);
            let got = decide(&prepared, &PrState::default(), &cfg());
            assert_eq!(got, want, "{e:?}");
        }
    }

    #[test]
    fn review_comments_mention_too() {
        let mut v = base("created", "bob");
        v["pull_request"] = pr_json("carol", false);
        v["comment"] = json!({"body": "@alice look here", "html_url": "https://github.com/acme/app/pull/42#discussion_r1", "user": {"login": "bob"}});
        let d = decide(
            &event("pull_request_review_comment", v),
            &PrState::default(),
            &cfg(),
        );
        assert_eq!(d.notifications.len(), 1);
        assert!(
            d.notifications[0]
                .text()
                .contains("<https://github.com/acme/app/pull/42#discussion_r1|acme/app#42>")
        );
    }
}
