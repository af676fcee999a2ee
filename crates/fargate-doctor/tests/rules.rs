//! Every rule: its trap fixture reports it (code, logical ID, line, message),
//! its fixed fixture does not, and the classic migration snippets lint with
//! no error.

// Helpers outside #[test] fns: clippy.toml's allow-*-in-tests does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use fargate_doctor::lint::{Options, lint_source};
use fargate_doctor::model::pipeline::BuildspecFile;
use fargate_doctor::rules::{Finding, RULES, Severity};

fn lint(path: &str) -> Vec<Finding> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    let text = std::fs::read_to_string(&full).unwrap();
    lint_source(path, text, &Options::default())
        .unwrap()
        .expect("a CloudFormation template")
        .0
}

/// The line marked `# <- CODE` in a fixture.
fn marked_line(path: &str, code: &str) -> usize {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    let text = std::fs::read_to_string(full).unwrap();
    text.lines()
        .position(|l| l.contains(&format!("# <- {code}")))
        .map(|i| i + 1)
        .expect("a marker")
}

/// (fixture stem, code, logical ID, severity, text the message must contain)
const TRAPS: &[(&str, &str, &str, Severity, &str)] = &[
    (
        "FD101",
        "FD101",
        "Service",
        Severity::Error,
        "service Service cannot pull its image (CannotPullContainerError): subnets PrivateSubnetA and PrivateSubnetB have no NAT gateway or internet gateway route, and VPC endpoints ecr.api, ecr.dkr, s3 (gateway), logs and secretsmanager are missing",
    ),
    (
        "FD102",
        "FD102",
        "Service",
        // The subnets route to a NAT gateway: the deploy works, the IP is wasted.
        Severity::Warning,
        "service Service sets AssignPublicIp ENABLED but subnets PrivateSubnetA and PrivateSubnetB have no 0.0.0.0/0 route to an internet gateway; tasks pull their image through the NAT gateway, so the public IP is wasted",
    ),
    (
        "FD103",
        "FD103",
        "TaskDefinition",
        Severity::Error,
        "task definition TaskDefinition has no ExecutionRoleArn but container web pulls from ECR, container web logs with awslogs and container web reads Secrets",
    ),
    (
        "FD201",
        "FD201",
        "TaskDefinition",
        Severity::Error,
        "runs on Fargate but NetworkMode is bridge",
    ),
    (
        "FD202",
        "FD202",
        "TaskDefinition",
        Severity::Error,
        "container web maps HostPort 8080 to ContainerPort 3000",
    ),
    (
        "FD203",
        "FD203",
        "TargetGroup",
        Severity::Error,
        "target group TargetGroup has TargetType instance but service Service uses awsvpc",
    ),
    (
        "FD204",
        "FD204",
        "Service",
        Severity::Error,
        "sends traffic to port 8080 of container web in TaskDefinition, which maps only 3000",
    ),
    (
        "FD205",
        "FD205",
        "Service",
        Severity::Error,
        "security group TaskSecurityGroup of service Service does not admit load balancer Alb (security group AlbSecurityGroup) on container port 3000",
    ),
    (
        "FD301",
        "FD301",
        "Service",
        Severity::Warning,
        "service Service needs 12 addresses during a deploy (DesiredCount 6 × MaximumPercent 200%) but its subnets PrivateSubnetA (/28: 11) have 11 usable",
    ),
    (
        "FD401",
        "FD401",
        "TaskDefinition",
        Severity::Error,
        "has Cpu 256 with Memory 4096, which is not a valid Fargate combination (Cpu 256 allows 512, 1024 and 2048 MiB)",
    ),
    (
        "FD402",
        "FD402",
        "TaskDefinition",
        Severity::Error,
        "container web of task definition TaskDefinition has Memory 1024 MiB, above the task memory of 512 MiB",
    ),
    (
        "FD501",
        "FD501",
        "Service",
        Severity::Warning,
        "service Service has no deployment circuit breaker",
    ),
    (
        "FD502",
        "FD502",
        "Service",
        Severity::Warning,
        "service Service is behind a load balancer but sets no HealthCheckGracePeriodSeconds",
    ),
    (
        "FD503",
        "FD503",
        "Service",
        Severity::Note,
        "service Service has MinimumHealthyPercent 0 with DesiredCount 1",
    ),
    (
        "FD601",
        "FD601",
        "Pipeline",
        Severity::Error,
        "ECS deploy action Deploy reads artifact SourceOutput from Source action Source, not from a build",
    ),
    (
        "FD602",
        "FD602",
        "BuildProject",
        Severity::Error,
        "the buildspec of project BuildProject never writes imagedefinitions.json",
    ),
    (
        "FD602-not-exported",
        "FD602",
        "BuildProject",
        Severity::Error,
        "writes imagedefinitions.json but does not list it under artifacts.files",
    ),
    (
        "FD603",
        "FD603",
        "BuildProject",
        Severity::Error,
        "writes container name app to imagedefinitions.json, but task definition TaskDefinition of the deployed service has only web",
    ),
    (
        "FD604",
        "FD604",
        "Pipeline",
        Severity::Warning,
        "action Source uses the GitHub version 1 source with an OAuthToken",
    ),
    (
        "FD701",
        "FD701",
        "TaskDefinition",
        Severity::Warning,
        "container web of task definition TaskDefinition sets API_TOKEN to a literal value",
    ),
];

