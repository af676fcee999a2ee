//! A double of the GitHub REST API: `GET /repos/{owner}/{repo}`,
//! `GET /repos/{owner}/{repo}/contents/{path}?ref=…`, and repository webhooks
//! (`GET`/`POST /repos/{owner}/{repo}/hooks`, `PATCH …/hooks/{id}`, paginated
//! with `per_page`/`page` and a `Link` header), with GitHub's auth errors, 404
//! and 422 bodies, rate-limit headers and injectable faults.
//!
//! Webhook deliveries, for catch-up: organization hooks (`GET /orgs/{org}/hooks`),
//! the App's hook (`/app/hook/…`), delivery lists (`GET …/deliveries`, newest
//! first, `per_page` + `cursor` with a `Link: <…>; rel="next"` header) and
//! redelivery (`POST …/deliveries/{id}/attempts` → 202), which really POSTs
//! the stored payload, signed with the hook's secret, to the hook's URL and
//! records the attempt as a new delivery with `redelivery: true`.
//!
//! GitHub App auth: with [`GitHubDouble::enable_app`], `/app/…` endpoints take
//! only an RS256 JWT signed with [`APP_PRIVATE_KEY_PEM`] (checked as GitHub
//! does: signature, `iss`, `exp` at most 10 minutes ahead, not expired), and
//! `POST /app/installations/{id}/access_tokens` issues installation tokens
//! that expire after a configurable lifetime. Team members
//! (`GET /orgs/{org}/teams/{slug}/members`, paginated) come from
//! [`GitHubDouble::add_team`]. The primary rate limit is a configurable budget
//! ([`GitHubDouble::set_rate_limit`]).
//!
//! Pull requests, for the reminders backfill: [`GitHubDouble::add_pull`],
//! [`GitHubDouble::close_pull`] and [`GitHubDouble::add_review`] behind
//! `GET /repos/{o}/{r}/pulls` (`state`, `per_page`/`page`, `Link` with
//! `rel="next"` and `rel="last"`), `…/pulls/{n}`, `…/pulls/{n}/reviews`
//! (paginated) and `…/pulls/{n}/requested_reviewers`, and an owner's
//! repositories (`GET /orgs/{org}/repos`, `/users/{user}/repos`, paginated).
//!
//! Repositories are private: a request without `Authorization` gets 404, as
//! GitHub answers for a private repository it will not reveal.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha1::Digest as _;
use tokio::sync::Notify;

use crate::server::{Server, lock, parse_form};
use crate::sign::hex;

const DOCS: &str = "https://docs.github.com/rest";
/// The primary rate limit of an authenticated user / installation.
const RATE_LIMIT: u64 = 5000;

/// A failure injected into every API request from now on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitHubFault {
    /// Behave normally.
    None,
    /// Answer with this HTTP status and a JSON `{"message": …}` body.
    Status(u16),
    /// Primary rate limit exhausted: HTTP 403 with `x-ratelimit-remaining: 0`
    /// and `x-ratelimit-reset` = now + `retry_after_secs` (epoch seconds).
    RateLimited {
        /// Seconds until `x-ratelimit-reset`.
        retry_after_secs: u64,
    },
    /// Secondary rate limit: HTTP 429 with `retry-after: <secs>`.
    SecondaryRateLimited {
        /// Value of the `retry-after` header.
        retry_after_secs: u64,
    },
    /// Secondary rate limit as GitHub most often answers it: HTTP 403 with
    /// `retry-after: <secs>` and `x-ratelimit-remaining` above 0.
    SecondaryForbidden {
        /// Value of the `retry-after` header.
        retry_after_secs: u64,
    },
}

/// The private key of the test GitHub App (PKCS#1 PEM, as GitHub hands them
/// out). The double verifies JWTs with its public half.
pub const APP_PRIVATE_KEY_PEM: &str = include_str!("../keys/app-test-key.pem");
const APP_PUBLIC_KEY_PEM: &str = include_str!("../keys/app-test-key.pub.pem");

/// Which hook a delivery belongs to, as its API path names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HookRef {
    /// `/repos/{repo}/hooks/{id}`; `repo` as `owner/name`.
    Repo { repo: String, id: u64 },
    /// `/orgs/{org}/hooks/{id}`.
    Org { org: String, id: u64 },
    /// `/app/hook`.
    App,
}

/// One webhook delivery as the double stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: u64,
    /// `X-GitHub-Delivery`; shared by a delivery and its redeliveries.
    pub guid: String,
    pub hook: HookRef,
    /// Epoch seconds.
    pub delivered_at: u64,
    pub redelivery: bool,
    /// `"OK"`, `"Invalid HTTP Response: 503"`, `"failed to connect to host"`.
    pub status: String,
    /// 0 when the host could not be reached.
    pub status_code: u16,
    pub event: String,
    pub action: Option<String>,
    /// The raw JSON body sent.
    pub payload: String,
}

impl DeliveryRecord {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "guid": self.guid,
            "delivered_at": rfc3339(self.delivered_at),
            "redelivery": self.redelivery,
            "duration": 0.05,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": null,
            "repository_id": null,
            "throttled_at": null,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of epoch seconds (civil-from-days, proleptic Gregorian).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Handle to a running GitHub double. Cheap to clone.
#[derive(Clone)]
pub struct GitHubDouble {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    token: String,
    state: Mutex<GhState>,
    /// How many deliveries are stored, for tests waiting on a redelivery.
    delivery_count: tokio::sync::watch::Sender<usize>,
}

#[derive(Default)]
struct GhState {
    /// Keyed by lower-cased `owner/name` (GitHub names are case-insensitive).
    repos: HashMap<String, Repo>,
    requests: Vec<(String, String, u16)>,
    fault: Option<GitHubFault>,
    /// Requests the fault still applies to; `None`: until healed.
    fault_left: Option<u32>,
    used: u64,
    next_hook_id: u64,
    /// Lower-cased org → its hooks and teams.
    orgs: HashMap<String, Org>,
    app: Option<App>,
    deliveries: Vec<DeliveryRecord>,
    next_delivery_id: u64,
    /// Delivery IDs whose redelivery was asked for, in order.
    redelivery_requests: Vec<u64>,
    /// The primary rate limit (`x-ratelimit-limit`); `None`: GitHub's 5000.
    rate_limit: Option<u64>,
    /// `x-ratelimit-reset` as epoch seconds; `None`: an hour from now.
    rate_reset: Option<u64>,
    /// Lower-cased `owner/name` → number → the pull request as the API shows it.
    pulls: HashMap<String, BTreeMap<u64, Value>>,
    /// (lower-cased `owner/name`, number) → its reviews, oldest first.
    reviews: HashMap<(String, u64), Vec<Value>>,
    /// Lower-cased logins that are users, not organizations
    /// (`GET /orgs/{login}/repos` is 404 for them).
    users: std::collections::HashSet<String>,
}

#[derive(Default)]
struct Org {
    hooks: Vec<Hook>,
    /// slug → member logins.
    teams: HashMap<String, Vec<String>>,
}

struct App {
    id: u64,
    hook: Option<Hook>,
    /// (installation id, account login).
    installations: Vec<(u64, String)>,
    token_lifetime: Duration,
    /// Issued installation token → expiry (epoch seconds).
    tokens: HashMap<String, u64>,
    tokens_issued: u64,
}

struct Repo {
    full_name: String,
    default_branch: String,
    /// branch → path → content.
    files: HashMap<String, BTreeMap<String, String>>,
    hooks: Vec<Hook>,
}

/// A repository webhook as stored by the double (the secret unmasked, so
/// tests can check what a client set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub id: u64,
    pub url: String,
    pub content_type: String,
    pub secret: Option<String>,
    pub insecure_ssl: String,
    pub events: Vec<String>,
    pub active: bool,
}

