//! Resolution of what a template value means without deploying it.
//!
//! `Ref`/`Fn::GetAtt` to resources become [`Res::Resource`], parameters with a
//! `Default` become that default (unless the scenario gives a condition on
//! the parameter the value the default contradicts), `Fn::If` follows the branch its condition
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
    mappings: Option<&'t Node>,
    /// The condition values of the scenario being checked (see
    /// [`scenarios`]); `None` evaluates conditions with parameter defaults.
    scenario: Option<Scenario>,
    /// Parameters whose default contradicts the scenario (a condition on
    /// them takes the other value): their value is not the default here.
    stale_defaults: std::collections::HashSet<&'t str>,
}

/// One consistent set of condition values: the same condition is the same
/// boolean everywhere in one evaluation. `None` for a condition that stays
/// unknown in this scenario.
pub type Scenario = std::collections::BTreeMap<String, Option<bool>>;

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
            mappings: root.get("Mappings"),
            scenario: None,
            stale_defaults: Default::default(),
        }
    }

    /// A resolver that takes condition values from `scenario`.
    pub fn with_scenario(root: &'t Node, scenario: Option<Scenario>) -> Self {
        let base = Resolver::new(root);
        let mut stale = std::collections::HashSet::new();
        for (name, value) in scenario.iter().flatten() {
            let Some(v) = value else { continue };
            if base.condition(name) == Some(!*v) {
                base.condition_params(name, 0, &mut stale);
            }
        }
        Resolver {
            scenario,
            stale_defaults: stale,
            ..base
        }
    }

    /// The parameters a condition reads, through the conditions it names.
    fn condition_params(
        &self,
        name: &str,
        depth: usize,
        out: &mut std::collections::HashSet<&'t str>,
    ) {
        let Some(node) = self.conditions.get(name) else {
            return;
        };
        if depth > 16 {
            return;
        }
        walk_refs(node, &mut |n| match n.intrinsic() {
            Some(("Ref", a)) => {
                if let Some((k, _)) = a.as_str().and_then(|p| self.params.get_key_value(p)) {
                    out.insert(k);
                }
            }
            Some(("Condition", a)) => {
                if let Some(c) = a.as_str() {
                    self.condition_params(c, depth + 1, out);
                }
            }
            _ => {}
        });
    }

    /// A parameter's default, unless the scenario rules it out.
    fn default_of(&self, name: &str) -> Option<&'t Node> {
        if self.stale_defaults.contains(name) {
            return None;
        }
        self.params.get(name).and_then(|p| p.get("Default"))
    }

    /// Whether a parameter of this name exists and has no `Default`.
    pub fn param_without_default(&self, name: &str) -> bool {
        self.params
            .get(name)
            .is_some_and(|p| p.get("Default").is_none())
    }

    /// `Some((name, default))` when `n` is `Ref` to a parameter, or the
    /// equivalent `Fn::Sub` of nothing but that parameter (`!Sub ${Name}`).
    pub fn param_ref(&self, n: &'t Node) -> Option<(&'t str, Option<String>)> {
        let name = match n.intrinsic()? {
            ("Ref", arg) => arg.as_str()?,
            ("Fn::Sub", arg) => arg
                .as_str()?
                .trim()
                .strip_prefix("${")?
                .strip_suffix('}')
                .filter(|v| !v.contains(['$', '{', '}', '!']))?,
            _ => return None,
        };
        let (k, p) = self.params.get_key_value(name)?;
        Some((k, p.get("Default").and_then(|d| d.scalar())))
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
                if self.params.contains_key(name) {
                    return match self.default_of(name) {
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
            "Fn::FindInMap" => {
                let items = arg.items();
                let keys: Option<Vec<String>> =
                    items.iter().take(3).map(|i| self.string(i)).collect();
                match keys {
                    Some(k) if k.len() == 3 => match self
                        .mappings
                        .and_then(|m| m.get(&k[0]))
                        .and_then(|m| m.get(&k[1]))
                        .and_then(|m| m.get(&k[2]))
                    {
                        Some(v) => self.resolve_depth(v, depth + 1),
                        None => Res::Unknown(format!(
                            "Fn::FindInMap {}.{}.{} (not in Mappings)",
                            k[0], k[1], k[2]
                        )),
                    },
                    _ => Res::Unknown("Fn::FindInMap with keys only known at deploy time".into()),
                }
            }
            // The export name as written, with `${Param}` for unknown parts.
            "Fn::ImportValue" => Res::Unknown(format!(
                "Fn::ImportValue {}",
                self.render(arg)
                    .replace("«parameter ", "${")
                    .replace('«', "${")
                    .replace('»', "}")
            )),
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
        // `!Split [",", X]`: the items of X when it is a `!Join` with the same
        // separator (an export of a list, merged in from another stack), or
        // its text split; else the list comes from wherever X does.
        if let Some(("Fn::Split", arg)) = n.intrinsic() {
            let items = arg.items();
            let (Some(sep), Some(src)) = (items.first().and_then(|s| s.as_str()), items.get(1))
            else {
                return Err("Fn::Split".into());
            };
            if let Some(("Fn::Join", j)) = src.intrinsic()
                && j.items().first().and_then(|s| s.as_str()) == Some(sep)
                && let Some(list) = j.items().get(1)
            {
                return self.list(list);
            }
            return match self.resolve(src) {
                Res::Lit(l) if l.intrinsic().is_none() => match l.scalar() {
                    Some(t) => Ok(t
                        .split(sep)
                        .map(|p| Res::Text(p.trim().to_string()))
                        .collect()),
                    None => Err("a value that is not a list".into()),
                },
                Res::Text(t) => Ok(t
                    .split(sep)
                    .map(|p| Res::Text(p.trim().to_string()))
                    .collect()),
                other => Err(describe(&other)),
            };
        }
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
        self.shape_depth(n, 0, false)
    }

    /// Like [`Resolver::shape`], but a part only known at deploy time is
    /// written `«parameter Name»` (see [`symbol`]) instead of `*`, so that
    /// text such as an inline buildspec can be compared with other values
    /// that come from the same parameter, and messages never show a bare `*`.
    pub fn render(&self, n: &'t Node) -> String {
        self.shape_depth(n, 0, true)
    }

    fn unknown(&self, sym: bool, what: impl FnOnce() -> String) -> String {
        if sym { symbol(&what()) } else { "*".into() }
    }

    fn shape_depth(&self, n: &'t Node, depth: usize, sym: bool) -> String {
        if depth > 16 {
            return self.unknown(sym, || "a deeply nested expression".into());
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
                            Some(node) => self.shape_depth(node, depth + 1, sym),
                            None => self.var_shape(&v, sym),
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
                        .map(|i| self.shape_depth(i, depth + 1, sym))
                        .collect::<Vec<_>>()
                        .join(sep),
                    Some(other) => self.unknown(sym, || describe(&other)),
                    None => self.unknown(sym, || "Fn::Join".into()),
                }
            }
            Some(("Ref", arg)) if arg.as_str() == Some("AWS::URLSuffix") => "amazonaws.com".into(),
            Some(("Fn::GetAtt", _)) | Some(("Ref", _)) => match self.resolve(n) {
                Res::Lit(l) => l
                    .scalar()
                    .unwrap_or_else(|| self.unknown(sym, || "a non-scalar value".into())),
                Res::Text(t) => t,
                Res::Resource { id, attr } => self.resource_shape(id, attr, sym),
                other => self.unknown(sym, || describe(&other)),
            },
            Some(_) => match self.resolve_depth(n, depth + 1) {
                Res::Lit(l) if l.intrinsic().is_none() => l
                    .scalar()
                    .unwrap_or_else(|| self.unknown(sym, || "a non-scalar value".into())),
                Res::Lit(l) => self.shape_depth(l, depth + 1, sym),
                Res::Text(t) => t,
                other => self.unknown(sym, || describe(&other)),
            },
            None => n
                .scalar()
                .unwrap_or_else(|| self.unknown(sym, || "a non-scalar value".into())),
        }
    }

    fn var_shape(&self, v: &str, sym: bool) -> String {
        if v == "AWS::URLSuffix" {
            return "amazonaws.com".into();
        }
        if let Some((res, attr)) = v.split_once('.')
            && self.resources.contains_key(res)
        {
            return self.resource_shape(res, Some(attr), sym);
        }
        if self.params.contains_key(v) {
            return self
                .default_of(v)
                .and_then(|d| d.scalar())
                .unwrap_or_else(|| self.unknown(sym, || format!("parameter {v}")));
        }
        if self.resources.contains_key(v) {
            return self.resource_shape(v, None, sym);
        }
        self.unknown(sym, || v.to_string())
    }

    fn resource_shape(&self, id: &str, attr: Option<&str>, sym: bool) -> String {
        let ty = self
            .resources
            .get(id)
            .and_then(|r| r.get("Type"))
            .and_then(|t| t.as_str())
            .unwrap_or("");
        let what = || match attr {
            Some(a) => format!("{id}.{a}"),
            None => id.to_string(),
        };
        match (ty, attr) {
            ("AWS::ECR::Repository", Some("RepositoryUri")) => {
                format!("*.dkr.ecr.*.amazonaws.com/{}", self.unknown(sym, what))
            }
            ("AWS::SecretsManager::Secret", None) => "arn:aws:secretsmanager:*".into(),
            _ => self.unknown(sym, what),
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
        if let Some(sc) = &self.scenario {
            return sc.get(name).copied().flatten();
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

    /// Whether the resolver follows a scenario (see [`scenarios`]).
    pub fn has_scenario(&self) -> bool {
        self.scenario.is_some()
    }

    /// A condition under given parameter values and free condition values.
    fn eval_with(&self, n: &'t Node, a: &Assignment<'_>, depth: usize) -> Option<bool> {
        if depth > 16 {
            return None;
        }
        let (f, arg) = n.intrinsic()?;
        let items = arg.items();
        let side = |x: &'t Node| -> Option<String> {
            if let Some(("Ref", r)) = x.intrinsic()
                && let Some(v) = r.as_str().and_then(|name| a.params.get(name))
            {
                return Some(v.to_string());
            }
            self.string(x)
        };
        match f {
            "Fn::Equals" => Some(side(items.first()?)? == side(items.get(1)?)?),
            "Fn::Not" => self.eval_with(items.first()?, a, depth + 1).map(|b| !b),
            "Fn::And" | "Fn::Or" => {
                let vals: Option<Vec<bool>> = items
                    .iter()
                    .map(|i| self.eval_with(i, a, depth + 1))
                    .collect();
                vals.map(|v| {
                    if f == "Fn::And" {
                        v.iter().all(|b| *b)
                    } else {
                        v.iter().any(|b| *b)
                    }
                })
            }
            "Condition" => self.cond_with(arg.as_str()?, a, depth + 1),
            _ => None,
        }
    }

    /// A condition's value: from its expression when that is known (so a
    /// condition built on another stays consistent with it), else the free
    /// value assigned to it.
    fn cond_with(&self, name: &str, a: &Assignment<'_>, depth: usize) -> Option<bool> {
        let own = self
            .conditions
            .get(name)
            .and_then(|n| self.eval_with(n, a, depth));
        own.or_else(|| a.atoms.get(name).copied())
    }

    /// The text of `Fn::Sub`/`Fn::Join` when every part is known.
    fn text(&self, n: &'t Node, depth: usize) -> Option<String> {
        let s = self.shape_depth(n, depth, false);
        if s.contains('*') { None } else { Some(s) }
    }
}

/// Parameter values and free condition values for one evaluation.
struct Assignment<'a> {
    params: HashMap<&'a str, String>,
    atoms: HashMap<&'a str, bool>,
}

