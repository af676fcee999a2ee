//! Reading the TOML file into [`Config`], reporting every problem with its line.
//!
//! serde's `deny_unknown_fields` stops at the first unknown key, and a value of
//! the wrong type fails the whole document; a user fixing a file wants every
//! problem at once. So the file is first parsed into spanned tables
//! ([`DeTable`]); keys are checked against the fields of the structs they land
//! in (taken from serde itself, see [`fields`]), each unknown key reported with
//! its line and the nearest known one; then the tables are deserialized, and a
//! value that does not deserialize is reported, dropped (its default stays)
//! and the rest tried again.

use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, IntoDeserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::validate::{Origin, Origins};
use super::{
    Config, DatabaseConfig, GithubConfig, LogConfig, NotifyConfig, OpsConfig, Problem,
    ServerConfig, SlackConfig, StoreConfig, members, routes,
};

/// Top-level tables read by [`members`], not by serde: their keys are logins
/// and team names, not settings.
const MEMBER_TABLES: [&str; 2] = ["members", "teams"];

/// Top-level tables read by [`routes`], not by serde: each bad glob, regex or
/// kind is reported with its own line and the rest still read.
const ROUTE_TABLES: [&str; 2] = ["filters", "routes"];

/// The keys of each `[section]`: the fields of the struct it deserializes into.
fn section_fields(section: &str) -> Option<&'static [&'static str]> {
    Some(match section {
        "server" => fields::<ServerConfig>(),
        "github" => fields::<GithubConfig>(),
        "slack" => fields::<SlackConfig>(),
        "notify" => fields::<NotifyConfig>(),
        "database" => fields::<DatabaseConfig>(),
        "ops" => fields::<OpsConfig>(),
        "store" => fields::<StoreConfig>(),
        "log" => fields::<LogConfig>(),
        _ => return None,
    })
}

/// Every setting the file accepts, as `section.key` (or `key` at the top).
#[cfg(test)]
pub(crate) fn settings() -> Vec<String> {
    fields::<Config>()
        .iter()
        .flat_map(|top| match section_fields(top) {
            Some(keys) => keys.iter().map(|k| format!("{top}.{k}")).collect(),
            None => vec![top.to_string()],
        })
        // Read by hand (`config::reminders`), not through serde.
        .chain(
            super::reminders::SETTINGS
                .iter()
                .map(|k| format!("reminders.{k}")),
        )
        .collect()
}

