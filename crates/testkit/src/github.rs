//! A double of the GitHub REST API: `GET /repos/{owner}/{repo}`,
//! `GET /repos/{owner}/{repo}/contents/{path}?ref=…`, and repository webhooks
//! (`GET`/`POST /repos/{owner}/{repo}/hooks`, `PATCH …/hooks/{id}`, paginated
//! with `per_page`/`page` and a `Link` header), with GitHub's auth errors, 404
//! and 422 bodies, rate-limit headers and injectable faults.
//!
//! Repositories are private: a request without `Authorization` gets 404, as
//! GitHub answers for a private repository it will not reveal.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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
}

#[derive(Default)]
struct GhState {
    /// Keyed by lower-cased `owner/name` (GitHub names are case-insensitive).
    repos: HashMap<String, Repo>,
    requests: Vec<(String, String, u16)>,
    fault: Option<GitHubFault>,
    used: u64,
    next_hook_id: u64,
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

    /// Stops listening (connection refused afterwards).
    pub async fn shutdown(self) {
        self.inner.server.stop().await;
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
    let resp = respond(&shared, &method, uri.path(), uri.query(), &headers, &body);
    lock(&shared.state).requests.push((
        method.as_str().to_owned(),
        path_and_query,
        resp.status().as_u16(),
    ));
    resp
}

fn respond(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut state = lock(&shared.state);
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
        Some(GitHubFault::SecondaryRateLimited { retry_after_secs }) => {
            let mut resp = gh_json(
                StatusCode::TOO_MANY_REQUESTS,
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

    // Auth: `Bearer <t>` or `token <t>`; absent = anonymous.
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let authed = match auth {
        None => false,
        Some(h) => {
            let token = h
                .strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .or_else(|| h.strip_prefix("token "));
            if token.map(str::trim) != Some(shared.token.as_str()) {
                return gh_json(
                    StatusCode::UNAUTHORIZED,
                    &json!({"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}),
                    RATE_LIMIT,
                    0,
                );
            }
            true
        }
    };
    state.used += 1;
    let used = state.used;
    let remaining = RATE_LIMIT.saturating_sub(used);
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
    fn git_blob_sha_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            blob_sha("hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
