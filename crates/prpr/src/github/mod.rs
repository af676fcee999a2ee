//! Typed views of GitHub webhook payloads.
//!
//! Only the fields the rules read are declared; everything else GitHub sends is
//! ignored, so new fields never break intake. Fields GitHub omits in some event
//! shapes (a `pull_request_review` carries a "simple" pull request without
//! `additions`, for instance) are `Option`s. A payload that lacks a field we do
//! need is rejected with the JSON path of the problem (`pull_request.user.login:
//! missing field`), which is what a person debugging a webhook wants to read.

pub mod backfill;
pub mod catchup;
pub mod client;
pub mod mentions;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A GitHub account (user, bot or organization).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub login: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl Account {
    /// GitHub marks app accounts with `type: "Bot"` and a `[bot]` login suffix.
    pub fn is_bot_account(&self) -> bool {
        self.kind.as_deref() == Some("Bot") || self.login.ends_with("[bot]")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
    pub owner: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub slug: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    pub html_url: String,
    pub user: Account,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merged_by: Option<Account>,
    #[serde(default)]
    pub additions: Option<u64>,
    #[serde(default)]
    pub deletions: Option<u64>,
    #[serde(default)]
    pub requested_reviewers: Vec<Account>,
    #[serde(default)]
    pub requested_teams: Vec<Team>,
    /// Absent in some payload shapes; empty then.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// The branch the PR merges into (`base.ref`).
    #[serde(default)]
    pub base: Option<Branch>,
    /// `open` or `closed`.
    #[serde(default)]
    pub state: Option<String>,
    /// RFC 3339 (`2026-01-02T03:04:05Z`): a reminder's age and staleness.
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Branch {
    #[serde(rename = "ref")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub pull_request: PullRequest,
    #[serde(default)]
    pub requested_reviewer: Option<Account>,
    #[serde(default)]
    pub requested_team: Option<Team>,
    pub repository: Repository,
    pub sender: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    pub user: Account,
    pub state: String,
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
}

/// A review as `GET /repos/{o}/{r}/pulls/{n}/reviews` lists it (oldest
/// first; `state` in capitals: `APPROVED`, `CHANGES_REQUESTED`,
/// `COMMENTED`, `DISMISSED`, `PENDING`).
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewItem {
    /// `null` for a deleted account ("ghost").
    #[serde(default)]
    pub user: Option<Account>,
    pub state: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestReviewEvent {
    pub action: String,
    pub review: Review,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
    pub user: Account,
    /// The body's mentions, scanned once (see [`Comment::mentions`]).
    #[serde(skip)]
    scanned: std::sync::OnceLock<Vec<mentions::Mention>>,
}

impl Comment {
    /// The body's `@mentions`, scanned on first use and kept. Why kept: the
    /// pipeline scans before the store's write transaction
    /// ([`crate::rules::prepare`]), so the rules inside it only read the
    /// result; on SQLite that transaction holds the only write lock, and a
    /// long comment's Markdown scan held every other delivery up.
    pub fn mentions(&self) -> &[mentions::Mention] {
        self.scanned
            .get_or_init(|| mentions::extract(self.body.as_deref().unwrap_or("")))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub html_url: String,
    pub user: Account,
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Present (with links) only when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueCommentEvent {
    pub action: String,
    pub issue: Issue,
    pub comment: Comment,
    pub repository: Repository,
    pub sender: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReviewCommentEvent {
    pub action: String,
    pub comment: Comment,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Account,
}

/// A decoded delivery, by its `X-GitHub-Event` header.
#[derive(Debug, Clone)]
pub enum Event {
    Ping,
    PullRequest(Box<PullRequestEvent>),
    Review(Box<PullRequestReviewEvent>),
    IssueComment(Box<IssueCommentEvent>),
    ReviewComment(Box<ReviewCommentEvent>),
    /// An event prpr has no rule for (push, issues, …): stored, then ignored.
    Other {
        name: String,
        action: Option<String>,
    },
}

/// Why a payload could not be read. The message is shown to the webhook sender.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("{event} payload: {path}: {message}")]
    Shape {
        event: String,
        path: String,
        message: String,
    },
}

/// Where a delivery is about, for logs and for the per-PR state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    pub action: Option<String>,
    pub repo: Option<String>,
    pub number: Option<u64>,
}

impl Event {
    /// Decodes `body` according to the `X-GitHub-Event` name.
    pub fn parse(event: &str, body: &[u8]) -> Result<Event, PayloadError> {
        Ok(match event {
            "ping" => {
                check_json(body)?;
                Event::Ping
            }
            "pull_request" => Event::PullRequest(Box::new(typed(event, body)?)),
            "pull_request_review" => Event::Review(Box::new(typed(event, body)?)),
            "issue_comment" => Event::IssueComment(Box::new(typed(event, body)?)),
            "pull_request_review_comment" => Event::ReviewComment(Box::new(typed(event, body)?)),
            other => {
                #[derive(Deserialize)]
                struct ActionOnly {
                    #[serde(default)]
                    action: Option<serde_json::Value>,
                }
                let a: ActionOnly =
                    serde_json::from_slice(body).map_err(|e| PayloadError::Json(e.to_string()))?;
                Event::Other {
                    name: other.to_string(),
                    action: a.action.and_then(|v| v.as_str().map(str::to_string)),
                }
            }
        })
    }

    /// The action, repository and PR/issue number, when the event has them.
    pub fn subject(&self) -> Subject {
        let (action, repo, number) = match self {
            Event::Ping => return Subject::default(),
            Event::PullRequest(e) => (&e.action, &e.repository, e.pull_request.number),
            Event::Review(e) => (&e.action, &e.repository, e.pull_request.number),
            Event::IssueComment(e) => (&e.action, &e.repository, e.issue.number),
            Event::ReviewComment(e) => (&e.action, &e.repository, e.pull_request.number),
            Event::Other { action, .. } => {
                return Subject {
                    action: action.clone(),
                    ..Subject::default()
                };
            }
        };
        Subject {
            action: Some(action.clone()),
            repo: Some(repo.full_name.clone()),
            number: Some(number),
        }
    }
}

fn check_json(body: &[u8]) -> Result<(), PayloadError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| PayloadError::Json(e.to_string()))
}

fn typed<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, PayloadError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            PayloadError::Json(inner.to_string())
        } else {
            PayloadError::Shape {
                event: event.to_string(),
                path,
                message: strip_position(&inner.to_string()),
            }
        }
    })
}

