//! `[filters]` and `[[routes]]`: which pull requests are worth a notice, and
//! which channels get it.
//!
//! The two tables sit at the top of the file (as `[members]` and `[teams]`
//! do) but land in [`NotifyConfig`](super::NotifyConfig), beside the rest the
//! rules read. They are read by hand from the spanned TOML, not by serde: a
//! route is a list of conditions, and one bad glob, regex or kind must be
//! reported with its own line while every other route and filter is still
//! checked, so `prpr config check` shows all problems at once.
//!
//! Everything is compiled here, once, at load: globs ([`Glob`], by
//! `globset`) and `/regex/` title terms ([`TitleTerm`], by `regex`), so the
//! matching in [`crate::rules::route`] does no parsing per event.
//!
//! # Case
//!
//! GitHub compares logins, labels, team slugs and repository names without
//! regard to case, so those are matched case-insensitively. Branch names are
//! case-sensitive in git, and so are `base_branches` globs.
//!
//! # Globs
//!
//! `*` matches any run of characters except `/`, `**` also crosses `/`, `?`
//! one character, `[abc]` a class, `{a,b}` alternatives: the conventions of
//! GitHub's own branch-protection patterns and CODEOWNERS, so `release/*`
//! means what a GitHub user expects (`release/1.2`, not `release/1.2/hotfix`).

use std::fmt;

use globset::GlobBuilder;
use regex::{Regex, RegexBuilder};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Problem;
use super::validate::is_channel;
use crate::notice::Kind;

/// A compiled glob, with the pattern as written (for messages and traces).
#[derive(Clone)]
pub struct Glob {
    pattern: String,
    matcher: globset::GlobMatcher,
}

impl Glob {
    /// A glob matched without regard to case (logins, repositories).
    pub fn new(pattern: &str) -> Result<Glob, String> {
        Glob::build(pattern, true)
    }

    /// A glob matched case-sensitively (branch names).
    pub fn case_sensitive(pattern: &str) -> Result<Glob, String> {
        Glob::build(pattern, false)
    }

    fn build(pattern: &str, case_insensitive: bool) -> Result<Glob, String> {
        if pattern.trim().is_empty() {
            return Err("an empty pattern matches nothing".into());
        }
        let glob = GlobBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(Glob {
            pattern: pattern.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.matcher.is_match(value)
    }

    /// No glob syntax at all: the pattern names exactly one value.
    fn is_literal(&self) -> bool {
        !self.pattern.contains(['*', '?', '[', ']', '{', '}', '\\'])
    }

    /// Every value `other` matches, this glob matches too; `false` when
    /// that cannot be shown simply. Provable cases: the same pattern; a
    /// plain name this glob matches; this glob is `PREFIX**` and `other`
    /// starts with `PREFIX`; this glob is `PREFIX*` and `other` is `PREFIX`
    /// followed by anything without `/` (`acme/*` covers `acme/web-*`).
    fn covers(&self, other: &Glob) -> bool {
        if self == other || (other.is_literal() && self.is_match(other.as_str())) {
            return true;
        }
        let literal = |p: &str| !p.contains(['*', '?', '[', ']', '{', '}', '\\']);
        if let Some(prefix) = self.pattern.strip_suffix("**")
            && literal(prefix)
        {
            return other.pattern.starts_with(prefix);
        }
        if let Some(prefix) = self.pattern.strip_suffix('*')
            && literal(prefix)
            && let Some(rest) = other.pattern.strip_prefix(prefix)
        {
            return !rest.contains(['/', '[', '\\']) && !rest.contains("**");
        }
        false
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.pattern == other.pattern
    }
}

/// An `exclude_title` entry: a plain term (case-insensitive substring, so
/// `WIP` also catches `[wip]` and `Wip:`), or `/regex/` (case-insensitive).
#[derive(Clone, Debug)]
pub enum TitleTerm {
    Text {
        /// As written.
        term: String,
        /// Lower-cased once, for the comparison.
        lower: String,
    },
    Regex(Regex),
}

impl TitleTerm {
    /// `/…/` is a regex, anything else a plain term.
    pub fn parse(raw: &str) -> Result<TitleTerm, String> {
        if let Some(body) = raw
            .strip_prefix('/')
            .and_then(|r| r.strip_suffix('/'))
            .filter(|_| raw.len() >= 2)
        {
            if body.is_empty() {
                return Err("an empty regex `//` matches every title".into());
            }
            return RegexBuilder::new(body)
                .case_insensitive(true)
                // Bounded: a title is short, a pathological pattern must not
                // make config loading (or matching) expensive.
                .size_limit(1 << 20)
                .build()
                .map(TitleTerm::Regex)
                .map_err(|e| first_line(&e.to_string()));
        }
        if raw.trim().is_empty() {
            return Err("an empty term matches every title".into());
        }
        Ok(TitleTerm::Text {
            term: raw.to_string(),
            lower: raw.to_lowercase(),
        })
    }

    pub fn matches(&self, title: &str) -> bool {
        match self {
            TitleTerm::Text { lower, .. } => title.to_lowercase().contains(lower.as_str()),
            TitleTerm::Regex(re) => re.is_match(title),
        }
    }

    /// As written (`WIP`, `/^\[draft\]/`).
    pub fn as_written(&self) -> String {
        match self {
            TitleTerm::Text { term, .. } => term.clone(),
            TitleTerm::Regex(re) => format!("/{}/", re.as_str()),
        }
    }
}

impl PartialEq for TitleTerm {
    fn eq(&self, other: &TitleTerm) -> bool {
        self.as_written() == other.as_written()
    }
}

/// "a string", "an integer": TOML type names with their article.
pub(crate) fn article(type_name: &str) -> String {
    if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {type_name}")
    } else {
        format!("a {type_name}")
    }
}

/// The regex crate's errors span several lines (the pattern, a caret, the
/// reason); a config problem is one line.
fn first_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("regex parse error") && !l.starts_with('^'))
        .unwrap_or(message)
        .to_string()
}

