//! The binary as a user runs it: exit codes, formats, suppression, errors,
//! `rules`, `imagedefs` and `explain`.

// Helpers outside #[test] fns: clippy.toml's allow-*-in-tests does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fargate-doctor"))
        .args(args)
        .current_dir(fixtures())
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn exit_codes() {
    assert_eq!(run(&["lint", "good.yaml"]).status.code(), Some(0));
    assert_eq!(
        run(&["lint", "rules/FD203-fail.yaml"]).status.code(),
        Some(1)
    );
    // A note alone does not fail by default, but does with --fail-on note.
    assert_eq!(
        run(&["lint", "rules/FD503-fail.yaml"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["lint", "--fail-on", "note", "rules/FD503-fail.yaml"])
            .status
            .code(),
        Some(1)
    );
    // A warning fails by default, not with --fail-on error.
    assert_eq!(
        run(&["lint", "rules/FD501-fail.yaml"]).status.code(),
        Some(1)
    );
    assert_eq!(
        run(&["lint", "--fail-on", "error", "rules/FD501-fail.yaml"])
            .status
            .code(),
        Some(0)
    );
    // Usage errors.
    assert_eq!(run(&["lint"]).status.code(), Some(2));
    assert_eq!(
        run(&["lint", "--format", "xml", "good.yaml"]).status.code(),
        Some(2)
    );
    let missing = run(&["lint", "does-not-exist.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("does-not-exist.yaml"));
}

#[test]
fn text_output_is_plain_when_not_a_terminal() {
    let o = run(&["lint", "rules/FD203-fail.yaml"]);
    let out = stdout(&o);
    assert!(!out.contains('\x1b'), "no colour when piped");
    assert!(out.contains("error[FD203] target group TargetGroup has TargetType instance"));
    assert!(out.contains("--> rules/FD203-fail.yaml:115:7"));
    assert!(out.contains("= help: set TargetType: ip"));
    let coloured = stdout(&run(&[
        "lint",
        "--color",
        "always",
        "rules/FD203-fail.yaml",
    ]));
    assert!(coloured.contains("\x1b[1;31merror"));
}

#[test]
fn json_shape() {
    let o = run(&["lint", "--format", "json", "rules/FD202-fail.yaml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 1);
    let f = &v["findings"][0];
    assert_eq!(f["code"], "FD202");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["logical_id"], "TaskDefinition");
    assert_eq!(f["file"], "rules/FD202-fail.yaml");
    assert_eq!(f["line"], 161);
    assert!(f["help"].as_str().unwrap().contains("HostPort"));
    assert_eq!(v["summary"]["errors"], 1);
}

#[test]
fn sarif_shape() {
    let o = run(&["lint", "--format", "sarif", "rules/FD203-fail.yaml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run0 = &v["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "fargate-doctor");
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), fargate_doctor::rules::RULES.len());
    let r = &run0["results"][0];
    assert_eq!(r["ruleId"], "FD203");
    assert_eq!(r["level"], "error");
    assert_eq!(
        rules[r["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "FD203"
    );
    let loc = &r["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "rules/FD203-fail.yaml");
    assert_eq!(loc["region"]["startLine"], 115);
}

#[test]
fn ignore_flag_and_metadata() {
    assert_eq!(
        run(&["lint", "--ignore", "FD203", "rules/FD203-fail.yaml"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["lint", "--ignore", "fd501,FD503", "rules/FD501-fail.yaml"])
            .status
            .code(),
        Some(0)
    );
    let bad = run(&["lint", "--ignore", "FD999", "good.yaml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--ignore FD999: no such rule"));
    let o = run(&["lint", "--format", "json", "cli/suppressed.yaml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["FD401"], "FD701 is suppressed by Metadata");
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let o = run(&["lint", "cli/syntax-error.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("cli/syntax-error.yaml:4:"), "{err}");
    assert!(err.contains("mapping values are not allowed"), "{err}");
}

#[test]
fn non_cloudformation_files_are_skipped_with_a_note() {
    let o = run(&["lint", "cli/not-cfn.yml"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("note: skipped cli/not-cfn.yml: not a CloudFormation template"));
}

#[test]
fn directories_are_walked() {
    let o = run(&["lint", "--format", "json", "--fail-on", "never", "rules"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["files"], 39);
}

#[test]
fn rules_command_matches_docs() {
    let list = stdout(&run(&["rules"]));
    for r in fargate_doctor::rules::RULES {
        assert!(list.contains(r.code));
    }
    let one = run(&["rules", "fd203"]);
    assert_eq!(one.status.code(), Some(0));
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules/FD203.md"),
    )
    .unwrap();
    assert_eq!(stdout(&one), doc);
    assert_eq!(run(&["rules", "FD000"]).status.code(), Some(2));
}

#[test]
fn imagedefs_writes_the_file() {
    let dir = std::env::temp_dir().join(format!("fd-imagedefs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("imagedefinitions.json");
    let uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:abc123";
    let o = run(&[
        "imagedefs",
        "--container",
        "web",
        "--image",
        uri,
        "--task-definition",
        "cli/taskdef.json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!([{"name": "web", "imageUri": uri}]));
    std::fs::remove_dir_all(&dir).unwrap();

    // Stdout, with a CloudFormation template and a logical ID.
    let o = run(&[
        "imagedefs",
        "--container",
        "web",
        "--image",
        "nginx:1.27",
        "--task-definition",
        "good.yaml#TaskDefinition",
        "-o",
        "-",
    ]);
    assert_eq!(
        stdout(&o),
        "[{\"name\":\"web\",\"imageUri\":\"nginx:1.27\"}]\n"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["name"], "web");
}

#[test]
fn imagedefs_refuses_bad_input() {
    let o = run(&[
        "imagedefs",
        "--container",
        "app",
        "--image",
        "nginx",
        "--task-definition",
        "cli/taskdef.json",
        "-o",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("container \"app\" is not in task definition cli/taskdef.json; valid names: web, log-router"), "{}", stderr(&o));
    let o = run(&[
        "imagedefs",
        "--container",
        "web",
        "--image",
        "$REPO:$TAG",
        "-o",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unexpanded shell variable"));
    let o = run(&[
        "imagedefs",
        "--container",
        "web",
        "--image",
        "nginx",
        "--task-definition",
        "rules/FD101-fail.yaml#Nope",
        "-o",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "has no AWS::ECS::TaskDefinition named Nope (task definitions: TaskDefinition)"
        )
    );
    let o = run(&[
        "imagedefs",
        "--container",
        "web",
        "--image",
        "nginx",
        "--task-definition",
        "missing.json",
        "-o",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read task definition missing.json"));
}

#[test]
fn explain_reasons() {
    let cases = [
        (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:latest: failed to do request: Head \"https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/v2/web/manifests/latest\": dial tcp 10.0.3.17:443: i/o timeout",
            "no network path",
        ),
        (
            "CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get \"https://prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com/...\": context deadline exceeded",
            "no network path",
        ),
        (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref docker.io/library/web:v2: docker.io/library/web:v2: not found",
            "does not exist",
        ),
        (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:v2: unexpected status from HEAD request: 403 Forbidden",
            "refused the credentials",
        ),
        (
            "CannotPullContainerError: Error response from daemon: pull access denied for web, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
            "refused the credentials",
        ),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/exec/abc is not authorized to perform: secretsmanager:GetSecretValue",
            "execution role is missing permissions",
        ),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request failed caused by: Post \"https://api.ecr.eu-west-1.amazonaws.com/\": dial tcp 52.46.1.1:443: i/o timeout. Please check your task network configuration.",
            "cannot reach AWS APIs",
        ),
        (
            "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1",
            "log group missing",
        ),
        (
            "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/73e2d6bc24d8a067)",
            "marked the task unhealthy",
        ),
        (
            "Essential container in task exited",
            "an essential container exited",
        ),
        ("Your Spot Task was interrupted.", "Fargate Spot"),
        (
            "Timeout waiting for network interface provisioning to complete.",
            "no network interface",
        ),
    ];
    for (reason, cause) in cases {
        let o = run(&["explain", reason]);
        assert_eq!(o.status.code(), Some(0), "{reason}");
        assert!(stdout(&o).contains(cause), "{reason}: {}", stdout(&o));
    }
    let elb = stdout(&run(&["explain", cases[8].0]));
    assert!(elb.contains("aws elbv2 describe-target-health --target-group-arn arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/73e2d6bc24d8a067"));
    let unknown = run(&["explain", "Something new happened"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stdout(&unknown).contains("not recognised"));
    assert_eq!(run(&["explain"]).status.code(), Some(2));
}

#[test]
fn explain_tasks() {
    let o = run(&["explain", "--task", "cli/task-oom.json"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("cause: out of memory"), "{out}");
    assert!(out.contains("Container web"));
    let o = run(&[
        "explain",
        "--task",
        "cli/describe-tasks.json",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v[0]["diagnosis"]["cause"],
        "the application crashed (exit code 1)"
    );
    let cmds = v[0]["diagnosis"]["commands"].to_string();
    assert!(cmds.contains("aws logs tail LOG_GROUP --since 1h --log-stream-names STREAM_PREFIX/web/1a2b3c4d5e6f47788990aabbccddeeff"), "{cmds}");
    assert_eq!(
        v[1]["diagnosis"]["cause"],
        "image pull: the image or tag does not exist"
    );
    let bad = run(&["explain", "--task", "cli/syntax-error.yaml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("invalid JSON"));
    let wrong = run(&["explain", "--task", "cli/taskdef.json"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("expected a DescribeTasks response"));
}

#[test]
fn parse_errors_name_the_duplicate_and_never_say_no_problems() {
    let dir = std::env::temp_dir().join(format!("fd-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("dup.yaml"),
        "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  A:\n    Type: AWS::S3::Bucket\n  A:\n    Type: AWS::SQS::Queue\n",
    )
    .unwrap();
    std::fs::copy(fixtures().join("good.yaml"), dir.join("good.yaml")).unwrap();
    let o = run(&["lint", "--color", "never", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("dup.yaml:5:3: duplicate key \"A\" (first at line 3, again at line 5)"),
        "{}",
        stderr(&o)
    );
    // The good file is still linted, and the summary does not claim success.
    assert!(!stdout(&o).contains("No problems found"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("1 file could not be checked"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("in 1 template."), "{}", stdout(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cdk_out_directory_gets_one_line_about_skipped_files() {
    let o = run(&["lint", "--color", "never", "../corpus/ok-cdk-out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("note: skipped 3 files that are not CloudFormation templates"));
    assert!(stdout(&o).contains("No problems found in 2 templates."));
}

#[test]
fn buildspec_per_project() {
    // A project-specific buildspec wins over the one beside the template.
    let o = run(&[
        "lint",
        "--color",
        "never",
        "--buildspec",
        "BuildProject=cli/buildspec.yml",
        "cli/file-buildspec.yaml",
    ]);
    assert!(
        stdout(&o).contains("writes container name worker"),
        "{}",
        stdout(&o)
    );
    let o = run(&["lint", "--buildspec", "Nope=missing.yml", "good.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read --buildspec Nope=missing.yml"));
}

#[test]
fn a_repository_scan_reads_the_buildspec_at_its_root() {
    // infra/pipeline.yaml has a project without inline BuildSpec; CodeBuild
    // reads buildspec.yml at the source root, which is the scanned directory.
    let dir = std::env::temp_dir().join(format!("fd-repo-{}", std::process::id()));
    let infra = dir.join("infra");
    std::fs::create_dir_all(&infra).unwrap();
    let corpus =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/trap-buildspec-beside");
    std::fs::copy(corpus.join("pipeline.yaml"), infra.join("pipeline.yaml")).unwrap();
    std::fs::copy(corpus.join("buildspec.yml"), dir.join("buildspec.yml")).unwrap();
    let o = run(&["lint", "--color", "never", dir.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.contains("error[FD605]"), "{out}");
    assert!(
        out.contains(&format!("{}:8:7", dir.join("buildspec.yml").display())),
        "{out}"
    );
    // The buildspec is used, not reported as a skipped non-template.
    assert!(!stderr(&o).contains("skipped"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