impl Hook {
    /// As the API shows it: the secret masked.
    fn json(&self, repo: &str) -> Value {
        let mut config = json!({"content_type": self.content_type, "insecure_ssl": self.insecure_ssl, "url": self.url});
        if self.secret.is_some() {
            config["secret"] = json!("********");
        }
        json!({
            "type": "Repository",
            "id": self.id,
            "name": "web",
            "active": self.active,
            "events": self.events,
            "config": config,
            "updated_at": "2026-11-27T10:00:00Z",
            "created_at": "2026-11-27T10:00:00Z",
            "url": format!("https://api.github.com/repos/{repo}/hooks/{}", self.id),
            "ping_url": format!("https://api.github.com/repos/{repo}/hooks/{}/pings", self.id),
        })
    }
}

impl Repo {
    fn new(full_name: &str) -> Self {
        Self {
            full_name: full_name.to_owned(),
            default_branch: "main".to_owned(),
            files: HashMap::new(),
            hooks: Vec::new(),
        }
    }
}

impl GitHubDouble {
    /// Starts the double on `127.0.0.1` with a free port, accepting `token`.
    ///
    /// # Panics
    /// If no loopback port can be bound (a broken test environment).
    pub async fn start(token: &str) -> GitHubDouble {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::new(GhState::default()),
            delivery_count: tokio::sync::watch::Sender::new(0),
        });
        let router = Router::new()
            .fallback(any(handle))
            .with_state(Arc::clone(&shared));
        match Server::start(router, 0, Arc::new(Notify::new())).await {
            Ok(server) => GitHubDouble {
                inner: Arc::new(Inner { shared, server }),
            },
            Err(e) => panic!("github double: cannot bind 127.0.0.1:0: {e}"),
        }
    }

    /// `http://127.0.0.1:PORT`, the REST root (like `https://api.github.com`).
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.server.port())
    }

    /// Creates or replaces `path` on the repository's default branch
    /// (`main` unless [`set_default_branch`](Self::set_default_branch) said
    /// otherwise), creating the repository if needed.
    pub fn put_file(&self, repo: &str, path: &str, content: &str) {
        let mut state = lock(&self.inner.shared.state);
        let r = state
            .repos
            .entry(repo.to_ascii_lowercase())
            .or_insert_with(|| Repo::new(repo));
        let branch = r.default_branch.clone();
        r.files
            .entry(branch)
            .or_default()
            .insert(path.trim_matches('/').to_owned(), content.to_owned());
    }

    /// Creates or replaces `path` on `branch`, creating the repository if needed.
    pub fn put_file_on(&self, repo: &str, branch: &str, path: &str, content: &str) {
        let mut state = lock(&self.inner.shared.state);
        let r = state
            .repos
            .entry(repo.to_ascii_lowercase())
            .or_insert_with(|| Repo::new(repo));
        r.files
            .entry(branch.to_owned())
            .or_default()
            .insert(path.trim_matches('/').to_owned(), content.to_owned());
    }

    /// Sets the default branch, creating the repository if needed. Files
    /// already put stay on the branch they were put on.
    pub fn set_default_branch(&self, repo: &str, branch: &str) {
        let mut state = lock(&self.inner.shared.state);
        let r = state
            .repos
            .entry(repo.to_ascii_lowercase())
            .or_insert_with(|| Repo::new(repo));
        r.default_branch = branch.to_owned();
        r.files.entry(branch.to_owned()).or_default();
    }

    /// Every request so far: `(method, path+query, status)`.
    #[must_use]
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        lock(&self.inner.shared.state).requests.clone()
    }

    /// Fault for every request from now on ([`GitHubFault::None`] to heal).
    pub fn set_fault(&self, fault: GitHubFault) {
        lock(&self.inner.shared.state).fault = match fault {
            GitHubFault::None => None,
            f => Some(f),
        };
    }

    /// Adds a webhook to `repo` (creating the repository), as if set up by hand.
    pub fn add_hook(&self, repo: &str, url: &str, events: &[&str]) -> u64 {
        let mut state = lock(&self.inner.shared.state);
        state.next_hook_id += 1;
        let id = state.next_hook_id;
        let r = state
            .repos
            .entry(repo.to_ascii_lowercase())
            .or_insert_with(|| Repo::new(repo));
        r.hooks.push(Hook {
            id,
            url: url.to_owned(),
            content_type: "form".to_owned(),
            secret: None,
            insecure_ssl: "0".to_owned(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            active: true,
        });
        id
    }

    /// The webhooks of `repo`, secrets unmasked.
    #[must_use]
    pub fn hooks(&self, repo: &str) -> Vec<Hook> {
        lock(&self.inner.shared.state)
            .repos
            .get(&repo.to_ascii_lowercase())
            .map(|r| r.hooks.clone())
            .unwrap_or_default()
    }

    /// Like [`add_hook`](Self::add_hook), with the secret deliveries are signed with.
    pub fn add_hook_with_secret(
        &self,
        repo: &str,
        url: &str,
        secret: &str,
        events: &[&str],
    ) -> u64 {
        let id = self.add_hook(repo, url, events);
        let mut state = lock(&self.inner.shared.state);
        if let Some(h) = state
            .repos
            .get_mut(&repo.to_ascii_lowercase())
            .and_then(|r| r.hooks.iter_mut().find(|h| h.id == id))
        {
            h.secret = Some(secret.to_owned());
            h.content_type = "json".to_owned();
        }
        id
    }

    /// Adds an organization webhook (creating the org).
    pub fn add_org_hook(&self, org: &str, url: &str, secret: &str, events: &[&str]) -> u64 {
        let mut state = lock(&self.inner.shared.state);
        state.next_hook_id += 1;
        let id = state.next_hook_id;
        state
            .orgs
            .entry(org.to_ascii_lowercase())
            .or_default()
            .hooks
            .push(new_hook(id, url, secret, events));
        id
    }

    /// Turns on GitHub App auth for app `app_id`: `/app/…` endpoints then take
    /// a JWT signed with [`APP_PRIVATE_KEY_PEM`]. Installation tokens last an
    /// hour unless [`set_token_lifetime`](Self::set_token_lifetime) says otherwise.
    pub fn enable_app(&self, app_id: u64) {
        lock(&self.inner.shared.state).app = Some(App {
            id: app_id,
            hook: None,
            installations: Vec::new(),
            token_lifetime: Duration::from_secs(3600),
            tokens: HashMap::new(),
            tokens_issued: 0,
        });
    }

    /// Installs the App on `account` (a user or org login); returns the installation id.
    ///
    /// # Panics
    /// If [`enable_app`](Self::enable_app) was not called (a test bug).
    pub fn add_installation(&self, account: &str) -> u64 {
        let mut state = lock(&self.inner.shared.state);
        let Some(app) = state.app.as_mut() else {
            panic!("github double: add_installation before enable_app");
        };
        let id = 1000 + app.installations.len() as u64 + 1;
        app.installations.push((id, account.to_owned()));
        id
    }

    /// The App's own webhook (`/app/hook`).
    ///
    /// # Panics
    /// If [`enable_app`](Self::enable_app) was not called (a test bug).
    pub fn set_app_hook(&self, url: &str, secret: &str, events: &[&str]) {
        let mut state = lock(&self.inner.shared.state);
        let Some(app) = state.app.as_mut() else {
            panic!("github double: set_app_hook before enable_app");
        };
        app.hook = Some(new_hook(0, url, secret, events));
    }

    /// How long installation tokens issued from now on stay valid.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        if let Some(app) = lock(&self.inner.shared.state).app.as_mut() {
            app.token_lifetime = lifetime;
        }
    }

    /// Expires every installation token issued so far, as if an hour had
    /// passed (or they were revoked): their next use gets 401.
    pub fn expire_tokens(&self) {
        if let Some(app) = lock(&self.inner.shared.state).app.as_mut() {
            let now = now_secs();
            for expiry in app.tokens.values_mut() {
                *expiry = now;
            }
        }
    }

    /// Installation tokens issued so far.
    #[must_use]
    pub fn tokens_issued(&self) -> u64 {
        lock(&self.inner.shared.state)
            .app
            .as_ref()
            .map_or(0, |a| a.tokens_issued)
    }

    /// A team and its members (creating the org).
    pub fn add_team(&self, org: &str, slug: &str, members: &[&str]) {
        lock(&self.inner.shared.state)
            .orgs
            .entry(org.to_ascii_lowercase())
            .or_default()
            .teams
            .insert(
                slug.to_owned(),
                members.iter().map(|m| (*m).to_owned()).collect(),
            );
    }

    /// The primary rate limit from now on: `limit` requests until `reset_in`
    /// passes (the count starts again at 0). Beyond it: 403, remaining 0.
    pub fn set_rate_limit(&self, limit: u64, reset_in: Duration) {
        let mut state = lock(&self.inner.shared.state);
        state.rate_limit = Some(limit);
        state.rate_reset = Some(now_secs() + reset_in.as_secs());
        state.used = 0;
    }

    /// `fault` for the next `n` requests only, then normal again.
    pub fn set_fault_for(&self, fault: GitHubFault, n: u32) {
        let mut state = lock(&self.inner.shared.state);
        state.fault = Some(fault);
        state.fault_left = Some(n);
    }

    /// Records a delivery GitHub made to `hook`, as if it had happened
    /// `age` ago: `status_code` 2xx is a success, anything else (0: could not
    /// connect) a failure. Returns it (its `guid` is the `X-GitHub-Delivery`).
    pub fn add_delivery(
        &self,
        hook: &HookRef,
        event: &str,
        payload: &Value,
        status_code: u16,
        age: Duration,
    ) -> DeliveryRecord {
        self.push_delivery(|id| DeliveryRecord {
            id,
            guid: format!("{:08x}-0000-4000-8000-{id:012x}", fastid(id)),
            hook: hook.clone(),
            delivered_at: now_secs().saturating_sub(age.as_secs()),
            redelivery: false,
            status: status_text(status_code),
            status_code,
            event: event.to_owned(),
            action: payload["action"].as_str().map(str::to_owned),
            payload: payload.to_string(),
        })
    }

    /// Records a delivery made just now with the `X-GitHub-Delivery` `guid`
    /// and exactly `body`, for a test that plays GitHub's sender itself and
    /// records what GitHub would show: `status_code` as for
    /// [`add_delivery`](Self::add_delivery) (0: no answer), `redelivery` for
    /// a later attempt of the same GUID.
    #[allow(clippy::too_many_arguments)]
    pub fn record_delivery(
        &self,
        hook: &HookRef,
        guid: &str,
        event: &str,
        action: Option<&str>,
        body: &str,
        status_code: u16,
        redelivery: bool,
    ) -> DeliveryRecord {
        self.push_delivery(|id| DeliveryRecord {
            id,
            guid: guid.to_owned(),
            hook: hook.clone(),
            delivered_at: now_secs(),
            redelivery,
            status: status_text(status_code),
            status_code,
            event: event.to_owned(),
            action: action.map(str::to_owned),
            payload: body.to_owned(),
        })
    }

    /// Stores the delivery `make` builds with the next ID, and tells the
    /// tests waiting on deliveries.
    fn push_delivery(&self, make: impl FnOnce(u64) -> DeliveryRecord) -> DeliveryRecord {
        let mut state = lock(&self.inner.shared.state);
        state.next_delivery_id += 1;
        let record = make(state.next_delivery_id);
        state.deliveries.push(record.clone());
        self.inner
            .shared
            .delivery_count
            .send_replace(state.deliveries.len());
        record
    }

    /// A delivery that never reached prpr (GitHub got a 502 from the load
    /// balancer), `age` ago.
    pub fn add_failed_delivery(
        &self,
        hook: &HookRef,
        event: &str,
        payload: &Value,
        age: Duration,
    ) -> DeliveryRecord {
        self.add_delivery(hook, event, payload, 502, age)
    }

    /// A redelivery of `original` made `age` ago (same GUID, `redelivery: true`),
    /// as if someone had clicked "Redeliver".
    pub fn add_redelivery(
        &self,
        original: &DeliveryRecord,
        status_code: u16,
        age: Duration,
    ) -> DeliveryRecord {
        self.push_delivery(|id| DeliveryRecord {
            id,
            delivered_at: now_secs().saturating_sub(age.as_secs()),
            redelivery: true,
            status: status_text(status_code),
            status_code,
            ..original.clone()
        })
    }

    /// Waits (at most `timeout`) until `n` deliveries are stored, then
    /// returns them all: a redelivery attempt is recorded when its POST to
    /// the hook URL has been answered.
    pub async fn wait_for_deliveries(&self, n: usize, timeout: Duration) -> Vec<DeliveryRecord> {
        let mut rx = self.inner.shared.delivery_count.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n)).await;
        self.deliveries()
    }

    /// Every delivery stored, oldest first (redeliveries included).
    #[must_use]
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.inner.shared.state).deliveries.clone()
    }

    /// Delivery IDs whose redelivery was requested, in order.
    #[must_use]
    pub fn redelivery_requests(&self) -> Vec<u64> {
        lock(&self.inner.shared.state).redelivery_requests.clone()
    }

    /// Adds or changes an open pull request of `repo` (creating the
    /// repository): `fields` (a JSON object: `title`, `user`, `draft`,
    /// `requested_reviewers`, `requested_teams`, `labels`, `created_at`,
    /// `updated_at`, `state`, `merged`, …) go over the current values, or
    /// over defaults for a new one (`octocat`'s, open, created and updated
    /// now, no reviewers).
    pub fn add_pull(&self, repo: &str, number: u64, fields: &Value) {
        let mut state = lock(&self.inner.shared.state);
        let key = repo.to_ascii_lowercase();
        let full = state
            .repos
            .entry(key.clone())
            .or_insert_with(|| Repo::new(repo))
            .full_name
            .clone();
        let now = rfc3339(now_secs());
        let pr = state
            .pulls
            .entry(key)
            .or_default()
            .entry(number)
            .or_insert_with(|| {
                json!({
                    "url": format!("https://api.github.com/repos/{full}/pulls/{number}"),
                    "id": 10_000 + number,
                    "number": number,
                    "state": "open",
                    "locked": false,
                    "title": format!("Pull request {number}"),
                    "user": {"login": "octocat", "id": 1, "type": "User"},
                    "body": null,
                    "labels": [],
                    "draft": false,
                    "merged": false,
                    "merged_at": null,
                    "closed_at": null,
                    "html_url": format!("https://github.com/{full}/pull/{number}"),
                    "requested_reviewers": [],
                    "requested_teams": [],
                    "base": {"ref": "main", "label": "acme:main", "repo": {"full_name": full}},
                    "head": {"ref": format!("topic-{number}"), "label": format!("acme:topic-{number}")},
                    "created_at": now,
                    "updated_at": now,
                })
            });
        if let (Some(pr), Some(fields)) = (pr.as_object_mut(), fields.as_object()) {
            for (k, v) in fields {
                pr.insert(k.clone(), v.clone());
            }
        }
    }

    /// Closes a pull request (merged or not) and bumps its `updated_at`.
    pub fn close_pull(&self, repo: &str, number: u64, merged: bool) {
        let now = rfc3339(now_secs());
        self.add_pull(
            repo,
            number,
            &json!({"state": "closed", "merged": merged, "closed_at": now, "updated_at": now,
                    "merged_at": if merged { Value::String(now.clone()) } else { Value::Null }}),
        );
    }

    /// A review of a pull request by `login`: `state` as the API spells it
    /// (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED`).
    pub fn add_review(&self, repo: &str, number: u64, login: &str, state: &str) {
        let mut st = lock(&self.inner.shared.state);
        let list = st
            .reviews
            .entry((repo.to_ascii_lowercase(), number))
            .or_default();
        let id = 80_000 + list.len() as u64;
        list.push(json!({
            "id": id,
            "user": {"login": login, "id": 1, "type": "User"},
            "body": "",
            "state": state,
            "html_url": format!("https://github.com/{repo}/pull/{number}#pullrequestreview-{id}"),
            "submitted_at": rfc3339(now_secs()),
            "commit_id": "0000000000000000000000000000000000000000",
            "author_association": "MEMBER",
        }));
    }

    /// `login` is a user, not an organization: `GET /orgs/{login}/repos`
    /// answers 404 (use `/users/{login}/repos`).
    pub fn mark_user(&self, login: &str) {
        lock(&self.inner.shared.state)
            .users
            .insert(login.to_ascii_lowercase());
    }

    /// Stops listening (connection refused afterwards).
    pub async fn shutdown(self) {
        self.inner.server.stop().await;
    }
}

