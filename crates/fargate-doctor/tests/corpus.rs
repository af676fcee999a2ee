//! The corpus: templates written by the project in the shapes real
//! templates use (Copilot stacks, CDK output, conditions, parameters without
//! defaults, `Fn::Sub` variable maps, ...). Each entry of `tests/corpus/` (a
//! file, or a directory linted as one run) is discovered by glob.
//!
//! * `ok-*` entries are correct templates: they must have no error-level
//!   finding, because a false error is what makes users switch a linter off.
//! * `expect.txt` lists, per entry, the exact set of `CODE/severity` the
//!   entry must produce (`-` for none), so a trap that stops being found, or
//!   a finding that changes severity, fails here with a readable diff.
//! * `tests/snapshots/corpus/NAME.txt` pins the full text output.
//!   Regenerate with: FARGATE_DOCTOR_BLESS=1 cargo test -p fargate-doctor --test corpus

// Helpers outside #[test] fns: clippy.toml's allow-*-in-tests does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fargate_doctor::lint::{self, Options};
use fargate_doctor::output;
use fargate_doctor::rules::Severity;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn entries() -> Vec<(String, PathBuf)> {
    let dir = root().join("tests/corpus");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "expect.txt"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    out
}

fn expectations() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("tests/corpus/expect.txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, codes) = l.split_once(':').expect("NAME: CODES");
            (name.trim().to_string(), codes.trim().to_string())
        })
        .collect()
}

fn run(path: &Path) -> lint::Report {
    let files = lint::collect_files(&[path.to_path_buf()]).unwrap();
    let opts = Options::default();
    lint::lint_files(&files, &opts)
}

#[test]
fn corpus_findings_match_expectations() {
    let expected = expectations();
    let mut failures = Vec::new();
    let entries = entries();
    assert!(entries.len() >= 10, "the corpus is missing");
    for (name, path) in &entries {
        let report = run(path);
        assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
        let mut got: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("{}/{}", f.code, f.severity))
            .collect();
        got.sort();
        got.dedup();
        let got = if got.is_empty() {
            "-".to_string()
        } else {
            got.join(", ")
        };
        match expected.get(name) {
            Some(e) if *e == got => {}
            Some(e) => failures.push(format!(
                "{name}: expected {e}\n{:width$}  got      {got}",
                "",
                width = name.len()
            )),
            None => failures.push(format!("{name}: not in expect.txt (got {got})")),
        }
        if name.starts_with("ok-") {
            for f in report
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
            {
                failures.push(format!("{name}: false error {} {}", f.code, f.message));
            }
        }
    }
    for name in expected.keys() {
        if !entries.iter().any(|(n, _)| n == name) {
            failures.push(format!("{name}: in expect.txt but not in the corpus"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn corpus_snapshots() {
    snapshots("tests/corpus", "tests/snapshots/corpus", entries());
}

/// The rule fixtures (`tests/fixtures/rules/*.yaml`, trap and fixed), found
/// by glob: their full output is pinned too.
#[test]
fn rule_fixture_snapshots() {
    let dir = root().join("tests/fixtures/rules");
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    files.sort();
    assert!(files.len() >= 39, "the rule fixtures are missing");
    snapshots("tests/fixtures/rules", "tests/snapshots/rules", files);
}

fn snapshots(input: &str, output: &str, entries: Vec<(String, PathBuf)>) {
    let dir = root().join(output);
    let bless = std::env::var_os("FARGATE_DOCTOR_BLESS").is_some();
    let prefix = format!("{}/", root().join(input).display());
    let mut stale = Vec::new();
    for (name, path) in entries {
        let report = run(&path);
        let text = output::text::render(&report, false).replace(&prefix, "");
        let snap = dir.join(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&snap, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&snap) {
            Ok(old) if old == text => {}
            Ok(old) => stale.push(format!(
                "{name}: output changed\n--- snapshot\n{old}\n+++ now\n{text}"
            )),
            Err(e) => stale.push(format!("{}: {e}", snap.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(run with FARGATE_DOCTOR_BLESS=1 if the change is intended)",
        stale.join("\n")
    );
}