/// `[filters]`: conditions every notice of a pull request must pass, in
/// every channel and route (the per-person DMs too). `Default` is no
/// condition at all, except that drafts are left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Authors (GitHub logins) whose PRs are ignored. Bots are already left
    /// out by `notify.ignore_bots` / `notify.bots`.
    pub exclude_authors: Vec<Glob>,
    /// A PR with any of these labels is ignored (lower-cased).
    pub exclude_labels: Vec<String>,
    /// When set, a PR needs at least one of these labels (lower-cased).
    pub require_labels: Vec<String>,
    /// A PR whose title matches any of these is ignored.
    pub exclude_title: Vec<TitleTerm>,
    /// When set, only PRs into a matching base branch.
    pub base_branches: Vec<Glob>,
    /// When set, only PRs of a matching repository (`owner/name`).
    pub repos: Vec<Glob>,
    /// Notices about draft PRs. Default false: nothing until the PR is
    /// ready for review (teams ask not to be pinged about work in progress).
    pub drafts: bool,
}

/// The filter keys a route may carry, applied to that route only and in
/// addition to `[filters]`: a route can narrow what the global filters let
/// through, never widen it (the global filters run first, in the caller).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteFilters {
    pub exclude_authors: Vec<Glob>,
    /// Lower-cased.
    pub exclude_labels: Vec<String>,
    /// Lower-cased; any of.
    pub require_labels: Vec<String>,
    pub exclude_title: Vec<TitleTerm>,
    /// `Some(false)`: this route leaves drafts out. `None` or `Some(true)`:
    /// no condition here (a draft that `[filters] drafts = false` dropped
    /// never reaches the routes).
    pub drafts: Option<bool>,
}

impl RouteFilters {
    /// No filter set on the route.
    pub fn is_empty(&self) -> bool {
        self.exclude_authors.is_empty()
            && self.exclude_labels.is_empty()
            && self.require_labels.is_empty()
            && self.exclude_title.is_empty()
            && self.drafts != Some(false)
    }
}

/// One `[[routes]]` entry: a channel and the PRs that go there. Every
/// condition that is set must hold (an empty list is no condition); within a
/// list, any entry may match.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Repository globs on `owner/name` (case-insensitive).
    pub repos: Vec<Glob>,
    /// Base-branch globs (case-sensitive).
    pub base_branches: Vec<Glob>,
    /// The PR has any of these labels (lower-cased).
    pub labels: Vec<String>,
    /// The PR has a review request for any of these teams, `org/slug`
    /// (lower-cased).
    pub teams: Vec<String>,
    /// Slack channel ID (`C…`) or `#name`.
    pub channel: String,
    /// The notice kinds this route takes; all PR kinds when not given.
    pub kinds: Vec<Kind>,
    /// A notice this route took is not offered to later routes.
    pub stop: bool,
    /// Filters of this route only.
    pub filters: RouteFilters,
    /// Line of the `[[routes]]` header, for problems and `route explain`.
    pub line: Option<usize>,
}

