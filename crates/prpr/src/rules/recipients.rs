//! From "tell this GitHub person/team" to concrete Slack conversations.
//!
//! A person mapped to a Slack ID gets a DM, a `<@U…>` mention in the default
//! channel, or both (`notify.delivery`). Someone without an ID cannot be DMed
//! and must never get a broken mention: they are named as plain `@login` in the
//! default channel, when there is one. Teams get their user group mentioned in
//! their channel, else their channel, else the default channel naming them.

use crate::config::{DeliveryMode, NotifyConfig, SlackUser};
use crate::notice::{Address, Notice, Notification};

/// Whether an unmapped person may be named in the default channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmapped {
    /// Name them as `@login` in the default channel (review requests and results).
    NameInChannel,
    /// Tell nobody (mentions: an unknown `@word` in a comment is not worth a post).
    Drop,
}

/// `notice` to wherever `login` is told: a DM and/or the default channel
/// with a real mention, by `notify.delivery`; a plain-text name in the
/// default channel when there is no Slack ID.
pub fn person(
    login: &str,
    cfg: &NotifyConfig,
    unmapped: Unmapped,
    notice: Notice,
) -> Vec<Notification> {
    let to = |channel: &str, address: Address| Notification::new(channel, address, notice.clone());
    match cfg.members.get(login) {
        Some(SlackUser::Id(id)) => {
            let mut out = Vec::new();
            if matches!(cfg.delivery, DeliveryMode::Dm | DeliveryMode::Both) {
                out.push(to(id, Address::Nobody));
            }
            if matches!(cfg.delivery, DeliveryMode::Channel | DeliveryMode::Both)
                && let Some(channel) = &cfg.channel
            {
                out.push(to(channel, Address::User { id: id.clone() }));
            }
            out
        }
        Some(SlackUser::Handle(handle)) => match &cfg.channel {
            Some(channel) => vec![to(
                channel,
                Address::Name {
                    name: handle.clone(),
                },
            )],
            None => Vec::new(),
        },
        None => match (&cfg.channel, unmapped) {
            (Some(channel), Unmapped::NameInChannel) => vec![to(
                channel,
                Address::Name {
                    name: login.to_string(),
                },
            )],
            _ => Vec::new(),
        },
    }
}

/// `notice` to team `org/slug`, if it can go anywhere: its channel, else the
/// default channel; its user group mentioned when one is mapped.
pub fn team(org: &str, slug: &str, cfg: &NotifyConfig, notice: Notice) -> Option<Notification> {
    let target = cfg.teams.get(org, slug);
    let channel = target
        .and_then(|t| t.channel.clone())
        .or_else(|| cfg.channel.clone())?;
    let address = match target.and_then(|t| t.usergroup.as_deref()) {
        Some(group) => Address::Group {
            id: group.to_string(),
        },
        None => Address::Nobody,
    };
    Some(Notification::new(channel, address, notice))
}
