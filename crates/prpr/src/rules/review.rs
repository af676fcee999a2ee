//! "Your PR was approved / needs changes / got comments" — to the PR's author.
//!
//! A submitted review also updates the PR state: the reviewer has now reviewed
//! (so a later request to them is a re-request) and is no longer requested.
//! People `@mentioned` in the review body are told as for comments.

use crate::config::NotifyConfig;
use crate::github::PullRequestReviewEvent;
use crate::notice::{Notice, Verdict, excerpt};

use super::recipients::{self, Unmapped};
use super::{Decision, PrState, mention, pr_facts};

pub fn on_review(e: &PullRequestReviewEvent, state: &PrState, cfg: &NotifyConfig) -> Decision {
    if e.action != "submitted" {
        return Decision::skip(format!("no rule for pull_request_review.{}", e.action));
    }
    let reviewer = &e.review.user.login;
    let author = &e.pull_request.user.login;
    let mut next = state.clone();
    let key = reviewer.to_ascii_lowercase();
    next.reviewed.insert(key.clone());
    next.requested.remove(&key);

    let mut d = Decision::default();
    let body = e.review.body.as_deref().unwrap_or("");
    let pr = pr_facts(&e.pull_request, &e.repository.full_name, &e.review.html_url);
    match Verdict::from_github(&e.review.state) {
        _ if reviewer.eq_ignore_ascii_case(author) => d
            .skipped
            .push(format!("{author} reviewed their own pull request")),
        None => d
            .skipped
            .push(format!("review state {} is not announced", e.review.state)),
        Some(verdict) => {
            d.notifications = recipients::person(
                author,
                cfg,
                Unmapped::NameInChannel,
                Notice::ReviewSubmitted {
                    pr: pr.clone(),
                    reviewer: reviewer.clone(),
                    verdict,
                    excerpt: excerpt(body, cfg.excerpt_lines, 500),
                },
            );
        }
    }
    // Mentions in the review body; the author is already told about the review.
    let told_author = !d.notifications.is_empty();
    let target = mention::Target {
        pr,
        org: &e.repository.owner.login,
        commenter: reviewer,
    };
    let skip_author = if told_author {
        Some(author.as_str())
    } else {
        None
    };
    d.notifications
        .extend(mention::notify(&target, body, skip_author, cfg));
    d.state = (next != *state).then_some(next);
    d
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Kind, PrState, decide};
    use serde_json::json;

    fn review(reviewer: &str, state: &str, body: &str) -> crate::github::Event {
        let mut v = base("submitted", reviewer);
        v["pull_request"] = pr_json("carol", false);
        v["review"] = json!({
            "user": {"login": reviewer, "type": "User"}, "state": state, "body": body,
            "html_url": "https://github.com/acme/app/pull/42#pullrequestreview-1"
        });
        event("pull_request_review", v)
    }

    #[test]
    fn approval_tells_the_author_with_the_review_excerpt() {
        let d = decide(
            &review(
                "alice",
                "approved",
                "LGTM <3\nship it\n\nbut one & more\nfourth line",
            ),
            &PrState::default(),
            &cfg(),
        );
        assert_eq!(d.notifications.len(), 1);
        let n = &d.notifications[0];
        assert_eq!(
            (n.channel.as_str(), n.kind()),
            ("U0CAROL01", Kind::ReviewSubmitted)
        );
        assert_eq!(
            n.text(),
            ":white_check_mark: @alice approved <https://github.com/acme/app/pull/42#pullrequestreview-1|acme/app#42>\n\
             *Add &lt;caching&gt; &amp; stuff*\n> LGTM &lt;3\n> ship it\n> but one &amp; more…"
        );
        let st = d.state.expect("state");
        assert!(st.reviewed.contains("alice"));
    }

    #[test]
    fn changes_requested_and_commented() {
        let d = decide(
            &review("alice", "CHANGES_REQUESTED", ""),
            &PrState::default(),
            &cfg(),
        );
        assert!(
            d.notifications[0]
                .text()
                .starts_with(":warning: @alice requested changes on <")
        );
        assert!(!d.notifications[0].text().contains("\n>"), "no empty quote");
        let d = decide(
            &review("alice", "commented", "nit"),
            &PrState::default(),
            &cfg(),
        );
        assert!(
            d.notifications[0]
                .text()
                .starts_with(":speech_balloon: @alice commented on <")
        );
    }

    #[test]
    fn own_review_is_silent_but_recorded() {
        let d = decide(
            &review("carol", "commented", "note to self"),
            &PrState::default(),
            &cfg(),
        );
        assert!(d.notifications.is_empty());
        assert_eq!(
            d.skipped,
            vec!["carol reviewed their own pull request".to_string()]
        );
    }

    #[test]
    fn review_answers_the_request() {
        let state = PrState {
            requested: ["alice".to_string()].into(),
            ..PrState::default()
        };
        let st = decide(&review("alice", "approved", ""), &state, &cfg())
            .state
            .expect("changed");
        assert!(st.requested.is_empty());
        assert!(st.reviewed.contains("alice"));
    }

    #[test]
    fn mentions_in_review_body_notify_others_not_the_author_twice() {
        let d = decide(
            &review("alice", "commented", "@bob what do you think? @carol fyi"),
            &PrState::default(),
            &cfg(),
        );
        let chans: Vec<_> = d
            .notifications
            .iter()
            .map(|n| (n.channel.as_str(), n.kind()))
            .collect();
        assert_eq!(
            chans,
            vec![
                ("U0CAROL01", Kind::ReviewSubmitted),
                ("U0BOB0001", Kind::Mention)
            ]
        );
    }
}
