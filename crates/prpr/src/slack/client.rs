//! The Slack Web API client: `chat.postMessage` with a bot token.
//!
//! Its job is to turn every possible answer into one of three outcomes the
//! sender acts on: delivered (with Slack's `ts`), retry later (network errors,
//! timeouts, `5xx`, `429` + `Retry-After`, Slack's own transient errors), or
//! give up (`channel_not_found`, `invalid_auth`, … — retrying cannot help).
//! The token travels only in the `Authorization` header and never in an error.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::message::Message;
use super::{Posted, SendError};
use crate::config::Secret;

#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
    /// `https://<workspace>.slack.com/`, learnt from `auth.test`, for links
    /// to messages.
    workspace_url: std::sync::Arc<std::sync::OnceLock<String>>,
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// One workspace member from `users.list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlackMember {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub profile: MemberProfile,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MemberProfile {
    #[serde(default)]
    pub display_name: String,
}

#[derive(Debug, Deserialize)]
struct UsersPage {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    members: Vec<SlackMember>,
    #[serde(default)]
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Debug, Deserialize)]
struct ResponseMetadata {
    #[serde(default)]
    next_cursor: String,
}

/// Who the token belongs to (from `auth.test`), logged at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub team: String,
    pub user_id: String,
}

/// Slack errors that retrying will not fix.
const PERMANENT: &[&str] = &[
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "user_not_found",
    "user_disabled",
    "cannot_dm_bot",
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "invalid_blocks_format",
    "invalid_arguments",
    "restricted_action",
    "team_access_not_granted",
    "ekm_access_denied",
];

impl SlackClient {
    pub fn new(
        api_url: &str,
        token: Secret,
        timeout: Duration,
    ) -> Result<SlackClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("prpr/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(SlackClient {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            token,
            workspace_url: Default::default(),
        })
    }

    /// `chat.postMessage` to a channel, or to a user ID (a DM from the bot).
    pub async fn post_message(
        &self,
        channel: &str,
        message: &Message,
        thread: super::InThread<'_>,
    ) -> Result<Posted, SendError> {
        let mut body = json!({
            "channel": channel,
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Some(ts) = thread.thread_ts {
            body["thread_ts"] = json!(ts);
            if thread.broadcast {
                body["reply_broadcast"] = json!(true);
            }
        }
        let resp = self.call("chat.postMessage", &body).await?;
        Ok(Posted { ts: resp.ts })
    }

    /// `chat.update`: a thread's root card shows the PR's latest state.
    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        message: &Message,
    ) -> Result<(), SendError> {
        let body = json!({
            "channel": channel,
            "ts": ts,
            "text": message.text,
            "blocks": message.blocks,
        });
        self.call("chat.update", &body).await.map(|_| ())
    }

    /// `reactions.add` / `reactions.remove` (scope `reactions:write`). A
    /// reaction already there, or already gone, is what was wanted.
    pub async fn react(
        &self,
        channel: &str,
        ts: &str,
        name: &str,
        add: bool,
    ) -> Result<(), SendError> {
        let method = if add {
            "reactions.add"
        } else {
            "reactions.remove"
        };
        let body = json!({ "channel": channel, "timestamp": ts, "name": name });
        match self.call(method, &body).await {
            Ok(_) => Ok(()),
            Err(SendError::Transient(e) | SendError::Permanent(e))
                if e == "already_reacted" || e == "no_reaction" =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `auth.test` has told the workspace's address (for links).
    pub fn workspace_known(&self) -> bool {
        self.workspace_url.get().is_some()
    }

    /// `https://<workspace>.slack.com/archives/<channel>/p<ts without dot>`.
    pub fn permalink(&self, channel: &str, ts: &str) -> Option<String> {
        let base = self.workspace_url.get()?;
        Some(format!(
            "{}/archives/{channel}/p{}",
            base.trim_end_matches('/'),
            ts.replace('.', "")
        ))
    }

    /// `auth.test`: checks the token and says whose it is.
    pub async fn auth_test(&self) -> Result<Identity, SendError> {
        let resp = self.call("auth.test", &json!({})).await?;
        if let Some(url) = resp.url.as_deref().filter(|u| u.starts_with("https://")) {
            let _ = self.workspace_url.set(url.to_string());
        }
        Ok(Identity {
            team: resp.team.unwrap_or_default(),
            user_id: resp.user_id.unwrap_or_default(),
        })
    }

    /// Every member of the workspace (`users.list`, paginated; needs the
    /// `users:read` scope). Used once at start-up to turn the Slack names of a
    /// prpr-era `MEMBERS.md` into user IDs.
    pub async fn list_users(&self) -> Result<Vec<SlackMember>, SendError> {
        let url = format!("{}/users.list", self.api_url);
        let mut cursor = String::new();
        let mut all = Vec::new();
        // A generous bound: 200 per page, so 100 pages is a 20,000-person workspace.
        for _ in 0..100 {
            let mut query = vec![("limit", "200")];
            if !cursor.is_empty() {
                query.push(("cursor", cursor.as_str()));
            }
            let query = serde_urlencoded::to_string(&query)
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            let resp = self
                .http
                .get(format!("{url}?{query}"))
                .bearer_auth(self.token.expose())
                .send()
                .await
                .map_err(|e| SendError::Transient(describe(&e)))?;
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                return Err(SendError::RateLimited(retry_after(resp.headers())));
            }
            if !resp.status().is_success() {
                return Err(SendError::Transient(format!(
                    "Slack answered HTTP {} to users.list",
                    resp.status().as_u16()
                )));
            }
            let page: UsersPage = resp.json().await.map_err(|e| {
                SendError::Transient(format!("unreadable users.list response: {}", describe(&e)))
            })?;
            if !page.ok {
                return Err(SendError::Permanent(
                    page.error.unwrap_or_else(|| "unknown_error".into()),
                ));
            }
            all.extend(page.members);
            cursor = page
                .response_metadata
                .map(|m| m.next_cursor)
                .unwrap_or_default();
            if cursor.is_empty() {
                break;
            }
        }
        Ok(all)
    }

    async fn call(&self, method: &str, body: &serde_json::Value) -> Result<ApiResponse, SendError> {
        let url = format!("{}/{method}", self.api_url);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(describe(&e)))?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(SendError::RateLimited(retry_after(resp.headers())));
        }
        if status.is_server_error() {
            return Err(SendError::Transient(format!(
                "Slack answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(SendError::Permanent(format!(
                "Slack answered HTTP {} to {method}",
                status.as_u16()
            )));
        }
        let api: ApiResponse = resp.json().await.map_err(|e| {
            SendError::Transient(format!("unreadable Slack response: {}", describe(&e)))
        })?;
        if api.ok {
            return Ok(api);
        }
        let error = api.error.unwrap_or_else(|| "unknown_error".into());
        Err(match error.as_str() {
            "ratelimited" | "rate_limited" => SendError::RateLimited(Duration::from_secs(1)),
            "message_not_found" | "thread_not_found" => SendError::Gone(error),
            e if PERMANENT.contains(&e) => SendError::Permanent(error),
            // internal_error, fatal_error, service_unavailable, request_timeout and
            // anything new: retried, and dead-lettered after max_attempts.
            _ => SendError::Transient(error),
        })
    }
}

/// `Retry-After` in seconds (Slack sends whole seconds); 1 s when absent.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.clamp(1, 3600)))
        .unwrap_or(Duration::from_secs(1))
}

/// A reqwest error without its URL's query (none carries secrets, but the
/// message stays short and stable).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "bad response body"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}
