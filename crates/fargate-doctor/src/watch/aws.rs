//! The three ECS calls of a poll, through the official SDK, turned into the
//! plain values of [`super::tracker`]; and which API errors are worth
//! retrying.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::Region;
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::timeout::TimeoutConfig;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::DesiredStatus;

use super::tracker::{Deployment, ServiceEvent, Snapshot, StoppedTask};

/// An API call that did not work.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub operation: &'static str,
    /// AWS error code (`__type`), when the service answered one.
    pub code: Option<String>,
    pub message: String,
    /// Throttling, 5xx and network trouble that the SDK's own retries did
    /// not absorb: worth another poll. Everything else (access denied, no
    /// such cluster, bad parameters, no credentials) is not.
    pub transient: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "ECS {} failed: {c}: {}", self.operation, self.message),
            None => write!(f, "ECS {} failed: {}", self.operation, self.message),
        }
    }
}

impl ApiError {
    /// What to do about a non-retryable error, in words.
    pub fn hint(&self) -> Option<String> {
        Some(match self.code.as_deref()? {
            "AccessDeniedException" | "UnauthorizedOperation" => "the caller needs ecs:DescribeServices, ecs:ListTasks and ecs:DescribeTasks on this cluster's services and tasks".into(),
            "ClusterNotFoundException" => "no such cluster in this account and region (check --cluster and --region)".into(),
            "ServiceNotFoundException" => "no such service in this cluster (check --service)".into(),
            "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException" | "ExpiredTokenException" => "the AWS credentials are invalid or expired".into(),
            _ => return None,
        })
    }
}

/// Codes the SDK's retry classifier treats as throttling or transient; when
/// they still come back after its retries, the next poll tries again.
const TRANSIENT_CODES: [&str; 8] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "ServerException",
    "InternalFailure",
];

