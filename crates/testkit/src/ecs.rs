//! A double of the Amazon ECS API, for `fargate-doctor watch`: the three
//! operations a deployment watcher needs (`DescribeServices`, `ListTasks`,
//! `DescribeTasks`), spoken over the AWS JSON 1.1 protocol as the SDK sends
//! them, playing a scripted [`Scenario`] one step per `DescribeServices`.
//!
//! moto does not model deployments' `rolloutState` nor stopped reasons, which
//! are exactly what a watcher reads, hence this double. Field names follow
//! the `aws-sdk-ecs` model (`types/_deployment.rs`, `_service.rs`,
//! `_task.rs`, `_container.rs`); timestamps are epoch seconds, as on the wire.
//!
//! What it checks, like the real service: `POST /` only, `Content-Type:
//! application/x-amz-json-1.1`, an `X-Amz-Target` of
//! `AmazonEC2ContainerServiceV20141113.<Op>`, a SigV4 `Authorization` header,
//! request members that exist in the model, the cluster name, and
//! `startedBy` as the only filter of `ListTasks`. Errors have AWS's shape:
//! `{"__type": "...", "message": "..."}` with a 4xx/5xx status.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::server::{Server, lock};

/// `X-Amz-Target` prefix of every ECS operation.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
pub const REGION: &str = "eu-west-1";
pub const ACCOUNT: &str = "123456789012";
pub const CLUSTER: &str = "prod";
pub const SERVICE: &str = "web";
/// The deployment that was running before the deploy under watch.
pub const OLD_DEPLOYMENT: &str = "ecs-svc/1111111111111111111";
/// The deployment under watch.
pub const NEW_DEPLOYMENT: &str = "ecs-svc/2222222222222222222";
/// The deployment ECS creates when the circuit breaker rolls back.
pub const ROLLBACK_DEPLOYMENT: &str = "ecs-svc/3333333333333333333";
pub const OLD_TASK_DEFINITION: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7";
pub const NEW_TASK_DEFINITION: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:8";
/// A real-looking image pull failure from a subnet without egress.
pub const PULL_TIMEOUT: &str = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:8: failed to do request: Head \"https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/v2/web/manifests/8\": dial tcp 10.0.3.17:443: i/o timeout";

/// An AWS error answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// `__type`, e.g. `AccessDeniedException`.
    pub kind: String,
    pub message: String,
}

impl ApiError {
    #[must_use]
    pub fn new(status: u16, kind: &str, message: &str) -> Self {
        Self {
            status,
            kind: kind.into(),
            message: message.into(),
        }
    }
    #[must_use]
    pub fn throttling() -> Self {
        Self::new(400, "ThrottlingException", "Rate exceeded")
    }
    #[must_use]
    pub fn unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailableException",
            "Service Unavailable. Please try again later.",
        )
    }
    #[must_use]
    pub fn access_denied(action: &str) -> Self {
        Self::new(
            400,
            "AccessDeniedException",
            &format!(
                "User: arn:aws:sts::{ACCOUNT}:assumed-role/ci/session is not authorized to perform: ecs:{action} on resource: arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{SERVICE} because no identity-based policy allows the ecs:{action} action"
            ),
        )
    }
}

/// What the service looks like at one step of a scenario.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// `deployments[]` as DescribeServices returns them (see [`deployment`]).
    pub deployments: Vec<Value>,
    /// Service event messages that appear at this step (newest last here;
    /// the answer lists them newest first, as ECS does).
    pub new_events: Vec<String>,
    /// Tasks that stopped at this step (see [`stopped_task`]); they stay
    /// listed afterwards, as ECS keeps stopped tasks for an hour.
    pub new_stopped: Vec<Value>,
}

/// One step of a scenario, consumed by one `DescribeServices` call.
#[derive(Clone, Debug)]
pub enum Step {
    State(Snapshot),
    /// `DescribeServices` answers this error; the service state stays as it
    /// was.
    Error(ApiError),
}

