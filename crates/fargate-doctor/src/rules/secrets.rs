//! FD7xx — secrets written into task definitions in clear text.

use super::Sink;
use crate::model::Model;

super::declare_rules! {
    FD701 = (
        "literal-secret-env",
        Warning,
        "Environment variable that looks like a secret has a literal value"
    );
}

const MARKERS: [&str; 5] = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY"];

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    for td in m.task_defs() {
        for c in &td.containers {
            for e in &c.env {
                let upper = e.name.to_ascii_uppercase();
                if !MARKERS.iter().any(|k| upper.contains(k)) {
                    continue;
                }
                // A literal: written in the template, not a Ref/Sub of something else.
                let literal = e.value.intrinsic().is_none()
                    && e.value.scalar().is_some_and(|v| !v.trim().is_empty());
                if !literal {
                    continue;
                }
                let name = c.name.clone().unwrap_or_else(|| "?".into());
                out.report(
                    &FD701,
                    &td.res,
                    e.value.pos,
                    format!(
                        "container {name} of task definition {} sets {} to a literal value; anyone who can read the template or describe the task definition sees it",
                        td.res.id, e.name
                    ),
                    format!("move {} to Secrets with ValueFrom a Secrets Manager secret or SSM SecureString parameter", e.name),
                );
            }
        }
    }
}
