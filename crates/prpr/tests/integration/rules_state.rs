//! The rules as a state machine, driven by random but consistent histories of
//! one pull request: review requests, removals, reviews, re-requests, drafts
//! and ready-for-review, as GitHub sends them. Whatever the order:
//!
//! - an open request is announced at most once (until it is removed or
//!   answered by a review), and a request on a non-draft PR is never lost;
//! - a request to someone who has already reviewed is a *re-request* (the
//!   renderer's tests pin how that reads); a first request never is.
//!
//! The PR state is threaded through exactly as the store does: the decision's
//! `state` replaces the old one when present.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::collections::BTreeSet;
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};

use prpr::config::NotifyConfig;
use prpr::config::members::SlackUser;
use prpr::github::Event;
use prpr::notice::Notice;
use prpr::rules::{self, PrState};

const REVIEWERS: [&str; 3] = ["alice", "bob", "carol"];
const AUTHOR: &str = "Codertocat";

#[derive(Debug, Clone)]
enum Op {
    /// The author requests (or re-requests) a review.
    Request(usize),
    RemoveRequest(usize),
    /// The reviewer submits a review (GitHub then drops their pending request).
    Review(usize, &'static str),
    ConvertToDraft,
    ReadyForReview,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..REVIEWERS.len()).prop_map(Op::Request),
        1 => (0..REVIEWERS.len()).prop_map(Op::RemoveRequest),
        2 => (0..REVIEWERS.len(), prop::sample::select(vec!["approved", "changes_requested", "commented"]))
            .prop_map(|(i, s)| Op::Review(i, s)),
        1 => Just(Op::ConvertToDraft),
        1 => Just(Op::ReadyForReview),
    ]
}

/// A real payload without its API URLs (all but `html_url`), which no rule
/// reads: thousands of events per run are parsed, and most of a GitHub
/// payload is URLs.
fn fixture(name: &str) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| k == "html_url" || !(k.ends_with("_url") || k == "_links"));
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(format!("{name}.json"));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    strip(&mut v);
    v
}

fn user(login: &str) -> Value {
    json!({"login": login, "id": 1, "type": "User"})
}

/// GitHub's side of the PR: what its payloads will say.
struct GitHub {
    draft: bool,
    requested: BTreeSet<usize>,
    base_pr: Value,
    base_review: Value,
}

impl GitHub {
    fn pr(&self) -> Value {
        let mut pr = self.base_pr["pull_request"].clone();
        pr["draft"] = json!(self.draft);
        pr["user"] = user(AUTHOR);
        pr["requested_reviewers"] =
            Value::Array(self.requested.iter().map(|&i| user(REVIEWERS[i])).collect());
        pr["requested_teams"] = json!([]);
        pr
    }

    fn pull_request_event(&self, action: &str, reviewer: Option<usize>) -> Event {
        let mut p = self.base_pr.clone();
        p["action"] = json!(action);
        p["pull_request"] = self.pr();
        p["sender"] = user(AUTHOR);
        match reviewer {
            Some(i) => p["requested_reviewer"] = user(REVIEWERS[i]),
            None => {
                p.as_object_mut().unwrap().remove("requested_reviewer");
            }
        }
        Event::parse("pull_request", p.to_string().as_bytes()).unwrap()
    }

    fn review_event(&self, i: usize, state: &str) -> Event {
        let mut p = self.base_review.clone();
        p["pull_request"] = self.pr();
        p["review"]["user"] = user(REVIEWERS[i]);
        p["review"]["state"] = json!(state);
        p["review"]["body"] = json!("");
        p["sender"] = user(REVIEWERS[i]);
        Event::parse("pull_request_review", p.to_string().as_bytes()).unwrap()
    }

    /// Applies `op` to GitHub's side and returns the delivery GitHub sends.
    fn apply(&mut self, op: &Op) -> Event {
        match *op {
            Op::Request(i) => {
                self.requested.insert(i);
                self.pull_request_event("review_requested", Some(i))
            }
            Op::RemoveRequest(i) => {
                self.requested.remove(&i);
                self.pull_request_event("review_request_removed", Some(i))
            }
            Op::Review(i, state) => {
                let e = self.review_event(i, state);
                self.requested.remove(&i);
                e
            }
            Op::ConvertToDraft => {
                self.draft = true;
                self.pull_request_event("converted_to_draft", None)
            }
            Op::ReadyForReview => {
                self.draft = false;
                self.pull_request_event("ready_for_review", None)
            }
        }
    }
}

fn config() -> NotifyConfig {
    let mut cfg = NotifyConfig::default();
    for (i, r) in REVIEWERS.iter().enumerate() {
        cfg.members.insert(r, SlackUser::Id(format!("U0REVIEW{i}")));
    }
    cfg.members
        .insert(AUTHOR, SlackUser::Id("U0AUTHOR0".into()));
    cfg
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn requests_are_announced_once_and_re_requests_say_so(
        start_as_draft in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let cfg = config();
        let mut github = GitHub {
            draft: start_as_draft,
            requested: BTreeSet::new(),
            base_pr: fixture("pull_request.review_requested.user"),
            base_review: fixture("pull_request_review.submitted"),
        };
        let mut state = PrState::default();
        // What a reviewer has been told and not yet answered or lost.
        let mut announced: BTreeSet<usize> = BTreeSet::new();
        let mut reviewed: BTreeSet<usize> = BTreeSet::new();

        for (step, op) in ops.iter().enumerate() {
            // GitHub sends these only when the draft flag really changes.
            match op {
                Op::ReadyForReview if !github.draft => continue,
                Op::ConvertToDraft if github.draft => continue,
                _ => {}
            }
            let event = github.apply(op);
            let d = rules::decide(&event, &state, &cfg);
            if let Some(next) = d.state.clone() {
                state = next;
            }
            let told: Vec<(usize, bool)> = d
                .notifications
                .iter()
                .filter_map(|n| match &n.notice {
                    Notice::ReviewRequested { again, .. } => Some((n, *again)),
                    _ => None,
                })
                .map(|(n, again)| {
                    let i = (0..REVIEWERS.len())
                        .position(|i| n.channel == format!("U0REVIEW{i}"))
                        .unwrap_or_else(|| panic!("request sent to {}", n.channel));
                    (i, again)
                })
                .collect();

            // Nothing a reviewer should hear about is lost, nothing is repeated.
            let expected: BTreeSet<usize> = match *op {
                Op::Request(i) if !github.draft && !announced.contains(&i) => [i].into(),
                Op::ReadyForReview => github.requested.difference(&announced).copied().collect(),
                _ => BTreeSet::new(),
            };
            let got: BTreeSet<usize> = told.iter().map(|(i, _)| *i).collect();
            prop_assert_eq!(got.len(), told.len(), "step {} {:?}: someone told twice at once", step, op);
            prop_assert_eq!(&got, &expected, "step {} {:?} (already told: {:?})", step, op, announced);
            for (i, again) in &told {
                prop_assert_eq!(
                    *again,
                    reviewed.contains(i),
                    "step {} {:?}: {} told as a re-request: {}",
                    step, op, REVIEWERS[*i], again
                );
            }
            announced.extend(got);

            match *op {
                Op::RemoveRequest(i) => {
                    announced.remove(&i);
                }
                Op::Review(i, _) => {
                    announced.remove(&i);
                    reviewed.insert(i);
                }
                _ => {}
            }
        }
    }
}
