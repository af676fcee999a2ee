//! The rules: a registry of stable codes with their documentation, and the
//! checks, one file per family.
//!
//! | family | codes |
//! |---|---|
//! | image pull / egress | FD1xx |
//! | networking | FD2xx |
//! | capacity | FD3xx |
//! | sizing | FD4xx |
//! | deploy safety | FD5xx |
//! | pipeline | FD6xx |
//! | secrets | FD7xx |
//!
//! A rule has a default severity; a finding of that rule may be downgraded to
//! a note when the template cannot prove the problem (for example subnets
//! passed as parameters) and the note then says what must hold.

mod capacity;
mod deploy;
mod egress;
mod networking;
mod pipeline;
mod secrets;
mod sizing;

use std::fmt;

use serde::Serialize;

use crate::model::{Model, Resource};
use crate::template::{Node, Pos};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's registry entry.
#[derive(Debug)]
pub struct Rule {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    /// The Markdown explanation, also published as `docs/rules/CODE.md`.
    pub doc: &'static str,
}

macro_rules! rule {
    ($code:literal, $name:literal, $sev:ident, $summary:literal) => {
        Rule {
            code: $code,
            name: $name,
            severity: Severity::$sev,
            summary: $summary,
            doc: include_str!(concat!("../../rules/", $code, ".md")),
        }
    };
}

pub static RULES: &[Rule] = &[
    rule!(
        "FD101",
        "no-image-pull-path",
        Error,
        "Fargate service subnets have no route for pulling the image (no public IP + IGW, no NAT, missing VPC endpoints)"
    ),
    rule!(
        "FD102",
        "public-ip-without-igw",
        Error,
        "AssignPublicIp is ENABLED but the subnet has no route to an internet gateway"
    ),
    rule!(
        "FD103",
        "missing-execution-role",
        Error,
        "ECR image, awslogs or Secrets used without ExecutionRoleArn"
    ),
    rule!(
        "FD201",
        "fargate-not-awsvpc",
        Error,
        "Fargate task definition does not use NetworkMode awsvpc"
    ),
    rule!(
        "FD202",
        "host-port-mismatch",
        Error,
        "awsvpc port mapping with HostPort different from ContainerPort (or 0)"
    ),
    rule!(
        "FD203",
        "target-type-not-ip",
        Error,
        "Target group of an awsvpc service does not have TargetType ip"
    ),
    rule!(
        "FD204",
        "lb-container-port-unmapped",
        Error,
        "Service LoadBalancers names a container or port the task definition does not map"
    ),
    rule!(
        "FD205",
        "task-sg-blocks-lb",
        Error,
        "The tasks' security groups do not admit the load balancer on the container port"
    ),
    rule!(
        "FD301",
        "subnet-too-small",
        Warning,
        "The service's subnets have fewer usable addresses than a rolling deploy needs"
    ),
    rule!(
        "FD401",
        "invalid-fargate-size",
        Error,
        "Task Cpu/Memory is not a valid Fargate combination"
    ),
    rule!(
        "FD402",
        "container-memory-over-task",
        Error,
        "Container memory is above the task memory"
    ),
    rule!(
        "FD501",
        "no-circuit-breaker",
        Warning,
        "Service has no deployment circuit breaker with Enable and Rollback"
    ),
    rule!(
        "FD502",
        "no-health-check-grace",
        Warning,
        "Load-balanced service without HealthCheckGracePeriodSeconds"
    ),
    rule!(
        "FD503",
        "single-task-zero-min-healthy",
        Note,
        "MinimumHealthyPercent 0 with DesiredCount 1 means downtime on every deploy"
    ),
    rule!(
        "FD601",
        "ecs-deploy-input-not-built",
        Error,
        "ECS deploy action's input artifact does not come from a build action"
    ),
    rule!(
        "FD602",
        "buildspec-no-imagedefinitions",
        Error,
        "The build's buildspec does not write or export the ECS action's FileName"
    ),
    rule!(
        "FD603",
        "imagedefinitions-wrong-container",
        Error,
        "Container name written to imagedefinitions.json is not in the service's task definition"
    ),
    rule!(
        "FD604",
        "github-v1-oauth-source",
        Warning,
        "GitHub version 1 source action with OAuthToken"
    ),
    rule!(
        "FD701",
        "literal-secret-env",
        Warning,
        "Environment variable that looks like a secret has a literal value"
    ),
];

