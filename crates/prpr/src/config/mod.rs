//! Settings: a TOML file overlaid by environment variables.
//!
//! The file carries what a team edits (who is who, where notices go); the
//! environment carries what a deployment injects (port, secrets, database URL),
//! as Fargate task definitions do with `Environment` and `Secrets`. Names of the
//! Ruby prpr (`SECRET_TOKEN`, `GITHUB_ACCESS_TOKEN`, `GITHUB_HOST`,
//! `MENTION_COMMENT_MEMBERS`, …) are accepted so a migration is a redeploy.
//!
//! Loading never stops at the first problem: every problem is collected with its
//! file and line, so `prpr config check` can show them all at once.

pub mod members;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use members::{Members, SlackUser, TeamTarget, Teams};

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

/// How person-addressed notices (review requests, review results, mentions) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
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

/// What the rules need to know.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub delivery: Delivery,
    /// Default channel: channel delivery, team fallbacks, people without a Slack ID.
    pub channel: Option<String>,
    /// Where merge notices go; none when unset.
    pub merged_channel: Option<String>,
    /// Skip events sent by bots (`type: Bot` or a `[bot]` login).
    pub ignore_bots: bool,
    /// Extra logins treated as bots (lower-cased).
    pub bots: Vec<String>,
    /// Lines of a review or comment body quoted in the message.
    pub excerpt_lines: usize,
    pub members: Members,
    pub teams: Teams,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            delivery: Delivery::Dm,
            channel: None,
            merged_channel: None,
            ignore_bots: true,
            bots: Vec::new(),
            excerpt_lines: 3,
            members: Members::default(),
            teams: Teams::default(),
        }
    }
}

#[derive(Debug, Clone)]
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
        }
    }
}

#[derive(Debug, Clone)]
pub struct GithubConfig {
    pub webhook_secret: Option<Secret>,
    /// Accept legacy `X-Hub-Signature` (SHA-1) when SHA-256 is absent.
    pub allow_sha1: bool,
    pub api_url: String,
    pub token: Option<Secret>,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            webhook_secret: None,
            allow_sha1: false,
            api_url: "https://api.github.com".into(),
            token: None,
        }
    }
}

/// Everything prpr runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub github: GithubConfig,
    pub slack: SlackConfig,
    pub notify: NotifyConfig,
    pub database_url: String,
    pub log_format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 3000,
            github: GithubConfig::default(),
            slack: SlackConfig::default(),
            notify: NotifyConfig::default(),
            database_url: "sqlite://prpr.db".into(),
            log_format: LogFormat::Json,
        }
    }
}

/// One thing wrong with the configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A file path, or `environment`.
    pub source: String,
    pub line: Option<usize>,
    pub message: String,
    /// Errors stop `serve`; warnings are logged and the rest still loads.
    pub is_error: bool,
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

// ---- the file's shape -------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    members_file: Option<Spanned<String>>,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    github: FileGithub,
    #[serde(default)]
    slack: FileSlack,
    #[serde(default)]
    notify: FileNotify,
    #[serde(default)]
    database: FileDatabase,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    members: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    teams: BTreeMap<String, Spanned<TeamTarget>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGithub {
    webhook_secret: Option<String>,
    allow_sha1_signatures: Option<bool>,
    api_url: Option<String>,
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSlack {
    bot_token: Option<String>,
    api_url: Option<String>,
    timeout_secs: Option<u64>,
    max_attempts: Option<u32>,
    per_channel_per_sec: Option<f64>,
    burst: Option<u32>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotify {
    delivery: Option<Delivery>,
    channel: Option<Spanned<String>>,
    merged_channel: Option<Spanned<String>>,
    ignore_bots: Option<bool>,
    bots: Option<Vec<String>>,
    excerpt_lines: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<LogFormat>,
}

/// Reads environment variables; injectable so tests need not touch the process.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment. Empty values count as unset.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty())
    }
}

