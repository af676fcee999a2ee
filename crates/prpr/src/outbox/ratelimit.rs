//! Per-channel pacing: Slack allows about one message per second per channel,
//! with short bursts. A token bucket per channel keeps prpr under that, and a
//! `429`'s `Retry-After` blocks the channel until the wait is over.
//!
//! Hand-written rather than `governor`: the sender must be able to *push back*
//! a key by an externally given time (Retry-After), which governor's keyed
//! limiters do not offer, and it needs the exact instant a channel frees up to
//! sleep until then.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
pub struct ChannelLimiter {
    per_sec: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

impl ChannelLimiter {
    pub fn new(per_sec: f64, burst: u32) -> ChannelLimiter {
        ChannelLimiter {
            per_sec,
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes a slot for `channel` now, or says when one will be free.
    pub fn try_acquire(&mut self, channel: &str, now: Instant) -> Result<(), Instant> {
        self.forget_idle(now);
        let (per_sec, burst) = (self.per_sec, self.burst);
        let b = self.buckets.entry(channel.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
            blocked_until: None,
        });
        if let Some(until) = b.blocked_until {
            if now < until {
                return Err(until);
            }
            b.blocked_until = None;
        }
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_sec).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
        }
    }

    /// Slack said wait: nothing goes to `channel` before `until`; then one
    /// message may go, and the next one a full interval later (no burst
    /// right after a 429).
    pub fn block(&mut self, channel: &str, until: Instant) {
        let b = self.buckets.entry(channel.to_string()).or_insert(Bucket {
            tokens: 1.0,
            last: until,
            blocked_until: None,
        });
        b.tokens = 1.0;
        b.last = until;
        b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
    }

    /// Keeps the map small: a full, unblocked bucket is the same as none.
    fn forget_idle(&mut self, now: Instant) {
        if self.buckets.len() < 1024 {
            return;
        }
        let (per_sec, burst) = (self.per_sec, self.burst);
        self.buckets.retain(|_, b| {
            let refilled = b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * per_sec;
            b.blocked_until.is_some_and(|u| u > now) || refilled < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate_per_channel() {
        let t0 = Instant::now();
        let mut l = ChannelLimiter::new(1.0, 3);
        for _ in 0..3 {
            assert!(l.try_acquire("C1", t0).is_ok());
        }
        let next = l.try_acquire("C1", t0).unwrap_err();
        assert_eq!(next.duration_since(t0).as_millis(), 1000);
        // Another channel is not affected.
        assert!(l.try_acquire("C2", t0).is_ok());
        assert!(
            l.try_acquire("C1", t0 + Duration::from_millis(1000))
                .is_ok()
        );
        assert!(
            l.try_acquire("C1", t0 + Duration::from_millis(1500))
                .is_err()
        );
    }

    #[test]
    fn retry_after_blocks_the_channel() {
        let t0 = Instant::now();
        let mut l = ChannelLimiter::new(1.0, 3);
        l.block("C1", t0 + Duration::from_secs(5));
        assert_eq!(
            l.try_acquire("C1", t0 + Duration::from_secs(4)),
            Err(t0 + Duration::from_secs(5))
        );
        assert!(
            l.try_acquire("C1", t0 + Duration::from_secs(5)).is_ok(),
            "one message as soon as the wait is over"
        );
        assert_eq!(
            l.try_acquire("C1", t0 + Duration::from_secs(5)),
            Err(t0 + Duration::from_secs(6)),
            "no burst after a 429"
        );
        assert!(l.try_acquire("C1", t0 + Duration::from_secs(6)).is_ok());
    }
}
