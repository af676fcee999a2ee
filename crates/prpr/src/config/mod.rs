//! Settings: a TOML file overlaid by environment variables.
//!
//! The file carries what a team edits (who is who, where notices go); the
//! environment carries what a deployment injects (port, secrets, database URL),
//! as Fargate task definitions do with `Environment` and `Secrets`. Names of the
//! Ruby prpr (`SECRET_TOKEN`, `GITHUB_ACCESS_TOKEN`, `GITHUB_HOST`,
//! `MENTION_COMMENT_MEMBERS`, …) are accepted so a migration is a redeploy.
//!
//! Each setting lives in one place: a field of the structs below, whose shape
//! *is* the file's (`[slack] burst` is `Config::slack.burst`) and whose
//! `Default` is the documented default. [`file`] reads the file into them,
//! [`env`] holds the one table of environment overrides, [`validate`] the
//! checks of values, [`members`] who is who, [`routes`] the `[filters]` and
//! `[[routes]]` tables.
//!
//! Loading never stops at the first problem: every problem is collected with its
//! file and line (or the variable it came from), so `prpr config check` can
//! show them all at once.

mod env;
mod file;
pub mod members;
pub mod reminders;
mod routes;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::notice::Kind;

pub use env::{Env, OVERRIDES, Override, ProcessEnv, help as env_help};
pub use members::{Members, SlackUser, TeamTarget, Teams};
pub use reminders::{LocalTime, Personal, RemindersConfig, Schedule, Zone};
pub use routes::{Filters, Glob, Route, RouteFilters, TitleTerm};
use validate::Origins;

/// A value that must never be printed: logs and errors see `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Accepts a string only, and — unlike serde's usual "invalid type: integer
/// `123`" — never repeats a wrong value in the error: it may be the secret.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        struct Visitor;
        const WRONG: &str = "must be a string (the value is not shown: it is a secret)";
        impl<'v> serde::de::Visitor<'v> for Visitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom(WRONG))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom(WRONG))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom(WRONG))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom(WRONG))
            }
            fn visit_seq<A: serde::de::SeqAccess<'v>>(self, _: A) -> Result<Secret, A::Error> {
                Err(serde::de::Error::custom(WRONG))
            }
            fn visit_map<A: serde::de::MapAccess<'v>>(self, _: A) -> Result<Secret, A::Error> {
                Err(serde::de::Error::custom(WRONG))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// How person-addressed notices (review requests, review results, mentions)
/// go. Named for what it chooses, not "delivery": that word is GitHub's, for
/// one webhook call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// A direct message from the bot.
    #[default]
    Dm,
    /// A `<@U…>` mention in the default channel.
    Channel,
    /// Both.
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

/// `[notify]`: what the rules need to know.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NotifyConfig {
    pub delivery: DeliveryMode,
    /// Default channel: channel delivery, team fallbacks, people without a Slack ID.
    pub channel: Option<String>,
    /// Where merge notices go; none when unset.
    pub merged_channel: Option<String>,
    /// Skip events sent by bots (`type: Bot` or a `[bot]` login).
    pub ignore_bots: bool,
    /// Extra logins treated as bots (lower-cased: logins are case-insensitive).
    #[serde(deserialize_with = "lowercased")]
    pub bots: Vec<String>,
    /// Lines of a review or comment body quoted in the message.
    pub excerpt_lines: usize,
    /// People (or teams) told about one comment at most; the rest are logged.
    pub max_mentions_per_comment: usize,
    /// One living thread per PR and channel: a root card kept current with
    /// `chat.update`, later notices as replies. `false`: every notice is a
    /// new top-level message, as before.
    pub threads: bool,
    /// Kinds whose thread replies are also sent to the channel
    /// (`reply_broadcast`); none by default, since channel noise is what
    /// threads are for.
    #[serde(deserialize_with = "kinds")]
    pub broadcast: Vec<Kind>,
    /// Reactions on the root card for the PR's state (approved, changes
    /// requested, merged, closed); needs the `reactions:write` scope.
    pub reactions: bool,
    /// A team review request (for a team without a `usergroup`) is passed
    /// on to at most this many members by DM; a bigger team gets one
    /// notice in its channel saying so. 0: never DM a team's members.
    pub team_expand_max: usize,
    /// How long a team request waits before it is passed on to members, so
    /// GitHub's team auto-assignment (the team request replaced by member
    /// requests within seconds) tells each member once, not twice.
    #[serde(deserialize_with = "duration")]
    pub team_debounce: Duration,
    /// Team requests are passed on to members: set at start when GitHub
    /// credentials exist (the members come from the API), never from the file.
    #[serde(skip)]
    pub expand_teams: bool,
    /// The file's top-level `[[routes]]`, in order: see [`routes`].
    #[serde(skip)]
    pub routes: Vec<Route>,
    /// The file's top-level `[filters]`, applied before any route.
    #[serde(skip)]
    pub filters: Filters,
    /// The file's top-level `[members]` and the members file: see [`members`].
    #[serde(skip)]
    pub members: Members,
    /// The file's top-level `[teams]`.
    #[serde(skip)]
    pub teams: Teams,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            delivery: DeliveryMode::Dm,
            channel: None,
            merged_channel: None,
            ignore_bots: true,
            bots: Vec::new(),
            excerpt_lines: 3,
            max_mentions_per_comment: 50,
            threads: true,
            broadcast: Vec::new(),
            reactions: false,
            team_expand_max: 8,
            team_debounce: Duration::from_secs(5),
            expand_teams: false,
            routes: Vec::new(),
            filters: Filters::default(),
            members: Members::default(),
            teams: Teams::default(),
        }
    }
}

