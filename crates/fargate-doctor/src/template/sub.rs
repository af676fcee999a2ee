//! Parsing of `Fn::Sub` strings into literal text and `${...}` references.

/// A piece of a `Fn::Sub` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    /// `${Name}` or `${Resource.Attribute}` or `${AWS::Region}`.
    Var(String),
}

/// Splits `a-${B}-${!C}` into parts; `${!C}` is the literal text `${C}`.
pub fn parse(s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        lit.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let inner = &after[..end];
                if let Some(escaped) = inner.strip_prefix('!') {
                    lit.push_str("${");
                    lit.push_str(escaped);
                    lit.push('}');
                } else {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(inner.trim().to_string()));
                }
                rest = &after[end + 1..];
            }
            None => {
                lit.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_vars_and_escapes() {
        assert_eq!(
            parse("arn:${AWS::Partition}:x/${Repo.Arn}-${!Lit}"),
            vec![
                Part::Lit("arn:".into()),
                Part::Var("AWS::Partition".into()),
                Part::Lit(":x/".into()),
                Part::Var("Repo.Arn".into()),
                Part::Lit("-${Lit}".into()),
            ]
        );
    }
}
