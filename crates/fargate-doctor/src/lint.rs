//! Drives `lint`: finds template files, loads them, runs the rules and
//! applies `--ignore`. Parse errors and skipped files are collected, not
//! fatal, so one bad file does not hide the findings in the others.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::model::Model;
use crate::resolve::{self, Scenario};
use crate::rules::{self, Finding};
use crate::template::{self, LoadError, Loaded, Template};

#[derive(Debug, Default)]
pub struct Options {
    /// Rule codes to drop everywhere (`--ignore`).
    pub ignore: Vec<String>,
    /// A buildspec file to use for CodeBuild projects whose buildspec is not inline: (path, text).
    pub buildspec: Option<(String, String)>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub errors: Vec<LoadError>,
    /// Files that parsed but are not CloudFormation templates.
    pub skipped: Vec<String>,
    pub files_checked: usize,
    /// Source text by path, for showing the offending line.
    pub sources: BTreeMap<String, String>,
}

const EXTENSIONS: [&str; 4] = ["yml", "yaml", "json", "template"];

/// Expands directories into template files (sorted). A path that does not
/// exist is an error.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        let ft = e.file_type()?;
        if ft.is_dir() {
            if !name.starts_with('.') && name != "node_modules" && name != "target" {
                walk(&path, out)?;
            }
        } else if ft.is_file()
            && path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| EXTENSIONS.contains(&x))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Lints one source text. `Ok(None)` when it is not CloudFormation.
pub fn lint_source(
    path: &str,
    source: String,
    opts: &Options,
) -> Result<Option<(Vec<Finding>, String)>, LoadError> {
    match template::load(path, source)? {
        Loaded::NotCloudFormation => Ok(None),
        Loaded::Template(t) => {
            let findings = check_scenarios(&t, opts)
                .into_iter()
                .filter(|f| !opts.ignore.iter().any(|c| c.eq_ignore_ascii_case(f.code)))
                .collect();
            Ok(Some((findings, t.source)))
        }
    }
}

/// Runs the rules once per consistent set of condition values and merges
/// the results: a finding that holds in every scenario is reported as is;
/// one that holds in only some names the conditions under which it does.
fn check_scenarios(t: &Template, opts: &Options) -> Vec<Finding> {
    let scenarios = resolve::scenarios(&t.root);
    if scenarios.len() <= 1 {
        let m = Model::in_scenario(
            t,
            opts.buildspec.as_ref(),
            scenarios.into_iter().flatten().next(),
        );
        return rules::check(&m);
    }
    // (finding, indices of the scenarios it holds in), in first-seen order.
    let mut seen: Vec<(Finding, Vec<usize>)> = Vec::new();
    for (i, sc) in scenarios.iter().enumerate() {
        let m = Model::in_scenario(t, opts.buildspec.as_ref(), sc.clone());
        for f in rules::check(&m) {
            match seen.iter_mut().find(|(g, _)| same(g, &f)) {
                Some((_, idx)) => idx.push(i),
                None => seen.push((f, vec![i])),
            }
        }
    }
    let all: Vec<&Scenario> = scenarios.iter().flatten().collect();
    let mut out: Vec<Finding> = seen
        .into_iter()
        .map(|(mut f, idx)| {
            if idx.len() < all.len() {
                let when = describe_when(&all, &idx);
                f.message.push_str(&format!(" (only when {when})"));
                f.condition = Some(when);
            }
            f
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code).cmp(&(&b.file, b.line, b.column, b.code))
    });
    out
}

fn same(a: &Finding, b: &Finding) -> bool {
    a.code == b.code
        && a.severity == b.severity
        && a.file == b.file
        && a.line == b.line
        && a.column == b.column
        && a.message == b.message
}

/// Names the condition values shared by the scenarios `idx` and not by all:
/// "condition IsProd holds", "condition A holds and condition B does not".
fn describe_when(all: &[&Scenario], idx: &[usize]) -> String {
    let phrase = |name: &str, v: bool| {
        if v {
            format!("condition {name} holds")
        } else {
            format!("condition {name} does not hold")
        }
    };
    let Some(first) = idx.first().and_then(|i| all.get(*i)) else {
        return "some conditions hold".into();
    };
    // The fewest condition values that pick out exactly these scenarios.
    let mut facts: Vec<(&String, bool)> = first
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .filter(|(k, v)| !all.iter().all(|s| s.get(*k) == Some(&Some(*v))))
        .collect();
    // "X holds" reads better than "Y does not hold" when both pick the same.
    facts.sort_by_key(|(_, v)| !*v);
    let picks = |chosen: &[&(&String, bool)]| -> bool {
        (0..all.len()).all(|i| {
            let hit = chosen
                .iter()
                .all(|(k, v)| all[i].get(*k) == Some(&Some(*v)));
            hit == idx.contains(&i)
        })
    };
    for a in &facts {
        if picks(&[a]) {
            return phrase(a.0, a.1);
        }
    }
    for (i, a) in facts.iter().enumerate() {
        for b in &facts[i + 1..] {
            if picks(&[a, b]) {
                return format!("{} and {}", phrase(a.0, a.1), phrase(b.0, b.1));
            }
        }
    }
    let mut parts = Vec::new();
    for (name, v) in first.iter() {
        let Some(v) = v else { continue };
        let shared = idx
            .iter()
            .all(|i| all.get(*i).and_then(|s| s.get(name)) == Some(&Some(*v)));
        let everywhere = all.iter().all(|s| s.get(name) == Some(&Some(*v)));
        if shared && !everywhere {
            parts.push(phrase(name, *v));
        }
    }
    if !parts.is_empty() {
        return rules::and_list(&parts);
    }
    // No single condition explains it: name each combination.
    let varying: Vec<&String> = first
        .keys()
        .filter(|k| all.iter().any(|s| s.get(*k) != first.get(*k)))
        .collect();
    let combos: Vec<String> = idx
        .iter()
        .filter_map(|i| all.get(*i))
        .map(|s| {
            varying
                .iter()
                .filter_map(|k| s.get(*k).copied().flatten().map(|v| phrase(k, v)))
                .collect::<Vec<_>>()
                .join(" and ")
        })
        .collect();
    combos.join(", or when ")
}

pub fn lint_files(files: &[PathBuf], opts: &Options) -> Report {
    let mut report = Report::default();
    for f in files {
        let path = f.display().to_string();
        let source = match fs::read(f) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(_) => {
                    report.errors.push(LoadError {
                        path,
                        pos: None,
                        message: "file is not valid UTF-8".into(),
                    });
                    continue;
                }
            },
            Err(e) => {
                report.errors.push(LoadError {
                    path,
                    pos: None,
                    message: e.to_string(),
                });
                continue;
            }
        };
        match lint_source(&path, source, opts) {
            Ok(Some((findings, source))) => {
                report.files_checked += 1;
                report.findings.extend(findings);
                report.sources.insert(path, source);
            }
            Ok(None) => report.skipped.push(path),
            Err(e) => report.errors.push(e),
        }
    }
    if let Some((p, s)) = &opts.buildspec {
        report.sources.insert(p.clone(), s.clone());
    }
    report
}