/// Notice kinds by name (`["merged", "review_submitted"]`); an unknown name
/// is an error naming the nearest kind.
fn kinds<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Kind>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    let mut kinds = Vec::new();
    for name in names {
        let kind = routes::parse_kind(&name).map_err(serde::de::Error::custom)?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

fn lowercased<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let logins = Vec::<String>::deserialize(d)?;
    Ok(logins.into_iter().map(|l| l.to_ascii_lowercase()).collect())
}

/// `[slack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SlackConfig {
    /// Without a token, messages are printed to stdout (the console publisher).
    pub bot_token: Option<Secret>,
    pub api_url: String,
    pub timeout_secs: u64,
    /// Attempts before a message is dead-lettered (rate limiting does not count).
    pub max_attempts: u32,
    /// Sustained messages per second to one channel.
    pub per_channel_per_sec: f64,
    /// Messages one channel may receive at once before the rate applies.
    pub burst: u32,
    /// First retry delay after a failed send; doubles per attempt.
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Coalescing window for `chat.update` of a thread's root card: at most
    /// one update per root per window, with the latest state (Slack allows
    /// about 50 updates a minute per workspace). `"2s"`, `"1m"` or seconds.
    #[serde(deserialize_with = "duration")]
    pub update_interval: Duration,
    /// The Slack app's signing secret, which verifies `POST /slack/commands`
    /// (the `/prpr` slash command). Without it the endpoint does not exist.
    pub signing_secret: Option<Secret>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            bot_token: None,
            api_url: "https://slack.com/api".into(),
            timeout_secs: 10,
            max_attempts: 12,
            per_channel_per_sec: 1.0,
            burst: 3,
            retry_initial_ms: 1_000,
            retry_max_ms: 300_000,
            update_interval: Duration::from_secs(2),
            signing_secret: None,
        }
    }
}

/// `[github]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GithubConfig {
    pub webhook_secret: Option<Secret>,
    /// Accept legacy `X-Hub-Signature` (SHA-1) when SHA-256 is absent.
    pub allow_sha1_signatures: bool,
    pub api_url: String,
    pub token: Option<Secret>,
    /// GitHub App mode: the App's ID. With a private key it replaces the
    /// token (installation tokens are made from it).
    pub app_id: Option<u64>,
    /// The App's private key (PEM). Prefer the environment or a file.
    pub app_private_key: Option<Secret>,
    /// A file holding the App's private key (PEM), read at start.
    pub app_private_key_file: Option<PathBuf>,
    /// Repositories (`owner/name`) whose webhooks catch-up checks.
    pub repos: Vec<String>,
    /// Organizations whose webhooks catch-up checks.
    pub orgs: Vec<String>,
    /// prpr's public webhook URL: catch-up checks only the hooks pointing here.
    pub webhook_url: Option<String>,
    /// How often catch-up looks for deliveries GitHub failed to make (and
    /// once at start); `"10m"`, `"1h"` or seconds.
    #[serde(deserialize_with = "duration")]
    pub catch_up_interval: Duration,
    /// A catch-up pass stops when GitHub's remaining rate limit falls to
    /// this, leaving the rest to prpr's other calls and to the next pass.
    pub catch_up_rate_floor: u64,
    /// How long a team's member list, read from GitHub for team review
    /// requests, is reused before it is read again; `"1h"`, `"10m"` or seconds.
    #[serde(deserialize_with = "duration")]
    pub team_cache: Duration,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            webhook_secret: None,
            allow_sha1_signatures: false,
            api_url: "https://api.github.com".into(),
            token: None,
            app_id: None,
            app_private_key: None,
            app_private_key_file: None,
            repos: Vec::new(),
            orgs: Vec::new(),
            webhook_url: None,
            catch_up_interval: Duration::from_secs(600),
            catch_up_rate_floor: 200,
            team_cache: Duration::from_secs(3600),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub port: u16,
    /// Open connections at most. Unset: the open-files limit less 100, so a
    /// flood of idle connections cannot take the descriptors the store and
    /// Slack need.
    pub max_connections: Option<usize>,
    /// Bytes of request bodies held at once, all requests together; beyond
    /// it a request gets `503` + `Retry-After` before its body is read. At
    /// least one maximal body (25 MB) is always allowed.
    pub max_inflight_body: u64,
    /// Requests handled at once; beyond it, `503` + `Retry-After`.
    pub max_concurrent_requests: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            port: 3000,
            max_connections: None,
            max_inflight_body: crate::intake::DEFAULT_MAX_INFLIGHT_BODY,
            max_concurrent_requests: crate::intake::DEFAULT_MAX_CONCURRENT_REQUESTS,
        }
    }
}

