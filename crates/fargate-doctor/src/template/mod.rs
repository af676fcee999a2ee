//! One node model for CloudFormation templates, whatever the syntax.
//!
//! YAML (with short-form tags such as `!Ref`) and JSON (with long-form
//! `{"Ref": ...}` objects) are both loaded into [`Node`], which keeps the
//! 1-based line and column of every value so that rules can point at the
//! exact line. Intrinsic functions are normalised to [`Value::Intrinsic`]
//! with their long name (`Ref`, `Fn::GetAtt`, `Fn::Sub`, ...), so rules never
//! care which syntax the author used.

mod json;
pub mod sub;
mod yaml;

use std::fmt;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A value with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// A key of a mapping with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
    /// An intrinsic function: long name (`Ref`, `Fn::Sub`, `Condition`, ...) and its argument.
    Intrinsic(String, Box<Node>),
}

impl Node {
    pub fn new(pos: Pos, value: Value) -> Self {
        Node { pos, value }
    }

    /// Looks a key up in a mapping (`None` for anything else).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key and value of a mapping entry.
    pub fn entry(&self, key: &str) -> Option<(&Key, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == key)
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The entries of the mapping under `key`, mutably.
    pub fn entries_mut(&mut self, key: &str) -> Option<&mut Vec<(Key, Node)>> {
        match &mut self.value {
            Value::Map(entries) => {
                match &mut entries.iter_mut().find(|(k, _)| k.name == key)?.1.value {
                    Value::Map(inner) => Some(inner),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// A plain scalar rendered as a string (strings, numbers, booleans).
    pub fn scalar(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn intrinsic(&self) -> Option<(&str, &Node)> {
        match &self.value {
            Value::Intrinsic(name, arg) => Some((name, arg)),
            _ => None,
        }
    }
}

/// Converts a single-key mapping such as `{"Fn::Sub": ...}` into an intrinsic.
pub(crate) fn normalise_intrinsic(pos: Pos, entries: Vec<(Key, Node)>) -> Node {
    if entries.len() == 1 {
        let name = &entries[0].0.name;
        if name == "Ref"
            || (name == "Condition" && !is_condition_map(&entries[0].1))
            || name.starts_with("Fn::")
        {
            let mut entries = entries;
            if let Some((k, v)) = entries.pop() {
                let arg = normalise_getatt(&k.name, v);
                return Node::new(pos, Value::Intrinsic(k.name, Box::new(arg)));
            }
            return Node::new(pos, Value::Map(entries));
        }
    }
    Node::new(pos, Value::Map(entries))
}

/// `Condition: X` on a resource is a plain string; `{"Condition": "X"}` inside
/// `Fn::And` is the intrinsic. Only the string form can be an intrinsic.
fn is_condition_map(v: &Node) -> bool {
    !matches!(v.value, Value::Str(_))
}

/// `!GetAtt A.B` and `{"Fn::GetAtt": ["A", "B"]}` become the same sequence.
pub(crate) fn normalise_getatt(name: &str, arg: Node) -> Node {
    if name != "Fn::GetAtt" {
        return arg;
    }
    match &arg.value {
        Value::Str(s) => match s.split_once('.') {
            Some((res, attr)) => Node::new(
                arg.pos,
                Value::Seq(vec![
                    Node::new(arg.pos, Value::Str(res.to_string())),
                    Node::new(arg.pos, Value::Str(attr.to_string())),
                ]),
            ),
            None => arg,
        },
        _ => arg,
    }
}

/// A loaded template file.
#[derive(Debug)]
pub struct Template {
    pub path: String,
    pub source: String,
    pub root: Node,
}

/// Why a file could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub path: String,
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.path, p.line, p.col, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// What a file turned out to be.
#[derive(Debug)]
pub enum Loaded {
    Template(Template),
    /// Parsed, but it has neither `Resources` nor `AWSTemplateFormatVersion`.
    NotCloudFormation,
}

/// Parses YAML or JSON text (JSON when the first non-blank character is `{`).
pub fn parse(path: &str, source: &str) -> Result<Node, LoadError> {
    let trimmed = source.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        json::parse(source).map_err(|(pos, message)| LoadError {
            path: path.to_string(),
            pos: Some(pos),
            message,
        })
    } else {
        yaml::parse(source).map_err(|(pos, message)| LoadError {
            path: path.to_string(),
            pos,
            message,
        })
    }
}

/// Loads a file and decides whether it is a CloudFormation template.
pub fn load(path: &str, source: String) -> Result<Loaded, LoadError> {
    let root = parse(path, &source)?;
    if root.get("Resources").is_none() && root.get("AWSTemplateFormatVersion").is_none() {
        return Ok(Loaded::NotCloudFormation);
    }
    Ok(Loaded::Template(Template {
        path: path.to_string(),
        source,
        root,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_give_the_same_intrinsics() {
        let y = parse("t.yaml", "A: !GetAtt TG.TargetGroupArn\nB: !Ref X\n").unwrap();
        let j = parse(
            "t.json",
            "{\"A\": {\"Fn::GetAtt\": [\"TG\", \"TargetGroupArn\"]},\n \"B\": {\"Ref\": \"X\"}}",
        )
        .unwrap();
        let strip = |n: &Node| {
            format!(
                "{:?}",
                n.get("A").map(|a| a.intrinsic().map(|(f, a)| (
                    f.to_string(),
                    a.items().iter().map(|i| i.scalar()).collect::<Vec<_>>()
                )))
            )
        };
        assert_eq!(strip(&y), strip(&j));
        assert_eq!(y.get("B").unwrap().intrinsic().unwrap().0, "Ref");
        assert_eq!(j.get("B").unwrap().pos, Pos { line: 2, col: 7 });
        assert_eq!(y.get("B").unwrap().pos.line, 2);
    }
}
