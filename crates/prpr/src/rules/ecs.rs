//! "Your deploy is looping, here is why": ECS events to the ops channel.
//!
//! - A failed deployment (`SERVICE_DEPLOYMENT_FAILED`) is one message.
//! - Task stops that mean "it never ran" (`TaskFailedToStart`,
//!   `EssentialContainerExited`) are counted per cluster, service group and
//!   task definition. `loop_threshold` of them within `loop_window` is a
//!   restart loop: one alert, with the latest stop explained the way
//!   `fargate-doctor explain` explains it. The loop is not announced again
//!   until it has been quiet for a whole window. This catches what the
//!   circuit breaker does not: a first deploy with nothing to roll back to,
//!   the breaker switched off, or tasks that crash after passing health
//!   checks.
//! - `WARN`/`ERROR` service actions: one message per event name and service
//!   per window.
//! - A completed deployment only with `announce_deploys`.
//!
//! What came before comes from the store ([`Seen`]): each counted event is
//! recorded under a key naming what it counts for, and the store hands the
//! earlier ones of the same key to [`decide`] inside the transaction that
//! records this one.

use crate::config::OpsConfig;
use crate::ecs_event::EcsEvent;
use crate::github::Subject;
use crate::notice::{Address, Decision, EcsService, Explanation, Notice, Notification};
use crate::store::Seen;

/// Stop codes that mean the task did not do its job: counted towards a loop.
const FAILED_STOPS: [&str; 2] = ["TaskFailedToStart", "EssentialContainerExited"];

/// How far back the store looks for a loop's earlier stops. A loop still
/// going after this long is announced again, once a day.
pub const HISTORY_MS: i64 = 24 * 3600 * 1000;

/// How the event is recorded: its subject names what it counts for (the
/// store's `repo` column holds the key; no PR number), and whether its
/// history is needed.
pub fn subject(event: &EcsEvent) -> (Subject, bool) {
    let (action, key, history) = match event {
        EcsEvent::TaskStopped {
            cluster,
            group,
            task_definition,
            stop_code,
            ..
        } => {
            let counted = FAILED_STOPS.contains(&stop_code.as_str());
            (
                Some(stop_code.clone()),
                counted.then(|| format!("ecs:{cluster}/{group}/{task_definition}")),
                counted,
            )
        }
        EcsEvent::Deployment {
            cluster,
            service,
            event_name,
            ..
        } => (
            Some(event_name.clone()),
            Some(format!("ecs:{cluster}/{service}")),
            false,
        ),
        EcsEvent::ServiceAction {
            cluster,
            service,
            event_name,
            ..
        } => (
            Some(event_name.clone()),
            Some(format!("ecs:{cluster}/{service}/{event_name}")),
            true,
        ),
        EcsEvent::Other => (None, None, false),
    };
    (
        Subject {
            action,
            repo: key,
            number: None,
        },
        history,
    )
}

/// Runs the ops rule for one event received at `now_ms`; `history` holds the
/// earlier events of the same key, newest first.
pub fn decide(event: &EcsEvent, history: &[Seen], now_ms: i64, cfg: &OpsConfig) -> Decision {
    let window_ms = i64::try_from(cfg.loop_window.as_millis()).unwrap_or(i64::MAX);
    let notice = match event {
        EcsEvent::TaskStopped {
            cluster,
            group,
            task_definition,
            stop_code,
            task,
        } => {
            if !FAILED_STOPS.contains(&stop_code.as_str()) {
                return Decision::skip(format!("task stop {stop_code} is not a failure"));
            }
            if announced_in_this_episode(history, now_ms, window_ms) {
                return Decision::skip("restart loop already announced");
            }
            let stops = 1 + history
                .iter()
                .filter(|s| now_ms - s.received_at < window_ms)
                .count() as u32;
            if stops < cfg.loop_threshold {
                return Decision::skip(format!(
                    "{stops} of {} failed starts within the loop window",
                    cfg.loop_threshold
                ));
            }
            let reason = task
                .stopped_reason
                .clone()
                .or_else(|| task.containers.iter().find_map(|c| c.reason.clone()))
                .unwrap_or_default();
            Notice::RestartLoop {
                service: EcsService {
                    cluster: cluster.clone(),
                    service: group.strip_prefix("service:").unwrap_or(group).to_string(),
                },
                task_definition: task_definition.clone(),
                stops,
                window_secs: cfg.loop_window.as_secs(),
                stop_code: stop_code.clone(),
                reason,
                explanation: ecs_explain::explain_task(task).map(|d| Explanation {
                    trap: d.trap,
                    cause: d.cause,
                    fix: d.fix,
                }),
            }
        }
        EcsEvent::Deployment {
            cluster,
            service,
            event_name,
            deployment_id,
            reason,
        } => {
            let service = EcsService {
                cluster: cluster.clone(),
                service: service.clone(),
            };
            match event_name.as_str() {
                "SERVICE_DEPLOYMENT_FAILED" => Notice::DeployFailed {
                    service,
                    deployment_id: deployment_id.clone(),
                    rolled_back: reason.to_ascii_lowercase().contains("rolling back")
                        || reason.to_ascii_lowercase().contains("rolled back"),
                    reason: reason.clone(),
                },
                "SERVICE_DEPLOYMENT_COMPLETED" if cfg.announce_deploys => Notice::Deployed {
                    service,
                    deployment_id: deployment_id.clone(),
                },
                other => {
                    return Decision::skip(format!("deployment event {other} is not announced"));
                }
            }
        }
        EcsEvent::ServiceAction {
            cluster,
            service,
            event_type,
            event_name,
            reason,
        } => {
            if event_type != "WARN" && event_type != "ERROR" {
                return Decision::skip(format!("service action of type {event_type}"));
            }
            if history
                .iter()
                .any(|s| s.notified && now_ms - s.received_at < window_ms)
            {
                return Decision::skip(format!("{event_name} already announced within the window"));
            }
            Notice::ServiceAction {
                service: EcsService {
                    cluster: cluster.clone(),
                    service: service.clone(),
                },
                level: event_type.clone(),
                event_name: event_name.clone(),
                reason: reason.clone(),
            }
        }
        EcsEvent::Other => return Decision::skip("ECS event not handled"),
    };
    let Some(channel) = &cfg.channel else {
        return Decision::skip("no [ops] channel configured");
    };
    Decision {
        notifications: vec![Notification::new(channel.clone(), Address::Nobody, notice)],
        ..Decision::default()
    }
}

