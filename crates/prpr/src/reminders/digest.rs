//! Building reminders from the open-PR picture: pure functions from cards
//! to [`Digest`] pages.
//!
//! The cards are what prpr keeps per PR from the events it receives
//! (`pr_state`, see [`crate::rules::card`]), which the REST backfill
//! ([`crate::github::backfill`]) keeps current too. Nothing here reads the store
//! or writes Slack markup: the scheduler, `prpr reminders preview/send` and
//! `/prpr pending` all call the same functions, and
//! [`crate::slack::render::digest`] draws the pages.
//!
//! Pages are cut here, by the block costs `render` declares, so a digest of
//! any length (no cap on repositories or PRs) becomes several messages,
//! each within Slack's 50 blocks.

use std::collections::{BTreeMap, HashSet};

use crate::config::{NotifyConfig, Schedule, SlackUser};
use crate::notice::{Address, Card, Digest, DigestPr, DigestRepo, PrStatus, ReviewState};
use crate::slack::render::{DIGEST_FIXED_BLOCKS, DIGEST_PR_BLOCKS, DIGEST_REPO_BLOCKS, MAX_BLOCKS};

/// `(Slack user ID, lower-cased repo, number)` of snoozes in force.
pub type Snoozes = HashSet<(String, String, u64)>;

fn is_open(card: &Card) -> bool {
    matches!(card.status, PrStatus::Open | PrStatus::Draft)
}

fn pending(card: &Card) -> impl Iterator<Item = &crate::notice::Reviewer> {
    card.reviewers
        .iter()
        .filter(|r| r.state == ReviewState::Pending)
}

fn changes_requested(card: &Card) -> usize {
    card.reviewers
        .iter()
        .filter(|r| r.state == ReviewState::ChangesRequested)
        .count()
}

/// Does the schedule's every filter let `card` through at `now_ms`?
/// A PR whose opening or update time is unknown (a card from before prpr
/// kept them) counts as old enough: hiding it would hide exactly the old PRs
/// a reminder is for.
pub fn matches(s: &Schedule, card: &Card, now_ms: i64) -> bool {
    if !is_open(card) {
        return false;
    }
    if s.ignore_drafts && card.status == PrStatus::Draft {
        return false;
    }
    if !s.repos.is_empty() && !s.repos.iter().any(|g| g.is_match(&card.pr.repo)) {
        return false;
    }
    if !s.teams.is_empty()
        && !card
            .reviewers
            .iter()
            .any(|r| r.team && s.teams.iter().any(|t| t.eq_ignore_ascii_case(&r.name)))
    {
        return false;
    }
    let author_turn = s.remind_authors && changes_requested(card) > 0;
    if s.require_review_requests && pending(card).next().is_none() && !author_turn {
        return false;
    }
    if s.ignore_approved > 0 && card.approvals() >= s.ignore_approved as usize {
        return false;
    }
    let older_than = |at: Option<i64>, min: std::time::Duration| {
        min.is_zero() || at.is_none_or(|t| now_ms - t >= min.as_millis() as i64)
    };
    if !older_than(card.created_at, s.min_age) || !older_than(card.updated_at, s.min_staleness) {
        return false;
    }
    let labels: Vec<String> = card.labels.iter().map(|l| l.to_lowercase()).collect();
    if s.ignore_labels.iter().any(|l| labels.contains(l)) {
        return false;
    }
    if !s.require_labels.is_empty() && !s.require_labels.iter().any(|l| labels.contains(l)) {
        return false;
    }
    if s.ignore_terms.iter().any(|t| t.matches(&card.pr.title)) {
        return false;
    }
    true
}

/// How a login is named in a reminder: a real mention when `[members]`
/// has its Slack ID.
fn person(notify: &NotifyConfig, login: &str) -> (Address, Option<String>) {
    match notify.members.get(login) {
        Some(SlackUser::Id(id)) => (Address::User { id: id.clone() }, Some(id.clone())),
        Some(SlackUser::Handle(h)) => (Address::Name { name: h.clone() }, None),
        None => (
            Address::Name {
                name: login.to_string(),
            },
            None,
        ),
    }
}

