//! Who is who: GitHub login → Slack user, GitHub team → Slack user group/channel.
//!
//! Logins are case-insensitive on GitHub, so keys are lower-cased. The map comes
//! from the config file's `[members]` table and/or a `MEMBERS.md` in the Ruby
//! prpr's format. Unlike prpr — where one bad line silently emptied the whole
//! map — a line that does not parse is reported with its number and every other
//! line still loads.

use std::collections::HashMap;
use std::path::Path;

use toml::Spanned;
use toml::de::DeValue;

use super::Problem;
use super::file::value_into;
use super::validate::is_channel;

/// How a member is known on Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackUser {
    /// A user ID (`U…`/`W…`): real `<@U…>` mentions and DMs work.
    Id(String),
    /// A display name from a prpr-era `MEMBERS.md` (` * @alice: @alice_slack`).
    /// Slack no longer resolves `@name` in API messages, so such a member is
    /// shown as plain text and cannot be sent a DM until mapped to an ID.
    Handle(String),
}

impl SlackUser {
    /// Parses a value: `U012AB3CD`/`W…` is an ID, `@name` or `name` a handle.
    pub fn parse(value: &str) -> Option<SlackUser> {
        let v = value.trim();
        let v = v
            .strip_prefix('<')
            .and_then(|v| v.strip_suffix('>'))
            .unwrap_or(v);
        let bare = v.strip_prefix('@').unwrap_or(v);
        if bare.is_empty() || bare.chars().any(char::is_whitespace) {
            return None;
        }
        if is_user_id(bare) {
            Some(SlackUser::Id(bare.to_string()))
        } else {
            Some(SlackUser::Handle(bare.to_string()))
        }
    }
}

