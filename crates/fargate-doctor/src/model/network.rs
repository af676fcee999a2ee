//! The network facts behind the egress, capacity and security-group rules:
//! which subnets a service uses, where their route tables send 0.0.0.0/0,
//! which VPC endpoints exist, which load balancers front a target group and
//! what security groups admit.

use super::{Model, Resource, TaskDef, text};
use crate::resolve::{Res, describe};
use crate::template::{Node, Value};

/// The subnets a value names: those defined in this template, and
/// descriptions of those that are not ("parameter PrivateSubnets").
pub struct Subnets<'a, 't> {
    pub known: Vec<&'a Resource<'t>>,
    pub unknown: Vec<String>,
}

pub fn subnets<'a, 't>(m: &'a Model<'t>, n: Option<&'t Node>) -> Subnets<'a, 't> {
    let mut out = Subnets {
        known: Vec::new(),
        unknown: Vec::new(),
    };
    let Some(n) = n else {
        return out;
    };
    match m.r.list(n) {
        Err(why) => out.unknown.push(why),
        Ok(items) => {
            for item in items {
                match &item {
                    Res::Resource { id, .. } => match m.get(id) {
                        Some(r) if r.ty == "AWS::EC2::Subnet" => out.known.push(r),
                        _ => out.unknown.push(describe(&item)),
                    },
                    Res::Lit(_) | Res::Text(_) => out.unknown.push(format!(
                        "{} (not defined in this template)",
                        describe(&item)
                    )),
                    other => out.unknown.push(describe(other)),
                }
            }
        }
    }
    out.unknown.dedup();
    out
}

/// Where a subnet's default route goes.
#[derive(Debug, Default)]
pub struct Egress<'t> {
    pub route_tables: Vec<&'t str>,
    pub igw: bool,
    pub nat: bool,
    /// Default routes whose target cannot be identified.
    pub unknown: Vec<String>,
}

pub fn egress<'t>(m: &Model<'t>, subnet: &str) -> Egress<'t> {
    let mut e = Egress::default();
    for assoc in m.of_type("AWS::EC2::SubnetRouteTableAssociation") {
        if assoc.prop("SubnetId").and_then(|n| m.r.resource_id(n)) != Some(subnet) {
            continue;
        }
        match assoc.prop("RouteTableId").map(|n| m.r.resolve(n)) {
            Some(Res::Resource { id, .. }) => e.route_tables.push(id),
            Some(other) => e.unknown.push(format!("route table {}", describe(&other))),
            None => {}
        }
    }
    for route in m.of_type("AWS::EC2::Route") {
        let Some(table) = route.prop("RouteTableId").and_then(|n| m.r.resource_id(n)) else {
            continue;
        };
        if !e.route_tables.contains(&table) {
            continue;
        }
        let dest = route
            .prop("DestinationCidrBlock")
            .and_then(|n| m.r.string(n));
        if dest.as_deref() != Some("0.0.0.0/0") {
            continue;
        }
        if let Some(g) = route.prop("GatewayId") {
            match m.r.resolve(g) {
                Res::Resource { id, .. }
                    if m.get(id)
                        .is_some_and(|r| r.ty == "AWS::EC2::InternetGateway") =>
                {
                    e.igw = true
                }
                r @ (Res::Lit(_) | Res::Text(_))
                    if text(&r).is_some_and(|s| s.starts_with("igw-")) =>
                {
                    e.igw = true
                }
                other => e.unknown.push(format!("gateway {}", describe(&other))),
            }
        } else if route.prop("NatGatewayId").is_some() {
            e.nat = true;
        } else {
            for key in [
                "TransitGatewayId",
                "InstanceId",
                "NetworkInterfaceId",
                "VpcPeeringConnectionId",
                "VpcEndpointId",
            ] {
                if let Some(n) = route.prop(key) {
                    e.unknown
                        .push(format!("{key} {}", describe(&m.r.resolve(n))));
                }
            }
        }
    }
    e
}

/// A VPC endpoint: the short service name (`ecr.dkr`, `s3`, `logs`, ...).
#[derive(Debug)]
pub struct Endpoint<'t> {
    pub service: String,
    pub gateway: bool,
    pub vpc: Option<&'t str>,
    pub route_tables: Option<Vec<&'t str>>,
}

