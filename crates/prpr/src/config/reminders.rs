//! `[reminders]`, `[[reminders.schedules]]` and `[[reminders.personal]]`:
//! channel digests and personal nudges about pull requests waiting for review.
//!
//! Read by hand from the spanned TOML, like `[[routes]]` (and with the same
//! [`Reader`]): a bad time zone, day or glob is reported with its own line
//! while every other schedule is still checked, so `prpr config check` shows
//! every problem at once. Time zones are resolved here, once, with `jiff`'s
//! bundled database: a zone name that a host's `/usr/share/zoneinfo` lacks
//! (slim container images have none) cannot make a schedule fail later.
//!
//! Personal reminders are a table of their own rather than `[members.alice]
//! remind = …`: `[members]` maps a login to a Slack ID string (`alice =
//! "U…"`), and turning those values into tables would break every existing
//! file. `[[reminders.personal]]` names the login instead.

use std::time::Duration;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Problem;
use super::routes::{Glob, Reader, TitleTerm, article};
use super::validate::is_channel;

/// A wall-clock time of day, `HH:MM` (24 h), in a schedule's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    pub hour: i8,
    pub minute: i8,
}

impl LocalTime {
    /// `"09:30"`; `"9:30"` is accepted too.
    pub fn parse(s: &str) -> Result<LocalTime, String> {
        let bad = || format!("{s:?} is not a time of day (\"HH:MM\", 24-hour, e.g. \"09:30\")");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(bad());
        }
        let hour: i8 = h.parse().map_err(|_| bad())?;
        let minute: i8 = m.parse().map_err(|_| bad())?;
        if !(0..24).contains(&hour) || !(0..60).contains(&minute) {
            return Err(bad());
        }
        Ok(LocalTime { hour, minute })
    }

    pub fn civil(self) -> jiff::civil::Time {
        jiff::civil::Time::constant(self.hour, self.minute, 0, 0)
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// `"mon"`, `"monday"` (any case).
pub fn parse_weekday(s: &str) -> Result<Weekday, String> {
    let lower = s.trim().to_ascii_lowercase();
    let day = match lower.get(..3).unwrap_or("") {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => {
            return Err(format!(
                "{s:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"
            ));
        }
    };
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    if lower.len() > 3 && !full.contains(&lower.as_str()) {
        return Err(format!(
            "{s:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"
        ));
    }
    Ok(day)
}

/// A named IANA time zone, resolved once.
#[derive(Debug, Clone)]
pub struct Zone {
    pub name: String,
    pub tz: TimeZone,
}

impl Zone {
    pub fn parse(name: &str) -> Result<Zone, String> {
        TimeZone::get(name.trim())
            .map(|tz| Zone {
                name: name.trim().to_string(),
                tz,
            })
            .map_err(|_| {
                format!("unknown time zone {name:?} (an IANA name like \"Europe/Berlin\")")
            })
    }

    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }
}

/// The days a schedule fires on by default: the working week.
pub const WEEKDAYS: [Weekday; 5] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
];

/// `[reminders]`.
#[derive(Debug, Clone)]
pub struct RemindersConfig {
    /// A slot missed while prpr was down is still sent if it is at most this
    /// late; older ones are skipped (with a log line): a 09:30 digest at
    /// 15:00 would only be noise.
    pub grace: Duration,
    /// How often the open-PR picture is backfilled from GitHub's REST API
    /// (it also is at start); zero (`"off"` or `0`) turns the periodic
    /// backfill off.
    pub resync: Duration,
    pub schedules: Vec<Schedule>,
    pub personal: Vec<Personal>,
}

impl Default for RemindersConfig {
    fn default() -> Self {
        RemindersConfig {
            grace: Duration::from_secs(30 * 60),
            resync: Duration::from_secs(6 * 3600),
            schedules: Vec::new(),
            personal: Vec::new(),
        }
    }
}

impl RemindersConfig {
    pub fn schedule(&self, name: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.name == name)
    }
}

