//! `prpr route explain`: what prpr would do with a payload, and why,
//! without storing or sending anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use prpr::config::env_help;
use prpr::github::Event;
use prpr::notice::{Kind, Place, PrState};
use prpr::rules::route::{self, RouteOutcome};
use prpr::rules::{self, card, routing};
use prpr::slack::render;

use super::{ConfigArg, load_config};

/// Explain routes and filters.
#[derive(Args)]
pub(crate) struct RouteCmd {
    #[command(subcommand)]
    command: RouteCommand,
}

#[derive(Subcommand)]
enum RouteCommand {
    /// For one payload: which filters and routes matched, and which notices
    /// would be sent where. Nothing is stored or sent.
    ///
    /// The PR is judged as if prpr knew nothing about it yet (no earlier
    /// requests, no thread). Exit 2 if the payload cannot be read or parsed.
    #[command(after_help = env_help())]
    Explain {
        #[command(flatten)]
        config: ConfigArg,
        /// The X-GitHub-Event name (default: guessed from the payload's shape).
        #[arg(long)]
        event: Option<String>,
        /// The JSON payload file, or - for stdin.
        file: PathBuf,
    },
}

impl RouteCmd {
    pub(crate) fn run(self) -> ExitCode {
        match self.command {
            RouteCommand::Explain {
                config,
                event,
                file,
            } => explain(&config, event, &file),
        }
    }
}

/// The event a payload is, from the objects it carries.
fn guess_event(v: &serde_json::Value) -> Option<&'static str> {
    let has = |k: &str| v.get(k).is_some();
    Some(if has("review") && has("pull_request") {
        "pull_request_review"
    } else if has("comment") && has("issue") {
        "issue_comment"
    } else if has("comment") && has("pull_request") {
        "pull_request_review_comment"
    } else if has("pull_request") {
        "pull_request"
    } else {
        return None;
    })
}

fn explain(arg: &ConfigArg, event: Option<String>, file: &std::path::Path) -> ExitCode {
    let Some(cfg) = load_config(arg, true) else {
        return ExitCode::FAILURE;
    };
    let body = match super::replay::read_payload(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("prpr: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let name = match event {
        Some(e) => e,
        None => match serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .as_ref()
            .and_then(guess_event)
        {
            Some(e) => e.to_string(),
            None => {
                eprintln!(
                    "prpr: {}: cannot tell which event this is; pass --event (e.g. --event pull_request)",
                    file.display()
                );
                return ExitCode::from(2);
            }
        },
    };
    let parsed = match Event::parse(&name, &body) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("prpr: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let state = PrState::default();
    println!("event: {name}");
    if let Some(card) = card::next(&parsed, None) {
        let teams = card.teams();
        let facts = routing::facts(&card, &teams);
        println!(
            "pull request: {}#{} {:?} by {} · base {} · labels [{}] · {}{}",
            card.pr.repo,
            card.pr.number,
            card.pr.title,
            card.pr.author,
            card.base.as_deref().unwrap_or("(unknown)"),
            card.labels.join(", "),
            if facts.draft { "draft" } else { "not a draft" },
            if teams.is_empty() {
                String::new()
            } else {
                format!(" · teams {}", teams.join(", "))
            }
        );
        match route::filter(&cfg.notify.filters, &facts) {
            Ok(()) => println!("filters: pass"),
            Err(why) => println!("filters: EXCLUDED — {why}"),
        }
        if cfg.notify.routes.is_empty() {
            println!("routes: none configured (notices go to notify.channel and DMs)");
        } else {
            for kind in Kind::PR_KINDS {
                let routed = route::route(&cfg.notify, kind, &facts);
                println!("routes for {}:", kind.as_str());
                for t in &routed.trace {
                    let what = match &t.outcome {
                        RouteOutcome::Matched => "matched".to_string(),
                        RouteOutcome::NotMatched(why) => format!("no: {why}"),
                        RouteOutcome::Filtered(why) => format!("filtered: {why}"),
                        RouteOutcome::SkippedAfterStop => {
                            "skipped (an earlier route has stop = true)".to_string()
                        }
                    };
                    println!("  #{} → {}: {what}", t.index + 1, t.channel);
                }
                if routed.used_default() {
                    println!(
                        "  (no route: notify.channel {})",
                        routed.channels.join(", ")
                    );
                }
            }
        }
    }
    let d = rules::decide(&parsed, &state, &cfg.notify);
    if d.notifications.is_empty() {
        println!("would send: nothing");
    } else {
        println!("would send:");
        for n in &d.notifications {
            let place = match n.place {
                Place::Message => "message",
                Place::Reply { broadcast: false } => "thread reply",
                Place::Reply { broadcast: true } => "thread reply, also to the channel",
                Place::Root => "thread root (the card)",
            };
            let text = match &n.notice {
                prpr::notice::Notice::Opened { card } => render::card(card).text,
                notice => render::render(&n.address, notice).text,
            };
            println!(
                "  {} [{}] {}: {}",
                n.channel,
                n.kind().as_str(),
                place,
                text.lines().next().unwrap_or("")
            );
        }
    }
    for s in &d.skipped {
        println!("note: {s}");
    }
    ExitCode::SUCCESS
}