/// `U`/`W` followed by upper-case letters and digits, as Slack issues them.
pub fn is_user_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('U' | 'W'))
        && s.len() >= 7
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `C`/`G`/`D` (channels) or a user ID (a DM): what `chat.postMessage` takes.
pub fn is_conversation_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('C' | 'G' | 'D' | 'U' | 'W'))
        && s.len() >= 7
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `S…`: a Slack user group ID, mentioned as `<!subteam^S…>`.
pub fn is_usergroup_id(s: &str) -> bool {
    s.starts_with('S')
        && s.len() >= 7
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// GitHub login → Slack user.
#[derive(Debug, Clone, Default)]
pub struct Members {
    map: HashMap<String, SlackUser>,
}

impl Members {
    pub fn insert(&mut self, login: &str, user: SlackUser) {
        self.map.insert(normalize_login(login), user);
    }

    pub fn get(&self, login: &str) -> Option<&SlackUser> {
        self.map.get(&normalize_login(login))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The login mapped to Slack user `id` (for the `/prpr` command, which
    /// knows only the Slack user). The first in login order when several are.
    pub fn login_of(&self, id: &str) -> Option<&str> {
        self.map
            .iter()
            .filter(|(_, u)| matches!(u, SlackUser::Id(i) if i == id))
            .map(|(l, _)| l.as_str())
            .min()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Replaces Slack names by IDs using `directory` (lower-cased Slack name →
    /// user ID). Returns the names that could not be resolved, which stay
    /// plain-text names.
    pub fn resolve_handles(&mut self, directory: &HashMap<String, String>) -> Vec<String> {
        let mut unresolved = Vec::new();
        for user in self.map.values_mut() {
            if let SlackUser::Handle(handle) = user {
                match directory.get(&handle.to_lowercase()) {
                    Some(id) => *user = SlackUser::Id(id.clone()),
                    None => unresolved.push(handle.clone()),
                }
            }
        }
        unresolved.sort();
        unresolved
    }

    /// How many members are known only by a Slack name (no ID).
    pub fn handles(&self) -> usize {
        self.map
            .values()
            .filter(|u| matches!(u, SlackUser::Handle(_)))
            .count()
    }
}

fn normalize_login(login: &str) -> String {
    login.trim().trim_start_matches('@').to_ascii_lowercase()
}

/// Where a GitHub team's review requests and mentions go.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamTarget {
    /// Slack user group ID (`S…`), mentioned as `<!subteam^S…>`.
    #[serde(default)]
    pub usergroup: Option<String>,
    /// Channel ID for the team's notices.
    #[serde(default)]
    pub channel: Option<String>,
}

/// `org/slug` (case-insensitive) → where to tell that team.
#[derive(Debug, Clone, Default)]
pub struct Teams {
    map: HashMap<String, TeamTarget>,
}

impl Teams {
    pub fn insert(&mut self, key: &str, target: TeamTarget) {
        self.map.insert(key.to_ascii_lowercase(), target);
    }

    pub fn get(&self, org: &str, slug: &str) -> Option<&TeamTarget> {
        self.map.get(&format!("{org}/{slug}").to_ascii_lowercase())
    }
}

/// The config file's `[members]`: login → Slack user ID. A bad entry is
/// reported with its line and the others still load.
pub(crate) fn read_members<'de>(
    entries: impl Iterator<Item = (String, Spanned<DeValue<'de>>, usize)>,
    source: &str,
    members: &mut Members,
    problems: &mut Vec<Problem>,
) {
    for (login, value, line) in entries {
        let error = |message: String| Problem::error(source, Some(line), message);
        if !is_github_login(&login) {
            problems.push(error(format!(
                "[members] `{login}` is not a valid GitHub login"
            )));
            continue;
        }
        let value = match value_into::<String>(value) {
            Ok(v) => v,
            Err(e) => {
                problems.push(error(format!("[members] {login}: {}", e.message().trim())));
                continue;
            }
        };
        match SlackUser::parse(&value) {
            Some(SlackUser::Id(id)) => members.insert(&login, SlackUser::Id(id)),
            _ => problems.push(error(format!(
                "[members] {login} = {value:?}: expected a Slack user ID like \"U012AB3CD\""
            ))),
        }
    }
}

/// The config file's `[teams]`: `"org/slug" = { usergroup, channel }`.
pub(crate) fn read_teams<'de>(
    entries: impl Iterator<Item = (String, Spanned<DeValue<'de>>, usize)>,
    source: &str,
    teams: &mut Teams,
    problems: &mut Vec<Problem>,
) {
    for (key, value, line) in entries {
        let error = |message: String| Problem::error(source, Some(line), message);
        if key.split('/').count() != 2 || key.starts_with('/') || key.ends_with('/') {
            problems.push(error(format!(
                "[teams] key {key:?} must be \"org/team-slug\""
            )));
            continue;
        }
        let t = match value_into::<TeamTarget>(value) {
            Ok(t) => t,
            Err(e) => {
                problems.push(error(format!("[teams] {key}: {}", e.message().trim())));
                continue;
            }
        };
        if let Some(g) = &t.usergroup
            && !is_usergroup_id(g)
        {
            problems.push(error(format!(
                "[teams] {key}: usergroup {g:?} is not a Slack user group ID (S…)"
            )));
            continue;
        }
        if let Some(c) = &t.channel
            && !is_channel(c)
        {
            problems.push(error(format!(
                "[teams] {key}: channel {c:?} is not a Slack channel ID (C…) or #name"
            )));
            continue;
        }
        if t.usergroup.is_none() && t.channel.is_none() {
            problems.push(Problem::warning(
                source,
                Some(line),
                format!(
                    "[teams] {key} has neither usergroup nor channel; the default channel is used"
                ),
            ));
        }
        teams.insert(&key, t);
    }
}

/// Reads a `MEMBERS.md` into `members`; the config file's `[members]` wins.
/// `from`/`from_line` say where the file was named, for "cannot read".
pub(crate) fn load_file(
    members: &mut Members,
    path: &Path,
    from: &str,
    from_line: Option<usize>,
    problems: &mut Vec<Problem>,
) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::error(
                from,
                from_line,
                format!("members file {}: {e}", path.display()),
            ));
            return;
        }
    };
    let source = path.display().to_string();
    let (entries, errors) = parse_members_md(&text);
    for e in errors {
        problems.push(Problem::warning(
            &source,
            Some(e.line),
            format!("{}; line skipped", e.message),
        ));
    }
    for (login, user) in entries {
        if members.get(&login).is_none() {
            members.insert(&login, user);
        }
    }
}

