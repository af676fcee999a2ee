//! Drives `lint`: finds template files, loads them, runs the rules and
//! applies `--ignore`. Parse errors and skipped files are collected, not
//! fatal, so one bad file does not hide the findings in the others.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::model::Model;
use crate::model::pipeline::BuildspecFile;
use crate::resolve::{self, Scenario};
use crate::rules::{self, Finding};
use crate::stacks::{self, Export};
use crate::template::{self, LoadError, Loaded, Template};

#[derive(Debug, Default)]
pub struct Options {
    /// Rule codes to drop everywhere (`--ignore`).
    pub ignore: Vec<String>,
    /// Buildspec files for CodeBuild projects whose buildspec is not inline
    /// (`--buildspec [PROJECT=]FILE`). Files beside a template are found too.
    pub buildspecs: Vec<BuildspecFile>,
    /// Directories given on the command line: a repository's source root,
    /// where CodeBuild finds `buildspec.yml`, is usually one of them.
    pub roots: Vec<PathBuf>,
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
        Loaded::Template(t) => Ok(Some((lint_template(&t, opts, &[]), t.source))),
    }
}

/// Lints a loaded template; `exports` are those of the templates of the
/// same run, which resolve this one's `Fn::ImportValue`.
fn lint_template(t: &Template, opts: &Options, exports: &[Export<'_>]) -> Vec<Finding> {
    let mut buildspecs = opts.buildspecs.clone();
    buildspecs.extend(beside_buildspecs(t, &opts.roots));
    let linked = stacks::link(t, exports);
    let expanded = stacks::expand_definition_strings(linked.as_ref().unwrap_or(t));
    let own: Vec<&str> = t
        .root
        .get("Resources")
        .map(|r| r.entries().iter().map(|(k, _)| k.name.as_str()).collect())
        .unwrap_or_default();
    let prepared = expanded.as_ref().or(linked.as_ref()).unwrap_or(t);
    check_scenarios(prepared, &buildspecs)
        .into_iter()
        .filter(|f| !opts.ignore.iter().any(|c| c.eq_ignore_ascii_case(f.code)))
        // Resources merged in from another stack are reported with that stack.
        .filter(|f| linked.is_none() || own.contains(&f.logical_id.as_str()))
        .collect()
}

/// The buildspec files CodeBuild projects of `t` read from their source
/// (`buildspec.yml`, or the path in `BuildSpec`, relative to the source
/// root), found beside the template or in a directory above it — the usual
/// layout of a repository scanned with `lint DIR`.
fn beside_buildspecs(t: &Template, roots: &[PathBuf]) -> Vec<BuildspecFile> {
    let Some(dir) = Path::new(&t.path).parent() else {
        return Vec::new();
    };
    // The source root is the template's directory or one above it (up to
    // the repository root, the directory holding `.git`), or a scanned root.
    // Relative ancestors first, so that paths in messages stay as given.
    let mut dirs: Vec<PathBuf> = Vec::new();
    let absolute = fs::canonicalize(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })
    .ok();
    for start in [Some(dir.to_path_buf()), absolute].into_iter().flatten() {
        for d in start.ancestors() {
            let probe = if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            };
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
            if probe.join(".git").exists() {
                break;
            }
        }
    }
    for r in roots {
        if !dirs.contains(r) {
            dirs.push(r.clone());
        }
    }
    let mut names: Vec<String> = Vec::new();
    for (_, res) in t
        .root
        .get("Resources")
        .map(|r| r.entries())
        .unwrap_or_default()
    {
        if res.get("Type").and_then(|t| t.as_str()) != Some("AWS::CodeBuild::Project") {
            continue;
        }
        let spec = res
            .get("Properties")
            .and_then(|p| p.get("Source"))
            .and_then(|s| s.get("BuildSpec"));
        match spec {
            None => names.push("buildspec.yml".into()),
            Some(n) => {
                if let Some(s) = n
                    .as_str()
                    .filter(|s| !s.contains('\n') && !s.trim_start().starts_with("version"))
                {
                    names.push(s.trim_start_matches("./").to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (p, text) = dirs.iter().find_map(|d| {
                let p = d.join(&name);
                fs::read_to_string(&p).ok().map(|t| (p, t))
            })?;
            Some(BuildspecFile {
                project: None,
                path: p.display().to_string(),
                text,
                beside: true,
            })
        })
        .collect()
}

/// Runs the rules once per consistent set of condition values and merges
/// the results: a finding that holds in every scenario is reported as is;
/// one that holds in only some names the conditions under which it does.
fn check_scenarios(t: &Template, buildspecs: &[BuildspecFile]) -> Vec<Finding> {
    let scenarios = resolve::scenarios(&t.root);
    if scenarios.len() <= 1 {
        let m = Model::in_scenario(t, buildspecs, scenarios.into_iter().flatten().next());
        return rules::check(&m);
    }
    // (finding, indices of the scenarios it holds in), in first-seen order.
    let mut seen: Vec<(Finding, Vec<usize>)> = Vec::new();
    for (i, sc) in scenarios.iter().enumerate() {
        let m = Model::in_scenario(t, buildspecs, sc.clone());
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
    let mut templates: Vec<Template> = Vec::new();
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
        match template::load(&path, source) {
            Ok(Loaded::Template(t)) => templates.push(t),
            // A buildspec beside the templates is read as one, not skipped.
            Ok(Loaded::NotCloudFormation) if !is_buildspec_name(&path) => report.skipped.push(path),
            Ok(Loaded::NotCloudFormation) => {}
            Err(e) => report.errors.push(e),
        }
    }
    let table: Vec<Export<'_>> = templates
        .iter()
        .flat_map(|t| stacks::exports(t).into_iter().map(move |(n, v)| (n, v, t)))
        .collect();
    for t in &templates {
        report.files_checked += 1;
        report.findings.extend(lint_template(t, opts, &table));
        report.sources.insert(t.path.clone(), t.source.clone());
    }
    // Buildspec files findings point into, for showing their lines.
    for f in &report.findings {
        if !report.sources.contains_key(&f.file)
            && let Ok(text) = fs::read_to_string(&f.file)
        {
            report.sources.insert(f.file.clone(), text);
        }
    }
    for b in &opts.buildspecs {
        report.sources.insert(b.path.clone(), b.text.clone());
    }
    report
}

fn is_buildspec_name(path: &str) -> bool {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("buildspec"))
}