/// One `[[reminders.schedules]]`: a digest to a channel at set times. Every
/// filter that is set must hold; an empty list is no condition.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub channel: String,
    pub days: Vec<Weekday>,
    pub times: Vec<LocalTime>,
    pub timezone: Zone,
    /// Repositories (`owner/repo` globs); empty: all.
    pub repos: Vec<Glob>,
    /// Lower-cased `org/slug`: only PRs whose requested teams include one.
    pub teams: Vec<String>,
    pub ignore_drafts: bool,
    /// Only PRs with a pending review request (or, with `remind_authors`,
    /// changes to address).
    pub require_review_requests: bool,
    /// Hide PRs with at least this many approvals (0: off).
    pub ignore_approved: u32,
    /// Since the PR was opened.
    pub min_age: Duration,
    /// Since the PR was last updated.
    pub min_staleness: Duration,
    /// Lower-cased.
    pub ignore_labels: Vec<String>,
    /// Lower-cased; any of.
    pub require_labels: Vec<String>,
    pub ignore_terms: Vec<TitleTerm>,
    /// Also list PRs whose author has reviews to act on (changes
    /// requested), naming the author as the one waited for.
    pub remind_authors: bool,
    pub line: Option<usize>,
}

impl Schedule {
    /// A schedule with every filter off (for tests and code-built configs).
    pub fn new(name: &str, channel: &str) -> Schedule {
        Schedule {
            name: name.into(),
            channel: channel.into(),
            days: WEEKDAYS.to_vec(),
            times: Vec::new(),
            timezone: Zone::utc(),
            repos: Vec::new(),
            teams: Vec::new(),
            ignore_drafts: false,
            require_review_requests: false,
            ignore_approved: 0,
            min_age: Duration::ZERO,
            min_staleness: Duration::ZERO,
            ignore_labels: Vec::new(),
            require_labels: Vec::new(),
            ignore_terms: Vec::new(),
            remind_authors: false,
            line: None,
        }
    }
}

/// One `[[reminders.personal]]`: a DM to `login` at set times listing the
/// PRs waiting for their review (directly or through `teams`). A time set
/// from Slack (`/prpr remind`) replaces these times for that person.
#[derive(Debug, Clone)]
pub struct Personal {
    /// GitHub login, lower-cased; its Slack ID comes from `[members]`.
    pub login: String,
    pub days: Vec<Weekday>,
    pub times: Vec<LocalTime>,
    pub timezone: Zone,
    /// Lower-cased `org/slug` of teams whose requests are also theirs.
    pub teams: Vec<String>,
    pub ignore_drafts: bool,
}

const SECTION_KEYS: [&str; 4] = ["grace", "resync", "schedules", "personal"];

/// The plain settings of `[reminders]` (not its arrays of tables): what
/// `config::file::settings` lists, for the environment table's and the
/// example's checks.
#[cfg(test)]
pub(crate) const SETTINGS: [&str; 2] = ["grace", "resync"];

const SCHEDULE_KEYS: [&str; 17] = [
    "name",
    "channel",
    "days",
    "times",
    "timezone",
    "repos",
    "teams",
    "ignore_drafts",
    "require_review_requests",
    "ignore_approved",
    "min_age",
    "min_staleness",
    "ignore_labels",
    "require_labels",
    "ignore_terms",
    "remind_authors",
    "enabled",
];

const PERSONAL_KEYS: [&str; 6] = [
    "login",
    "days",
    "times",
    "timezone",
    "teams",
    "ignore_drafts",
];