impl Route {
    /// A route for `channel` taking every PR notice, as an absent
    /// `[[routes]]` key would give.
    pub fn to(channel: &str) -> Route {
        Route {
            repos: Vec::new(),
            base_branches: Vec::new(),
            labels: Vec::new(),
            teams: Vec::new(),
            channel: channel.to_string(),
            kinds: Kind::PR_KINDS.to_vec(),
            stop: false,
            filters: RouteFilters::default(),
            line: None,
        }
    }

    /// Whether this route takes every notice `later` would (so `later`,
    /// after this route with `stop = true`, never gets one). Conservative:
    /// `true` only when provable from the conditions as written, i.e.
    /// each of this route's conditions is absent or at least as broad as
    /// `later`'s, and this route has no filters of its own (a filtered-out
    /// notice does not stop). For globs see [`Glob::covers`]; a label or
    /// team list covers another that is a non-empty subset of it. Patterns
    /// are compared as written, so `ACME/*` is not seen to cover `acme/*`
    /// (a missed warning, never a false one).
    pub fn covers(&self, later: &Route) -> bool {
        fn globs(mine: &[Glob], theirs: &[Glob]) -> bool {
            mine.is_empty()
                || (!theirs.is_empty() && theirs.iter().all(|t| mine.iter().any(|m| m.covers(t))))
        }
        fn any_of(mine: &[String], theirs: &[String]) -> bool {
            mine.is_empty() || (!theirs.is_empty() && theirs.iter().all(|t| mine.contains(t)))
        }
        self.filters.is_empty()
            && later.kinds.iter().all(|k| self.kinds.contains(k))
            && globs(&self.repos, &later.repos)
            && globs(&self.base_branches, &later.base_branches)
            && any_of(&self.labels, &later.labels)
            && any_of(&self.teams, &later.teams)
    }
}

/// Parses a kind's name for `kinds` and `[notify] broadcast`: a PR kind, or
/// an error naming the nearest one.
pub(crate) fn parse_kind(name: &str) -> Result<Kind, String> {
    if let Some(k) = Kind::PR_KINDS.into_iter().find(|k| k.as_str() == name) {
        return Ok(k);
    }
    let names: Vec<&str> = Kind::PR_KINDS.iter().map(|k| k.as_str()).collect();
    let near = names
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d);
    Err(match near {
        Some((_, k)) => format!("unknown kind {name:?}; did you mean {k:?}?"),
        None if Kind::parse(name).is_some() => {
            format!(
                "{name:?} is not a pull-request kind; expected one of: {}",
                names.join(", ")
            )
        }
        None => format!(
            "unknown kind {name:?}; expected one of: {}",
            names.join(", ")
        ),
    })
}

/// The keys of `[filters]`.
pub(crate) const FILTER_KEYS: [&str; 7] = [
    "exclude_authors",
    "exclude_labels",
    "require_labels",
    "exclude_title",
    "base_branches",
    "repos",
    "drafts",
];

/// The keys of a `[[routes]]` entry: its conditions, then the filters a
/// route may carry.
pub(crate) const ROUTE_KEYS: [&str; 12] = [
    "repos",
    "base_branches",
    "labels",
    "teams",
    "channel",
    "kinds",
    "stop",
    "exclude_authors",
    "exclude_labels",
    "require_labels",
    "exclude_title",
    "drafts",
];

/// Reads one table (`[filters]` or a route) key by key, recording problems
/// with their lines. `place` names the table in messages.
pub(crate) struct Reader<'a, 'p> {
    pub(crate) source: &'a str,
    pub(crate) line: &'a dyn Fn(usize) -> usize,
    pub(crate) place: String,
    pub(crate) problems: &'p mut Vec<Problem>,
    /// An error was found in this table.
    pub(crate) failed: bool,
}

impl Reader<'_, '_> {
    pub(crate) fn error(&mut self, offset: usize, message: String) {
        self.failed = true;
        self.problems.push(Problem::error(
            self.source,
            Some((self.line)(offset)),
            format!("{}: {message}", self.place),
        ));
    }