/// One PR as a reminder lists it. People who snoozed the PR are not named.
pub fn entry(
    card: &Card,
    notify: &NotifyConfig,
    remind_authors: bool,
    snoozes: &Snoozes,
    now_ms: i64,
) -> DigestPr {
    let repo = card.pr.repo.to_lowercase();
    let snoozed = |id: &Option<String>| {
        id.as_ref()
            .is_some_and(|id| snoozes.contains(&(id.clone(), repo.clone(), card.pr.number)))
    };
    let mut waiting = Vec::new();
    for r in pending(card) {
        if r.team {
            let (org, slug) = r.name.split_once('/').unwrap_or((&r.name, ""));
            let group = notify
                .teams
                .get(org, slug)
                .and_then(|t| t.usergroup.clone());
            waiting.push(match group {
                Some(id) => Address::Group { id },
                None => Address::Name {
                    name: r.name.clone(),
                },
            });
        } else {
            let (a, id) = person(notify, &r.name);
            if !snoozed(&id) {
                waiting.push(a);
            }
        }
    }
    let changes = changes_requested(card);
    if remind_authors && changes > 0 {
        let (a, id) = person(notify, &card.pr.author);
        if !snoozed(&id) {
            waiting.push(a);
        }
    }
    DigestPr {
        pr: card.pr.clone(),
        draft: card.status == PrStatus::Draft,
        age_secs: card
            .created_at
            .map(|t| u64::try_from((now_ms - t) / 1000).unwrap_or(0)),
        waiting,
        approvals: card.approvals() as u32,
        changes_requested: changes as u32,
    }
}

/// Oldest first: by opening time (unknown first, as the oldest), then number.
fn age_order(a: &&Card, b: &&Card) -> std::cmp::Ordering {
    (a.created_at.unwrap_or(i64::MIN), a.pr.number)
        .cmp(&(b.created_at.unwrap_or(i64::MIN), b.pr.number))
}

/// Groups PRs by repository (in name order), oldest first within each, and
/// cuts them into pages of at most [`MAX_BLOCKS`] blocks. A repository cut
/// across pages is headed again, marked continued. Empty when there is
/// nothing to list.
pub fn paginate(
    title: &str,
    cards: Vec<&Card>,
    to_entry: impl Fn(&Card) -> DigestPr,
) -> Vec<Digest> {
    let mut by_repo: BTreeMap<String, Vec<&Card>> = BTreeMap::new();
    for c in cards {
        by_repo.entry(c.pr.repo.to_lowercase()).or_default().push(c);
    }
    let total: usize = by_repo.values().map(Vec::len).sum();
    let room = MAX_BLOCKS - DIGEST_FIXED_BLOCKS;
    let mut pages: Vec<Vec<DigestRepo>> = Vec::new();
    let mut used = room; // forces a first page
    for (_, mut prs) in by_repo {
        prs.sort_by(age_order);
        let Some(repo) = prs.first().map(|c| c.pr.repo.clone()) else {
            continue;
        };
        let mut started = false;
        for c in prs {
            let continues_here = pages
                .last()
                .and_then(|p| p.last())
                .is_some_and(|r| r.repo == repo);
            let heading = if continues_here {
                0
            } else {
                DIGEST_REPO_BLOCKS
            };
            if used + DIGEST_PR_BLOCKS + heading > room {
                pages.push(Vec::new());
                used = 0;
            }
            let Some(page) = pages.last_mut() else {
                continue;
            };
            if page.last().is_none_or(|r| r.repo != repo) {
                page.push(DigestRepo {
                    repo: repo.clone(),
                    continued: started,
                    prs: Vec::new(),
                });
                used += DIGEST_REPO_BLOCKS;
            }
            if let Some(r) = page.last_mut() {
                r.prs.push(to_entry(c));
            }
            used += DIGEST_PR_BLOCKS;
            started = true;
        }
    }
    let n = pages.len() as u32;
    pages
        .into_iter()
        .enumerate()
        .map(|(i, repos)| Digest {
            title: title.to_string(),
            page: i as u32 + 1,
            pages: n,
            total: total as u32,
            repos,
        })
        .collect()
}

/// A schedule's digest at `now_ms`: empty when no PR passes its filters.
pub fn channel_digest(
    s: &Schedule,
    cards: &[Card],
    notify: &NotifyConfig,
    snoozes: &Snoozes,
    now_ms: i64,
) -> Vec<Digest> {
    let picked: Vec<&Card> = cards.iter().filter(|c| matches(s, c, now_ms)).collect();
    let title = format!("Pull requests waiting for review · {}", s.name);
    paginate(&title, picked, |c| {
        entry(c, notify, s.remind_authors, snoozes, now_ms)
    })
}

/// Who a personal reminder is for.
#[derive(Debug, Clone)]
pub struct Person<'a> {
    pub user_id: &'a str,
    /// Lower-cased GitHub login.
    pub login: &'a str,
    /// Lower-cased `org/slug`.
    pub teams: &'a [String],
    pub ignore_drafts: bool,
}