fn new_hook(id: u64, url: &str, secret: &str, events: &[&str]) -> Hook {
    Hook {
        id,
        url: url.to_owned(),
        content_type: "json".to_owned(),
        secret: Some(secret.to_owned()),
        insecure_ssl: "0".to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        active: true,
    }
}

/// Spreads sequential ids over the GUID's first field, so GUIDs do not all
/// share a prefix.
fn fastid(id: u64) -> u32 {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

fn status_text(code: u16) -> String {
    match code {
        0 => "failed to connect to host".to_owned(),
        200..=299 => "OK".to_owned(),
        c => format!("Invalid HTTP Response: {c}"),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn gh_json(status: StatusCode, body: &Value, remaining: u64, used: u64) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
    h.insert("x-ratelimit-limit", HeaderValue::from(RATE_LIMIT));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-used", HeaderValue::from(used));
    h.insert("x-ratelimit-reset", HeaderValue::from(now_secs() + 3600));
    h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
    resp
}

fn not_found() -> Value {
    json!({"message": "Not Found", "documentation_url": DOCS, "status": "404"})
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let mut resp = respond(&shared, &method, uri.path(), uri.query(), &headers, &body);
    let mut state = lock(&shared.state);
    // A configured budget shows in every answer, as GitHub's does.
    if let Some(limit) = state.rate_limit
        && resp.headers().get("x-ratelimit-limit").is_some()
    {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(limit));
        if let Some(reset) = state.rate_reset {
            h.insert("x-ratelimit-reset", HeaderValue::from(reset));
        }
    }
    state.requests.push((
        method.as_str().to_owned(),
        path_and_query,
        resp.status().as_u16(),
    ));
    resp
}

/// Who is calling, from `Authorization`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    /// The configured token or an unexpired installation token.
    Token,
    /// A valid App JWT.
    App,
}