impl Reader<'_, '_> {
    fn duration_key(&mut self, table: &DeTable<'_>, key: &str) -> Option<Duration> {
        let v = table.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => match super::parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(v.span().start, format!("{key}: {e}"));
                    None
                }
            },
            DeValue::Integer(i) => match i.as_str().replace('_', "").parse::<u64>() {
                Ok(n) if i.radix() == 10 => Some(Duration::from_secs(n)),
                _ => {
                    self.error(v.span().start, format!("{key}: not a duration"));
                    None
                }
            },
            other => {
                let t = other.type_str();
                self.error(
                    v.span().start,
                    format!("{key} must be a duration like \"4h\", not {}", article(t)),
                );
                None
            }
        }
    }

    fn count(&mut self, table: &DeTable<'_>, key: &str) -> Option<u32> {
        let v = table.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => {
                match i.as_str().replace('_', "").parse::<u32>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.error(
                            v.span().start,
                            format!("{key} must be a whole number from 0 up"),
                        );
                        None
                    }
                }
            }
            other => {
                let t = other.type_str();
                self.error(
                    v.span().start,
                    format!("{key} must be a whole number, not {}", article(t)),
                );
                None
            }
        }
    }

    fn days(&mut self, table: &DeTable<'_>) -> Vec<Weekday> {
        if !table.contains_key("days") {
            return WEEKDAYS.to_vec();
        }
        let mut out = Vec::new();
        for (d, at) in self.strings(table, "days") {
            match parse_weekday(&d) {
                Ok(w) if !out.contains(&w) => out.push(w),
                Ok(_) => {}
                Err(e) => self.error(at, format!("days: {e}")),
            }
        }
        if out.is_empty()
            && let Some(v) = table.get("days")
            && !self.failed
        {
            self.error(v.span().start, "days is empty: it would never fire".into());
        }
        out
    }

    fn times(&mut self, table: &DeTable<'_>, header: usize) -> Vec<LocalTime> {
        if !table.contains_key("times") {
            self.error(
                header,
                "times is missing (a list like [\"09:30\", \"14:00\"])".into(),
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for (t, at) in self.strings(table, "times") {
            match LocalTime::parse(&t) {
                Ok(lt) if !out.contains(&lt) => out.push(lt),
                Ok(_) => self.warning(at, format!("times: {t:?} is listed twice")),
                Err(e) => self.error(at, format!("times: {e}")),
            }
        }
        out.sort();
        out
    }

    fn zone(&mut self, table: &DeTable<'_>) -> Zone {
        match self.string(table, "timezone") {
            None => Zone::utc(),
            Some((name, at)) => Zone::parse(&name).unwrap_or_else(|e| {
                self.error(at, format!("timezone: {e}"));
                Zone::utc()
            }),
        }
    }

    fn terms(&mut self, table: &DeTable<'_>, key: &str) -> Vec<TitleTerm> {
        let mut out = Vec::new();
        for (raw, at) in self.strings(table, key) {
            match TitleTerm::parse(&raw) {
                Ok(t) => out.push(t),
                Err(e) => self.error(at, format!("{key}: bad term {raw:?}: {e}")),
            }
        }
        out
    }
}

/// The line of an array-of-tables entry: its span may start at its first
/// key, so the earliest of both.
fn header_of(entry: &Spanned<DeValue<'_>>, table: &DeTable<'_>) -> usize {
    let start = entry.span().start;
    let first_key = table.iter().map(|(k, _)| k.span().start).min();
    first_key.map_or(start, |k| k.min(start))
}

fn entries<'a, 'de>(
    value: &'a Spanned<DeValue<'de>>,
    what: &str,
    source: &str,
    line: &dyn Fn(usize) -> usize,
    problems: &mut Vec<Problem>,
) -> Vec<&'a Spanned<DeValue<'de>>> {
    match value.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        _ => {
            problems.push(Problem::error(
                source,
                Some(line(value.span().start)),
                format!("`reminders.{what}` must be an array of tables ([[reminders.{what}]])"),
            ));
            Vec::new()
        }
    }
}

