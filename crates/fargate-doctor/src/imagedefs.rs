//! `fargate-doctor imagedefs`: writes the `imagedefinitions.json` the
//! CodePipeline ECS deploy action reads, and refuses container names that the
//! task definition does not have (the deploy would fail with "The AWS ECS
//! container NAME does not exist").

use std::fs;

use serde::Serialize;

use crate::model::Model;
use crate::template::{self, Template, Value};

/// Checks that `uri` looks like `[registry/]repository[:tag][@sha256:digest]`.
pub fn validate_image(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Err("image URI is empty".into());
    }
    if uri.contains('$') {
        return Err(format!(
            "image URI {uri:?} contains '$': an unexpanded shell variable?"
        ));
    }
    if let Some(c) = uri.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("image URI {uri:?} contains the character {c:?}"));
    }
    if uri.contains("://") {
        return Err(format!(
            "image URI {uri:?} must not have a scheme; write it as registry/repository:tag"
        ));
    }
    let (rest, digest) = match uri.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (uri, None),
    };
    if let Some(d) = digest {
        let ok = d.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        });
        if !ok {
            return Err(format!(
                "image URI {uri:?} has an invalid digest {d:?} (expected sha256: and 64 lowercase hex digits)"
            ));
        }
    }
    // The tag follows the last ':' after the last '/'.
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let valid = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(format!(
                "image URI {uri:?} has an invalid tag {t:?} (letters, digits, '_', '.', '-'; at most 128)"
            ));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts.first().copied().unwrap_or("");
    if parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost") {
        let host = first.split(':').next().unwrap_or("");
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(format!(
                "image URI {uri:?} has an invalid registry host {first:?}"
            ));
        }
        parts.remove(0);
    }
    for p in &parts {
        let valid = !p.is_empty()
            && p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && p.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(format!(
                "image URI {uri:?} has an invalid repository path component {p:?} (lowercase letters, digits and . _ - only)"
            ));
        }
    }
    Ok(())
}

/// Container names of a task definition given as `FILE` or `FILE#LogicalId`:
/// an ECS task definition JSON (RegisterTaskDefinition input or
/// DescribeTaskDefinition output) or a CloudFormation template.
pub fn container_names(spec: &str) -> Result<(String, Vec<String>), String> {
    let (path, id) = match spec.rsplit_once('#') {
        Some((p, id)) if !std::path::Path::new(spec).exists() => (p, Some(id)),
        _ => (spec, None),
    };
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read task definition {path}: {e}"))?;
    let root =
        template::parse(path, &text).map_err(|e| format!("cannot parse task definition: {e}"))?;
    if root.get("Resources").is_some() {
        let t = Template {
            path: path.to_string(),
            source: text,
            root,
        };
        let m = Model::new(&t, None);
        let tds = m.task_defs();
        let ids: Vec<&str> = tds.iter().map(|t| t.res.id).collect();
        let td = match id {
            Some(id) => tds.iter().find(|t| t.res.id == id).ok_or_else(|| {
                format!(
                    "{path} has no AWS::ECS::TaskDefinition named {id} (task definitions: {})",
                    none_or(&ids)
                )
            })?,
            None => match tds.as_slice() {
                [one] => one,
                [] => return Err(format!("{path} has no AWS::ECS::TaskDefinition resource")),
                _ => {
                    return Err(format!(
                        "{path} has several task definitions ({}); name one as {path}#LogicalId",
                        ids.join(", ")
                    ));
                }
            },
        };
        let names = td.container_names();
        if names.len() != td.containers.len() {
            return Err(format!(
                "task definition {} has container names that are only known at deploy time",
                td.res.id
            ));
        }
        return Ok((format!("{path}#{}", td.res.id), names));
    }
    if id.is_some() {
        return Err(format!(
            "{path} is not a CloudFormation template, so #LogicalId does not apply"
        ));
    }
    let td = root.get("taskDefinition").unwrap_or(&root);
    let defs = td
        .get("containerDefinitions")
        .ok_or_else(|| format!("{path} has neither Resources (CloudFormation) nor containerDefinitions (ECS task definition JSON)"))?;
    let Value::Seq(items) = &defs.value else {
        return Err(format!("{path}: containerDefinitions is not a list"));
    };
    let names: Vec<String> = items
        .iter()
        .filter_map(|c| c.get("name").and_then(|n| n.scalar()))
        .collect();
    if names.len() != items.len() {
        return Err(format!(
            "{path}: every entry of containerDefinitions needs a name"
        ));
    }
    Ok((path.to_string(), names))
}

fn none_or(ids: &[&str]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// One entry of imagedefinitions.json, in the order AWS documents it.
#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    #[serde(rename = "imageUri")]
    image_uri: &'a str,
}

/// Builds the file content after validating every pair.
pub fn build(
    containers: &[String],
    images: &[String],
    task_definition: Option<&str>,
) -> Result<String, String> {
    if containers.len() != images.len() {
        return Err(format!(
            "give one --image per --container (got {} containers and {} images)",
            containers.len(),
            images.len()
        ));
    }
    if containers.is_empty() {
        return Err("give at least one --container NAME --image URI".into());
    }
    let valid = task_definition.map(container_names).transpose()?;
    let mut entries = Vec::new();
    for (name, image) in containers.iter().zip(images) {
        if name.trim().is_empty() {
            return Err("container name is empty".into());
        }
        if let Some((src, names)) = &valid
            && !names.contains(name)
        {
            return Err(format!(
                "container {name:?} is not in task definition {src}; valid names: {}",
                names.join(", ")
            ));
        }
        validate_image(image)?;
        entries.push(Entry {
            name,
            image_uri: image,
        });
    }
    let mut s = serde_json::to_string(&entries).map_err(|e| e.to_string())?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::validate_image;

    #[test]
    fn image_shapes() {
        assert!(validate_image("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.2.3").is_ok());
        assert!(validate_image("nginx").is_ok());
        assert!(validate_image("localhost:5000/a/b:latest").is_ok());
        assert!(validate_image(&format!("ghcr.io/o/r@sha256:{}", "a".repeat(64))).is_ok());
        assert!(
            validate_image("Web:1")
                .unwrap_err()
                .contains("repository path")
        );
        assert!(validate_image("web:").unwrap_err().contains("invalid tag"));
        assert!(
            validate_image("$REPO:$TAG")
                .unwrap_err()
                .contains("unexpanded")
        );
        assert!(
            validate_image("https://x.io/a")
                .unwrap_err()
                .contains("scheme")
        );
        assert!(
            validate_image("a@sha256:xyz")
                .unwrap_err()
                .contains("digest")
        );
    }
}
