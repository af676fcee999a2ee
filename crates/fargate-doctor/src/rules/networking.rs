//! FD2xx — awsvpc networking: network mode, port mappings, target groups and
//! the path from the load balancer to the task.

use super::{Severity, Sink, key_pos, list};
use crate::model::{Model, NameFrom, network};
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
    FD207 = (
        "port-mapping-protocol",
        Error,
        "A container port mapping's Protocol is not tcp or udp (http belongs in AppProtocol)"
    );
    FD206 = (
        "property-not-a-list",
        Warning,
        "A property CloudFormation expects as a list (such as SecurityGroupIngress) is a single mapping"
    );
}

/// Properties whose CloudFormation type is a list of objects.
const LIST_PROPS: &[(&str, &str)] = &[
    ("AWS::EC2::SecurityGroup", "SecurityGroupIngress"),
    ("AWS::EC2::SecurityGroup", "SecurityGroupEgress"),
    ("AWS::ECS::TaskDefinition", "ContainerDefinitions"),
    ("AWS::ECS::Service", "LoadBalancers"),
];

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    // FD206: a mapping where CloudFormation's schema wants a list (cfn-lint E3012).
    for (ty, prop) in LIST_PROPS {
        for res in m.of_type(ty) {
            if let Some(n) = res.prop(prop)
                && matches!(n.value, crate::template::Value::Map(_))
            {
                out.report(
                    &FD206,
                    res,
                    res.pos_of(prop),
                    format!(
                        "{} of {} is a single mapping, but CloudFormation's schema expects a list of them; cfn-lint rejects it (E3012) and the resource provider may too",
                        prop, res.id
                    ),
                    format!("write it as a list: put `- ` before the first key of the {prop} entry"),
                );
            }
        }
    }

    for td in m.task_defs() {
        // FD207: ECS accepts only tcp and udp here.
        for c in &td.containers {
            for p in &c.ports {
                let Some(node) = p.node.get("Protocol") else {
                    continue;
                };
                let Some(proto) = m.r.string(node) else {
                    continue;
                };
                if proto == "tcp" || proto == "udp" {
                    continue;
                }
                let name = c.name.clone().unwrap_or_else(|| "?".into());
                let lower = proto.to_ascii_lowercase();
                if lower == "tcp" || lower == "udp" {
                    out.report_as(
                        &FD207,
                        Severity::Warning,
                        &td.res,
                        node.pos,
                        format!(
                            "container {name} of task definition {} writes Protocol {proto}; ECS documents only the lower-case values tcp and udp",
                            td.res.id
                        ),
                        format!("write Protocol: {lower}"),
                    );
                    continue;
                }
                let help = {
                    format!(
                        "set Protocol: tcp; an application protocol ({proto}) goes in AppProtocol (http, http2 or grpc), used by Service Connect"
                    )
                };
                out.report(
                    &FD207,
                    &td.res,
                    node.pos,
                    format!(
                        "container {name} of task definition {} maps a port with Protocol {proto}; ECS accepts only tcp or udp, so the task definition is rejected",
                        td.res.id
                    ),
                    help,
                );
            }
        }
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
            check_lb_container(out, &svc, &td, lb);
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

/// FD204: the load balancer's container must exist and map the port.
/// Names that only the deploy fixes (a parameter without a default, also
/// against a literal ContainerName) give a note saying what must hold; a
/// literal against a parameter whose default differs gives a warning, since
/// it works only if the parameter is set.
fn check_lb_container(
    out: &mut Sink<'_>,
    svc: &crate::model::Service<'_>,
    td: &crate::model::TaskDef<'_>,
    lb: &crate::model::ServiceLb<'_>,
) {
    let pos = key_pos(Some(lb.node), "ContainerName", lb.node.pos);
    let id = svc.res.id;
    let tdid = td.res.id;
    let lb_param = lb.container_name_from.as_ref().and_then(|f| f.param());
    // The same parameter on both sides always matches.
    if let Some(p) = lb_param
        && td
            .containers
            .iter()
            .any(|c| c.name_from.as_ref().and_then(|f| f.param()) == Some(p))
    {
        return check_lb_port(out, svc, td, lb, None);
    }
    let Some(cname) = &lb.container_name else {
        if let Some(from) = &lb.container_name_from {
            let names: Vec<String> = td
                .containers
                .iter()
                .map(|c| match (&c.name, &c.name_from) {
                    (Some(n), _) => n.clone(),
                    (None, Some(f)) => f.describe(),
                    (None, None) => "a container without Name".into(),
                })
                .collect();
            if !names.is_empty() {
                out.note(
                    &FD204,
                    &svc.res,
                    pos,
                    format!(
                        "service {id}: the load balancer's ContainerName comes from {}; it must name a container of task definition {tdid}: {}",
                        from.describe(),
                        or_list(&names)
                    ),
                    "set the parameter to the container's name when deploying, or write the name in the template".into(),
                );
            }
        }
        return;
    };
    if let Some(c) = td.container(cname) {
        // A container whose name is a parameter default equal to this literal.
        // It works as written; what must hold is that the parameter keeps it.
        if let (None, Some(NameFrom::Param { name, .. })) = (lb_param, &c.name_from) {
            out.note(
                &FD204,
                &svc.res,
                pos,
                format!(
                    "service {id}: the load balancer names container {cname}, the default of parameter {name} that names the container in task definition {tdid}; {name} must stay {cname} when deploying"
                ),
                format!("use ContainerName: !Ref {name}"),
            );
        }
        return check_lb_port(out, svc, td, lb, Some(c));
    }
    let lb_side = match &lb.container_name_from {
        Some(from) => format!("ContainerName {cname} (from {})", from.describe()),
        None => format!("ContainerName {cname}"),
    };
    // Containers named by a parameter with a different default.
    let param_named: Vec<String> = td
        .containers
        .iter()
        .filter_map(|c| match &c.name_from {
            Some(f @ NameFrom::Param { .. }) => Some(f.describe()),
            _ => None,
        })
        .collect();
    // A parameter without a default: nothing is wrong as written, the
    // deploy must set it to the literal.
    let no_default: Vec<&str> = td
        .containers
        .iter()
        .filter_map(|c| match &c.name_from {
            Some(NameFrom::Param {
                name,
                default: None,
            }) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if !no_default.is_empty() {
        let params: Vec<String> = no_default
            .iter()
            .map(|p| format!("parameter {p}"))
            .collect();
        out.note(
            &FD204,
            &svc.res,
            pos,
            format!(
                "service {id}: the load balancer has {lb_side}, and task definition {tdid} names its container{} by {} without a default; the deploy must set {} to {cname}",
                if no_default.len() > 1 { "s" } else { "" },
                list(&params),
                if no_default.len() > 1 { "one of them" } else { "it" }
            ),
            "name both from the same parameter (ContainerName: !Ref NAME), or write the same literal in both places".into(),
        );
        return;
    }
    if !param_named.is_empty() {
        out.report_as(
            &FD204,
            Severity::Warning,
            &svc.res,
            pos,
            format!(
                "service {id} load balancer has {lb_side}, but the containers of task definition {tdid} are named by {}; they match only if the deploy sets the name to {cname}",
                list(&param_named)
            ),
            "name both from the same parameter (ContainerName: !Ref NAME), or write the same literal in both places".into(),
        );
        return;
    }
    let unnamed = td.unnamed();
    if !unnamed.is_empty() {
        let from: Vec<String> = unnamed
            .iter()
            .map(|c| {
                c.name_from
                    .as_ref()
                    .map(|f| f.describe())
                    .unwrap_or_else(|| "a container without Name".into())
            })
            .collect();
        out.note(
            &FD204,
            &svc.res,
            pos,
            format!(
                "service {id}: the load balancer's {lb_side} must be the name of a container of task definition {tdid}, whose names come from {}",
                list(&from)
            ),
            format!("make sure the deploy names a container {cname}"),
        );
        return;
    }
    let names = td.container_names();
    let (has, help) = if names.is_empty() {
        (
            "which defines no containers".to_string(),
            "add the container to ContainerDefinitions".to_string(),
        )
    } else {
        (
            format!("whose containers are {}", list(&names)),
            format!("set ContainerName to {}", or_list(&names)),
        )
    };
    let sev = if lb.container_name_from.is_some() {
        // Only the parameter's default is wrong; the deploy may set another.
        Severity::Warning
    } else {
        Severity::Error
    };
    out.report_as(
        &FD204,
        sev,
        &svc.res,
        pos,
        format!(
            "service {id} load balancer has {lb_side}, which task definition {tdid} does not define ({has})"
        ),
        help,
    );
}

fn check_lb_port(
    out: &mut Sink<'_>,
    svc: &crate::model::Service<'_>,
    td: &crate::model::TaskDef<'_>,
    lb: &crate::model::ServiceLb<'_>,
    container: Option<&crate::model::Container<'_>>,
) {
    let (Some(port), Some(c)) = (lb.container_port, container) else {
        return;
    };
    let cname = c.name.clone().unwrap_or_default();
    let ports: Vec<i64> = c.ports.iter().filter_map(|p| p.container_port).collect();
    let all_known = c.ports.iter().all(|p| p.container_port.is_some());
    if ports.contains(&port) || !all_known {
        return;
    }
    let has = if ports.is_empty() {
        "which has no port mappings".to_string()
    } else {
        format!(
            "which maps only {}",
            list(&ports.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        )
    };
    out.report(
        &FD204,
        &svc.res,
        key_pos(Some(lb.node), "ContainerPort", lb.node.pos),
        format!(
            "service {} load balancer sends traffic to port {port} of container {cname} in {}, {has}",
            svc.res.id, td.res.id
        ),
        format!(
            "set ContainerPort to a mapped port, or add a PortMappings entry with ContainerPort {port}"
        ),
    );
}

/// `a`, `a or b`, `a, b or c`.
pub fn or_list(items: &[String]) -> String {
    match items.len() {
        0 => "none".into(),
        1 => items[0].clone(),
        _ => format!(
            "{} or {}",
            items[..items.len() - 1].join(", "),
            items[items.len() - 1]
        ),
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
