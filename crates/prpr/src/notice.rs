//! What the rules decide, as data: who is told what about which pull
//! request, and what prpr remembers about the PR.
//!
//! Nothing here knows Slack's markup. A [`Notice`] holds the facts (PR, people,
//! an excerpt of plain text) and its [`Address`] says how the recipient is
//! named inside a shared channel; [`crate::slack::render`] turns the pair into
//! a message when it is sent. Keeping notices as data is what lets the outbox
//! store them as data, lets a new presentation (threads, digests) re-render
//! them, and keeps escaping of user text in one place.
//!
//! A new kind of notice is a new [`Notice`] variant here, a rule that
//! produces it in [`crate::rules`], and its rendering in
//! [`crate::slack::render`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What prpr remembers about one pull request, built from the events themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrState {
    /// Lower-cased logins whose review request has been announced and not
    /// since removed or answered by a review.
    #[serde(default)]
    pub requested: BTreeSet<String>,
    /// Lower-cased `org/slug` of announced team requests.
    #[serde(default)]
    pub requested_teams: BTreeSet<String>,
    /// Lower-cased logins that have submitted a review: a later request to them
    /// is a *re-request*.
    #[serde(default)]
    pub reviewed: BTreeSet<String>,
    /// The PR as its thread's root card shows it, kept current by every
    /// event about the PR (see [`crate::rules::card`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// Channels that have been shown the PR's card by an `opened` route,
    /// so a label change or a re-open does not post it twice.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub carded: BTreeSet<String>,
    /// The PR has (or is about to have) a thread in some channel, so a
    /// change to its card must reach the thread updater.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub threaded: bool,
}

/// Where a pull request stands, as its card shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrStatus {
    #[default]
    Open,
    Draft,
    Merged,
    Closed,
}

/// A reviewer's standing on the card: the latest verdict wins, except that a
/// plain comment does not undo an approval or a change request (GitHub's
/// own rule for a PR's review decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Pending,
    Approved,
    ChangesRequested,
    Commented,
}

/// One reviewer (a GitHub login, or a team as `org/slug`) on the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewer {
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub team: bool,
    pub state: ReviewState,
}

/// A thread's root message, as data: the PR, where it stands, and who
/// reviews it. Rendered by [`crate::slack::render::card`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// `link` is the PR itself.
    pub pr: Pr,
    pub status: PrStatus,
    /// In the order they were first requested or reviewed.
    #[serde(default)]
    pub reviewers: Vec<Reviewer>,
    /// What routes and filters look at, remembered because not every event
    /// carries them (an issue comment has no base branch).
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// When the PR was opened and last updated (unix ms, from the payload):
    /// a reminder's age and staleness filters. Absent on cards stored by an
    /// older prpr until the PR's next event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

impl Card {
    /// Teams asked to review, as `org/slug` (what a route's `teams` match).
    pub fn teams(&self) -> Vec<String> {
        self.reviewers
            .iter()
            .filter(|r| r.team)
            .map(|r| r.name.clone())
            .collect()
    }

    /// Approvals on the card (reviewers whose latest verdict approves).
    pub fn approvals(&self) -> usize {
        self.reviewers
            .iter()
            .filter(|r| r.state == ReviewState::Approved)
            .count()
    }

    /// The reactions the root carries for this state (`[notify] reactions`).
    pub fn reactions(&self) -> BTreeSet<&'static str> {
        let mut r = BTreeSet::new();
        for rv in &self.reviewers {
            match rv.state {
                ReviewState::Approved => {
                    r.insert("white_check_mark");
                }
                ReviewState::ChangesRequested => {
                    r.insert("repeat");
                }
                _ => {}
            }
        }
        match self.status {
            PrStatus::Merged => {
                r.insert("tada");
            }
            PrStatus::Closed => {
                r.insert("x");
            }
            _ => {}
        }
        r
    }
}