    pub(crate) fn warning(&mut self, offset: usize, message: String) {
        self.problems.push(Problem::warning(
            self.source,
            Some((self.line)(offset)),
            format!("{}: {message}", self.place),
        ));
    }

    /// Reports keys not in `known`, with the nearest known one.
    pub(crate) fn unknown_keys(&mut self, table: &DeTable<'_>, known: &[&str]) {
        for (k, _) in table.iter() {
            let name: &str = k.get_ref();
            if known.contains(&name) {
                continue;
            }
            let mut msg = format!("unknown key `{name}`");
            match super::file::did_you_mean(name, known) {
                Some(near) => msg.push_str(&format!("; did you mean `{near}`?")),
                None => msg.push_str(&format!("; expected one of: {}", known.join(", "))),
            }
            self.error(k.span().start, msg);
        }
    }

    pub(crate) fn bool(&mut self, table: &DeTable<'_>, key: &str) -> Option<bool> {
        let v = table.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                let t = other.type_str();
                self.error(
                    v.span().start,
                    format!("{key} must be true or false, not {}", article(t)),
                );
                None
            }
        }
    }

    pub(crate) fn string(&mut self, table: &DeTable<'_>, key: &str) -> Option<(String, usize)> {
        let v = table.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span().start)),
            other => {
                let t = other.type_str();
                self.error(
                    v.span().start,
                    format!("{key} must be a string, not {}", article(t)),
                );
                None
            }
        }
    }

    /// A list of strings, each with its offset; a lone string is taken as a
    /// list of one (`repos = "acme/api"` is an easy slip).
    pub(crate) fn strings(&mut self, table: &DeTable<'_>, key: &str) -> Vec<(String, usize)> {
        let Some(v) = table.get(key) else {
            return Vec::new();
        };
        let items: Vec<&Spanned<DeValue<'_>>> = match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            DeValue::String(_) => vec![v],
            other => {
                let t = other.type_str();
                self.error(
                    v.span().start,
                    format!("{key} must be a list of strings, not {}", article(t)),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span().start)),
                other => {
                    let t = other.type_str();
                    self.error(
                        item.span().start,
                        format!("{key}: each entry must be a string, not {}", article(t)),
                    );
                }
            }
        }
        out
    }

    pub(crate) fn globs(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        case_sensitive: bool,
    ) -> Vec<Glob> {
        let mut out = Vec::new();
        for (pattern, at) in self.strings(table, key) {
            let glob = if case_sensitive {
                Glob::case_sensitive(&pattern)
            } else {
                Glob::new(&pattern)
            };
            match glob {
                Ok(g) => out.push(g),
                Err(e) => self.error(at, format!("{key}: bad glob {pattern:?}: {e}")),
            }
        }
        out
    }

    /// Labels, lower-cased (GitHub's labels are case-insensitive).
    pub(crate) fn labels(&mut self, table: &DeTable<'_>, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (label, at) in self.strings(table, key) {
            if label.trim().is_empty() {
                self.error(at, format!("{key}: an empty label matches nothing"));
            } else {
                out.push(label.to_lowercase());
            }
        }
        out
    }

    fn title_terms(&mut self, table: &DeTable<'_>) -> Vec<TitleTerm> {
        let mut out = Vec::new();
        for (raw, at) in self.strings(table, "exclude_title") {
            match TitleTerm::parse(&raw) {
                Ok(t) => out.push(t),
                Err(e) => self.error(at, format!("exclude_title: bad term {raw:?}: {e}")),
            }
        }
        out
    }

    pub(crate) fn teams(&mut self, table: &DeTable<'_>) -> Vec<String> {
        let mut out = Vec::new();
        for (team, at) in self.strings(table, "teams") {
            let parts: Vec<&str> = team.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.trim().is_empty()) {
                self.error(at, format!("teams: {team:?} must be \"org/team-slug\""));
            } else {
                out.push(team.to_lowercase());
            }
        }
        out
    }

    fn kinds(&mut self, table: &DeTable<'_>) -> Vec<Kind> {
        let Some(v) = table.get("kinds") else {
            return Kind::PR_KINDS.to_vec();
        };
        let at = v.span().start;
        let problems_before = self.problems.len();
        let mut out = Vec::new();
        for (name, at) in self.strings(table, "kinds") {
            match parse_kind(&name) {
                Ok(k) if !out.contains(&k) => out.push(k),
                Ok(_) => {}
                Err(e) => self.error(at, format!("kinds: {e}")),
            }
        }
        // Only when no entry was wrong: then the list was written empty.
        if out.is_empty() && self.problems.len() == problems_before {
            self.error(
                at,
                "kinds is empty: the route would take nothing (leave it out for every kind)".into(),
            );
        }
        out
    }
}

