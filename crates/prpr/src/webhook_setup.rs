//! `prpr webhook OWNER/REPO URL`: points a repository's webhook at prpr.
//!
//! The Ruby prpr's `bin/webhook` did this. Here the hook whose `config.url` is
//! URL is created, or updated if it exists, so running the command twice is
//! harmless. It gets JSON payloads, the configured secret and the four events
//! prpr acts on. It calls the GitHub API with `GITHUB_TOKEN` (a token allowed
//! to administer the repository's hooks); the bot's own calls (catch-up) go
//! through [`crate::github::client`].

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::config::Secret;

/// The events prpr's rules read.
pub const EVENTS: [&str; 4] = [
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "issue_comment",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    Created { id: u64 },
    Updated { id: u64 },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetupError {
    #[error("{0:?} is not OWNER/REPO")]
    BadRepo(String),
    #[error("{0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error(
        "GitHub rejected the token (401 {0}); set GITHUB_TOKEN to a token that may administer the repository's webhooks"
    )]
    Unauthorized(String),
    #[error(
        "repository {0} not found, or the token may not administer its webhooks (GitHub answers 404 for both)"
    )]
    NotFound(String),
    #[error("GitHub refused the webhook: {0}")]
    Refused(String),
    #[error("GitHub API: {0}")]
    Api(String),
}

#[derive(Debug, Deserialize)]
struct HookConfig {
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HookView {
    id: u64,
    #[serde(default)]
    config: Option<HookConfig>,
}

#[derive(Debug, Deserialize)]
struct GitHubError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

pub struct GitHubApi {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
}

impl GitHubApi {
    pub fn new(api_url: &str, token: Secret) -> Result<GitHubApi, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("prpr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Api(e.to_string()))?;
        Ok(GitHubApi {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.api_url))
            .bearer_auth(self.token.expose())
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
    }

    /// Creates or updates the hook for `url` on `repo`.
    pub async fn install(
        &self,
        repo: &str,
        url: &str,
        secret: &Secret,
    ) -> Result<Installed, SetupError> {
        let (owner, name) = repo
            .split_once('/')
            .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| SetupError::BadRepo(repo.to_string()))?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(SetupError::BadUrl(url.to_string()));
        }
        let body = json!({
            "name": "web",
            "active": true,
            "events": EVENTS,
            "config": {"url": url, "content_type": "json", "secret": secret.expose(), "insecure_ssl": "0"},
        });
        let base = format!("/repos/{owner}/{name}/hooks");
        match self.find(&base, repo, url).await? {
            Some(id) => {
                let resp = self
                    .request(reqwest::Method::PATCH, &format!("{base}/{id}"))
                    .json(&body)
                    .send()
                    .await;
                let _updated: HookView = self.check(resp, repo).await?;
                Ok(Installed::Updated { id })
            }
            None => {
                let resp = self
                    .request(reqwest::Method::POST, &base)
                    .json(&body)
                    .send()
                    .await;
                let created: HookView = self.check(resp, repo).await?;
                Ok(Installed::Created { id: created.id })
            }
        }
    }

    /// The ID of the hook already pointing at `url`, looking through every page.
    async fn find(&self, base: &str, repo: &str, url: &str) -> Result<Option<u64>, SetupError> {
        for page in 1..=50 {
            let resp = self
                .request(
                    reqwest::Method::GET,
                    &format!("{base}?per_page=100&page={page}"),
                )
                .send()
                .await;
            let resp = resp.map_err(|e| SetupError::Api(e.to_string()))?;
            let more = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|l| l.contains("rel=\"next\""));
            let hooks: Vec<HookView> = self.check(Ok(resp), repo).await?;
            if let Some(h) = hooks
                .iter()
                .find(|h| h.config.as_ref().and_then(|c| c.url.as_deref()) == Some(url))
            {
                return Ok(Some(h.id));
            }
            if !more {
                break;
            }
        }
        Ok(None)
    }

    async fn check<T: serde::de::DeserializeOwned>(
        &self,
        resp: Result<reqwest::Response, reqwest::Error>,
        repo: &str,
    ) -> Result<T, SetupError> {
        let resp = resp.map_err(|e| SetupError::Api(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .map_err(|e| SetupError::Api(format!("unreadable answer: {e}")));
        }
        let err: GitHubError = resp.json().await.unwrap_or(GitHubError {
            message: String::new(),
            errors: Vec::new(),
        });
        Err(match status.as_u16() {
            401 => SetupError::Unauthorized(err.message),
            404 => SetupError::NotFound(repo.to_string()),
            422 => {
                let details: Vec<String> = err
                    .errors
                    .iter()
                    .filter_map(|e| {
                        e.get("message")
                            .and_then(|m| m.as_str())
                            .map(str::to_string)
                    })
                    .collect();
                SetupError::Refused(if details.is_empty() {
                    err.message
                } else {
                    details.join("; ")
                })
            }
            code => SetupError::Api(format!("HTTP {code}: {}", err.message)),
        })
    }
}
