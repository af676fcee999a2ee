//! CodePipeline actions, CodeBuild projects and what their buildspecs write.
//!
//! The pipeline rules need to know which action produces an ECS deploy
//! action's input, which buildspec that build runs, whether it writes and
//! exports the image definitions file, and which container names it puts in
//! it (following `$VARS` through the buildspec `env` and the project's
//! `EnvironmentVariables`).

use std::collections::HashMap;

use super::{Model, Resource};
use crate::resolve::Res;
use crate::template::{self, Node, Pos, Value};

/// One pipeline action.
#[derive(Debug)]
pub struct Action<'t> {
    pub node: &'t Node,
    pub name: String,
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub config: Option<&'t Node>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

pub fn actions<'t>(m: &Model<'t>, pipeline: &Resource<'t>) -> Vec<Action<'t>> {
    let names = |n: Option<&'t Node>| -> Vec<String> {
        n.map(|l| {
            l.items()
                .iter()
                .filter_map(|a| a.get("Name").and_then(|x| m.r.string(x)))
                .collect()
        })
        .unwrap_or_default()
    };
    let mut out = Vec::new();
    for stage in pipeline
        .prop("Stages")
        .map(|s| s.items())
        .unwrap_or_default()
    {
        for a in stage.get("Actions").map(|s| s.items()).unwrap_or_default() {
            // ActionTypeId and Configuration may sit under Fn::If: take the
            // branch of the scenario being checked.
            let lit = |k: &str| match a.get(k).map(|n| m.r.resolve(n)) {
                Some(Res::Lit(n)) => Some(n),
                _ => None,
            };
            let ty = lit("ActionTypeId");
            let field = |k: &str| {
                ty.and_then(|t| t.get(k))
                    .and_then(|x| m.r.string(x))
                    .unwrap_or_default()
            };
            out.push(Action {
                node: a,
                name: a
                    .get("Name")
                    .and_then(|x| m.r.string(x))
                    .unwrap_or_default(),
                category: field("Category"),
                owner: field("Owner"),
                provider: field("Provider"),
                config: lit("Configuration"),
                inputs: names(a.get("InputArtifacts")),
                outputs: names(a.get("OutputArtifacts")),
            });
        }
    }
    out
}

/// The CodeBuild project a build action runs, if defined in this template.
pub fn project<'a, 't>(m: &'a Model<'t>, action: &Action<'t>) -> Option<&'a Resource<'t>> {
    let pn = action.config?.get("ProjectName")?;
    if let Some(r) = m.target(pn, "AWS::CodeBuild::Project") {
        return Some(r);
    }
    let name = m.r.string(pn)?;
    m.of_type("AWS::CodeBuild::Project")
        .find(|p| p.prop("Name").and_then(|n| m.r.string(n)).as_deref() == Some(name.as_str()))
}

/// A buildspec as far as it can be read.
pub enum Buildspec {
    /// Parsed text; `file` is where it lives, `line_base` maps its line 1 to
    /// a line of that file (inline buildspecs start inside the template).
    Read {
        root: Node,
        file: String,
        line_base: usize,
        anchor: Pos,
    },
    /// Not readable: why, and where the reference is.
    Unreadable { why: String, anchor: Pos },
    /// Readable but not valid YAML.
    Invalid { message: String, anchor: Pos },
}

