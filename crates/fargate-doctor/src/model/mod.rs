//! Typed views over a template: the resources rules reason about.
//!
//! Rules should not walk raw nodes; they ask the model for services, task
//! definitions, containers, subnets, target groups and pipelines, each keeping
//! the nodes (and so the lines) its facts came from.

pub mod network;
pub mod pipeline;

use crate::resolve::{Res, Resolver, Scenario};
use crate::template::{Node, Pos, Template, Value};

static EMPTY: Node = Node {
    pos: Pos { line: 0, col: 0 },
    value: Value::Map(Vec::new()),
};

/// A resource of the template.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'t> {
    pub id: &'t str,
    pub ty: &'t str,
    /// Where the logical ID is written.
    pub pos: Pos,
    pub node: &'t Node,
    pub props: &'t Node,
    pub condition: Option<&'t str>,
}

impl<'t> Resource<'t> {
    pub fn prop(&self, name: &str) -> Option<&'t Node> {
        self.props.get(name)
    }

    /// Position of a property if present, else of the resource.
    pub fn pos_of(&self, name: &str) -> Pos {
        self.props
            .entry(name)
            .map(|(k, _)| k.pos)
            .unwrap_or(self.pos)
    }

    /// Codes listed under `Metadata: {fargate-doctor: {ignore: [...]}}`.
    pub fn ignored(&self) -> Vec<String> {
        self.node
            .get("Metadata")
            .and_then(|m| m.get("fargate-doctor"))
            .and_then(|m| m.get("ignore"))
            .map(|l| match &l.value {
                Value::Seq(items) => items.iter().filter_map(|i| i.scalar()).collect(),
                Value::Str(s) => vec![s.clone()],
                _ => Vec::new(),
            })
            .unwrap_or_default()
    }
}

/// A template with its resources indexed and a resolver.
pub struct Model<'t> {
    pub template: &'t Template,
    pub r: Resolver<'t>,
    pub resources: Vec<Resource<'t>>,
    /// Text of a buildspec file given on the command line.
    pub buildspecs: &'t [pipeline::BuildspecFile],
}

impl<'t> Model<'t> {
    /// The model with conditions evaluated from parameter defaults.
    pub fn new(template: &'t Template, buildspec: Option<&'t pipeline::BuildspecFile>) -> Self {
        Model::in_scenario(
            template,
            buildspec.map(std::slice::from_ref).unwrap_or_default(),
            None,
        )
    }

