//! Environment overrides: one table, one row per setting.
//!
//! A row names the variable, the names the Ruby prpr used for it (accepted so
//! a migration is a redeploy; the first set name wins), the setting it
//! overrides and how a value is applied. `--help` lists the same table, so the
//! documentation cannot drift from what is read.

use std::path::PathBuf;

use super::validate::{Origin, Origins};
use super::{Config, DeliveryMode, LogFormat, Problem, Secret};

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

/// One environment variable and the setting it overrides.
pub struct Override {
    pub var: &'static str,
    /// Older names, tried in order when `var` is unset.
    pub aliases: &'static [&'static str],
    /// The setting as the file names it (`notify.channel`).
    pub setting: &'static str,
    /// Its value is never repeated in an error.
    pub secret: bool,
    /// Applies the value of the variable `name` (`var` or an alias). `Err` is
    /// the end of the sentence `NAME="value"…`.
    pub set: fn(cfg: &mut Config, name: &str, value: String) -> Result<(), &'static str>,
}

/// Every variable prpr reads besides `PRPR_CONFIG` (the file's path).
pub const OVERRIDES: &[Override] = &[
    Override {
        var: "PORT",
        aliases: &[],
        setting: "server.port",
        secret: false,
        set: |c, _, v| {
            c.server.port = v.parse().map_err(|_| " is not a port number (0-65535)")?;
            Ok(())
        },
    },
    Override {
        var: "GITHUB_WEBHOOK_SECRET",
        aliases: &["SECRET_TOKEN"],
        setting: "github.webhook_secret",
        secret: true,
        set: |c, _, v| {
            c.github.webhook_secret = Some(Secret::new(v));
            Ok(())
        },
    },
    Override {
        var: "GITHUB_ALLOW_SHA1_SIGNATURES",
        aliases: &[],
        setting: "github.allow_sha1_signatures",
        secret: false,
        set: |c, _, v| {
            c.github.allow_sha1_signatures = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(": expected true or false"),
            };
            Ok(())
        },
    },
    Override {
        var: "GITHUB_API_URL",
        // GitHub Enterprise: the API is at https://HOST/api/v3.
        aliases: &["GITHUB_HOST"],
        setting: "github.api_url",
        secret: false,
        set: |c, name, v| {
            c.github.api_url = if name == "GITHUB_HOST" {
                format!("https://{}/api/v3", v.trim_end_matches('/'))
            } else {
                v
            };
            Ok(())
        },
    },
    Override {
        var: "GITHUB_TOKEN",
        aliases: &["GITHUB_ACCESS_TOKEN"],
        setting: "github.token",
        secret: true,
        set: |c, _, v| {
            c.github.token = Some(Secret::new(v));
            Ok(())
        },
    },
    Override {
        var: "GITHUB_APP_ID",
        aliases: &[],
        setting: "github.app_id",
        secret: false,
        set: |c, _, v| {
            c.github.app_id = Some(v.trim().parse().map_err(
                |_| " is not a GitHub App ID (a number, shown on the App's settings page)",
            )?);
            Ok(())
        },
    },
    Override {
        var: "GITHUB_APP_PRIVATE_KEY",
        aliases: &[],
        setting: "github.app_private_key",
        secret: true,
        set: |c, _, v| {
            c.github.app_private_key = Some(Secret::new(v));
            Ok(())
        },
    },
    Override {
        var: "GITHUB_APP_PRIVATE_KEY_FILE",
        aliases: &[],
        setting: "github.app_private_key_file",
        secret: false,
        set: |c, _, v| {
            c.github.app_private_key_file = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Override {
        var: "PRPR_WEBHOOK_URL",
        aliases: &[],
        setting: "github.webhook_url",
        secret: false,
        set: |c, _, v| {
            c.github.webhook_url = Some(v);
            Ok(())
        },
    },
    Override {
        var: "PRPR_CATCH_UP_INTERVAL",
        aliases: &[],
        setting: "github.catch_up_interval",
        secret: false,
        set: |c, _, v| {
            c.github.catch_up_interval = super::parse_duration(&v)
                .map_err(|_| " is not a duration (e.g. \"10m\", \"90s\", \"1h\")")?;
            Ok(())
        },
    },
    Override {
        var: "PRPR_REMINDERS_RESYNC",
        aliases: &[],
        setting: "reminders.resync",
        secret: false,
        set: |c, _, v| {
            c.reminders.resync = if v.trim().eq_ignore_ascii_case("off") {
                std::time::Duration::ZERO
            } else {
                super::parse_duration(&v)
                    .map_err(|_| " is not a duration (e.g. \"6h\", \"30m\") or \"off\"")?
            };
            Ok(())
        },
    },
    Override {
        var: "SLACK_BOT_TOKEN",
        aliases: &[],
        setting: "slack.bot_token",
        secret: true,
        set: |c, _, v| {
            c.slack.bot_token = Some(Secret::new(v));
            Ok(())
        },
    },
    Override {
        var: "SLACK_SIGNING_SECRET",
        aliases: &[],
        setting: "slack.signing_secret",
        secret: true,
        set: |c, _, v| {
            c.slack.signing_secret = Some(Secret::new(v));
            Ok(())
        },
    },
    Override {
        var: "SLACK_API_URL",
        aliases: &[],
        setting: "slack.api_url",
        secret: false,
        set: |c, _, v| {
            c.slack.api_url = v;
            Ok(())
        },
    },
    Override {
        var: "PRPR_DELIVERY",
        // prpr's boolean: true → dm, anything else → channel.
        aliases: &["MENTION_REVIEWERS_TO_DM"],
        setting: "notify.delivery",
        secret: false,
        set: |c, name, v| {
            c.notify.delivery = match (name, v.as_str()) {
                ("MENTION_REVIEWERS_TO_DM", "true") => DeliveryMode::Dm,
                ("MENTION_REVIEWERS_TO_DM", _) => DeliveryMode::Channel,
                (_, "dm") => DeliveryMode::Dm,
                (_, "channel") => DeliveryMode::Channel,
                (_, "both") => DeliveryMode::Both,
                _ => return Err(": expected dm, channel or both"),
            };
            Ok(())
        },
    },
    Override {
        var: "PRPR_CHANNEL",
        aliases: &["MENTION_COMMENT_ROOM"],
        setting: "notify.channel",
        secret: false,
        set: |c, _, v| {
            c.notify.channel = Some(v);
            Ok(())
        },
    },
    Override {
        var: "PRPR_OPS_CHANNEL",
        aliases: &[],
        setting: "ops.channel",
        secret: false,
        set: |c, _, v| {
            c.ops.channel = Some(v);
            Ok(())
        },
    },
    Override {
        var: "PRPR_AWS_EVENTS_TOKEN",
        aliases: &[],
        setting: "ops.events_token",
        secret: true,
        set: |c, _, v| {
            c.ops.events_token = Some(Secret::new(v));
            Ok(())
        },
    },
    Override {
        var: "PRPR_MERGED_CHANNEL",
        aliases: &["MERGED_ROOM"],
        setting: "notify.merged_channel",
        secret: false,
        set: |c, _, v| {
            c.notify.merged_channel = Some(v);
            Ok(())
        },
    },
    Override {
        var: "PRPR_MEMBERS_FILE",
        // Relative to the working directory, as prpr read it.
        aliases: &["MENTION_COMMENT_MEMBERS"],
        setting: "members_file",
        secret: false,
        set: |c, _, v| {
            c.members_file = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Override {
        var: "DATABASE_URL",
        aliases: &[],
        setting: "database.url",
        // It may carry a password.
        secret: true,
        set: |c, _, v| {
            c.database.url = v;
            Ok(())
        },
    },
    Override {
        var: "PRPR_STORE_MIN_FREE",
        aliases: &[],
        setting: "store.min_free",
        secret: false,
        set: |c, _, v| {
            c.store.min_free = crate::config::parse_bytes(&v)
                .map_err(|_| " is not a size (e.g. 50MB, 1GB or bytes)")?;
            Ok(())
        },
    },
    Override {
        var: "LOG_FORMAT",
        aliases: &[],
        setting: "log.format",
        secret: false,
        set: |c, _, v| {
            c.log.format = match v.as_str() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => return Err(": expected json or pretty"),
            };
            Ok(())
        },
    },
];

/// Applies every override that is set, recording where each value came from.
pub(crate) fn apply(
    cfg: &mut Config,
    env: &dyn Env,
    at: &mut Origins,
    problems: &mut Vec<Problem>,
) {
    for o in OVERRIDES {
        let Some((name, value)) = std::iter::once(&o.var)
            .chain(o.aliases)
            .find_map(|n| env.get(n).map(|v| (*n, v)))
        else {
            continue;
        };
        let shown = if o.secret {
            "(not shown)".to_string()
        } else {
            format!("{value:?}")
        };
        match (o.set)(cfg, name, value) {
            Ok(()) => at.set(
                o.setting,
                Origin::Env {
                    var: name.to_string(),
                },
            ),
            Err(why) => problems.push(Problem::error(
                "environment",
                None,
                format!("{name}={shown}{why}"),
            )),
        }
    }
}

/// The variables, for `--help`: each with the setting it overrides (see
/// `prpr config example` for what each means).
pub fn help() -> String {
    let rows: Vec<(String, String)> = std::iter::once((
        "PRPR_CONFIG".to_string(),
        "the config file, when --config is not given".to_string(),
    ))
    .chain(OVERRIDES.iter().map(|o| {
        let names = std::iter::once(o.var)
            .chain(o.aliases.iter().copied())
            .collect::<Vec<_>>()
            .join(" or ");
        (names, o.setting.to_string())
    }))
    .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut s = String::from(
        "Environment (overrides the config file's setting shown; empty counts as unset;\n`prpr config example` explains each setting):\n",
    );
    for (names, setting) in rows {
        s.push_str(&format!("  {names:<width$}  {setting}\n"));
    }
    s.push_str(&format!(
        "  {:<width$}  log filter (default info)\n",
        "RUST_LOG"
    ));
    s
}
