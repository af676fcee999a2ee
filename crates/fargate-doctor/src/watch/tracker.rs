//! The judgement of `watch`, without I/O: given what ECS said at each poll,
//! what changed and whether the watched deployment has succeeded, failed or
//! is looping.
//!
//! Kept apart from the SDK calls so that every verdict can be tested with
//! plain values, and so that the rules live in one place:
//! - success is the watched deployment's `rolloutState` = `COMPLETED`, never
//!   "the service is steady" (a circuit-breaker rollback ends steady on the
//!   old revision, which deploy tools long reported as success);
//! - `FAILED`, losing PRIMARY, or disappearing is a failure, and we say
//!   whether ECS rolled back or someone deployed something else;
//! - N failed tasks started by this deployment is a restart loop, whether or
//!   not a circuit breaker exists or has tripped.

use std::collections::HashSet;

use ecs_explain::Diagnosis;

/// One `deployments[]` element, as far as `watch` cares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployment {
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    pub task_definition: String,
    pub desired: i64,
    pub running: i64,
    pub pending: i64,
    pub failed: i64,
    /// IN_PROGRESS, COMPLETED or FAILED; absent outside the rolling ECS
    /// controller.
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
    /// Epoch seconds.
    pub created_at: Option<f64>,
}

/// One service event (`events[]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: Option<f64>,
    pub message: String,
}

/// What DescribeServices said about the service at one poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub deployments: Vec<Deployment>,
    /// Newest first, as ECS lists them.
    pub events: Vec<ServiceEvent>,
}

/// A stopped task of the service, from DescribeTasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoppedTask {
    pub task_arn: String,
    /// The deployment ID for tasks a service deployment started.
    pub started_by: Option<String>,
    pub task_definition: Option<String>,
    pub explain: ecs_explain::StoppedTask,
}

impl StoppedTask {
    /// Whether the stop is a failure of the task rather than ECS or a person
    /// stopping it on purpose. Health-check replacements are stopped by the
    /// scheduler but are failures all the same.
    pub fn is_failure(&self) -> bool {
        let reason = self.explain.stopped_reason.as_deref().unwrap_or("");
        match self.explain.stop_code.as_deref() {
            Some("UserInitiated" | "SpotInterruption" | "TerminationNotice") => false,
            Some("ServiceSchedulerInitiated") => reason.contains("health check"),
            _ => true,
        }
    }

    pub fn short_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }
}

/// The counts of the watched deployment shown on a progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub rollout_state: String,
    pub running: i64,
    pub desired: i64,
    pub pending: i64,
    pub failed: i64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}/{} running, {} pending, {} failed",
            self.rollout_state, self.running, self.desired, self.pending, self.failed
        )
    }
}

/// Something a person watching wants to know about.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Progress(Counts),
    Event(ServiceEvent),
    TaskStopped {
        task: Box<StoppedTask>,
        /// Counted towards the restart loop (a failure of this deployment).
        counted: bool,
        diagnosis: Option<Diagnosis>,
    },
}

/// How the watch ended, other than a timeout or an API error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    RolledBack,
    Replaced,
    Disappeared,
    RestartLoop,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled_back",
            Outcome::Replaced => "replaced",
            Outcome::Disappeared => "disappeared",
            Outcome::RestartLoop => "restart_loop",
        }
    }
}

/// The end of a watch, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub message: String,
    /// The task definition the service runs now, when it is not ours.
    pub running_task_definition: Option<String>,
    /// The explanation of the latest failed task of the deployment, if any.
    pub diagnosis: Option<Diagnosis>,
}

/// Why a watch cannot start (exit 2).
#[derive(Debug, Clone, PartialEq)]
pub enum StartError {
    NoPrimary,
    NoSuchDeployment { id: String, known: Vec<String> },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::NoPrimary => write!(f, "the service has no PRIMARY deployment to watch"),
            StartError::NoSuchDeployment { id, known } => write!(
                f,
                "the service has no deployment {id} (its deployments: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        }
    }
}

