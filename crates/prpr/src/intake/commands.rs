//! `POST /slack/commands`: the `/prpr` slash command.
//!
//! Slack signs each request: `X-Slack-Signature: v0=<hex>` is HMAC-SHA256
//! of `v0:{X-Slack-Request-Timestamp}:{raw body}` with the app's signing
//! secret. A request is refused with `401` when the signature is missing or
//! wrong (compared in constant time), when its timestamp is more than five
//! minutes from now (an old request replayed), or when the same signature
//! was already seen within those five minutes (a recent one replayed:
//! without this, a captured `/prpr quiet off` could be sent again). Without
//! a configured secret the endpoint does not exist (`404`).
//!
//! Slack wants an answer within 3 s. Each command does at most a couple of
//! store reads or writes and answers in the HTTP response itself as an
//! ephemeral message (only the caller sees it) when it is ready within
//! [`ACK_AFTER`]. When it is not (`/prpr pending` on a slow store), the
//! request is acknowledged with an ephemeral "working on it" and the answer
//! is posted to the command's `response_url` when ready (within
//! [`LATE_BUDGET`]). That URL comes in the signed form, but is still
//! checked: only `https://hooks.slack.com/…`, or the origin of `[slack]
//! api_url` when that is not Slack's (a proxy, or a test's Slack double),
//! is posted to. A person's settings are stored by Slack user ID
//! ([`crate::store`]'s `user_prefs`, `snoozes`); the config's values are the
//! defaults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use super::{Intake, header_str, reject, reply};
use crate::config::{Config, LocalTime, Zone, parse_duration};
use crate::reminders::digest::{Person, personal_digest};
use crate::reminders::prefs::{Quiet, RemindPref};
use crate::slack::render;

/// Slack's own bound on a request's age, and how long signatures are kept.
const MAX_AGE_SECS: i64 = 300;

/// Slash-command bodies are small; anything much larger is not from Slack.
const MAX_BODY: usize = 64 * 1024;

/// An answer ready this soon goes in the HTTP response: within Slack's
/// 3 s, leaving room for the network.
pub const ACK_AFTER: Duration = Duration::from_millis(2500);

/// A later answer is posted to `response_url` if ready this soon (Slack
/// keeps the URL 30 minutes; a person waits far less).
const LATE_BUDGET: Duration = Duration::from_secs(60);

/// Where Slack's `response_url`s point.
const RESPONSE_URL_PREFIX: &str = "https://hooks.slack.com/";

/// What the command endpoint needs besides [`Intake`].
pub struct Commands {
    secret: crate::config::Secret,
    cfg: Arc<Config>,
    /// Signatures seen in the last five minutes, with their timestamps.
    seen: Mutex<HashMap<String, i64>>,
    /// How long an answer may take to go in the HTTP response.
    ack_after: Duration,
    /// For late answers to `response_url`.
    http: reqwest::Client,
}

impl Commands {
    /// `None` without a signing secret: the endpoint is off.
    pub fn from_config(cfg: Arc<Config>) -> Option<Commands> {
        let secret = cfg
            .slack
            .signing_secret
            .clone()
            .filter(|s| !s.expose().trim().is_empty())?;
        Some(Commands {
            secret,
            cfg,
            seen: Mutex::new(HashMap::new()),
            ack_after: ACK_AFTER,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        })
    }

    /// Answers not ready within `wait` go to `response_url` instead of the
    /// HTTP response; zero sends every answer there. Default [`ACK_AFTER`];
    /// tests set zero to see the late path without a slow store.
    pub fn ack_after(mut self, wait: Duration) -> Commands {
        self.ack_after = wait;
        self
    }

    /// May a late answer be posted to `url`? Slack's hooks host, or the
    /// origin of a non-default `[slack] api_url` (a proxy, a test double).
    pub fn response_url_allowed(&self, url: &str) -> bool {
        if url.starts_with(RESPONSE_URL_PREFIX) {
            return true;
        }
        let api = &self.cfg.slack.api_url;
        if api.starts_with("https://slack.com/") {
            return false;
        }
        let origin = |u: &str| -> Option<String> {
            let (scheme, rest) = u.split_once("://")?;
            let host = rest.split(['/', '?', '#']).next()?;
            (!host.is_empty() && !host.contains('@')).then(|| format!("{scheme}://{host}"))
        };
        origin(api).is_some_and(|a| origin(url).as_deref() == Some(a.as_str()))
    }

