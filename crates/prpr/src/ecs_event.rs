//! Typed views of the ECS events EventBridge sends to `POST /aws/events`, as
//! [`crate::github`] is for GitHub's payloads: only the fields the ops rules
//! read, and a bad shape says which field.
//!
//! The envelope is EventBridge's (`id`, `detail-type`, `source`,
//! `resources`, `detail`); the three detail types are documented in the ECS
//! developer guide ("Amazon ECS events"). Anything else from `aws.ecs` is
//! accepted and ignored, so a wider EventBridge rule does not turn into
//! errors.

use serde::Deserialize;
use serde_json::Value;

/// EventBridge's envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: Value,
}

/// What an ECS event says, for the rules.
#[derive(Debug, Clone, PartialEq)]
pub enum EcsEvent {
    /// `ECS Task State Change` with `lastStatus` = `STOPPED`.
    TaskStopped {
        cluster: String,
        /// `service:NAME` for a service's tasks, `family:…` for others.
        group: String,
        /// `family:revision`.
        task_definition: String,
        stop_code: String,
        task: ecs_explain::StoppedTask,
    },
    /// `ECS Deployment State Change`.
    Deployment {
        cluster: String,
        service: String,
        event_name: String,
        deployment_id: String,
        reason: String,
    },
    /// `ECS Service Action`.
    ServiceAction {
        cluster: String,
        service: String,
        /// `INFO`, `WARN` or `ERROR`.
        event_type: String,
        event_name: String,
        reason: Option<String>,
    },
    /// Another ECS event (a task still starting, a container instance…).
    Other,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    #[error("body is not an EventBridge event: {0}")]
    Envelope(String),
    #[error("source {0:?} is not aws.ecs: only ECS events are handled here")]
    Source(String),
    #[error("detail.{0} is missing or not a string")]
    Field(&'static str),
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Envelope, EventError> {
        let e: Envelope =
            serde_json::from_slice(body).map_err(|e| EventError::Envelope(e.to_string()))?;
        if e.source != "aws.ecs" {
            return Err(EventError::Source(e.source));
        }
        if e.id.is_empty() || e.id.len() > 128 || !e.id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EventError::Envelope(
                "id must be 1 to 128 visible ASCII characters".into(),
            ));
        }
        Ok(e)
    }

    /// The event the rules read.
    pub fn event(&self) -> Result<EcsEvent, EventError> {
        let d = &self.detail;
        let text = |field: &'static str| -> Result<String, EventError> {
            d.get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or(EventError::Field(field))
        };
        let optional = |field: &str| d.get(field).and_then(Value::as_str).map(str::to_string);
        Ok(match self.detail_type.as_str() {
            "ECS Task State Change" => {
                if text("lastStatus")? != "STOPPED" {
                    return Ok(EcsEvent::Other);
                }
                let task: ecs_explain::StoppedTask = serde_json::from_value(d.clone())
                    .map_err(|e| EventError::Envelope(format!("detail: {e}")))?;
                EcsEvent::TaskStopped {
                    cluster: last_segment(&text("clusterArn")?),
                    group: optional("group").unwrap_or_else(|| "-".into()),
                    task_definition: last_segment(&text("taskDefinitionArn")?),
                    stop_code: optional("stopCode").unwrap_or_else(|| "-".into()),
                    task,
                }
            }
            "ECS Deployment State Change" => EcsEvent::Deployment {
                cluster: self.cluster_of_service(),
                service: self.service(),
                event_name: text("eventName")?,
                deployment_id: optional("deploymentId").unwrap_or_else(|| "-".into()),
                reason: optional("reason").unwrap_or_default(),
            },
            "ECS Service Action" => EcsEvent::ServiceAction {
                cluster: optional("clusterArn")
                    .map(|a| last_segment(&a))
                    .unwrap_or_else(|| self.cluster_of_service()),
                service: self.service(),
                event_type: text("eventType")?,
                event_name: text("eventName")?,
                reason: optional("reason"),
            },
            _ => EcsEvent::Other,
        })
    }

    /// The service ARN's name (`…:service/CLUSTER/NAME` or the older
    /// `…:service/NAME`).
    fn service(&self) -> String {
        self.service_arn()
            .map(last_segment)
            .unwrap_or_else(|| "-".into())
    }

    fn cluster_of_service(&self) -> String {
        self.service_arn()
            .and_then(|a| {
                let path = a.split_once(":service/")?.1;
                path.split_once('/').map(|(c, _)| c.to_string())
            })
            .unwrap_or_else(|| "-".into())
    }

    fn service_arn(&self) -> Option<&str> {
        self.resources
            .iter()
            .map(String::as_str)
            .find(|r| r.contains(":service/"))
    }
}

/// The part of an ARN after its last `/` (a cluster, service or
/// `family:revision` name).
fn last_segment(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_come_from_the_arns() {
        let e = Envelope::parse(
            json!({
                "id": "e1", "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
                "resources": ["arn:aws:ecs:eu-west-1:111111111111:service/prod/web"],
                "detail": {"eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED", "deploymentId": "ecs-svc/1", "reason": "r"}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            e.event().unwrap(),
            EcsEvent::Deployment {
                cluster: "prod".into(),
                service: "web".into(),
                event_name: "SERVICE_DEPLOYMENT_FAILED".into(),
                deployment_id: "ecs-svc/1".into(),
                reason: "r".into()
            }
        );
    }

    #[test]
    fn other_sources_and_bad_shapes_are_refused_precisely() {
        let parse = |v: Value| Envelope::parse(v.to_string().as_bytes());
        assert_eq!(
            parse(json!({"id": "1", "detail-type": "x", "source": "aws.ec2", "detail": {}})).err(),
            Some(EventError::Source("aws.ec2".into()))
        );
        assert!(matches!(
            parse(json!({"id": "1", "source": "aws.ecs"})),
            Err(EventError::Envelope(_))
        ));
        let e = parse(json!({"id": "1", "detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": {"lastStatus": "STOPPED"}})).unwrap();
        assert_eq!(e.event(), Err(EventError::Field("clusterArn")));
    }
}