/// One line of a `MEMBERS.md` that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Reads prpr's `MEMBERS.md` format: list items ` * @github: @slack` or
/// ` * @github: U012AB3CD` (`-` bullets and no leading space accepted too).
/// Headings, blank lines and prose are skipped; a list item that looks like a
/// mapping but is malformed is an error for that line only.
pub fn parse_members_md(text: &str) -> (Vec<(String, SlackUser)>, Vec<LineError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let Some(item) = line.strip_prefix("* ").or_else(|| line.strip_prefix("- ")) else {
            continue;
        };
        let item = item.trim();
        if !item.starts_with('@') {
            // A bullet of prose, not a mapping.
            continue;
        }
        let err = |message: String| LineError {
            line: i + 1,
            message,
        };
        let Some((login, value)) = item.split_once(':') else {
            errors.push(err(format!(
                "expected `* @github_login: @slack_name_or_ID`, got `{item}`"
            )));
            continue;
        };
        let login = login.trim().trim_start_matches('@');
        if !is_github_login(login) {
            errors.push(err(format!("`{login}` is not a valid GitHub login")));
            continue;
        }
        match SlackUser::parse(value) {
            Some(user) => entries.push((login.to_string(), user)),
            None => errors.push(err(format!("no Slack user after `@{login}:`"))),
        }
    }
    (entries, errors)
}

/// GitHub logins: 1–39 ASCII letters, digits or single hyphens, no hyphen at
/// either end. Bot logins carry a `[bot]` suffix.
pub fn is_github_login(login: &str) -> bool {
    let core = login.strip_suffix("[bot]").unwrap_or(login);
    !core.is_empty()
        && core.len() <= 39
        && !core.starts_with('-')
        && !core.ends_with('-')
        && !core.contains("--")
        && core
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prpr_format_and_reports_bad_lines_without_dropping_good_ones() {
        let md = "# Members\n\n * @alice: @alice_slack\n * @Bob: U012AB3CD\n * @carol\n- @dave: <@W0DAVE123>\n * not a mapping\n * @-bad-: U1234567\n";
        let (entries, errors) = parse_members_md(md);
        assert_eq!(
            entries,
            vec![
                ("alice".to_string(), SlackUser::Handle("alice_slack".into())),
                ("Bob".to_string(), SlackUser::Id("U012AB3CD".into())),
                ("dave".to_string(), SlackUser::Id("W0DAVE123".into())),
            ]
        );
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].line, 5);
        assert!(
            errors[0].message.contains("@carol"),
            "{}",
            errors[0].message
        );
        assert_eq!(errors[1].line, 8);
    }

    #[test]
    fn lookups_ignore_case_and_at_sign() {
        let mut m = Members::default();
        m.insert("OctoCat", SlackUser::Id("U012AB3CD".into()));
        assert_eq!(m.get("@octocat"), Some(&SlackUser::Id("U012AB3CD".into())));
        assert_eq!(m.get("OCTOCAT"), Some(&SlackUser::Id("U012AB3CD".into())));
        assert_eq!(m.get("other"), None);
    }

    #[test]
    fn handles_resolve_to_ids_case_insensitively() {
        let mut m = Members::default();
        m.insert("alice", SlackUser::Handle("Alice_Slack".into()));
        m.insert("bob", SlackUser::Handle("bob_gone".into()));
        m.insert("carol", SlackUser::Id("U0CAROL01".into()));
        let dir: HashMap<String, String> =
            [("alice_slack".to_string(), "U0ALICE01".to_string())].into();
        assert_eq!(m.resolve_handles(&dir), vec!["bob_gone".to_string()]);
        assert_eq!(m.get("alice"), Some(&SlackUser::Id("U0ALICE01".into())));
        assert_eq!(m.get("bob"), Some(&SlackUser::Handle("bob_gone".into())));
        assert_eq!(m.handles(), 1);
    }

    #[test]
    fn id_shapes() {
        assert!(is_user_id("U012AB3CD"));
        assert!(!is_user_id("u012ab3cd"));
        assert!(!is_user_id("C012AB3CD"));
        assert!(is_conversation_id("C012AB3CD"));
        assert!(is_usergroup_id("S012AB3CD"));
    }
}
