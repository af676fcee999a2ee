//! From "tell this GitHub person/team" to concrete Slack conversations.
//!
//! A person mapped to a Slack ID gets a DM, a `<@U…>` mention in the default
//! channel, or both (`notify.delivery`). Someone without an ID cannot be DMed
//! and must never get a broken mention: they are named as plain `@login` in the
//! default channel, when there is one. Teams get their user group mentioned in
//! their channel, else their channel, else the default channel naming them.

use crate::config::{DeliveryMode, NotifyConfig, SlackUser};
use crate::slack::message::{Message, escape};

use super::{Kind, Notification};

/// Whether an unmapped person may be named in the default channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmapped {
    /// Name them as `@login` in the default channel (review requests and results).
    NameInChannel,
    /// Tell nobody (mentions: an unknown `@word` in a comment is not worth a post).
    Drop,
}

/// Notifications telling `login`. `compose(prefix)` builds the message; the
/// prefix addresses the person when the message goes to a channel
/// (`"<@U…> "`), and is empty in a DM.
pub fn person(
    login: &str,
    kind: Kind,
    cfg: &NotifyConfig,
    unmapped: Unmapped,
    compose: impl Fn(&str) -> Message,
) -> Vec<Notification> {
    let to = |channel: &str, prefix: &str| Notification {
        channel: channel.to_string(),
        kind,
        message: compose(prefix),
    };
    match cfg.members.get(login) {
        Some(SlackUser::Id(id)) => {
            let mut out = Vec::new();
            if matches!(cfg.delivery, DeliveryMode::Dm | DeliveryMode::Both) {
                out.push(to(id, ""));
            }
            if matches!(cfg.delivery, DeliveryMode::Channel | DeliveryMode::Both)
                && let Some(channel) = &cfg.channel
            {
                out.push(to(channel, &format!("<@{id}> ")));
            }
            out
        }
        Some(SlackUser::Handle(handle)) => match &cfg.channel {
            Some(channel) => vec![to(channel, &format!("@{} ", escape(handle)))],
            None => Vec::new(),
        },
        None => match (&cfg.channel, unmapped) {
            (Some(channel), Unmapped::NameInChannel) => {
                vec![to(channel, &format!("@{} ", escape(login)))]
            }
            _ => Vec::new(),
        },
    }
}

/// The notification telling team `org/slug`, if it can go anywhere.
/// `compose(prefix)` gets `"<!subteam^S…> "` when a user group is mapped.
pub fn team(
    org: &str,
    slug: &str,
    kind: Kind,
    cfg: &NotifyConfig,
    compose: impl Fn(&str) -> Message,
) -> Option<Notification> {
    let target = cfg.teams.get(org, slug);
    let channel = target
        .and_then(|t| t.channel.clone())
        .or_else(|| cfg.channel.clone())?;
    let prefix = match target.and_then(|t| t.usergroup.as_deref()) {
        Some(group) => format!("<!subteam^{group}> "),
        None => String::new(),
    };
    Some(Notification {
        channel,
        kind,
        message: compose(&prefix),
    })
}

/// `org/slug` as shown in messages.
pub fn team_label(org: &str, slug: &str) -> String {
    format!("*{}/{}*", escape(org), escape(slug))
}
