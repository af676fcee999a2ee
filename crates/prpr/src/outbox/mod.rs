//! Delivering the outbox to Slack: the sender task ([`sender`]), its per-channel
//! rate limiter ([`ratelimit`]) and retry schedule ([`backoff`]), and the
//! thread updater ([`threads`]) that keeps each PR's root card current.

pub mod backoff;
pub mod ratelimit;
pub mod sender;
pub mod threads;

pub use sender::{Sender, SenderOptions};