/// Loads `path` (if any), overlays `env`, resolves the members file, validates.
pub fn load(path: Option<&Path>, env: &dyn Env) -> Loaded {
    let mut problems = Vec::new();
    let mut cfg = Config::default();
    let path: Option<PathBuf> = path
        .map(Path::to_path_buf)
        .or_else(|| env.get("PRPR_CONFIG").map(PathBuf::from));
    let mut members_file: Option<(PathBuf, String, Option<usize>)> = None;

    if let Some(path) = &path {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Err(e) => problems.push(error(
                &source,
                None,
                format!("cannot read config file: {e}"),
            )),
            Ok(text) => match toml::from_str::<FileConfig>(&text) {
                Err(e) => problems.push(error(
                    &source,
                    e.span().map(|s| line_of(&text, s.start)),
                    e.message().to_string(),
                )),
                Ok(file) => {
                    let base = path.parent().unwrap_or(Path::new("."));
                    if let Some(mf) = &file.members_file {
                        members_file = Some((
                            base.join(mf.get_ref()),
                            source.clone(),
                            Some(line_of(&text, mf.span().start)),
                        ));
                    }
                    apply_file(&mut cfg, file, &text, &source, &mut problems);
                }
            },
        }
    }

    apply_env(&mut cfg, env, &mut problems, &mut members_file);

    if let Some((mf, from, line)) = members_file {
        load_members_file(&mut cfg.notify.members, &mf, &from, line, &mut problems);
    }

    validate(&cfg, &mut problems);
    Loaded {
        config: cfg,
        problems,
    }
}

fn error(source: &str, line: Option<usize>, message: String) -> Problem {
    Problem {
        source: source.to_string(),
        line,
        message,
        is_error: true,
    }
}

