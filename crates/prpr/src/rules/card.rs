//! The PR's card: what its thread's root shows, kept current by every event.
//!
//! Every event about a pull request carries some of its facts (a
//! `pull_request` event all of them, an issue comment only the title and
//! labels); the card keeps the last known value of each, and each reviewer's
//! standing. Who has been asked comes from GitHub's own list in the payload
//! (`requested_reviewers`, `requested_teams`), so a request removed, or
//! replaced by GitHub's team auto-assignment, leaves the card too; a
//! reviewer's verdict stays after GitHub drops them from that list.

use crate::github::{Event, PullRequest, ReviewItem};
use crate::notice::{Card, Pr, PrStatus, ReviewState, Reviewer, Verdict};

/// The card after `event`, given the card before it. `None` for events that
/// are not about a pull request.
pub fn next(event: &Event, prev: Option<&Card>) -> Option<Card> {
    match event {
        Event::PullRequest(e) => {
            let repo = &e.repository.full_name;
            let mut card = from_pr(&e.pull_request, repo, prev);
            reconcile(&mut card, &e.pull_request, &e.repository.owner.login);
            Some(card)
        }
        Event::Review(e) => {
            let repo = &e.repository.full_name;
            let mut card = from_pr(&e.pull_request, repo, prev);
            // The verdict first: GitHub has already dropped the reviewer
            // from the requested list in this payload.
            let login = &e.review.user.login;
            if !login.eq_ignore_ascii_case(&card.pr.author) {
                let verdict = Verdict::from_github(&e.review.state);
                match (e.action.as_str(), verdict) {
                    ("submitted", Some(v)) => set(&mut card, login, v),
                    ("dismissed", _) => dismiss(&mut card, login),
                    _ => {}
                }
            }
            reconcile(&mut card, &e.pull_request, &e.repository.owner.login);
            Some(card)
        }
        Event::ReviewComment(e) => {
            let repo = &e.repository.full_name;
            Some(from_pr(&e.pull_request, repo, prev))
        }
        Event::IssueComment(e) => {
            e.issue.pull_request.as_ref()?;
            let repo = &e.repository.full_name;
            let mut card = prev.cloned().unwrap_or_else(|| Card {
                pr: Pr {
                    repo: repo.clone(),
                    number: e.issue.number,
                    title: String::new(),
                    author: e.issue.user.login.clone(),
                    link: e.issue.html_url.clone(),
                    size: None,
                },
                status: PrStatus::Open,
                reviewers: Vec::new(),
                labels: Vec::new(),
                base: None,
                created_at: None,
                updated_at: None,
            });
            card.pr.title = e.issue.title.clone();
            card.labels = e.issue.labels.iter().map(|l| l.name.clone()).collect();
            Some(card)
        }
        Event::Ping | Event::Other { .. } => None,
    }
}

/// The card of a pull request as the REST API shows it now (the reminders
/// backfill, [`crate::github::backfill`]): `pr` is an item of `GET
/// …/pulls` or `GET …/pulls/{n}`, `reviews` its reviews oldest first.
/// Verdicts follow the rules review events follow (the latest decisive one
/// wins, the author's own reviews do not count, a dismissed review leaves a
/// comment), then the pending requests follow GitHub's lists. Without
/// `reviews` the stored verdicts are kept. What the API does not list (the
/// size: no `additions` in a list) is kept from `prev`.
pub fn from_rest(
    pr: &PullRequest,
    reviews: Option<&[ReviewItem]>,
    repo: &str,
    prev: Option<&Card>,
) -> Card {
    let mut card = from_pr(pr, repo, prev);
    if let Some(reviews) = reviews {
        card.reviewers.clear();
        for review in reviews {
            let Some(user) = &review.user else {
                continue;
            };
            let login = &user.login;
            if login.eq_ignore_ascii_case(&card.pr.author) {
                continue;
            }
            match Verdict::from_github(&review.state) {
                Some(v) => set(&mut card, login, v),
                None if review.state.eq_ignore_ascii_case("dismissed") => dismiss(&mut card, login),
                // PENDING: a review not yet submitted.
                None => {}
            }
        }
    }
    let org = repo.split('/').next().unwrap_or_default();
    reconcile(&mut card, pr, org);
    card
}

