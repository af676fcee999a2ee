//! Where Slack is met: rendering notices into Slack's markup ([`render`], the
//! only place that writes it), the message shape ([`message`]), and the
//! publishers that deliver a message — the Web API ([`client`]) or, when no
//! token is configured, the console ([`console`]), so `prpr serve` works out
//! of the box.

pub mod client;
pub mod console;
pub mod message;
pub mod render;

use std::time::Duration;

use message::Message;

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Slack's message timestamp (its ID); none for the console.
    pub ts: Option<String>,
}

/// Why a message was not delivered, and what the sender should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Slack asked us to slow down; try again after the given wait.
    #[error("rate limited (retry after {}s)", .0.as_secs_f64())]
    RateLimited(Duration),
    /// Network trouble, a timeout, a 5xx: worth retrying with backoff.
    #[error("{0}")]
    Transient(String),
    /// Slack refused the message for good (`channel_not_found`, `invalid_auth`, …).
    #[error("{0}")]
    Permanent(String),
}

/// The configured way out.
#[derive(Debug, Clone)]
pub enum Publisher {
    Slack(client::SlackClient),
    Console(console::Console),
}

impl Publisher {
    pub async fn post(&self, channel: &str, message: &Message) -> Result<Posted, SendError> {
        match self {
            Publisher::Slack(c) => c.post_message(channel, message).await,
            Publisher::Console(c) => Ok(c.print(channel, message)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Publisher::Slack(_) => "slack",
            Publisher::Console(_) => "console",
        }
    }
}