/// `arn:…:task-definition/web:8` → `web:8`.
pub fn short_task_definition(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

pub struct Tracker {
    watched: String,
    task_definition: String,
    created_at: Option<f64>,
    /// Task definitions of the other deployments at start: what a rollback
    /// goes back to.
    previous_task_definitions: Vec<String>,
    threshold: usize,
    last_counts: Option<Counts>,
    seen_events: HashSet<String>,
    seen_tasks: HashSet<String>,
    failures: Vec<StoppedTask>,
    last_diagnosis: Option<Diagnosis>,
}

impl Tracker {
    /// Picks the deployment to watch: `deployment_id`, else the PRIMARY one.
    pub fn start(
        first: &Snapshot,
        deployment_id: Option<&str>,
        threshold: usize,
    ) -> Result<Tracker, StartError> {
        let watched = match deployment_id {
            Some(id) => first
                .deployments
                .iter()
                .find(|d| d.id == id)
                .ok_or_else(|| StartError::NoSuchDeployment {
                    id: id.to_string(),
                    known: first.deployments.iter().map(|d| d.id.clone()).collect(),
                })?,
            None => first
                .deployments
                .iter()
                .find(|d| d.status == "PRIMARY")
                .ok_or(StartError::NoPrimary)?,
        };
        Ok(Tracker {
            watched: watched.id.clone(),
            task_definition: watched.task_definition.clone(),
            created_at: watched.created_at,
            previous_task_definitions: first
                .deployments
                .iter()
                .filter(|d| d.id != watched.id)
                .map(|d| d.task_definition.clone())
                .collect(),
            threshold: threshold.max(1),
            last_counts: None,
            seen_events: HashSet::new(),
            seen_tasks: HashSet::new(),
            failures: Vec::new(),
            last_diagnosis: None,
        })
    }

    pub fn deployment_id(&self) -> &str {
        &self.watched
    }

    pub fn task_definition(&self) -> &str {
        &self.task_definition
    }

    /// Failed tasks of this deployment seen so far.
    pub fn failures(&self) -> usize {
        self.failures.len()
    }

    /// The task ARNs not described yet (DescribeTasks is only called for these).
    pub fn unseen<'a>(&self, arns: &'a [String]) -> Vec<&'a String> {
        arns.iter()
            .filter(|a| !self.seen_tasks.contains(a.as_str()))
            .collect()
    }

    /// The state in words, for a timeout.
    pub fn state(&self) -> String {
        match &self.last_counts {
            Some(c) => format!("deployment {} was {c}", self.watched),
            None => format!("deployment {} was never described", self.watched),
        }
    }

    /// The current state, for the spinner line.
    pub fn now(&self) -> String {
        match &self.last_counts {
            Some(c) => format!("{} {c}", self.watched),
            None => self.watched.clone(),
        }
    }

    /// Takes one poll: the service and the stopped tasks not seen before.
    pub fn observe(
        &mut self,
        snap: &Snapshot,
        stopped: Vec<StoppedTask>,
    ) -> (Vec<Change>, Option<Verdict>) {
        let mut changes = Vec::new();
        let ours = snap.deployments.iter().find(|d| d.id == self.watched);

        if let Some(d) = ours {
            let counts = Counts {
                rollout_state: d
                    .rollout_state
                    .clone()
                    .unwrap_or_else(|| "no rolloutState".into()),
                running: d.running,
                desired: d.desired,
                pending: d.pending,
                failed: d.failed,
            };
            if self.last_counts.as_ref() != Some(&counts) {
                self.last_counts = Some(counts.clone());
                changes.push(Change::Progress(counts));
            }
        }

        // Oldest first, and only those since the deployment began.
        for e in snap.events.iter().rev() {
            let recent = match (e.created_at, self.created_at) {
                (Some(at), Some(since)) => at >= since,
                _ => true,
            };
            if recent && self.seen_events.insert(e.id.clone()) {
                changes.push(Change::Event(e.clone()));
            }
        }

        for task in stopped {
            if !self.seen_tasks.insert(task.task_arn.clone()) {
                continue;
            }
            if task.started_by.as_deref() != Some(self.watched.as_str()) {
                continue;
            }
            let counted = task.is_failure();
            let diagnosis = ecs_explain::explain_task(&task.explain);
            if counted {
                self.failures.push(task.clone());
                self.last_diagnosis = diagnosis.clone();
            }
            changes.push(Change::TaskStopped {
                task: Box::new(task),
                counted,
                diagnosis,
            });
        }

        let verdict = self.judge(snap, ours);
        (changes, verdict)
    }

    fn judge(&self, snap: &Snapshot, ours: Option<&Deployment>) -> Option<Verdict> {
        let id = &self.watched;
        let td = short_task_definition(&self.task_definition);
        let primary = snap.deployments.iter().find(|d| d.status == "PRIMARY");
        let verdict = |outcome, message: String, running: Option<&Deployment>| Verdict {
            outcome,
            message,
            running_task_definition: running.map(|d| d.task_definition.clone()),
            diagnosis: self.last_diagnosis.clone(),
        };
        if let Some(d) = ours {
            match d.rollout_state.as_deref() {
                Some("COMPLETED") => {
                    return Some(verdict(
                        Outcome::Completed,
                        format!(
                            "deployment {id} COMPLETED: {}/{} tasks of {td} running",
                            d.running, d.desired
                        ),
                        None,
                    ));
                }
                Some("FAILED") => {
                    let reason = d.rollout_reason.as_deref().unwrap_or("ECS gave no reason");
                    let mut message = format!("deployment {id} of {td} FAILED: {reason}");
                    let (outcome, running) = match primary.filter(|p| p.id != *id) {
                        Some(p) => {
                            let (o, s) = self.other_primary(p);
                            message.push('\n');
                            message.push_str(&s);
                            (o, Some(p))
                        }
                        None => {
                            message.push_str(&format!(
                                "\nNothing to roll back to (no earlier deployment completed): the service runs {} of {} tasks.",
                                d.running, d.desired
                            ));
                            (Outcome::Failed, None)
                        }
                    };
                    return Some(verdict(outcome, message, running));
                }
                _ => {}
            }
        }
        match (ours, primary) {
            (_, Some(p)) if p.id != *id => {
                let (outcome, s) = self.other_primary(p);
                let head = if ours.is_some() {
                    format!("deployment {id} of {td} is no longer PRIMARY.")
                } else {
                    format!("deployment {id} of {td} disappeared from the service.")
                };
                return Some(verdict(outcome, format!("{head}\n{s}"), Some(p)));
            }
            (None, _) => {
                return Some(verdict(
                    Outcome::Disappeared,
                    format!(
                        "deployment {id} of {td} disappeared from the service, and no deployment is PRIMARY"
                    ),
                    None,
                ));
            }
            _ => {}
        }
        if self.failures.len() >= self.threshold {
            let latest = self.failures.last();
            let reason = latest
                .and_then(|t| t.explain.stopped_reason.as_deref())
                .unwrap_or("no stoppedReason");
            let state = ours
                .and_then(|d| d.rollout_state.as_deref())
                .unwrap_or("IN_PROGRESS");
            return Some(verdict(
                Outcome::RestartLoop,
                format!(
                    "restart loop: {} tasks of deployment {id} ({td}) stopped (--loop-threshold {}); the deployment is still {state} and ECS keeps starting new tasks.\nlatest stop: {reason}",
                    self.failures.len(),
                    self.threshold
                ),
                None,
            ));
        }
        None
    }

    /// Another deployment is PRIMARY: a rollback, or a newer deploy?
    fn other_primary(&self, p: &Deployment) -> (Outcome, String) {
        let reason = p.rollout_reason.as_deref().unwrap_or("");
        let rolled_back = reason.contains("rolling back")
            || (p.task_definition != self.task_definition
                && self.previous_task_definitions.contains(&p.task_definition));
        let running = short_task_definition(&p.task_definition);
        if rolled_back {
            (
                Outcome::RolledBack,
                format!(
                    "ECS rolled back: the service now runs {running} (deployment {}). It will look steady, but this deploy did not happen.",
                    p.id
                ),
            )
        } else {
            (
                Outcome::Replaced,
                format!(
                    "Replaced by a newer deployment {} of {running}: someone or something deployed again.",
                    p.id
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(id: &str, status: &str, td: &str, rollout: &str, reason: &str) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: format!("arn:aws:ecs:eu-west-1:1:task-definition/{td}"),
            desired: 2,
            running: 1,
            pending: 1,
            failed: 0,
            rollout_state: Some(rollout.into()),
            rollout_reason: Some(reason.into()),
            created_at: Some(100.0),
        }
    }

    fn snap(deployments: Vec<Deployment>) -> Snapshot {
        Snapshot {
            deployments,
            events: vec![],
        }
    }

    fn failed_task(n: u32, started_by: &str) -> StoppedTask {
        StoppedTask {
            task_arn: format!("arn:aws:ecs:eu-west-1:1:task/prod/{n}"),
            started_by: Some(started_by.into()),
            task_definition: None,
            explain: ecs_explain::StoppedTask {
                stop_code: Some("EssentialContainerExited".into()),
                stopped_reason: Some("Essential container in task exited".into()),
                containers: vec![ecs_explain::Container {
                    name: Some("web".into()),
                    reason: None,
                    exit_code: Some(1),
                }],
                ..Default::default()
            },
        }
    }

    #[test]
    fn steady_on_another_deployment_is_not_success() {
        let start = snap(vec![
            dep("new", "PRIMARY", "web:8", "IN_PROGRESS", ""),
            dep("old", "ACTIVE", "web:7", "COMPLETED", ""),
        ]);
        let mut t = Tracker::start(&start, None, 3).unwrap();
        assert_eq!(t.deployment_id(), "new");
        let (_, v) = t.observe(&start, vec![]);
        assert_eq!(v, None);
        // A new deployment of the old task definition, without a reason.
        let after = snap(vec![dep("back", "PRIMARY", "web:7", "COMPLETED", "")]);
        let v = t.observe(&after, vec![]).1.unwrap();
        assert_eq!(v.outcome, Outcome::RolledBack);
        assert!(v.message.contains("disappeared"), "{}", v.message);
        assert!(v.message.contains("now runs web:7"), "{}", v.message);
    }

    #[test]
    fn a_newer_deploy_is_a_replacement() {
        let start = snap(vec![dep("new", "PRIMARY", "web:8", "IN_PROGRESS", "")]);
        let mut t = Tracker::start(&start, None, 3).unwrap();
        let after = snap(vec![
            dep("newer", "PRIMARY", "web:9", "IN_PROGRESS", ""),
            dep("new", "ACTIVE", "web:8", "IN_PROGRESS", ""),
        ]);
        let v = t.observe(&after, vec![]).1.unwrap();
        assert_eq!(v.outcome, Outcome::Replaced);
        assert!(v.message.contains("no longer PRIMARY"), "{}", v.message);
        assert!(v.message.contains("newer deployment newer of web:9"));
    }

    #[test]
    fn loop_counts_only_failures_of_this_deployment_and_reports_changes_once() {
        let s = snap(vec![dep("new", "PRIMARY", "web:8", "IN_PROGRESS", "")]);
        let mut t = Tracker::start(&s, None, 2).unwrap();
        let (changes, v) = t.observe(&s, vec![failed_task(1, "new"), failed_task(2, "old")]);
        assert_eq!(v, None);
        assert_eq!(changes.len(), 2, "{changes:?}"); // progress + our task
        let (changes, v) = t.observe(&s, vec![failed_task(1, "new")]);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(v, None);
        let mut user_stop = failed_task(3, "new");
        user_stop.explain.stop_code = Some("UserInitiated".into());
        let (_, v) = t.observe(&s, vec![user_stop]);
        assert_eq!(v, None);
        let v = t.observe(&s, vec![failed_task(4, "new")]).1.unwrap();
        assert_eq!(v.outcome, Outcome::RestartLoop);
        assert!(
            v.message.starts_with("restart loop: 2 tasks"),
            "{}",
            v.message
        );
        assert_eq!(
            v.diagnosis.map(|d| d.trap),
            Some("the application crashed (exit code 1)".to_string())
        );
    }

    #[test]
    fn unknown_deployment_id_lists_the_known_ones() {
        let s = snap(vec![dep("a", "PRIMARY", "web:8", "IN_PROGRESS", "")]);
        let e = Tracker::start(&s, Some("b"), 3).err().unwrap();
        assert_eq!(
            e.to_string(),
            "the service has no deployment b (its deployments: a)"
        );
    }
}
