//! Checks of values, wherever they came from.
//!
//! A value is checked once it is final (file, then environment), and a problem
//! is reported where that final value was written: the file and line, or the
//! environment variable. Checks of one setting name it as the user wrote it
//! (`notify.channel = "…"` in the file, `PRPR_CHANNEL="…"` in the environment).

use std::collections::HashMap;

use super::{Config, DeliveryMode, Problem, members};

/// Where a setting's final value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    File { path: String, line: usize },
    Env { var: String },
}

/// Setting (`slack.burst`, as in the file) → where its value came from.
/// Settings left at their default have none.
#[derive(Debug, Default)]
pub(crate) struct Origins(HashMap<String, Origin>);

impl Origins {
    pub(crate) fn set(&mut self, setting: &str, origin: Origin) {
        self.0.insert(setting.to_string(), origin);
    }

    /// The problem's source and line for `setting`.
    pub(crate) fn location(&self, setting: &str) -> (String, Option<usize>) {
        match self.0.get(setting) {
            Some(Origin::File { path, line }) => (path.clone(), Some(*line)),
            Some(Origin::Env { .. }) => ("environment".into(), None),
            None => ("config".into(), None),
        }
    }

    /// The setting as the user wrote it: `VAR` or `section.key`.
    fn name(&self, setting: &str) -> String {
        match self.0.get(setting) {
            Some(Origin::Env { var }) => var.clone(),
            _ => setting.to_string(),
        }
    }

    /// `section.key = "value"` or `VAR="value"`.
    fn assignment(&self, setting: &str, value: &str) -> String {
        match self.0.get(setting) {
            Some(Origin::Env { var }) => format!("{var}={value:?}"),
            _ => format!("{setting} = {value:?}"),
        }
    }

    fn error(&self, setting: &str, message: String) -> Problem {
        let (source, line) = self.location(setting);
        Problem::error(&source, line, message)
    }

    fn warning(&self, setting: &str, message: String) -> Problem {
        let (source, line) = self.location(setting);
        Problem::warning(&source, line, message)
    }
}

/// Channel IDs (`C…`, `G…`) or `#name` (chat.postMessage accepts both).
pub(crate) fn is_channel(s: &str) -> bool {
    members::is_conversation_id(s)
        || (s.starts_with('#') && s.len() > 1 && !s.contains(char::is_whitespace))
}

/// A secret that is empty or only whitespace is no secret: left in place, an
/// empty `webhook_secret` would make every delivery "signed" with an empty key
/// and turn signature checking off without a word. So such a value is removed
/// (the setting behaves as unset, and `serve` then refuses to start without
/// `--insecure-accept-unsigned`) and reported where it was written.
pub(crate) fn blank_secrets(cfg: &mut Config, at: &Origins) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (setting, value, consequence) in [
        (
            "github.webhook_secret",
            &mut cfg.github.webhook_secret,
            "signatures cannot be checked, so `prpr serve` refuses to start unless given --insecure-accept-unsigned",
        ),
        ("github.token", &mut cfg.github.token, "no token is used"),
        (
            "github.app_private_key",
            &mut cfg.github.app_private_key,
            "GitHub App mode is off",
        ),
        (
            "slack.bot_token",
            &mut cfg.slack.bot_token,
            "messages are printed to stdout instead of sent",
        ),
        (
            "slack.signing_secret",
            &mut cfg.slack.signing_secret,
            "the /prpr slash command is off (POST /slack/commands answers 404)",
        ),
    ] {
        if value.as_ref().is_some_and(|s| s.expose().trim().is_empty()) {
            *value = None;
            problems.push(at.warning(
                setting,
                format!(
                    "{} is empty: treated as not set; {consequence}",
                    at.name(setting)
                ),
            ));
        }
    }
    problems
}