/// The backfill's card, unless the stored one was written from an event
/// newer than the backfill's snapshot (its PR `updated_at` is later): older
/// data never overwrites newer. `None`: keep the stored card.
pub fn merge_rest(prev: Option<&Card>, fresh: Card) -> Option<Card> {
    match (prev.and_then(|c| c.updated_at), fresh.updated_at) {
        (Some(stored), Some(seen)) if stored > seen => None,
        _ => Some(fresh),
    }
}

/// The facts a full or "simple" pull request object carries; what it lacks
/// (a review's PR has no size) is kept from `prev`.
fn from_pr(pr: &PullRequest, repo: &str, prev: Option<&Card>) -> Card {
    let status = match (pr.state.as_deref(), pr.merged, pr.draft) {
        (Some("closed"), Some(true), _) => PrStatus::Merged,
        (Some("closed"), _, _) if prev.is_some_and(|c| c.status == PrStatus::Merged) => {
            PrStatus::Merged
        }
        (Some("closed"), _, _) => PrStatus::Closed,
        (_, _, true) => PrStatus::Draft,
        _ => PrStatus::Open,
    };
    Card {
        pr: Pr {
            repo: repo.to_string(),
            number: pr.number,
            title: pr.title.clone(),
            author: pr.user.login.clone(),
            link: pr.html_url.clone(),
            size: pr
                .additions
                .zip(pr.deletions)
                .or_else(|| prev.and_then(|c| c.pr.size)),
        },
        status,
        reviewers: prev.map(|c| c.reviewers.clone()).unwrap_or_default(),
        labels: pr.labels.iter().map(|l| l.name.clone()).collect(),
        base: pr
            .base
            .as_ref()
            .map(|b| b.name.clone())
            .or_else(|| prev.and_then(|c| c.base.clone())),
        created_at: timestamp(pr.created_at.as_deref()).or_else(|| prev.and_then(|c| c.created_at)),
        updated_at: timestamp(pr.updated_at.as_deref()).or_else(|| prev.and_then(|c| c.updated_at)),
    }
}

/// An RFC 3339 time as unix ms; `None` when absent or unreadable (a
/// reminder then treats the PR as old enough rather than hiding it).
fn timestamp(s: Option<&str>) -> Option<i64> {
    s?.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// Pending reviewers and teams follow GitHub's current request lists.
fn reconcile(card: &mut Card, pr: &PullRequest, org: &str) {
    let people: Vec<&str> = pr
        .requested_reviewers
        .iter()
        .map(|a| a.login.as_str())
        .collect();
    let teams: Vec<String> = pr
        .requested_teams
        .iter()
        .map(|t| format!("{org}/{}", t.slug))
        .collect();
    card.reviewers.retain(|r| {
        r.state != ReviewState::Pending
            || if r.team {
                teams.iter().any(|t| t.eq_ignore_ascii_case(&r.name))
            } else {
                people.iter().any(|p| p.eq_ignore_ascii_case(&r.name))
            }
    });
    for login in people {
        match find(card, login) {
            Some(r) => r.state = ReviewState::Pending,
            None => card.reviewers.push(Reviewer {
                name: login.to_string(),
                team: false,
                state: ReviewState::Pending,
            }),
        }
    }
    for team in teams {
        if !card
            .reviewers
            .iter()
            .any(|r| r.team && r.name.eq_ignore_ascii_case(&team))
        {
            card.reviewers.push(Reviewer {
                name: team,
                team: true,
                state: ReviewState::Pending,
            });
        }
    }
}

fn find<'a>(card: &'a mut Card, login: &str) -> Option<&'a mut Reviewer> {
    card.reviewers
        .iter_mut()
        .find(|r| !r.team && r.name.eq_ignore_ascii_case(login))
}

/// A dismissed review: the reviewer has commented, no more.
fn dismiss(card: &mut Card, login: &str) {
    if let Some(r) = find(card, login) {
        r.state = ReviewState::Commented;
    }
}