/// A scripted service: each `DescribeServices` call plays the next step, and
/// the last step repeats forever.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub cluster: String,
    pub service: String,
    pub steps: Vec<Step>,
}

/// One request the double received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Operation name, e.g. `DescribeServices` (empty when the target was
    /// missing).
    pub operation: String,
    pub body: Value,
    /// HTTP status answered.
    pub status: u16,
}

/// A `deployments[]` element.
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn deployment(
    id: &str,
    status: &str,
    task_definition: &str,
    desired: i64,
    running: i64,
    pending: i64,
    failed: i64,
    rollout: &str,
    reason: &str,
) -> Value {
    json!({
        "id": id,
        "status": status,
        "taskDefinition": task_definition,
        "desiredCount": desired,
        "pendingCount": pending,
        "runningCount": running,
        "failedTasks": failed,
        "createdAt": 1_796_200_000.0,
        "updatedAt": 1_796_200_060.5,
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "rolloutState": rollout,
        "rolloutStateReason": reason,
    })
}

/// A stopped task of the service, as DescribeTasks returns it.
#[must_use]
pub fn stopped_task(
    n: u32,
    started_by: &str,
    task_definition: &str,
    stop_code: &str,
    stopped_reason: &str,
    container_reason: Option<&str>,
    exit_code: Option<i64>,
) -> Value {
    let id = format!("{n:032x}");
    let mut container = json!({
        "containerArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/{id}/c{n}"),
        "taskArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{id}"),
        "name": "web",
        "lastStatus": "STOPPED",
    });
    if let Some(r) = container_reason {
        container["reason"] = json!(r);
    }
    if let Some(c) = exit_code {
        container["exitCode"] = json!(c);
    }
    json!({
        "taskArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{id}"),
        "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"),
        "taskDefinitionArn": task_definition,
        "group": format!("service:{SERVICE}"),
        "startedBy": started_by,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "launchType": "FARGATE",
        "stopCode": stop_code,
        "stoppedReason": stopped_reason,
        "stoppedAt": 1_796_200_100.0 + f64::from(n),
        "containers": [container],
    })
}

fn state(deployments: Vec<Value>, events: &[&str], stopped: Vec<Value>) -> Step {
    Step::State(Snapshot {
        deployments,
        new_events: events.iter().map(|e| e.to_string()).collect(),
        new_stopped: stopped,
    })
}

fn old_running(running: i64) -> Value {
    deployment(
        OLD_DEPLOYMENT,
        "ACTIVE",
        OLD_TASK_DEFINITION,
        2,
        running,
        0,
        0,
        "COMPLETED",
        &format!("ECS deployment {OLD_DEPLOYMENT} completed."),
    )
}

fn new_in_progress(running: i64, pending: i64, failed: i64) -> Value {
    deployment(
        NEW_DEPLOYMENT,
        "PRIMARY",
        NEW_TASK_DEFINITION,
        2,
        running,
        pending,
        failed,
        "IN_PROGRESS",
        &format!("ECS deployment {NEW_DEPLOYMENT} in progress."),
    )
}

fn pull_failure(n: u32) -> Value {
    stopped_task(
        n,
        NEW_DEPLOYMENT,
        NEW_TASK_DEFINITION,
        "TaskFailedToStart",
        PULL_TIMEOUT,
        Some(PULL_TIMEOUT),
        None,
    )
}

impl Scenario {
    fn new(steps: Vec<Step>) -> Self {
        Self {
            cluster: CLUSTER.into(),
            service: SERVICE.into(),
            steps,
        }
    }

    /// web:7 → web:8, two tasks, ends with the new deployment COMPLETED.
    #[must_use]
    pub fn happy_rollout() -> Self {
        Self::new(Self::happy_steps())
    }