pub fn find(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

/// A problem found in a template.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub logical_id: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip)]
    pub ignored_by_metadata: bool,
}

/// Collects findings for one template.
pub struct Sink<'m> {
    file: &'m str,
    pub findings: Vec<Finding>,
}

impl<'m> Sink<'m> {
    pub fn new(file: &'m str) -> Self {
        Sink {
            file,
            findings: Vec::new(),
        }
    }

    /// Reports with the rule's default severity.
    pub fn report(
        &mut self,
        code: &'static str,
        res: &Resource<'_>,
        pos: Pos,
        message: String,
        help: String,
    ) {
        let sev = find(code).map(|r| r.severity).unwrap_or(Severity::Error);
        self.report_as(code, sev, res, pos, message, help);
    }

    /// Reports a fact that cannot be proven as a note saying what must hold.
    pub fn note(
        &mut self,
        code: &'static str,
        res: &Resource<'_>,
        pos: Pos,
        message: String,
        help: String,
    ) {
        self.report_as(code, Severity::Note, res, pos, message, help);
    }

    pub fn report_as(
        &mut self,
        code: &'static str,
        severity: Severity,
        res: &Resource<'_>,
        pos: Pos,
        message: String,
        help: String,
    ) {
        self.report_in(
            code,
            severity,
            res,
            self.file.to_string(),
            pos,
            message,
            help,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub fn report_in(
        &mut self,
        code: &'static str,
        severity: Severity,
        res: &Resource<'_>,
        file: String,
        pos: Pos,
        mut message: String,
        help: String,
    ) {
        let condition = res.condition.map(str::to_string);
        if let Some(c) = &condition {
            message.push_str(&format!(" (only when condition {c} holds)"));
        }
        let ignored_by_metadata = res.ignored().iter().any(|c| c.eq_ignore_ascii_case(code));
        self.findings.push(Finding {
            code,
            severity,
            logical_id: res.id.to_string(),
            file,
            line: pos.line,
            column: pos.col,
            message,
            help,
            condition,
            ignored_by_metadata,
        });
    }
}

/// Position of `key` in a mapping node, else the fallback.
pub fn key_pos(n: Option<&Node>, key: &str, fallback: Pos) -> Pos {
    n.and_then(|n| n.entry(key))
        .map(|(k, _)| k.pos)
        .unwrap_or(fallback)
}

/// Joins names for messages: `a, b and c`.
pub fn list(items: &[String]) -> String {
    match items.len() {
        0 => "none".into(),
        1 => items[0].clone(),
        _ => format!(
            "{} and {}",
            items[..items.len() - 1].join(", "),
            items[items.len() - 1]
        ),
    }
}

/// Runs every rule on a template. Findings suppressed by resource metadata
/// are dropped here; `--ignore` is applied by the caller.
pub fn check(m: &Model<'_>) -> Vec<Finding> {
    let mut sink = Sink::new(&m.template.path);
    egress::check(m, &mut sink);
    networking::check(m, &mut sink);
    capacity::check(m, &mut sink);
    sizing::check(m, &mut sink);
    deploy::check(m, &mut sink);
    pipeline::check(m, &mut sink);
    secrets::check(m, &mut sink);
    let mut out: Vec<Finding> = sink
        .findings
        .into_iter()
        .filter(|f| !f.ignored_by_metadata)
        .collect();
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code).cmp(&(&b.file, b.line, b.column, b.code))
    });
    out.dedup_by(|a, b| {
        a.code == b.code && a.file == b.file && a.line == b.line && a.message == b.message
    });
    out
}
