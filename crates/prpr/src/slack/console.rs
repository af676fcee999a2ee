//! The console publisher: prints each message instead of sending it.
//!
//! It is what `prpr serve` uses when no Slack token is set (try prpr locally,
//! or replay a payload and read what would be sent). Lines look like the Ruby
//! prpr's console adapter: `[channel] text`, continuation lines indented.

use std::io::Write;

use super::Posted;
use super::message::Message;

/// Each printed message gets a `ts` of its own, as in Slack, so thread
/// replies know their root and show as `↳` lines.
#[derive(Debug, Clone, Default)]
pub struct Console {
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Console {
    pub fn print(&self, channel: &str, message: &Message, reply: bool) -> Posted {
        let text = message.text.replace('\n', "\n    ");
        let mut out = std::io::stdout().lock();
        let arrow = if reply { " ↳" } else { "" };
        // stdout closed: nothing useful left to do with the message.
        let _ = writeln!(out, "[{channel}]{arrow} {text}");
        let _ = out.flush();
        let n = self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Posted {
            ts: Some(format!("0.{n:06}")),
        }
    }

    /// A thread root edited in place (`chat.update`), marked as such.
    pub fn print_update(&self, channel: &str, ts: &str, message: &Message) {
        let text = message.text.replace('\n', "\n    ");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{channel}] (card {ts} updated) {text}");
        let _ = out.flush();
    }
}
