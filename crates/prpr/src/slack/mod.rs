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
    /// The message addressed (a root to update or reply under) is gone:
    /// someone deleted it in Slack (`message_not_found`, `thread_not_found`).
    #[error("{0}")]
    Gone(String),
}

/// Where a message goes inside a channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InThread<'a> {
    /// The root's `ts`: a reply in its thread.
    pub thread_ts: Option<&'a str>,
    /// Also show the reply in the channel.
    pub broadcast: bool,
}

/// The configured way out.
#[derive(Debug, Clone)]
pub enum Publisher {
    Slack(client::SlackClient),
    Console(console::Console),
}

impl Publisher {
    pub async fn post(&self, channel: &str, message: &Message) -> Result<Posted, SendError> {
        self.post_in(channel, message, InThread::default()).await
    }

    /// Posts `message`, as a reply when `thread` names a root.
    pub async fn post_in(
        &self,
        channel: &str,
        message: &Message,
        thread: InThread<'_>,
    ) -> Result<Posted, SendError> {
        match self {
            Publisher::Slack(c) => c.post_message(channel, message, thread).await,
            Publisher::Console(c) => Ok(c.print(channel, message, thread.thread_ts.is_some())),
        }
    }

    /// Replaces the message `ts` in `channel` (`chat.update`).
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        message: &Message,
    ) -> Result<(), SendError> {
        match self {
            Publisher::Slack(c) => c.update_message(channel, ts, message).await,
            Publisher::Console(c) => {
                c.print_update(channel, ts, message);
                Ok(())
            }
        }
    }

    /// Adds (`add`) or removes an emoji reaction on a message.
    pub async fn react(
        &self,
        channel: &str,
        ts: &str,
        name: &str,
        add: bool,
    ) -> Result<(), SendError> {
        match self {
            Publisher::Slack(c) => c.react(channel, ts, name, add).await,
            Publisher::Console(_) => Ok(()),
        }
    }

    /// Whether [`Publisher::permalink`] can give links at all.
    pub fn can_link(&self) -> bool {
        match self {
            Publisher::Slack(c) => c.workspace_known(),
            Publisher::Console(_) => false,
        }
    }

    /// A link to the message `ts` in `channel`, when the workspace's address
    /// is known (from `auth.test`).
    pub fn permalink(&self, channel: &str, ts: &str) -> Option<String> {
        match self {
            Publisher::Slack(c) => c.permalink(channel, ts),
            Publisher::Console(_) => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Publisher::Slack(_) => "slack",
            Publisher::Console(_) => "console",
        }
    }
}
