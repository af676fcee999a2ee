//! When to try again after a failed send: exponential backoff with jitter.
//!
//! Jitter spreads retries from many messages (all failed during the same Slack
//! outage) so they do not return as one burst.

use std::time::Duration;

/// Delay before attempt `attempt + 1`, after `attempt` failures (1-based):
/// `initial × 2^(attempt−1)`, capped at `max`, then a random point in its
/// upper half.
pub fn delay(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let full = initial.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    half + full.mul_f64(fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps_with_jitter_in_the_upper_half() {
        let i = Duration::from_millis(100);
        let m = Duration::from_secs(10);
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (8, 10_000), (40, 10_000)] {
            for _ in 0..50 {
                let d = delay(attempt, i, m).as_millis() as u64;
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d}ms not in [{}, {full}]",
                    full / 2
                );
            }
        }
    }
}
