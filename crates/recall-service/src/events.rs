//! The events that have not become memories: pending (waiting or being
//! retried), failed for good, or refused and kept in quarantine. Listed
//! for operators, counted for metrics. The entries are the operator API's
//! model, [`recall_model::ui::EventEntry`], listed as it answers them.

use std::collections::BTreeMap;
use std::sync::{MutexGuard, PoisonError};

use recall_model::ConversationId;
pub use recall_model::ui::{EventEntry, EventStatus};

use crate::service::EventKey;
use crate::{Service, ServiceError};

/// A page of [`EventEntry`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EventPage {
    /// The entries, in a stable order (conversation and type; a
    /// quarantined body's age).
    pub items: Vec<EventEntry>,
    /// Pass to the next call for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// The most entries one page holds.
pub const MAX_EVENT_PAGE: usize = 500;

fn key_cursor(key: &EventKey) -> String {
    format!("{}/{}", key.0.as_str(), key.1)
}

impl Service {
    pub(crate) fn failed(&self) -> MutexGuard<'_, BTreeMap<EventKey, String>> {
        self.inner
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Events whose processing failed for good. Counted from disk by the
    /// first scan (the worker's start, or
    /// [`process_pending`](Self::process_pending)), so a restart does not
    /// reset it.
    pub fn failed_count(&self) -> usize {
        self.failed().len()
    }

    /// Lists events that have not become memories, `limit` (at most
    /// [`MAX_EVENT_PAGE`]) at a time, after `cursor` (from the previous
    /// page's [`EventPage::next_cursor`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use recall_service::{EventStatus, PayloadStore, Service, ServiceConfig};
    /// let dir = tempfile::tempdir()?;
    /// let service = Service::new(
    ///     Arc::new(recall_memory::InMemoryStore::new()),
    ///     PayloadStore::open(dir.path())?,
    ///     ServiceConfig::default(),
    /// );
    /// assert!(service.ingest_bytes(b"{\"type\": 7}").await.is_err());
    /// let page = service.list_events(EventStatus::Quarantined, 10, None).await?;
    /// assert_eq!(page.items.len(), 1);
    /// assert!(page.items[0].reason.as_deref().unwrap().contains("`type`"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ServiceError::Io`] when the quarantine folder cannot be read.
    pub async fn list_events(
        &self,
        status: EventStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<EventPage, ServiceError> {
        let limit = limit.clamp(1, MAX_EVENT_PAGE);
        let after = |key: &EventKey| cursor.is_none_or(|c| key_cursor(key).as_str() > c);
        let page_of = |mut items: Vec<EventEntry>, cursors: Vec<String>| {
            let more = items.len() > limit;
            items.truncate(limit);
            let next_cursor = more.then(|| cursors[limit - 1].clone());
            EventPage { items, next_cursor }
        };
        // Pending and failed events: (key, attempts, reason).
        let mut entries: Vec<(EventKey, u32, Option<String>)> = match status {
            EventStatus::Pending => self
                .pending()
                .iter()
                .filter(|(k, _)| after(k))
                .map(|(k, e)| (k.clone(), e.attempts, e.last_error.clone()))
                .collect(),
            EventStatus::Failed => self
                .failed()
                .iter()
                .filter(|(k, _)| after(k))
                .map(|(k, r)| (k.clone(), 0, Some(r.clone())))
                .collect(),
            EventStatus::Quarantined => {
                let bodies = self.payloads().quarantined(cursor, limit + 1).await?;
                let cursors = bodies.iter().map(|b| b.id.clone()).collect();
                let items = bodies
                    .into_iter()
                    .map(|b| EventEntry {
                        status,
                        conversation_id: None,
                        event_type: None,
                        reason: Some(b.reason),
                        attempts: 0,
                        file: Some(format!("{}.json", b.id)),
                        bytes: Some(b.bytes),
                        received_at: b.received,
                    })
                    .collect();
                return Ok(page_of(items, cursors));
            }
        };
        entries.sort_by_cached_key(|e| key_cursor(&e.0));
        entries.truncate(limit + 1);
        let cursors = entries.iter().map(|(k, ..)| key_cursor(k)).collect();
        let items = entries
            .into_iter()
            .map(|(key, attempts, reason)| EventEntry {
                status,
                conversation_id: Some(key.0),
                event_type: Some(key.1),
                reason,
                attempts,
                file: None,
                bytes: None,
                received_at: None,
            })
            .collect();
        Ok(page_of(items, cursors))
    }

    /// Forgets the failures of a conversation that was erased; how many
    /// were forgotten.
    pub(crate) fn drop_failures_of(&self, conversation: &ConversationId) -> u64 {
        let mut failed = self.failed();
        let before = failed.len();
        failed.retain(|(c, _), _| c != conversation);
        (before - failed.len()) as u64
    }
}