    /// Posts a late answer; failures are logged (without the URL, which
    /// grants posting to the person).
    async fn post_late(&self, url: &str, answer: Answer) {
        match self.http.post(url).json(&answer.json()).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    "slash command: response_url refused the answer"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "slash command: cannot post to response_url")
            }
        }
    }

    /// Checks timestamp, signature and replay; `Err` is the reason for a 401.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(), &'static str> {
        let ts_text = timestamp.ok_or("missing X-Slack-Request-Timestamp header")?;
        let ts: i64 = ts_text
            .trim()
            .parse()
            .map_err(|_| "malformed X-Slack-Request-Timestamp header")?;
        if (now_secs - ts).abs() > MAX_AGE_SECS {
            return Err("request timestamp is more than 5 minutes from now");
        }
        let sig = signature.ok_or("missing X-Slack-Signature header")?;
        let tag = sig
            .strip_prefix("v0=")
            .and_then(|h| hex::decode(h).ok())
            .filter(|t| t.len() == 32)
            .ok_or("malformed X-Slack-Signature header: expected v0= followed by 64 hex digits")?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.secret.expose().as_bytes())
            .map_err(|_| "signing secret unusable")?;
        mac.update(b"v0:");
        mac.update(ts_text.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac.verify_slice(&tag).map_err(
            |_| "signature does not match (is the signing secret the same as the Slack app's?)",
        )?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, at| (now_secs - *at).abs() <= MAX_AGE_SECS);
        if seen.insert(sig.to_ascii_lowercase(), ts).is_some() {
            return Err("request replayed (this signature was already used)");
        }
        Ok(())
    }
}

/// The fields of Slack's form the command reads.
#[derive(Debug, Deserialize)]
struct Form {
    #[serde(default)]
    text: String,
    user_id: String,
    /// Where a late answer goes.
    #[serde(default)]
    response_url: Option<String>,
}

pub(super) async fn handle(
    State(app): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(commands) = app.commands.clone() else {
        return reject(StatusCode::NOT_FOUND, "not found");
    };
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a slash command body is at most {MAX_BODY} bytes"),
            );
        }
    };
    let now_secs = app.clock.now_ms().div_euclid(1000);
    if let Err(why) = commands.verify(
        header_str(&headers, "x-slack-request-timestamp"),
        header_str(&headers, "x-slack-signature"),
        &body,
        now_secs,
    ) {
        tracing::warn!(reason = why, "slash command rejected");
        return reject(StatusCode::UNAUTHORIZED, why);
    }
    let form: Form = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                format!("not a slash command form: {e}"),
            );
        }
    };
    tracing::info!(user = %form.user_id, command = form.text.split_whitespace().next().unwrap_or("help"), "slash command");
    let late_url = form
        .response_url
        .clone()
        .filter(|u| commands.response_url_allowed(u));
    if form.response_url.is_some() && late_url.is_none() {
        tracing::warn!(
            "slash command: a response_url not on Slack's hooks host; answering inline only"
        );
    }
    let wait = commands.ack_after;
    let work = {
        let (app, commands) = (app.clone(), commands.clone());
        tokio::spawn(async move { run(&app, &commands.cfg, &form).await })
    };
    let mut work = work;
    let Some(url) = late_url else {
        // Nowhere to answer later: inline, or "busy" when it is too slow.
        let answer = match tokio::time::timeout(ACK_AFTER, &mut work).await {
            Ok(Ok(a)) => a,
            _ => {
                work.abort();
                Answer::text(BUSY)
            }
        };
        return reply(StatusCode::OK, answer.json());
    };
    if !wait.is_zero()
        && let Ok(done) = tokio::time::timeout(wait, &mut work).await
    {
        return reply(
            StatusCode::OK,
            done.unwrap_or_else(|_| Answer::text(BUSY)).json(),
        );
    }
    tokio::spawn(async move {
        let answer = match tokio::time::timeout(LATE_BUDGET, work).await {
            Ok(Ok(a)) => a,
            _ => Answer::text(BUSY),
        };
        commands.post_late(&url, answer).await;
    });
    reply(
        StatusCode::OK,
        Answer::text("Working on it… the answer follows in a moment.").json(),
    )
}

const BUSY: &str = "prpr is busy right now; please try again in a moment.";

/// An ephemeral reply.
struct Answer {
    text: String,
    blocks: Option<serde_json::Value>,
}

impl Answer {
    fn text(t: impl Into<String>) -> Answer {
        Answer {
            text: t.into(),
            blocks: None,
        }
    }

    fn json(self) -> serde_json::Value {
        let mut v = json!({"response_type": "ephemeral", "text": self.text});
        if let Some(b) = self.blocks {
            v["blocks"] = b;
        }
        v
    }
}

