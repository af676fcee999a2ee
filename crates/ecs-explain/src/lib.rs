//! Why an ECS task stopped, in words: the trap it fell into, the cause, and
//! the fix.
//!
//! This is the knowledge base behind `fargate-doctor explain` and `watch`,
//! and prpr's ECS alerts. It lives in its own crate, with pure functions and
//! no AWS SDK, so that prpr can explain an EventBridge "ECS Task State
//! Change" without carrying the SDK, and both tools say the same thing about
//! the same stop.
//!
//! Input is what ECS reports about a stopped task ([`StoppedTask`]: the
//! `stoppedReason`, `stopCode` and each container's `reason` and `exitCode`);
//! it deserialises from the DescribeTasks `tasks[]` element and from the
//! `detail` of an EventBridge task event, which use the same field names.
//! Output is a [`Diagnosis`], pointing at the `fargate-doctor lint` rules
//! that would have caught the trap before the deploy where there are some.

use serde::{Deserialize, Serialize};

/// What ECS says about a stopped task: the fields the explanation reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct StoppedTask {
    /// Only used to print ready-to-run commands (task ID, cluster name).
    pub task_arn: Option<String>,
    pub cluster_arn: Option<String>,
    pub stopped_reason: Option<String>,
    /// e.g. `TaskFailedToStart`, `EssentialContainerExited`.
    pub stop_code: Option<String>,
    pub containers: Vec<Container>,
}

/// One container of a stopped task.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: Option<String>,
    /// e.g. `CannotPullContainerError: ...` or `OutOfMemoryError: ...`.
    pub reason: Option<String>,
    pub exit_code: Option<i64>,
}

/// The explanation of one stop.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diagnosis {
    /// The trap in a few words, e.g. "image pull: no network path from the
    /// task to the registry". Stable enough to group alerts by.
    pub trap: String,
    /// Why it happens, in a paragraph.
    pub cause: String,
    /// What to change, most likely first.
    pub fix: Vec<String>,
    /// Commands to look further (logs, describe-tasks), filled in with the
    /// task's IDs when known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// `fargate-doctor lint` rules that catch this trap before a deploy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<&'static str>,
}