/// Reads `path` into `cfg`, recording each value's line in `at`.
pub(crate) fn read(path: &Path, cfg: &mut Config, at: &mut Origins, problems: &mut Vec<Problem>) {
    let source = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::error(
                &source,
                None,
                format!("cannot read config file: {e}"),
            ));
            return;
        }
    };
    let mut found = Vec::new();
    let line = |offset: usize| line_of(&text, offset);
    let error =
        |offset: Option<usize>, message: String| Problem::error(&source, offset.map(line), message);

    // A syntax error is reported, and what could be read around it still is.
    let (root, syntax) = DeTable::parse_recoverable(&text);
    for e in syntax {
        found.push(error(
            e.span().map(|s| s.start),
            e.message().trim().to_string(),
        ));
    }
    let mut root = root.into_inner();

    let mut member_tables = Vec::new();
    for name in MEMBER_TABLES {
        if let Some((key, value)) = root.remove_entry(name) {
            member_tables.push((key.into_inner(), value));
        }
    }
    let reminders_table = root.remove_entry("reminders").map(|(_, v)| v);
    let mut route_tables = Vec::new();
    for name in ROUTE_TABLES {
        if let Some((key, value)) = root.remove_entry(name) {
            route_tables.push((key.into_inner(), value));
        }
    }
    // `[[slack]]` or `slack = 1`: serde's complaint would be about a field.
    let misshapen: Vec<(String, usize)> = root
        .iter()
        .filter(|(k, v)| section_fields(k.get_ref()).is_some() && !v.get_ref().is_table())
        .map(|(k, _)| (k.get_ref().to_string(), k.span().start))
        .collect();
    for (name, offset) in misshapen {
        found.push(error(
            Some(offset),
            format!("`{name}` must be a table ([{name}])"),
        ));
        root.remove(name.as_str());
    }
    for (key, span) in unknown_keys(&root) {
        found.push(error(Some(span), key.message()));
        key.remove_from(&mut root);
    }

    let file_cfg: Config = loop {
        let de = toml::de::Deserializer::from(Spanned::new(0..text.len(), root.clone()));
        match Config::deserialize(de) {
            Ok(c) => break c,
            Err(e) => {
                let at_entry = e
                    .span()
                    .and_then(|s| remove_entry_at(&mut root, s.start, ""));
                match at_entry {
                    Some((setting, offset)) => found.push(error(
                        Some(offset),
                        format!("{setting}: {}", e.message().trim()),
                    )),
                    None => {
                        // Not attributable to one key: nothing more can be read.
                        found.push(error(
                            e.span().map(|s| s.start),
                            e.message().trim().to_string(),
                        ));
                        break Config::default();
                    }
                }
            }
        }
    };
    *cfg = file_cfg;
    if let Some(mf) = &mut cfg.members_file {
        // Relative to the file, so a config and its MEMBERS.md travel together.
        *mf = path.parent().unwrap_or(Path::new(".")).join(&*mf);
    }
    for (setting, offset) in leaf_settings(&root) {
        at.set(
            &setting,
            Origin::File {
                path: source.clone(),
                line: line(offset),
            },
        );
    }

    for (name, value) in member_tables {
        let DeValue::Table(table) = value.get_ref() else {
            found.push(error(
                Some(value.span().start),
                format!("`{name}` must be a table ([{name}])"),
            ));
            continue;
        };
        let entries = table
            .iter()
            .map(|(k, v)| (k.get_ref().to_string(), v.clone(), line(k.span().start)));
        if name == "members" {
            members::read_members(entries, &source, &mut cfg.notify.members, &mut found);
        } else {
            members::read_teams(entries, &source, &mut cfg.notify.teams, &mut found);
        }
    }

    for (name, value) in &route_tables {
        if name.as_ref() == "filters" {
            cfg.notify.filters = routes::read_filters(value, &source, &line, &mut found);
        } else {
            cfg.notify.routes = routes::read_routes(value, &source, &line, &mut found);
        }
    }
    if !route_tables.is_empty() {
        found.extend(routes::check_together(
            &cfg.notify.filters,
            &cfg.notify.routes,
            &source,
        ));
    }

    if let Some(value) = &reminders_table {
        cfg.reminders = super::reminders::read(value, &source, &line, &mut found);
    }

    problems.extend(found);
}

/// A key the structs do not have.
struct UnknownKey {
    section: Option<String>,
    key: String,
}

impl UnknownKey {
    fn message(&self) -> String {
        let (place, known): (String, Vec<&str>) = match &self.section {
            Some(s) => (
                format!(" in [{s}]"),
                section_fields(s).unwrap_or_default().to_vec(),
            ),
            None => (
                String::new(),
                fields::<Config>()
                    .iter()
                    .copied()
                    .chain(MEMBER_TABLES)
                    .chain(ROUTE_TABLES)
                    .collect(),
            ),
        };
        let mut msg = format!("unknown key `{}`{place}", self.key);
        if let Some(near) = did_you_mean(&self.key, &known) {
            msg.push_str(&format!("; did you mean `{near}`?"));
        } else if let Some(home) = fields::<Config>()
            .iter()
            .find(|s| section_fields(s).is_some_and(|f| f.contains(&self.key.as_str())))
        {
            msg.push_str(&format!("; `{}` belongs in [{home}]", self.key));
        } else if routes::FILTER_KEYS.contains(&self.key.as_str()) {
            msg.push_str(&format!(
                "; `{}` belongs in [filters] (or a [[routes]] entry)",
                self.key
            ));
        } else {
            msg.push_str(&format!("; expected one of: {}", known.join(", ")));
        }
        msg
    }