/// serde_json appends " at line L column C"; the path already says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_field_names_its_path() {
        let body = br#"{"action":"opened","pull_request":{"number":1,"title":"t","html_url":"u"},
            "repository":{"full_name":"o/r","owner":{"login":"o"}},"sender":{"login":"s"}}"#;
        let err = Event::parse("pull_request", body).unwrap_err();
        assert_eq!(
            err,
            PayloadError::Shape {
                event: "pull_request".into(),
                path: "pull_request".into(),
                message: "missing field `user`".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "pull_request payload: pull_request: missing field `user`"
        );
    }

    #[test]
    fn wrong_type_names_its_path() {
        let body = br#"{"action":"opened","pull_request":{"number":"one"}}"#;
        let err = Event::parse("pull_request", body).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "pull_request payload: pull_request.number: invalid type: string \"one\""
            ),
            "{err}"
        );
    }

    #[test]
    fn broken_json_is_a_json_error() {
        assert!(matches!(
            Event::parse("pull_request", b"{\"action\":"),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(
            Event::parse("push", b"nope"),
            Err(PayloadError::Json(_))
        ));
    }

    #[test]
    fn unknown_events_keep_their_action() {
        match Event::parse("issues", br#"{"action":"opened"}"#).unwrap() {
            Event::Other { name, action } => {
                assert_eq!(name, "issues");
                assert_eq!(action.as_deref(), Some("opened"));
            }
            other => panic!("{other:?}"),
        }
    }
}