/// Was an alert sent for the loop this stop belongs to? A loop is a run of
/// stops each less than a window after the one before.
fn announced_in_this_episode(history: &[Seen], now_ms: i64, window_ms: i64) -> bool {
    let mut later = now_ms;
    for s in history {
        if later - s.received_at >= window_ms {
            return false;
        }
        if s.notified {
            return true;
        }
        later = s.received_at;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> OpsConfig {
        OpsConfig {
            channel: Some("C0OPS0001".into()),
            ..OpsConfig::default()
        }
    }

    fn stop(code: &str) -> EcsEvent {
        EcsEvent::TaskStopped {
            cluster: "prod".into(),
            group: "service:web".into(),
            task_definition: "web:7".into(),
            stop_code: code.into(),
            task: ecs_explain::StoppedTask {
                stopped_reason: Some("CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 111111111111.dkr.ecr.eu-west-1.amazonaws.com/web:7: dial tcp 52.94.0.1:443: i/o timeout".into()),
                stop_code: Some(code.into()),
                ..Default::default()
            },
        }
    }

    const MIN: i64 = 60_000;

    fn seen(at: i64, notified: bool) -> Seen {
        Seen {
            received_at: at,
            notified,
        }
    }

    #[test]
    fn a_loop_is_announced_once_at_the_threshold_and_again_only_after_a_quiet_window() {
        let c = cfg();
        let now = 100 * MIN;
        // Below the threshold: silence.
        assert!(
            decide(&stop("TaskFailedToStart"), &[], now, &c)
                .notifications
                .is_empty()
        );
        let two = [seen(now - MIN, false)];
        assert!(
            decide(&stop("TaskFailedToStart"), &two, now, &c)
                .notifications
                .is_empty()
        );
        // The third within 10 minutes: one alert, explained.
        let three = [seen(now - MIN, false), seen(now - 2 * MIN, false)];
        let d = decide(&stop("TaskFailedToStart"), &three, now, &c);
        assert_eq!(d.notifications.len(), 1);
        let Notice::RestartLoop {
            stops,
            explanation,
            service,
            ..
        } = &d.notifications[0].notice
        else {
            panic!("{:?}", d.notifications[0].notice)
        };
        assert_eq!((*stops, service.service.as_str()), (3, "web"));
        assert!(
            explanation.is_some(),
            "CannotPullContainerError is explained"
        );
        // Stops four and five of the same loop: nothing more.
        let later = [
            seen(now, true),
            seen(now - MIN, false),
            seen(now - 2 * MIN, false),
        ];
        assert!(
            decide(&stop("TaskFailedToStart"), &later, now + MIN, &c)
                .notifications
                .is_empty()
        );
        // Quiet for a whole window, then it starts again: a new loop.
        let after_quiet = [seen(now, true), seen(now - MIN, false)];
        let resumed = now + 11 * MIN;
        assert!(
            decide(&stop("TaskFailedToStart"), &after_quiet, resumed, &c)
                .notifications
                .is_empty()
        );
        let again = [
            seen(resumed, false),
            seen(resumed - MIN, false),
            seen(now, true),
        ];
        assert_eq!(
            decide(&stop("TaskFailedToStart"), &again, resumed + MIN, &c)
                .notifications
                .len(),
            1
        );
    }

    #[test]
    fn stops_outside_the_window_and_other_stop_codes_do_not_count() {
        let c = OpsConfig {
            loop_window: Duration::from_secs(120),
            ..cfg()
        };
        let now = 100 * MIN;
        let old = [seen(now - MIN, false), seen(now - 3 * MIN, false)];
        assert!(
            decide(&stop("TaskFailedToStart"), &old, now, &c)
                .notifications
                .is_empty()
        );
        assert_eq!(
            decide(&stop("UserInitiated"), &[], now, &c).skipped,
            vec!["task stop UserInitiated is not a failure".to_string()]
        );
        assert!(
            !subject(&stop("UserInitiated")).1,
            "not counted, no history"
        );
    }

    #[test]
    fn without_a_channel_nothing_is_posted_but_the_reason_is_logged() {
        let c = OpsConfig {
            channel: None,
            loop_threshold: 1,
            ..OpsConfig::default()
        };
        assert_eq!(
            decide(&stop("TaskFailedToStart"), &[], 0, &c).skipped,
            vec!["no [ops] channel configured".to_string()]
        );
    }
}