pub fn buildspec(m: &Model<'_>, project: &Resource<'_>) -> Buildspec {
    let source = project.prop("Source");
    let spec_entry = source.and_then(|s| s.entry("BuildSpec"));
    let anchor = spec_entry.map(|(k, _)| k.pos).unwrap_or(project.pos);
    let file_ref = match spec_entry {
        Some((key, node)) => {
            let text = m.r.render(node);
            if text.contains('\n') || text.trim_start().starts_with("version") {
                let line_base = text_line_base(&m.template.source, node).unwrap_or(key.pos.line);
                return match template::parse("buildspec", &text) {
                    Ok(root) => Buildspec::Read {
                        root,
                        file: m.template.path.clone(),
                        line_base,
                        anchor,
                    },
                    Err(e) => Buildspec::Invalid {
                        message: e.message,
                        anchor,
                    },
                };
            }
            text
        }
        None => "buildspec.yml".to_string(),
    };
    let name = project.prop("Name").and_then(|n| m.r.string(n));
    let for_project = |b: &&BuildspecFile| {
        b.project
            .as_deref()
            .is_some_and(|p| p == project.id || Some(p) == name.as_deref())
    };
    let rel = file_ref.trim_start_matches("./");
    let found = m
        .buildspecs
        .iter()
        .find(for_project)
        .or_else(|| {
            m.buildspecs
                .iter()
                .find(|b| b.project.is_none() && !b.beside)
        })
        .or_else(|| {
            m.buildspecs.iter().find(|b| {
                b.beside && std::path::Path::new(&b.path).ends_with(std::path::Path::new(rel))
            })
        });
    match found {
        Some(BuildspecFile { path, text, .. }) => match template::parse(path, text) {
            Ok(root) => Buildspec::Read {
                root,
                file: path.clone(),
                line_base: 1,
                anchor: Pos { line: 1, col: 1 },
            },
            Err(e) => Buildspec::Invalid {
                message: e.to_string(),
                anchor,
            },
        },
        None => Buildspec::Unreadable {
            why: format!(
                "project {} reads its buildspec from the file {file_ref} in the source, which was not found beside the template or in a directory above it (pass it with --buildspec {}=FILE to check it)",
                project.id, project.id
            ),
            anchor,
        },
    }
}

/// A buildspec file for projects whose buildspec is not inline.
#[derive(Debug, Clone)]
pub struct BuildspecFile {
    /// The project (logical ID or `Name`) it is for; `None` for any project.
    pub project: Option<String>,
    pub path: String,
    pub text: String,
    /// Found beside the template (matched by the file name the project
    /// reads), rather than given with `--buildspec`.
    pub beside: bool,
}

/// The template line holding line 1 of an inline buildspec whose value is
/// `node` (a string, or `Fn::Sub` of one): for a block scalar (`|`, `>`) the
/// line after its indicator, for a flow scalar the line it starts on.
fn text_line_base(source: &str, node: &Node) -> Option<usize> {
    let text = match node.intrinsic() {
        Some(("Fn::Sub", arg)) => match &arg.value {
            Value::Seq(items) => items.first().unwrap_or(arg),
            _ => arg,
        },
        _ => node,
    };
    // The parser places a scalar where its text starts (the line after a
    // block indicator); a tagged scalar (`!Sub |`) has no position of its own.
    if text.pos.line > 0 {
        return Some(text.pos.line);
    }
    let lines: Vec<&str> = source.lines().collect();
    let (mut line, mut col) = (node.pos.line, node.pos.col);
    while line <= node.pos.line + 2 {
        let l = lines.get(line.checked_sub(1)?)?;
        let mut rest = l.get(col.saturating_sub(1)..).unwrap_or("");
        loop {
            rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                break;
            }
            if rest.starts_with('!') {
                rest = rest.split_once(char::is_whitespace).map_or("", |(_, r)| r);
            } else if let Some(r) = rest.strip_prefix("Fn::Sub:") {
                rest = r;
            } else if rest == "-" || rest.starts_with("- ") || rest.starts_with('[') {
                rest = &rest[1..];
            } else if rest.starts_with(['|', '>']) {
                return Some(line + 1);
            } else {
                return Some(line);
            }
        }
        line += 1;
        col = 1;
    }
    None
}

/// A command that writes a file.
#[derive(Debug)]
pub struct Write {
    pub line: usize,
    pub command: String,
    /// Container names written into it, after `$VAR` resolution; `Err`
    /// carries the unresolved expression.
    pub names: Vec<Result<String, String>>,
}

