//! `docs/rules/` must be exactly what `fargate-doctor rules CODE` prints.
//! Regenerate with: FARGATE_DOCTOR_BLESS=1 cargo test -p fargate-doctor --test docs

// Helpers outside #[test] fns: clippy.toml's allow-*-in-tests does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use fargate_doctor::rules::RULES;

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules")
}

fn index() -> String {
    let mut s = String::from(
        "# fargate-doctor rules\n\nGenerated from `crates/fargate-doctor/rules/`; `fargate-doctor rules CODE` prints the same text.\nSuppress a rule for one resource with `Metadata: {fargate-doctor: {ignore: [CODE]}}`, or everywhere with `--ignore CODE`.\n\n| code | name | severity | what it finds |\n|---|---|---|---|\n",
    );
    for r in RULES {
        s.push_str(&format!(
            "| [{}]({}.md) | {} | {} | {} |\n",
            r.code, r.code, r.name, r.severity, r.summary
        ));
    }
    s
}

#[test]
fn docs_rules_match_the_crate() {
    let dir = docs_dir();
    let mut expected: Vec<(PathBuf, String)> = RULES
        .iter()
        .map(|r| (dir.join(format!("{}.md", r.code)), r.doc.to_string()))
        .collect();
    expected.push((dir.join("README.md"), index()));
    if std::env::var_os("FARGATE_DOCTOR_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (p, text) in &expected {
            std::fs::write(p, text).unwrap();
        }
    }
    for (p, text) in &expected {
        let actual = std::fs::read_to_string(p)
            .unwrap_or_else(|e| panic!("{}: {e} (run with FARGATE_DOCTOR_BLESS=1)", p.display()));
        assert_eq!(
            &actual,
            text,
            "{} is out of date (run with FARGATE_DOCTOR_BLESS=1)",
            p.display()
        );
    }
    for r in RULES {
        assert!(
            r.doc.starts_with(&format!("# {} ", r.code)),
            "{} doc must start with its title",
            r.code
        );
        for section in [
            "## Why it matters",
            "## Failing example",
            "## Fixed example",
        ] {
            assert!(r.doc.contains(section), "{} doc lacks {section}", r.code);
        }
    }
}

/// Every page in `rules/` belongs to a registered rule, and codes are unique:
/// a page for a rule that was never registered would never be shown.
#[test]
fn every_rule_page_is_registered_once() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".md").map(str::to_string))
        .collect();
    pages.sort();
    let mut codes: Vec<String> = RULES.iter().map(|r| r.code.to_string()).collect();
    codes.sort();
    let before = codes.len();
    codes.dedup();
    assert_eq!(before, codes.len(), "a rule code is registered twice");
    assert_eq!(pages, codes);
}
