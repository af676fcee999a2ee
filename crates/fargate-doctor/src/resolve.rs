//! Resolution of what a template value means without deploying it.
//!
//! `Ref`/`Fn::GetAtt` to resources become [`Res::Resource`], parameters with a
//! `Default` become that default, `Fn::If` follows the branch its condition
//! takes with those defaults, and `Fn::Sub`/`Fn::Join`/`Fn::Select` of known
//! parts become text. Anything that depends on the deploy (a parameter without
//! a default, `Fn::ImportValue`, pseudo parameters) stays unknown, with a
//! description that rules use to say what must hold instead of guessing.

use std::collections::HashMap;

use crate::template::sub::{self, Part};
use crate::template::{Node, Value};

/// The meaning of a value as far as the template alone can tell.
#[derive(Debug, Clone)]
pub enum Res<'t> {
    /// A value written in the template (possibly a parameter default).
    Lit(&'t Node),
    /// Text computed from `Fn::Sub`/`Fn::Join` or split from a list default.
    Text(String),
    /// A resource of this template (`Ref` or `Fn::GetAtt`).
    Resource { id: &'t str, attr: Option<&'t str> },
    /// Only known at deploy time; the string says where it comes from.
    Unknown(String),
    /// `Ref: AWS::NoValue`.
    NoValue,
}

pub struct Resolver<'t> {
    params: HashMap<&'t str, &'t Node>,
    resources: HashMap<&'t str, &'t Node>,
    conditions: HashMap<&'t str, &'t Node>,
}

impl<'t> Resolver<'t> {
    pub fn new(root: &'t Node) -> Self {
        let collect = |key: &str| -> HashMap<&'t str, &'t Node> {
            root.get(key)
                .map(|m| {
                    m.entries()
                        .iter()
                        .map(|(k, v)| (k.name.as_str(), v))
                        .collect()
                })
                .unwrap_or_default()
        };
        // Closures cannot return borrows of `root` with lifetime 't through `get`
        // unless root is 't, which it is.
        Resolver {
            params: collect("Parameters"),
            resources: collect("Resources"),
            conditions: collect("Conditions"),
        }
    }

    pub fn is_resource(&self, id: &str) -> bool {
        self.resources.contains_key(id)
    }

