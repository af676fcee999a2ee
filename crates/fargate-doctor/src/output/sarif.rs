//! SARIF 2.1.0 output for GitHub code scanning and other SARIF consumers.

use serde_json::{Value, json};

use crate::lint::Report;
use crate::rules::RULES;

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn render(report: &Report) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.summary},
                "help": {"text": format!("Run `fargate-doctor rules {}`", r.code), "markdown": r.doc},
                "helpUri": format!("https://github.com/prpr-rs/prpr/blob/main/docs/rules/{}.md", r.code),
                "defaultConfiguration": {"level": r.severity.as_str()},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.code,
                "ruleIndex": RULES.iter().position(|r| r.code == f.code),
                "level": f.severity.as_str(),
                "message": {"text": format!("{}\nhelp: {}", f.message, f.help)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.file)},
                        "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)},
                    },
                    "logicalLocations": [{"name": f.logical_id, "kind": "resource"}],
                }],
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            let mut loc = json!({"physicalLocation": {"artifactLocation": {"uri": uri(&e.path)}}});
            if let Some(p) = e.pos {
                loc["physicalLocation"]["region"] =
                    json!({"startLine": p.line.max(1), "startColumn": p.col.max(1)});
            }
            json!({"level": "error", "message": {"text": e.message}, "locations": [loc]})
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "fargate-doctor",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/prpr-rs/prpr/tree/main/crates/fargate-doctor",
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

/// Relative paths as SARIF URIs (forward slashes, no leading `./`).
fn uri(path: &str) -> String {
    path.replace('\\', "/").trim_start_matches("./").to_string()
}
