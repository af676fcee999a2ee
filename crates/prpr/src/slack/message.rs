//! What a notification says, in Slack's mrkdwn.
//!
//! Every piece of user text (titles, logins, comment bodies) goes through
//! [`escape`] before it is placed in a message: Slack treats `<…>` as links and
//! mentions, so an unescaped PR title like `Fix <!channel>` would ping everyone.
//! Messages carry Block Kit blocks and the same text as the plain `text` fallback
//! (used for push notifications and by clients that cannot render blocks).

use serde::{Deserialize, Serialize};

/// A message ready for `chat.postMessage`: mrkdwn `text` and Block Kit `blocks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    pub blocks: serde_json::Value,
}

impl Message {
    /// One section block holding `text`, which is also the fallback.
    pub fn from_mrkdwn(text: String) -> Message {
        let blocks = serde_json::json!([
            { "type": "section", "text": { "type": "mrkdwn", "text": text } }
        ]);
        Message { text, blocks }
    }
}

/// Escapes the three characters Slack gives meaning to in mrkdwn.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `<url|label>`: a link with an escaped label. GitHub URLs never contain `<`,
/// `>` or `|`, but a hostile one must not break out of the link either.
pub fn link(url: &str, label: &str) -> String {
    let url: String = url
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | '|'))
        .collect();
    format!("<{url}|{}>", escape(label))
}

/// The first `lines` non-empty lines of `body` as a mrkdwn quote, each line
/// escaped and the whole cut at `max_chars` characters (with an ellipsis).
pub fn quote_excerpt(body: &str, lines: usize, max_chars: usize) -> Option<String> {
    let mut picked: Vec<&str> = body
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(lines + 1)
        .collect();
    let mut truncated = picked.len() > lines;
    picked.truncate(lines);
    if picked.is_empty() {
        return None;
    }
    let mut joined = picked.join("\n");
    if joined.chars().count() > max_chars {
        joined = joined.chars().take(max_chars).collect();
        truncated = true;
    }
    if truncated {
        joined.push('…');
    }
    Some(
        joined
            .lines()
            .map(|l| format!("> {}", escape(l)))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_three_control_characters_only() {
        assert_eq!(
            escape("a & b <!channel> *x*"),
            "a &amp; b &lt;!channel&gt; *x*"
        );
        assert_eq!(escape("日本 @here"), "日本 @here");
    }

    #[test]
    fn link_escapes_label_and_defuses_url() {
        assert_eq!(
            link("https://x/1", "Fix <b> & c"),
            "<https://x/1|Fix &lt;b&gt; &amp; c>"
        );
        assert_eq!(link("https://x/<|1>", "t"), "<https://x/1|t>");
    }

    #[test]
    fn excerpt_quotes_first_lines() {
        assert_eq!(
            quote_excerpt("one\n\ntwo <b>\nthree\nfour", 3, 300).as_deref(),
            Some("> one\n> two &lt;b&gt;\n> three…")
        );
        assert_eq!(quote_excerpt("  \n", 3, 300), None);
        assert_eq!(quote_excerpt("abcdef", 3, 3).as_deref(), Some("> abc…"));
    }
}
