//! FD5xx — deploy safety: what happens when a new revision is bad or slow.

use super::{Sink, key_pos};
use crate::model::Model;

super::declare_rules! {
    FD501 = (
        "no-circuit-breaker",
        Warning,
        "Service has no deployment circuit breaker with Enable and Rollback"
    );
    FD502 = (
        "no-health-check-grace",
        Warning,
        "Load-balanced service without HealthCheckGracePeriodSeconds"
    );
    FD503 = (
        "single-task-zero-min-healthy",
        Note,
        "MinimumHealthyPercent 0 with DesiredCount 1 means downtime on every deploy"
    );
}

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    for svc in m.services() {
        let id = svc.res.id;
        let controller = svc
            .res
            .prop("DeploymentController")
            .and_then(|d| d.get("Type"))
            .and_then(|t| m.r.string(t))
            .unwrap_or_else(|| "ECS".into());
        let dc = svc.res.prop("DeploymentConfiguration");
        if controller == "ECS" {
            let cb = dc.and_then(|d| d.get("DeploymentCircuitBreaker"));
            let flag = |k: &str| {
                cb.and_then(|c| c.get(k))
                    .and_then(|n| m.r.bool(n))
                    .unwrap_or(false)
            };
            let problem = match cb {
                None => Some("has no deployment circuit breaker".to_string()),
                Some(_) if !flag("Enable") => {
                    Some("has its deployment circuit breaker disabled".to_string())
                }
                Some(_) if !flag("Rollback") => {
                    Some("has a deployment circuit breaker without Rollback".to_string())
                }
                Some(_) => None,
            };
            if let Some(problem) = problem {
                let pos = match cb {
                    Some(_) => key_pos(dc, "DeploymentCircuitBreaker", svc.res.pos),
                    None => svc.res.pos_of("DeploymentConfiguration"),
                };
                out.report(
                    &FD501,
                    &svc.res,
                    pos,
                    format!("service {id} {problem}; a bad image makes ECS start failing tasks forever instead of rolling back"),
                    "add DeploymentConfiguration: {DeploymentCircuitBreaker: {Enable: true, Rollback: true}}".into(),
                );
            }
        }
        if !svc.load_balancers.is_empty() && svc.res.prop("HealthCheckGracePeriodSeconds").is_none()
        {
            out.report(
                &FD502,
                &svc.res,
                svc.res.pos_of("LoadBalancers"),
                format!("service {id} is behind a load balancer but sets no HealthCheckGracePeriodSeconds; tasks that start slowly are killed by failed health checks before they are ready"),
                "set HealthCheckGracePeriodSeconds longer than your app's start-up time, e.g. 60".into(),
            );
        }
        if let Some((0, node)) = svc.min_percent
            && svc.desired_count == 1
        {
            out.report(
                &FD503,
                &svc.res,
                node.pos,
                format!("service {id} has MinimumHealthyPercent 0 with DesiredCount 1: each deploy stops the only task before its replacement is healthy (downtime)"),
                "set MinimumHealthyPercent: 100 (with MaximumPercent: 200) for zero-downtime deploys, or accept the downtime".into(),
            );
        }
    }
}