/// What a notification is about (kept with it in the outbox, and in logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ReviewRequested,
    ReviewSubmitted,
    Mention,
    Merged,
    /// A pull request opened or marked ready for review: its card, for
    /// channels that want every PR of a repository.
    Opened,
    /// ECS deploy trouble (or success) for the ops channel.
    Ops,
    /// A scheduled digest or a personal reminder.
    Reminder,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ReviewRequested => "review_requested",
            Kind::ReviewSubmitted => "review_submitted",
            Kind::Mention => "mention",
            Kind::Merged => "merged",
            Kind::Opened => "opened",
            Kind::Ops => "ops",
            Kind::Reminder => "reminder",
        }
    }

    /// The kinds a route or `[notify] broadcast` may name.
    pub const PR_KINDS: [Kind; 5] = [
        Kind::ReviewRequested,
        Kind::ReviewSubmitted,
        Kind::Mention,
        Kind::Merged,
        Kind::Opened,
    ];

    /// Parses a kind's configuration name (`review_requested`, …).
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::PR_KINDS
            .into_iter()
            .chain([Kind::Ops])
            .find(|k| k.as_str() == name)
    }
}

/// How the recipient is named at the start of a message in a shared
/// channel. In a DM, or in a team's own channel without a user group,
/// nobody is named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Address {
    Nobody,
    /// A Slack user ID: a real `<@U…>` mention.
    User {
        id: String,
    },
    /// A Slack user group ID: `<!subteam^S…>`.
    Group {
        id: String,
    },
    /// A name without a Slack ID (a GitHub login, or a Slack name from a
    /// prpr-era `MEMBERS.md` that could not be resolved): plain `@name` text,
    /// never a broken mention.
    Name {
        name: String,
    },
}

/// The pull request a notice is about, and where its link points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pr {
    /// `owner/repo`.
    pub repo: String,
    pub number: u64,
    pub title: String,
    /// The PR's author (GitHub login).
    pub author: String,
    /// Where the notice links: the PR, or the review or comment it is about.
    pub link: String,
    /// Lines added and deleted, when the payload says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<(u64, u64)>,
}

/// Who is asked or mentioned: the recipient themself, or a team they get the
/// notice for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Whom {
    You,
    Team { org: String, slug: String },
}

/// A submitted review's verdict (the states prpr announces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approved,
    ChangesRequested,
    Commented,
}

impl Verdict {
    /// From GitHub's `review.state`; `None` for states not announced
    /// (`dismissed`, `pending`).
    pub fn from_github(state: &str) -> Option<Verdict> {
        match state.to_ascii_lowercase().as_str() {
            "approved" => Some(Verdict::Approved),
            "changes_requested" => Some(Verdict::ChangesRequested),
            "commented" => Some(Verdict::Commented),
            _ => None,
        }
    }
}

/// One thing to tell one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// `by` asked `whom` to review; `again` when the reviewer had reviewed
    /// before (a re-request).
    ReviewRequested {
        pr: Pr,
        by: String,
        whom: Whom,
        again: bool,
    },
    /// `reviewer` reviewed the recipient's PR.
    ReviewSubmitted {
        pr: Pr,
        reviewer: String,
        verdict: Verdict,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        excerpt: Option<String>,
    },
    /// `by` mentioned `whom` in a comment or review.
    Mentioned {
        pr: Pr,
        by: String,
        whom: Whom,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        excerpt: Option<String>,
    },
    /// `by` merged the PR.
    Merged { pr: Pr, by: String },
    /// The PR's card, for a channel that wants every PR (an `opened` route).
    /// In a thread it is the root itself; without threads, a message.
    Opened { card: Card },
    /// An ECS deployment failed (the circuit breaker tripped).
    DeployFailed {
        service: EcsService,
        deployment_id: String,
        reason: String,
        /// ECS said it is rolling back to the previous deployment.
        rolled_back: bool,
    },
    /// Tasks of one task definition keep failing to start (or exiting):
    /// ECS will keep replacing them, for ever, unless someone acts.
    RestartLoop {
        service: EcsService,
        task_definition: String,
        /// Failed stops counted within the window.
        stops: u32,
        window_secs: u64,
        /// The latest stop, as ECS reported it.
        stop_code: String,
        reason: String,
        /// What `fargate-doctor explain` says about it, when it knows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        explanation: Option<Explanation>,
    },
    /// ECS warns or errs about a service (`SERVICE_TASK_START_IMPAIRED`,
    /// placement failures…).
    ServiceAction {
        service: EcsService,
        /// `WARN` or `ERROR`.
        level: String,
        event_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A deployment reached steady state (only with `[ops] announce_deploys`).
    Deployed {
        service: EcsService,
        deployment_id: String,
    },
    /// One message of a reminder: a channel digest or a personal DM. A long
    /// digest is several of these (`page` of `pages`), each within Slack's
    /// 50-block limit; see [`crate::reminders::digest`].
    Digest(Digest),
    /// A team's review request was not passed on to its members by DM
    /// (see [`TeamExpansion`]): said in the team's channel, so nobody
    /// assumes they were told.
    TeamNotExpanded {
        pr: Pr,
        org: String,
        slug: String,
        why: NotExpanded,
    },
}