pub fn endpoints<'t>(m: &Model<'t>) -> Vec<Endpoint<'t>> {
    m.of_type("AWS::EC2::VPCEndpoint")
        .filter_map(|ep| {
            let shape = m.r.shape(ep.prop("ServiceName")?);
            let service = match shape.strip_prefix("com.amazonaws.") {
                Some(rest) => rest
                    .split_once('.')
                    .map(|(_, s)| s.to_string())
                    .unwrap_or_default(),
                None => shape
                    .rsplit_once("*.")
                    .map(|(_, s)| s.to_string())
                    .unwrap_or(shape),
            };
            let ty = ep
                .prop("VpcEndpointType")
                .and_then(|n| m.r.string(n))
                .unwrap_or_else(|| "Gateway".into());
            let route_tables = ep
                .prop("RouteTableIds")
                .and_then(|n| m.r.list(n).ok())
                .map(|l| {
                    l.iter()
                        .filter_map(|r| match r {
                            Res::Resource { id, .. } => Some(*id),
                            _ => None,
                        })
                        .collect()
                });
            Some(Endpoint {
                service,
                gateway: ty == "Gateway",
                vpc: ep.prop("VpcId").and_then(|n| m.r.resource_id(n)),
                route_tables,
            })
        })
        .collect()
}

/// Where an image comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Registry {
    /// A private ECR repository, reachable through VPC endpoints.
    Ecr,
    /// Docker Hub, public.ecr.aws, ghcr.io, ...: needs the internet.
    Internet(String),
    /// Only known at deploy time.
    Unknown(String),
}

pub fn registry(m: &Model<'_>, image: &Node) -> Registry {
    let shape = m.r.shape(image);
    // `${AWS::URLSuffix}` renders as amazonaws.com; `.amazonaws.com.cn` too.
    if shape.contains(".dkr.ecr.") && shape.contains(".amazonaws.com") {
        return Registry::Ecr;
    }
    let first = shape.split('/').next().unwrap_or("");
    if first.contains('*') || shape.is_empty() {
        return Registry::Unknown(describe(&m.r.resolve(image)));
    }
    let host = if shape.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        first.to_string()
    } else {
        "docker.io".to_string()
    };
    Registry::Internet(host)
}

/// The VPC endpoints a task definition needs when it has no NAT or IGW.
/// Each entry lists acceptable service names (any one will do).
pub fn needed_endpoints(m: &Model<'_>, td: &TaskDef<'_>) -> Vec<Vec<&'static str>> {
    let mut need: Vec<Vec<&'static str>> = vec![vec!["ecr.api"], vec!["ecr.dkr"], vec!["s3"]];
    if td
        .containers
        .iter()
        .any(|c| c.log_driver.as_deref() == Some("awslogs"))
    {
        need.push(vec!["logs"]);
    }
    for c in &td.containers {
        for s in &c.secrets {
            let shape = m.r.shape(s);
            let which: Vec<&'static str> = if shape.contains(":secretsmanager:") {
                vec!["secretsmanager"]
            } else if shape.contains(":ssm:")
                || (!shape.starts_with("arn:") && !shape.contains('*'))
            {
                vec!["ssm"]
            } else {
                vec!["secretsmanager", "ssm"]
            };
            if !need.contains(&which) {
                need.push(which);
            }
        }
    }
    need
}

/// A security group ingress rule.
#[derive(Debug)]
pub struct Ingress<'t> {
    pub node: &'t Node,
    pub protocol: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub source_sg: Option<Res<'t>>,
    pub has_other_source: bool,
}

impl Ingress<'_> {
    pub fn covers_tcp(&self, port: i64) -> bool {
        match self.protocol.as_str() {
            "-1" | "all" => true,
            "tcp" | "6" => match (self.from, self.to) {
                (Some(f), Some(t)) => (f == -1 && t == -1) || (f <= port && port <= t),
                _ => false,
            },
            _ => false,
        }
    }
}