/// The values of one group's conditions.
type Valuation = Vec<(String, Option<bool>)>;

/// At most this many scenarios are checked: all combinations when they are
/// few, else one baseline and each group of related conditions varied alone.
const MAX_SCENARIOS: usize = 64;

/// At most this many parameter combinations are tried for one group.
const MAX_COMBOS: usize = 4096;

/// A parameter value that differs from every value the template names.
const OTHER: &str = "\u{0}other";

/// The consistent condition valuations of a template worth checking.
///
/// Each parameter a condition reads takes each of its `AllowedValues`, or
/// else its default, every literal it is compared with and one other value;
/// a condition that stays unknown (it reads `AWS::Region`, an import, ...)
/// is a free boolean. Conditions that share a parameter (or refer to each
/// other) form a group whose values are enumerated together, so the same
/// parameter never takes two values in one scenario. When the product of
/// the groups' valuations is small, every combination is a scenario; else
/// the baseline (parameter defaults) and each group's other valuations with
/// the rest at the baseline. A group too large to enumerate stays unknown
/// (`Fn::If` on it is not guessed). `[None]` means no condition is used by
/// a resource: evaluate with defaults.
pub fn scenarios(root: &Node) -> Vec<Option<Scenario>> {
    let r = Resolver::new(root);
    if r.conditions.is_empty() {
        return vec![None];
    }
    let mut names: Vec<&str> = r.conditions.keys().copied().collect();
    names.sort_unstable();
    // Conditions the resources use; only their values make scenarios differ.
    let mut used: Vec<String> = Vec::new();
    if let Some(res) = root.get("Resources") {
        walk_refs(res, &mut |n| {
            if let Some(("Fn::If", a)) = n.intrinsic()
                && let Some(c) = a.items().first().and_then(|c| c.as_str())
            {
                used.push(c.to_string());
            }
        });
        for (_, v) in res.entries() {
            if let Some(c) = v.get("Condition").and_then(|c| c.as_str()) {
                used.push(c.to_string());
            }
        }
    }
    used.retain(|u| r.conditions.contains_key(u.as_str()));
    used.sort();
    used.dedup();
    if used.is_empty() {
        return vec![None];
    }
    // Each condition's support: the parameters (with compared literals) and
    // the conditions it reads, transitively.
    let mut literals: HashMap<&str, Vec<String>> = HashMap::new();
    let mut direct: HashMap<&str, (Vec<&str>, Vec<&str>)> = HashMap::new();
    for name in &names {
        let mut ps: Vec<&str> = Vec::new();
        let mut cs: Vec<&str> = Vec::new();
        if let Some(node) = r.conditions.get(name) {
            walk_refs(node, &mut |n| match n.intrinsic() {
                Some(("Fn::Equals", args)) => {
                    let items = args.items();
                    for (a, b) in [(items.first(), items.get(1)), (items.get(1), items.first())] {
                        let Some(("Ref", p)) = a.and_then(|a| a.intrinsic()) else {
                            continue;
                        };
                        let Some((p, _)) = p.as_str().and_then(|p| r.params.get_key_value(p))
                        else {
                            continue;
                        };
                        ps.push(p);
                        literals
                            .entry(p)
                            .or_default()
                            .extend(b.and_then(|b| r.string(b)));
                    }
                }
                Some(("Condition", c)) => {
                    if let Some((c, _)) = c.as_str().and_then(|c| r.conditions.get_key_value(c)) {
                        cs.push(c);
                    }
                }
                _ => {}
            });
        }
        direct.insert(name, (ps, cs));
    }
    // Group the used conditions whose supports overlap.
    let mut groups: Vec<(Vec<&str>, Vec<&str>, Vec<&str>)> = Vec::new(); // (used, params, conditions)
    for u in &used {
        let (ps, cs) = support(&direct, u);
        let mut merged = (vec![u.as_str()], ps, cs);
        let mut rest = Vec::new();
        for g in groups.drain(..) {
            if g.1.iter().any(|p| merged.1.contains(p)) || g.2.iter().any(|c| merged.2.contains(c))
            {
                merged.0.extend(g.0);
                merged.1.extend(g.1);
                merged.2.extend(g.2);
            } else {
                rest.push(g);
            }
        }
        merged.1.sort_unstable();
        merged.1.dedup();
        merged.2.sort_unstable();
        merged.2.dedup();
        rest.push(merged);
        groups = rest;
    }
    // Each group's valuations of its used conditions; the first is the
    // baseline (defaults, or the other value; free conditions false).
    let mut group_vals: Vec<Vec<Valuation>> = Vec::new();
    for (gused, gparams, gconds) in &groups {
        let cands: Vec<Vec<String>> = gparams
            .iter()
            .map(|p| {
                let node = r.params.get(p).copied();
                let default = node.and_then(|n| n.get("Default")).and_then(|d| d.scalar());
                let allowed: Vec<String> = node
                    .and_then(|n| n.get("AllowedValues"))
                    .map(|l| l.items().iter().filter_map(|i| i.scalar()).collect())
                    .unwrap_or_default();
                let mut c: Vec<String> = if allowed.is_empty() {
                    let mut c = literals.get(p).cloned().unwrap_or_default();
                    c.push(OTHER.to_string());
                    c
                } else {
                    allowed
                };
                c.sort();
                c.dedup();
                // The baseline value first.
                let first = default.filter(|d| c.contains(d)).unwrap_or_else(|| {
                    c.iter()
                        .find(|x| *x == OTHER)
                        .cloned()
                        .unwrap_or_else(|| c[0].clone())
                });
                c.retain(|x| *x != first);
                c.insert(0, first);
                c
            })
            .collect();
        let unknown = || vec![gused.iter().map(|u| (u.to_string(), None)).collect()];
        let total = cands
            .iter()
            .try_fold(1usize, |acc, c| acc.checked_mul(c.len()));
        let Some(total) = total.filter(|t| *t <= MAX_COMBOS) else {
            group_vals.push(unknown());
            continue;
        };
        let assign = |i: usize| -> Assignment<'_> {
            let mut rest = i;
            let mut params = HashMap::new();
            for (p, c) in gparams.iter().zip(&cands) {
                params.insert(*p, c[rest % c.len()].clone());
                rest /= c.len();
            }
            Assignment {
                params,
                atoms: HashMap::new(),
            }
        };
        // Conditions of the group still unknown are free booleans.
        let mut atoms: Vec<&str> = Vec::new();
        for c in gconds {
            let a = assign(0);
            let mut a = a;
            for x in &atoms {
                a.atoms.insert(x, false);
            }
            if r.cond_with(c, &a, 0).is_none() {
                atoms.push(c);
            }
        }
        if atoms.len() > 6 || total << atoms.len() > MAX_COMBOS {
            group_vals.push(unknown());
            continue;
        }
        let mut vals: Vec<Valuation> = Vec::new();
        for bits in 0..(1u32 << atoms.len()) {
            for i in 0..total {
                let mut a = assign(i);
                for (k, x) in atoms.iter().enumerate() {
                    a.atoms.insert(x, bits & (1 << k) != 0);
                }
                let v: Valuation = gused
                    .iter()
                    .map(|u| (u.to_string(), r.cond_with(u, &a, 0)))
                    .collect();
                if !vals.contains(&v) {
                    vals.push(v);
                }
            }
        }
        if vals.len() > MAX_SCENARIOS {
            group_vals.push(unknown());
        } else {
            group_vals.push(vals);
        }
    }
    let product = group_vals
        .iter()
        .try_fold(1usize, |acc, v| acc.checked_mul(v.len()))
        .filter(|p| *p <= MAX_SCENARIOS);
    let build = |choice: &[usize]| -> Scenario {
        group_vals
            .iter()
            .zip(choice)
            .flat_map(|(vals, i)| vals[*i].iter().cloned())
            .collect()
    };
    let mut out: Vec<Scenario> = Vec::new();
    match product {
        Some(total) => {
            for mut i in 0..total {
                let choice: Vec<usize> = group_vals
                    .iter()
                    .map(|v| {
                        let c = i % v.len();
                        i /= v.len();
                        c
                    })
                    .collect();
                out.push(build(&choice));
            }
        }
        None => {
            let base = vec![0; group_vals.len()];
            out.push(build(&base));
            for (g, vals) in group_vals.iter().enumerate() {
                for k in 1..vals.len() {
                    let mut choice = base.clone();
                    choice[g] = k;
                    out.push(build(&choice));
                }
            }
        }
    }
    out.dedup();
    out.into_iter().map(Some).collect()
}

