//! One accepted delivery → one store transaction.
//!
//! Shared by `prpr serve` (intake) and `prpr replay`, so a replayed payload
//! goes through exactly the rules and bookkeeping a live one does.

use crate::config::NotifyConfig;
use crate::github::Event;
use crate::rules;
use crate::store::{DeliveryMeta, Recorded, Store, StoreError};

/// Records the delivery (dedup by ID), decides, queues; atomically.
pub async fn ingest(
    store: &Store,
    cfg: &NotifyConfig,
    delivery_id: &str,
    event_name: &str,
    event: &Event,
    now_ms: i64,
) -> Result<Recorded, StoreError> {
    let subject = event.subject();
    let meta = DeliveryMeta {
        id: delivery_id,
        event: event_name,
        subject: &subject,
        history_since: None,
    };
    // The comment's Markdown is scanned here, before the transaction: on
    // SQLite the transaction holds the only write lock.
    rules::prepare(event);
    store
        .record(&meta, now_ms, |recall| {
            rules::decide(event, &recall.pr, cfg)
        })
        .await
}