/// Reads `[reminders]`. A schedule with an error is reported and left out
/// (an error stops `serve` anyway; the others are still checked).
pub(crate) fn read(
    value: &Spanned<DeValue<'_>>,
    source: &str,
    line: &dyn Fn(usize) -> usize,
    problems: &mut Vec<Problem>,
) -> RemindersConfig {
    let mut cfg = RemindersConfig::default();
    let mut r = Reader {
        source,
        line,
        place: "[reminders]".into(),
        problems: &mut *problems,
        failed: false,
    };
    let DeValue::Table(table) = value.get_ref() else {
        r.error(value.span().start, "must be a table ([reminders])".into());
        return cfg;
    };
    r.unknown_keys(table, &SECTION_KEYS);
    if let Some(g) = r.duration_key(table, "grace") {
        cfg.grace = g;
    }
    let resync_off = table.get("resync").is_some_and(
        |v| matches!(v.get_ref(), DeValue::String(s) if s.trim().eq_ignore_ascii_case("off")),
    );
    if resync_off {
        cfg.resync = Duration::ZERO;
    } else if let Some(d) = r.duration_key(table, "resync") {
        cfg.resync = d;
    }

    if let Some(v) = table.get("schedules") {
        for (i, entry) in entries(v, "schedules", source, line, problems)
            .into_iter()
            .enumerate()
        {
            let mut r = Reader {
                source,
                line,
                place: format!("[[reminders.schedules]] #{}", i + 1),
                problems: &mut *problems,
                failed: false,
            };
            let DeValue::Table(t) = entry.get_ref() else {
                r.error(entry.span().start, "must be a table".into());
                continue;
            };
            let header = header_of(entry, t);
            r.unknown_keys(t, &SCHEDULE_KEYS);
            let name = match r.string(t, "name") {
                Some((n, at)) if n.trim().is_empty() => {
                    r.error(at, "name is empty".into());
                    String::new()
                }
                Some((n, _)) => n.trim().to_string(),
                None => {
                    if !t.contains_key("name") {
                        r.error(
                            header,
                            "name is missing (used by `prpr reminders preview NAME`)".into(),
                        );
                    }
                    String::new()
                }
            };
            if !name.is_empty() {
                r.place = format!("[[reminders.schedules]] {name:?}");
            }
            let channel = match r.string(t, "channel") {
                Some((c, at)) => {
                    let c = c.trim().to_string();
                    if !is_channel(&c) {
                        r.error(
                            at,
                            format!("channel = {c:?} is not a Slack channel ID (C…) or #name"),
                        );
                    }
                    c
                }
                None => {
                    if !t.contains_key("channel") {
                        r.error(
                            header,
                            "channel is missing (a Slack channel ID like \"C0123456789\")".into(),
                        );
                    }
                    String::new()
                }
            };
            let enabled = r.bool(t, "enabled").unwrap_or(true);
            let schedule = Schedule {
                name: name.clone(),
                channel,
                days: r.days(t),
                times: r.times(t, header),
                timezone: r.zone(t),
                repos: r.globs(t, "repos", false),
                teams: r.teams(t),
                ignore_drafts: r.bool(t, "ignore_drafts").unwrap_or(false),
                require_review_requests: r.bool(t, "require_review_requests").unwrap_or(false),
                ignore_approved: r.count(t, "ignore_approved").unwrap_or(0),
                min_age: r.duration_key(t, "min_age").unwrap_or_default(),
                min_staleness: r.duration_key(t, "min_staleness").unwrap_or_default(),
                ignore_labels: r.labels(t, "ignore_labels"),
                require_labels: r.labels(t, "require_labels"),
                ignore_terms: r.terms(t, "ignore_terms"),
                remind_authors: r.bool(t, "remind_authors").unwrap_or(false),
                line: Some(line(header)),
            };
            if !name.is_empty() && cfg.schedules.iter().any(|s| s.name == name) {
                r.error(
                    header,
                    format!("a schedule named {name:?} is defined above"),
                );
            }
            if !r.failed && enabled {
                cfg.schedules.push(schedule);
            }
        }
    }

    if let Some(v) = table.get("personal") {
        for (i, entry) in entries(v, "personal", source, line, problems)
            .into_iter()
            .enumerate()
        {
            let mut r = Reader {
                source,
                line,
                place: format!("[[reminders.personal]] #{}", i + 1),
                problems: &mut *problems,
                failed: false,
            };
            let DeValue::Table(t) = entry.get_ref() else {
                r.error(entry.span().start, "must be a table".into());
                continue;
            };
            let header = header_of(entry, t);
            r.unknown_keys(t, &PERSONAL_KEYS);
            let login = match r.string(t, "login") {
                Some((l, at)) => {
                    let l = l.trim().trim_start_matches('@').to_ascii_lowercase();
                    if !super::members::is_github_login(&l) {
                        r.error(at, format!("login {l:?} is not a GitHub login"));
                    }
                    l
                }
                None => {
                    if !t.contains_key("login") {
                        r.error(
                            header,
                            "login is missing (the person's GitHub login)".into(),
                        );
                    }
                    String::new()
                }
            };
            let p = Personal {
                login,
                days: r.days(t),
                times: r.times(t, header),
                timezone: r.zone(t),
                teams: r.teams(t),
                ignore_drafts: r.bool(t, "ignore_drafts").unwrap_or(true),
            };
            if !r.failed {
                cfg.personal.push(p);
            }
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> (RemindersConfig, Vec<String>) {
        let (root, errs) = DeTable::parse_recoverable(text);
        assert!(errs.is_empty(), "{errs:?}");
        let root = root.into_inner();
        let line = |o: usize| super::super::file::line_of(text, o);
        let mut problems = Vec::new();
        let cfg = match root.get("reminders") {
            Some(v) => read(v, "prpr.toml", &line, &mut problems),
            None => RemindersConfig::default(),
        };
        (cfg, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn the_issue_example_reads() {
        let (cfg, problems) = read_text(
            r#"
[reminders]
grace = "45m"

[[reminders.schedules]]
name = "backend-morning"
channel = "C0BACKEND1"
days = ["mon", "tue", "wed", "thu", "fri"]
times = ["09:30", "14:00"]
timezone = "Asia/Tokyo"
repos = ["acme/*"]
teams = ["acme/backend"]
ignore_drafts = true
require_review_requests = true
ignore_approved = 1
min_age = "4h"
min_staleness = "2h"
ignore_labels = ["on-hold"]
require_labels = []
ignore_terms = ["WIP"]
remind_authors = true

[[reminders.personal]]
login = "Alice"
times = ["09:00"]
timezone = "Europe/Berlin"
teams = ["acme/backend"]
"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.grace, Duration::from_secs(45 * 60));
        let s = &cfg.schedules[0];
        assert_eq!(s.name, "backend-morning");
        assert_eq!(s.times.len(), 2);
        assert_eq!(s.timezone.name, "Asia/Tokyo");
        assert_eq!(s.ignore_approved, 1);
        assert_eq!(s.min_age, Duration::from_secs(4 * 3600));
        assert_eq!(s.teams, vec!["acme/backend"]);
        assert!(s.remind_authors && s.ignore_drafts && s.require_review_requests);
        assert_eq!(cfg.personal[0].login, "alice");
        assert_eq!(s.line, Some(5));
    }

    #[test]
    fn resync_defaults_to_6h_and_turns_off() {
        assert_eq!(read_text("").0.resync, Duration::from_secs(6 * 3600));
        for off in ["\"off\"", "\"OFF\"", "0", "\"0s\""] {
            let (cfg, problems) = read_text(&format!("[reminders]\nresync = {off}\n"));
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(cfg.resync, Duration::ZERO, "{off}");
        }
        let (cfg, _) = read_text("[reminders]\nresync = \"1h\"\n");
        assert_eq!(cfg.resync, Duration::from_secs(3600));
        let (_, problems) = read_text("[reminders]\nresync = \"often\"\n");
        assert!(problems[0].contains("resync"), "{problems:?}");
    }

    #[test]
    fn every_problem_has_its_line() {
        let (cfg, problems) = read_text(
            r#"[reminders]
grace = "soon"

[[reminders.schedules]]
name = "a"
channel = "general"
days = ["mon", "funday"]
times = ["25:00"]
timezone = "Mars/Olympus"
ignore_approved = "one"
min_age = "4 weeks"
ignore_terms = ["//"]
colour = "red"

[[reminders.schedules]]
channel = "C0GENERAL1"
times = ["09:00"]

[[reminders.personal]]
times = ["09:00"]
"#,
        );
        assert!(cfg.schedules.is_empty());
        let expect = [
            "prpr.toml:2:",
            "prpr.toml:6: error: [[reminders.schedules]] \"a\": channel",
            "prpr.toml:7: error: [[reminders.schedules]] \"a\": days: \"funday\"",
            "prpr.toml:8:",
            "prpr.toml:9:",
            "prpr.toml:10:",
            "prpr.toml:11:",
            "prpr.toml:12:",
            "prpr.toml:13: error: [[reminders.schedules]] #1: unknown key `colour`",
            "prpr.toml:15: error: [[reminders.schedules]] #2: name is missing",
            "prpr.toml:19: error: [[reminders.personal]] #1: login is missing",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "no problem starts with {e:?}: {problems:#?}"
            );
        }
    }

    #[test]
    fn times_and_days_parse_strictly() {
        assert_eq!(
            LocalTime::parse("9:05"),
            Ok(LocalTime { hour: 9, minute: 5 })
        );
        assert!(LocalTime::parse("09:5").is_err());
        assert!(LocalTime::parse("24:00").is_err());
        assert_eq!(parse_weekday("Sunday"), Ok(Weekday::Sunday));
        assert!(parse_weekday("sunny").is_err());
    }
}