    fn happy_steps() -> Vec<Step> {
        vec![
            state(
                vec![new_in_progress(0, 2, 0), old_running(2)],
                &["(service web) has started 2 tasks: (task 0a) (task 0b)."],
                vec![],
            ),
            state(vec![new_in_progress(1, 1, 0), old_running(2)], &[], vec![]),
            state(
                vec![new_in_progress(2, 0, 0), old_running(0)],
                &["(service web) has stopped 2 running tasks: (task 7a) (task 7b)."],
                vec![],
            ),
            state(
                vec![deployment(
                    NEW_DEPLOYMENT,
                    "PRIMARY",
                    NEW_TASK_DEFINITION,
                    2,
                    2,
                    0,
                    0,
                    "COMPLETED",
                    &format!("ECS deployment {NEW_DEPLOYMENT} completed."),
                )],
                &[
                    "(service web) has reached a steady state.",
                    &format!("(service web) (deployment {NEW_DEPLOYMENT}) deployment completed."),
                ],
                vec![],
            ),
        ]
    }

    /// Two ECS `ThrottlingException`s, one 503, then the happy rollout.
    #[must_use]
    pub fn throttled_then_happy() -> Self {
        let mut steps = vec![
            Step::Error(ApiError::throttling()),
            Step::Error(ApiError::throttling()),
            Step::Error(ApiError::unavailable()),
        ];
        steps.extend(Self::happy_steps());
        Self::new(steps)
    }

    /// web:8 crashes on start (exit code 1) twice; the circuit breaker fails
    /// the deployment and rolls back to web:7 in a new deployment, and the
    /// service ends steady on web:7: what tools that wait for "services
    /// stable" report as success.
    #[must_use]
    pub fn circuit_breaker_rollback() -> Self {
        let crash = |n| {
            stopped_task(
                n,
                NEW_DEPLOYMENT,
                NEW_TASK_DEFINITION,
                "EssentialContainerExited",
                "Essential container in task exited",
                None,
                Some(1),
            )
        };
        let failed = deployment(
            NEW_DEPLOYMENT,
            "ACTIVE",
            NEW_TASK_DEFINITION,
            0,
            0,
            0,
            2,
            "FAILED",
            "ECS deployment circuit breaker: tasks failed to start.",
        );
        let rollback = |running, rollout: &str| {
            deployment(
                ROLLBACK_DEPLOYMENT,
                "PRIMARY",
                OLD_TASK_DEFINITION,
                2,
                running,
                0,
                0,
                rollout,
                &format!(
                    "ECS deployment circuit breaker: rolling back to deploymentId {OLD_DEPLOYMENT}."
                ),
            )
        };
        Self::new(vec![
            state(vec![new_in_progress(0, 2, 0), old_running(2)], &[], vec![]),
            state(
                vec![new_in_progress(0, 2, 1), old_running(2)],
                &[],
                vec![crash(1)],
            ),
            state(
                vec![rollback(2, "IN_PROGRESS"), failed, old_running(2)],
                &[&format!(
                    "(service web) (deployment {NEW_DEPLOYMENT}) deployment failed: tasks failed to start."
                )],
                vec![crash(2)],
            ),
            state(
                vec![rollback(2, "COMPLETED")],
                &["(service web) has reached a steady state."],
                vec![],
            ),
        ])
    }

    /// web:8 cannot pull its image (no route to ECR) and the circuit breaker
    /// is off: ECS starts a new task each time, for ever. The deployment
    /// stays IN_PROGRESS; one more stopped task per step.
    #[must_use]
    pub fn pull_loop() -> Self {
        let mut steps = vec![state(
            vec![new_in_progress(0, 2, 0), old_running(2)],
            &[],
            vec![],
        )];
        for n in 1..=8u32 {
            steps.push(state(
                vec![new_in_progress(0, 2, i64::from(n)), old_running(2)],
                &[],
                vec![pull_failure(n)],
            ));
        }
        Self::new(steps)
    }