/// Why a team's members were not DMed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NotExpanded {
    /// More members to tell than `[notify] team_expand_max`.
    TooMany { members: u32, max: u32 },
    /// GitHub would not list the team's members (after retries).
    Unavailable,
}

/// A team review request to pass on to the team's members, one DM each,
/// once GitHub has had `delay_ms` to replace it by member requests (team
/// auto-assignment). Decided by the rules, stored with the delivery in
/// one transaction, carried out by [`crate::outbox::teams`], which needs
/// the GitHub API for the members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamExpansion {
    pub org: String,
    pub slug: String,
    /// The team's request notice (`whom` is the team); each member gets it
    /// addressed to them.
    pub notice: Notice,
    /// Who asked (not told: they know).
    pub sender: String,
    /// The debounce (`[notify] team_debounce`).
    pub delay_ms: u64,
}

/// A page of a reminder, as data: its PRs grouped by repository, oldest
/// first, as they stood when the reminder was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// What the reminder is (`backend-morning`, `Waiting for your review`).
    pub title: String,
    /// 1-based.
    pub page: u32,
    pub pages: u32,
    /// PRs in the whole reminder (all pages).
    pub total: u32,
    pub repos: Vec<DigestRepo>,
}

/// One repository's PRs on one page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRepo {
    pub repo: String,
    /// The repository's list started on an earlier page.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
    pub prs: Vec<DigestPr>,
}

/// One PR of a reminder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestPr {
    pub pr: Pr,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draft: bool,
    /// Seconds since the PR was opened, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_secs: Option<u64>,
    /// Who it waits for: pending reviewers and teams (and, with
    /// `remind_authors`, the author who has changes to make).
    pub waiting: Vec<Address>,
    pub approvals: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub changes_requested: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An ECS service (or, for a task not started by a service, its group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsService {
    pub cluster: String,
    pub service: String,
}

/// Why a task stopped, in words: the trap, the cause, what to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub trap: String,
    pub cause: String,
    pub fix: Vec<String>,
}

impl Notice {
    pub fn kind(&self) -> Kind {
        match self {
            Notice::ReviewRequested { .. } | Notice::TeamNotExpanded { .. } => {
                Kind::ReviewRequested
            }
            Notice::ReviewSubmitted { .. } => Kind::ReviewSubmitted,
            Notice::Mentioned { .. } => Kind::Mention,
            Notice::Merged { .. } => Kind::Merged,
            Notice::Opened { .. } => Kind::Opened,
            Notice::DeployFailed { .. }
            | Notice::RestartLoop { .. }
            | Notice::ServiceAction { .. }
            | Notice::Deployed { .. } => Kind::Ops,
            Notice::Digest(_) => Kind::Reminder,
        }
    }

    /// The pull request the notice is about, if any: `(repo, number)`.
    pub fn pr(&self) -> Option<(&str, u64)> {
        match self {
            Notice::ReviewRequested { pr, .. }
            | Notice::TeamNotExpanded { pr, .. }
            | Notice::ReviewSubmitted { pr, .. }
            | Notice::Mentioned { pr, .. }
            | Notice::Merged { pr, .. }
            | Notice::Opened {
                card: Card { pr, .. },
            } => Some((pr.repo.as_str(), pr.number)),
            _ => None,
        }
    }
}