    /// The model of `template` in one condition `scenario` (`None`: with
    /// parameter defaults). Resources whose `Condition` is false in the
    /// scenario do not exist in it.
    pub fn in_scenario(
        template: &'t Template,
        buildspecs: &'t [pipeline::BuildspecFile],
        scenario: Option<Scenario>,
    ) -> Self {
        let resolver = Resolver::with_scenario(&template.root, scenario);
        let resources = template
            .root
            .get("Resources")
            .map(|r| {
                r.entries()
                    .iter()
                    .map(|(k, v)| Resource {
                        id: k.name.as_str(),
                        ty: v.get("Type").and_then(|t| t.as_str()).unwrap_or(""),
                        pos: k.pos,
                        node: v,
                        props: v.get("Properties").unwrap_or(&EMPTY),
                        condition: v.get("Condition").and_then(|c| c.as_str()),
                    })
                    .filter(|res: &Resource<'t>| {
                        !resolver.has_scenario()
                            || res
                                .condition
                                .is_none_or(|c| resolver.condition(c) != Some(false))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Model {
            template,
            r: resolver,
            resources,
            buildspecs,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Resource<'t>> {
        self.resources.iter().find(|r| r.id == id)
    }

    pub fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a Resource<'t>> + 'a {
        self.resources.iter().filter(move |r| r.ty == ty)
    }

    /// The resource a value refers to, if it is of the given type.
    pub fn target(&self, n: &'t Node, ty: &str) -> Option<&Resource<'t>> {
        let id = self.r.resource_id(n)?;
        self.get(id).filter(|r| r.ty == ty)
    }

    pub fn task_def(&self, id: &str) -> Option<TaskDef<'t>> {
        self.get(id)
            .filter(|r| r.ty == "AWS::ECS::TaskDefinition")
            .map(|r| TaskDef::new(self, *r))
    }

    pub fn task_defs(&self) -> Vec<TaskDef<'t>> {
        self.of_type("AWS::ECS::TaskDefinition")
            .map(|r| TaskDef::new(self, *r))
            .collect()
    }

    pub fn services(&self) -> Vec<Service<'t>> {
        self.of_type("AWS::ECS::Service")
            .map(|r| Service::new(self, *r))
            .collect()
    }

    /// Services and scheduled tasks: everything that launches Fargate tasks
    /// into subnets.
    pub fn launchers(&self) -> Vec<Service<'t>> {
        let mut out = self.services();
        out.extend(self.scheduled_tasks());
        out
    }

    /// EventBridge rule targets and Scheduler schedules with `EcsParameters`.
    pub fn scheduled_tasks(&self) -> Vec<Service<'t>> {
        let mut out = Vec::new();
        for rule in self.of_type("AWS::Events::Rule") {
            for t in rule.prop("Targets").map(|t| t.items()).unwrap_or_default() {
                if let Some(ecs) = t.get("EcsParameters") {
                    out.push(Service::scheduled(self, *rule, ecs, "scheduled task"));
                }
            }
        }
        for sc in self.of_type("AWS::Scheduler::Schedule") {
            if let Some(ecs) = sc.prop("Target").and_then(|t| t.get("EcsParameters")) {
                out.push(Service::scheduled(self, *sc, ecs, "scheduled task"));
            }
        }
        // Step Functions `ecs:runTask` states in a `Definition` object (a
        // `DefinitionString` is expanded into one before linting).
        for sm in self.of_type("AWS::StepFunctions::StateMachine") {
            let mut states = Vec::new();
            if let Some(def) = sm.prop("Definition") {
                run_task_states(def, &mut states, 0);
            }
            for params in states {
                out.push(Service::scheduled(self, *sm, params, "state machine"));
            }
        }
        out
    }

    /// Whether a task definition runs on Fargate: it requires FARGATE or a
    /// service launches it on FARGATE.
    pub fn task_def_is_fargate(&self, td: &TaskDef<'t>) -> bool {
        td.requires_fargate
            || self
                .launchers()
                .iter()
                .any(|s| s.task_def == Some(td.res.id) && s.fargate == Some(true))
    }
}

/// The `Parameters` of states whose `Resource` is `arn:aws:states:::ecs:runTask…`.
fn run_task_states<'t>(n: &'t Node, out: &mut Vec<&'t Node>, depth: usize) {
    if depth > 32 {
        return;
    }
    match &n.value {
        Value::Map(entries) => {
            let runs_task = n
                .get("Resource")
                .and_then(|r| r.as_str())
                .is_some_and(|r| r.contains(":ecs:runTask"));
            if runs_task && let Some(p) = n.get("Parameters") {
                out.push(p);
            }
            for (_, v) in entries {
                run_task_states(v, out, depth + 1);
            }
        }
        Value::Seq(items) => items
            .iter()
            .for_each(|i| run_task_states(i, out, depth + 1)),
        _ => {}
    }
}

/// A port mapping of a container.
#[derive(Debug, Clone)]
pub struct PortMapping<'t> {
    pub node: &'t Node,
    pub container_port: Option<i64>,
    pub host_port: Option<(i64, &'t Node)>,
}

/// An environment variable of a container.
#[derive(Debug, Clone)]
pub struct EnvVar<'t> {
    pub name: String,
    pub value: &'t Node,
}