pub fn ingress<'t>(m: &Model<'t>, sg: &str) -> Vec<Ingress<'t>> {
    let parse = |n: &'t Node| Ingress {
        node: n,
        protocol: n
            .get("IpProtocol")
            .and_then(|p| m.r.string(p))
            .unwrap_or_default()
            .to_ascii_lowercase(),
        from: n.get("FromPort").and_then(|p| m.r.int(p)),
        to: n.get("ToPort").and_then(|p| m.r.int(p)),
        source_sg: n.get("SourceSecurityGroupId").map(|s| m.r.resolve(s)),
        has_other_source: [
            "CidrIp",
            "CidrIpv6",
            "SourcePrefixListId",
            "SourceSecurityGroupName",
        ]
        .iter()
        .any(|k| n.get(k).is_some()),
    };
    let mut out: Vec<Ingress<'t>> = Vec::new();
    if let Some(list) = m.get(sg).and_then(|g| g.prop("SecurityGroupIngress")) {
        // A single mapping instead of a list is read too (FD206 reports the shape).
        match &list.value {
            Value::Map(_) => out.push(parse(list)),
            _ => out.extend(list.items().iter().map(parse)),
        }
    }
    for r in m.of_type("AWS::EC2::SecurityGroupIngress") {
        if r.prop("GroupId").and_then(|n| m.r.resource_id(n)) == Some(sg) {
            out.push(parse(r.props));
        }
    }
    out
}

/// The load balancers that forward to a target group (through listeners or
/// listener rules).
pub fn lbs_for_target_group<'a, 't>(m: &'a Model<'t>, tg: &str) -> Vec<&'a Resource<'t>> {
    let forwards = |actions: Option<&'t Node>| -> bool {
        actions.is_some_and(|a| {
            a.items().iter().any(|act| {
                act.get("TargetGroupArn").and_then(|n| m.r.resource_id(n)) == Some(tg)
                    || act
                        .get("ForwardConfig")
                        .and_then(|f| f.get("TargetGroups"))
                        .is_some_and(|l| {
                            l.items().iter().any(|t| {
                                t.get("TargetGroupArn").and_then(|n| m.r.resource_id(n)) == Some(tg)
                            })
                        })
            })
        })
    };
    let mut listeners: Vec<&str> = m
        .of_type("AWS::ElasticLoadBalancingV2::Listener")
        .filter(|l| forwards(l.prop("DefaultActions")))
        .map(|l| l.id)
        .collect();
    for rule in m.of_type("AWS::ElasticLoadBalancingV2::ListenerRule") {
        if forwards(rule.prop("Actions"))
            && let Some(l) = rule.prop("ListenerArn").and_then(|n| m.r.resource_id(n))
        {
            listeners.push(l);
        }
    }
    let mut lbs: Vec<&'a Resource<'t>> = Vec::new();
    for l in listeners {
        if let Some(lb) = m
            .get(l)
            .and_then(|l| l.prop("LoadBalancerArn"))
            .and_then(|n| m.target(n, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
            && !lbs.iter().any(|x| x.id == lb.id)
        {
            lbs.push(lb);
        }
    }
    lbs
}

/// Subnet logical IDs a load balancer is placed in.
pub fn lb_subnets<'t>(m: &Model<'t>, lb: &Resource<'t>) -> Vec<&'t str> {
    let mut out = Vec::new();
    if let Some(Ok(l)) = lb.prop("Subnets").map(|n| m.r.list(n)) {
        out.extend(l.iter().filter_map(|r| match r {
            Res::Resource { id, .. } => Some(*id),
            _ => None,
        }));
    }
    if let Some(maps) = lb.prop("SubnetMappings") {
        out.extend(
            maps.items()
                .iter()
                .filter_map(|s| s.get("SubnetId").and_then(|n| m.r.resource_id(n))),
        );
    }
    out
}

/// `10.0.1.0/24` → 251 usable addresses (AWS reserves 5 per subnet).
pub fn usable_addresses(cidr: &str) -> Option<u64> {
    let (_, prefix) = cidr.split_once('/')?;
    let prefix: u32 = prefix.trim().parse().ok()?;
    if !(16..=28).contains(&prefix) {
        return None;
    }
    Some((1u64 << (32 - prefix)) - 5)
}

#[cfg(test)]
mod tests {
    #[test]
    fn subnet_math() {
        assert_eq!(super::usable_addresses("10.0.0.0/28"), Some(11));
        assert_eq!(super::usable_addresses("10.0.0.0/24"), Some(251));
        assert_eq!(super::usable_addresses("10.0.0.0/8"), None);
    }
}