/// Where in a conversation a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Place {
    /// A message of its own (a DM, or a channel without threads).
    #[default]
    Message,
    /// A reply in the PR's thread in that channel, whose root card is
    /// posted first if the channel has none yet; `broadcast` also shows it
    /// in the channel.
    Reply { broadcast: bool },
    /// Only the PR's root card (posted if missing; nothing else).
    Root,
}

impl Place {
    pub fn is_message(&self) -> bool {
        matches!(self, Place::Message)
    }
}

/// Is this conversation ID a person (a DM from the bot) rather than a channel?
pub fn is_dm(conversation: &str) -> bool {
    conversation.starts_with('U') || conversation.starts_with('W')
}

/// One notice to one Slack conversation (a user ID means a DM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub channel: String,
    pub address: Address,
    pub notice: Notice,
    #[serde(default, skip_serializing_if = "Place::is_message")]
    pub place: Place,
}

impl Notification {
    /// A message of its own in `channel` (rules place it in a thread later).
    pub fn new(channel: impl Into<String>, address: Address, notice: Notice) -> Notification {
        Notification {
            channel: channel.into(),
            address,
            notice,
            place: Place::Message,
        }
    }

    pub fn kind(&self) -> Kind {
        self.notice.kind()
    }

    /// The text a user will read (rule tests assert it).
    #[cfg(test)]
    pub fn text(&self) -> String {
        crate::slack::render::render(&self.address, &self.notice).text
    }
}

/// The outcome of the rules for one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub notifications: Vec<Notification>,
    /// The PR's next state; `None` when unchanged.
    pub state: Option<PrState>,
    /// Why nothing (or less) was sent, for the delivery log line.
    pub skipped: Vec<String>,
    /// The PR's card changed (its threads' roots need an update).
    pub card_changed: bool,
    /// Team requests to pass on to each member after the debounce.
    pub expansions: Vec<TeamExpansion>,
}

impl Decision {
    pub fn skip(reason: impl Into<String>) -> Decision {
        Decision {
            skipped: vec![reason.into()],
            ..Decision::default()
        }
    }
}

/// The first `lines` non-empty lines of `body`, cut at `max_chars`
/// characters, with an ellipsis when anything was left out. Plain text: the
/// renderer quotes and escapes it.
pub fn excerpt(body: &str, lines: usize, max_chars: usize) -> Option<String> {
    let mut picked: Vec<&str> = body
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(lines + 1)
        .collect();
    let mut truncated = picked.len() > lines;
    picked.truncate(lines);
    if picked.is_empty() {
        return None;
    }
    let mut joined = picked.join("\n");
    if joined.chars().count() > max_chars {
        joined = joined.chars().take(max_chars).collect();
        truncated = true;
    }
    if truncated {
        joined.push('…');
    }
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_takes_the_first_lines_and_marks_a_cut() {
        assert_eq!(
            excerpt("one\n\ntwo <b>\nthree\nfour", 3, 300).as_deref(),
            Some("one\ntwo <b>\nthree…")
        );
        assert_eq!(excerpt("  \n", 3, 300), None);
        assert_eq!(excerpt("abcdef", 3, 3).as_deref(), Some("abc…"));
        assert_eq!(excerpt("short", 3, 300).as_deref(), Some("short"));
    }

    #[test]
    fn notices_round_trip_as_tagged_json() {
        let n = Notification {
            channel: "C0GENERAL1".into(),
            address: Address::User {
                id: "U0ALICE01".into(),
            },
            notice: Notice::ReviewRequested {
                pr: Pr {
                    repo: "acme/app".into(),
                    number: 42,
                    title: "T".into(),
                    author: "carol".into(),
                    link: "https://github.com/acme/app/pull/42".into(),
                    size: Some((1, 2)),
                },
                by: "carol".into(),
                whom: Whom::You,
                again: false,
            },
            place: Place::Reply { broadcast: true },
        };
        let json = serde_json::to_value(&n).expect("serialises");
        assert_eq!(json["notice"]["notice"], "review_requested");
        assert_eq!(json["address"]["type"], "user");
        let back: Notification = serde_json::from_value(json).expect("parses");
        assert_eq!(back, n);
    }
}
