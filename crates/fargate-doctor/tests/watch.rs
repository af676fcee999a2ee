//! `fargate-doctor watch` as a user runs it, against the ECS API double
//! (testkit::ecs) on 127.0.0.1 through the real AWS SDK: each scripted
//! scenario, its exit code and the words a person needs to act.
//!
//! Polls are shortened with the hidden `--poll-interval`; nothing here
//! sleeps to wait for an outcome: the binary exits, and we read what it said
//! and what the double received.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use serde_json::Value;
use testkit::ecs::{self, EcsDouble, Scenario};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn watch_env(endpoint: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fargate-doctor"));
    cmd.arg("watch");
    if let Some(url) = endpoint {
        cmd.args(["--endpoint-url", url]);
    }
    cmd.args(args)
        // Only what we set: no profile, no instance metadata, no endpoint
        // from the developer's environment.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTESTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o: Output = cmd.output().await.unwrap();
    Run {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

const FAST: [&str; 6] = [
    "--cluster",
    "prod",
    "--service",
    "web",
    "--poll-interval",
    "20ms",
];

async fn watch(d: &EcsDouble, extra: &[&str]) -> Run {
    let mut args: Vec<&str> = FAST.to_vec();
    args.extend_from_slice(extra);
    watch_env(
        Some(&d.endpoint_url()),
        &[("AWS_REGION", ecs::REGION)],
        &args,
    )
    .await
}

fn ops(d: &EcsDouble) -> Vec<String> {
    d.requests().into_iter().map(|r| r.operation).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_rollout_exits_0_with_one_line_per_change() {
    let d = EcsDouble::start(Scenario::happy_rollout()).await;
    let r = watch(&d, &[]).await;
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "OK: deployment ecs-svc/2222222222222222222 COMPLETED: 2/2 tasks of web:8 running"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("event: (service web) has reached a steady state.")
    );
    let progress = r
        .stdout
        .lines()
        .filter(|l| l.contains(" running, "))
        .count();
    assert_eq!(progress, 4, "{}", r.stdout);
    // Stopped at COMPLETED: four polls, and never more than three calls each.
    assert_eq!(d.polls(), 4);
    let ops = ops(&d);
    assert!(ops.len() <= 4 * 3, "{ops:?}");
    assert!(
        ops.iter()
            .all(|o| ["DescribeServices", "ListTasks", "DescribeTasks"].contains(&o.as_str())),
        "{ops:?}"
    );
    // Every request was accepted: signed, JSON 1.1, members of the model.
    assert!(d.requests().iter().all(|r| r.status == 200));
    let list = d
        .requests()
        .into_iter()
        .find(|r| r.operation == "ListTasks")
        .unwrap();
    assert_eq!(list.body["desiredStatus"], "STOPPED");
    assert_eq!(list.body["serviceName"], "web");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_rollback_is_a_failure_that_names_what_runs() {
    let d = EcsDouble::start(Scenario::circuit_breaker_rollback()).await;
    let r = watch(&d, &[]).await;
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("FAILED: ECS deployment circuit breaker: tasks failed to start."),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("ECS rolled back: the service now runs web:7"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("the application crashed (exit code 1)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_in_json_for_ci() {
    let d = EcsDouble::start(Scenario::circuit_breaker_rollback()).await;
    let r = watch(&d, &["--format", "json"]).await;
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["result"], "rolled_back");
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["deployment"], ecs::NEW_DEPLOYMENT);
    assert_eq!(summary["task_definition"], "web:8");
    assert_eq!(summary["running_task_definition"], "web:7");
    assert_eq!(summary["failed_tasks"], 2);
    let stopped: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "task_stopped")
        .collect();
    assert_eq!(stopped.len(), 2);
    assert_eq!(
        stopped[0]["diagnosis"]["trap"],
        "the application crashed (exit code 1)"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "progress" && l["rollout_state"] == "FAILED")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_loop_without_circuit_breaker_exits_at_the_threshold() {
    let d = EcsDouble::start(Scenario::pull_loop()).await;
    let r = watch(&d, &[]).await;
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "restart loop: 3 tasks of deployment ecs-svc/2222222222222222222 (web:8) stopped"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("cause: image pull: no network path from the task to the registry")
    );
    assert!(r.stdout.contains("NAT gateway"));
    assert!(r.stdout.contains("AssignPublicIp: ENABLED"));
    // The third failed task appears at the fourth poll: no poll after it.
    assert_eq!(d.polls(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_threshold_is_configurable() {
    let d = EcsDouble::start(Scenario::pull_loop()).await;
    let r = watch(&d, &["--loop-threshold", "5"]).await;
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("restart loop: 5 tasks"), "{}", r.stdout);
    assert_eq!(d.polls(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_deploy_stalled_says_there_is_nothing_to_roll_back_to() {
    let d = EcsDouble::start(Scenario::first_deploy_stalled()).await;
    let r = watch(&d, &[]).await;
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Nothing to roll back to"), "{}", r.stdout);
    assert!(r.stdout.contains("the service runs 0 of 1 tasks"));
    assert!(r.stdout.contains("execution role is missing permissions"));
    assert!(r.stdout.contains("secretsmanager:GetSecretValue"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_503_are_retried_by_the_sdk() {
    let d = EcsDouble::start(Scenario::throttled_then_happy()).await;
    let r = watch(&d, &[]).await;
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("COMPLETED"));
    let statuses: Vec<u16> = d
        .requests()
        .iter()
        .filter(|r| r.operation == "DescribeServices")
        .map(|r| r.status)
        .collect();
    assert_eq!(&statuses[..4], &[400, 400, 503, 200], "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_completing_deployment_times_out_with_its_state() {
    let d = EcsDouble::start(Scenario::never_completes()).await;
    let r = watch(&d, &["--timeout", "1s"]).await;
    assert_eq!(r.code, Some(3), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "timed out after 1s: deployment ecs-svc/2222222222222222222 was IN_PROGRESS: 1/2 running, 1 pending, 0 failed"
        ),
        "{}",
        r.stdout
    );
    // Many polls, one progress line: nothing changed after the first.
    assert!(d.polls() > 3, "{}", d.polls());
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_exits_2_naming_the_permission() {
    let d = EcsDouble::start(Scenario::access_denied()).await;
    let r = watch(&d, &[]).await;
    assert_eq!(r.code, Some(2), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("AccessDeniedException"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("needs ecs:DescribeServices, ecs:ListTasks and ecs:DescribeTasks")
    );
    // Not retried: the SDK does not retry it, and neither do we.
    assert_eq!(d.polls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_service_or_deployment_exit_2_saying_which() {
    let d = EcsDouble::start(Scenario::happy_rollout()).await;
    let url = d.endpoint_url();
    let env = [("AWS_REGION", ecs::REGION)];
    let r = watch_env(
        Some(&url),
        &env,
        &["--cluster", "staging", "--service", "web"],
    )
    .await;
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("ClusterNotFoundException"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("no such cluster"));
    let r = watch_env(Some(&url), &env, &["--cluster", "prod", "--service", "api"]).await;
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("service api in cluster prod: MISSING"),
        "{}",
        r.stderr
    );
    let r = watch_env(
        Some(&url),
        &env,
        &[
            "--cluster",
            "prod",
            "--service",
            "web",
            "--deployment-id",
            "ecs-svc/9",
        ],
    )
    .await;
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("no deployment ecs-svc/9 (its deployments: ecs-svc/2222222222222222222, ecs-svc/1111111111111111111)"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let r = watch_env(None, &[], &["--cluster", "prod", "--service", "web"]).await;
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("no AWS region"), "{}", r.stderr);
    let r = watch_env(None, &[], &["--cluster", "prod"]).await;
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("--service"), "{}", r.stderr);
    let r = watch_env(
        None,
        &[],
        &FAST
            .iter()
            .copied()
            .chain(["--loop-threshold", "0"])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(r.code, Some(2));
    let r = watch_env(
        None,
        &[],
        &FAST
            .iter()
            .copied()
            .chain(["--timeout", "soon"])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("not a duration"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_endpoint_variable_and_deployment_id() {
    let d = EcsDouble::start(Scenario::happy_rollout()).await;
    let url = d.endpoint_url();
    let r = watch_env(
        None,
        &[("AWS_REGION", ecs::REGION), ("AWS_ENDPOINT_URL_ECS", &url)],
        &FAST
            .iter()
            .copied()
            .chain(["--deployment-id", ecs::NEW_DEPLOYMENT])
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_explains_exit_codes_and_credentials() {
    let r = watch_env(None, &[], &["--help"]).await;
    assert_eq!(r.code, Some(0));
    for words in [
        "--deployment-id",
        "--loop-threshold",
        "--timeout",
        "rolloutState is COMPLETED",
        "is NOT success",
        "AWS_ENDPOINT_URL_ECS",
        "ecs:DescribeServices, ecs:ListTasks and ecs:DescribeTasks",
        "Exit codes:",
    ] {
        assert!(r.stdout.contains(words), "{words}: {}", r.stdout);
    }
    assert!(!r.stdout.contains("--poll-interval"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_exits_2_saying_so() {
    let d = EcsDouble::start(Scenario::happy_rollout()).await;
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_fargate-doctor"))
        .args(["watch", "--endpoint-url", &d.endpoint_url()])
        .args(FAST)
        .env_clear()
        .env("AWS_REGION", ecs::REGION)
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no credentials found"), "{err}");
    assert!(d.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_exits_2_instead_of_waiting_for_the_timeout() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let r = watch_env(Some(&url), &[("AWS_REGION", ecs::REGION)], &FAST).await;
    assert_eq!(r.code, Some(2), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("cannot reach ECS at {url}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Connection refused"), "{}", r.stderr);
}