/// The parameters a condition reads and the conditions it depends on
/// (itself included), transitively.
fn support<'a>(
    direct: &HashMap<&'a str, (Vec<&'a str>, Vec<&'a str>)>,
    name: &'a str,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut ps, mut seen) = (Vec::new(), vec![name]);
    let mut todo = vec![name];
    while let Some(c) = todo.pop() {
        if let Some((p, cs)) = direct.get(c) {
            ps.extend(p.iter().copied());
            for x in cs {
                if !seen.contains(x) {
                    seen.push(x);
                    todo.push(x);
                }
            }
        }
    }
    ps.sort_unstable();
    ps.dedup();
    (ps, seen)
}

fn walk_refs<'t>(n: &'t Node, f: &mut impl FnMut(&'t Node)) {
    f(n);
    match &n.value {
        Value::Seq(items) => items.iter().for_each(|i| walk_refs(i, f)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| walk_refs(v, f)),
        Value::Intrinsic(_, arg) => walk_refs(arg, f),
        _ => {}
    }
}

fn split_list(s: &str) -> Vec<Res<'static>> {
    s.split(',')
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| Res::Text(p.to_string()))
        .collect()
}

/// Marks a part of rendered text that is only known at deploy time.
pub fn symbol(what: &str) -> String {
    format!("«{what}»")
}

