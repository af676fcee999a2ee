//! The rules: a registry of stable codes with their documentation, and the
//! checks, one file per family.
//!
//! | family | codes |
//! |---|---|
//! | image pull / egress | FD1xx |
//! | networking | FD2xx |
//! | capacity | FD3xx |
//! | sizing | FD4xx |
//! | deploy safety | FD5xx |
//! | pipeline | FD6xx |
//! | secrets | FD7xx |
//!
//! A rule has a default severity; a finding of that rule may be downgraded to
//! a note when the template cannot prove the problem (for example subnets
//! passed as parameters) and the note then says what must hold.

mod capacity;
mod deploy;
mod egress;
mod networking;
mod pipeline;
mod secrets;
mod sizing;

use std::fmt;

use serde::Serialize;

use crate::model::{Model, Resource};
use crate::template::{Node, Pos};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's registry entry.
#[derive(Debug)]
pub struct Rule {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    /// The Markdown explanation, also published as `docs/rules/CODE.md`.
    pub doc: &'static str,
}

/// Declares rule statics: `FD101 = ("no-image-pull-path", Error, "summary")`.
/// The code is the identifier, so a misspelt code does not compile, and the
/// doc page is included from `rules/CODE.md` beside it.
macro_rules! declare_rules {
    ($($(#[$meta:meta])* $code:ident = ($name:literal, $sev:ident, $summary:literal);)*) => {
        $(
            $(#[$meta])*
            pub static $code: $crate::rules::Rule = $crate::rules::Rule {
                code: stringify!($code),
                name: $name,
                severity: $crate::rules::Severity::$sev,
                summary: $summary,
                doc: include_str!(concat!("../../rules/", stringify!($code), ".md")),
            };
        )*
    };
}
pub(crate) use declare_rules;

pub use capacity::FD301;
pub use deploy::{FD501, FD502, FD503};
pub use egress::{FD101, FD102, FD103};
pub use networking::{FD201, FD202, FD203, FD204, FD205, FD206, FD207};
pub use pipeline::{FD601, FD602, FD603, FD604, FD605, FD606, FD607, FD608};
pub use secrets::FD701;
pub use sizing::{FD401, FD402};

/// Every rule, in code order (the order of `fargate-doctor rules`).
pub static RULES: &[&Rule] = &[
    &FD101, &FD102, &FD103, &FD201, &FD202, &FD203, &FD204, &FD205, &FD206, &FD207, &FD301, &FD401,
    &FD402, &FD501, &FD502, &FD503, &FD601, &FD602, &FD603, &FD604, &FD605, &FD606, &FD607, &FD608,
    &FD701,
];

pub fn find(code: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .copied()
        .find(|r| r.code.eq_ignore_ascii_case(code))
}

/// A problem found in a template.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The rule's code, kept as a field so JSON output carries it.
    pub code: &'static str,
    #[serde(skip)]
    pub rule: &'static Rule,
    pub severity: Severity,
    pub logical_id: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip)]
    pub ignored_by_metadata: bool,
}

/// Collects findings for one template.
pub struct Sink<'m> {
    file: &'m str,
    /// Name a resource's `Condition` in its findings: only when conditions
    /// are not evaluated per scenario (the caller names them then).
    name_conditions: bool,
    pub findings: Vec<Finding>,
}

impl<'m> Sink<'m> {
    pub fn new(file: &'m str, name_conditions: bool) -> Self {
        Sink {
            file,
            name_conditions,
            findings: Vec::new(),
        }
    }

    /// Reports with the rule's default severity.
    pub fn report(
        &mut self,
        rule: &'static Rule,
        res: &Resource<'_>,
        pos: Pos,
        message: String,
        help: String,
    ) {
        self.report_as(rule, rule.severity, res, pos, message, help);
    }

    /// Reports a fact that cannot be proven as a note saying what must hold.
    pub fn note(
        &mut self,
        rule: &'static Rule,
        res: &Resource<'_>,
        pos: Pos,
        message: String,
        help: String,
    ) {
        self.report_as(rule, Severity::Note, res, pos, message, help);
    }

    pub fn report_as(
        &mut self,
        rule: &'static Rule,
        severity: Severity,
        res: &Resource<'_>,
        pos: Pos,
        message: String,
        help: String,
    ) {
        self.report_in(
            rule,
            severity,
            res,
            self.file.to_string(),
            pos,
            message,
            help,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub fn report_in(
        &mut self,
        rule: &'static Rule,
        severity: Severity,
        res: &Resource<'_>,
        file: String,
        pos: Pos,
        mut message: String,
        help: String,
    ) {
        let condition = res
            .condition
            .filter(|_| self.name_conditions)
            .map(str::to_string);
        if let Some(c) = &condition {
            message.push_str(&format!(" (only when condition {c} holds)"));
        }
        let ignored_by_metadata = res
            .ignored()
            .iter()
            .any(|c| c.eq_ignore_ascii_case(rule.code));
        self.findings.push(Finding {
            code: rule.code,
            rule,
            severity,
            logical_id: res.id.to_string(),
            file,
            line: pos.line,
            column: pos.col,
            message,
            help,
            condition,
            ignored_by_metadata,
        });
    }
}

/// Position of `key` in a mapping node, else the fallback.
pub fn key_pos(n: Option<&Node>, key: &str, fallback: Pos) -> Pos {
    n.and_then(|n| n.entry(key))
        .map(|(k, _)| k.pos)
        .unwrap_or(fallback)
}

/// Joins names for messages: `a, b and c`.
pub fn list(items: &[String]) -> String {
    match items.len() {
        0 => "none".into(),
        1 => items[0].clone(),
        _ => format!(
            "{} and {}",
            items[..items.len() - 1].join(", "),
            items[items.len() - 1]
        ),
    }
}

/// Joins phrases: `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        list(items)
    }
}

/// Runs every rule on a template. Findings suppressed by resource metadata
/// are dropped here; `--ignore` is applied by the caller.
pub fn check(m: &Model<'_>) -> Vec<Finding> {
    let mut sink = Sink::new(&m.template.path, !m.r.has_scenario());
    egress::check(m, &mut sink);
    networking::check(m, &mut sink);
    capacity::check(m, &mut sink);
    sizing::check(m, &mut sink);
    deploy::check(m, &mut sink);
    pipeline::check(m, &mut sink);
    secrets::check(m, &mut sink);
    let mut out: Vec<Finding> = sink
        .findings
        .into_iter()
        .filter(|f| !f.ignored_by_metadata)
        .collect();
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code).cmp(&(&b.file, b.line, b.column, b.code))
    });
    out.dedup_by(|a, b| {
        a.code == b.code && a.file == b.file && a.line == b.line && a.message == b.message
    });
    out
}