/// Reads `[filters]`. A bad entry is reported and left out; the rest load.
pub(crate) fn read_filters(
    value: &Spanned<DeValue<'_>>,
    source: &str,
    line: &dyn Fn(usize) -> usize,
    problems: &mut Vec<Problem>,
) -> Filters {
    let mut r = Reader {
        source,
        line,
        place: "[filters]".into(),
        problems,
        failed: false,
    };
    let DeValue::Table(table) = value.get_ref() else {
        r.error(value.span().start, "must be a table ([filters])".into());
        return Filters::default();
    };
    r.unknown_keys(table, &FILTER_KEYS);
    Filters {
        exclude_authors: r.globs(table, "exclude_authors", false),
        exclude_labels: r.labels(table, "exclude_labels"),
        require_labels: r.labels(table, "require_labels"),
        exclude_title: r.title_terms(table),
        base_branches: r.globs(table, "base_branches", true),
        repos: r.globs(table, "repos", false),
        drafts: r.bool(table, "drafts").unwrap_or(false),
    }
}

/// Reads `[[routes]]`, in order. A route with an error is reported and left
/// out (an error stops `serve` anyway; the other routes are still checked).
pub(crate) fn read_routes(
    value: &Spanned<DeValue<'_>>,
    source: &str,
    line: &dyn Fn(usize) -> usize,
    problems: &mut Vec<Problem>,
) -> Vec<Route> {
    let DeValue::Array(entries) = value.get_ref() else {
        problems.push(Problem::error(
            source,
            Some(line(value.span().start)),
            "`routes` must be an array of tables ([[routes]])".into(),
        ));
        return Vec::new();
    };
    let mut routes = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let mut r = Reader {
            source,
            line,
            place: format!("[[routes]] #{}", i + 1),
            problems: &mut *problems,
            failed: false,
        };
        let start = entry.span().start;
        let DeValue::Table(table) = entry.get_ref() else {
            r.error(start, "must be a table".into());
            continue;
        };
        // The header's line: the span of a `[[routes]]` entry may start at
        // its first key, so take the earliest of both.
        let first_key = table.iter().map(|(k, _)| k.span().start).min();
        let header = first_key.map_or(start, |k| k.min(start));
        r.unknown_keys(table, &ROUTE_KEYS);
        let channel = match r.string(table, "channel") {
            None if !table.contains_key("channel") => {
                r.error(
                    header,
                    "channel is missing (a Slack channel ID like \"C0123456789\" or #name)".into(),
                );
                String::new()
            }
            None => String::new(),
            Some((c, at)) => {
                let c = c.trim().to_string();
                if c.is_empty() {
                    r.error(
                        at,
                        "channel is empty (a Slack channel ID like \"C0123456789\" or #name)"
                            .into(),
                    );
                } else if !is_channel(&c) {
                    r.error(
                        at,
                        format!("channel = {c:?} is not a Slack channel ID (C…) or #name"),
                    );
                }
                c
            }
        };
        let route = Route {
            repos: r.globs(table, "repos", false),
            base_branches: r.globs(table, "base_branches", true),
            labels: r.labels(table, "labels"),
            teams: r.teams(table),
            channel,
            kinds: r.kinds(table),
            stop: r.bool(table, "stop").unwrap_or(false),
            filters: RouteFilters {
                exclude_authors: r.globs(table, "exclude_authors", false),
                exclude_labels: r.labels(table, "exclude_labels"),
                require_labels: r.labels(table, "require_labels"),
                exclude_title: r.title_terms(table),
                drafts: r.bool(table, "drafts"),
            },
            line: Some(line(header)),
        };
        if !r.failed {
            routes.push((i + 1, header, route));
        }
    }
    for (pos, (n, at, route)) in routes.iter().enumerate() {
        let shadow = routes[..pos]
            .iter()
            .find(|(_, _, earlier)| earlier.stop && earlier.covers(route));
        if let Some((m, _, earlier)) = shadow {
            let mut r = Reader {
                source,
                line,
                place: format!("[[routes]] #{n}"),
                problems: &mut *problems,
                failed: false,
            };
            r.warning(
                *at,
                format!(
                    "can never match: route #{m} (line {}) has `stop = true` and takes every notice this one would",
                    earlier.line.unwrap_or_default()
                ),
            );
        }
    }
    routes.into_iter().map(|(_, _, r)| r).collect()
}

