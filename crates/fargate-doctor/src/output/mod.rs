//! Rendering of lint results: `text` for people (rustc/ruff style, coloured
//! on a terminal), `json` for scripts and `sarif` (2.1.0) for code scanning.

pub mod json;
pub mod sarif;
pub mod text;

use crate::rules::{Finding, Severity};

/// Counts by severity.
pub fn counts(findings: &[Finding]) -> (usize, usize, usize) {
    let n = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    (n(Severity::Error), n(Severity::Warning), n(Severity::Note))
}
