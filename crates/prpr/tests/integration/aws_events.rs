//! ECS deploy trouble on Slack: EventBridge events on `POST /aws/events`,
//! through the real server, store and sender, on SQLite and PostgreSQL.
//!
//! The event fixtures (tests/fixtures/ecs) are written from the formats in
//! the ECS developer guide ("Amazon ECS events"), with the fields ECS really
//! sends: `stoppedReason`, `stopCode`, `group` = `service:NAME`, `startedBy`
//! = the deployment ID, `taskDefinitionArn`, containers' `reason`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use crate::support;

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{Launch, Server};
use serde_json::{Value, json};
use testkit::slack::{SlackConfig, SlackDouble};

const TOKEN: &str = "events-token-0123456789abcdef0123456789";
const OPS: &str = "C0OPSALERT";

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ecs")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The same event under another EventBridge id (a new occurrence).
fn again(mut e: Value, n: usize) -> Value {
    e["id"] = json!(format!("{}-{n}", e["id"].as_str().unwrap()));
    e
}

async fn start(extra_ops: &str, database_url: Option<String>) -> (Server, SlackDouble) {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let config = format!("[ops]\nchannel = \"{OPS}\"\n{extra_ops}\n");
    let launch = Launch {
        env: vec![("PRPR_AWS_EVENTS_TOKEN".into(), TOKEN.into())],
        database_url,
        ..Launch::with_config(config)
    };
    (Server::start(Some(&slack), launch).await, slack)
}

async fn send(s: &Server, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(t) = token {
        headers.push(("x-prpr-events-token", t));
    }
    s.post_raw("/aws/events", &headers, body).await
}

async fn post(s: &Server, e: &Value) -> (u16, Value) {
    send(s, Some(TOKEN), e.to_string().into_bytes()).await
}

/// What reached the ops channel once nothing is left to send.
async fn ops_posts(s: &Server, slack: &SlackDouble) -> Vec<String> {
    let outbox = s.drained(Duration::from_secs(10)).await;
    assert_eq!(outbox.dead, 0, "{outbox:?}");
    slack
        .posted()
        .into_iter()
        .map(|p| {
            assert_eq!(p.channel, OPS);
            p.text.unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn the_endpoint_needs_its_token_and_does_not_exist_without_one() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let plain = Server::start(Some(&slack), Launch::default()).await;
    assert_eq!(
        post(&plain, &event("deployment-failed")).await,
        (404, json!({"error": "not found"}))
    );

    let (s, slack) = start("", None).await;
    let body = event("deployment-failed").to_string().into_bytes();
    let unauthorized = (
        401,
        json!({"error": "missing or wrong x-prpr-events-token"}),
    );
    assert_eq!(send(&s, None, body.clone()).await, unauthorized);
    assert_eq!(
        send(
            &s,
            Some("events-token-0123456789abcdef012345678X"),
            body.clone()
        )
        .await,
        unauthorized
    );
    assert_eq!(send(&s, Some(""), body).await, unauthorized);
    assert_eq!(s.store().await.delivery_count().await.unwrap(), 0);
    assert!(ops_posts(&s, &slack).await.is_empty());
    assert!(
        !s.log().join("\n").contains(TOKEN),
        "the token is never logged"
    );
}

#[tokio::test]
async fn malformed_events_get_400_and_nothing_is_stored() {
    let (s, slack) = start("", None).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "body is not an EventBridge event"),
        (
            json!({"id": "x", "source": "aws.ecs", "detail": {}})
                .to_string()
                .into_bytes(),
            "body is not an EventBridge event: missing field `detail-type`",
        ),
        (
            {
                let mut e = event("deployment-failed");
                e["source"] = json!("aws.ec2");
                e.to_string().into_bytes()
            },
            "source \"aws.ec2\" is not aws.ecs: only ECS events are handled here",
        ),
        (
            {
                let mut e = event("task-stopped-cannot-pull");
                e["detail"].as_object_mut().unwrap().remove("clusterArn");
                e.to_string().into_bytes()
            },
            "detail.clusterArn is missing or not a string",
        ),
    ];
    for (body, error) in cases {
        let (status, reply) = send(&s, Some(TOKEN), body).await;
        assert_eq!(status, 400, "{reply}");
        assert!(
            reply["error"].as_str().unwrap().starts_with(error),
            "{reply} should start with {error:?}"
        );
    }
    let (status, _) = s
        .post_raw(
            "/aws/events",
            &[
                ("content-type", "text/plain"),
                ("x-prpr-events-token", TOKEN),
            ],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, 415);
    assert_eq!(s.store().await.delivery_count().await.unwrap(), 0);
    assert_eq!(s.outbox().await, Default::default());
    assert!(slack.posted().is_empty());
}

