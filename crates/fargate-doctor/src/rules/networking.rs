//! FD2xx — awsvpc networking: network mode, port mappings, target groups and
//! the path from the load balancer to the task.

use super::{Severity, Sink, key_pos, list};
use crate::model::{Model, network};
use crate::resolve::{Res, describe};

super::declare_rules! {
    FD201 = (
        "fargate-not-awsvpc",
        Error,
        "Fargate task definition does not use NetworkMode awsvpc"
    );
    FD202 = (
        "host-port-mismatch",
        Error,
        "awsvpc port mapping with HostPort different from ContainerPort (or 0)"
    );
    FD203 = (
        "target-type-not-ip",
        Error,
        "Target group of an awsvpc service does not have TargetType ip"
    );
    FD204 = (
        "lb-container-port-unmapped",
        Error,
        "Service LoadBalancers names a container or port the task definition does not map"
    );
    FD205 = (
        "task-sg-blocks-lb",
        Error,
        "The tasks' security groups do not admit the load balancer on the container port"
    );
}

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    for td in m.task_defs() {
        let fargate = m.task_def_is_fargate(&td);
        if fargate && !td.is_awsvpc() {
            let mode = match &td.network_mode {
                Some(mode) => format!("NetworkMode is {mode}"),
                None => "NetworkMode is not set (it defaults to bridge)".into(),
            };
            out.report(
                &FD201,
                &td.res,
                td.res.pos_of("NetworkMode"),
                format!("task definition {} runs on Fargate but {mode}; Fargate only supports awsvpc", td.res.id),
                "set NetworkMode: awsvpc (and give the service a NetworkConfiguration.AwsvpcConfiguration)".into(),
            );
        }
        if !(td.is_awsvpc() || fargate) {
            continue;
        }
        for c in &td.containers {
            for p in &c.ports {
                let (Some((host, node)), Some(cp)) = (p.host_port, p.container_port) else {
                    continue;
                };
                if host == cp {
                    continue;
                }
                let name = c.name.clone().unwrap_or_else(|| "?".into());
                let what = if host == 0 {
                    "HostPort 0 (dynamic port)".to_string()
                } else {
                    format!("HostPort {host} to ContainerPort {cp}")
                };
                out.report(
                    &FD202,
                    &td.res,
                    node.pos,
                    format!("task definition {} container {name} maps {what}; with awsvpc the host port must equal the container port", td.res.id),
                    format!("remove HostPort or set it to {cp}"),
                );
            }
        }
    }

    for svc in m.services() {
        let Some(td) = svc.task_def.and_then(|t| m.task_def(t)) else {
            continue;
        };
        let awsvpc = td.is_awsvpc() || (svc.fargate == Some(true));
        for lb in &svc.load_balancers {
            // FD203
            if awsvpc && let Some(tg_node) = lb.target_group {
                match m.r.resolve(tg_node) {
                    Res::Resource { id, .. } => {
                        if let Some(tg) = m.get(id).filter(|r| r.ty == "AWS::ElasticLoadBalancingV2::TargetGroup") {
                            let tt = tg.prop("TargetType").and_then(|n| m.r.string(n));
                            if tt.as_deref() != Some("ip") {
                                let shown = match tt {
                                    Some(t) => format!("TargetType {t}"),
                                    None => "no TargetType (it defaults to instance)".into(),
                                };
                                out.report(
                                    &FD203,
                                    tg,
                                    tg.pos_of("TargetType"),
                                    format!(
                                        "target group {} has {shown} but service {} uses awsvpc networking; ECS cannot register its tasks",
                                        tg.id, svc.res.id
                                    ),
                                    "set TargetType: ip".into(),
                                );
                            }
                        }
                    }
                    other => out.note(
                        &FD203,
                        &svc.res,
                        lb.node.pos,
                        format!(
                            "service {}: target group comes from {}; it must have TargetType ip because the service uses awsvpc",
                            svc.res.id,
                            describe(&other)
                        ),
                        "check the target group's TargetType before deploying".into(),
                    ),
                }
            }
            // FD204
            if let Some(cname) = &lb.container_name {
                match td.container(cname) {
                    None => out.report(
                        &FD204,
                        &svc.res,
                        key_pos(Some(lb.node), "ContainerName", lb.node.pos),
                        format!(
                            "service {} load balancer names container {cname}, which task definition {} does not define (containers: {})",
                            svc.res.id,
                            td.res.id,
                            list(&td.container_names())
                        ),
                        format!("set ContainerName to one of: {}", td.container_names().join(", ")),
                    ),
                    Some(c) => {
                        if let Some(port) = lb.container_port {
                            let ports: Vec<i64> = c.ports.iter().filter_map(|p| p.container_port).collect();
                            let all_known = c.ports.iter().all(|p| p.container_port.is_some());
                            if !ports.contains(&port) && all_known {
                                let has = if ports.is_empty() {
                                    "which has no port mappings".to_string()
                                } else {
                                    format!("which maps only {}", list(&ports.iter().map(|p| p.to_string()).collect::<Vec<_>>()))
                                };
                                out.report(
                                    &FD204,
                                    &svc.res,
                                    key_pos(Some(lb.node), "ContainerPort", lb.node.pos),
                                    format!(
                                        "service {} load balancer sends traffic to port {port} of container {cname} in {}, {has}",
                                        svc.res.id, td.res.id
                                    ),
                                    format!("set ContainerPort to a mapped port, or add a PortMappings entry with ContainerPort {port}"),
                                );
                            }
                        }
                    }
                }
            }
            // FD205
            if let (Some(port), Some(tg)) = (
                lb.container_port,
                lb.target_group.and_then(|n| m.r.resource_id(n)),
            ) {
                check_sg(m, out, &svc, tg, port);
            }
        }
    }
}

