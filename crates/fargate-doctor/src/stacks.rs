//! What a template means together with the others of the run, prepared
//! before the rules see it: `Fn::ImportValue` resolved against the exports
//! of the other templates (a network stack and a service stack, a
//! `cdk.out`), and Step Functions `DefinitionString` text read as a
//! `Definition` object.

use crate::resolve;
use crate::template::{self, Key, Node, Template, Value};

/// An export of a template in the run: name shape, value, template.
pub type Export<'a> = (String, &'a Node, &'a Template);

/// `Outputs` exports of a template: the export name as a shape (`*` for
/// parts only known at deploy time) and the exported value.
pub fn exports(t: &Template) -> Vec<(String, &Node)> {
    let r = resolve::Resolver::new(&t.root);
    t.root
        .get("Outputs")
        .map(|o| o.entries())
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, out)| {
            let name = r.shape(out.get("Export")?.get("Name")?);
            // A name that is all unknown would match any import.
            let literal = name.replace('*', "");
            (literal.len() >= 3).then_some((name, out.get("Value")?))
        })
        .collect()
}

/// `t` with each `Fn::ImportValue` that another template of the run exports
/// replaced by the exported value, and that template's parameters,
/// mappings, conditions and resources merged in (without overriding), so
/// subnets, routes and security groups of a network stack are proven
/// instead of noted. `None` when nothing is imported from the run.
pub fn link(t: &Template, table: &[Export<'_>]) -> Option<Template> {
    if !table.iter().any(|(_, _, o)| o.path != t.path) {
        return None;
    }
    let r = resolve::Resolver::new(&t.root);
    let table: Vec<&Export<'_>> = table.iter().filter(|(_, _, o)| o.path != t.path).collect();
    let matches = |import: &Node| -> Option<(&Node, &Template)> {
        let want = r.shape(import);
        table
            .iter()
            .find(|(name, _, _)| {
                crate::model::pipeline::glob(name, &want)
                    || crate::model::pipeline::glob(&want, name)
            })
            .map(|(_, v, o)| (*v, *o))
    };
    let mut used: Vec<&Template> = Vec::new();
    let mut root = t.root.clone();
    let resources = root.entries_mut("Resources")?;
    for (_, res) in resources.iter_mut() {
        replace_imports(res, &mut |arg| {
            let (value, from) = matches(arg)?;
            if !used.iter().any(|u| u.path == from.path) {
                used.push(from);
            }
            Some(value.clone())
        });
    }
    if used.is_empty() {
        return None;
    }
    for section in ["Parameters", "Mappings", "Conditions", "Resources"] {
        for o in &used {
            let Some(theirs) = o.root.get(section) else {
                continue;
            };
            if root.get(section).is_none()
                && let Value::Map(entries) = &mut root.value
            {
                entries.push((
                    Key {
                        name: section.to_string(),
                        pos: theirs.pos,
                    },
                    Node::new(theirs.pos, Value::Map(Vec::new())),
                ));
            }
            if let Some(mine) = root.entries_mut(section) {
                for (k, v) in theirs.entries() {
                    if !mine.iter().any(|(m, _)| m.name == k.name) {
                        mine.push((k.clone(), v.clone()));
                    }
                }
            }
        }
    }
    Some(Template {
        path: t.path.clone(),
        source: t.source.clone(),
        root,
    })
}

/// `t` with each Step Functions `DefinitionString` (JSON text, often a
/// `Fn::Sub`) also given as a `Definition` object, so `ecs:runTask` states
/// written as text are checked like those written as objects. `${Res}` and
/// `${Res.Attr}` of this template's resources become `Ref`/`Fn::GetAtt`
/// again; every node points at the `DefinitionString` line. `None` when
/// there is nothing to expand.
pub fn expand_definition_strings(t: &Template) -> Option<Template> {
    let r = resolve::Resolver::new(&t.root);
    let resources = t.root.get("Resources")?;
    let mut defs: Vec<(String, Node)> = Vec::new();
    for (k, res) in resources.entries() {
        if res.get("Type").and_then(|x| x.as_str()) != Some("AWS::StepFunctions::StateMachine") {
            continue;
        }
        let Some(props) = res.get("Properties") else {
            continue;
        };
        if props.get("Definition").is_some() {
            continue;
        }
        let Some((key, text)) = props.entry("DefinitionString") else {
            continue;
        };
        let rendered = r.render(text);
        if !rendered.contains(":ecs:runTask") {
            continue;
        }
        let Ok(mut node) = template::parse(&t.path, &rendered) else {
            continue;
        };
        let names: Vec<&str> = resources
            .entries()
            .iter()
            .map(|(k, _)| k.name.as_str())
            .collect();
        restore_refs(&mut node, key.pos, &names);
        defs.push((k.name.clone(), node));
    }
    if defs.is_empty() {
        return None;
    }
    let mut root = t.root.clone();
    let resources = root.entries_mut("Resources")?;
    for (id, def) in defs {
        let Some((_, res)) = resources.iter_mut().find(|(k, _)| k.name == id) else {
            continue;
        };
        if let Value::Map(entries) = &mut res.value
            && let Some((
                _,
                Node {
                    value: Value::Map(props),
                    ..
                },
            )) = entries.iter_mut().find(|(k, _)| k.name == "Properties")
        {
            props.push((
                Key {
                    name: "Definition".into(),
                    pos: def.pos,
                },
                def,
            ));
        }
    }
    Some(Template {
        path: t.path.clone(),
        source: t.source.clone(),
        root,
    })
}

/// Moves every node to `pos` and turns `«Res»`/`«Res.Attr»` strings naming
/// a resource back into `Ref`/`Fn::GetAtt`.
fn restore_refs(n: &mut Node, pos: crate::template::Pos, resources: &[&str]) {
    n.pos = pos;
    if let Value::Str(s) = &n.value
        && let Some(inner) = resolve::as_symbol(s)
    {
        let (res, attr) = match inner.split_once('.') {
            Some((r, a)) => (r, Some(a)),
            None => (inner, None),
        };
        if resources.contains(&res) {
            let str_node = |v: &str| Node::new(pos, Value::Str(v.to_string()));
            n.value = match attr {
                None => Value::Intrinsic("Ref".into(), Box::new(str_node(res))),
                Some(a) => Value::Intrinsic(
                    "Fn::GetAtt".into(),
                    Box::new(Node::new(pos, Value::Seq(vec![str_node(res), str_node(a)]))),
                ),
            };
        }
        return;
    }
    match &mut n.value {
        Value::Seq(items) => items
            .iter_mut()
            .for_each(|i| restore_refs(i, pos, resources)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            k.pos = pos;
            restore_refs(v, pos, resources)
        }),
        Value::Intrinsic(_, arg) => restore_refs(arg, pos, resources),
        _ => {}
    }
}

fn replace_imports(n: &mut Node, f: &mut impl FnMut(&Node) -> Option<Node>) {
    if let Value::Intrinsic(name, arg) = &n.value
        && name == "Fn::ImportValue"
    {
        if let Some(v) = f(arg) {
            *n = v;
        }
        return;
    }
    match &mut n.value {
        Value::Seq(items) => items.iter_mut().for_each(|i| replace_imports(i, f)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| replace_imports(v, f)),
        Value::Intrinsic(_, arg) => replace_imports(arg, f),
        _ => {}
    }
}
