//! `fargate-doctor explain`: reads what the user has (a `stoppedReason`, or
//! DescribeTasks JSON) and hands it to the shared [`ecs_explain`] crate, which
//! prpr uses too, so both say the same thing about the same stop.
//!
//! The JSON printed by `explain --format json` keeps its original shape
//! (`cause` is the short name, `detail` the paragraph) so that scripts written
//! against earlier versions keep working.

use serde::{Serialize, Serializer};
use serde_json::Value;

/// A diagnosis from [`ecs_explain`], serialised in `explain`'s JSON shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis(pub ecs_explain::Diagnosis);

impl Serialize for Diagnosis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Compat<'a> {
            cause: &'a str,
            detail: &'a str,
            fix: &'a [String],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            commands: &'a [String],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            rules: &'a [&'static str],
        }
        let d = &self.0;
        Compat {
            cause: &d.trap,
            detail: &d.cause,
            fix: &d.fix,
            commands: &d.commands,
            rules: &d.rules,
        }
        .serialize(s)
    }
}

/// Explains a `stoppedReason` string.
pub fn explain_reason(reason: &str) -> Option<Diagnosis> {
    ecs_explain::explain_reason(reason).map(Diagnosis)
}

/// Explains one DescribeTasks `tasks[]` element. Fields of an unexpected
/// type are ignored rather than rejected: a partial explanation of a
/// hand-edited file is more use than an error.
pub fn explain_task(task: &Value) -> Option<Diagnosis> {
    ecs_explain::explain_task(&stopped_task(task)).map(Diagnosis)
}

/// The fields of a DescribeTasks task (or an EventBridge task event's
/// `detail`) that the explanation reads.
pub fn stopped_task(task: &Value) -> ecs_explain::StoppedTask {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    ecs_explain::StoppedTask {
        task_arn: s(task, "taskArn"),
        cluster_arn: s(task, "clusterArn"),
        stopped_reason: s(task, "stoppedReason"),
        stop_code: s(task, "stopCode"),
        containers: task
            .get("containers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| ecs_explain::Container {
                        name: s(c, "name"),
                        reason: s(c, "reason"),
                        exit_code: c.get("exitCode").and_then(Value::as_i64),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Tasks from a DescribeTasks response or a single task.
pub fn tasks(v: &Value) -> Result<Vec<&Value>, String> {
    if let Some(list) = v.get("tasks") {
        let arr = list.as_array().ok_or("\"tasks\" is not a list")?;
        if arr.is_empty() {
            return Err("the DescribeTasks response has no tasks (see its \"failures\")".into());
        }
        return Ok(arr.iter().collect());
    }
    if v.get("stoppedReason").is_some()
        || v.get("stopCode").is_some()
        || v.get("containers").is_some()
    {
        return Ok(vec![v]);
    }
    Err("expected a DescribeTasks response ({\"tasks\": [...]}) or one task with stoppedReason/stopCode/containers".into())
}

/// The text `explain` prints for one diagnosis.
pub fn render_text(d: &Diagnosis) -> String {
    ecs_explain::render_text(&d.0)
}
