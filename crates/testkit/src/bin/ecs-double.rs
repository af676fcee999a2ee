//! The ECS double as a separate process, to try `fargate-doctor watch` by
//! hand and to measure its CPU time.
//!
//! Prints `listening http://127.0.0.1:PORT` on stdout once ready, plays the
//! named scenario, and exits on SIGTERM or SIGINT.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use testkit::ecs::{EcsDouble, Scenario};

#[derive(Parser, Debug)]
#[command(about = "Amazon ECS API double (DescribeServices, ListTasks, DescribeTasks)")]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// happy, throttled, rollback, pull-loop, first-deploy, never or denied.
    /// The cluster is `prod`, the service `web`.
    #[arg(long, default_value = "happy")]
    scenario: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let Some(scenario) = Scenario::named(&args.scenario) else {
        eprintln!(
            "ecs-double: no scenario {:?}; known: {}",
            args.scenario,
            Scenario::NAMES.join(", ")
        );
        return ExitCode::from(2);
    };
    let double = match EcsDouble::start_on(scenario, args.port).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ecs-double: cannot listen on 127.0.0.1:{}: {e}", args.port);
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "listening {}", double.endpoint_url())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
