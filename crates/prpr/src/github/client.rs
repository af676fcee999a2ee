//! A small GitHub REST client for what prpr asks of the API at run time:
//! webhook deliveries (catch-up), team members (team expansion), open pull
//! requests and their reviews (the reminders backfill) and App installation
//! tokens.
//!
//! Why its own client and not `webhook_setup::GitHubApi`: this one runs in the
//! background of `prpr serve`, so it must live within GitHub's limits on its
//! own — it reads `x-ratelimit-remaining`/`x-ratelimit-reset` from every
//! answer (callers stop early when low), waits out `retry-after` on secondary
//! limits, follows `Link: <…>; rel="next"` pagination — and it speaks both
//! kinds of credentials:
//!
//! - a token (`GITHUB_TOKEN`), sent as is;
//! - a GitHub App (`GITHUB_APP_ID` + private key): an RS256 JWT (iat 60 s in
//!   the past, exp 9 minutes ahead, `iss` = the app ID) for `/app/…`, exchanged
//!   per installation for installation tokens, cached until 5 minutes before
//!   they expire.
//!
//! Secrets never reach logs or errors: tokens and keys are [`Secret`]s, and
//! errors name the path and GitHub's message, never a header.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, LINK, RETRY_AFTER};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::config::{GithubConfig, Secret};

/// An installation token is renewed this long before it expires, so a
/// request never races its expiry.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// A secondary limit asking for a longer wait than this ends the call
/// instead: a background pass should not sleep for minutes.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Attempts of one request on secondary limits.
const ATTEMPTS: u32 = 3;

/// Failures of a GitHub call. None of them carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub rejected the credentials for {path} (401 {message})")]
    Unauthorized { path: String, message: String },
    #[error(
        "GitHub: {path} not found (404), or the credentials may not read it (GitHub answers 404 for both)"
    )]
    NotFound { path: String },
    #[error("GitHub rate limit exhausted; it resets at {reset} (epoch seconds)")]
    RateLimited { reset: u64 },
    #[error("GitHub secondary rate limit on {path}: asked to wait {retry_after_secs} s")]
    SecondaryLimit { path: String, retry_after_secs: u64 },
    #[error("GitHub {path}: HTTP {status}: {message}")]
    Status {
        path: String,
        status: u16,
        message: String,
    },
    #[error("GitHub {path}: {message}")]
    Transport { path: String, message: String },
    #[error("GitHub {path}: unreadable answer: {message}")]
    Decode { path: String, message: String },
    #[error("GitHub App: {0}")]
    App(String),
}

/// The credentials prpr calls GitHub with.
#[derive(Clone)]
pub enum Credentials {
    Token(Secret),
    App {
        app_id: u64,
        /// The PEM, kept as given: parsed once in [`GitHubClient::new`].
        private_key: Secret,
    },
}

impl Credentials {
    /// From the config: App credentials win over a token; `None` without either.
    pub fn from_config(cfg: &GithubConfig) -> Option<Credentials> {
        match (&cfg.app_id, &cfg.app_private_key, &cfg.token) {
            (Some(app_id), Some(key), _) => Some(Credentials::App {
                app_id: *app_id,
                private_key: key.clone(),
            }),
            (_, _, Some(token)) => Some(Credentials::Token(token.clone())),
            _ => None,
        }
    }
}

/// Which credential a request goes out with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum As {
    /// The token, or in App mode the installation token of this account
    /// (the repository owner or the organization).
    Account(String),
    /// The App's JWT (`/app/…` endpoints). Token mode has none.
    App,
}

/// The latest rate-limit headers seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub remaining: Option<u64>,
    /// Epoch seconds.
    pub reset: Option<u64>,
}

enum Auth {
    Token(Secret),
    App(AppAuth),
}

