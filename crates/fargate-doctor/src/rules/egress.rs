//! FD1xx — can the task reach its image registry, logs and secrets, and may it?
//!
//! Image pulls are the first thing a Fargate task does; with no path out of
//! the subnet the task stops with `CannotPullContainerError` (or
//! `ResourceInitializationError` for secrets/logs) and the service retries
//! forever.

use super::{Rule, Severity, Sink, key_pos, list};
use crate::model::Model;
use crate::model::network::{self, Registry};

super::declare_rules! {
    FD101 = (
        "no-image-pull-path",
        Error,
        "The subnets of a Fargate service or scheduled task have no route for pulling the image (no public IP + IGW, no NAT, missing VPC endpoints)"
    );
    FD102 = (
        "public-ip-without-igw",
        Error,
        "AssignPublicIp is ENABLED but the subnet has no route to an internet gateway"
    );
    FD103 = (
        "missing-execution-role",
        Error,
        "ECR image, awslogs or Secrets used without ExecutionRoleArn"
    );
}

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    let endpoints = network::endpoints(m);
    for svc in m.launchers() {
        if svc.fargate != Some(true) {
            continue;
        }
        let id = svc.res.id;
        let kind = svc.kind;
        let td = svc.task_def.and_then(|t| m.task_def(t));
        let public = svc.public_ip();
        let subnets = network::subnets(m, svc.subnets);
        let subnets_pos = key_pos(svc.awsvpc, "Subnets", svc.res.pos);
        let needed = td
            .as_ref()
            .map(|td| network::needed_endpoints(m, td))
            .unwrap_or_else(|| vec![vec!["ecr.api"], vec!["ecr.dkr"], vec!["s3"]]);
        let needed_text = list(
            &needed
                .iter()
                .map(|alts| endpoint_label(alts))
                .collect::<Vec<_>>(),
        );
        let registries: Vec<(String, Registry)> = td
            .as_ref()
            .map(|td| {
                td.containers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        // A container whose name the template does not fix
                        // is named by where its name comes from, or its place.
                        let label = match (&c.name, &c.name_from) {
                            (Some(n), _) => n.clone(),
                            (None, Some(f)) => format!("named by {}", f.describe()),
                            (None, None) => format!("#{} of ContainerDefinitions", i + 1),
                        };
                        Some((label, network::registry(m, c.image?)))
                    })
                    .collect()
            })
            .unwrap_or_default();

        // (code, subnet, message-with-{subnets}, help): merged across subnets below.
        let mut found: Vec<(&'static Rule, Severity, String, String, String)> = Vec::new();
        for s in &subnets.known {
            let e = network::egress(m, s.id);
            // FD102: a public IP is only useful with an IGW route. With a NAT
            // route the deploy works and the address is merely wasted.
            if public && !e.igw && e.unknown.is_empty() && e.nat {
                found.push((
                    &FD102,
                    Severity::Warning,
                    s.id.to_string(),
                    format!("{kind} {id} sets AssignPublicIp ENABLED but {{subnets}} no 0.0.0.0/0 route to an internet gateway; tasks pull their image through the NAT gateway, so the public IP is wasted"),
                    "use AssignPublicIp: DISABLED in subnets that route to a NAT gateway (or move the service to public subnets and drop the NAT)".into(),
                ));
            } else if public && !e.igw && e.unknown.is_empty() {
                found.push((
                    &FD102,
                    Severity::Error,
                    s.id.to_string(),
                    format!("{kind} {id} sets AssignPublicIp ENABLED but {{subnets}} no 0.0.0.0/0 route to an internet gateway, so the public IP reaches nothing"),
                    if registries.iter().any(|(_, r)| matches!(r, Registry::Internet(_))) {
                        "route 0.0.0.0/0 from the subnets' route table to an internet gateway, or use AssignPublicIp: DISABLED with a NAT gateway route (the image is outside AWS, so VPC endpoints cannot serve it)".into()
                    } else {
                        "route 0.0.0.0/0 from the subnets' route table to an internet gateway, or use AssignPublicIp: DISABLED with a NAT gateway route or VPC endpoints".into()
                    },
                ));
            }
            if e.nat || (e.igw && public) {
                continue;
            }
            if !e.unknown.is_empty() {
                // Endpoints cannot serve registries outside AWS: only then
                // are they an alternative worth naming.
                let outside = registries
                    .iter()
                    .any(|(_, r)| matches!(r, Registry::Internet(_)));
                let (alt, help) = if outside {
                    (
                        String::new(),
                        "make sure the route target gives internet access (the image is outside AWS)",
                    )
                } else {
                    (
                        format!(" (or have VPC endpoints {needed_text})"),
                        "make sure the route target gives internet access, or add the VPC endpoints",
                    )
                };
                out.note(
                    &FD101,
                    &svc.res,
                    subnets_pos,
                    format!(
                        "{kind} {id}: subnet {}'s default route goes to {}; it must lead to a NAT gateway{alt} for tasks to pull their image",
                        s.id,
                        list(&e.unknown)
                    ),
                    help.into(),
                );
                continue;
            }
            let vpc = s.prop("VpcId").and_then(|n| m.r.resource_id(n));
            let missing: Vec<String> = needed
                .iter()
                .filter(|alts| {
                    !alts.iter().any(|name| {
                        endpoints.iter().any(|ep| {
                            ep.service == *name
                                && (vpc.is_none() || ep.vpc.is_none() || ep.vpc == vpc)
                                && if *name == "s3" {
                                    ep.gateway
                                        && ep.route_tables.as_ref().is_none_or(|rts| {
                                            rts.iter().any(|rt| e.route_tables.contains(rt))
                                        })
                                } else {
                                    !ep.gateway
                                }
                        })
                    })
                })
                .map(|alts| endpoint_label(alts))
                .collect();
            let internet: Vec<String> = registries
                .iter()
                .filter_map(|(c, r)| match r {
                    Registry::Internet(host) => Some(format!("{c} ({host})")),
                    _ => None,
                })
                .collect();
            let route_text = if e.igw {
                "an internet gateway route but AssignPublicIp is not ENABLED".to_string()
            } else if e.route_tables.is_empty() {
                "no route table association (so no NAT or internet gateway route)".to_string()
            } else {
                "no NAT gateway or internet gateway route".to_string()
            };
            if !internet.is_empty() {
                found.push((
                    &FD101,
                    Severity::Error,
                    s.id.to_string(),
                    format!(
                        "{kind} {id} cannot pull its image (CannotPullContainerError): {{subnets}} {route_text}, and container {} pulls from outside AWS, which VPC endpoints cannot reach",
                        list(&internet)
                    ),
                    internet_help(public, e.igw),
                ));
            } else if !missing.is_empty() {
                found.push((
                    &FD101,
                    Severity::Error,
                    s.id.to_string(),
                    format!(
                        "{kind} {id} cannot pull its image (CannotPullContainerError): {{subnets}} {route_text}, and VPC endpoints {} are missing",
                        list(&missing)
                    ),
                    fix_help(public, e.igw, &needed_text),
                ));
            } else if let Some((c, Registry::Unknown(from))) = registries
                .iter()
                .find(|(_, r)| matches!(r, Registry::Unknown(_)))
            {
                out.note(
                    &FD101,
                    &svc.res,
                    subnets_pos,
                    format!(
                        "{kind} {id}: subnet {} relies on VPC endpoints, so the image of container {c} (from {from}) must be in ECR in this region",
                        s.id
                    ),
                    "use an ECR image, or give the subnet a NAT gateway route".into(),
                );
            }
        }
        let mut merged: Vec<(&'static Rule, Severity, Vec<String>, String, String)> = Vec::new();
        for (code, sev, subnet, msg, help) in found {
            match merged
                .iter_mut()
                .find(|(c, v, _, m, _)| c.code == code.code && *v == sev && *m == msg)
            {
                Some(entry) => entry.2.push(subnet),
                None => merged.push((code, sev, vec![subnet], msg, help)),
            }
        }
        for (code, sev, subnets_hit, msg, help) in merged {
            let who = if subnets_hit.len() == 1 {
                format!("subnet {} has", subnets_hit[0])
            } else {
                format!("subnets {} have", list(&subnets_hit))
            };
            let pos = if std::ptr::eq(code, &FD102) {
                key_pos(svc.awsvpc, "AssignPublicIp", svc.res.pos)
            } else {
                subnets_pos
            };
            out.report_as(
                code,
                sev,
                &svc.res,
                pos,
                msg.replace("{subnets}", &who),
                help,
            );
        }
        if !subnets.unknown.is_empty() {
            let internet: Vec<String> = registries
                .iter()
                .filter_map(|(c, r)| match r {
                    Registry::Internet(host) => Some(format!("{c} ({host})")),
                    _ => None,
                })
                .collect();
            let must = if public {
                "route 0.0.0.0/0 to an internet gateway (AssignPublicIp is ENABLED) or to a NAT gateway".to_string()
            } else if !internet.is_empty() {
                format!(
                    "route 0.0.0.0/0 to a NAT gateway (or be public subnets with AssignPublicIp ENABLED; container {} pulls from outside AWS, which VPC endpoints cannot serve)",
                    list(&internet)
                )
            } else {
                format!("route 0.0.0.0/0 to a NAT gateway, or have VPC endpoints {needed_text}")
            };
            out.note(
                &FD101,
                &svc.res,
                subnets_pos,
                format!("{kind} {id}: subnets come from {}; they must {must} so tasks can pull their image", list(&subnets.unknown)),
                "this cannot be checked from the template; verify the subnets' route tables before deploying".into(),
            );
        }
    }

    // FD103: the execution role pulls from ECR, writes awslogs and reads secrets.
    for td in m.task_defs() {
        if td.execution_role.is_some() || !m.task_def_is_fargate(&td) {
            continue;
        }
        let mut why = Vec::new();
        for c in &td.containers {
            let name = c.name.clone().unwrap_or_else(|| "?".into());
            if c.image
                .is_some_and(|i| network::registry(m, i) == Registry::Ecr)
            {
                why.push(format!("container {name} pulls from ECR"));
            }
            if c.log_driver.as_deref() == Some("awslogs") {
                why.push(format!("container {name} logs with awslogs"));
            }
            if !c.secrets.is_empty() {
                why.push(format!("container {name} reads Secrets"));
            }
            if c.repository_credentials {
                why.push(format!("container {name} uses RepositoryCredentials"));
            }
        }
        if why.is_empty() {
            continue;
        }
        out.report(
            &FD103,
            &td.res,
            td.res.pos,
            format!("task definition {} has no ExecutionRoleArn but {}; its tasks cannot start", td.res.id, list(&why)),
            "add ExecutionRoleArn: a role trusted by ecs-tasks.amazonaws.com with the managed policy AmazonECSTaskExecutionRolePolicy (plus secretsmanager:GetSecretValue / ssm:GetParameters for Secrets)".into(),
        );
    }
}

fn endpoint_label(alts: &[&str]) -> String {
    alts.iter()
        .map(|a| {
            if *a == "s3" {
                "s3 (gateway)".to_string()
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Fixes for an image from outside AWS: VPC endpoints cannot serve it.
fn internet_help(public: bool, igw: bool) -> String {
    if igw && !public {
        "set AssignPublicIp: ENABLED, or route 0.0.0.0/0 to a NAT gateway (VPC endpoints cannot serve registries outside AWS), or copy the image to ECR".into()
    } else {
        "route 0.0.0.0/0 to a NAT gateway, or use a public subnet with AssignPublicIp: ENABLED (VPC endpoints cannot serve registries outside AWS), or copy the image to ECR".into()
    }
}

fn fix_help(public: bool, igw: bool, needed: &str) -> String {
    if igw && !public {
        format!(
            "set AssignPublicIp: ENABLED, or route 0.0.0.0/0 to a NAT gateway, or add VPC endpoints {needed}"
        )
    } else {
        format!(
            "route 0.0.0.0/0 to a NAT gateway, or use a public subnet with AssignPublicIp: ENABLED, or add VPC endpoints {needed}"
        )
    }
}
