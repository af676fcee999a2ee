//! The command line: `lint`, `rules`, `imagedefs`, `explain` and `watch`
//! (whose exit codes are in [`crate::watch`]).
//!
//! Exit codes: 0 when nothing at or above `--fail-on` was found (or the
//! command succeeded), 1 when findings were (or `explain` did not recognise
//! the reason), 2 on usage, input or parse errors.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::lint::{self, Options};
use crate::model::pipeline::BuildspecFile;
use crate::output;
use crate::rules::{self, RULES, Severity};
use crate::{explain, imagedefs};

#[derive(Parser, Debug)]
#[command(
    name = "fargate-doctor",
    version,
    about = "Finds the ECS Fargate traps in CloudFormation templates before AWS does"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Lint CloudFormation templates (files or directories).
    Lint(LintArgs),
    /// List the rules, or explain one: `fargate-doctor rules FD101`.
    Rules {
        /// A rule code such as FD101.
        code: Option<String>,
    },
    /// Write the imagedefinitions.json that the CodePipeline ECS action reads.
    Imagedefs(ImagedefsArgs),
    /// Explain why an ECS task stopped.
    Explain(ExplainArgs),
    /// Follow one ECS deployment until its rolloutState is COMPLETED; exit 1
    /// with the reason when it fails, rolls back or its tasks loop.
    Watch(crate::watch::WatchArgs),
}

#[derive(clap::Args, Debug)]
struct LintArgs {
    /// Template files or directories (walked for *.yml, *.yaml, *.json, *.template).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 when a finding at or above this severity is reported.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    fail_on: FailOn,
    /// Rule codes to skip (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    ignore: Vec<String>,
    /// Buildspec of a CodeBuild project whose buildspec is not inline:
    /// PROJECT=FILE (logical ID or Name; repeatable), or FILE for every such
    /// project. A buildspec.yml beside a template is read without it.
    #[arg(long, value_name = "[PROJECT=]FILE")]
    buildspec: Vec<String>,
    /// Colour for text output (auto: only on a terminal, and not when NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum FailOn {
    Error,
    Warning,
    Note,
    Never,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(clap::Args, Debug)]
struct ImagedefsArgs {
    /// Container name (repeat with --image for several containers).
    #[arg(long, required = true)]
    container: Vec<String>,
    /// Image URI for the container given at the same position.
    #[arg(long, required = true)]
    image: Vec<String>,
    /// Task definition to check names against: ECS task definition JSON, or a
    /// CloudFormation template (FILE#LogicalId when it has several).
    #[arg(long)]
    task_definition: Option<String>,
    /// Output file; `-` for standard output.
    #[arg(short, long, default_value = "imagedefinitions.json")]
    output: String,
}

#[derive(clap::Args, Debug)]
struct ExplainArgs {
    /// A stoppedReason string, e.g. "CannotPullContainerError: ...".
    #[arg(required_unless_present = "task", conflicts_with = "task")]
    reason: Option<String>,
    /// A DescribeTasks response, or one element of its `tasks`, as JSON (`-` for stdin).
    #[arg(long)]
    task: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
    format: ExplainFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum ExplainFormat {
    Text,
    Json,
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let code = match cli.command {
        Command::Lint(a) => run_lint(a),
        Command::Rules { code } => run_rules(code),
        Command::Imagedefs(a) => run_imagedefs(a),
        Command::Explain(a) => run_explain(a),
        Command::Watch(a) => crate::watch::run(a),
    };
    ExitCode::from(code)
}

fn fail(msg: impl std::fmt::Display) -> u8 {
    eprintln!("fargate-doctor: error: {msg}");
    2
}

fn print(s: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => 0,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => fail(format!("cannot write output: {e}")),
    }
}

fn run_lint(a: LintArgs) -> u8 {
    for code in &a.ignore {
        if rules::find(code).is_none() {
            return fail(format!(
                "--ignore {code}: no such rule (see `fargate-doctor rules`)"
            ));
        }
    }
    let mut buildspecs = Vec::new();
    for arg in &a.buildspec {
        // PROJECT=FILE; a FILE whose path holds '=' needs a project prefix.
        let (project, path) = match arg.split_once('=') {
            Some((p, f)) if !p.is_empty() && !p.contains(['/', '\\', '.']) => {
                (Some(p.to_string()), f)
            }
            _ => (None, arg.as_str()),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => buildspecs.push(BuildspecFile {
                project,
                path: path.to_string(),
                text,
                beside: false,
            }),
            Err(e) => return fail(format!("cannot read --buildspec {arg}: {path}: {e}")),
        }
    }
    let files = match lint::collect_files(&a.paths) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let opts = Options {
        ignore: a.ignore.iter().map(|c| c.to_ascii_uppercase()).collect(),
        buildspecs,
        roots: a.paths.iter().filter(|p| p.is_dir()).cloned().collect(),
    };
    let report = lint::lint_files(&files, &opts);
    // One line for many (a cdk.out holds manifests, trees and assets).
    match report.skipped.as_slice() {
        [] => {}
        [s] => eprintln!(
            "note: skipped {s}: not a CloudFormation template (no Resources or AWSTemplateFormatVersion)"
        ),
        many => eprintln!(
            "note: skipped {} files that are not CloudFormation templates (no Resources or AWSTemplateFormatVersion), e.g. {}",
            many.len(),
            many.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        ),
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if files.is_empty() {
        eprintln!("note: no template files found");
    }
    let color = match a.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let rendered = match a.format {
        Format::Text => output::text::render(&report, color),
        Format::Json => format!("{:#}\n", output::json::render(&report)),
        Format::Sarif => format!("{:#}\n", output::sarif::render(&report)),
    };
    if print(&rendered) == 2 {
        return 2;
    }
    if !report.errors.is_empty() {
        return 2;
    }
    let threshold = match a.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Note => Some(Severity::Note),
        FailOn::Never => None,
    };
    match threshold {
        Some(t) if report.findings.iter().any(|f| f.severity >= t) => 1,
        _ => 0,
    }
}