pub const HELP: &str = "*prpr* — pull-request reminders\n\
• `/prpr pending` — what waits for your review now\n\
• `/prpr quiet 19:00-09:00 [Asia/Tokyo]` — hold my DMs during these hours and send one summary when they end; `/prpr quiet off`\n\
• `/prpr snooze <PR URL> 1d` — no reminders about that PR for me for a while (notices still come)\n\
• `/prpr remind 09:00 [Europe/Berlin]` — my personal reminder on weekdays; `/prpr remind off`; `/prpr remind default`\n\
• `/prpr help`";

async fn run(app: &Intake, cfg: &Config, form: &Form) -> Answer {
    let words: Vec<&str> = form.text.split_whitespace().collect();
    let user = form.user_id.as_str();
    let now = app.clock.now_ms();
    let failed = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "slash command: store unavailable");
        Answer::text("Sorry, prpr could not reach its database; please try again.")
    };
    match words.as_slice() {
        [] | ["help", ..] => Answer::text(HELP),
        ["pending"] => {
            let Some(login) = cfg.notify.members.login_of(user) else {
                return Answer::text(
                    "I don't know your GitHub login: ask for your Slack ID to be added to prpr's [members].",
                );
            };
            let teams: Vec<String> = cfg
                .reminders
                .personal
                .iter()
                .find(|p| p.login == login)
                .map(|p| p.teams.clone())
                .unwrap_or_default();
            let (cards, snoozes) =
                match (app.store.open_cards().await, app.store.snoozes(now).await) {
                    (Ok(c), Ok(s)) => (c, s),
                    (Err(e), _) | (_, Err(e)) => return failed(e),
                };
            let person = Person {
                user_id: user,
                login,
                teams: &teams,
                ignore_drafts: true,
            };
            let pages = personal_digest(&person, &cards, &cfg.notify, &snoozes, now);
            match pages.first() {
                None => Answer::text("Nothing waits for your review. :tada:"),
                Some(first) => {
                    let m = render::digest(first);
                    Answer {
                        text: m.text,
                        blocks: Some(m.blocks),
                    }
                }
            }
        }
        ["quiet", "off"] => match app.store.set_quiet(user, None, now).await {
            Ok(()) => Answer::text("Quiet hours off: DMs come as they happen."),
            Err(e) => failed(e),
        },
        ["quiet", range] | ["quiet", range, _] => {
            let tz = words.get(2).copied();
            match Quiet::parse(range, tz) {
                Err(e) => {
                    Answer::text(format!("{e}. Try `/prpr quiet 19:00-09:00 Europe/Berlin`."))
                }
                Ok(q) => match app.store.set_quiet(user, Some(&q), now).await {
                    Ok(()) => Answer::text(format!(
                        "Quiet hours {}–{} ({}): DMs are held and sent as one summary at {}.",
                        q.from, q.to, q.tz, q.to
                    )),
                    Err(e) => failed(e),
                },
            }
        }
        ["snooze", url, duration] => {
            let Some((repo, number)) = parse_pr_url(url) else {
                return Answer::text(format!(
                    "{} is not a pull request URL (https://github.com/owner/repo/pull/123).",
                    render::escape(url)
                ));
            };
            let d = match parse_duration(duration) {
                Ok(d) if !d.is_zero() => d,
                _ => return Answer::text("The snooze needs a length like `4h`, `1d` or `3d`."),
            };
            let until = now.saturating_add(d.as_millis() as i64);
            match app.store.snooze(user, &repo, number, until).await {
                Ok(()) => Answer::text(format!(
                    "No reminders about {}#{number} for {}. Notices about it still come.",
                    render::escape(&repo),
                    render::age_words(d.as_secs())
                )),
                Err(e) => failed(e),
            }
        }
        ["remind", "off"] => {
            set_remind(
                app,
                user,
                Some(RemindPref::Off { off: true }),
                now,
                "Personal reminders off.".into(),
            )
            .await
        }
        ["remind", "default"] => {
            set_remind(
                app,
                user,
                None,
                now,
                "Personal reminders back to the configured default.".into(),
            )
            .await
        }
        ["remind", times] | ["remind", times, _] => {
            let tz = words.get(2).copied().unwrap_or("UTC");
            let zone = match Zone::parse(tz) {
                Ok(z) => z,
                Err(e) => return Answer::text(e),
            };
            let mut parsed = Vec::new();
            for t in times.split(',') {
                match LocalTime::parse(t) {
                    Ok(lt) => parsed.push(lt.to_string()),
                    Err(e) => {
                        return Answer::text(format!(
                            "{e}. Try `/prpr remind 09:00 Europe/Berlin`."
                        ));
                    }
                }
            }
            let said = format!(
                "I'll DM you what waits for your review at {} ({}) on weekdays, when anything does.",
                parsed.join(", "),
                zone.name
            );
            set_remind(
                app,
                user,
                Some(RemindPref::At {
                    times: parsed,
                    tz: zone.name,
                }),
                now,
                said,
            )
            .await
        }
        _ => Answer::text(format!("I don't know that command.\n{HELP}")),
    }
}