/// Every problem of the final config.
pub(crate) fn validate(cfg: &Config, at: &Origins) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (setting, value) in [
        ("notify.channel", &cfg.notify.channel),
        ("notify.merged_channel", &cfg.notify.merged_channel),
        ("ops.channel", &cfg.ops.channel),
    ] {
        if let Some(c) = value
            && !is_channel(c)
        {
            problems.push(at.error(
                setting,
                format!(
                    "{} is not a Slack channel ID (C…) or #name",
                    at.assignment(setting, c)
                ),
            ));
        }
    }
    for p in &cfg.reminders.personal {
        if !matches!(
            cfg.notify.members.get(&p.login),
            Some(super::SlackUser::Id(_))
        ) {
            problems.push(Problem::warning(
                "config",
                None,
                format!(
                    "[[reminders.personal]] {}: no Slack user ID in [members], so no reminder can be sent",
                    p.login
                ),
            ));
        }
    }
    if cfg.notify.delivery != DeliveryMode::Dm && cfg.notify.channel.is_none() {
        problems.push(Problem::error(
            "config",
            None,
            "notify.delivery = \"channel\"/\"both\" needs notify.channel (or PRPR_CHANNEL)".into(),
        ));
    }
    // Threads off: replies do not exist, nor does a root card to react on.
    // The settings are harmless, but the file says something prpr will not do.
    if !cfg.notify.threads {
        if !cfg.notify.broadcast.is_empty() {
            problems.push(at.warning(
                "notify.broadcast",
                "notify.broadcast has no effect while notify.threads = false (every notice is already a channel message)".into(),
            ));
        }
        if cfg.notify.reactions {
            problems.push(at.warning(
                "notify.reactions",
                "notify.reactions has no effect while notify.threads = false (there is no root card to react on)".into(),
            ));
        }
    }
    if cfg.ops.loop_threshold == 0 {
        problems.push(at.error(
            "ops.loop_threshold",
            "ops.loop_threshold must be at least 1".into(),
        ));
    }
    if cfg.ops.loop_window.is_zero() {
        problems.push(at.error(
            "ops.loop_window",
            "ops.loop_window must be longer than 0 s".into(),
        ));
    }
    if let Some(token) = &cfg.ops.events_token
        && token.expose().trim().len() < 16
    {
        problems.push(at.error(
            "ops.events_token",
            "ops.events_token (PRPR_AWS_EVENTS_TOKEN) is too short to guess-proof the endpoint: use 32 or more random characters (the value is not shown)".into(),
        ));
    }
    if cfg.server.max_connections == Some(0) {
        problems.push(at.error(
            "server.max_connections",
            "server.max_connections must be at least 1".into(),
        ));
    }
    if cfg.server.max_concurrent_requests == 0 {
        problems.push(at.error(
            "server.max_concurrent_requests",
            "server.max_concurrent_requests must be at least 1".into(),
        ));
    }
    if cfg.notify.max_mentions_per_comment == 0 {
        problems.push(at.error(
            "notify.max_mentions_per_comment",
            "notify.max_mentions_per_comment must be at least 1".into(),
        ));
    }
    if cfg.notify.team_debounce > std::time::Duration::from_secs(600) {
        problems.push(at.error(
            "notify.team_debounce",
            "notify.team_debounce must be at most 10m (GitHub's team auto-assignment takes seconds)"
                .into(),
        ));
    }
    if cfg.notify.team_expand_max > 100 {
        problems.push(at.error(
            "notify.team_expand_max",
            "notify.team_expand_max must be at most 100 (a team bigger than that is better told in its channel)".into(),
        ));
    }
    if cfg.store.unhealthy_after_secs == 0 {
        problems.push(at.error(
            "store.unhealthy_after_secs",
            "store.unhealthy_after_secs must be at least 1".into(),
        ));
    }
    // A bare number is bytes: `min_free = 50` almost surely meant 50 MB, and
    // would keep the low-disk warning silent until the disk is full.
    if (1..1_000_000).contains(&cfg.store.min_free) {
        problems.push(at.warning(
            "store.min_free",
            format!(
                "store.min_free is {} bytes, less than 1 MB: write a unit (\"{}MB\"), or 0 to turn the check off",
                cfg.store.min_free, cfg.store.min_free
            ),
        ));
    }
    let slack = &cfg.slack;
    if !(slack.per_channel_per_sec > 0.0 && slack.per_channel_per_sec.is_finite()) {
        problems.push(at.error(
            "slack.per_channel_per_sec",
            "slack.per_channel_per_sec must be a positive number".into(),
        ));
    }
    if slack.max_attempts == 0 {
        problems.push(at.error(
            "slack.max_attempts",
            "slack.max_attempts must be at least 1".into(),
        ));
    }
    if slack.retry_initial_ms == 0 || slack.retry_max_ms < slack.retry_initial_ms {
        let setting = if slack.retry_initial_ms == 0 {
            "slack.retry_initial_ms"
        } else {
            "slack.retry_max_ms"
        };
        problems.push(at.error(
            setting,
            "slack.retry_initial_ms must be at least 1 and at most slack.retry_max_ms".into(),
        ));
    }
    if slack.timeout_secs == 0 {
        problems.push(at.error(
            "slack.timeout_secs",
            "slack.timeout_secs must be at least 1".into(),
        ));
    }
    for (setting, url) in [
        ("slack.api_url", &slack.api_url),
        ("github.api_url", &cfg.github.api_url),
    ] {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            problems.push(at.error(
                setting,
                format!("{} is not an http(s) URL", at.assignment(setting, url)),
            ));
        }
    }
    let gh = &cfg.github;
    match (gh.app_id, &gh.app_private_key) {
        (Some(_), None) => problems.push(at.error(
            "github.app_id",
            format!(
                "{} is set but the App's private key is not: set GITHUB_APP_PRIVATE_KEY (the PEM) or GITHUB_APP_PRIVATE_KEY_FILE",
                at.name("github.app_id")
            ),
        )),
        (None, Some(_)) => problems.push(at.error(
            "github.app_private_key",
            "the GitHub App's private key is set but github.app_id (GITHUB_APP_ID) is not".into(),
        )),
        (Some(_), Some(key)) if !key.expose().contains("-----BEGIN") => {
            problems.push(at.error(
                "github.app_private_key",
                format!(
                    "{} is not a PEM (it should start with -----BEGIN RSA PRIVATE KEY-----; the value is not shown)",
                    at.name("github.app_private_key")
                ),
            ));
        }
        _ => {}
    }
    for repo in &gh.repos {
        let ok = repo.split_once('/').is_some_and(|(o, n)| {
            !o.is_empty()
                && !n.is_empty()
                && !n.contains('/')
                && !repo.contains(char::is_whitespace)
        });
        if !ok {
            problems.push(at.error(
                "github.repos",
                format!("github.repos: {repo:?} is not OWNER/REPO"),
            ));
        }
    }
    for org in &gh.orgs {
        if org.is_empty() || org.contains(['/', ' ']) {
            problems.push(at.error(
                "github.orgs",
                format!("github.orgs: {org:?} is not an organization login"),
            ));
        }
    }
    if let Some(url) = &gh.webhook_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        problems.push(at.error(
            "github.webhook_url",
            format!(
                "{} is not an http(s) URL",
                at.assignment("github.webhook_url", url)
            ),
        ));
    }
    if gh.catch_up_interval < std::time::Duration::from_secs(1) {
        problems.push(at.error(
            "github.catch_up_interval",
            "github.catch_up_interval must be at least 1 s".into(),
        ));
    }
    let resync = cfg.reminders.resync;
    if !resync.is_zero() && resync < std::time::Duration::from_secs(60) {
        problems.push(at.error(
            "reminders.resync",
            format!(
                "reminders.resync is {} s: at least 1m (each pass reads every open pull request), or \"off\"",
                resync.as_secs_f64()
            ),
        ));
    }
    let credentials = gh.token.is_some() || (gh.app_id.is_some() && gh.app_private_key.is_some());
    if credentials
        && gh.webhook_url.is_none()
        && (!gh.repos.is_empty() || !gh.orgs.is_empty() || gh.app_id.is_some())
    {
        problems.push(Problem::warning(
            "config",
            None,
            "catch-up needs github.webhook_url (PRPR_WEBHOOK_URL), prpr's public webhook URL, to know which hooks are prpr's: it is off".into(),
        ));
    }
    let db = &cfg.database.url;
    if !(db.starts_with("sqlite:")
        || db.starts_with("postgres://")
        || db.starts_with("postgresql://"))
    {
        // The URL is not shown: it may carry a password.
        problems.push(at.error(
            "database.url",
            format!(
                "{} must start with sqlite:, postgres:// or postgresql://",
                at.name("database.url")
            ),
        ));
    }
    if let Some(t) = &slack.bot_token
        && !t.expose().starts_with("xoxb-")
    {
        problems.push(at.warning(
            "slack.bot_token",
            format!(
                "{} does not start with xoxb- (a bot token is expected)",
                at.name("slack.bot_token")
            ),
        ));
    }
    let handles = cfg.notify.members.handles();
    if handles > 0 {
        problems.push(Problem::warning(
            "config",
            None,
            format!("{handles} member(s) are mapped to a Slack name, not a user ID: at start prpr looks them up with users.list (scope users:read); any it cannot find are shown as plain text and get no DM. Map them to IDs (U…) to be sure"),
        ));
    }
    problems
}
