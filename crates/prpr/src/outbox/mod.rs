//! Delivering the outbox to Slack: the sender task ([`sender`]), its per-channel
//! rate limiter ([`ratelimit`]) and retry schedule ([`backoff`]).

pub mod backoff;
pub mod ratelimit;
pub mod sender;

pub use sender::{Sender, SenderOptions};