async fn set_remind(
    app: &Intake,
    user: &str,
    pref: Option<RemindPref>,
    now: i64,
    said: String,
) -> Answer {
    match app.store.set_remind(user, pref.as_ref(), now).await {
        Ok(()) => Answer::text(said),
        Err(e) => {
            tracing::error!(error = %e, "slash command: store unavailable");
            Answer::text("Sorry, prpr could not reach its database; please try again.")
        }
    }
}

/// `https://github.com/owner/repo/pull/123` (any host, for GHES; a
/// trailing `/files` or `#…` is fine) → `("owner/repo", 123)`.
pub fn parse_pr_url(url: &str) -> Option<(String, u64)> {
    let url = url.trim_start_matches('<').trim_end_matches('>');
    let url = url.split('|').next()?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let path = rest.split(['#', '?']).next()?;
    let parts: Vec<&str> = path.split('/').collect();
    let pull = parts.iter().position(|p| *p == "pull")?;
    if pull < 3 {
        return None;
    }
    let number = parts.get(pull + 1)?.parse().ok()?;
    Some((format!("{}/{}", parts[pull - 2], parts[pull - 1]), number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn commands() -> Commands {
        let mut cfg = Config::default();
        cfg.slack.signing_secret = Some(Secret::new("8f742231b10e8888abcd99yyyzzz85a5"));
        Commands::from_config(Arc::new(cfg)).unwrap()
    }

    fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(body);
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Slack's documented example request and signature.
    #[test]
    fn slacks_own_example_verifies() {
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let c = commands();
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(
            c.verify(Some("1531420618"), Some(sig), body, 1_531_420_618 + 10),
            Ok(())
        );
        assert!(
            c.verify(Some("1531420618"), Some(sig), body, 1_531_420_618 + 20)
                .unwrap_err()
                .contains("replayed")
        );
    }

    #[test]
    fn bad_stale_and_missing_are_refused() {
        let c = commands();
        let body = b"user_id=U1&text=help";
        let good = sign("8f742231b10e8888abcd99yyyzzz85a5", "1000", body);
        let bad = sign("other", "1000", body);
        assert!(
            c.verify(Some("1000"), Some(&bad), body, 1000)
                .unwrap_err()
                .contains("does not match")
        );
        assert!(
            c.verify(Some("1000"), Some(&good), body, 1301)
                .unwrap_err()
                .contains("5 minutes")
        );
        assert!(c.verify(None, Some(&good), body, 1000).is_err());
        assert!(c.verify(Some("1000"), None, body, 1000).is_err());
        assert!(c.verify(Some("1000"), Some("v0=zz"), body, 1000).is_err());
        assert_eq!(c.verify(Some("1000"), Some(&good), body, 1000), Ok(()));
    }

    #[test]
    fn late_answers_go_only_to_slack_or_the_configured_api_origin() {
        let c = commands();
        assert!(c.response_url_allowed("https://hooks.slack.com/commands/T1/2/x"));
        assert!(!c.response_url_allowed("https://hooks.slack.com.evil.example/commands/T1/2/x"));
        assert!(!c.response_url_allowed("http://127.0.0.1:9/commands/T1/2/x"));
        let mut cfg = Config::default();
        cfg.slack.signing_secret = Some(Secret::new("s"));
        cfg.slack.api_url = "http://127.0.0.1:9/api".into();
        let c = Commands::from_config(Arc::new(cfg)).unwrap();
        assert!(c.response_url_allowed("http://127.0.0.1:9/commands/T1/2/x"));
        assert!(!c.response_url_allowed("http://127.0.0.1:10/commands/T1/2/x"));
        assert!(!c.response_url_allowed("http://127.0.0.1:9@evil.example/x"));
    }

    #[test]
    fn pr_urls() {
        assert_eq!(
            parse_pr_url("https://github.com/acme/api/pull/12"),
            Some(("acme/api".into(), 12))
        );
        assert_eq!(
            parse_pr_url("<https://ghe.example.com/acme/api/pull/7/files>"),
            Some(("acme/api".into(), 7))
        );
        assert_eq!(parse_pr_url("https://github.com/acme/api/issues/12"), None);
        assert_eq!(parse_pr_url("acme/api#12"), None);
    }
}