async fn failed_deploy_is_one_message_even_when_eventbridge_retries(database_url: Option<String>) {
    let (s, slack) = start("", database_url).await;
    let e = event("deployment-failed");
    assert_eq!(
        post(&s, &e).await,
        (202, json!({"status": "queued", "notifications": 1}))
    );
    // EventBridge retries with the same id (e.g. after a timeout).
    assert_eq!(post(&s, &e).await, (202, json!({"status": "duplicate"})));
    let posts = ops_posts(&s, &slack).await;
    assert_eq!(
        posts,
        vec![
            ":x: *Deployment failed* for `prpr` in cluster `prod` (deployment `ecs-svc/0123456789012345678`)\nECS deployment circuit breaker: task failed to start.\nECS did not say it rolled back: the service may be left without running tasks."
                .to_string()
        ]
    );
}

async fn five_failed_starts_make_one_restart_loop_alert(database_url: Option<String>) {
    let (s, slack) = start("", database_url).await;
    let stop = event("task-stopped-cannot-pull");
    let mut replies = Vec::new();
    for n in 0..5 {
        replies.push(post(&s, &again(stop.clone(), n)).await);
    }
    assert_eq!(
        replies,
        vec![
            (202, json!({"status": "ignored", "notifications": 0})),
            (202, json!({"status": "ignored", "notifications": 0})),
            (202, json!({"status": "queued", "notifications": 1})),
            (202, json!({"status": "ignored", "notifications": 0})),
            (202, json!({"status": "ignored", "notifications": 0})),
        ]
    );
    let posts = ops_posts(&s, &slack).await;
    assert_eq!(posts.len(), 1, "{posts:#?}");
    let alert = &posts[0];
    assert!(
        alert.starts_with(
            ":rotating_light: *Restart loop* in `prpr` in cluster `prod`: 3 tasks of `prpr:12` stopped within 10 min (`TaskFailedToStart`)\nLatest: CannotPullContainerError"
        ),
        "{alert}"
    );
    // The explanation says what to add for the task to reach the registry.
    for words in [
        "*Why:* image pull: no network path",
        "NAT gateway",
        "AssignPublicIp: ENABLED",
        "ecr.api",
        "ecr.dkr",
        ".s3",
        ".logs",
    ] {
        assert!(alert.contains(words), "{words:?} missing from:\n{alert}");
    }
    let skipped: Vec<String> = s
        .logged("aws event", 5, Duration::from_secs(5))
        .await
        .iter()
        .map(|l| l["skipped"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        skipped,
        vec![
            "1 of 3 failed starts within the loop window",
            "2 of 3 failed starts within the loop window",
            "",
            "restart loop already announced",
            "restart loop already announced",
        ]
    );
}

#[tokio::test]
async fn failed_deploy_once_on_sqlite() {
    failed_deploy_is_one_message_even_when_eventbridge_retries(None).await;
}

#[tokio::test]
async fn failed_deploy_once_on_postgres() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    failed_deploy_is_one_message_even_when_eventbridge_retries(Some(db.url.clone())).await;
}

#[tokio::test]
async fn restart_loop_on_sqlite() {
    five_failed_starts_make_one_restart_loop_alert(None).await;
}

#[tokio::test]
async fn restart_loop_on_postgres() {
    let Some(db) = support::postgres_db().await else {
        return;
    };
    five_failed_starts_make_one_restart_loop_alert(Some(db.url.clone())).await;
}

#[tokio::test]
async fn a_stop_below_the_threshold_and_a_user_stop_post_nothing() {
    let (s, slack) = start("loop_threshold = 2", None).await;
    let stop = event("task-stopped-cannot-pull");
    assert_eq!(
        post(&s, &again(stop.clone(), 1)).await.1["status"],
        "ignored"
    );
    let mut user_stop = again(stop, 2);
    user_stop["detail"]["stopCode"] = json!("UserInitiated");
    user_stop["detail"]["stoppedReason"] = json!("Scaling activity initiated by deployment");
    assert_eq!(post(&s, &user_stop).await.1["status"], "ignored");
    assert!(ops_posts(&s, &slack).await.is_empty());
}

#[tokio::test]
async fn service_warnings_once_per_window_and_deploys_only_when_asked() {
    let (s, slack) = start("", None).await;
    let warn = event("service-action-start-impaired");
    assert_eq!(
        post(&s, &again(warn.clone(), 1)).await.1["status"],
        "queued"
    );
    assert_eq!(
        post(&s, &again(warn.clone(), 2)).await.1["status"],
        "ignored"
    );
    let mut info = again(warn, 3);
    info["detail"]["eventType"] = json!("INFO");
    info["detail"]["eventName"] = json!("SERVICE_STEADY_STATE");
    assert_eq!(post(&s, &info).await.1["status"], "ignored");
    assert_eq!(
        post(&s, &event("deployment-completed")).await.1["status"],
        "ignored"
    );
    assert_eq!(
        ops_posts(&s, &slack).await,
        vec![":warning: `SERVICE_TASK_START_IMPAIRED` for `prpr` in cluster `prod`".to_string()]
    );

    let (s, slack) = start("announce_deploys = true", None).await;
    assert_eq!(
        post(&s, &event("deployment-completed")).await.1["status"],
        "queued"
    );
    assert_eq!(
        ops_posts(&s, &slack).await,
        vec![
            ":white_check_mark: Deployed `prpr` in cluster `prod` (deployment `ecs-svc/9876543210987654321`)"
                .to_string()
        ]
    );
}