struct AppAuth {
    app_id: u64,
    key: jsonwebtoken::EncodingKey,
    /// Lower-cased account login → installation id.
    installations: tokio::sync::Mutex<HashMap<String, u64>>,
    /// Installation id → (token, expiry in unix ms).
    tokens: tokio::sync::Mutex<HashMap<u64, (Secret, i64)>>,
}

/// The client. Cheap to share behind an `Arc`.
pub struct GitHubClient {
    http: reqwest::Client,
    api_url: String,
    auth: Auth,
    clock: Clock,
    rate: std::sync::Mutex<RateLimit>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
    account: Option<AccountLogin>,
}

#[derive(Deserialize)]
struct AccountLogin {
    login: String,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: String,
}

#[derive(serde::Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

impl GitHubClient {
    /// A client for `api_url` (`https://api.github.com`, or
    /// `https://HOST/api/v3` on GitHub Enterprise Server).
    pub fn new(
        api_url: &str,
        credentials: Credentials,
        clock: Clock,
    ) -> Result<GitHubClient, GitHubError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("prpr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GitHubError::Transport {
                path: api_url.to_string(),
                message: e.to_string(),
            })?;
        let auth = match credentials {
            Credentials::Token(t) => Auth::Token(t),
            Credentials::App {
                app_id,
                private_key,
            } => {
                // jsonwebtoken's message names the PEM's problem, never its content.
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(
                    private_key.expose().as_bytes(),
                )
                .map_err(|e| {
                    GitHubError::App(format!(
                        "the private key is not an RSA PEM (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY): {e}"
                    ))
                })?;
                Auth::App(AppAuth {
                    app_id,
                    key,
                    installations: tokio::sync::Mutex::new(HashMap::new()),
                    tokens: tokio::sync::Mutex::new(HashMap::new()),
                })
            }
        };
        Ok(GitHubClient {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            auth,
            clock,
            rate: std::sync::Mutex::new(RateLimit::default()),
        })
    }

    /// Is this an App client (so `/app/hook` exists)?
    pub fn is_app(&self) -> bool {
        matches!(self.auth, Auth::App(_))
    }

    /// The rate limit as of the latest answer.
    pub fn rate_limit(&self) -> RateLimit {
        *self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why a background pass should stop now: GitHub's remaining rate limit
    /// (as of the latest answer) is at or below `floor`, leaving the rest to
    /// prpr's other calls. `None` while there is room.
    pub fn rate_low(&self, floor: u64) -> Option<String> {
        let remaining = self.rate_limit().remaining?;
        (remaining <= floor)
            .then(|| format!("GitHub rate limit low ({remaining} left, floor {floor})"))
    }

    /// The App's JWT: RS256, iat 60 s in the past (clock drift), exp 9
    /// minutes ahead (GitHub refuses more than 10).
    fn jwt(&self, app: &AppAuth) -> Result<Secret, GitHubError> {
        let now = self.clock.now_ms() / 1000;
        let claims = Claims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: app.app_id.to_string(),
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &app.key,
        )
        .map(Secret::new)
        .map_err(|e| GitHubError::App(format!("cannot sign the JWT: {e}")))
    }

    /// The bearer for `who`.
    async fn bearer(&self, who: &As) -> Result<Secret, GitHubError> {
        match (&self.auth, who) {
            (Auth::Token(t), As::Account(_)) => Ok(t.clone()),
            (Auth::Token(_), As::App) => Err(GitHubError::App(
                "this endpoint needs GitHub App credentials (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY)"
                    .into(),
            )),
            (Auth::App(app), As::App) => self.jwt(app),
            (Auth::App(app), As::Account(login)) => {
                // Boxed: these call `send` (with the JWT), which calls this.
                let id = Box::pin(self.installation(app, login)).await?;
                Box::pin(self.installation_token(app, id)).await
            }
        }
    }

    /// The installation on `login`, from `GET /app/installations` (cached).
    async fn installation(&self, app: &AppAuth, login: &str) -> Result<u64, GitHubError> {
        let key = login.to_ascii_lowercase();
        let mut cache = app.installations.lock().await;
        if let Some(id) = cache.get(&key) {
            return Ok(*id);
        }
        let mut url = format!("{}/app/installations?per_page=100", self.api_url);
        loop {
            let (list, next): (Vec<Installation>, _) = self.get_page_as(&url, &As::App).await?;
            for i in list {
                if let Some(a) = i.account {
                    cache.insert(a.login.to_ascii_lowercase(), i.id);
                }
            }
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        cache.get(&key).copied().ok_or_else(|| {
            GitHubError::App(format!(
                "the App is not installed on {login}: install it there (Settings → GitHub Apps)"
            ))
        })
    }

    /// An installation token, reused until [`TOKEN_REFRESH_MARGIN`] before expiry.
    async fn installation_token(&self, app: &AppAuth, id: u64) -> Result<Secret, GitHubError> {
        let mut cache = app.tokens.lock().await;
        let now = self.clock.now_ms();
        if let Some((token, expires_ms)) = cache.get(&id)
            && now + (TOKEN_REFRESH_MARGIN.as_millis() as i64) < *expires_ms
        {
            return Ok(token.clone());
        }
        let path = format!("/app/installations/{id}/access_tokens");
        let resp = self
            .send(
                reqwest::Method::POST,
                &format!("{}{path}", self.api_url),
                &As::App,
            )
            .await?;
        let t: AccessToken = decode(resp, &path).await?;
        let expires_ms = parse_rfc3339_ms(&t.expires_at).map_err(|e| GitHubError::Decode {
            path: path.clone(),
            message: format!("expires_at: {e}"),
        })?;
        let token = Secret::new(t.token);
        cache.insert(id, (token.clone(), expires_ms));
        tracing::info!(installation = id, expires_at = %t.expires_at, "GitHub App installation token issued");
        Ok(token)
    }

    /// Forgets a token GitHub refused (revoked, or the clocks disagree).
    async fn forget_token(&self, who: &As) {
        if let (Auth::App(app), As::Account(login)) = (&self.auth, who)
            && let Some(id) = app
                .installations
                .lock()
                .await
                .get(&login.to_ascii_lowercase())
                .copied()
        {
            app.tokens.lock().await.remove(&id);
        }
    }

    /// Sends a request, waiting out secondary limits (`retry-after`) up to
    /// [`ATTEMPTS`] times, and refreshing an installation token GitHub
    /// refused once. Answers other than 2xx become errors.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        who: &As,
    ) -> Result<reqwest::Response, GitHubError> {
        let path = url
            .strip_prefix(&self.api_url)
            .unwrap_or(url)
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let bearer = self.bearer(who).await?;
            let resp = self
                .http
                .request(method.clone(), url)
                .bearer_auth(bearer.expose())
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
                .send()
                .await
                .map_err(|e| GitHubError::Transport {
                    path: path.clone(),
                    // Without the URL: it is ours, and the path says it.
                    message: e.without_url().to_string(),
                })?;
            let headers = resp.headers().clone();
            self.note_rate(&headers);
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(resp);
            }
            let message = resp
                .json::<ErrorBody>()
                .await
                .map(|b| b.message)
                .unwrap_or_default();
            match status {
                401 if !refreshed && matches!(who, As::Account(_)) && self.is_app() => {
                    refreshed = true;
                    self.forget_token(who).await;
                }
                401 => return Err(GitHubError::Unauthorized { path, message }),
                404 => return Err(GitHubError::NotFound { path }),
                403 | 429 => {
                    if let Some(secs) = header_u64(&headers, RETRY_AFTER.as_str()) {
                        if attempt >= ATTEMPTS || Duration::from_secs(secs) > MAX_RETRY_AFTER {
                            return Err(GitHubError::SecondaryLimit {
                                path,
                                retry_after_secs: secs,
                            });
                        }
                        tracing::warn!(path = %path, retry_after_secs = secs, "GitHub secondary rate limit: waiting");
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                    } else if header_u64(&headers, "x-ratelimit-remaining") == Some(0) {
                        return Err(GitHubError::RateLimited {
                            reset: header_u64(&headers, "x-ratelimit-reset").unwrap_or(0),
                        });
                    } else {
                        return Err(GitHubError::Status {
                            path,
                            status,
                            message,
                        });
                    }
                }
                _ => {
                    return Err(GitHubError::Status {
                        path,
                        status,
                        message,
                    });
                }
            }
        }
    }

    fn note_rate(&self, headers: &HeaderMap) {
        let remaining = header_u64(headers, "x-ratelimit-remaining");
        if remaining.is_none() {
            return;
        }
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        rate.remaining = remaining;
        rate.reset = header_u64(headers, "x-ratelimit-reset");
    }

    /// One page at `url` (absolute, as a `Link` header gives it), and the
    /// next page's URL.
    async fn get_page_as<T: DeserializeOwned>(
        &self,
        url: &str,
        who: &As,
    ) -> Result<(Vec<T>, Option<String>), GitHubError> {
        let resp = self.send(reqwest::Method::GET, url, who).await?;
        let next = resp
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let path = url.strip_prefix(&self.api_url).unwrap_or(url).to_string();
        Ok((decode(resp, &path).await?, next))
    }

    /// A page of `path` (relative to the API root, e.g. `/orgs/acme/hooks`)
    /// or of a `Link` URL, with the URL of the next one.
    pub async fn page<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        who: &As,
    ) -> Result<(Vec<T>, Option<String>), GitHubError> {
        let url = self.url(path_or_url);
        self.get_page_as(&url, who).await
    }

    /// Every page of `path`, up to `max_pages`.
    pub async fn all<T: DeserializeOwned>(
        &self,
        path: &str,
        who: &As,
        max_pages: usize,
    ) -> Result<Vec<T>, GitHubError> {
        let mut out = Vec::new();
        let mut url = self.url(path);
        for _ in 0..max_pages {
            let (items, next) = self.get_page_as(&url, who).await?;
            out.extend(items);
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        Ok(out)
    }

    /// `GET path` as one JSON object.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, who: &As) -> Result<T, GitHubError> {
        let resp = self
            .send(reqwest::Method::GET, &self.url(path), who)
            .await?;
        decode(resp, path).await
    }

    /// `POST path` with no body; the answer is not read (202s are empty).
    pub async fn post_empty(&self, path: &str, who: &As) -> Result<u16, GitHubError> {
        let resp = self
            .send(reqwest::Method::POST, &self.url(path), who)
            .await?;
        Ok(resp.status().as_u16())
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.api_url)
        }
    }
}

