//! Assembling and running `prpr serve`: store, publisher, sender, HTTP server,
//! and the shutdown sequence.
//!
//! Shutdown (SIGTERM from ECS, or Ctrl-C): stop accepting connections, let
//! in-flight requests finish, then let Slack sends already started finish;
//! messages not yet started stay queued for the next start. All of it within
//! [`SHUTDOWN_BUDGET`], under Fargate's default 30 s before SIGKILL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::intake::{self, Intake, signature::Verifier};
use crate::outbox::{Sender, SenderOptions};
use crate::server;
use crate::slack::{Publisher, client::SlackClient, console::Console};
use crate::store::Store;

/// Everything must be done this long after the signal.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(25);

/// Options that come from the command line rather than the config.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub insecure_accept_unsigned: bool,
}

/// The sender's settings from the config.
pub fn sender_options(cfg: &Config) -> SenderOptions {
    SenderOptions {
        per_channel_per_sec: cfg.slack.per_channel_per_sec,
        burst: cfg.slack.burst,
        max_attempts: cfg.slack.max_attempts,
        retry_initial: Duration::from_millis(cfg.slack.retry_initial_ms),
        retry_max: Duration::from_millis(cfg.slack.retry_max_ms),
        update_interval: cfg.slack.update_interval,
        reactions: cfg.notify.reactions,
        ..SenderOptions::default()
    }
}

/// The HTTP server's limits from the config.
pub fn server_limits(cfg: &Config) -> server::Limits {
    let mut limits = server::Limits::default();
    if let Some(n) = cfg.server.max_connections {
        limits.max_connections = n;
    }
    limits
}

/// The Slack client, or the console when no token is configured.
pub fn publisher(cfg: &Config) -> anyhow::Result<Publisher> {
    Ok(match &cfg.slack.bot_token {
        Some(token) => Publisher::Slack(
            SlackClient::new(
                &cfg.slack.api_url,
                token.clone(),
                Duration::from_secs(cfg.slack.timeout_secs),
            )
            .context("building the HTTP client")?,
        ),
        None => Publisher::Console(Console::default()),
    })
}

/// Connects to the store, retrying for a while: on Fargate the database may
/// come up after the task.
pub async fn connect_store(url: &str) -> anyhow::Result<Store> {
    let mut wait = Duration::from_millis(250);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match Store::connect(url).await {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "store not reachable yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).context("cannot open the store (DATABASE_URL)"),
        }
    }
}

