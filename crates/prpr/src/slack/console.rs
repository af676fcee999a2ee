//! The console publisher: prints each message instead of sending it.
//!
//! It is what `prpr serve` uses when no Slack token is set (try prpr locally,
//! or replay a payload and read what would be sent). Lines look like the Ruby
//! prpr's console adapter: `[channel] text`, continuation lines indented.

use std::io::Write;

use super::Posted;
use super::message::Message;

#[derive(Debug, Clone, Default)]
pub struct Console;

impl Console {
    pub fn print(&self, channel: &str, message: &Message, reply: bool) -> Posted {
        let text = message.text.replace('\n', "\n    ");
        let mut out = std::io::stdout().lock();
        let arrow = if reply { " ↳" } else { "" };
        // stdout closed: nothing useful left to do with the message.
        let _ = writeln!(out, "[{channel}]{arrow} {text}");
        let _ = out.flush();
        Posted { ts: None }
    }
}