fn run_rules(code: Option<String>) -> u8 {
    match code {
        None => {
            let mut s = String::new();
            for r in RULES {
                s.push_str(&format!(
                    "{}  {:<7}  {:<32}  {}\n",
                    r.code,
                    r.severity.as_str(),
                    r.name,
                    r.summary
                ));
            }
            s.push_str("\nRun `fargate-doctor rules CODE` for the explanation and examples.\n");
            print(&s)
        }
        Some(c) => match rules::find(&c) {
            Some(r) => print(r.doc),
            None => fail(format!(
                "no rule {c}; known rules: {}",
                RULES.iter().map(|r| r.code).collect::<Vec<_>>().join(", ")
            )),
        },
    }
}

fn run_imagedefs(a: ImagedefsArgs) -> u8 {
    let content = match imagedefs::build(&a.container, &a.image, a.task_definition.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if a.output == "-" {
        return print(&content);
    }
    match std::fs::write(&a.output, &content) {
        Ok(()) => {
            eprintln!(
                "wrote {} ({} container{})",
                a.output,
                a.container.len(),
                if a.container.len() == 1 { "" } else { "s" }
            );
            0
        }
        Err(e) => fail(format!("cannot write {}: {e}", a.output)),
    }
}

fn run_explain(a: ExplainArgs) -> u8 {
    let diagnoses: Vec<(String, Option<explain::Diagnosis>)> = match (&a.reason, &a.task) {
        (Some(r), _) => vec![(r.clone(), explain::explain_reason(r))],
        (None, Some(path)) => {
            let text = if path.as_os_str() == "-" {
                let mut s = String::new();
                match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
                    Ok(_) => s,
                    Err(e) => return fail(format!("cannot read standard input: {e}")),
                }
            } else {
                match std::fs::read_to_string(path) {
                    Ok(s) => s,
                    Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
                }
            };
            let v: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    return fail(format!(
                        "{}:{}:{}: invalid JSON: {e}",
                        path.display(),
                        e.line(),
                        e.column()
                    ));
                }
            };
            let tasks = match explain::tasks(&v) {
                Ok(t) => t,
                Err(e) => return fail(format!("{}: {e}", path.display())),
            };
            tasks
                .into_iter()
                .map(|t| {
                    let label = t
                        .get("taskArn")
                        .and_then(|a| a.as_str())
                        .map(str::to_string)
                        .or_else(|| {
                            t.get("stoppedReason")
                                .and_then(|r| r.as_str())
                                .map(str::to_string)
                        })
                        .unwrap_or_else(|| "task".into());
                    (label, explain::explain_task(t))
                })
                .collect()
        }
        (None, None) => return fail("give a stoppedReason or --task FILE"),
    };
    let recognised = diagnoses.iter().all(|(_, d)| d.is_some());
    let out = match a.format {
        ExplainFormat::Json => {
            let items: Vec<serde_json::Value> = diagnoses
                .iter()
                .map(|(label, d)| serde_json::json!({"input": label, "recognised": d.is_some(), "diagnosis": d}))
                .collect();
            format!("{:#}\n", serde_json::Value::Array(items))
        }
        ExplainFormat::Text => {
            let many = diagnoses.len() > 1;
            let mut s = String::new();
            for (label, d) in &diagnoses {
                if many {
                    s.push_str(&format!("== {label}\n"));
                }
                match d {
                    Some(d) => s.push_str(&explain::render_text(d)),
                    None => s.push_str(&format!(
                        "not recognised: fargate-doctor does not know this stop reason:\n  {label}\nLook at the service events (aws ecs describe-services) and the container logs.\n"
                    )),
                }
                if many {
                    s.push('\n');
                }
            }
            s
        }
    };
    if print(&out) == 2 {
        return 2;
    }
    if recognised { 0 } else { 1 }
}