async fn decode<T: DeserializeOwned>(
    resp: reqwest::Response,
    path: &str,
) -> Result<T, GitHubError> {
    let bytes = resp.bytes().await.map_err(|e| GitHubError::Transport {
        path: path.to_string(),
        message: e.without_url().to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| GitHubError::Decode {
        path: path.to_string(),
        message: e.to_string(),
    })
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// Unix milliseconds of GitHub's timestamps, `2026-12-02T12:00:00Z` (also
/// with fractional seconds or a `+hh:mm` offset, as GHES may send).
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 time like 2026-12-02T12:00:00Z");
    let (date, time) = s.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(day))) = (d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-']).ok_or_else(bad)?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, mi) = off[1..].split_once(':').ok_or_else(bad)?;
        let h: i64 = h.parse().map_err(|_| bad())?;
        let mi: i64 = mi.parse().map_err(|_| bad())?;
        (c, sign * (h * 3600 + mi * 60))
    };
    let mut t = clock.splitn(3, ':');
    let (Some(Ok(h)), Some(Ok(mi)), Some(sec)) = (
        t.next().map(str::parse::<i64>),
        t.next().map(str::parse::<i64>),
        t.next(),
    ) else {
        return Err(bad());
    };
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let sec: i64 = whole.parse().map_err(|_| bad())?;
    let ms: i64 = format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_ms("2026-12-02T12:00:00Z"),
            Ok(1_796_212_800_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-12-02T13:00:00.25+01:00"),
            Ok(1_796_212_800_250)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00Z"),
            Ok(951_782_400_000)
        );
        assert!(parse_rfc3339_ms("yesterday").is_err());
        assert!(parse_rfc3339_ms("2026-13-02T12:00:00Z").is_err());
    }

    #[test]
    fn link_next() {
        let l = r#"<https://api.github.com/x?cursor=a&per_page=2>; rel="next", <https://api.github.com/x?page=9>; rel="last""#;
        assert_eq!(
            next_link(l).as_deref(),
            Some("https://api.github.com/x?cursor=a&per_page=2")
        );
        assert_eq!(next_link(r#"<https://a/x?page=1>; rel="prev""#), None);
    }

    #[tokio::test]
    async fn limits_and_errors_are_precise_and_carry_no_secret() {
        use testkit::github::{GitHubDouble, GitHubFault};
        let gh = GitHubDouble::start("ghp_s3cr3t").await;
        gh.add_team("acme", "core", &["a", "b", "c"]);
        let c = GitHubClient::new(
            &gh.api_url(),
            Credentials::Token(Secret::new("ghp_s3cr3t")),
            Clock::system(),
        )
        .unwrap();
        let who = As::Account("acme".into());
        // Pagination follows Link; the rate limit is read.
        let members: Vec<serde_json::Value> = c
            .all("/orgs/acme/teams/core/members?per_page=2", &who, 10)
            .await
            .unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(c.rate_limit().remaining, Some(4998));
        // A secondary limit asking for minutes ends the call at once.
        gh.set_fault_for(
            GitHubFault::SecondaryRateLimited {
                retry_after_secs: 600,
            },
            1,
        );
        let e = c
            .all::<serde_json::Value>("/orgs/acme/teams/core/members", &who, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                GitHubError::SecondaryLimit {
                    retry_after_secs: 600,
                    ..
                }
            ),
            "{e}"
        );
        // The primary limit exhausted: its reset time, no retry.
        gh.set_fault_for(
            GitHubFault::RateLimited {
                retry_after_secs: 30,
            },
            1,
        );
        let e = c
            .all::<serde_json::Value>("/orgs/acme/teams/core/members", &who, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(e, GitHubError::RateLimited { reset } if reset > 0),
            "{e}"
        );
        let e = c
            .get::<serde_json::Value>("/orgs/acme/teams/nope/members", &who)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "GitHub: /orgs/acme/teams/nope/members not found (404), or the credentials may not read it (GitHub answers 404 for both)"
        );
        // App endpoints need an App.
        let e = c
            .get::<serde_json::Value>("/app/hook/config", &As::App)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("needs GitHub App credentials"),
            "{e}"
        );
        // A wrong token: 401 with GitHub's message, never the token.
        let bad = GitHubClient::new(
            &gh.api_url(),
            Credentials::Token(Secret::new("ghp_wr0ng")),
            Clock::system(),
        )
        .unwrap();
        let e = bad
            .get::<serde_json::Value>("/orgs/acme/hooks", &who)
            .await
            .unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            text.contains("401 Bad credentials") && !text.contains("wr0ng"),
            "{text}"
        );
    }

    #[test]
    fn a_bad_key_is_named_without_its_content() {
        let err = GitHubClient::new(
            "https://api.github.com",
            Credentials::App {
                app_id: 1,
                private_key: Secret::new("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END RSA PRIVATE KEY-----\n"),
            },
            Clock::system(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.starts_with("GitHub App: the private key is not an RSA PEM"),
            "{err}"
        );
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }
}
