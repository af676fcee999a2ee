//! JSON output: `{"version": 1, "findings": [...], "summary": {...}, ...}`.

use serde_json::{Value, json};

use crate::lint::Report;

pub fn render(report: &Report) -> Value {
    let (e, w, n) = super::counts(&report.findings);
    json!({
        "version": 1,
        "findings": report.findings,
        "errors": report.errors.iter().map(|e| json!({
            "file": e.path,
            "line": e.pos.map(|p| p.line),
            "column": e.pos.map(|p| p.col),
            "message": e.message,
        })).collect::<Vec<_>>(),
        "skipped": report.skipped,
        "summary": {"files": report.files_checked, "errors": e, "warnings": w, "notes": n},
    })
}
