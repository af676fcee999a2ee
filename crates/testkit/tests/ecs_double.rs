//! The ECS double answers as the real ECS JSON 1.1 API does: AWS-shaped
//! errors, the model's member names, and one scenario step per
//! DescribeServices. (That the SDK itself parses its answers is shown by
//! fargate-doctor's `watch` tests.)

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use testkit::ecs::{self, EcsDouble, Scenario};

const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/eu-west-1/ecs/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0123";

async fn call(d: &EcsDouble, op: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/", d.endpoint_url()))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("{}{op}", ecs::TARGET_PREFIX))
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn describe() -> Value {
    json!({"cluster": "prod", "services": ["web"]})
}

#[tokio::test]
async fn rejects_what_ecs_rejects() {
    let d = EcsDouble::start(Scenario::happy_rollout()).await;
    let (s, v) = call(&d, "DescribeServices", None, describe()).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("MissingAuthenticationTokenException"))
    );
    let (s, v) = call(
        &d,
        "DescribeServices",
        Some(SIGNED),
        json!({"cluster": "staging", "services": ["web"]}),
    )
    .await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("ClusterNotFoundException"))
    );
    let (s, v) = call(
        &d,
        "DescribeServices",
        Some(SIGNED),
        json!({"cluster": "prod", "service": ["web"]}),
    )
    .await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("SerializationException"))
    );
    assert!(v["message"].as_str().unwrap().contains("\"service\""));
    let (s, v) = call(
        &d,
        "ListTasks",
        Some(SIGNED),
        json!({"cluster": "prod", "serviceName": "web", "startedBy": ecs::NEW_DEPLOYMENT}),
    )
    .await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    let (s, v) = call(&d, "CreateService", Some(SIGNED), json!({})).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );
    // None of these played a step.
    assert_eq!(d.polls(), 0);
    let (s, v) = call(
        &d,
        "DescribeServices",
        Some(SIGNED),
        json!({"cluster": "prod", "services": ["api"]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["failures"][0]["reason"], "MISSING");
    assert_eq!(v["services"], json!([]));
}

#[tokio::test]
async fn happy_rollout_plays_one_step_per_describe_services() {
    let d = EcsDouble::start(Scenario::happy_rollout()).await;
    let mut states = Vec::new();
    for _ in 0..6 {
        let (s, v) = call(&d, "DescribeServices", Some(SIGNED), describe()).await;
        assert_eq!(s, 200);
        let dep = v["services"][0]["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == ecs::NEW_DEPLOYMENT)
            .cloned()
            .unwrap();
        states.push((
            dep["runningCount"].as_i64().unwrap(),
            dep["rolloutState"].as_str().unwrap().to_string(),
        ));
    }
    let expect: Vec<(i64, String)> = [
        (0, "IN_PROGRESS"),
        (1, "IN_PROGRESS"),
        (2, "IN_PROGRESS"),
        (2, "COMPLETED"),
        (2, "COMPLETED"),
        (2, "COMPLETED"),
    ]
    .iter()
    .map(|(n, s)| (*n, s.to_string()))
    .collect();
    assert_eq!(states, expect);
    assert_eq!(d.polls(), 6);
}

#[tokio::test]
async fn stopped_tasks_of_the_pull_loop_are_listed_and_described() {
    let d = EcsDouble::start(Scenario::pull_loop()).await;
    for _ in 0..3 {
        call(&d, "DescribeServices", Some(SIGNED), describe()).await;
    }
    let (s, v) = call(
        &d,
        "ListTasks",
        Some(SIGNED),
        json!({"cluster": "prod", "serviceName": "web", "desiredStatus": "STOPPED"}),
    )
    .await;
    assert_eq!(s, 200);
    let arns = v["taskArns"].clone();
    assert_eq!(arns.as_array().unwrap().len(), 2);
    let (s, v) = call(
        &d,
        "DescribeTasks",
        Some(SIGNED),
        json!({"cluster": "prod", "tasks": arns}),
    )
    .await;
    assert_eq!(s, 200);
    let t = &v["tasks"][0];
    assert_eq!(t["startedBy"], ecs::NEW_DEPLOYMENT);
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .starts_with("CannotPullContainerError")
    );
    assert!(
        t["containers"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("i/o timeout")
    );
}

#[tokio::test]
async fn scripted_errors_have_aws_shape() {
    let d = EcsDouble::start(Scenario::throttled_then_happy()).await;
    let (s, v) = call(&d, "DescribeServices", Some(SIGNED), describe()).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("ThrottlingException"))
    );
    call(&d, "DescribeServices", Some(SIGNED), describe()).await;
    let (s, v) = call(&d, "DescribeServices", Some(SIGNED), describe()).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (503, Some("ServiceUnavailableException"))
    );
    let (s, _) = call(&d, "DescribeServices", Some(SIGNED), describe()).await;
    assert_eq!(s, 200);
    let denied = EcsDouble::start(Scenario::access_denied()).await;
    let (s, v) = call(&denied, "DescribeServices", Some(SIGNED), describe()).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("AccessDeniedException"))
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("ecs:DescribeServices")
    );
}
