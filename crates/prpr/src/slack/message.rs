//! A message as `chat.postMessage` takes it. [`super::render`] builds them
//! from notices; this is only the shape.

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
