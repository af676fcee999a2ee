//! FD3xx — enough IP addresses for a rolling deploy.
//!
//! Every awsvpc task takes one address in its subnet, and during a deploy
//! ECS runs up to DesiredCount × MaximumPercent / 100 tasks. Load balancer
//! nodes in the same subnets take addresses too.

use super::{Sink, key_pos, list};
use crate::model::{Model, network};

super::declare_rules! {
    FD301 = (
        "subnet-too-small",
        Warning,
        "The service's subnets have fewer usable addresses than a rolling deploy needs"
    );
}

/// Addresses a load balancer keeps free in each of its subnets.
fn lb_share(m: &Model<'_>, lb: &crate::model::Resource<'_>) -> u64 {
    match lb.prop("Type").and_then(|t| m.r.string(t)).as_deref() {
        Some("network") | Some("gateway") => 1,
        _ => 8,
    }
}

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    for svc in m.services() {
        if svc.awsvpc.is_none() {
            continue;
        }
        let peak = (svc.desired_count * svc.max_percent + 99) / 100;
        if peak <= 0 {
            continue;
        }
        let peak = peak as u64;
        let id = svc.res.id;
        let pos = key_pos(svc.awsvpc, "Subnets", svc.res.pos);
        let why = format!(
            "DesiredCount {} × MaximumPercent {}%",
            svc.desired_count, svc.max_percent
        );
        let subnets = network::subnets(m, svc.subnets);
        let mut unknown = subnets.unknown.clone();
        let mut total = 0u64;
        let mut parts = Vec::new();
        let mut shares = Vec::new();
        for s in &subnets.known {
            let cidr = s.prop("CidrBlock").and_then(|n| m.r.string(n));
            let Some((cidr, usable)) =
                cidr.and_then(|c| network::usable_addresses(&c).map(|u| (c, u)))
            else {
                unknown.push(format!("the CidrBlock of {}", s.id));
                continue;
            };
            let mut share = 0;
            for lb in m.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer") {
                if network::lb_subnets(m, lb).contains(&s.id) {
                    let n = lb_share(m, lb);
                    share += n;
                    shares.push(format!("{n} in {} for load balancer {}", s.id, lb.id));
                }
            }
            let prefix = cidr.split_once('/').map(|(_, p)| p).unwrap_or("?");
            parts.push(format!("{} (/{prefix}: {usable})", s.id));
            total += usable.saturating_sub(share);
        }
        if !unknown.is_empty() {
            if subnets.known.is_empty() {
                out.note(
                    &FD301,
                    &svc.res,
                    pos,
                    format!("service {id}: subnets come from {}; together they need at least {peak} free addresses during a deploy ({why})", list(&unknown)),
                    "check the subnets' free addresses before deploying".into(),
                );
            }
            continue;
        }
        if total < peak {
            let share_text = if shares.is_empty() {
                String::new()
            } else {
                format!(" after reserving {}", list(&shares))
            };
            out.report(
                &FD301,
                &svc.res,
                pos,
                format!(
                    "service {id} needs {peak} addresses during a deploy ({why}) but its subnets {} have {total} usable{share_text}",
                    list(&parts)
                ),
                "use larger subnets (a /24 has 251 usable addresses), add subnets, or lower MaximumPercent/DesiredCount".into(),
            );
        }
    }
}
