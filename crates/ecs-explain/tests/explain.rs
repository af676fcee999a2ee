//! The explanations a user reads, from the inputs ECS gives: a DescribeTasks
//! task and an EventBridge "ECS Task State Change" detail.

use ecs_explain::{StoppedTask, explain_reason, explain_task, render_text};

#[test]
fn image_pull_timeout_names_the_missing_egress() {
    let d = explain_reason(
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:latest: dial tcp 10.0.3.17:443: i/o timeout",
    )
    .unwrap();
    assert!(d.trap.contains("no network path"), "{}", d.trap);
    let fix = d.fix.join("\n");
    assert!(fix.contains("NAT gateway"), "{fix}");
    assert!(fix.contains("AssignPublicIp: ENABLED"), "{fix}");
    assert!(
        fix.contains("ecr.dkr") && fix.contains(".s3 (gateway"),
        "{fix}"
    );
    assert_eq!(d.rules, ["FD101", "FD102"]);
}

#[test]
fn event_detail_with_container_exit_code() {
    // The `detail` of an EventBridge task event has the DescribeTasks field names.
    let detail = r#"{
        "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
        "taskArn": "arn:aws:ecs:eu-west-1:123456789012:task/prod/0123abcd",
        "lastStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "group": "service:web",
        "containers": [
            {"name": "sidecar", "exitCode": 0},
            {"name": "web", "exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}
        ]
    }"#;
    let task: StoppedTask = serde_json::from_str(detail).unwrap();
    let d = explain_task(&task).unwrap();
    assert_eq!(d.trap, "out of memory");
    assert!(d.cause.starts_with("Container web:"), "{}", d.cause);
    assert!(
        d.commands
            .iter()
            .any(|c| c == "aws ecs describe-tasks --cluster prod --tasks 0123abcd"),
        "{:?}",
        d.commands
    );
    let text = render_text(&d);
    assert!(text.starts_with("cause: out of memory\n"), "{text}");
    assert!(text.contains("lint rules that catch this before deploy: FD401, FD402"));
}

#[test]
fn container_reason_explains_a_task_that_failed_to_start() {
    let task = StoppedTask {
        stopped_reason: Some("Task failed to start".into()),
        stop_code: Some("TaskFailedToStart".into()),
        containers: vec![ecs_explain::Container {
            name: Some("web".into()),
            reason: Some("CannotPullContainerError: ref pull has been retried 1 time(s): context deadline exceeded".into()),
            exit_code: None,
        }],
        ..Default::default()
    };
    let d = explain_task(&task).unwrap();
    assert!(d.trap.contains("no network path"), "{}", d.trap);
}

#[test]
fn unknown_reason_is_not_guessed() {
    assert_eq!(explain_reason("Something new happened"), None);
    assert_eq!(explain_task(&StoppedTask::default()), None);
}