/// Every command of a buildspec's phases with its line (in the buildspec).
pub fn commands(root: &Node) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    if let Some(phases) = root.get("phases") {
        for (_, phase) in phases.entries() {
            for section in ["commands", "finally"] {
                for c in phase.get(section).map(|c| c.items()).unwrap_or_default() {
                    if let Some(cmd) = c.scalar() {
                        out.push((c.pos.line, cmd));
                    }
                }
            }
        }
    }
    out
}

/// What a buildspec does with a given output file.
pub struct Facts {
    pub writes: Vec<Write>,
    pub exported: bool,
    pub artifacts_line: Option<usize>,
}

pub fn facts(root: &Node, file_name: &str, project_env: &HashMap<String, String>) -> Facts {
    let mut env: HashMap<String, String> = project_env.clone();
    if let Some(vars) = root.get("env").and_then(|e| e.get("variables")) {
        for (k, v) in vars.entries() {
            if let Some(s) = v.scalar() {
                env.insert(k.name.clone(), s);
            }
        }
    }
    let mut writes = Vec::new();
    if let Some(phases) = root.get("phases") {
        for (_, phase) in phases.entries() {
            for section in ["commands", "finally"] {
                for c in phase.get(section).map(|c| c.items()).unwrap_or_default() {
                    let Some(cmd) = c.scalar() else { continue };
                    if writes_file(&cmd, file_name) {
                        let names = names_in(&cmd)
                            .into_iter()
                            .map(|n| expand(&n, &env))
                            .collect();
                        writes.push(Write {
                            line: c.pos.line,
                            command: cmd,
                            names,
                        });
                    }
                }
            }
        }
    }
    let artifacts = root.entry("artifacts");
    let exported = artifacts.is_some_and(|(_, a)| {
        let files: Vec<String> = a
            .get("files")
            .map(|f| match &f.value {
                Value::Seq(items) => items.iter().filter_map(|i| i.scalar()).collect(),
                _ => f.scalar().into_iter().collect(),
            })
            .unwrap_or_default();
        files
            .iter()
            .any(|pattern| glob(pattern.trim_start_matches("./"), file_name))
    }) || root.get("secondary-artifacts").is_some();
    Facts {
        writes,
        exported,
        artifacts_line: artifacts.map(|(k, _)| k.pos.line),
    }
}

fn writes_file(cmd: &str, file: &str) -> bool {
    cmd.contains(file)
        && (cmd.contains('>') || cmd.contains("tee ") || cmd.contains("fargate-doctor imagedefs"))
        || cmd.contains("fargate-doctor imagedefs")
            && !cmd.contains(" -o")
            && !cmd.contains("--output")
            && file == "imagedefinitions.json"
}

/// Container-name expressions in an image-definitions writing command.
fn names_in(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    if cmd.contains("fargate-doctor imagedefs") {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        for w in words.windows(2) {
            if w[0] == "--container" {
                out.push(w[1].trim_matches(['"', '\'']).to_string());
            }
        }
        return out;
    }
    let flat = cmd.replace('\\', "");
    let mut rest = flat.as_str();
    let mut consumed = 0usize;
    while let Some(i) = rest.find("\"name\"") {
        let before = &flat[..consumed + i];
        let after = rest[i + 6..]
            .trim_start()
            .trim_start_matches(':')
            .trim_start();
        if let Some(v) = after.strip_prefix('"') {
            let value: String = v.chars().take_while(|c| *c != '"').collect();
            if value == "%s" {
                out.push(
                    printf_arg(&flat, before.matches("%s").count()).unwrap_or_else(|| "%s".into()),
                );
            } else {
                out.push(value);
            }
        }
        consumed += i + 6;
        rest = &rest[i + 6..];
    }
    out
}

/// The n-th argument after the format string of a `printf`.
fn printf_arg(cmd: &str, n: usize) -> Option<String> {
    let start = cmd.find("printf")? + 6;
    let rest = cmd[start..].trim_start();
    let quote = rest.chars().next()?;
    if quote != '\'' && quote != '"' {
        return None;
    }
    // The format may contain the other quote character; find the matching one.
    let body = &rest[1..];
    let end = body.find(quote)?;
    let args = &body[end + 1..];
    let args = args.split('>').next().unwrap_or("");
    args.split_whitespace()
        .nth(n)
        .map(|a| a.trim_matches(['"', '\'']).to_string())
}