/// `[database]`.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `sqlite:…` or `postgres://…`. Not a [`Secret`], but it may hold a
    /// password: validation never prints it.
    pub url: String,
}

/// Only the scheme: the rest may carry a password.
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.url.split(':').next().unwrap_or_default();
        write!(f, "DatabaseConfig {{ url: \"{scheme}:***\" }}")
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://prpr.db".into(),
        }
    }
}

/// `[ops]`: ECS deploy trouble, received from EventBridge on
/// `POST /aws/events` (see `intake::aws_events`) and posted to a channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OpsConfig {
    /// Where alerts go. Without it, events are still recorded (and
    /// deduplicated) but nothing is posted.
    pub channel: Option<String>,
    /// The `x-prpr-events-token` EventBridge's connection sends. Without it
    /// the endpoint does not exist (404).
    pub events_token: Option<Secret>,
    /// Failed task starts (or essential container exits) of one service's
    /// task definition within `loop_window` that make a restart loop.
    pub loop_threshold: u32,
    /// The restart-loop window, and how long a loop must be quiet before it
    /// is announced again; `"10m"`, `"90s"`, `"1h"` or seconds.
    #[serde(deserialize_with = "duration")]
    pub loop_window: Duration,
    /// Also post a short notice when a deployment completes.
    pub announce_deploys: bool,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            channel: None,
            events_token: None,
            loop_threshold: 3,
            loop_window: Duration::from_secs(600),
            announce_deploys: false,
        }
    }
}

/// `[store]`: how the store's health is judged.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// Seconds the store may stay unusable before `/healthz` fails too, so
    /// ECS replaces the task (`/readyz` fails at once).
    pub unhealthy_after_secs: u64,
    /// Free bytes on the SQLite database's volume below which prpr warns
    /// (a log line at most once a minute, and `low_disk` in `/readyz`),
    /// while still ready: the warning comes before the disk is full and
    /// deliveries start failing. `"50MB"`, `"1GB"`, `"512KB"` or bytes.
    /// Not used on PostgreSQL, whose disk prpr cannot see.
    #[serde(deserialize_with = "bytes")]
    pub min_free: u64,
}

/// `[store] min_free`'s default: 50 MB.
pub const DEFAULT_MIN_FREE: u64 = 50 * 1000 * 1000;

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            unhealthy_after_secs: 120,
            min_free: DEFAULT_MIN_FREE,
        }
    }
}

/// `"50MB"`, `"1.5GB"`, `"512KB"`, `"50MiB"`, `"100B"` or a number of bytes.
/// Decimal units (MB = 1,000,000 bytes) as `df -H` shows them, binary ones
/// (MiB) as `df -h` does.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("{t:?} is not a size (e.g. \"50MB\", \"1GB\", \"512KiB\" or bytes)");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "K" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = n * scale as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(n) => Ok(n),
        Raw::Text(t) => parse_bytes(&t).map_err(serde::de::Error::custom),
    }
}

/// `"10m"`, `"90s"`, `"2h"` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. \"10m\", \"90s\", \"1h\")"))?;
    let ms = match unit.trim() {
        // Milliseconds: short coalescing windows (`[slack] update_interval`).
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        _ => {
            return Err(format!(
                "{s:?} is not a duration (e.g. \"10m\", \"90s\", \"1h\", \"500ms\")"
            ));
        }
    };
    Ok(Duration::from_millis(ms))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(n) => Ok(Duration::from_secs(n)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// Everything prpr runs with; the file's shape, section by section. The
/// file's `[members]` and `[teams]` land in `notify`, beside the rest the
/// rules read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// A prpr-era `MEMBERS.md`; a relative path in the file is relative to the file.
    pub members_file: Option<PathBuf>,
    pub server: ServerConfig,
    pub github: GithubConfig,
    pub slack: SlackConfig,
    pub notify: NotifyConfig,
    pub database: DatabaseConfig,
    pub ops: OpsConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    /// `[reminders]`: read by hand (see [`reminders`]), not by serde.
    #[serde(skip)]
    pub reminders: RemindersConfig,
}

/// One thing wrong with the configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A file path, `environment`, or `config` for a combination of settings.
    pub source: String,
    pub line: Option<usize>,
    pub message: String,
    /// Errors stop `serve`; warnings are logged and the rest still loads.
    pub is_error: bool,
}