    fn remove_from(&self, root: &mut DeTable<'_>) {
        match &self.section {
            None => {
                root.remove(self.key.as_str());
            }
            Some(s) => {
                if let Some(DeValue::Table(t)) = root.get_mut(s.as_str()).map(Spanned::get_mut) {
                    t.remove(self.key.as_str());
                }
            }
        }
    }
}

/// Unknown keys, top-level and in each known section, with their offsets.
fn unknown_keys(root: &DeTable<'_>) -> Vec<(UnknownKey, usize)> {
    let top = fields::<Config>();
    let mut unknown = Vec::new();
    for (key, value) in root.iter() {
        let name: &str = key.get_ref();
        if !top.contains(&name) {
            unknown.push((
                UnknownKey {
                    section: None,
                    key: name.to_string(),
                },
                key.span().start,
            ));
            continue;
        }
        let (Some(known), DeValue::Table(table)) = (section_fields(name), value.get_ref()) else {
            continue;
        };
        for (k, _) in table.iter() {
            let k_name: &str = k.get_ref();
            if !known.contains(&k_name) {
                unknown.push((
                    UnknownKey {
                        section: Some(name.to_string()),
                        key: k.get_ref().to_string(),
                    },
                    k.span().start,
                ));
            }
        }
    }
    unknown
}

/// The known key nearest to a misspelt one, if it is near enough to be a typo.
pub(crate) fn did_you_mean<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Removes the entry (of a section, or top-level) whose key or value holds
/// `offset`, the innermost one; returns its setting name and the offset of its
/// key. (A section's own span may not cover its keys, so sections are searched
/// whatever their span.)
fn remove_entry_at(
    table: &mut DeTable<'_>,
    offset: usize,
    prefix: &str,
) -> Option<(String, usize)> {
    let keys: Vec<String> = table.keys().map(|k| k.get_ref().to_string()).collect();
    for key in &keys {
        if let Some(DeValue::Table(inner)) = table.get_mut(key.as_str()).map(Spanned::get_mut)
            && let Some(found) = remove_entry_at(inner, offset, &format!("{prefix}{key}."))
        {
            return Some(found);
        }
    }
    let contains = |s: std::ops::Range<usize>| s.start <= offset && offset < s.end.max(s.start + 1);
    let (key, at) = table
        .iter()
        .find(|(k, v)| contains(k.span()) || contains(v.span()))
        .map(|(k, _)| (k.get_ref().to_string(), k.span().start))?;
    table.remove(key.as_str());
    Some((format!("{prefix}{key}"), at))
}

/// `section.key` (and top-level keys) with the offsets of their values.
fn leaf_settings(root: &DeTable<'_>) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (key, value) in root.iter() {
        match value.get_ref() {
            DeValue::Table(t) if section_fields(key.get_ref()).is_some() => {
                for (k, v) in t.iter() {
                    out.push((format!("{}.{}", key.get_ref(), k.get_ref()), v.span().start));
                }
            }
            _ => out.push((key.get_ref().to_string(), value.span().start)),
        }
    }
    out
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// The field names serde's derive gives a struct, so the keys the file
/// accepts are the structs' fields and nothing else to keep in step. A
/// deserializer that answers the derive's `deserialize_struct` by noting
/// `fields` and stopping.
pub(crate) fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Names<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Names<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields noted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Names(&mut names));
    names
}

/// A value deserialized on its own, for the member tables.
pub(crate) fn value_into<'de, T: Deserialize<'de>>(
    value: Spanned<DeValue<'de>>,
) -> Result<T, toml::de::Error> {
    T::deserialize(value.into_deserializer())
}