fn d(trap: &str, cause: &str, fix: &[&str], rules: &[&'static str]) -> Diagnosis {
    Diagnosis {
        trap: trap.into(),
        cause: cause.into(),
        fix: fix.iter().map(|s| s.to_string()).collect(),
        commands: Vec::new(),
        rules: rules.to_vec(),
    }
}

fn has(s: &str, any: &[&str]) -> bool {
    any.iter().any(|n| s.contains(n))
}

const NETWORK: [&str; 5] = [
    "i/o timeout",
    "context deadline exceeded",
    "client.timeout",
    "dial tcp",
    "network configuration",
];

/// Explains a `stoppedReason` (or a container `reason`) string; `None` when
/// the reason is not one this crate knows.
pub fn explain_reason(reason: &str) -> Option<Diagnosis> {
    let r = reason.trim();
    let lower = r.to_ascii_lowercase();
    if r.starts_with("CannotPullContainerError") {
        if has(
            &lower,
            &[
                "not found",
                "manifest unknown",
                "does not exist",
                "no such manifest",
            ],
        ) && !has(&lower, &["denied"])
        {
            return Some(d(
                "image pull: the image or tag does not exist",
                "The registry answered, but there is no image with this tag (or digest). Typical causes: the deploy ran before the push finished, the tag is misspelt, the repository is in another account/region, or the image was pushed for another architecture only.",
                &[
                    "Check the tag exists: aws ecr describe-images --repository-name REPO --image-ids imageTag=TAG",
                    "Make the pipeline push the image before the deploy step and deploy the tag it pushed (imagedefinitions.json).",
                    "For Graviton (ARM64) tasks, push an arm64 or multi-arch image.",
                ],
                &["FD603"],
            ));
        }
        if has(
            &lower,
            &[
                "403",
                "denied",
                "no basic auth",
                "unauthorized",
                "401",
                "authorization",
            ],
        ) {
            return Some(d(
                "image pull: the registry refused the credentials",
                "The task reached the registry but was not allowed to pull. For ECR the task execution role must allow ecr:GetAuthorizationToken, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer (the AmazonECSTaskExecutionRolePolicy managed policy), and the repository policy must allow cross-account pulls. For private registries outside ECR, RepositoryCredentials must point at a secret the execution role can read.",
                &[
                    "Set ExecutionRoleArn on the task definition to a role with AmazonECSTaskExecutionRolePolicy.",
                    "For another account's ECR repository, add a repository policy that allows this account to pull.",
                    "For Docker Hub or other private registries, use RepositoryCredentials with a Secrets Manager secret.",
                ],
                &["FD103"],
            ));
        }
        if has(&lower, &NETWORK) || lower.contains("timeout") {
            return Some(d(
                "image pull: no network path from the task to the registry",
                "The task could not reach the registry (or the S3 bucket ECR serves layers from) before the timeout. A Fargate task in a subnet without a NAT route, or in a public subnet without AssignPublicIp ENABLED, or without the VPC endpoints ecr.api, ecr.dkr and S3 (gateway), cannot pull its image.",
                &[
                    "Private subnets: route 0.0.0.0/0 to a NAT gateway, or add VPC endpoints com.amazonaws.REGION.ecr.api, .ecr.dkr (interface) and .s3 (gateway, on the subnets' route tables), plus .logs (interface) when the task logs with awslogs.",
                    "Public subnets: set AssignPublicIp: ENABLED and make sure the route table sends 0.0.0.0/0 to an internet gateway.",
                    "Check the task's security group allows outbound HTTPS (443) and the network ACLs allow the return traffic.",
                ],
                &["FD101", "FD102"],
            ));
        }
        return Some(d(
            "image pull failed",
            "ECS could not pull the container image. The rest of the message says why; common causes are no network path (timeouts), a missing tag (not found) or refused credentials (403/denied).",
            &[
                "Read the text after CannotPullContainerError; run fargate-doctor lint on the template to check egress and the execution role.",
            ],
            &["FD101", "FD103"],
        ));
    }
    if r.starts_with("ResourceInitializationError") {
        if has(
            &lower,
            &["log group does not exist", "resourcenotfoundexception"],
        ) {
            return Some(d(
                "log group missing",
                "The awslogs driver could not create its log stream because the log group named in awslogs-group does not exist.",
                &[
                    "Create the log group (an AWS::Logs::LogGroup in the template) or set awslogs-create-group: \"true\" and allow logs:CreateLogGroup in the execution role.",
                ],
                &[],
            ));
        }
        if has(&lower, &["accessdenied", "not authorized", "access denied"]) {
            let what = if lower.contains("secretsmanager") || lower.contains("asm") {
                "secretsmanager:GetSecretValue (and kms:Decrypt for a customer managed key) on the secret"
            } else if lower.contains("ssm") {
                "ssm:GetParameters (and kms:Decrypt for SecureString with a customer key) on the parameter"
            } else if lower.contains("logger") || lower.contains("log stream") {
                "logs:CreateLogStream and logs:PutLogEvents on the log group"
            } else {
                "the ECR pull, logs and secrets actions it needs"
            };
            return Some(d(
                "execution role is missing permissions",
                &format!(
                    "The task execution role was refused while preparing the task. It needs {what}."
                ),
                &[
                    "Add the permission to the role in ExecutionRoleArn (not the TaskRoleArn, which only the application uses).",
                ],
                &["FD103"],
            ));
        }
        if has(&lower, &NETWORK) || lower.contains("timeout") {
            let what = if has(&lower, &["secret", "asm", "ssm"]) && !lower.contains("ecr") {
                "Secrets Manager / SSM"
            } else if lower.contains("logger") || lower.contains("logs.") {
                "CloudWatch Logs"
            } else {
                "ECR (registry auth) or Secrets Manager/SSM"
            };
            return Some(d(
                "task cannot reach AWS APIs to fetch secrets or registry auth",
                &format!(
                    "Before containers start, Fargate fetches registry credentials and secrets with the execution role over the task's network. It could not reach {what}: the subnet has no NAT route, no public IP with an internet gateway route, or no VPC endpoint for the service."
                ),
                &[
                    "Give the subnets a NAT gateway route, or AssignPublicIp: ENABLED in a public subnet, or interface VPC endpoints for ecr.api, ecr.dkr, logs, secretsmanager and/or ssm (plus the S3 gateway endpoint).",
                    "Check the security group allows outbound 443 to the endpoints.",
                ],
                &["FD101"],
            ));
        }
        return Some(d(
            "task initialisation failed (secrets, registry auth or log group)",
            "Fargate could not prepare the task: fetching secrets or registry credentials with the execution role, or setting up the log driver, failed.",
            &[
                "Check the execution role (ExecutionRoleArn) can read the secrets and pull the image, that the log group exists, and that the subnets can reach ECR, Secrets Manager/SSM and CloudWatch Logs.",
            ],
            &["FD101", "FD103"],
        ));
    }
    if r.starts_with("Task failed ELB health checks") {
        let tg = r
            .split("(target-group ")
            .nth(1)
            .map(|s| s.trim_end_matches(')').to_string());
        let mut diag = d(
            "the load balancer marked the task unhealthy",
            "The task started, but the target group's health check did not pass in time, so ECS replaced it. Usually the app listens on another port or path, answers with a non-200 code on the health check path, starts slower than the grace period, or the task's security group does not admit the load balancer.",
            &[
                "Make the target group's HealthCheckPath return 200 (or set Matcher) on the container port.",
                "Set the service's HealthCheckGracePeriodSeconds longer than the start-up time.",
                "Allow the load balancer's security group in the task security group on the container port.",
                "Make the app listen on 0.0.0.0, not 127.0.0.1.",
            ],
            &["FD205", "FD502", "FD204"],
        );
        if let Some(tg) = tg {
            diag.commands.push(format!(
                "aws elbv2 describe-target-health --target-group-arn {tg}"
            ));
        }
        return Some(diag);
    }
    if r.starts_with("Task failed container health checks") {
        return Some(d(
            "the container's own health check failed",
            "The HEALTHCHECK command in the container definition kept failing, so ECS stopped the task.",
            &[
                "Run the health check command inside the image locally; check that the tools it calls (curl, wget) exist in the image.",
                "Raise healthCheck.startPeriod (up to 300 s) for slow starts.",
            ],
            &[],
        ));
    }
    if r.starts_with("Essential container in task exited") {
        return Some(d(
            "an essential container exited",
            "A container marked essential stopped, so ECS stopped the whole task. The container's exit code tells why: 137 is a kill (usually out of memory), 1 is an application error, 0 means the process finished although a service expects it to keep running.",
            &[
                "Run `fargate-doctor explain --task task.json` with the DescribeTasks output to see the exit code and what it means.",
                "Read the container's logs (aws logs tail LOG_GROUP --since 1h).",
            ],
            &[],
        ));
    }
    if lower.contains("spot task was interrupted") || r == "SpotInterruption" {
        return Some(d(
            "Fargate Spot reclaimed the capacity",
            "AWS took back the Spot capacity after a two-minute warning (SIGTERM). This is expected with FARGATE_SPOT and not a fault of the task.",
            &[
                "Handle SIGTERM and finish within stopTimeout.",
                "Mix FARGATE and FARGATE_SPOT in the capacity provider strategy (for example base 1 on FARGATE) for services that must keep running.",
            ],
            &[],
        ));
    }
    if lower.contains("timeout waiting for network interface provisioning")
        || lower.contains("insufficientfreeaddressesinsubnet")
        || lower.contains("eni") && lower.contains("provision")
    {
        return Some(d(
            "task failed to start: no network interface",
            "Fargate could not attach an ENI to the task, most often because the subnet has no free IP addresses (each awsvpc task takes one, and a rolling deploy needs DesiredCount × MaximumPercent / 100 of them).",
            &[
                "Use larger subnets or more of them, or lower MaximumPercent.",
                "Check the account's ENI quota.",
            ],
            &["FD301"],
        ));
    }
    if r.starts_with("CannotStartContainerError") {
        return Some(d(
            "the container could not be started",
            "The image was pulled but the runtime could not start it: usually the entry point or command does not exist in the image, is not executable, or the image is for another CPU architecture (exec format error).",
            &[
                "Run the image locally with the same command.",
                "For `exec format error`, build for linux/amd64 or set RuntimePlatform CpuArchitecture to match the image.",
            ],
            &[],
        ));
    }
    if r.starts_with("ContainerRuntimeTimeoutError") {
        return Some(d(
            "the container runtime timed out",
            "The container did not reach RUNNING or STOPPED within the runtime's time limit; often a very large image or a slow image pull.",
            &[
                "Shrink the image, and retry; if it persists on one platform version, open an AWS support case.",
            ],
            &[],
        ));
    }
    if r.starts_with("OutOfMemoryError") || lower.contains("killed due to memory usage") {
        return Some(oom());
    }
    if r.starts_with("Scaling activity initiated by") {
        return Some(d(
            "stopped by the service scheduler",
            "ECS stopped the task on purpose: a deployment replaced it, or the service scaled in. This is normal unless it repeats with failures.",
            &[
                "If tasks keep cycling, look at the service events (aws ecs describe-services) for the failing deployment.",
            ],
            &[],
        ));
    }
    if r.starts_with("Task stopped by user") || lower.contains("stopped by user") {
        return Some(d(
            "stopped by a user or API call",
            "Someone (or automation) called StopTask.",
            &["Check CloudTrail for the StopTask call."],
            &[],
        ));
    }
    if lower.contains("maintenance")
        || lower.contains("task retirement")
        || lower.contains("terminationnotice")
    {
        return Some(d(
            "AWS retired the task for infrastructure maintenance",
            "Fargate replaces tasks on infrastructure that is being patched or retired; a service starts a replacement.",
            &["Run at least 2 tasks and handle SIGTERM so a retirement is invisible to users."],
            &[],
        ));
    }
    None
}

fn oom() -> Diagnosis {
    d(
        "out of memory",
        "The container used more memory than its limit (the container's Memory, or the task memory) and the kernel killed it (exit code 137).",
        &[
            "Raise the task Memory (keeping a valid Fargate CPU/memory pair) or the container's Memory hard limit.",
            "Look for memory leaks; cap runtime heaps (e.g. -Xmx, NODE_OPTIONS=--max-old-space-size) below the limit.",
        ],
        &["FD401", "FD402"],
    )
}

/// Explains a stopped task, using the exit code of the essential container
/// that failed when ECS gives one, else the stop and container reasons.
pub fn explain_task(task: &StoppedTask) -> Option<Diagnosis> {
    let reason = task.stopped_reason.as_deref().unwrap_or("");
    let stop_code = task.stop_code.as_deref().unwrap_or("");
    let containers: Vec<&Container> = task.containers.iter().collect();
    let last = |arn: &Option<String>, default: &str| {
        arn.as_deref()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or(default)
            .to_string()
    };
    let task_id = last(&task.task_arn, "TASK_ID");
    let cluster = last(&task.cluster_arn, "CLUSTER");

    if stop_code == "EssentialContainerExited"
        || reason.starts_with("Essential container in task exited")
    {
        // The container that failed: non-zero exit code first, else one with a reason.
        let failed = containers
            .iter()
            .find(|c| c.exit_code.is_some_and(|e| e != 0))
            .or_else(|| containers.iter().find(|c| c.reason.is_some()))
            .or_else(|| containers.first());
        if let Some(c) = failed {
            let name = c.name.as_deref().unwrap_or("CONTAINER");
            let code = c.exit_code;
            let creason = c.reason.as_deref().unwrap_or("");
            let logs = format!(
                "aws logs tail LOG_GROUP --since 1h --log-stream-names STREAM_PREFIX/{name}/{task_id}"
            );
            let mut diag = match code {
                Some(137) if creason.contains("OutOfMemoryError") => oom(),
                Some(137) => d(
                    "container killed with SIGKILL (exit code 137)",
                    "Exit code 137 means the process was killed. Without an OutOfMemoryError reason this is usually a container that did not exit within stopTimeout after SIGTERM, or memory pressure that the reason did not record.",
                    &[
                        "Handle SIGTERM (run the app as PID 1 or with `init`: true) and exit within stopTimeout (default 30 s).",
                        "If memory grows before the kill, raise the container/task memory.",
                    ],
                    &["FD402"],
                ),
                Some(1) => d(
                    "the application crashed (exit code 1)",
                    "The application in the container exited with an error. ECS cannot say why; the answer is in the container's logs (a missing environment variable, a failed database connection, a bad config file, ...).",
                    &[
                        "Read the container's last log lines.",
                        "Run the same image locally with the same environment.",
                    ],
                    &[],
                ),
                Some(0) => d(
                    "the essential container finished (exit code 0)",
                    "The process ended successfully, but in a service an essential container must keep running. A one-shot command, a script that backgrounds the server, or a missing foreground process causes this.",
                    &["Run the server in the foreground as the container's main process."],
                    &[],
                ),
                Some(139) => d(
                    "the container crashed with a segmentation fault (exit code 139)",
                    "The process was killed by SIGSEGV.",
                    &["Check native libraries and the image's CPU architecture."],
                    &[],
                ),
                Some(143) => d(
                    "the container was stopped with SIGTERM (exit code 143)",
                    "The process exited because it received SIGTERM, normally during a deploy or scale-in.",
                    &[
                        "Nothing to fix unless it happens without a deploy; check the service events.",
                    ],
                    &[],
                ),
                Some(126) | Some(127) => d(
                    "the container's command could not run (exit code 126/127)",
                    "127 means the command was not found in the image, 126 that it is not executable.",
                    &["Check the Command/EntryPoint against the image (and the image's PATH)."],
                    &[],
                ),
                Some(other) => d(
                    &format!("the application exited with code {other}"),
                    "The application stopped with a non-zero exit code; its logs say why.",
                    &["Read the container's last log lines."],
                    &[],
                ),
                None => explain_reason(reason).unwrap_or_else(|| {
                    d(
                        "an essential container exited",
                        "No exit code was recorded.",
                        &["Read the container's logs."],
                        &[],
                    )
                }),
            };
            diag.cause = format!("Container {name}: {}", diag.cause);
            if !matches!(code, Some(143)) {
                diag.commands.push(logs);
            }
            diag.commands.push(format!(
                "aws ecs describe-tasks --cluster {cluster} --tasks {task_id}"
            ));
            return Some(diag);
        }
    }
    if let Some(diag) = explain_reason(reason) {
        return Some(diag);
    }
    // Container-level reasons (e.g. CannotPullContainerError on the container).
    for c in &containers {
        if let Some(diag) = c.reason.as_deref().and_then(explain_reason) {
            return Some(diag);
        }
    }
    match stop_code {
        "SpotInterruption" => explain_reason("SpotInterruption"),
        "TaskFailedToStart" => Some(d(
            "the task failed to start",
            &format!(
                "ECS could not start the task ({reason}). Image pulls, secrets, log groups and network interfaces are the usual causes."
            ),
            &[
                "Run `fargate-doctor explain` on the stoppedReason text and `fargate-doctor lint` on the template.",
            ],
            &["FD101", "FD103", "FD301"],
        )),
        "ServiceSchedulerInitiated" => explain_reason("Scaling activity initiated by"),
        "UserInitiated" => explain_reason("Task stopped by user"),
        "TerminationNotice" => explain_reason("maintenance"),
        _ => None,
    }
}

/// The text `fargate-doctor explain` prints: the trap, why, the fixes, the
/// commands to look further and the lint rules.
pub fn render_text(d: &Diagnosis) -> String {
    let mut s = format!("cause: {}\n  {}\n", d.trap, d.cause);
    s.push_str("fix:\n");
    for f in &d.fix {
        s.push_str(&format!("  - {f}\n"));
    }
    if !d.commands.is_empty() {
        s.push_str("look:\n");
        for c in &d.commands {
            s.push_str(&format!("  $ {c}\n"));
        }
    }
    if !d.rules.is_empty() {
        s.push_str(&format!(
            "lint rules that catch this before deploy: {}\n",
            d.rules.join(", ")
        ));
    }
    s
}
