//! `fargate-doctor watch`: follows one ECS deployment until it truly
//! completes, and says in words when it does not.
//!
//! Exit codes: 0 only when the watched deployment's `rolloutState` is
//! COMPLETED; 1 when it failed, was rolled back or replaced, disappeared, or
//! its tasks are in a restart loop; 2 on usage errors and API errors that
//! retrying does not fix; 3 on `--timeout`.
//!
//! [`tracker`] decides (no I/O), [`aws`] talks to ECS; this module polls,
//! backs off and prints.

pub mod aws;
pub mod tracker;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::ValueEnum;
use serde_json::{Value, json};
use tokio::time::Instant;

use tracker::{Change, Outcome, Tracker, Verdict, short_task_definition};

const AFTER_HELP: &str = "\
Exit codes:
  0  the deployment's rolloutState is COMPLETED (a service that is steady on
     another deployment, e.g. after a circuit-breaker rollback, is NOT success)
  1  the deployment FAILED, was rolled back or replaced by another PRIMARY
     deployment, disappeared, or --loop-threshold of its tasks stopped
     (a restart loop, even with the circuit breaker off)
  2  usage error, or an API error that retrying does not fix
     (access denied, no such cluster or service, bad credentials)
  3  --timeout reached; the last state is printed

Credentials and region come from the standard AWS chain (environment,
profile, SSO, container or instance role). --endpoint-url, AWS_ENDPOINT_URL
or AWS_ENDPOINT_URL_ECS point the client elsewhere.
The caller needs ecs:DescribeServices, ecs:ListTasks and ecs:DescribeTasks.

Examples:
  # right after `aws ecs update-service ... --force-new-deployment`:
  fargate-doctor watch --cluster prod --service web
  # in CI, after CodePipeline's ECS deploy action:
  fargate-doctor watch --cluster prod --service web --timeout 20m --format json";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct WatchArgs {
    /// Cluster name or ARN.
    #[arg(long)]
    cluster: String,
    /// Service name or ARN.
    #[arg(long)]
    service: String,
    /// The deployment to follow (ecs-svc/...); default: the service's
    /// PRIMARY deployment when the watch starts.
    #[arg(long)]
    deployment_id: Option<String>,
    /// Give up (exit 3) after this long: 90s, 30m, 1h.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    timeout: Duration,
    /// Exit 1 once this many tasks of the deployment have failed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    loop_threshold: u32,
    /// text: a line per change; json: one JSON object per change, then a
    /// summary object (for CI).
    #[arg(long, value_enum, default_value_t = WatchFormat::Text)]
    format: WatchFormat,
    /// AWS Region (default: the standard chain, e.g. AWS_REGION).
    #[arg(long)]
    region: Option<String>,
    /// Send ECS API calls here instead of the AWS endpoint.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// First poll interval; polls back off to 3x this while nothing
    /// changes. Hidden: only tests against the ECS double need less than 5s.
    #[arg(long, default_value = "5s", value_parser = parse_duration, hide = true)]
    poll_interval: Duration,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum WatchFormat {
    Text,
    Json,
}

/// `500ms`, `90s`, `30m`, `1h`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 90s, 30m, 1h)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s > 0 || d.is_zero() {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Where the lines go: text or JSON on stdout, a spinner on a terminal.
struct Out {
    format: WatchFormat,
    started: Instant,
    spinner: bool,
    spinner_shown: bool,
    frame: usize,
}