    /// The service's first deployment: its tasks fail to start, and the
    /// circuit breaker has nothing to roll back to, so the deployment fails
    /// and nothing runs.
    #[must_use]
    pub fn first_deploy_stalled() -> Self {
        let secrets = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/exec/abc is not authorized to perform: secretsmanager:GetSecretValue";
        let stop = |n| {
            stopped_task(
                n,
                NEW_DEPLOYMENT,
                NEW_TASK_DEFINITION,
                "TaskFailedToStart",
                secrets,
                None,
                None,
            )
        };
        let only = |running, pending, failed, rollout: &str, reason: &str| {
            vec![deployment(
                NEW_DEPLOYMENT,
                "PRIMARY",
                NEW_TASK_DEFINITION,
                1,
                running,
                pending,
                failed,
                rollout,
                reason,
            )]
        };
        let in_progress = format!("ECS deployment {NEW_DEPLOYMENT} in progress.");
        Self::new(vec![
            state(only(0, 1, 0, "IN_PROGRESS", &in_progress), &[], vec![]),
            state(
                only(0, 1, 1, "IN_PROGRESS", &in_progress),
                &[],
                vec![stop(1)],
            ),
            state(
                only(
                    0,
                    0,
                    2,
                    "FAILED",
                    "ECS deployment circuit breaker: tasks failed to start.",
                ),
                &[],
                vec![stop(2)],
            ),
        ])
    }

    /// A deployment that stays IN_PROGRESS with one of two tasks running.
    #[must_use]
    pub fn never_completes() -> Self {
        Self::new(vec![state(
            vec![new_in_progress(1, 1, 0), old_running(1)],
            &[],
            vec![],
        )])
    }

    /// The caller may not call `ecs:DescribeServices`.
    #[must_use]
    pub fn access_denied() -> Self {
        Self::new(vec![Step::Error(ApiError::access_denied(
            "DescribeServices",
        ))])
    }

    /// A scenario by name, for the `ecs-double` binary.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "happy" => Self::happy_rollout(),
            "throttled" => Self::throttled_then_happy(),
            "rollback" => Self::circuit_breaker_rollback(),
            "pull-loop" => Self::pull_loop(),
            "first-deploy" => Self::first_deploy_stalled(),
            "never" => Self::never_completes(),
            "denied" => Self::access_denied(),
            _ => return None,
        })
    }

    /// The names [`named`](Self::named) knows.
    pub const NAMES: [&'static str; 7] = [
        "happy",
        "throttled",
        "rollback",
        "pull-loop",
        "first-deploy",
        "never",
        "denied",
    ];
}

/// Handle to a running ECS double. Cheap to clone.
#[derive(Clone)]
pub struct EcsDouble {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    scenario: Scenario,
    state: Mutex<EcsState>,
}

#[derive(Default)]
struct EcsState {
    /// `DescribeServices` calls so far (= the next step to play).
    polls: usize,
    deployments: Vec<Value>,
    /// Newest first.
    events: Vec<Value>,
    stopped: Vec<Value>,
    recorded: Vec<Recorded>,
}

impl EcsDouble {
    /// Starts the double on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// If no loopback port can be bound (a broken test environment).
    pub async fn start(scenario: Scenario) -> EcsDouble {
        match Self::start_on(scenario, 0).await {
            Ok(d) => d,
            Err(e) => panic!("ecs double: cannot bind 127.0.0.1:0: {e}"),
        }
    }

    /// Starts the double on `127.0.0.1:port` (`0` = any free port).
    pub async fn start_on(scenario: Scenario, port: u16) -> std::io::Result<EcsDouble> {
        let shared = Arc::new(Shared {
            scenario,
            state: Mutex::new(EcsState::default()),
        });
        let router = Router::new()
            .fallback(any(handle))
            .with_state(Arc::clone(&shared));
        let server = Server::start(router, port, Arc::new(Notify::new())).await?;
        Ok(EcsDouble {
            inner: Arc::new(Inner { shared, server }),
        })
    }

