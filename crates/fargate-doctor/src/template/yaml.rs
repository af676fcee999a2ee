//! YAML loading through saphyr's `MarkedYaml`, which keeps custom tags and spans.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::{Key, Node, Pos, Value, normalise_getatt, normalise_intrinsic};

pub(super) fn parse(source: &str) -> Result<Node, (Option<Pos>, String)> {
    let docs = MarkedYaml::load_from_str(source).map_err(|e| {
        let m = e.marker();
        let pos = Pos {
            line: m.line(),
            col: m.col() + 1,
        };
        let info = e.info().to_string();
        let message = if info.contains("duplicated key") {
            duplicate_key(source, pos).unwrap_or(info)
        } else {
            info
        };
        (Some(pos), message)
    })?;
    match docs.into_iter().next() {
        Some(doc) => Ok(convert(&doc)),
        None => Ok(Node::new(Pos { line: 1, col: 1 }, Value::Null)),
    }
}

/// Names a duplicated key and the line of its first occurrence: the key at
/// `pos`, and the nearest earlier line of the same mapping (same indentation,
/// no less-indented line in between) with the same key.
fn duplicate_key(source: &str, pos: Pos) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let line = lines.get(pos.line.checked_sub(1)?)?;
    let indent = pos.col.checked_sub(1)?;
    let key_of = |l: &str| -> Option<String> {
        let rest = l.get(indent..)?;
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
        let (k, _) = rest.split_once(':')?;
        Some(k.trim().trim_matches(['"', '\'']).to_string())
    };
    let key = key_of(line)?;
    for i in (0..pos.line - 1).rev() {
        let l = lines[i];
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = l.len() - t.len();
        if ind < indent {
            break;
        }
        if ind == indent && key_of(l).as_deref() == Some(key.as_str()) {
            return Some(format!(
                "duplicate key \"{key}\" (first at line {}, again at line {})",
                i + 1,
                pos.line
            ));
        }
    }
    Some(format!("duplicate key \"{key}\""))
}

fn pos_of(y: &MarkedYaml<'_>) -> Pos {
    Pos {
        line: y.span.start.line(),
        col: y.span.start.col() + 1,
    }
}

fn scalar(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Int(*i),
        Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
        Scalar::String(s) => Value::Str(s.to_string()),
    }
}

fn convert(y: &MarkedYaml<'_>) -> Node {
    let pos = pos_of(y);
    match &y.data {
        YamlData::Value(s) => Node::new(pos, scalar(s)),
        YamlData::Representation(s, _, _) => Node::new(pos, Value::Str(s.to_string())),
        YamlData::Sequence(items) => {
            Node::new(pos, Value::Seq(items.iter().map(convert).collect()))
        }
        YamlData::Mapping(map) => {
            let entries = map
                .iter()
                .map(|(k, v)| {
                    let name = match &k.data {
                        YamlData::Value(s) => match scalar(s) {
                            Value::Str(s) => s,
                            Value::Int(i) => i.to_string(),
                            Value::Bool(b) => b.to_string(),
                            Value::Float(f) => f.to_string(),
                            _ => String::new(),
                        },
                        YamlData::Representation(s, _, _) => s.to_string(),
                        _ => String::new(),
                    };
                    (
                        Key {
                            name,
                            pos: pos_of(k),
                        },
                        convert(v),
                    )
                })
                .collect();
            normalise_intrinsic(pos, entries)
        }
        YamlData::Tagged(tag, inner) => {
            let inner_node = convert(inner);
            if tag.handle == "!!" || tag.handle.starts_with("tag:yaml.org") {
                // Core-schema tags (`!!str`, ...) carry no CloudFormation meaning.
                return Node::new(pos, inner_node.value);
            }
            let name = match tag.suffix.as_str() {
                "Ref" => "Ref".to_string(),
                "Condition" => "Condition".to_string(),
                other => format!("Fn::{other}"),
            };
            let arg = normalise_getatt(&name, inner_node);
            Node::new(pos, Value::Intrinsic(name, Box::new(arg)))
        }
        YamlData::Alias(_) | YamlData::BadValue => Node::new(pos, Value::Null),
    }
}