/// A submitted review: the latest verdict wins, but a comment does not
/// undo an approval or a change request.
fn set(card: &mut Card, login: &str, verdict: Verdict) {
    let state = match verdict {
        Verdict::Approved => ReviewState::Approved,
        Verdict::ChangesRequested => ReviewState::ChangesRequested,
        Verdict::Commented => ReviewState::Commented,
    };
    match find(card, login) {
        Some(r) => {
            let decisive = matches!(
                r.state,
                ReviewState::Approved | ReviewState::ChangesRequested
            );
            if !(state == ReviewState::Commented && decisive) {
                r.state = state;
            }
        }
        None => card.reviewers.push(Reviewer {
            name: login.to_string(),
            team: false,
            state,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    fn pr_event(action: &str, f: impl FnOnce(&mut serde_json::Value)) -> Event {
        let mut v = base(action, "carol");
        v["pull_request"] = pr_json("carol", false);
        f(&mut v);
        event("pull_request", v)
    }

    /// A review by `login`; `waiting` are the people GitHub still lists as
    /// requested (it drops a reviewer once they review).
    fn review(login: &str, state: &str) -> Event {
        review_by(login, state, &[])
    }

    fn review_by(login: &str, state: &str, waiting: &[&str]) -> Event {
        let mut v = base("submitted", login);
        v["pull_request"] = pr_json("carol", false);
        v["pull_request"]["requested_teams"] = json!([{"slug": "backend"}]);
        v["pull_request"]["requested_reviewers"] = json!(
            waiting
                .iter()
                .map(|l| json!({"login": l}))
                .collect::<Vec<_>>()
        );
        v["review"] = json!({"user": {"login": login}, "state": state, "html_url": "https://github.com/acme/app/pull/42#r"});
        event("pull_request_review", v)
    }

    fn states(c: &Card) -> Vec<(String, ReviewState)> {
        c.reviewers
            .iter()
            .map(|r| (r.name.clone(), r.state))
            .collect()
    }

    #[test]
    fn follows_requests_reviews_and_the_end_of_a_pr() {
        let c = next(
            &pr_event("review_requested", |v| {
                v["pull_request"]["requested_reviewers"] =
                    json!([{"login": "alice"}, {"login": "bob"}]);
                v["pull_request"]["requested_teams"] = json!([{"slug": "backend"}]);
                v["pull_request"]["labels"] = json!([{"name": "backend"}]);
                v["pull_request"]["base"] = json!({"ref": "main"});
            }),
            None,
        )
        .unwrap();
        assert_eq!(c.status, PrStatus::Open);
        assert_eq!(
            (c.labels.clone(), c.base.clone()),
            (vec!["backend".to_string()], Some("main".to_string()))
        );
        assert_eq!(c.reviewers.len(), 3);
        // alice approves (GitHub drops her from the requested list), bob comments.
        let c = next(&review_by("alice", "approved", &["bob"]), Some(&c)).unwrap();
        assert_eq!(
            c.reviewers[1].state,
            ReviewState::Pending,
            "bob still waits"
        );
        let c = next(&review("bob", "commented"), Some(&c)).unwrap();
        let c = next(&review("alice", "commented"), Some(&c)).unwrap();
        assert_eq!(
            states(&c),
            vec![
                ("alice".into(), ReviewState::Approved),
                ("bob".into(), ReviewState::Commented),
                ("acme/backend".into(), ReviewState::Pending),
            ]
        );
        // The team request is removed; alice is re-requested: pending again.
        let c = next(
            &pr_event("review_requested", |v| {
                v["pull_request"]["requested_reviewers"] = json!([{"login": "alice"}]);
            }),
            Some(&c),
        )
        .unwrap();
        assert_eq!(
            states(&c),
            vec![
                ("alice".into(), ReviewState::Pending),
                ("bob".into(), ReviewState::Commented)
            ]
        );
        assert_eq!(
            c.base.as_deref(),
            Some("main"),
            "kept when a payload lacks it"
        );
        let merged = next(
            &pr_event("closed", |v| {
                v["pull_request"]["state"] = json!("closed");
                v["pull_request"]["merged"] = json!(true);
            }),
            Some(&c),
        )
        .unwrap();
        assert_eq!(merged.status, PrStatus::Merged);
        assert!(merged.reactions().contains("tada"));
        let closed = next(
            &pr_event("closed", |v| v["pull_request"]["state"] = json!("closed")),
            Some(&c),
        )
        .unwrap();
        assert_eq!(closed.status, PrStatus::Closed);
        let draft = next(
            &pr_event("converted_to_draft", |v| {
                v["pull_request"]["draft"] = json!(true)
            }),
            Some(&c),
        )
        .unwrap();
        assert_eq!(draft.status, PrStatus::Draft);
    }

    /// A pulls-list item, as `GET /repos/acme/app/pulls` lists it.
    fn rest_pr(f: impl FnOnce(&mut serde_json::Value)) -> PullRequest {
        let mut v = pr_json("carol", false);
        v["state"] = json!("open");
        v["updated_at"] = json!("2026-03-02T00:00:00Z");
        if let Some(o) = v.as_object_mut() {
            o.remove("additions");
            o.remove("deletions");
        }
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn reviews(list: &[(&str, &str)]) -> Vec<ReviewItem> {
        list.iter()
            .map(|(login, state)| ReviewItem {
                user: Some(crate::github::Account {
                    login: login.to_string(),
                    kind: None,
                }),
                state: state.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_rest_snapshot_makes_the_card_events_would() {
        let pr = rest_pr(|v| {
            v["requested_reviewers"] = json!([{"login": "alice"}]);
            v["requested_teams"] = json!([{"slug": "backend"}]);
        });
        let list = reviews(&[
            ("bob", "APPROVED"),
            ("bob", "COMMENTED"),
            ("dave", "CHANGES_REQUESTED"),
            ("erin", "APPROVED"),
            ("erin", "DISMISSED"),
            ("carol", "APPROVED"),
            ("frank", "PENDING"),
        ]);
        let mut prev = next(&review("zed", "approved"), None).unwrap();
        prev.pr.size = Some((10, 2));
        let c = from_rest(&pr, Some(&list), "acme/app", Some(&prev));
        assert_eq!(
            states(&c),
            vec![
                ("bob".into(), ReviewState::Approved),
                ("dave".into(), ReviewState::ChangesRequested),
                ("erin".into(), ReviewState::Commented),
                ("alice".into(), ReviewState::Pending),
                ("acme/backend".into(), ReviewState::Pending),
            ],
            "the snapshot's reviews replace the stored ones; the author's and pending ones do not count"
        );
        assert_eq!(c.pr.size, Some((10, 2)), "a list has no size: kept");
        assert_eq!(c.status, PrStatus::Open);
        // Without reviews (a PR fetched because it left the list), the
        // stored verdicts stay.
        let closed = rest_pr(|v| {
            v["state"] = json!("closed");
            v["merged"] = json!(true);
        });
        let c = from_rest(&closed, None, "acme/app", Some(&prev));
        assert_eq!(c.status, PrStatus::Merged);
        assert_eq!(states(&c), vec![("zed".into(), ReviewState::Approved)]);
    }

    #[test]
    fn an_event_newer_than_the_snapshot_wins() {
        let fresh = from_rest(&rest_pr(|_| {}), Some(&[]), "acme/app", None);
        let mut stored = fresh.clone();
        stored.pr.title = "newer".into();
        stored.updated_at = fresh.updated_at.map(|t| t + 1);
        assert_eq!(merge_rest(Some(&stored), fresh.clone()), None);
        stored.updated_at = fresh.updated_at;
        assert_eq!(
            merge_rest(Some(&stored), fresh.clone()),
            Some(fresh.clone())
        );
        stored.updated_at = None;
        assert_eq!(
            merge_rest(Some(&stored), fresh.clone()),
            Some(fresh.clone())
        );
        assert_eq!(merge_rest(None, fresh.clone()), Some(fresh));
    }

    #[test]
    fn the_latest_decisive_verdict_sets_the_reactions() {
        let c = next(&review("alice", "changes_requested"), None).unwrap();
        assert_eq!(
            c.reactions().into_iter().collect::<Vec<_>>(),
            vec!["repeat"]
        );
        let c = next(&review("alice", "approved"), Some(&c)).unwrap();
        assert_eq!(
            c.reactions().into_iter().collect::<Vec<_>>(),
            vec!["white_check_mark"]
        );
        // The author's own comment review is not a verdict.
        let c2 = next(&review("carol", "approved"), Some(&c)).unwrap();
        assert_eq!(c2.reviewers, c.reviewers);
    }
}