#[derive(serde::Deserialize)]
struct JwtClaims {
    iss: Value,
    exp: u64,
}

/// Checks an App JWT as GitHub does; `Err` is GitHub's 401 message.
fn verify_jwt(token: &str, app_id: u64) -> Result<(), &'static str> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    let key = DecodingKey::from_rsa_pem(APP_PUBLIC_KEY_PEM.as_bytes())
        .map_err(|_| "A JSON web token could not be decoded")?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_required_spec_claims(&["exp", "iat", "iss"]);
    v.leeway = 0;
    v.validate_aud = false;
    let data = decode::<JwtClaims>(token, &key, &v).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
        }
        _ => "A JSON web token could not be decoded",
    })?;
    if data.claims.exp > now_secs() + 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future");
    }
    let iss = match &data.claims.iss {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if iss != app_id.to_string() {
        return Err("'Issuer' claim ('iss') must be an Integer");
    }
    Ok(())
}

fn unauthorized(message: &str) -> Response {
    gh_json(
        StatusCode::UNAUTHORIZED,
        &json!({"message": message, "documentation_url": DOCS, "status": "401"}),
        RATE_LIMIT,
        0,
    )
}

fn respond(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut state = lock(&shared.state);
    match state.fault_left {
        Some(0) => {
            state.fault = None;
            state.fault_left = None;
        }
        Some(n) => state.fault_left = Some(n - 1),
        None => {}
    }
    match state.fault.clone() {
        None | Some(GitHubFault::None) => {}
        Some(GitHubFault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = status.canonical_reason().unwrap_or("Server Error");
            return gh_json(
                status,
                &json!({"message": message, "documentation_url": DOCS}),
                RATE_LIMIT,
                0,
            );
        }
        Some(GitHubFault::RateLimited { retry_after_secs }) => {
            let mut resp = gh_json(
                StatusCode::FORBIDDEN,
                &json!({
                    "message": "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                }),
                0,
                RATE_LIMIT,
            );
            resp.headers_mut().insert(
                "x-ratelimit-reset",
                HeaderValue::from(now_secs() + retry_after_secs),
            );
            return resp;
        }
        Some(
            f @ (GitHubFault::SecondaryRateLimited { retry_after_secs }
            | GitHubFault::SecondaryForbidden { retry_after_secs }),
        ) => {
            let status = if matches!(f, GitHubFault::SecondaryForbidden { .. }) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            let mut resp = gh_json(
                status,
                &json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                }),
                RATE_LIMIT,
                0,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return resp;
        }
    }

    // Auth: `Bearer <t>` or `token <t>`; absent = anonymous. A JWT is told
    // apart by its shape (three dot-separated parts).
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match auth {
        None => Caller::Anonymous,
        Some(h) => {
            let token = h
                .strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .or_else(|| h.strip_prefix("token "))
                .map(str::trim)
                .unwrap_or_default();
            let now = now_secs();
            let installation = state
                .app
                .as_ref()
                .and_then(|a| a.tokens.get(token).copied());
            if token == shared.token {
                Caller::Token
            } else if let Some(expires) = installation {
                if expires <= now {
                    return unauthorized("Bad credentials");
                }
                Caller::Token
            } else if let Some(app) = state.app.as_ref()
                && token.split('.').count() == 3
            {
                if let Err(message) = verify_jwt(token, app.id) {
                    return unauthorized(message);
                }
                Caller::App
            } else {
                return unauthorized("Bad credentials");
            }
        }
    };
    let authed = caller == Caller::Token;
    state.used += 1;
    let used = state.used;
    let limit = state.rate_limit.unwrap_or(RATE_LIMIT);
    if caller != Caller::Anonymous && used > limit {
        let mut resp = gh_json(
            StatusCode::FORBIDDEN,
            &json!({
                "message": format!("API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID."),
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }),
            0,
            limit,
        );
        resp.headers_mut().insert(
            "x-ratelimit-reset",
            HeaderValue::from(state.rate_reset.unwrap_or(now_secs() + 3600)),
        );
        return resp;
    }
    let remaining = limit.saturating_sub(used);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let ctx = Ctx {
        shared,
        method,
        path,
        query,
        host: &host,
        remaining,
        used,
    };
    if let Some(resp) = delivery_routes(&mut state, &ctx, caller) {
        return resp;
    }
    if let Some(resp) = pull_routes(&state, &ctx, caller) {
        return resp;
    }
    if caller == Caller::App {
        return unauthorized(
            "A JSON web token cannot be used for this endpoint: use an installation token",
        );
    }
    let nf = |remaining, used| gh_json(StatusCode::NOT_FOUND, &not_found(), remaining, used);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let ["repos", owner, name, "hooks", hook_rest @ ..] = segments.as_slice() {
        if !authed {
            return nf(remaining, used);
        }
        let key = format!("{owner}/{name}").to_ascii_lowercase();
        return hooks_api(
            &mut state, &key, method, hook_rest, query, body, remaining, used,
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return nf(remaining, used);
    }
    let ["repos", owner, name, rest @ ..] = segments.as_slice() else {
        return nf(remaining, used);
    };
    let full = format!("{owner}/{name}");
    let Some(repo) = state.repos.get(&full.to_ascii_lowercase()) else {
        return nf(remaining, used);
    };
    if !authed {
        return nf(remaining, used);
    }
    match rest {
        [] | [""] => gh_json(StatusCode::OK, &repo_json(repo), remaining, used),
        ["contents", file @ ..] => {
            let file_path = file.join("/");
            let file_path = file_path.trim_matches('/');
            let git_ref = parse_form(query.unwrap_or(""))
                .into_iter()
                .find(|(k, _)| k == "ref")
                .map(|(_, v)| v)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| repo.default_branch.clone());
            let Some(files) = repo.files.get(&git_ref) else {
                return gh_json(
                    StatusCode::NOT_FOUND,
                    &json!({
                        "message": format!("No commit found for the ref {git_ref}"),
                        "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content",
                        "status": "404",
                    }),
                    remaining,
                    used,
                );
            };
            match contents(repo, &git_ref, files, file_path) {
                Some(body) => gh_json(StatusCode::OK, &body, remaining, used),
                None => gh_json(
                    StatusCode::NOT_FOUND,
                    &json!({
                        "message": "Not Found",
                        "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content",
                        "status": "404",
                    }),
                    remaining,
                    used,
                ),
            }
        }
        _ => nf(remaining, used),
    }
}

/// One request, for the delivery, App and team routes.
struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    method: &'a Method,
    path: &'a str,
    query: Option<&'a str>,
    /// `Host` as the client sent it, for `Link` URLs.
    host: &'a str,
    remaining: u64,
    used: u64,
}