/// A container definition.
#[derive(Debug, Clone)]
pub struct Container<'t> {
    pub node: &'t Node,
    /// The name as far as the template fixes it (a parameter's default counts).
    pub name: Option<String>,
    /// How the name is written when it is not a literal: the parameter a
    /// `Ref` names, or a description of an unknown value.
    pub name_from: Option<NameFrom>,
    pub image: Option<&'t Node>,
    pub ports: Vec<PortMapping<'t>>,
    pub memory: Option<(i64, &'t Node)>,
    pub memory_reservation: Option<(i64, &'t Node)>,
    pub log_driver: Option<String>,
    /// `ValueFrom` of each entry in `Secrets`.
    pub secrets: Vec<&'t Node>,
    pub repository_credentials: bool,
    pub env: Vec<EnvVar<'t>>,
}

/// Where a name that is not written literally comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameFrom {
    /// `Ref` to a parameter, with its default if it has one.
    Param {
        name: String,
        default: Option<String>,
    },
    /// Anything else only known at deploy time.
    Unknown(String),
}

impl NameFrom {
    pub fn of<'t>(r: &Resolver<'t>, n: &'t Node) -> Option<NameFrom> {
        if let Some((name, default)) = r.param_ref(n) {
            return Some(NameFrom::Param {
                name: name.to_string(),
                default,
            });
        }
        match r.resolve(n) {
            Res::Lit(_) | Res::Text(_) => None,
            other => Some(NameFrom::Unknown(crate::resolve::describe(&other))),
        }
    }

    /// "parameter AppName (default app)" / "parameter AppName".
    pub fn describe(&self) -> String {
        match self {
            NameFrom::Param {
                name,
                default: Some(d),
            } => format!("parameter {name} (default {d})"),
            NameFrom::Param {
                name,
                default: None,
            } => format!("parameter {name}"),
            NameFrom::Unknown(why) => why.clone(),
        }
    }

    /// The parameter name for `Param`.
    pub fn param(&self) -> Option<&str> {
        match self {
            NameFrom::Param { name, .. } => Some(name),
            NameFrom::Unknown(_) => None,
        }
    }
}

/// An `AWS::ECS::TaskDefinition`.
#[derive(Debug, Clone)]
pub struct TaskDef<'t> {
    pub res: Resource<'t>,
    pub network_mode: Option<String>,
    pub requires_fargate: bool,
    pub cpu: Option<&'t Node>,
    pub memory: Option<&'t Node>,
    pub execution_role: Option<&'t Node>,
    pub containers: Vec<Container<'t>>,
}