impl Out {
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn clear_spinner(&mut self) {
        if self.spinner_shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.spinner_shown = false;
        }
    }

    fn spin(&mut self, state: &str) {
        if !self.spinner {
            return;
        }
        const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];
        self.frame = (self.frame + 1) % FRAMES.len();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{} {} {state}",
            FRAMES[self.frame],
            human(self.elapsed())
        );
        let _ = err.flush();
        self.spinner_shown = true;
    }

    fn line(&mut self, text: &str, json: Value) {
        self.clear_spinner();
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            WatchFormat::Text => writeln!(out, "[{:>6}] {text}", human(self.elapsed())),
            WatchFormat::Json => {
                let mut json = json;
                json["elapsed_s"] = json!(self.elapsed().as_secs_f64());
                writeln!(out, "{json}")
            }
        };
        let _ = out.flush();
    }

    fn change(&mut self, tracker: &Tracker, c: &Change) {
        let id = tracker.deployment_id();
        match c {
            Change::Progress(counts) => self.line(
                &format!("{id} {counts}"),
                json!({"type": "progress", "deployment": id, "rollout_state": counts.rollout_state,
                       "running": counts.running, "desired": counts.desired,
                       "pending": counts.pending, "failed": counts.failed}),
            ),
            Change::Event(e) => self.line(
                &format!("event: {}", e.message),
                json!({"type": "event", "id": e.id, "message": e.message}),
            ),
            Change::TaskStopped {
                task,
                counted,
                diagnosis,
            } => {
                let reason = task
                    .explain
                    .stopped_reason
                    .as_deref()
                    .unwrap_or("no stoppedReason");
                let mut text = format!(
                    "task {} stopped{}: {reason}",
                    task.short_id(),
                    if *counted {
                        format!(" ({} of --loop-threshold)", tracker.failures())
                    } else {
                        String::new()
                    }
                );
                if let Some(d) = diagnosis {
                    text.push_str(&format!("\n         -> {}", d.trap));
                    if let Some(f) = d.fix.first() {
                        text.push_str(&format!("\n         fix: {f}"));
                    }
                }
                self.line(
                    &text,
                    json!({"type": "task_stopped", "task_arn": task.task_arn,
                           "stop_code": task.explain.stop_code, "stopped_reason": reason,
                           "counted": counted, "diagnosis": diagnosis}),
                );
            }
        }
    }
}

/// The final report and exit code.
struct Summary {
    result: &'static str,
    code: u8,
    message: String,
    verdict: Option<Verdict>,
}

pub fn run(a: WatchArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fargate-doctor: error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    rt.block_on(watch(a))
}

async fn watch(a: WatchArgs) -> u8 {
    let mut out = Out {
        format: a.format,
        started: Instant::now(),
        spinner: a.format == WatchFormat::Text && std::io::stderr().is_terminal(),
        spinner_shown: false,
        frame: 0,
    };
    let deadline = out.started + a.timeout;
    let settings = aws::Settings {
        region: a.region.clone(),
        endpoint_url: a.endpoint_url.clone(),
        retry_initial_backoff: a.poll_interval.min(Duration::from_secs(1)) / 2,
    };
    let ecs = match aws::Ecs::connect(settings, &a.cluster, &a.service).await {
        Ok(e) => e,
        Err(e) => return finish(&mut out, None, Summary::error(e)),
    };
    let threshold = a.loop_threshold as usize;
    let mut tracker: Option<Tracker> = None;
    let mut interval = a.poll_interval;
    let max_interval = a.poll_interval * 3;
    let mut last_transient: Option<String> = None;
    // Transient errors before ECS ever answered: a wrong endpoint or no
    // network, more likely than a blip that outlasts the SDK's retries.
    let mut failures_before_first_answer = 0u32;
    loop {
        let polled = poll(&ecs, &mut tracker, a.deployment_id.as_deref(), threshold).await;
        let changed = match polled {
            Ok((changes, verdict)) => {
                last_transient = None;
                if let Some(t) = &tracker {
                    for c in &changes {
                        out.change(t, c);
                    }
                }
                if let Some(v) = verdict {
                    return finish(&mut out, tracker.as_ref(), Summary::from_verdict(v));
                }
                !changes.is_empty()
            }
            Err(PollError::Fatal(msg)) => {
                return finish(&mut out, tracker.as_ref(), Summary::error(msg));
            }
            Err(PollError::Transient(msg)) if tracker.is_none() => {
                failures_before_first_answer += 1;
                if failures_before_first_answer >= 3 {
                    return finish(
                        &mut out,
                        None,
                        Summary::error(format!(
                            "cannot reach ECS{}: {msg}",
                            a.endpoint_url
                                .as_deref()
                                .map(|u| format!(" at {u}"))
                                .unwrap_or_default()
                        )),
                    );
                }
                false
            }
            Err(PollError::Transient(msg)) => {
                let new = last_transient.as_deref() != Some(msg.as_str());
                if new {
                    out.line(
                        &format!("{msg} (will retry)"),
                        json!({"type": "api_error", "message": msg, "retrying": true}),
                    );
                    last_transient = Some(msg);
                }
                new
            }
        };
        interval = next_interval(interval, a.poll_interval, max_interval, changed);
        let wake = (Instant::now() + interval).min(deadline);
        // Sleep in 1 s steps on a terminal, to keep the elapsed time moving.
        let state = tracker.as_ref().map(Tracker::now).unwrap_or_default();
        while Instant::now() < wake {
            let step = if out.spinner {
                Duration::from_secs(1)
            } else {
                interval
            };
            tokio::time::sleep_until(wake.min(Instant::now() + step)).await;
            out.spin(&state);
        }
        if wake >= deadline {
            let state = match &tracker {
                Some(t) => t.state(),
                None => format!("service {} was never described", a.service),
            };
            return finish(
                &mut out,
                tracker.as_ref(),
                Summary {
                    result: "timeout",
                    code: 3,
                    message: format!("timed out after {}: {state}", human(a.timeout)),
                    verdict: None,
                },
            );
        }
    }
}