fn warning(source: &str, line: Option<usize>, message: String) -> Problem {
    Problem {
        is_error: false,
        ..error(source, line, message)
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

fn apply_file(
    cfg: &mut Config,
    file: FileConfig,
    text: &str,
    source: &str,
    problems: &mut Vec<Problem>,
) {
    if let Some(port) = file.server.port {
        cfg.port = port;
    }
    let g = file.github;
    if let Some(s) = g.webhook_secret {
        cfg.github.webhook_secret = Some(Secret::new(s));
    }
    if let Some(b) = g.allow_sha1_signatures {
        cfg.github.allow_sha1 = b;
    }
    if let Some(u) = g.api_url {
        cfg.github.api_url = u;
    }
    if let Some(t) = g.token {
        cfg.github.token = Some(Secret::new(t));
    }
    let s = file.slack;
    if let Some(t) = s.bot_token {
        cfg.slack.bot_token = Some(Secret::new(t));
    }
    if let Some(u) = s.api_url {
        cfg.slack.api_url = u;
    }
    if let Some(v) = s.timeout_secs {
        cfg.slack.timeout_secs = v;
    }
    if let Some(v) = s.max_attempts {
        cfg.slack.max_attempts = v;
    }
    if let Some(v) = s.per_channel_per_sec {
        cfg.slack.per_channel_per_sec = v;
    }
    if let Some(v) = s.burst {
        cfg.slack.burst = v;
    }
    if let Some(v) = s.retry_initial_ms {
        cfg.slack.retry_initial_ms = v;
    }
    if let Some(v) = s.retry_max_ms {
        cfg.slack.retry_max_ms = v;
    }
    let n = file.notify;
    if let Some(d) = n.delivery {
        cfg.notify.delivery = d;
    }
    for (slot, value, key) in [
        (&mut cfg.notify.channel, n.channel, "notify.channel"),
        (
            &mut cfg.notify.merged_channel,
            n.merged_channel,
            "notify.merged_channel",
        ),
    ] {
        if let Some(v) = value {
            let line = line_of(text, v.span().start);
            if !is_channel(v.get_ref()) {
                problems.push(error(
                    source,
                    Some(line),
                    format!(
                        "{key} = {:?} is not a Slack channel ID (C…) or #name",
                        v.get_ref()
                    ),
                ));
            }
            *slot = Some(v.into_inner());
        }
    }
    if let Some(b) = n.ignore_bots {
        cfg.notify.ignore_bots = b;
    }
    if let Some(b) = n.bots {
        cfg.notify.bots = b.into_iter().map(|l| l.to_ascii_lowercase()).collect();
    }
    if let Some(v) = n.excerpt_lines {
        cfg.notify.excerpt_lines = v;
    }
    if let Some(u) = file.database.url {
        cfg.database_url = u;
    }
    if let Some(f) = file.log.format {
        cfg.log_format = f;
    }
    for (login, value) in file.members {
        let line = line_of(text, value.span().start);
        if !members::is_github_login(&login) {
            problems.push(error(
                source,
                Some(line),
                format!("[members] `{login}` is not a valid GitHub login"),
            ));
            continue;
        }
        match SlackUser::parse(value.get_ref()) {
            Some(SlackUser::Id(id)) => cfg.notify.members.insert(&login, SlackUser::Id(id)),
            _ => problems.push(error(
                source,
                Some(line),
                format!(
                    "[members] {login} = {:?}: expected a Slack user ID like \"U012AB3CD\"",
                    value.get_ref()
                ),
            )),
        }
    }
    for (key, target) in file.teams {
        let line = line_of(text, target.span().start);
        let t = target.into_inner();
        if key.split('/').count() != 2 || key.starts_with('/') || key.ends_with('/') {
            problems.push(error(
                source,
                Some(line),
                format!("[teams] key {key:?} must be \"org/team-slug\""),
            ));
            continue;
        }
        if let Some(g) = &t.usergroup
            && !members::is_usergroup_id(g)
        {
            problems.push(error(
                source,
                Some(line),
                format!("[teams] {key}: usergroup {g:?} is not a Slack user group ID (S…)"),
            ));
            continue;
        }
        if let Some(c) = &t.channel
            && !is_channel(c)
        {
            problems.push(error(
                source,
                Some(line),
                format!("[teams] {key}: channel {c:?} is not a Slack channel ID (C…) or #name"),
            ));
            continue;
        }
        if t.usergroup.is_none() && t.channel.is_none() {
            problems.push(warning(
                source,
                Some(line),
                format!(
                    "[teams] {key} has neither usergroup nor channel; the default channel is used"
                ),
            ));
        }
        cfg.notify.teams.insert(&key, t);
    }
}

/// Channel IDs (`C…`, `G…`) or `#name` (chat.postMessage accepts both).
fn is_channel(s: &str) -> bool {
    members::is_conversation_id(s)
        || (s.starts_with('#') && s.len() > 1 && !s.contains(char::is_whitespace))
}

fn apply_env(
    cfg: &mut Config,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
    members_file: &mut Option<(PathBuf, String, Option<usize>)>,
) {
    const SRC: &str = "environment";
    fn first_of<'n>(env: &dyn Env, names: &[&'n str]) -> Option<(&'n str, String)> {
        names.iter().find_map(|n| env.get(n).map(|v| (*n, v)))
    }
    let first = |names: &[&'static str]| first_of(env, names);
    if let Some(p) = env.get("PORT") {
        match p.parse::<u16>() {
            Ok(port) => cfg.port = port,
            Err(_) => problems.push(error(
                SRC,
                None,
                format!("PORT={p:?} is not a port number (0-65535)"),
            )),
        }
    }
    if let Some((_, s)) = first(&["GITHUB_WEBHOOK_SECRET", "SECRET_TOKEN"]) {
        cfg.github.webhook_secret = Some(Secret::new(s));
    }
    if let Some(v) = env.get("GITHUB_ALLOW_SHA1_SIGNATURES") {
        match v.as_str() {
            "true" | "1" => cfg.github.allow_sha1 = true,
            "false" | "0" => cfg.github.allow_sha1 = false,
            _ => problems.push(error(
                SRC,
                None,
                format!("GITHUB_ALLOW_SHA1_SIGNATURES={v:?}: expected true or false"),
            )),
        }
    }
    if let Some(t) = env.get("SLACK_BOT_TOKEN") {
        cfg.slack.bot_token = Some(Secret::new(t));
    }
    if let Some(u) = env.get("SLACK_API_URL") {
        cfg.slack.api_url = u;
    }
    if let Some(u) = env.get("GITHUB_API_URL") {
        cfg.github.api_url = u;
    } else if let Some(h) = env.get("GITHUB_HOST") {
        cfg.github.api_url = format!("https://{}/api/v3", h.trim_end_matches('/'));
    }
    if let Some((_, t)) = first(&["GITHUB_TOKEN", "GITHUB_ACCESS_TOKEN"]) {
        cfg.github.token = Some(Secret::new(t));
    }
    if let Some(u) = env.get("DATABASE_URL") {
        cfg.database_url = u;
    }
    if let Some(f) = env.get("LOG_FORMAT") {
        match f.as_str() {
            "json" => cfg.log_format = LogFormat::Json,
            "pretty" => cfg.log_format = LogFormat::Pretty,
            _ => problems.push(error(
                SRC,
                None,
                format!("LOG_FORMAT={f:?}: expected json or pretty"),
            )),
        }
    }
    if let Some((name, c)) = first(&["PRPR_CHANNEL", "MENTION_COMMENT_ROOM"]) {
        if is_channel(&c) {
            cfg.notify.channel = Some(c);
        } else {
            problems.push(error(
                SRC,
                None,
                format!("{name}={c:?} is not a Slack channel ID (C…) or #name"),
            ));
        }
    }
    if let Some((name, c)) = first(&["PRPR_MERGED_CHANNEL", "MERGED_ROOM"]) {
        if is_channel(&c) {
            cfg.notify.merged_channel = Some(c);
        } else {
            problems.push(error(
                SRC,
                None,
                format!("{name}={c:?} is not a Slack channel ID (C…) or #name"),
            ));
        }
    }
    if let Some(d) = env.get("PRPR_DELIVERY") {
        match d.as_str() {
            "dm" => cfg.notify.delivery = Delivery::Dm,
            "channel" => cfg.notify.delivery = Delivery::Channel,
            "both" => cfg.notify.delivery = Delivery::Both,
            _ => problems.push(error(
                SRC,
                None,
                format!("PRPR_DELIVERY={d:?}: expected dm, channel or both"),
            )),
        }
    } else if let Some(v) = env.get("MENTION_REVIEWERS_TO_DM") {
        cfg.notify.delivery = if v == "true" {
            Delivery::Dm
        } else {
            Delivery::Channel
        };
    }
    if let Some((_, f)) = first(&["PRPR_MEMBERS_FILE", "MENTION_COMMENT_MEMBERS"]) {
        *members_file = Some((PathBuf::from(f), SRC.to_string(), None));
    }
}

fn load_members_file(
    members: &mut Members,
    path: &Path,
    from: &str,
    from_line: Option<usize>,
    problems: &mut Vec<Problem>,
) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(error(
                from,
                from_line,
                format!("members file {}: {e}", path.display()),
            ));
            return;
        }
    };
    let source = path.display().to_string();
    let (entries, errors) = members::parse_members_md(&text);
    for e in errors {
        problems.push(warning(
            &source,
            Some(e.line),
            format!("{}; line skipped", e.message),
        ));
    }
    for (login, user) in entries {
        // The config file's [members] table wins over MEMBERS.md.
        if members.get(&login).is_none() {
            members.insert(&login, user);
        }
    }
}

fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    const SRC: &str = "config";
    if cfg.notify.delivery != Delivery::Dm && cfg.notify.channel.is_none() {
        problems.push(error(
            SRC,
            None,
            "notify.delivery = \"channel\"/\"both\" needs notify.channel (or PRPR_CHANNEL)".into(),
        ));
    }
    if !(cfg.slack.per_channel_per_sec > 0.0 && cfg.slack.per_channel_per_sec.is_finite()) {
        problems.push(error(
            SRC,
            None,
            "slack.per_channel_per_sec must be a positive number".into(),
        ));
    }
    if cfg.slack.max_attempts == 0 {
        problems.push(error(
            SRC,
            None,
            "slack.max_attempts must be at least 1".into(),
        ));
    }
    if cfg.slack.retry_initial_ms == 0 || cfg.slack.retry_max_ms < cfg.slack.retry_initial_ms {
        problems.push(error(
            SRC,
            None,
            "slack.retry_initial_ms must be at least 1 and at most slack.retry_max_ms".into(),
        ));
    }
    if cfg.slack.timeout_secs == 0 {
        problems.push(error(
            SRC,
            None,
            "slack.timeout_secs must be at least 1".into(),
        ));
    }
    for (name, url) in [
        ("slack.api_url", &cfg.slack.api_url),
        ("github.api_url", &cfg.github.api_url),
    ] {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            problems.push(error(
                SRC,
                None,
                format!("{name} = {url:?} is not an http(s) URL"),
            ));
        }
    }
    if !(cfg.database_url.starts_with("sqlite:")
        || cfg.database_url.starts_with("postgres://")
        || cfg.database_url.starts_with("postgresql://"))
    {
        problems.push(error(
            SRC,
            None,
            "database URL must start with sqlite:, postgres:// or postgresql://".into(),
        ));
    }
    if let Some(t) = &cfg.slack.bot_token
        && !t.expose().starts_with("xoxb-")
    {
        problems.push(warning(
            SRC,
            None,
            "the Slack token does not start with xoxb- (a bot token is expected)".into(),
        ));
    }
    let handles = cfg.notify.members.handles();
    if handles > 0 {
        problems.push(warning(
            SRC,
            None,
            format!("{handles} member(s) are mapped to a Slack name, not a user ID: at start prpr looks them up with users.list (scope users:read); any it cannot find are shown as plain text and get no DM. Map them to IDs (U…) to be sure"),
        ));
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

    #[test]
    fn example_is_valid_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, "MEMBERS.md", " * @alice: U0ALICE01\n");
        let p = write(&dir, "prpr.toml", EXAMPLE);
        let loaded = load(Some(&p), &[("X", "")]);
        assert!(!loaded.has_errors(), "{:?}", loaded.problems);
        assert_eq!(
            loaded.config.notify.members.get("octocat"),
            Some(&SlackUser::Id("U012AB3CD".into()))
        );
        assert_eq!(
            loaded.config.notify.members.get("alice"),
            Some(&SlackUser::Id("U0ALICE01".into()))
        );
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
        assert_eq!(c.port, 5000);
        assert_eq!(
            c.github.webhook_secret.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        assert_eq!(c.github.api_url, "https://ghe.example.com/api/v3");
        assert_eq!(c.database_url, "sqlite://a.db");
        assert!(c.github.token.is_some());
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
        let msgs: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
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
    fn unknown_key_is_an_error_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "c.toml", "[slack]\nbot_tokn = \"x\"\n");
        let loaded = load(Some(&p), &[("X", "")]);
        let first = &loaded.problems[0];
        assert_eq!(first.line, Some(2));
        assert!(
            first.message.contains("unknown field `bot_tokn`"),
            "{}",
            first.message
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
            ],
        );
        let dump = format!("{:?}", loaded.config);
        assert!(
            !dump.contains("very-secret") && !dump.contains("hush"),
            "{dump}"
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