impl Ctx<'_> {
    fn ok(&self, status: StatusCode, body: &Value) -> Response {
        gh_json(status, body, self.remaining, self.used)
    }
    fn nf(&self) -> Response {
        self.ok(StatusCode::NOT_FOUND, &not_found())
    }
    fn param(&self, name: &str) -> Option<String> {
        parse_form(self.query.unwrap_or(""))
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    fn per_page(&self) -> Result<usize, Box<Response>> {
        match self.param("per_page") {
            None => Ok(30),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(Box::new(self.ok(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"message": "Validation Failed: per_page must be between 1 and 100", "documentation_url": DOCS, "status": "422"}),
                ))),
            },
        }
    }
    /// One page of `items` by `per_page` and `page`, as GitHub pages a
    /// list: `Link` with `rel="next"` and `rel="last"` while more follow
    /// (the request's other parameters kept), 422 for a bad `per_page`.
    fn paged(&self, items: &[Value]) -> Response {
        let per_page = match self.per_page() {
            Ok(n) => n,
            Err(r) => return *r,
        };
        let page = self
            .param("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let slice: Vec<Value> = items
            .iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .cloned()
            .collect();
        let mut resp = self.ok(StatusCode::OK, &Value::Array(slice));
        if page.saturating_mul(per_page) < items.len() {
            let last = items.len().div_ceil(per_page);
            let others: Vec<(String, String)> = parse_form(self.query.unwrap_or(""))
                .into_iter()
                .filter(|(k, _)| k != "page" && k != "per_page")
                .collect();
            let url = |p: usize| {
                let mut q: Vec<String> = others.iter().map(|(k, v)| format!("{k}={v}")).collect();
                q.push(format!("per_page={per_page}"));
                q.push(format!("page={p}"));
                format!("<http://{}{}?{}>", self.host, self.path, q.join("&"))
            };
            let link = format!(
                "{}; rel=\"next\", {}; rel=\"last\"",
                url(page + 1),
                url(last)
            );
            if let Ok(v) = HeaderValue::from_str(&link) {
                resp.headers_mut().insert(header::LINK, v);
            }
        }
        resp
    }

    /// `Link: <http://host/path?…>; rel="next"` on `resp`.
    fn link_next(&self, resp: &mut Response, query: &str) {
        let link = format!("<http://{}{}?{query}>; rel=\"next\"", self.host, self.path);
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
}

/// Routes of deliveries, org hooks, the App and teams; `None`: not one of them.
fn delivery_routes(state: &mut GhState, ctx: &Ctx<'_>, caller: Caller) -> Option<Response> {
    let segments: Vec<&str> = ctx.path.trim_start_matches('/').split('/').collect();
    let get = ctx.method == Method::GET;
    let post = ctx.method == Method::POST;
    let need_token = |caller: Caller| match caller {
        Caller::Token => None,
        Caller::Anonymous => Some(ctx.nf()),
        Caller::App => Some(unauthorized(
            "A JSON web token cannot be used for this endpoint: use an installation token",
        )),
    };
    let need_jwt = |caller: Caller| {
        (caller != Caller::App).then(|| unauthorized("A JSON web token could not be decoded"))
    };
    Some(match segments.as_slice() {
        ["repos", owner, name, "hooks", id, "deliveries", rest @ ..] => {
            if let Some(r) = need_token(caller) {
                return Some(r);
            }
            let repo = format!("{owner}/{name}").to_ascii_lowercase();
            let Ok(id) = id.parse::<u64>() else {
                return Some(ctx.nf());
            };
            let exists = state
                .repos
                .get(&repo)
                .is_some_and(|r| r.hooks.iter().any(|h| h.id == id));
            if !exists {
                return Some(ctx.nf());
            }
            deliveries_api(state, ctx, &HookRef::Repo { repo, id }, rest)
        }
        ["orgs", org, "hooks"] if get => {
            if let Some(r) = need_token(caller) {
                return Some(r);
            }
            let Some(o) = state.orgs.get(&org.to_ascii_lowercase()) else {
                return Some(ctx.nf());
            };
            let items: Vec<Value> = o
                .hooks
                .iter()
                .map(|h| {
                    let mut v = h.json(org);
                    v["type"] = json!("Organization");
                    v["url"] = json!(format!("https://api.github.com/orgs/{org}/hooks/{}", h.id));
                    v
                })
                .collect();
            ctx.ok(StatusCode::OK, &Value::Array(items))
        }
        ["orgs", org, "hooks", id, "deliveries", rest @ ..] => {
            if let Some(r) = need_token(caller) {
                return Some(r);
            }
            let org = org.to_ascii_lowercase();
            let Ok(id) = id.parse::<u64>() else {
                return Some(ctx.nf());
            };
            let exists = state
                .orgs
                .get(&org)
                .is_some_and(|o| o.hooks.iter().any(|h| h.id == id));
            if !exists {
                return Some(ctx.nf());
            }
            deliveries_api(state, ctx, &HookRef::Org { org, id }, rest)
        }
        ["orgs", org, "teams", slug, "members"] if get => {
            if let Some(r) = need_token(caller) {
                return Some(r);
            }
            let Some(members) = state
                .orgs
                .get(&org.to_ascii_lowercase())
                .and_then(|o| o.teams.get(*slug))
            else {
                return Some(ctx.nf());
            };
            let items: Vec<Value> = members
                .iter()
                .map(|login| json!({"login": login, "id": 1, "type": "User", "site_admin": false}))
                .collect();
            ctx.paged(&items)
        }
        ["app", rest @ ..] => {
            if let Some(r) = need_jwt(caller) {
                return Some(r);
            }
            let Some(app) = state.app.as_mut() else {
                return Some(ctx.nf());
            };
            match rest {
                ["hook", "config"] if get => match &app.hook {
                    Some(h) => ctx.ok(
                        StatusCode::OK,
                        &json!({"url": h.url, "content_type": h.content_type, "secret": "********", "insecure_ssl": h.insecure_ssl}),
                    ),
                    None => ctx.nf(),
                },
                ["hook", "deliveries", rest @ ..] => {
                    if app.hook.is_none() {
                        return Some(ctx.nf());
                    }
                    deliveries_api(state, ctx, &HookRef::App, rest)
                }
                ["installations"] if get => {
                    let items: Vec<Value> = app
                        .installations
                        .iter()
                        .map(|(id, account)| installation_json(*id, account, app.id))
                        .collect();
                    ctx.ok(StatusCode::OK, &Value::Array(items))
                }
                ["installations", id, "access_tokens"] if post => {
                    let Some((id, _)) = app
                        .installations
                        .iter()
                        .find(|(i, _)| id.parse::<u64>().ok() == Some(*i))
                    else {
                        return Some(ctx.nf());
                    };
                    app.tokens_issued += 1;
                    let token = format!("ghs_{}_{id}_{:08}", app.id, app.tokens_issued);
                    let expires = now_secs() + app.token_lifetime.as_secs();
                    app.tokens.insert(token.clone(), expires);
                    ctx.ok(
                        StatusCode::CREATED,
                        &json!({
                            "token": token,
                            "expires_at": rfc3339(expires),
                            "permissions": {"pull_requests": "read", "members": "read", "repository_hooks": "write"},
                            "repository_selection": "all",
                        }),
                    )
                }
                _ => ctx.nf(),
            }
        }
        ["repos", owner, _name, "installation"] if get => {
            if let Some(r) = need_jwt(caller) {
                return Some(r);
            }
            let Some(app) = state.app.as_ref() else {
                return Some(ctx.nf());
            };
            match app
                .installations
                .iter()
                .find(|(_, a)| a.eq_ignore_ascii_case(owner))
            {
                Some((id, account)) => {
                    ctx.ok(StatusCode::OK, &installation_json(*id, account, app.id))
                }
                None => ctx.nf(),
            }
        }
        _ => return None,
    })
}

/// Pull requests (`GET /repos/{o}/{r}/pulls`, `…/pulls/{n}`,
/// `…/pulls/{n}/reviews`, `…/pulls/{n}/requested_reviewers`) and an
/// owner's repositories (`GET /orgs/{org}/repos`, `/users/{user}/repos`);
/// `None`: not one of them.
fn pull_routes(state: &GhState, ctx: &Ctx<'_>, caller: Caller) -> Option<Response> {
    if ctx.method != Method::GET {
        return None;
    }
    let segments: Vec<&str> = ctx.path.trim_start_matches('/').split('/').collect();
    let (kind, owner) = match segments.as_slice() {
        [kind @ ("orgs" | "users"), owner, "repos"] => (*kind, *owner),
        ["repos", _, _, "pulls", ..] => ("pulls", ""),
        _ => return None,
    };
    match caller {
        Caller::Token => {}
        Caller::Anonymous => return Some(ctx.nf()),
        Caller::App => {
            return Some(unauthorized(
                "A JSON web token cannot be used for this endpoint: use an installation token",
            ));
        }
    }
    if kind != "pulls" {
        let owner = owner.to_ascii_lowercase();
        if kind == "orgs" && state.users.contains(&owner) {
            return Some(ctx.nf());
        }
        let mut repos: Vec<&Repo> = state
            .repos
            .iter()
            .filter(|(k, _)| k.split('/').next() == Some(owner.as_str()))
            .map(|(_, r)| r)
            .collect();
        if repos.is_empty() && !state.orgs.contains_key(&owner) && !state.users.contains(&owner) {
            return Some(ctx.nf());
        }
        repos.sort_by(|a, b| a.full_name.cmp(&b.full_name));
        let items: Vec<Value> = repos.into_iter().map(repo_json).collect();
        return Some(ctx.paged(&items));
    }
    let ["repos", owner, name, "pulls", rest @ ..] = segments.as_slice() else {
        return None;
    };
    let key = format!("{owner}/{name}").to_ascii_lowercase();
    if !state.repos.contains_key(&key) {
        return Some(ctx.nf());
    }
    let empty = BTreeMap::new();
    let pulls = state.pulls.get(&key).unwrap_or(&empty);
    let pull = |n: &str| {
        n.parse::<u64>()
            .ok()
            .and_then(|n| pulls.get(&n).map(|p| (n, p)))
    };
    Some(match rest {
        [] | [""] => {
            let wanted = ctx.param("state").unwrap_or_else(|| "open".to_owned());
            // Newest first, GitHub's default order (`sort=created`, `desc`).
            let items: Vec<Value> = pulls
                .values()
                .rev()
                .filter(|p| wanted == "all" || p["state"].as_str() == Some(wanted.as_str()))
                .map(|p| {
                    let mut item = p.clone();
                    // The list has no merge details (GitHub's "simple" PR).
                    if let Some(o) = item.as_object_mut() {
                        o.remove("merged");
                    }
                    item
                })
                .collect();
            ctx.paged(&items)
        }
        [n] => match pull(n) {
            Some((_, p)) => ctx.ok(StatusCode::OK, p),
            None => ctx.nf(),
        },
        [n, "reviews"] => match pull(n) {
            Some((n, _)) => {
                let reviews = state
                    .reviews
                    .get(&(key.clone(), n))
                    .cloned()
                    .unwrap_or_default();
                ctx.paged(&reviews)
            }
            None => ctx.nf(),
        },
        [n, "requested_reviewers"] => match pull(n) {
            Some((_, p)) => ctx.ok(
                StatusCode::OK,
                &json!({"users": p["requested_reviewers"], "teams": p["requested_teams"]}),
            ),
            None => ctx.nf(),
        },
        _ => ctx.nf(),
    })
}

fn installation_json(id: u64, account: &str, app_id: u64) -> Value {
    json!({
        "id": id,
        "app_id": app_id,
        "account": {"login": account, "id": 1, "type": "Organization"},
        "target_type": "Organization",
        "repository_selection": "all",
        "access_tokens_url": format!("https://api.github.com/app/installations/{id}/access_tokens"),
    })
}

/// `GET …/deliveries` (newest first, cursor pagination) and
/// `POST …/deliveries/{id}/attempts`.
fn deliveries_api(state: &mut GhState, ctx: &Ctx<'_>, hook: &HookRef, rest: &[&str]) -> Response {
    match (ctx.method.as_str(), rest) {
        ("GET", [] | [""]) => {
            let per_page = match ctx.per_page() {
                Ok(n) => n,
                Err(r) => return *r,
            };
            let cursor = match ctx.param("cursor").filter(|c| !c.is_empty()) {
                None => u64::MAX,
                Some(c) => match c.parse::<u64>() {
                    Ok(c) => c,
                    Err(_) => {
                        return ctx.ok(
                            StatusCode::BAD_REQUEST,
                            &json!({"message": "Invalid cursor", "documentation_url": DOCS, "status": "400"}),
                        );
                    }
                },
            };
            let redelivery = ctx.param("redelivery").map(|v| v == "true");
            let mut matching: Vec<&DeliveryRecord> = state
                .deliveries
                .iter()
                .filter(|d| &d.hook == hook && d.id < cursor)
                .filter(|d| redelivery.is_none_or(|r| d.redelivery == r))
                .collect();
            matching.sort_by_key(|d| std::cmp::Reverse(d.id));
            let page: Vec<Value> = matching.iter().take(per_page).map(|d| d.json()).collect();
            let mut resp = ctx.ok(StatusCode::OK, &Value::Array(page));
            if matching.len() > per_page
                && let Some(last) = matching.get(per_page - 1)
            {
                ctx.link_next(
                    &mut resp,
                    &format!("per_page={per_page}&cursor={}", last.id),
                );
            }
            resp
        }
        ("POST", [id, "attempts"]) => {
            let Some(original) = state
                .deliveries
                .iter()
                .find(|d| &d.hook == hook && id.parse::<u64>().ok() == Some(d.id))
                .cloned()
            else {
                return ctx.nf();
            };
            let target = match hook {
                HookRef::Repo { repo, id } => state
                    .repos
                    .get(repo)
                    .and_then(|r| r.hooks.iter().find(|h| h.id == *id)),
                HookRef::Org { org, id } => state
                    .orgs
                    .get(org)
                    .and_then(|o| o.hooks.iter().find(|h| h.id == *id)),
                HookRef::App => state.app.as_ref().and_then(|a| a.hook.as_ref()),
            };
            let Some(target) = target.cloned() else {
                return ctx.nf();
            };
            state.redelivery_requests.push(original.id);
            tokio::spawn(attempt(Arc::clone(ctx.shared), target, original));
            ctx.ok(StatusCode::ACCEPTED, &json!({}))
        }
        _ => ctx.nf(),
    }
}

/// Sends `original`'s payload again to the hook, as GitHub's hookshot does,
/// and records the attempt as a new delivery with the same GUID.
async fn attempt(shared: Arc<Shared>, hook: Hook, original: DeliveryRecord) {
    let body = original.payload.clone().into_bytes();
    let mut req = reqwest::Client::new()
        .post(&hook.url)
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/testkit")
        .header("x-github-event", &original.event)
        .header("x-github-delivery", &original.guid)
        .header("x-github-hook-id", hook.id.to_string());
    if let Some(secret) = &hook.secret {
        req = req.header(
            "x-hub-signature-256",
            crate::sign::sha256_header(secret.as_bytes(), &body),
        );
    }
    let status_code = match req.body(body).send().await {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    };
    let mut state = lock(&shared.state);
    state.next_delivery_id += 1;
    let id = state.next_delivery_id;
    state.deliveries.push(DeliveryRecord {
        id,
        delivered_at: now_secs(),
        redelivery: true,
        status: status_text(status_code),
        status_code,
        ..original
    });
    shared.delivery_count.send_replace(state.deliveries.len());
}

fn repo_json(repo: &Repo) -> Value {
    let (owner, name) = repo
        .full_name
        .split_once('/')
        .unwrap_or(("", repo.full_name.as_str()));
    json!({
        "id": 1_296_269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": name,
        "full_name": repo.full_name,
        "private": true,
        "owner": {"login": owner, "id": 1, "type": "Organization"},
        "html_url": format!("https://github.com/{}", repo.full_name),
        "url": format!("https://api.github.com/repos/{}", repo.full_name),
        "fork": false,
        "archived": false,
        "disabled": false,
        "visibility": "private",
        "default_branch": repo.default_branch,
    })
}

/// Git's blob id: SHA-1 of `"blob <len>\0<content>"`.
fn blob_sha(content: &str) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content.as_bytes());
    hex(&h.finalize())
}

