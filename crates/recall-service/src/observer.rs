//! A port for what else should learn of each processed event.

use async_trait::async_trait;

use crate::ProcessedEvent;

/// Told about each stored event once it has been processed (its memories
/// are written, or it needed none) and recorded in the call index, and
/// *before* it is marked done. A crash in between leaves the event
/// pending, so the observer hears of it again after the restart: delivery
/// is at least once, and observers must be idempotent. Replays notify
/// again too.
///
/// The observer handles its own failures (log them; it cannot fail the
/// event): it is told off the webhook's request path, in the worker.
#[async_trait]
pub trait EventObserver: Send + Sync + 'static {
    /// `event` is the processed event, typed, with its caller decided.
    async fn processed(&self, event: &ProcessedEvent);
}