impl Problem {
    pub(crate) fn error(source: &str, line: Option<usize>, message: String) -> Problem {
        Problem {
            source: source.to_string(),
            line,
            message,
            is_error: true,
        }
    }

    pub(crate) fn warning(source: &str, line: Option<usize>, message: String) -> Problem {
        Problem {
            is_error: false,
            ..Problem::error(source, line, message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.is_error { "error" } else { "warning" };
        match self.line {
            Some(line) => write!(f, "{}:{}: {level}: {}", self.source, line, self.message),
            None => write!(f, "{}: {level}: {}", self.source, self.message),
        }
    }
}

/// The result of loading: the config and every problem found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub problems: Vec<Problem>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.is_error)
    }
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

/// Loads `path` (or `PRPR_CONFIG`), overlays `env`, reads the members file,
/// validates. Problems do not stop it: what is good still loads.
pub fn load(path: Option<&Path>, env: &dyn Env) -> Loaded {
    let mut problems = Vec::new();
    let mut cfg = Config::default();
    let mut origins = Origins::default();
    let path: Option<PathBuf> = path
        .map(Path::to_path_buf)
        .or_else(|| env.get("PRPR_CONFIG").map(PathBuf::from));
    if let Some(path) = &path {
        file::read(path, &mut cfg, &mut origins, &mut problems);
    }
    env::apply(&mut cfg, env, &mut origins, &mut problems);
    if let Some(mf) = cfg.members_file.clone() {
        let (source, line) = origins.location("members_file");
        members::load_file(&mut cfg.notify.members, &mf, &source, line, &mut problems);
    }
    if cfg.github.app_private_key.is_none()
        && let Some(kf) = cfg.github.app_private_key_file.clone()
    {
        match std::fs::read_to_string(&kf) {
            Ok(pem) => cfg.github.app_private_key = Some(Secret::new(pem)),
            Err(e) => {
                let (source, line) = origins.location("github.app_private_key_file");
                problems.push(Problem::error(
                    &source,
                    line,
                    format!(
                        "github.app_private_key_file: cannot read {}: {e}",
                        kf.display()
                    ),
                ));
            }
        }
    }
    problems.extend(validate::blank_secrets(&mut cfg, &origins));
    problems.extend(validate::validate(&cfg, &origins));
    // File by file (in the order first met), each in line order: the order an
    // editor walks them.
    let mut sources: Vec<String> = Vec::new();
    for p in &problems {
        if !sources.contains(&p.source) {
            sources.push(p.source.clone());
        }
    }
    problems.sort_by_key(|p| (sources.iter().position(|s| *s == p.source), p.line));
    Loaded {
        config: cfg,
        problems,
    }
}

/// A commented sample covering every key (`prpr config example`).
pub const EXAMPLE: &str = include_str!("example.toml");
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        p
    }

    fn messages(loaded: &Loaded) -> Vec<String> {
        loaded.problems.iter().map(ToString::to_string).collect()
    }

    /// `[store] min_free` as people write sizes; a forgotten unit is told.
    #[test]
    fn min_free_reads_sizes_from_the_file_and_the_environment() {
        for (text, bytes) in [
            ("50MB", 50_000_000),
            ("1.5GB", 1_500_000_000),
            ("512KiB", 524_288),
            (" 64 mib ", 67_108_864),
            ("1000", 1000),
            ("0", 0),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
        for bad in ["", "MB", "-5MB", "5 parsecs", "1e400GB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "prpr.toml", "[store]\nmin_free = \"2GB\"\n");
        let loaded = load(Some(&p), &[("X", "")]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.config.store.min_free, 2_000_000_000);
        let loaded = load(Some(&p), &[("PRPR_STORE_MIN_FREE", "100MB")]);
        assert_eq!(loaded.config.store.min_free, 100_000_000);
        let p = write(&dir, "bare.toml", "[store]\nmin_free = 50\n");
        let loaded = load(Some(&p), &[("X", "")]);
        assert!(
            messages(&loaded)
                .iter()
                .any(|m| m.contains("write a unit (\"50MB\")")),
            "{:?}",
            messages(&loaded)
        );
        let p = write(&dir, "bad.toml", "[store]\nmin_free = \"lots\"\n");
        assert!(!load(Some(&p), &[("X", "")]).problems.is_empty());
    }

    #[test]
    fn team_expansion_settings_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "prpr.toml",
            "[notify]\nteam_expand_max = 3\nteam_debounce = \"2s\"\n[github]\nteam_cache = \"10m\"\n",
        );
        let loaded = load(Some(&p), &[("X", "")]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let c = &loaded.config;
        assert_eq!(c.notify.team_expand_max, 3);
        assert_eq!(c.notify.team_debounce, Duration::from_secs(2));
        assert_eq!(c.github.team_cache, Duration::from_secs(600));
        assert!(!c.notify.expand_teams, "only `prpr serve` turns it on");
        let d = Config::default();
        assert_eq!(
            (
                d.notify.team_expand_max,
                d.notify.team_debounce,
                d.github.team_cache
            ),
            (8, Duration::from_secs(5), Duration::from_secs(3600))
        );
        let p = write(
            &dir,
            "bad.toml",
            "[notify]\nteam_expand_max = 500\nteam_debounce = \"1h\"\n",
        );
        let m = messages(&load(Some(&p), &[("X", "")]));
        assert!(
            m.iter()
                .any(|m| m.contains("notify.team_expand_max must be at most 100")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m.contains("notify.team_debounce must be at most 10m")),
            "{m:?}"
        );
    }

    #[test]
    fn example_is_valid_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, "MEMBERS.md", " * @alice: U0ALICE01\n");
        let p = write(&dir, "prpr.toml", EXAMPLE);
        let loaded = load(Some(&p), &[("X", "")]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(
            loaded.config.notify.members.get("octocat"),
            Some(&SlackUser::Id("U012AB3CD".into()))
        );
        assert_eq!(
            loaded.config.notify.members.get("alice"),
            Some(&SlackUser::Id("U0ALICE01".into()))
        );
        // Every setting of the structs is shown in the example.
        for setting in file::settings() {
            let key = setting.rsplit('.').next().unwrap_or(&setting);
            assert!(
                EXAMPLE.contains(&format!("{key} = ")),
                "{setting} is missing from example.toml"
            );
        }
    }

    #[test]
    fn the_example_shows_threads_filters_and_routes() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, "MEMBERS.md", "");
        let p = write(&dir, "prpr.toml", EXAMPLE);
        let n = load(Some(&p), &[("X", "")]).config.notify;
        assert!(n.threads);
        assert_eq!(n.broadcast, vec![Kind::Merged]);
        assert_eq!(n.filters.exclude_title.len(), 3);
        assert!(n.filters.exclude_title[2].matches("[Draft] x"));
        assert_eq!(n.routes.len(), 2);
        assert_eq!(n.routes[0].channel, "C0BACKEND1");
        assert_eq!(n.routes[1].kinds, vec![Kind::Opened, Kind::Merged]);
    }

    #[test]
    fn threads_and_routes_settings_are_read_and_checked_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "[slack]\nupdate_interval = \"5s\"\n[notify]\nthreads = false\nbroadcast = [\"merged\", \"review_submited\"]\nreactions = true\nexclude_labels = [\"x\"]\n[filter]\ndrafts = true\n[[routes]]\nchannel = \"C0X0000001\"\nkinds = [\"opend\"]\n",
        );
        let loaded = load(Some(&p), &[("X", "")]);
        let src = p.display().to_string();
        assert_eq!(
            messages(&loaded),
            vec![
                format!(
                    "{src}:5: error: notify.broadcast: unknown kind \"review_submited\"; did you mean \"review_submitted\"?"
                ),
                format!(
                    "{src}:6: warning: notify.reactions has no effect while notify.threads = false (there is no root card to react on)"
                ),
                format!(
                    "{src}:7: error: unknown key `exclude_labels` in [notify]; `exclude_labels` belongs in [filters] (or a [[routes]] entry)"
                ),
                format!("{src}:8: error: unknown key `filter`; did you mean `filters`?"),
                format!(
                    "{src}:12: error: [[routes]] #1: kinds: unknown kind \"opend\"; did you mean \"opened\"?"
                ),
            ]
        );
        let c = loaded.config;
        assert_eq!(c.slack.update_interval, Duration::from_secs(5));
        assert!(!c.notify.threads);
        assert!(
            c.notify.broadcast.is_empty(),
            "a bad list keeps its default"
        );
        assert!(c.notify.reactions);
        assert!(c.notify.routes.is_empty());
        // Defaults.
        let c = load(None, &[("X", "")]).config;
        assert!(c.notify.threads && !c.notify.reactions && c.notify.broadcast.is_empty());
        assert_eq!(c.slack.update_interval, Duration::from_secs(2));
        assert_eq!(c.notify.filters, Filters::default());
        assert!(!c.notify.filters.drafts);
    }

    #[test]
    fn the_file_sets_each_section() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "[server]\nport = 4000\n[github]\nallow_sha1_signatures = true\n[slack]\nburst = 7\n[notify]\ndelivery = \"both\"\nchannel = \"#general\"\nbots = [\"Renovate-Bot\"]\n[database]\nurl = \"sqlite://a.db\"\n[log]\nformat = \"pretty\"\n",
        );
        let loaded = load(Some(&p), &[("X", "")]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let c = loaded.config;
        assert_eq!(c.server.port, 4000);
        assert!(c.github.allow_sha1_signatures);
        assert_eq!(c.slack.burst, 7);
        assert_eq!(c.slack.max_attempts, 12, "unset keys keep their default");
        assert_eq!(c.notify.delivery, DeliveryMode::Both);
        assert_eq!(c.notify.bots, vec!["renovate-bot".to_string()]);
        assert_eq!(c.database.url, "sqlite://a.db");
        assert_eq!(c.log.format, LogFormat::Pretty);
    }

    #[test]
    fn env_overrides_file_and_accepts_prpr_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "[server]\nport = 4000\n[database]\nurl = \"sqlite://a.db\"\n",
        );
        let loaded = load(
            Some(&p),
            &[
                ("PORT", "5000"),
                ("SECRET_TOKEN", "s3cret"),
                ("GITHUB_HOST", "ghe.example.com"),
                ("GITHUB_ACCESS_TOKEN", "t"),
            ],
        );
        assert!(!loaded.has_errors(), "{:?}", loaded.problems);
        let c = loaded.config;
        assert_eq!(c.server.port, 5000);
        assert_eq!(
            c.github.webhook_secret.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        assert_eq!(c.github.api_url, "https://ghe.example.com/api/v3");
        assert_eq!(c.database.url, "sqlite://a.db");
        assert!(c.github.token.is_some());
    }

    #[test]
    fn env_table_prefers_the_variable_then_its_aliases_in_order() {
        // The new name wins over the old one.
        let c = load(
            None,
            &[
                ("GITHUB_HOST", "ghe.example.com"),
                ("GITHUB_API_URL", "https://api.example.com"),
                ("MENTION_COMMENT_ROOM", "C0OLDROOM1"),
                ("PRPR_CHANNEL", "C0NEWROOM1"),
            ],
        )
        .config;
        assert_eq!(c.github.api_url, "https://api.example.com");
        assert_eq!(c.notify.channel.as_deref(), Some("C0NEWROOM1"));
        // The old names alone still work.
        let c = load(
            None,
            &[
                ("MERGED_ROOM", "#merged"),
                ("MENTION_COMMENT_ROOM", "C0OLDROOM1"),
                ("MENTION_REVIEWERS_TO_DM", "false"),
            ],
        )
        .config;
        assert_eq!(c.notify.merged_channel.as_deref(), Some("#merged"));
        assert_eq!(c.notify.delivery, DeliveryMode::Channel);
        assert_eq!(
            load(None, &[("MENTION_REVIEWERS_TO_DM", "true")])
                .config
                .notify
                .delivery,
            DeliveryMode::Dm
        );
        // A bad value is named by the variable the user set.
        let loaded = load(None, &[("MERGED_ROOM", "merged room")]);
        assert_eq!(
            messages(&loaded),
            vec![
                "environment: error: MERGED_ROOM=\"merged room\" is not a Slack channel ID (C…) or #name"
                    .to_string()
            ]
        );
        // Every row names a setting the file has.
        let settings = file::settings();
        for o in OVERRIDES {
            assert!(settings.contains(&o.setting.to_string()), "{}", o.setting);
        }
    }

    #[test]
    fn reminders_resync_from_the_environment_is_checked() {
        let off = load(None, &[("PRPR_REMINDERS_RESYNC", "off")]);
        assert!(messages(&off).is_empty(), "{:?}", messages(&off));
        assert_eq!(off.config.reminders.resync, Duration::ZERO);
        let hourly = load(None, &[("PRPR_REMINDERS_RESYNC", "1h")]);
        assert_eq!(hourly.config.reminders.resync, Duration::from_secs(3600));
        let fast = load(None, &[("PRPR_REMINDERS_RESYNC", "30s")]);
        assert!(
            messages(&fast)
                .iter()
                .any(|m| m.contains("reminders.resync is 30 s: at least 1m")),
            "{:?}",
            messages(&fast)
        );
        let bad = load(None, &[("PRPR_REMINDERS_RESYNC", "often")]);
        assert!(
            messages(&bad)
                .iter()
                .any(|m| m.contains("PRPR_REMINDERS_RESYNC=\"often\" is not a duration")),
            "{:?}",
            messages(&bad)
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "[notify]\nchannel = \"general chat\"\n\n[members]\nalice = \"U0ALICE01\"\nbob = \"bob\"\n\n[teams]\n\"acme\" = { usergroup = \"S0TEAM001\" }\n",
        );
        let loaded = load(Some(&p), &[("PORT", "http")]);
        let msgs = messages(&loaded);
        let src = p.display().to_string();
        assert!(msgs.contains(&format!("{src}:2: error: notify.channel = \"general chat\" is not a Slack channel ID (C…) or #name")), "{msgs:#?}");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with(&format!("{src}:6: error: [members] bob = \"bob\""))),
            "{msgs:#?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with(&format!("{src}:9: error: [teams] key \"acme\""))),
            "{msgs:#?}"
        );
        assert!(
            msgs.contains(
                &"environment: error: PORT=\"http\" is not a port number (0-65535)".to_string()
            ),
            "{msgs:#?}"
        );
        // The good member still loads.
        assert!(loaded.config.notify.members.get("alice").is_some());
    }

    #[test]
    fn a_misspelt_key_does_not_hide_the_problems_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "[notify]\ndelivry = \"channel\"\nexcerpt_lines = \"three\"\n\n[slack]\nburst = 2\nretry_max_ms = 0\n[members]\nbob = \"bob\"\n[sever]\nport = 1\n",
        );
        let loaded = load(Some(&p), &[("X", "")]);
        let src = p.display().to_string();
        let msgs = messages(&loaded);
        assert_eq!(
            msgs,
            vec![
                format!(
                    "{src}:2: error: unknown key `delivry` in [notify]; did you mean `delivery`?"
                ),
                format!(
                    "{src}:3: error: notify.excerpt_lines: invalid type: string \"three\", expected usize"
                ),
                format!(
                    "{src}:7: error: slack.retry_initial_ms must be at least 1 and at most slack.retry_max_ms"
                ),
                format!(
                    "{src}:9: error: [members] bob = \"bob\": expected a Slack user ID like \"U012AB3CD\""
                ),
                format!("{src}:10: error: unknown key `sever`; did you mean `server`?"),
            ],
        );
        // What was right still loads.
        assert_eq!(loaded.config.slack.burst, 2);
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "c.toml", "[slack]\nbot_tokn = \"x\"\n");
        let loaded = load(Some(&p), &[("X", "")]);
        let first = &loaded.problems[0];
        assert_eq!(first.line, Some(2));
        assert!(first.is_error);
        assert_eq!(
            first.message,
            "unknown key `bot_tokn` in [slack]; did you mean `bot_token`?"
        );
    }

    #[test]
    fn a_key_far_from_any_is_shown_the_choices() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "c.toml", "[log]\nverbosity = 3\n");
        let loaded = load(Some(&p), &[("X", "")]);
        assert_eq!(
            loaded.problems[0].message,
            "unknown key `verbosity` in [log]; expected one of: format"
        );
    }

    #[test]
    fn a_known_key_in_the_wrong_place_is_sent_home() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "port = 4000\n[slack]\nchannel = \"C0123456789\"\n[[server]]\nport = 1\n",
        );
        let msgs = messages(&load(Some(&p), &[("X", "")]));
        let src = p.display().to_string();
        assert_eq!(
            msgs,
            vec![
                format!("{src}:1: error: unknown key `port`; `port` belongs in [server]"),
                format!(
                    "{src}:3: error: unknown key `channel` in [slack]; `channel` belongs in [notify]"
                ),
                format!("{src}:4: error: `server` must be a table ([server])"),
            ]
        );
    }

    #[test]
    fn a_syntax_error_is_reported_with_its_line_and_the_rest_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "[slack]\nburst = 2\nbot_token = \"xoxb-\n[notify]\ndelivry = \"dm\"\n",
        );
        let loaded = load(Some(&p), &[("X", "")]);
        let src = p.display().to_string();
        let msgs = messages(&loaded);
        assert!(
            msgs.iter()
                .any(|m| m.starts_with(&format!("{src}:3: error: "))),
            "{msgs:#?}"
        );
        assert!(
            msgs.contains(&format!(
                "{src}:5: error: unknown key `delivry` in [notify]; did you mean `delivery`?"
            )),
            "{msgs:#?}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let loaded = load(
            None,
            &[
                ("SLACK_BOT_TOKEN", "xoxb-very-secret"),
                ("GITHUB_WEBHOOK_SECRET", "hush"),
                ("DATABASE_URL", "mysql://u:pa55word@db/prpr"),
            ],
        );
        let dump = format!("{:?} {}", loaded.config, messages(&loaded).join("\n"));
        assert!(
            !dump.contains("very-secret") && !dump.contains("hush") && !dump.contains("pa55word"),
            "{dump}"
        );
        assert!(
            dump.contains("environment: error: DATABASE_URL must start with sqlite:"),
            "{dump}"
        );
        // A secret of the wrong type in the file is not echoed either.
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "[github]\nwebhook_secret = 123456789\ntoken = [\"ghp_s3cr3t\"]\n[slack]\nbot_token = \"not-a-bot-token\"\n",
        );
        let msgs = messages(&load(Some(&p), &[("X", "")])).join("\n");
        let src = p.display().to_string();
        assert!(
            !msgs.contains("123456789") && !msgs.contains("s3cr3t") && !msgs.contains("not-a-bot"),
            "{msgs}"
        );
        assert!(
            msgs.contains(&format!(
                "{src}:2: error: github.webhook_secret: must be a string"
            )),
            "{msgs}"
        );
        assert!(
            msgs.contains(&format!(
                "{src}:5: warning: slack.bot_token does not start with xoxb-"
            )),
            "{msgs}"
        );
    }

    #[test]
    fn a_blank_secret_is_no_secret_and_is_reported_where_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.toml",
            "[github]\nwebhook_secret = \"\"\n[slack]\nbot_token = \" \"\n",
        );
        let loaded = load(Some(&p), &[("X", "")]);
        assert!(loaded.config.github.webhook_secret.is_none());
        assert!(loaded.config.slack.bot_token.is_none());
        let src = p.display().to_string();
        assert_eq!(
            messages(&loaded),
            vec![
                format!(
                    "{src}:2: warning: github.webhook_secret is empty: treated as not set; signatures cannot be checked, so `prpr serve` refuses to start unless given --insecure-accept-unsigned"
                ),
                format!(
                    "{src}:4: warning: slack.bot_token is empty: treated as not set; messages are printed to stdout instead of sent"
                ),
            ]
        );
        // Whitespace from the environment too, named by its variable.
        let loaded = load(None, &[("SECRET_TOKEN", " \t ")]);
        assert!(loaded.config.github.webhook_secret.is_none());
        assert_eq!(
            messages(&loaded),
            vec!["environment: warning: SECRET_TOKEN is empty: treated as not set; signatures cannot be checked, so `prpr serve` refuses to start unless given --insecure-accept-unsigned".to_string()]
        );
    }

    #[test]
    fn github_app_and_catch_up_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let key = write(
            &dir,
            "app.pem",
            "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n",
        );
        let key = key.display().to_string();
        let loaded = load(
            None,
            &[
                ("GITHUB_APP_ID", "4242"),
                ("GITHUB_APP_PRIVATE_KEY_FILE", key.as_str()),
                ("PRPR_WEBHOOK_URL", "https://prpr.example.com/webhook"),
                ("PRPR_CATCH_UP_INTERVAL", "5m"),
            ],
        );
        assert!(loaded.problems.is_empty(), "{:?}", messages(&loaded));
        let gh = &loaded.config.github;
        assert_eq!(gh.app_id, Some(4242));
        assert!(
            gh.app_private_key
                .as_ref()
                .is_some_and(|k| k.expose().contains("abc"))
        );
        assert_eq!(gh.catch_up_interval, Duration::from_secs(300));

        let msgs = messages(&load(
            None,
            &[
                ("GITHUB_APP_ID", "my-app"),
                ("PRPR_CATCH_UP_INTERVAL", "often"),
                ("PRPR_WEBHOOK_URL", "prpr.example.com"),
            ],
        ));
        assert!(msgs.contains(&"environment: error: GITHUB_APP_ID=\"my-app\" is not a GitHub App ID (a number, shown on the App's settings page)".to_string()), "{msgs:#?}");
        assert!(
            msgs.iter().any(|m| m.starts_with(
                "environment: error: PRPR_CATCH_UP_INTERVAL=\"often\" is not a duration"
            )),
            "{msgs:#?}"
        );
        assert!(
            msgs.contains(
                &"environment: error: PRPR_WEBHOOK_URL=\"prpr.example.com\" is not an http(s) URL"
                    .to_string()
            ),
            "{msgs:#?}"
        );

        // An ID without a key, a key that is no PEM (not echoed), a missing file.
        let msgs = messages(&load(None, &[("GITHUB_APP_ID", "1")]));
        assert!(
            msgs.iter()
                .any(|m| m.contains("GITHUB_APP_ID is set but the App's private key is not")),
            "{msgs:#?}"
        );
        let msgs = messages(&load(
            None,
            &[
                ("GITHUB_APP_ID", "1"),
                ("GITHUB_APP_PRIVATE_KEY", "hunter2-secret"),
            ],
        ));
        assert!(
            msgs.iter()
                .any(|m| m.contains("GITHUB_APP_PRIVATE_KEY is not a PEM")),
            "{msgs:#?}"
        );
        assert!(!msgs.join("\n").contains("hunter2"), "{msgs:#?}");
        let msgs = messages(&load(
            None,
            &[
                ("GITHUB_APP_ID", "1"),
                ("GITHUB_APP_PRIVATE_KEY_FILE", "/nonexistent/app.pem"),
            ],
        ));
        assert!(
            msgs.iter().any(|m| m.starts_with(
                "environment: error: github.app_private_key_file: cannot read /nonexistent/app.pem"
            )),
            "{msgs:#?}"
        );

        let p = write(
            &dir,
            "c.toml",
            "[github]\nrepos = [\"acme\", \"acme/app\"]\norgs = [\"a/b\"]\ntoken = \"ghp_x\"\n",
        );
        let msgs = messages(&load(Some(&p), &[("X", "")]));
        assert!(
            msgs.iter()
                .any(|m| m.ends_with("github.repos: \"acme\" is not OWNER/REPO")),
            "{msgs:#?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.ends_with("github.orgs: \"a/b\" is not an organization login")),
            "{msgs:#?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("catch-up needs github.webhook_url")),
            "{msgs:#?}"
        );
    }

    #[test]
    fn channel_delivery_needs_a_channel() {
        let loaded = load(None, &[("PRPR_DELIVERY", "channel")]);
        assert!(
            loaded
                .errors()
                .any(|p| p.message.contains("needs notify.channel"))
        );
    }
}