/// Turns the Slack names of a prpr-era `MEMBERS.md` (` * @alice: @alice_slack`)
/// into user IDs with `users.list`, so those members get real mentions and DMs.
/// Without the `users:read` scope, or if Slack is down, they stay plain-text
/// names and prpr says so.
pub async fn resolve_member_handles(cfg: &mut Config, client: &SlackClient) {
    if cfg.notify.members.handles() == 0 {
        return;
    }
    match tokio::time::timeout(Duration::from_secs(20), client.list_users()).await {
        Ok(Ok(users)) => {
            let mut directory = HashMap::new();
            for u in users.into_iter().filter(|u| !u.deleted) {
                if !u.profile.display_name.is_empty() {
                    directory
                        .entry(u.profile.display_name.to_lowercase())
                        .or_insert_with(|| u.id.clone());
                }
                directory.insert(u.name.to_lowercase(), u.id);
            }
            let unresolved = cfg.notify.members.resolve_handles(&directory);
            if unresolved.is_empty() {
                tracing::info!("resolved every Slack name in the member map to a user ID");
            } else {
                tracing::warn!(unresolved = %unresolved.join(", "), "Slack names not found in the workspace: shown as plain text, no DMs");
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot resolve Slack names to IDs (users.list needs the users:read scope); those members are shown as plain text")
        }
        Err(_) => {
            tracing::warn!("users.list timed out; Slack names in the member map stay plain text")
        }
    }
}

/// `prpr serve`: installs the signal handlers, binds `PORT` and runs the
/// server until SIGTERM or Ctrl-C.
pub async fn serve(cfg: Config, opts: ServeOptions) -> anyhow::Result<()> {
    // The handlers go in before the port opens: a SIGTERM that arrives as soon
    // as the task is up (ECS may stop it then) is a graceful shutdown, not
    // the signal's default action (killed, exit 143).
    let shutdown = shutdown_signal();
    let addr = SocketAddr::from(([0, 0, 0, 0], cfg.server.port));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    run(cfg, opts, listener, shutdown, Clock::system()).await
}

/// The whole server on a listener the caller bound, until `shutdown`
/// resolves, reading time from `clock`. The binary passes the signal future;
/// tests pass a channel and a paused clock, and hold the server in hand.
pub async fn run(
    mut cfg: Config,
    opts: ServeOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    clock: Clock,
) -> anyhow::Result<()> {
    // Blank is unset (as `config::load` makes it): a Config built in code must
    // not get an empty HMAC key either.
    let secret = cfg
        .github
        .webhook_secret
        .as_ref()
        .filter(|s| !s.expose().trim().is_empty());
    let verifier = match (secret, opts.insecure_accept_unsigned) {
        (Some(secret), _) => Some(Verifier::new(
            secret.clone(),
            cfg.github.allow_sha1_signatures,
        )),
        (None, true) => {
            tracing::warn!(
                "no webhook secret: accepting UNSIGNED deliveries (--insecure-accept-unsigned); anyone who can reach this port can send events"
            );
            None
        }
        (None, false) => anyhow::bail!(
            "no webhook secret configured: set GITHUB_WEBHOOK_SECRET (the secret of the GitHub webhook), or pass --insecure-accept-unsigned for local testing"
        ),
    };

    let store = Arc::new(connect_store(&cfg.database.url).await?);
    let publisher = Arc::new(publisher(&cfg)?);
    if let Publisher::Slack(client) = publisher.as_ref() {
        match tokio::time::timeout(Duration::from_secs(5), client.auth_test()).await {
            Ok(Ok(id)) => {
                tracing::info!(team = %id.team, bot_user = %id.user_id, "Slack token works")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Slack auth.test failed: messages will be retried or dead-lettered until the token works")
            }
            Err(_) => tracing::warn!("Slack auth.test timed out; continuing"),
        }
        resolve_member_handles(&mut cfg, client).await;
    }

    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        addr = %local,
        store = store.dialect().name(),
        publisher = publisher.name(),
        members = cfg.notify.members.len(),
        "prpr listening"
    );

    let wake = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let sender = Sender::new(
        store.clone(),
        publisher.clone(),
        sender_options(&cfg),
        wake.clone(),
        clock.clone(),
    );
    let sender_task = tokio::spawn(sender.run(stop_rx.clone()));
    let updater = crate::outbox::threads::ThreadUpdater::new(
        store.clone(),
        publisher.clone(),
        sender_options(&cfg),
        clock.clone(),
    );
    let updater_task = tokio::spawn(updater.run(stop_rx.clone()));
    // Catch-up: off (said once) without GitHub credentials or a webhook URL;
    // the bot serves either way.
    let catch_up_task =
        match crate::github::catchup::CatchUp::from_config(&cfg, store.clone(), clock.clone()) {
            Ok(job) => {
                tracing::info!(
                    interval_secs = cfg.github.catch_up_interval.as_secs(),
                    "catch-up on: redelivering failed GitHub deliveries prpr missed"
                );
                Some(tokio::spawn(job.run(stop_rx.clone())))
            }
            Err(why) => {
                tracing::info!(reason = %why, "catch-up off");
                None
            }
        };
    // Team expansion: off (said once) without GitHub credentials; team
    // requests then go to the team's channel only, as before.
    let expander = match crate::outbox::teams::TeamExpander::github(&cfg, &clock) {
        Ok(github) => {
            cfg.notify.expand_teams = cfg.notify.team_expand_max > 0;
            tracing::info!(
                max = cfg.notify.team_expand_max,
                debounce_ms = cfg.notify.team_debounce.as_millis() as u64,
                "team expansion on: a review request to a team without a user group is also DMed to its members"
            );
            Some(github)
        }
        Err(why) => {
            tracing::info!(reason = %why, "team expansion off");
            None
        }
    };
    let notify = Arc::new(cfg.notify.clone());
    let expander_task = expander.map(|github| {
        let expander = crate::outbox::teams::TeamExpander::new(
            store.clone(),
            github,
            notify.clone(),
            crate::outbox::teams::ExpanderOptions::from_config(&cfg),
            clock.clone(),
            wake.clone(),
        );
        tokio::spawn(expander.run(stop_rx.clone()))
    });
    // The reminders backfill: off (said once) without GitHub credentials,
    // repositories, or reminders to read what it fetches.
    let backfill_task = match crate::github::backfill::Backfill::from_config(
        &cfg,
        store.clone(),
        clock.clone(),
        false,
    ) {
        Ok(job) => {
            tracing::info!(
                resync_secs = cfg.reminders.resync.as_secs(),
                "reminders backfill on: the open-PR picture is read from GitHub's REST API"
            );
            Some(tokio::spawn(job.run(stop_rx.clone())))
        }
        Err(why) => {
            tracing::info!(reason = %why, "reminders backfill off");
            None
        }
    };
    let scheduler_task = crate::reminders::Scheduler::has_work(&cfg).then(|| {
        let scheduler = crate::reminders::Scheduler::new(
            store.clone(),
            Arc::new(cfg.clone()),
            clock.clone(),
            wake.clone(),
        );
        tokio::spawn(scheduler.run(stop_rx))
    });

    let intake = Arc::new(Intake {
        store: store.clone(),
        notify,
        ops: Arc::new(cfg.ops.clone()),
        verifier,
        wake,
        clock: clock.clone(),
        guards: intake::Guards::new(
            cfg.server.max_inflight_body,
            cfg.server.max_concurrent_requests,
        ),
        health: intake::Health::new(Duration::from_secs(cfg.store.unhealthy_after_secs))
            .with_min_free(cfg.store.min_free),
        commands: intake::commands::Commands::from_config(Arc::new(cfg.clone())).map(Arc::new),
    });
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = server_limits(&cfg);
    tracing::info!(
        max_connections = limits.max_connections,
        open_files_limit = server::open_files_limit(),
        "connection limits"
    );
    let server_task = tokio::spawn(server::serve(
        listener,
        intake::router(intake),
        limits,
        async move {
            let _ = signal_rx.await;
        },
    ));

    shutdown.await;
    let budget_end = clock.instant() + SHUTDOWN_BUDGET;
    tracing::info!("shutdown requested: finishing in-flight requests and Slack sends");
    let _ = signal_tx.send(());
    match tokio::time::timeout_at(budget_end - Duration::from_secs(10), server_task).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("in-flight requests did not finish in time"),
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout_at(budget_end, updater_task).await;
    if let Some(task) = catch_up_task {
        // A pass stops between requests; a redelivery asked for is done.
        let _ = tokio::time::timeout_at(budget_end, task).await;
    }
    if let Some(task) = backfill_task {
        // A pass stops between requests; what it wrote is committed.
        let _ = tokio::time::timeout_at(budget_end, task).await;
    }
    if let Some(task) = scheduler_task {
        let _ = tokio::time::timeout_at(budget_end, task).await;
    }
    if let Some(task) = expander_task {
        // An expansion in progress is queued whole, or redone after restart.
        let _ = tokio::time::timeout_at(budget_end, task).await;
    }
    match tokio::time::timeout_at(budget_end, sender_task).await {
        Ok(_) => tracing::info!("shutdown complete"),
        Err(_) => tracing::warn!(
            "Slack sends still in flight at the deadline; they will be retried after restart"
        ),
    }
    Ok(())
}

/// Registers the SIGTERM and Ctrl-C handlers now, and returns a future that
/// resolves when one of them arrives.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (term, int) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