/// Problems of filters and routes taken together: route settings that
/// cannot have an effect because of `[filters]`. Warnings: prpr behaves
/// well-defined either way, but the file says something it does not do.
pub(crate) fn check_together(filters: &Filters, routes: &[Route], source: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        if route.filters.drafts == Some(true) && !filters.drafts {
            problems.push(Problem::warning(
                source,
                route.line,
                format!(
                    "[[routes]] #{}: drafts = true has no effect while [filters] drafts = false (a route can only narrow the global filters)",
                    i + 1
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Filters, Vec<Route>, Vec<String>) {
        let (root, errors) = DeTable::parse_recoverable(text);
        assert!(errors.is_empty(), "{errors:?}");
        let root = root.into_inner();
        let line = |o: usize| super::super::file::line_of(text, o);
        let mut problems = Vec::new();
        let filters = root
            .get("filters")
            .map(|v| read_filters(v, "f.toml", &line, &mut problems))
            .unwrap_or_default();
        let routes = root
            .get("routes")
            .map(|v| read_routes(v, "f.toml", &line, &mut problems))
            .unwrap_or_default();
        problems.extend(check_together(&filters, &routes, "f.toml"));
        (
            filters,
            routes,
            problems.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn globs_follow_github_conventions() {
        let g = Glob::new("acme/web-*").unwrap();
        assert!(g.is_match("acme/web-app"));
        assert!(g.is_match("ACME/Web-App"), "repositories: any case");
        assert!(!g.is_match("acme/api"));
        let b = Glob::case_sensitive("release/*").unwrap();
        assert!(b.is_match("release/1.2"));
        assert!(!b.is_match("release/1.2/hotfix"), "* does not cross /");
        assert!(!b.is_match("Release/1.2"), "branches: case matters");
        assert!(
            Glob::case_sensitive("release/**")
                .unwrap()
                .is_match("release/1.2/hotfix")
        );
        assert!(Glob::new("{acme,octo}/api").unwrap().is_match("octo/api"));
        assert!(Glob::new("acme/[").is_err());
        assert!(Glob::new(" ").is_err());
    }

    #[test]
    fn title_terms() {
        let wip = TitleTerm::parse("WIP").unwrap();
        assert!(wip.matches("[wip] new thing"));
        assert!(wip.matches("Wip: x"));
        assert!(!wip.matches("Ready"));
        let skip = TitleTerm::parse("[skip ci]").unwrap();
        assert!(
            skip.matches("Docs [SKIP CI]"),
            "plain terms are not patterns"
        );
        let re = TitleTerm::parse(r"/^\[draft\]/").unwrap();
        assert!(re.matches("[Draft] thing"));
        assert!(!re.matches("a [draft] thing"));
        assert_eq!(re.as_written(), r"/^\[draft\]/");
        assert!(TitleTerm::parse("/(/").is_err());
        assert!(TitleTerm::parse("//").is_err());
        assert!(TitleTerm::parse("").is_err());
        // A lone slash is a plain term.
        assert!(TitleTerm::parse("/").unwrap().matches("a/b"));
    }

    #[test]
    fn kinds_suggest_the_nearest() {
        assert_eq!(parse_kind("merged"), Ok(Kind::Merged));
        assert_eq!(
            parse_kind("mergd"),
            Err("unknown kind \"mergd\"; did you mean \"merged\"?".into())
        );
        assert!(
            parse_kind("ops")
                .unwrap_err()
                .contains("not a pull-request kind")
        );
        assert!(
            parse_kind("deploys")
                .unwrap_err()
                .contains("expected one of: review_requested")
        );
    }

    #[test]
    fn filters_and_routes_are_read() {
        let (f, routes, problems) = read(
            r##"
[filters]
exclude_authors = ["dependabot*"]
exclude_labels = ["Do-Not-Notify"]
require_labels = []
exclude_title = ["WIP", "/^\\[draft\\]/"]
base_branches = ["main"]
repos = ["acme/*"]
drafts = true

[[routes]]
repos = ["acme/api", "acme/web-*"]
base_branches = ["main", "release/*"]
labels = ["Backend"]
teams = ["Acme/Backend"]
channel = "C0BACKEND1"
kinds = ["review_requested", "merged"]
stop = true
exclude_labels = ["chore"]
drafts = false

[[routes]]
channel = "#all-prs"
"##,
        );
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(f.exclude_authors[0].as_str(), "dependabot*");
        assert_eq!(f.exclude_labels, ["do-not-notify"]);
        assert_eq!(f.exclude_title.len(), 2);
        assert!(f.drafts);
        assert_eq!(routes.len(), 2);
        let r = &routes[0];
        assert_eq!(r.labels, ["backend"]);
        assert_eq!(r.teams, ["acme/backend"]);
        assert_eq!(r.kinds, [Kind::ReviewRequested, Kind::Merged]);
        assert!(r.stop);
        assert_eq!(r.filters.exclude_labels, ["chore"]);
        assert_eq!(r.filters.drafts, Some(false));
        assert_eq!(r.line, Some(11));
        assert_eq!(routes[1].kinds, Kind::PR_KINDS, "all PR kinds by default");
        assert_eq!(routes[1].line, Some(22));
        assert_eq!(routes[1].filters, RouteFilters::default());
    }

    #[test]
    fn every_problem_has_its_line() {
        let (f, routes, problems) = read(
            r##"[filters]
exclude_authors = ["a["]
exclude_title = ["/(unclosed/"]
drafts = "no"
repo = ["acme/api"]

[[routes]]
kinds = ["mergd", "ops"]
channel = "general chat"
labls = ["x"]
teams = ["backend"]

[[routes]]
repos = ["acme/api"]

[[routes]]
channel = ""
stop = 1

[[routes]]
channel = "C0OK000001"
kinds = []
"##,
        );
        assert_eq!(
            problems,
            [
                "f.toml:5: error: [filters]: unknown key `repo`; did you mean `repos`?",
                "f.toml:2: error: [filters]: exclude_authors: bad glob \"a[\": unclosed character class; missing ']'",
                "f.toml:3: error: [filters]: exclude_title: bad term \"/(unclosed/\": error: unclosed group",
                "f.toml:4: error: [filters]: drafts must be true or false, not a string",
                "f.toml:10: error: [[routes]] #1: unknown key `labls`; did you mean `labels`?",
                "f.toml:9: error: [[routes]] #1: channel = \"general chat\" is not a Slack channel ID (C…) or #name",
                "f.toml:11: error: [[routes]] #1: teams: \"backend\" must be \"org/team-slug\"",
                "f.toml:8: error: [[routes]] #1: kinds: unknown kind \"mergd\"; did you mean \"merged\"?",
                "f.toml:8: error: [[routes]] #1: kinds: \"ops\" is not a pull-request kind; expected one of: review_requested, review_submitted, mention, merged, opened",
                "f.toml:13: error: [[routes]] #2: channel is missing (a Slack channel ID like \"C0123456789\" or #name)",
                "f.toml:17: error: [[routes]] #3: channel is empty (a Slack channel ID like \"C0123456789\" or #name)",
                "f.toml:18: error: [[routes]] #3: stop must be true or false, not an integer",
                "f.toml:22: error: [[routes]] #4: kinds is empty: the route would take nothing (leave it out for every kind)",
            ],
        );
        // What was right still loads; routes with errors do not.
        assert!(f.exclude_authors.is_empty());
        assert!(!f.drafts);
        assert!(routes.is_empty());
    }

    #[test]
    fn a_route_after_a_broader_stop_route_is_reported() {
        let (_, routes, problems) = read(
            r##"[[routes]]
repos = ["acme/*"]
channel = "C0ACME0001"
stop = true

[[routes]]
repos = ["acme/api"]
channel = "C0API00001"

[[routes]]
repos = ["acme/web-*"]
kinds = ["merged"]
channel = "C0WEB00001"

[[routes]]
repos = ["octo/api"]
channel = "C0OCTO0001"

[[routes]]
repos = ["acme/*"]
labels = ["x"]
channel = "C0X0000001"
"##,
        );
        assert_eq!(routes.len(), 5, "warnings keep the routes");
        assert_eq!(
            problems,
            [
                "f.toml:6: warning: [[routes]] #2: can never match: route #1 (line 1) has `stop = true` and takes every notice this one would",
                "f.toml:10: warning: [[routes]] #3: can never match: route #1 (line 1) has `stop = true` and takes every notice this one would",
                "f.toml:19: warning: [[routes]] #5: can never match: route #1 (line 1) has `stop = true` and takes every notice this one would",
            ]
        );
    }

    #[test]
    fn covering_is_conservative() {
        let catch_all = Route {
            stop: true,
            ..Route::to("C0ALL00001")
        };
        let mut later = Route::to("C0LATER001");
        later.labels = vec!["backend".into()];
        assert!(catch_all.covers(&later));
        // Fewer kinds: notices of the other kinds still reach `later`.
        let merged_only = Route {
            kinds: vec![Kind::Merged],
            ..catch_all.clone()
        };
        assert!(!merged_only.covers(&later));
        // Filters on the earlier route: what it filters out goes on.
        let mut filtered = catch_all.clone();
        filtered.filters.exclude_labels = vec!["chore".into()];
        assert!(!filtered.covers(&later));
        // Labels: a subset is covered, a superset is not.
        let mut labelled = catch_all.clone();
        labelled.labels = vec!["backend".into(), "api".into()];
        assert!(labelled.covers(&later));
        later.labels = vec!["backend".into(), "web".into()];
        assert!(!labelled.covers(&later));
        // Globs: the same, a plain name, a narrower prefix pattern.
        let mut repos = catch_all.clone();
        repos.repos = vec![Glob::new("acme/*").unwrap()];
        let mut other = Route::to("C0OTHER001");
        for covered in ["acme/web-*", "acme/*", "acme/api", "acme/{a,b}"] {
            other.repos = vec![Glob::new(covered).unwrap()];
            assert!(repos.covers(&other), "{covered}");
        }
        for not_covered in ["acme*", "*/api", "acme/**", "octo/api", "acme/a/b"] {
            other.repos = vec![Glob::new(not_covered).unwrap()];
            assert!(!repos.covers(&other), "{not_covered}");
        }
        let deep = Glob::case_sensitive("release/**").unwrap();
        assert!(deep.covers(&Glob::case_sensitive("release/1.*/x").unwrap()));
        assert!(!deep.covers(&Glob::case_sensitive("releases").unwrap()));
        assert!(Glob::new("*").unwrap().covers(&Glob::new("web-*").unwrap()));
        other.repos = vec![];
        assert!(!repos.covers(&other), "an unconditioned route is broader");
    }

    #[test]
    fn a_route_draft_setting_the_global_filter_overrides_is_reported() {
        let (_, _, problems) = read("[[routes]]\nchannel = \"C0X0000001\"\ndrafts = true\n");
        assert_eq!(
            problems,
            [
                "f.toml:1: warning: [[routes]] #1: drafts = true has no effect while [filters] drafts = false (a route can only narrow the global filters)"
            ]
        );
        let (_, _, problems) =
            read("[filters]\ndrafts = true\n[[routes]]\nchannel = \"C0X0000001\"\ndrafts = true\n");
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn an_empty_kinds_list_is_reported_beside_other_problems() {
        let (_, _, problems) = read("[[routes]]\nchannel = \"\"\nkinds = []\n");
        assert_eq!(
            problems,
            [
                "f.toml:2: error: [[routes]] #1: channel is empty (a Slack channel ID like \"C0123456789\" or #name)",
                "f.toml:3: error: [[routes]] #1: kinds is empty: the route would take nothing (leave it out for every kind)",
            ]
        );
    }

    #[test]
    fn routes_must_be_an_array_of_tables() {
        let (_, routes, problems) = read("[routes]\nchannel = \"C0X0000001\"\n");
        assert!(routes.is_empty());
        assert_eq!(
            problems,
            ["f.toml:1: error: `routes` must be an array of tables ([[routes]])"]
        );
        let (_, routes, problems) =
            read("routes = [{ channel = \"C0X0000001\", repos = \"acme/api\" }]\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(routes[0].repos[0].as_str(), "acme/api");
    }
}
