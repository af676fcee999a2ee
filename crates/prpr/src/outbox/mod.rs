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