fn api_error<E>(operation: &'static str, e: SdkError<E, HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().map(str::to_string);
    let message = match (&e, e.message()) {
        (SdkError::ServiceError(_), Some(m)) => m.to_string(),
        _ => chain(&e),
    };
    let transient = match &e {
        SdkError::ServiceError(_) => {
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            status >= 500
                || status == 429
                || code
                    .as_deref()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => d.is_io() || d.is_timeout(),
        _ => false,
    };
    ApiError {
        operation,
        code,
        message,
        transient,
    }
}

/// The error and its causes on one line, each said once (the SDK's wrappers
/// repeat their source's text).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

pub struct Ecs {
    client: Client,
    cluster: String,
    service: String,
}

/// Where to connect and how patiently.
pub struct Settings {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// First backoff of the SDK's retries; shortened with the hidden
    /// `--poll-interval` so tests against the double stay fast.
    pub retry_initial_backoff: Duration,
}

impl Ecs {
    /// The standard credential and region chain (environment, profile, SSO,
    /// container and instance roles), with `--region` and `--endpoint-url`
    /// on top; `AWS_ENDPOINT_URL(_ECS)` are honoured by the chain itself.
    pub async fn connect(settings: Settings, cluster: &str, service: &str) -> Result<Ecs, String> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = settings.region {
            loader = loader.region(Region::new(r));
        }
        if let Some(u) = settings.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            return Err(
                "no AWS region: pass --region, or set AWS_REGION or a region in the profile".into(),
            );
        }
        // Standard mode retries throttling and 5xx with jittered backoff;
        // 4 attempts keep one poll under about 10 s in the worst case.
        let retry = RetryConfig::standard()
            .with_max_attempts(4)
            .with_initial_backoff(settings.retry_initial_backoff);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(20))
            .build();
        let conf = aws_sdk_ecs::config::Builder::from(&shared)
            .retry_config(retry)
            .timeout_config(timeouts)
            .build();
        Ok(Ecs {
            client: Client::from_conf(conf),
            cluster: cluster.to_string(),
            service: service.to_string(),
        })
    }

    /// DescribeServices for the one service. A missing service is a
    /// `failures[]` entry, not an exception: reported as
    /// `ServiceNotFoundException` so it reads like one.
    pub async fn describe_service(&self) -> Result<Snapshot, ApiError> {
        let out = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .send()
            .await
            .map_err(|e| api_error("DescribeServices", e))?;
        let Some(svc) = out.services().first() else {
            let reason = out
                .failures()
                .first()
                .and_then(|f| f.reason())
                .unwrap_or("MISSING");
            return Err(ApiError {
                operation: "DescribeServices",
                code: Some("ServiceNotFoundException".into()),
                message: format!(
                    "service {} in cluster {}: {reason}",
                    self.service, self.cluster
                ),
                transient: false,
            });
        };
        if svc.status() == Some("INACTIVE") {
            return Err(ApiError {
                operation: "DescribeServices",
                code: Some("ServiceNotFoundException".into()),
                message: format!(
                    "service {} in cluster {} is INACTIVE (deleted)",
                    self.service, self.cluster
                ),
                transient: false,
            });
        }
        let deployments = svc
            .deployments()
            .iter()
            .map(|d| Deployment {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                task_definition: d.task_definition().unwrap_or_default().to_string(),
                desired: i64::from(d.desired_count()),
                running: i64::from(d.running_count()),
                pending: i64::from(d.pending_count()),
                failed: i64::from(d.failed_tasks()),
                rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
                rollout_reason: d.rollout_state_reason().map(str::to_string),
                created_at: d.created_at().map(|t| t.as_secs_f64()),
            })
            .collect();
        let events = svc
            .events()
            .iter()
            .map(|e| ServiceEvent {
                id: e.id().unwrap_or_default().to_string(),
                created_at: e.created_at().map(|t| t.as_secs_f64()),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect();
        Ok(Snapshot {
            deployments,
            events,
        })
    }

    /// ARNs of the service's stopped tasks (the first 100: ECS keeps them
    /// for about an hour). ListTasks allows `startedBy` only as the sole
    /// filter, so we list by service and match the deployment ID on the
    /// described tasks.
    pub async fn stopped_task_arns(&self) -> Result<Vec<String>, ApiError> {
        let out = self
            .client
            .list_tasks()
            .cluster(&self.cluster)
            .service_name(&self.service)
            .desired_status(DesiredStatus::Stopped)
            .max_results(100)
            .send()
            .await
            .map_err(|e| api_error("ListTasks", e))?;
        Ok(out.task_arns().to_vec())
    }

    pub async fn describe_tasks(&self, arns: &[&String]) -> Result<Vec<StoppedTask>, ApiError> {
        let mut tasks = Vec::new();
        for chunk in arns.chunks(100) {
            let out = self
                .client
                .describe_tasks()
                .cluster(&self.cluster)
                .set_tasks(Some(chunk.iter().map(|a| a.to_string()).collect()))
                .send()
                .await
                .map_err(|e| api_error("DescribeTasks", e))?;
            tasks.extend(out.tasks().iter().map(|t| {
                StoppedTask {
                    task_arn: t.task_arn().unwrap_or_default().to_string(),
                    started_by: t.started_by().map(str::to_string),
                    task_definition: t.task_definition_arn().map(str::to_string),
                    explain: ecs_explain::StoppedTask {
                        task_arn: t.task_arn().map(str::to_string),
                        cluster_arn: t.cluster_arn().map(str::to_string),
                        stopped_reason: t.stopped_reason().map(str::to_string),
                        stop_code: t.stop_code().map(|c| c.as_str().to_string()),
                        containers: t
                            .containers()
                            .iter()
                            .map(|c| ecs_explain::Container {
                                name: c.name().map(str::to_string),
                                reason: c.reason().map(str::to_string),
                                exit_code: c.exit_code().map(i64::from),
                            })
                            .collect(),
                    },
                }
            }));
        }
        Ok(tasks)
    }
}