fn check_sg(
    m: &Model<'_>,
    out: &mut Sink<'_>,
    svc: &crate::model::Service<'_>,
    tg: &str,
    port: i64,
) {
    for lb in network::lbs_for_target_group(m, tg) {
        let lb_sgs: Vec<&str> = match lb.prop("SecurityGroups").map(|n| m.r.list(n)) {
            Some(Ok(items)) => items
                .iter()
                .filter_map(|r| match r {
                    Res::Resource { id, .. } => Some(*id),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        if lb_sgs.is_empty() {
            continue;
        }
        let pos = key_pos(svc.awsvpc, "SecurityGroups", svc.res.pos);
        let task_sgs = match svc.security_groups.map(|n| m.r.list(n)) {
            Some(Ok(items)) => items,
            Some(Err(why)) => {
                out.report_as(
                    &FD205,
                    Severity::Note,
                    &svc.res,
                    pos,
                    format!(
                        "service {}: security groups come from {why}; they must admit load balancer {} (security group {}) on port {port}",
                        svc.res.id,
                        lb.id,
                        lb_sgs.join(", ")
                    ),
                    "check the security group's ingress before deploying".into(),
                );
                continue;
            }
            None => continue,
        };
        let mut known = Vec::new();
        let mut admitted = false;
        for sg in &task_sgs {
            let Res::Resource { id, .. } = sg else {
                admitted = true; // cannot see its rules; do not guess
                continue;
            };
            known.push(id.to_string());
            admitted |= network::ingress(m, id).iter().any(|rule| {
                rule.covers_tcp(port)
                    && (rule.has_other_source
                        || match &rule.source_sg {
                            Some(Res::Resource { id, .. }) => lb_sgs.contains(id),
                            Some(_) => true,
                            None => false,
                        })
            });
        }
        if !admitted && !known.is_empty() {
            out.report(
                &FD205,
                &svc.res,
                pos,
                format!(
                    "security group {} of service {} does not admit load balancer {} (security group {}) on container port {port}; health checks fail and tasks are replaced in a loop",
                    list(&known),
                    svc.res.id,
                    lb.id,
                    lb_sgs.join(", ")
                ),
                format!(
                    "add to {} an ingress rule: IpProtocol tcp, FromPort {port}, ToPort {port}, SourceSecurityGroupId: !Ref {}",
                    known[0], lb_sgs[0]
                ),
            );
        }
    }
}
