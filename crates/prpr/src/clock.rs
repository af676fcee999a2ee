//! The one source of time for the server: wall-clock milliseconds for what is
//! stored (due times, leases, delivery times) and a monotonic instant for
//! what is waited on (rate limits, pass pacing).
//!
//! Why injected: the sender's retries, leases and rate limits are all about
//! time. With the clock passed in, tests run the real server in process under
//! `tokio::time::pause()` and move time with `advance()`, instead of waiting
//! real seconds and hoping a race goes their way.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The machine's clock (production).
    #[default]
    System,
    /// Wall time that follows tokio's clock from a fixed start: with
    /// `tokio::time::pause()`, `advance(d)` moves both by `d`.
    Tokio { epoch_ms: i64, origin: Instant },
    /// Time that moves only when a test says so ([`Clock::advance`]), while
    /// tokio's own timers run for real: for tests that need exact control of
    /// due times around real I/O (a database, HTTP), which a paused tokio
    /// clock cannot give (it jumps ahead while a query is merely running).
    Manual {
        now_ms: Arc<AtomicI64>,
        start_ms: i64,
        origin: Instant,
    },
}

impl Clock {
    pub fn system() -> Clock {
        Clock::System
    }

    /// A clock that reads `epoch_ms` now and then moves with tokio's time.
    pub fn starting_at(epoch_ms: i64) -> Clock {
        Clock::Tokio {
            epoch_ms,
            origin: Instant::now(),
        }
    }

    /// A [`Clock::Manual`] reading `epoch_ms` until advanced.
    pub fn manual(epoch_ms: i64) -> Clock {
        Clock::Manual {
            now_ms: Arc::new(AtomicI64::new(epoch_ms)),
            start_ms: epoch_ms,
            origin: Instant::now(),
        }
    }

    /// Moves a manual clock forward (other clocks ignore it).
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual { now_ms, .. } = self {
            now_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::Manual { now_ms, .. } => now_ms.load(Ordering::SeqCst),
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            Clock::Tokio { epoch_ms, origin } => {
                epoch_ms
                    + Instant::now()
                        .saturating_duration_since(*origin)
                        .as_millis() as i64
            }
        }
    }

    /// A monotonic instant on tokio's clock (paused in tests); a manual
    /// clock's instants move with it.
    pub fn instant(&self) -> Instant {
        match self {
            Clock::Manual {
                now_ms,
                start_ms,
                origin,
            } => {
                let moved = (now_ms.load(Ordering::SeqCst) - start_ms).max(0);
                *origin + Duration::from_millis(moved as u64)
            }
            _ => Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_only_with_tokio_time() {
        let clock = Clock::starting_at(1_000_000);
        assert_eq!(clock.now_ms(), 1_000_000);
        let before = clock.instant();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now_ms(), 1_090_000);
        assert_eq!(clock.instant() - before, Duration::from_secs(90));
    }

    #[test]
    fn the_system_clock_is_the_wall_clock() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        assert!((Clock::system().now_ms() - now).abs() < 5_000);
    }
}