/// Backs off (×1.5) while nothing happens, up to `max`; looks again at the
/// base interval after a change, when the next one is likely to follow.
fn next_interval(current: Duration, base: Duration, max: Duration, changed: bool) -> Duration {
    if changed {
        base
    } else {
        (current * 3 / 2).min(max)
    }
}

enum PollError {
    Fatal(String),
    Transient(String),
}

impl From<aws::ApiError> for PollError {
    fn from(e: aws::ApiError) -> Self {
        if e.transient {
            PollError::Transient(e.to_string())
        } else {
            let mut msg = e.to_string();
            if let Some(h) = e.hint() {
                msg.push_str(&format!("\n{h}"));
            }
            PollError::Fatal(msg)
        }
    }
}

/// One poll: at most DescribeServices, ListTasks and one DescribeTasks.
async fn poll(
    ecs: &aws::Ecs,
    tracker: &mut Option<Tracker>,
    deployment_id: Option<&str>,
    threshold: usize,
) -> Result<(Vec<Change>, Option<Verdict>), PollError> {
    let snap = ecs.describe_service().await?;
    let t = match tracker {
        Some(t) => t,
        None => tracker.insert(
            Tracker::start(&snap, deployment_id, threshold)
                .map_err(|e| PollError::Fatal(e.to_string()))?,
        ),
    };
    let arns = ecs.stopped_task_arns().await?;
    let unseen = t.unseen(&arns);
    let stopped = if unseen.is_empty() {
        Vec::new()
    } else {
        ecs.describe_tasks(&unseen).await?
    };
    Ok(t.observe(&snap, stopped))
}

impl Summary {
    fn error(message: String) -> Summary {
        Summary {
            result: "error",
            code: 2,
            message,
            verdict: None,
        }
    }

    fn from_verdict(v: Verdict) -> Summary {
        Summary {
            result: v.outcome.as_str(),
            code: if v.outcome == Outcome::Completed {
                0
            } else {
                1
            },
            message: v.message.clone(),
            verdict: Some(v),
        }
    }
}

fn finish(out: &mut Out, tracker: Option<&Tracker>, s: Summary) -> u8 {
    out.clear_spinner();
    let diagnosis = s.verdict.as_ref().and_then(|v| v.diagnosis.as_ref());
    match out.format {
        WatchFormat::Text => {
            let mut text = s.message.clone();
            if let Some(d) = diagnosis.filter(|_| s.code != 0) {
                text.push_str("\nwhy the tasks stopped:\n");
                text.push_str(&ecs_explain::render_text(d));
            }
            if s.code == 2 {
                eprintln!("fargate-doctor: error: {text}");
            } else {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(
                    o,
                    "{}{}",
                    if s.code == 0 { "OK: " } else { "" },
                    text.trim_end()
                );
                let _ = o.flush();
            }
        }
        WatchFormat::Json => {
            let running = s
                .verdict
                .as_ref()
                .and_then(|v| v.running_task_definition.clone());
            let summary = json!({
                "type": "summary",
                "result": s.result,
                "exit_code": s.code,
                "message": s.message,
                "deployment": tracker.map(Tracker::deployment_id),
                "task_definition": tracker.map(|t| short_task_definition(t.task_definition()).to_string()),
                "running_task_definition": running.as_deref().map(short_task_definition),
                "failed_tasks": tracker.map(Tracker::failures),
                "diagnosis": diagnosis,
                "elapsed_s": out.elapsed().as_secs_f64(),
            });
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{summary}");
            let _ = o.flush();
            if s.code == 2 {
                eprintln!("fargate-doctor: error: {}", s.message);
            }
        }
    }
    s.code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(
            parse_duration("5 days")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert_eq!(human(Duration::from_secs(95)), "1m35s");
    }

    #[test]
    fn polls_back_off_from_5s_to_15s_and_reset_on_change() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(15));
        let mut i = base;
        let mut seen = Vec::new();
        for _ in 0..5 {
            i = next_interval(i, base, max, false);
            seen.push(i.as_millis());
        }
        assert_eq!(seen, [7500, 11250, 15000, 15000, 15000]);
        assert_eq!(next_interval(i, base, max, true), base);
    }
}