impl<'t> TaskDef<'t> {
    fn new(m: &Model<'t>, res: Resource<'t>) -> Self {
        let r = &m.r;
        let network_mode = res.prop("NetworkMode").and_then(|n| r.string(n));
        let requires_fargate = res
            .prop("RequiresCompatibilities")
            .and_then(|n| r.list(n).ok())
            .map(|l| l.iter().any(|c| text(c).as_deref() == Some("FARGATE")))
            .unwrap_or(false);
        let execution_role = res
            .prop("ExecutionRoleArn")
            .filter(|n| !matches!(r.resolve(n), Res::NoValue));
        let containers = res
            .prop("ContainerDefinitions")
            .map(|l| {
                l.items()
                    .iter()
                    // A container under Fn::If: the branch of the condition
                    // assignment being checked (none for AWS::NoValue).
                    .filter_map(|c| match r.resolve(c) {
                        Res::Lit(n) => Some(Container::new(r, n)),
                        Res::NoValue => None,
                        _ => Some(Container::new(r, c)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        TaskDef {
            res,
            network_mode,
            requires_fargate,
            cpu: res.prop("Cpu"),
            memory: res.prop("Memory"),
            execution_role,
            containers,
        }
    }

    pub fn is_awsvpc(&self) -> bool {
        self.network_mode.as_deref() == Some("awsvpc")
    }

    pub fn container(&self, name: &str) -> Option<&Container<'t>> {
        self.containers
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
    }

    /// Containers whose name the template does not fix (no default).
    pub fn unnamed(&self) -> Vec<&Container<'t>> {
        self.containers
            .iter()
            .filter(|c| c.name.is_none())
            .collect()
    }

    pub fn container_names(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter_map(|c| c.name.clone())
            .collect()
    }
}

impl<'t> Container<'t> {
    fn new(r: &Resolver<'t>, c: &'t Node) -> Self {
        let int_prop = |name: &str| c.get(name).and_then(|n| r.int(n).map(|i| (i, n)));
        let ports = c
            .get("PortMappings")
            .map(|l| {
                l.items()
                    .iter()
                    .map(|p| PortMapping {
                        node: p,
                        container_port: p.get("ContainerPort").and_then(|n| r.int(n)),
                        host_port: p.get("HostPort").and_then(|n| r.int(n).map(|i| (i, n))),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let secrets = c
            .get("Secrets")
            .map(|l| {
                l.items()
                    .iter()
                    .filter_map(|s| s.get("ValueFrom"))
                    .collect()
            })
            .unwrap_or_default();
        let env = c
            .get("Environment")
            .map(|l| {
                l.items()
                    .iter()
                    .filter_map(|e| {
                        Some(EnvVar {
                            name: e.get("Name").and_then(|n| r.string(n))?,
                            value: e.get("Value")?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Container {
            node: c,
            name: c.get("Name").and_then(|n| r.string(n)),
            name_from: c.get("Name").and_then(|n| NameFrom::of(r, n)),
            image: c.get("Image"),
            ports,
            memory: int_prop("Memory"),
            memory_reservation: int_prop("MemoryReservation"),
            log_driver: c
                .get("LogConfiguration")
                .and_then(|l| l.get("LogDriver"))
                .and_then(|d| r.string(d)),
            secrets,
            repository_credentials: c.get("RepositoryCredentials").is_some(),
            env,
        }
    }
}

/// An entry of a service's `LoadBalancers`.
#[derive(Debug, Clone)]
pub struct ServiceLb<'t> {
    pub node: &'t Node,
    pub container_name: Option<String>,
    pub container_name_from: Option<NameFrom>,
    pub container_port: Option<i64>,
    pub target_group: Option<&'t Node>,
}

/// An `AWS::ECS::Service`.
#[derive(Debug, Clone)]
pub struct Service<'t> {
    /// "service", or "scheduled task" for an EventBridge rule or schedule
    /// target that runs the task definition (same egress and sizing needs).
    pub kind: &'static str,
    pub res: Resource<'t>,
    pub task_def: Option<&'t str>,
    /// `Some(true)` when it provably runs on Fargate, `None` when unknown.
    pub fargate: Option<bool>,
    pub awsvpc: Option<&'t Node>,
    pub subnets: Option<&'t Node>,
    pub security_groups: Option<&'t Node>,
    pub assign_public_ip: Option<(String, &'t Node)>,
    pub desired_count: i64,
    pub max_percent: i64,
    pub min_percent: Option<(i64, &'t Node)>,
    pub load_balancers: Vec<ServiceLb<'t>>,
}

impl<'t> Service<'t> {
    fn new(m: &Model<'t>, res: Resource<'t>) -> Self {
        let r = &m.r;
        let task_def = res.prop("TaskDefinition").and_then(|n| r.resource_id(n));
        let launch_type = res.prop("LaunchType").and_then(|n| r.string(n));
        let cps: Vec<String> = res
            .prop("CapacityProviderStrategy")
            .map(|l| {
                l.items()
                    .iter()
                    .filter_map(|i| i.get("CapacityProvider").and_then(|c| r.string(c)))
                    .collect()
            })
            .unwrap_or_default();
        let td_fargate = task_def
            .and_then(|id| m.get(id))
            .and_then(|td| td.prop("RequiresCompatibilities"))
            .and_then(|n| r.list(n).ok())
            .map(|l| l.iter().any(|c| text(c).as_deref() == Some("FARGATE")));
        let fargate = match launch_type.as_deref() {
            Some("FARGATE") => Some(true),
            Some(_) => Some(false),
            None if !cps.is_empty() => Some(cps.iter().any(|c| c.starts_with("FARGATE"))),
            None => td_fargate,
        };
        let awsvpc = res
            .prop("NetworkConfiguration")
            .and_then(|n| n.get("AwsvpcConfiguration"));
        let dc = res.prop("DeploymentConfiguration");
        let load_balancers = res
            .prop("LoadBalancers")
            .map(|l| {
                l.items()
                    .iter()
                    .map(|lb| ServiceLb {
                        node: lb,
                        container_name: lb.get("ContainerName").and_then(|n| r.string(n)),
                        container_name_from: lb
                            .get("ContainerName")
                            .and_then(|n| NameFrom::of(r, n)),
                        container_port: lb.get("ContainerPort").and_then(|n| r.int(n)),
                        target_group: lb.get("TargetGroupArn"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Service {
            kind: "service",
            res,
            task_def,
            fargate,
            awsvpc,
            subnets: awsvpc.and_then(|a| a.get("Subnets")),
            security_groups: awsvpc.and_then(|a| a.get("SecurityGroups")),
            assign_public_ip: awsvpc
                .and_then(|a| a.get("AssignPublicIp"))
                .map(|n| (r.string(n).unwrap_or_else(|| "?".into()), n)),
            desired_count: res.prop("DesiredCount").and_then(|n| r.int(n)).unwrap_or(1),
            max_percent: dc
                .and_then(|d| d.get("MaximumPercent"))
                .and_then(|n| r.int(n))
                .unwrap_or(200),
            min_percent: dc
                .and_then(|d| d.get("MinimumHealthyPercent"))
                .and_then(|n| r.int(n).map(|i| (i, n))),
            load_balancers,
        }
    }

    /// A task launched by a rule or schedule target's `EcsParameters`.
    fn scheduled(m: &Model<'t>, res: Resource<'t>, ecs: &'t Node, kind: &'static str) -> Self {
        let r = &m.r;
        // EventBridge and Scheduler: TaskDefinitionArn; Step Functions: TaskDefinition.
        let task_def = ecs
            .get("TaskDefinitionArn")
            .or_else(|| ecs.get("TaskDefinition"))
            .and_then(|n| r.resource_id(n));
        let td_fargate = task_def
            .and_then(|id| m.get(id))
            .and_then(|td| td.prop("RequiresCompatibilities"))
            .and_then(|n| r.list(n).ok())
            .map(|l| l.iter().any(|c| text(c).as_deref() == Some("FARGATE")));
        let fargate = match ecs.get("LaunchType").and_then(|n| r.string(n)).as_deref() {
            Some("FARGATE") => Some(true),
            Some(_) => Some(false),
            None => td_fargate,
        };
        // EventBridge spells it AwsVpcConfiguration, Scheduler AwsvpcConfiguration.
        let awsvpc = ecs.get("NetworkConfiguration").and_then(|n| {
            n.get("AwsVpcConfiguration")
                .or_else(|| n.get("AwsvpcConfiguration"))
        });
        Service {
            kind,
            res,
            task_def,
            fargate,
            awsvpc,
            subnets: awsvpc.and_then(|a| a.get("Subnets")),
            security_groups: awsvpc.and_then(|a| a.get("SecurityGroups")),
            assign_public_ip: awsvpc
                .and_then(|a| a.get("AssignPublicIp"))
                .map(|n| (r.string(n).unwrap_or_else(|| "?".into()), n)),
            desired_count: ecs.get("TaskCount").and_then(|n| r.int(n)).unwrap_or(1),
            // A scheduled run starts new tasks; nothing is replaced.
            max_percent: 100,
            min_percent: None,
            load_balancers: Vec::new(),
        }
    }

    pub fn public_ip(&self) -> bool {
        self.assign_public_ip
            .as_ref()
            .is_some_and(|(v, _)| v == "ENABLED")
    }
}

/// A resolved value as text, if it is one.
pub fn text(r: &Res<'_>) -> Option<String> {
    match r {
        Res::Lit(n) => n.scalar(),
        Res::Text(s) => Some(s.clone()),
        _ => None,
    }
}