/// Base64 the way the contents API serves it: lines of 60 characters, each
/// ending in `\n`.
fn github_base64(content: &str) -> String {
    let encoded = B64.encode(content.as_bytes());
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for chunk in encoded.as_bytes().chunks(60) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

fn entry_json(repo: &Repo, git_ref: &str, path: &str, kind: &str, sha: &str, size: usize) -> Value {
    let name = path.rsplit('/').next().unwrap_or(path);
    let full = &repo.full_name;
    let html_kind = if kind == "dir" { "tree" } else { "blob" };
    let git_kind = if kind == "dir" { "trees" } else { "blobs" };
    let url = format!("https://api.github.com/repos/{full}/contents/{path}?ref={git_ref}");
    let git_url = format!("https://api.github.com/repos/{full}/git/{git_kind}/{sha}");
    let html_url = format!("https://github.com/{full}/{html_kind}/{git_ref}/{path}");
    json!({
        "type": kind,
        "name": name,
        "path": path,
        "sha": sha,
        "size": size,
        "url": url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": if kind == "file" {
            Value::String(format!("https://raw.githubusercontent.com/{full}/{git_ref}/{path}"))
        } else {
            Value::Null
        },
        "_links": {"self": url, "git": git_url, "html": html_url},
    })
}

/// A file object, a directory listing, or `None`.
fn contents(
    repo: &Repo,
    git_ref: &str,
    files: &BTreeMap<String, String>,
    path: &str,
) -> Option<Value> {
    if let Some(content) = files.get(path) {
        let mut v = entry_json(
            repo,
            git_ref,
            path,
            "file",
            &blob_sha(content),
            content.len(),
        );
        v["encoding"] = Value::String("base64".to_owned());
        v["content"] = Value::String(github_base64(content));
        return Some(v);
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for (p, content) in files.range(prefix.clone()..) {
        let Some(rest) = p.strip_prefix(&prefix) else {
            break;
        };
        let entry = match rest.split_once('/') {
            Some((dir, _)) => {
                let dir_path = format!("{prefix}{dir}");
                let sha = blob_sha(&dir_path);
                entry_json(repo, git_ref, &dir_path, "dir", &sha, 0)
            }
            None => entry_json(repo, git_ref, p, "file", &blob_sha(content), content.len()),
        };
        let key = entry["path"].as_str().unwrap_or_default().to_owned();
        entries.entry(key).or_insert(entry);
    }
    if entries.is_empty() {
        None
    } else {
        Some(Value::Array(entries.into_values().collect()))
    }
}

/// `GET/POST /repos/{o}/{r}/hooks` and `PATCH /repos/{o}/{r}/hooks/{id}`.
#[allow(clippy::too_many_arguments)]
fn hooks_api(
    state: &mut GhState,
    key: &str,
    method: &Method,
    rest: &[&str],
    query: Option<&str>,
    body: &[u8],
    remaining: u64,
    used: u64,
) -> Response {
    let nf = || gh_json(StatusCode::NOT_FOUND, &not_found(), remaining, used);
    let invalid = |message: &str| {
        gh_json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"message": "Validation Failed", "errors": [{"resource": "Hook", "code": "custom", "message": message}], "documentation_url": DOCS, "status": "422"}),
            remaining,
            used,
        )
    };
    let new_id = state.next_hook_id + 1;
    if method == Method::POST {
        state.next_hook_id = new_id;
    }
    let Some(repo) = state.repos.get_mut(key) else {
        return nf();
    };
    let full = repo.full_name.clone();
    match (method.as_str(), rest) {
        ("GET", [] | [""]) => {
            let form = parse_form(query.unwrap_or(""));
            let get = |k: &str| {
                form.iter()
                    .find(|(n, _)| n == k)
                    .and_then(|(_, v)| v.parse::<usize>().ok())
            };
            let per_page = get("per_page").unwrap_or(30).clamp(1, 100);
            let page = get("page").unwrap_or(1).max(1);
            let items: Vec<Value> = repo
                .hooks
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|h| h.json(&full))
                .collect();
            let mut resp = gh_json(StatusCode::OK, &Value::Array(items), remaining, used);
            if page * per_page < repo.hooks.len() {
                let link = format!(
                    "<https://api.github.com/repositories/1/hooks?per_page={per_page}&page={}>; rel=\"next\"",
                    page + 1
                );
                if let Ok(v) = HeaderValue::from_str(&link) {
                    resp.headers_mut().insert(header::LINK, v);
                }
            }
            resp
        }
        ("POST", [] | [""]) => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return gh_json(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"}),
                    remaining,
                    used,
                );
            };
            let Some(url) = v["config"]["url"].as_str().filter(|u| !u.is_empty()) else {
                return invalid("Config must contain url");
            };
            if repo.hooks.iter().any(|h| h.url == url) {
                return invalid("Hook already exists on this repository");
            }
            let hook = Hook {
                id: new_id,
                url: url.to_owned(),
                content_type: v["config"]["content_type"]
                    .as_str()
                    .unwrap_or("form")
                    .to_owned(),
                secret: v["config"]["secret"].as_str().map(str::to_owned),
                insecure_ssl: v["config"]["insecure_ssl"]
                    .as_str()
                    .unwrap_or("0")
                    .to_owned(),
                events: v["events"].as_array().map_or_else(
                    || vec!["push".to_owned()],
                    |a| {
                        a.iter()
                            .filter_map(|e| e.as_str().map(str::to_owned))
                            .collect()
                    },
                ),
                active: v["active"].as_bool().unwrap_or(true),
            };
            let json = hook.json(&full);
            repo.hooks.push(hook);
            gh_json(StatusCode::CREATED, &json, remaining, used)
        }
        ("PATCH", [id]) => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return gh_json(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"}),
                    remaining,
                    used,
                );
            };
            let Some(hook) = repo
                .hooks
                .iter_mut()
                .find(|h| id.parse::<u64>().ok() == Some(h.id))
            else {
                return nf();
            };
            if let Some(c) = v.get("config") {
                if let Some(u) = c["url"].as_str() {
                    hook.url = u.to_owned();
                }
                if let Some(t) = c["content_type"].as_str() {
                    hook.content_type = t.to_owned();
                }
                if let Some(sec) = c["secret"].as_str() {
                    hook.secret = Some(sec.to_owned());
                }
                if let Some(i) = c["insecure_ssl"].as_str() {
                    hook.insecure_ssl = i.to_owned();
                }
            }
            if let Some(e) = v["events"].as_array() {
                hook.events = e
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect();
            }
            if let Some(a) = v["active"].as_bool() {
                hook.active = a;
            }
            gh_json(StatusCode::OK, &hook.json(&full), remaining, used)
        }
        _ => nf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lines_of_60() {
        let s = "x".repeat(100);
        let b = github_base64(&s);
        let lines: Vec<&str> = b.split_terminator('\n').collect();
        assert_eq!(lines[0].len(), 60);
        assert!(b.ends_with('\n'));
        let joined: String = lines.concat();
        assert_eq!(B64.decode(joined).unwrap(), s.as_bytes());
    }

    #[test]
    fn rfc3339_of_epoch_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // `date -u -d @1796212800`
        assert_eq!(rfc3339(1_796_212_800), "2026-12-02T12:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn git_blob_sha_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            blob_sha("hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