    pub fn resolve(&self, n: &'t Node) -> Res<'t> {
        self.resolve_depth(n, 0)
    }

    fn resolve_depth(&self, n: &'t Node, depth: usize) -> Res<'t> {
        if depth > 32 {
            return Res::Unknown("a deeply nested expression".into());
        }
        let Some((f, arg)) = n.intrinsic() else {
            return Res::Lit(n);
        };
        match f {
            "Ref" => {
                let Some(name) = arg.as_str() else {
                    return Res::Unknown("a Ref to a non-string".into());
                };
                if name == "AWS::NoValue" {
                    return Res::NoValue;
                }
                if let Some((id, _)) = self.resources.get_key_value(name) {
                    return Res::Resource { id, attr: None };
                }
                if let Some(p) = self.params.get(name) {
                    return match p.get("Default") {
                        Some(d) => Res::Lit(d),
                        None => Res::Unknown(format!("parameter {name}")),
                    };
                }
                Res::Unknown(name.to_string())
            }
            "Fn::GetAtt" => {
                let items = arg.items();
                match (
                    items.first().and_then(|n| n.as_str()),
                    items.get(1).and_then(|n| n.as_str()),
                ) {
                    (Some(res), Some(attr)) => match self.resources.get_key_value(res) {
                        Some((id, _)) => Res::Resource {
                            id,
                            attr: Some(attr),
                        },
                        None => Res::Unknown(format!("Fn::GetAtt {res}.{attr}")),
                    },
                    _ => Res::Unknown("Fn::GetAtt".into()),
                }
            }
            "Fn::If" => {
                let items = arg.items();
                let Some(cond) = items.first().and_then(|c| c.as_str()) else {
                    return Res::Unknown("Fn::If".into());
                };
                match (self.condition(cond), items.get(1), items.get(2)) {
                    (Some(true), Some(a), _) => self.resolve_depth(a, depth + 1),
                    (Some(false), _, Some(b)) => self.resolve_depth(b, depth + 1),
                    _ => Res::Unknown(format!("Fn::If on condition {cond}")),
                }
            }
            "Fn::Select" => {
                let items = arg.items();
                let idx = items
                    .first()
                    .and_then(|i| self.string(i))
                    .and_then(|s| s.parse::<usize>().ok());
                match (idx, items.get(1)) {
                    (Some(i), Some(list)) => match self.list(list) {
                        Ok(v) => v
                            .into_iter()
                            .nth(i)
                            .unwrap_or(Res::Unknown("Fn::Select out of range".into())),
                        Err(why) => Res::Unknown(format!("element {i} of {why}")),
                    },
                    _ => Res::Unknown("Fn::Select".into()),
                }
            }
            "Fn::Sub" | "Fn::Join" => match self.text(n, depth) {
                Some(s) => Res::Text(s),
                None => Res::Unknown(format!("{f} with values only known at deploy time")),
            },
            "Fn::ImportValue" => Res::Unknown(match self.string(arg) {
                Some(s) => format!("Fn::ImportValue {s}"),
                None => "Fn::ImportValue".into(),
            }),
            other => Res::Unknown(other.to_string()),
        }
    }

    /// The value as a plain string, if the template alone fixes it.
    pub fn string(&self, n: &'t Node) -> Option<String> {
        match self.resolve(n) {
            Res::Lit(l) => l.scalar(),
            Res::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer (numbers or numeric strings).
    pub fn int(&self, n: &'t Node) -> Option<i64> {
        self.string(n).and_then(|s| s.trim().parse().ok())
    }

    /// The value as a boolean (`true`/`"true"`, case-insensitive).
    pub fn bool(&self, n: &'t Node) -> Option<bool> {
        match self.string(n)?.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// The logical ID of the resource this value refers to.
    pub fn resource_id(&self, n: &'t Node) -> Option<&'t str> {
        match self.resolve(n) {
            Res::Resource { id, .. } => Some(id),
            _ => None,
        }
    }

    /// A list value: its items, or a description of why it is unknown.
    pub fn list(&self, n: &'t Node) -> Result<Vec<Res<'t>>, String> {
        match self.resolve(n) {
            Res::Lit(l) => match &l.value {
                Value::Seq(items) => Ok(items
                    .iter()
                    .map(|i| self.resolve(i))
                    .filter(|r| !matches!(r, Res::NoValue))
                    .collect()),
                Value::Str(s) => Ok(split_list(s)),
                _ => Err("a value that is not a list".into()),
            },
            Res::Text(s) => Ok(split_list(&s)),
            Res::NoValue => Ok(Vec::new()),
            Res::Resource { id, attr } => Err(match attr {
                Some(a) => format!("{id}.{a}"),
                None => id.to_string(),
            }),
            Res::Unknown(why) => Err(why),
        }
    }

    /// A best-effort rendering of a string with `*` for parts only known at
    /// deploy time (used to recognise shapes such as ECR image URIs).
    pub fn shape(&self, n: &'t Node) -> String {
        self.shape_depth(n, 0)
    }

    fn shape_depth(&self, n: &'t Node, depth: usize) -> String {
        if depth > 16 {
            return "*".into();
        }
        match n.intrinsic() {
            Some(("Fn::Sub", arg)) => {
                let (text, vars) = match &arg.value {
                    Value::Seq(items) => (
                        items.first().and_then(|t| t.as_str()).unwrap_or(""),
                        items.get(1),
                    ),
                    Value::Str(s) => (s.as_str(), None),
                    _ => ("", None),
                };
                sub::parse(text)
                    .into_iter()
                    .map(|p| match p {
                        Part::Lit(l) => l,
                        Part::Var(v) => match vars.and_then(|m| m.get(&v)) {
                            Some(node) => self.shape_depth(node, depth + 1),
                            None => self.var_shape(&v),
                        },
                    })
                    .collect()
            }
            Some(("Fn::Join", arg)) => {
                let items = arg.items();
                let sep = items.first().and_then(|s| s.as_str()).unwrap_or("");
                match items.get(1).map(|l| self.resolve(l)) {
                    Some(Res::Lit(list)) => list
                        .items()
                        .iter()
                        .map(|i| self.shape_depth(i, depth + 1))
                        .collect::<Vec<_>>()
                        .join(sep),
                    _ => "*".into(),
                }
            }
            Some(("Fn::GetAtt", _)) | Some(("Ref", _)) => match self.resolve(n) {
                Res::Lit(l) => l.scalar().unwrap_or_else(|| "*".into()),
                Res::Text(t) => t,
                Res::Resource { id, attr } => self.resource_shape(id, attr),
                _ => "*".into(),
            },
            Some(_) => match self.resolve_depth(n, depth + 1) {
                Res::Lit(l) if l.intrinsic().is_none() => l.scalar().unwrap_or_else(|| "*".into()),
                Res::Lit(l) => self.shape_depth(l, depth + 1),
                Res::Text(t) => t,
                _ => "*".into(),
            },
            None => n.scalar().unwrap_or_else(|| "*".into()),
        }
    }

    fn var_shape(&self, v: &str) -> String {
        if let Some((res, attr)) = v.split_once('.')
            && self.resources.contains_key(res)
        {
            return self.resource_shape(res, Some(attr));
        }
        if let Some(p) = self.params.get(v) {
            return p
                .get("Default")
                .and_then(|d| d.scalar())
                .unwrap_or_else(|| "*".into());
        }
        if self.resources.contains_key(v) {
            return self.resource_shape(v, None);
        }
        "*".into()
    }

    fn resource_shape(&self, id: &str, attr: Option<&str>) -> String {
        let ty = self
            .resources
            .get(id)
            .and_then(|r| r.get("Type"))
            .and_then(|t| t.as_str())
            .unwrap_or("");
        match (ty, attr) {
            ("AWS::ECR::Repository", Some("RepositoryUri")) => "*.dkr.ecr.*.amazonaws.com/*".into(),
            ("AWS::SecretsManager::Secret", None) => "arn:aws:secretsmanager:*".into(),
            ("AWS::SSM::Parameter", None) => "*".into(),
            _ => "*".into(),
        }
    }

    /// Evaluates a named condition with parameter defaults (`None` if it
    /// depends on something only known at deploy time).
    pub fn condition(&self, name: &str) -> Option<bool> {
        self.condition_depth(name, 0)
    }

    fn condition_depth(&self, name: &str, depth: usize) -> Option<bool> {
        if depth > 16 {
            return None;
        }
        let node = self.conditions.get(name)?;
        self.eval(node, depth + 1)
    }

    fn eval(&self, n: &'t Node, depth: usize) -> Option<bool> {
        let (f, arg) = n.intrinsic()?;
        let items = arg.items();
        match f {
            "Fn::Equals" => {
                let a = self.string(items.first()?)?;
                let b = self.string(items.get(1)?)?;
                Some(a == b)
            }
            "Fn::Not" => self.eval(items.first()?, depth).map(|b| !b),
            "Fn::And" => {
                let vals: Option<Vec<bool>> = items.iter().map(|i| self.eval(i, depth)).collect();
                vals.map(|v| v.iter().all(|b| *b))
            }
            "Fn::Or" => {
                let vals: Option<Vec<bool>> = items.iter().map(|i| self.eval(i, depth)).collect();
                vals.map(|v| v.iter().any(|b| *b))
            }
            "Condition" => self.condition_depth(arg.as_str()?, depth),
            _ => None,
        }
    }

    /// The text of `Fn::Sub`/`Fn::Join` when every part is known.
    fn text(&self, n: &'t Node, depth: usize) -> Option<String> {
        let s = self.shape_depth(n, depth);
        if s.contains('*') { None } else { Some(s) }
    }
}

fn split_list(s: &str) -> Vec<Res<'static>> {
    s.split(',')
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| Res::Text(p.to_string()))
        .collect()
}

/// Describes where a value comes from, for messages ("parameter Subnets").
pub fn describe(r: &Res<'_>) -> String {
    match r {
        Res::Lit(n) => n.scalar().unwrap_or_else(|| "a literal value".into()),
        Res::Text(s) => s.clone(),
        Res::Resource { id, attr: Some(a) } => format!("{id}.{a}"),
        Res::Resource { id, attr: None } => id.to_string(),
        Res::Unknown(why) => why.clone(),
        Res::NoValue => "AWS::NoValue".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse;

    #[test]
    fn follows_defaults_conditions_and_subs() {
        let t = parse(
            "t.yaml",
            "Parameters:\n  Env: {Type: String, Default: prod}\n  Subnets: {Type: CommaDelimitedList}\nConditions:\n  IsProd: !Equals [!Ref Env, prod]\nResources:\n  Repo: {Type: AWS::ECR::Repository}\nOut:\n  A: !If [IsProd, 3, 1]\n  B: !Sub '${Env}-x'\n  C: !Ref Subnets\n  D: !Sub '${Repo.RepositoryUri}:latest'\n  E: !GetAtt Repo.Arn\n",
        )
        .unwrap();
        let r = Resolver::new(&t);
        let out = t.get("Out").unwrap();
        assert_eq!(r.int(out.get("A").unwrap()), Some(3));
        assert_eq!(r.string(out.get("B").unwrap()).as_deref(), Some("prod-x"));
        assert_eq!(
            r.list(out.get("C").unwrap()).unwrap_err(),
            "parameter Subnets"
        );
        assert_eq!(
            r.shape(out.get("D").unwrap()),
            "*.dkr.ecr.*.amazonaws.com/*:latest"
        );
        assert_eq!(r.resource_id(out.get("E").unwrap()), Some("Repo"));
    }
}
