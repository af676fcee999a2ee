//! Quiet hours (`/prpr quiet 19:00-09:00`): DMs to a person are held, never
//! dropped, and delivered as one summary when quiet hours end.
//!
//! Done where a DM is about to be sent ([`super::sender::deliver`]), so the
//! sender's scheduling loop is unchanged: when a DM channel's head is due
//! and its person is in quiet hours, the head is rescheduled to the end of
//! quiet hours (not counted as an attempt) and every pending row of that
//! channel is marked held. Per-channel order means nothing behind the head
//! goes first. When the head comes due again, the channel's pending rows
//! (up to [`SUMMARY_MAX_ITEMS`]) are posted as one message and all marked
//! sent; a longer backlog is marked held again and summarised next.

use crate::notice::is_dm;
use crate::slack::render::{SUMMARY_MAX_ITEMS, Stored, held_summary};
use crate::slack::{Posted, Publisher, SendError};
use crate::store::{HeldRow, OutboxItem, Store, StoreError};

/// What to do with a DM head.
pub(crate) enum Quiet {
    /// Send it as usual.
    Send,
    /// Hold until this time (unix ms).
    Hold(i64),
    /// Quiet hours are over: send these held rows (the head first) as one.
    Summary(Vec<HeldRow>),
}

pub(crate) async fn check(
    store: &Store,
    now_ms: i64,
    item: &OutboxItem,
) -> Result<Quiet, StoreError> {
    if !is_dm(&item.channel) {
        return Ok(Quiet::Send);
    }
    let prefs = store.user_prefs(&item.channel).await?;
    if let Some(until) = prefs.quiet.as_ref().and_then(|q| q.active_until(now_ms)) {
        return Ok(Quiet::Hold(until));
    }
    if !store.is_held(item.id).await? {
        return Ok(Quiet::Send);
    }
    let rows = store
        .pending_in(&item.channel, SUMMARY_MAX_ITEMS as i64)
        .await?;
    Ok(Quiet::Summary(rows))
}

/// Posts the summary; on success marks every row but the head sent (the
/// caller records the head as usual) and marks what is left held.
pub(crate) async fn send_summary(
    store: &Store,
    publisher: &Publisher,
    item: &OutboxItem,
    rows: &[HeldRow],
    now_ms: i64,
) -> Result<Posted, SendError> {
    let messages: Vec<_> = rows
        .iter()
        .filter_map(|r| Stored::parse(&r.payload).ok())
        .map(|s| s.render())
        .collect();
    let posted = publisher
        .post(&item.channel, &held_summary(&messages))
        .await?;
    let unavailable = |e: StoreError| SendError::Transient(format!("store: {e}"));
    for r in rows.iter().filter(|r| r.id != item.id) {
        if let Err(e) = store.mark_sent(r.id, now_ms, posted.ts.as_deref()).await {
            tracing::error!(outbox_id = r.id, error = %e, "a summarised message could not be marked sent; it may be sent again");
        }
    }
    let left = store
        .pending_in(&item.channel, 2)
        .await
        .map_err(unavailable)?;
    if left.iter().any(|r| r.id != item.id) {
        store.mark_held(&item.channel).await.map_err(unavailable)?;
    }
    Ok(posted)
}