    /// `http://127.0.0.1:PORT`, for `--endpoint-url` / `AWS_ENDPOINT_URL_ECS`.
    #[must_use]
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.server.port())
    }

    /// Every request, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.shared.state).recorded.clone()
    }

    /// `DescribeServices` calls so far (each one plays one step).
    #[must_use]
    pub fn polls(&self) -> usize {
        lock(&self.inner.shared.state).polls
    }
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"__type": kind, "message": message}).to_string();
    (
        status,
        [
            (header::CONTENT_TYPE, "application/x-amz-json-1.1"),
            (header::HeaderName::from_static("x-amzn-errortype"), kind),
        ],
        body,
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// Members of each operation's input in the SDK model.
fn members(op: &str) -> &'static [&'static str] {
    match op {
        "DescribeServices" => &["cluster", "services", "include"],
        "DescribeTasks" => &["cluster", "tasks", "include"],
        "ListTasks" => &[
            "cluster",
            "containerInstance",
            "family",
            "nextToken",
            "maxResults",
            "startedBy",
            "serviceName",
            "desiredStatus",
            "launchType",
            "daemonName",
        ],
        _ => &[],
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op = target.strip_prefix(TARGET_PREFIX).unwrap_or("").to_string();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let response = answer(&shared, &method, uri.path(), &headers, &op, &parsed);
    lock(&shared.state).recorded.push(Recorded {
        operation: op,
        body: parsed,
        status: response.status().as_u16(),
    });
    response
}

fn answer(
    shared: &Shared,
    method: &axum::http::Method,
    path: &str,
    headers: &HeaderMap,
    op: &str,
    body: &Value,
) -> Response {
    if method != axum::http::Method::POST || path != "/" {
        return error(404, "UnknownOperationException", "POST / only");
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !auth.starts_with("AWS4-HMAC-SHA256 Credential=") || !auth.contains("Signature=") {
        return error(
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/x-amz-json-1.1" {
        return error(
            400,
            "SerializationException",
            "Content-Type must be application/x-amz-json-1.1",
        );
    }
    let Some(input) = body.as_object() else {
        return error(400, "SerializationException", "body is not a JSON object");
    };
    let allowed = members(op);
    if allowed.is_empty() {
        return error(
            400,
            "UnknownOperationException",
            &format!("unknown X-Amz-Target {op:?}"),
        );
    }
    if let Some(k) = input.keys().find(|k| !allowed.contains(&k.as_str())) {
        return error(
            400,
            "SerializationException",
            &format!("{op} has no member {k:?}"),
        );
    }
    let scenario = &shared.scenario;
    let cluster = input
        .get("cluster")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let cluster_arn = format!(
        "arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}",
        scenario.cluster
    );
    if cluster != scenario.cluster && cluster != cluster_arn {
        return error(400, "ClusterNotFoundException", "Cluster not found.");
    }
    match op {
        "DescribeServices" => describe_services(shared, input),
        "ListTasks" => list_tasks(shared, input),
        "DescribeTasks" => describe_tasks(shared, input),
        _ => error(400, "UnknownOperationException", op),
    }
}

fn describe_services(shared: &Shared, input: &serde_json::Map<String, Value>) -> Response {
    let scenario = &shared.scenario;
    let Some(names) = input.get("services").and_then(Value::as_array) else {
        return error(400, "InvalidParameterException", "services is required");
    };
    let mut st = lock(&shared.state);
    let idx = st.polls.min(scenario.steps.len().saturating_sub(1));
    st.polls += 1;
    let first_visit = st.polls <= scenario.steps.len();
    match scenario.steps.get(idx) {
        Some(Step::Error(e)) => return error(e.status, &e.kind, &e.message),
        Some(Step::State(snap)) => {
            st.deployments = snap.deployments.clone();
            if first_visit {
                for (i, m) in snap.new_events.iter().enumerate() {
                    let n = st.events.len() + i;
                    st.events.insert(
                        0,
                        json!({
                            "id": format!("ev-{n:04}"),
                            "createdAt": 1_796_200_000.0 + n as f64,
                            "message": m,
                        }),
                    );
                }
                st.stopped.extend(snap.new_stopped.iter().cloned());
            }
        }
        None => {}
    }
    let service_arn = format!(
        "arn:aws:ecs:{REGION}:{ACCOUNT}:service/{}/{}",
        scenario.cluster, scenario.service
    );
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for name in names {
        let name = name.as_str().unwrap_or("");
        if name == scenario.service || name == service_arn {
            let primary = st
                .deployments
                .iter()
                .find(|d| d["status"] == "PRIMARY")
                .cloned()
                .unwrap_or(Value::Null);
            services.push(json!({
                "serviceArn": service_arn,
                "serviceName": scenario.service,
                "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}", scenario.cluster),
                "status": "ACTIVE",
                "desiredCount": primary["desiredCount"],
                "runningCount": st.deployments.iter().filter_map(|d| d["runningCount"].as_i64()).sum::<i64>(),
                "pendingCount": st.deployments.iter().filter_map(|d| d["pendingCount"].as_i64()).sum::<i64>(),
                "launchType": "FARGATE",
                "taskDefinition": primary["taskDefinition"],
                "deployments": st.deployments,
                "events": st.events.iter().take(100).collect::<Vec<_>>(),
                "schedulingStrategy": "REPLICA",
                "deploymentController": {"type": "ECS"},
            }));
        } else {
            failures.push(json!({
                "arn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{}/{name}", scenario.cluster),
                "reason": "MISSING",
            }));
        }
    }
    ok(json!({"services": services, "failures": failures}))
}

fn list_tasks(shared: &Shared, input: &serde_json::Map<String, Value>) -> Response {
    let filters = [
        "serviceName",
        "family",
        "containerInstance",
        "launchType",
        "daemonName",
    ];
    if input.contains_key("startedBy") && filters.iter().any(|f| input.contains_key(*f)) {
        return error(
            400,
            "InvalidParameterException",
            "When you specify startedBy as the filter, it must be the only filter that you use.",
        );
    }
    let st = lock(&shared.state);
    let desired = input
        .get("desiredStatus")
        .and_then(Value::as_str)
        .unwrap_or("RUNNING");
    if desired != "STOPPED" {
        // Running tasks are not modelled: the watcher reads counts from the
        // deployments.
        return ok(json!({"taskArns": []}));
    }
    let service = input.get("serviceName").and_then(Value::as_str);
    let started_by = input.get("startedBy").and_then(Value::as_str);
    let arns: Vec<&Value> = st
        .stopped
        .iter()
        .filter(|_| service.is_none_or(|s| s == shared.scenario.service))
        .filter(|t| started_by.is_none_or(|s| t["startedBy"] == s))
        .map(|t| &t["taskArn"])
        .collect();
    ok(json!({"taskArns": arns}))
}

fn describe_tasks(shared: &Shared, input: &serde_json::Map<String, Value>) -> Response {
    let Some(wanted) = input.get("tasks").and_then(Value::as_array) else {
        return error(400, "InvalidParameterException", "tasks is required");
    };
    if wanted.len() > 100 {
        return error(
            400,
            "InvalidParameterException",
            "Tasks cannot contain more than 100 elements.",
        );
    }
    let st = lock(&shared.state);
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for w in wanted {
        match st.stopped.iter().find(|t| t["taskArn"] == *w) {
            Some(t) => tasks.push(t.clone()),
            None => failures.push(json!({"arn": w, "reason": "MISSING"})),
        }
    }
    ok(json!({"tasks": tasks, "failures": failures}))
}