/// Expands `$VAR` / `${VAR}` using the known environment.
fn expand(expr: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let var = expr
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| expr.strip_prefix('$'));
    match var {
        Some(v) => env.get(v).cloned().ok_or_else(|| expr.to_string()),
        None if expr.contains('$') || expr == "%s" => Err(expr.to_string()),
        None => Ok(expr.to_string()),
    }
}

/// `*` matches any run of characters (including `/`), as buildspec globs do.
pub fn glob(pattern: &str, name: &str) -> bool {
    let pat: Vec<char> = pattern.chars().collect();
    let txt: Vec<char> = name.chars().collect();
    let (mut p, mut t, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while t < txt.len() {
        if p < pat.len() && (pat[p] == txt[t] || pat[p] == '?') {
            p += 1;
            t += 1;
        } else if p < pat.len() && pat[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pat.len() && (pat[p] == '*' || pat[p] == '/') {
        p += 1;
    }
    p == pat.len()
}

/// PLAINTEXT environment variables of a CodeBuild project.
pub fn project_env(m: &Model<'_>, project: &Resource<'_>) -> HashMap<String, String> {
    let mut env = HashMap::new();
    let vars = project
        .prop("Environment")
        .and_then(|e| e.get("EnvironmentVariables"));
    for v in vars.map(|v| v.items()).unwrap_or_default() {
        let ty = v
            .get("Type")
            .and_then(|t| m.r.string(t))
            .unwrap_or_else(|| "PLAINTEXT".into());
        if ty != "PLAINTEXT" {
            continue;
        }
        if let (Some(k), Some(val)) = (
            v.get("Name").and_then(|n| m.r.string(n)),
            v.get("Value").map(|n| m.r.render(n)),
        ) {
            env.insert(k, val);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_container_names() {
        assert_eq!(
            names_in(r#"printf '[{"name":"web","imageUri":"%s"}]' $URI > imagedefinitions.json"#),
            vec!["web"]
        );
        assert_eq!(
            names_in(
                r#"printf '[{"name":"%s","imageUri":"%s"}]' $CONTAINER_NAME $URI > imagedefinitions.json"#
            ),
            vec!["$CONTAINER_NAME"]
        );
        assert_eq!(
            names_in(
                r#"echo "[{\"name\":\"app\",\"imageUri\":\"$URI\"}]" > imagedefinitions.json"#
            ),
            vec!["app"]
        );
        assert_eq!(
            names_in("fargate-doctor imagedefs --container api --image $URI"),
            vec!["api"]
        );
        let env = HashMap::from([("CONTAINER_NAME".to_string(), "web".to_string())]);
        assert_eq!(expand("$CONTAINER_NAME", &env), Ok("web".into()));
        assert_eq!(expand("${NOPE}", &env), Err("${NOPE}".into()));
    }

    #[test]
    fn inline_buildspec_line_base() {
        let base = |src: &str| {
            let root = template::parse("t.yaml", src).unwrap();
            let node = root.get("B").unwrap();
            text_line_base(src, node)
        };
        assert_eq!(base("B: |\n  version: 0.2\n"), Some(2));
        assert_eq!(base("B: !Sub |\n  version: 0.2\n"), Some(2));
        assert_eq!(
            base("B: !Sub\n  - |\n    ---\n    version: 0.2\n  - {}\n"),
            Some(3)
        );
        assert_eq!(base("B:\n  Fn::Sub: |\n    version: 0.2\n"), Some(3));
        assert_eq!(base("B: \"version: 0.2\\nphases: {}\"\n"), Some(1));
    }

    #[test]
    fn globs() {
        assert!(glob("**/*", "imagedefinitions.json"));
        assert!(glob("*.json", "imagedefinitions.json"));
        assert!(glob("imagedefinitions.json", "imagedefinitions.json"));
        assert!(!glob("imageDetail.json", "imagedefinitions.json"));
    }
}