#[test]
fn every_rule_has_a_trap_that_reports_it() {
    for (stem, code, id, severity, text) in TRAPS {
        let path = format!("rules/{stem}-fail.yaml");
        let findings = lint(&path);
        let line = marked_line(&path, code);
        let hit = findings
            .iter()
            .find(|f| f.code == *code)
            .unwrap_or_else(|| panic!("{path}: no {code} in {findings:#?}"));
        assert_eq!(hit.logical_id, *id, "{path}");
        assert_eq!(hit.line, line, "{path}: {hit:?}");
        assert_eq!(hit.severity, *severity, "{path}");
        assert!(
            hit.message.contains(text),
            "{path}: {:?} does not contain {text:?}",
            hit.message
        );
        assert!(!hit.help.is_empty());
    }
    // Newer rules have their traps in the corpus (tests/corpus/expect.txt).
    let corpus = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/expect.txt"),
    )
    .unwrap();
    for rule in RULES {
        let in_corpus = corpus
            .lines()
            .any(|l| l.starts_with("trap-") && l.contains(&format!("{}/", rule.code)));
        assert!(
            TRAPS.iter().any(|t| t.1 == rule.code) || in_corpus,
            "rule {} has no trap fixture",
            rule.code
        );
    }
}

#[test]
fn every_fixed_fixture_is_clean() {
    for (stem, code, ..) in TRAPS {
        if stem.ends_with("not-exported") {
            continue;
        }
        let path = format!("rules/{stem}-pass.yaml");
        let findings = lint(&path);
        assert!(
            findings.is_empty(),
            "{path} ({code} fixed) still reports {findings:#?}"
        );
    }
    assert!(lint("good.yaml").is_empty());
}

#[test]
fn classic_migration_snippets_have_no_error() {
    for path in [
        "classic/service-public-ip.yaml",
        "classic/taskdef-3000.yaml",
        "classic/pipeline.yaml",
    ] {
        let findings = lint(path);
        let errors: Vec<_> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{path}: {errors:#?}");
    }
    // Subnets given as parameters: no guess, a note saying what must hold.
    let findings = lint("classic/service-public-ip.yaml");
    let note = findings.iter().find(|f| f.code == "FD101").unwrap();
    assert_eq!(note.severity, Severity::Note);
    assert!(note.message.contains(
        "subnets come from parameter Subnets; they must route 0.0.0.0/0 to an internet gateway"
    ));
}

#[test]
fn conditions_and_metadata_suppression() {
    let findings = lint("cli/suppressed.yaml");
    assert!(
        !findings.iter().any(|f| f.code == "FD701"),
        "Metadata ignore: [FD701] must suppress it"
    );
    let f = findings.iter().find(|f| f.code == "FD401").unwrap();
    assert_eq!(f.logical_id, "ProdTaskDefinition");
    assert!(
        f.message.ends_with("(only when condition IsProd holds)"),
        "{}",
        f.message
    );
}

#[test]
fn json_templates_report_lines_too() {
    let findings = lint("cli/trap.json");
    let f = findings.iter().find(|f| f.code == "FD202").unwrap();
    assert_eq!((f.line, f.logical_id.as_str()), (12, "TaskDefinition"));
}

#[test]
fn buildspec_file_resolves_env_vars() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli");
    let spec = std::fs::read_to_string(root.join("buildspec.yml")).unwrap();
    let opts = Options {
        ignore: vec![],
        buildspecs: vec![BuildspecFile {
            project: None,
            path: "buildspec.yml".into(),
            text: spec,
            beside: false,
        }],
        ..Options::default()
    };
    let text = std::fs::read_to_string(root.join("file-buildspec.yaml")).unwrap();
    let (findings, _) = lint_source("file-buildspec.yaml", text, &opts)
        .unwrap()
        .unwrap();
    let f = findings.iter().find(|f| f.code == "FD603").unwrap();
    assert_eq!((f.file.as_str(), f.line), ("buildspec.yml", 8));
    assert!(f.message.contains("writes container name worker"));
}