/// The description inside a [`symbol`], if `s` is exactly one.
pub fn as_symbol(s: &str) -> Option<&str> {
    s.strip_prefix('«')?.strip_suffix('»')
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

    #[test]
    fn scenarios_keep_one_boolean_per_condition() {
        let t = parse(
            "t.yaml",
            "Parameters:\n  Launch: {Type: String, Default: Fargate, AllowedValues: [Fargate, EC2]}\nConditions:\n  Fargate: !Equals [!Ref Launch, Fargate]\n  EC2: !Equals [!Ref Launch, EC2]\n  Prod: !Equals [!Ref 'AWS::StackName', prod]\nResources:\n  A: {Type: X, Condition: EC2, Properties: {M: !If [Fargate, awsvpc, bridge]}}\n  B: {Type: X, Condition: Prod}\n",
        )
        .unwrap();
        let sc = scenarios(&t);
        // Launch takes 2 values, Prod (unknown) is free: 4 consistent sets,
        // and never Fargate and EC2 together.
        assert_eq!(sc.len(), 4);
        for s in sc.iter().flatten() {
            assert_ne!(s["Fargate"], s["EC2"]);
            let r = Resolver::with_scenario(&t, Some(s.clone()));
            let m = t
                .get("Resources")
                .and_then(|r| r.get("A"))
                .and_then(|a| a.get("Properties"))
                .and_then(|p| p.get("M"))
                .unwrap();
            let want = if s["Fargate"] == Some(true) {
                "awsvpc"
            } else {
                "bridge"
            };
            assert_eq!(r.string(m).as_deref(), Some(want));
        }
    }

    #[test]
    fn find_in_map_sub_maps_and_url_suffix() {
        let t = parse(
            "t.yaml",
            "Parameters:\n  Size: {Type: String, Default: small}\n  Repo: {Type: String}\nMappings:\n  S: {small: {Cpu: 256}}\nOut:\n  A: !FindInMap [S, !Ref Size, Cpu]\n  B: !Sub ['name ${N}', {N: !Ref Repo}]\n  C: !Sub '1.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/r:1'\n",
        )
        .unwrap();
        let r = Resolver::new(&t);
        let out = t.get("Out").unwrap();
        assert_eq!(r.int(out.get("A").unwrap()), Some(256));
        assert_eq!(r.render(out.get("B").unwrap()), "name «parameter Repo»");
        assert_eq!(
            r.shape(out.get("C").unwrap()),
            "1.dkr.ecr.*.amazonaws.com/r:1"
        );
    }
}
