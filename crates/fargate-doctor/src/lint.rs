//! Drives `lint`: finds template files, loads them, runs the rules and
//! applies `--ignore`. Parse errors and skipped files are collected, not
//! fatal, so one bad file does not hide the findings in the others.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::model::Model;
use crate::rules::{self, Finding};
use crate::template::{self, LoadError, Loaded};

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
            let m = Model::new(&t, opts.buildspec.as_ref());
            let findings = rules::check(&m)
                .into_iter()
                .filter(|f| !opts.ignore.iter().any(|c| c.eq_ignore_ascii_case(f.code)))
                .collect();
            Ok(Some((findings, t.source)))
        }
    }
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
