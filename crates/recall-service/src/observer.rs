//! A port for what else should learn of each processed event (e.g. the
//! operator API's call index).

use std::path::Path;

use async_trait::async_trait;
use recall_model::{ConversationId, WebhookType};

/// Told about each stored event once it has been processed (its memories
/// are written, or it needed none) and *before* it is marked done. A crash
/// in between leaves the event pending, so the observer hears of it again
/// after the restart: delivery is at least once, and observers must be
/// idempotent. Replays notify again too.
///
/// The observer handles its own failures (log them; it cannot fail the
/// event): it is told off the webhook's request path, in the worker.
#[async_trait]
pub trait EventObserver: Send + Sync + 'static {
    /// `event` is the stored raw event, `<payload root>/<conversation>/<type>.json`.
    async fn processed(&self, conversation: &ConversationId, kind: &WebhookType, event: &Path);
}