/// The open PRs waiting for `p`'s review, directly or through one of their
/// teams, oldest first, without the ones they snoozed or authored.
pub fn waiting_for<'c>(p: &Person<'_>, cards: &'c [Card], snoozes: &Snoozes) -> Vec<&'c Card> {
    let mut out: Vec<&Card> = cards
        .iter()
        .filter(|c| is_open(c) && !(p.ignore_drafts && c.status == PrStatus::Draft))
        .filter(|c| !c.pr.author.eq_ignore_ascii_case(p.login))
        .filter(|c| {
            pending(c).any(|r| {
                if r.team {
                    p.teams.iter().any(|t| t.eq_ignore_ascii_case(&r.name))
                } else {
                    r.name.eq_ignore_ascii_case(p.login)
                }
            })
        })
        .filter(|c| {
            !snoozes.contains(&(p.user_id.to_string(), c.pr.repo.to_lowercase(), c.pr.number))
        })
        .collect();
    out.sort_by(age_order);
    out
}

/// A personal reminder's pages: empty when nothing waits (nothing is sent).
pub fn personal_digest(
    p: &Person<'_>,
    cards: &[Card],
    notify: &NotifyConfig,
    snoozes: &Snoozes,
    now_ms: i64,
) -> Vec<Digest> {
    let picked = waiting_for(p, cards, snoozes);
    paginate("Waiting for your review", picked, |c| {
        entry(c, notify, false, snoozes, now_ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Glob, TitleTerm};
    use crate::notice::{Pr, Reviewer};
    use crate::slack::render;
    use std::time::Duration;

    const H: i64 = 3_600_000;
    const NOW: i64 = 1_800_000_000_000;

    pub(crate) fn card(repo: &str, number: u64, age_h: i64) -> Card {
        Card {
            pr: Pr {
                repo: repo.into(),
                number,
                title: format!("Change {number}"),
                author: "carol".into(),
                link: format!("https://github.com/{repo}/pull/{number}"),
                size: None,
            },
            status: PrStatus::Open,
            reviewers: vec![Reviewer {
                name: "alice".into(),
                team: false,
                state: ReviewState::Pending,
            }],
            labels: vec![],
            base: Some("main".into()),
            created_at: Some(NOW - age_h * H),
            updated_at: Some(NOW - age_h * H),
        }
    }

    fn notify() -> NotifyConfig {
        let mut n = NotifyConfig::default();
        n.members.insert("alice", SlackUser::Id("U0ALICE01".into()));
        n.members.insert("carol", SlackUser::Id("U0CAROL01".into()));
        n
    }

    fn passes(s: &Schedule, c: &Card) -> bool {
        matches(s, c, NOW)
    }

    #[test]
    fn every_filter() {
        let base = Schedule::new("s", "C0GENERAL1");
        let c = card("acme/api", 1, 10);
        assert!(passes(&base, &c));

        let mut closed = c.clone();
        closed.status = PrStatus::Merged;
        assert!(!passes(&base, &closed));

        let mut s = base.clone();
        s.repos = vec![Glob::new("acme/web*").unwrap()];
        assert!(!passes(&s, &c));
        s.repos = vec![Glob::new("ACME/*").unwrap()];
        assert!(passes(&s, &c));

        let mut s = base.clone();
        s.teams = vec!["acme/backend".into()];
        assert!(!passes(&s, &c));
        let mut team = c.clone();
        team.reviewers.push(Reviewer {
            name: "acme/Backend".into(),
            team: true,
            state: ReviewState::Pending,
        });
        assert!(passes(&s, &team));

        let mut s = base.clone();
        s.ignore_drafts = true;
        let mut draft = c.clone();
        draft.status = PrStatus::Draft;
        assert!(!passes(&s, &draft) && passes(&base, &draft));

        let mut s = base.clone();
        s.require_review_requests = true;
        let mut answered = c.clone();
        answered.reviewers[0].state = ReviewState::ChangesRequested;
        assert!(!passes(&s, &answered));
        s.remind_authors = true;
        assert!(passes(&s, &answered), "the author has changes to make");
        let e = entry(&answered, &notify(), true, &Snoozes::new(), NOW);
        assert_eq!(
            e.waiting,
            vec![Address::User {
                id: "U0CAROL01".into()
            }]
        );

        let mut s = base.clone();
        s.ignore_approved = 1;
        let mut approved = c.clone();
        approved.reviewers.push(Reviewer {
            name: "bob".into(),
            team: false,
            state: ReviewState::Approved,
        });
        assert!(!passes(&s, &approved) && passes(&s, &c));
        s.ignore_approved = 2;
        assert!(passes(&s, &approved));

        let mut s = base.clone();
        s.min_age = Duration::from_secs(11 * 3600);
        assert!(!passes(&s, &c));
        s.min_age = Duration::from_secs(10 * 3600);
        assert!(passes(&s, &c));
        let mut unknown = c.clone();
        unknown.created_at = None;
        s.min_age = Duration::from_secs(1000 * 3600);
        assert!(passes(&s, &unknown), "unknown age counts as old");

        let mut s = base.clone();
        s.min_staleness = Duration::from_secs(2 * 3600);
        let mut fresh = c.clone();
        fresh.updated_at = Some(NOW - H);
        assert!(!passes(&s, &fresh) && passes(&s, &c));

        let mut labelled = c.clone();
        labelled.labels = vec!["On-Hold".into()];
        let mut s = base.clone();
        s.ignore_labels = vec!["on-hold".into()];
        assert!(!passes(&s, &labelled) && passes(&s, &c));
        let mut s = base.clone();
        s.require_labels = vec!["on-hold".into(), "x".into()];
        assert!(passes(&s, &labelled) && !passes(&s, &c));

        let mut s = base.clone();
        s.ignore_terms = vec![TitleTerm::parse("wip").unwrap()];
        let mut wip = c.clone();
        wip.pr.title = "[WIP] thing".into();
        assert!(!passes(&s, &wip) && passes(&s, &c));
        s.ignore_terms = vec![TitleTerm::parse("/^change \\d+$/").unwrap()];
        assert!(!passes(&s, &c));
    }

    #[test]
    fn a_300_pr_digest_over_12_repositories_splits_within_the_block_limit() {
        let cards: Vec<Card> = (0..300)
            .map(|i| {
                card(
                    &format!("acme/repo-{:02}", i % 12),
                    i as u64 + 1,
                    300 - i as i64,
                )
            })
            .collect();
        let s = Schedule::new("big", "C0GENERAL1");
        let pages = channel_digest(&s, &cards, &notify(), &Snoozes::new(), NOW);
        let listed: usize = pages
            .iter()
            .flat_map(|p| &p.repos)
            .map(|r| r.prs.len())
            .sum();
        assert_eq!(listed, 300, "no cap on PRs");
        let mut seen_repos: Vec<&str> = Vec::new();
        for (i, p) in pages.iter().enumerate() {
            assert_eq!(p.page as usize, i + 1);
            assert_eq!(p.pages as usize, pages.len());
            assert_eq!(p.total, 300);
            let m = render::digest(p);
            let blocks = m.blocks.as_array().map(Vec::len).unwrap_or(0);
            assert!(
                blocks <= render::MAX_BLOCKS,
                "page {} has {blocks} blocks",
                i + 1
            );
            for r in &p.repos {
                if !r.continued {
                    seen_repos.push(&r.repo);
                }
                let ages: Vec<u64> = r.prs.iter().filter_map(|p| p.age_secs).collect();
                assert!(ages.windows(2).all(|w| w[0] >= w[1]), "oldest first");
            }
        }
        assert_eq!(seen_repos.len(), 12);
        assert!(seen_repos.windows(2).all(|w| w[0] < w[1]));
        // 300 PRs + 12 headings (+ continued headings) over 48 per page.
        assert!(
            pages.len() >= 7 && pages.len() <= 8,
            "{} pages",
            pages.len()
        );
    }

    #[test]
    fn personal_lists_direct_and_team_requests_without_snoozed_or_own() {
        let mut direct = card("acme/api", 1, 5);
        direct.reviewers[0].name = "Bob".into();
        let mut via_team = card("acme/api", 2, 50);
        via_team.reviewers = vec![Reviewer {
            name: "acme/backend".into(),
            team: true,
            state: ReviewState::Pending,
        }];
        let mut snoozed = card("acme/web", 3, 70);
        snoozed.reviewers[0].name = "bob".into();
        let mut own = card("acme/web", 4, 80);
        own.pr.author = "bob".into();
        own.reviewers[0].name = "bob".into();
        let other = card("acme/web", 5, 90);
        let cards = vec![direct, via_team, snoozed, own, other];
        let teams = vec!["acme/backend".to_string()];
        let p = Person {
            user_id: "U0BOB0001",
            login: "bob",
            teams: &teams,
            ignore_drafts: true,
        };
        let mut snoozes = Snoozes::new();
        snoozes.insert(("U0BOB0001".into(), "acme/web".into(), 3));
        let got: Vec<u64> = waiting_for(&p, &cards, &snoozes)
            .iter()
            .map(|c| c.pr.number)
            .collect();
        assert_eq!(got, vec![2, 1], "oldest first");
        let none = Person {
            login: "nobody",
            teams: &[],
            ..p.clone()
        };
        assert!(personal_digest(&none, &cards, &notify(), &snoozes, NOW).is_empty());
    }

    #[test]
    fn a_snoozed_reviewer_is_not_named_in_a_channel_digest() {
        let c = card("acme/api", 7, 3);
        let mut snoozes = Snoozes::new();
        snoozes.insert(("U0ALICE01".into(), "acme/api".into(), 7));
        let e = entry(&c, &notify(), false, &snoozes, NOW);
        assert!(e.waiting.is_empty());
        let e = entry(&c, &notify(), false, &Snoozes::new(), NOW);
        assert_eq!(e.waiting.len(), 1);
    }
}
