//! Delivering the outbox to Slack: the sender task ([`sender`]), its per-channel
//! rate limiter ([`ratelimit`]) and retry schedule ([`backoff`]), and the
//! thread updater ([`threads`]) that keeps each PR's root card current.
//! Quiet hours hold DMs at send time ([`quiet`]). The team expander
//! ([`teams`]) passes team review requests on to members after the debounce.

pub mod backoff;
mod quiet;
pub mod ratelimit;
pub mod sender;
pub mod teams;
pub mod threads;

pub use sender::{Sender, SenderOptions};

use std::time::Duration;

use tokio::sync::watch;

/// A background task that works through due rows one pass at a time, each
/// pass saying how long to wait before the next.
pub(crate) trait Passes: Send {
    fn next_pass(&mut self) -> impl Future<Output = Duration> + Send;
}

/// Runs `task`'s passes until `shutdown` turns true; a pass in progress
/// finishes first. The loop of the thread updater and the team expander.
pub(crate) async fn passes(mut task: impl Passes, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let wait = task.next_pass().await;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// How long to wait for the next row due at `at` (unix ms): until then, at
/// least 10 ms and at most `poll` (another task may add rows); `poll` when
/// nothing is known to be due.
pub(crate) fn wait_until(at: Option<i64>, now_ms: i64, poll: Duration) -> Duration {
    match at {
        Some(at) => Duration::from_millis((at - now_ms).max(0) as u64)
            .clamp(Duration::from_millis(10), poll),
        None => poll,
    }
}
