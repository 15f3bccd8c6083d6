//! Recall's call index: the SQLite adapter of the
//! [`recall_service::CallIndex`] port.
//!
//! The payload store keeps every post-call event; that is the source of
//! truth. The operator read API (call list, transcript, analytics) must not
//! read those events on every request, so this crate keeps a small SQLite
//! database beside them (`<data>/calls.db`, WAL mode) with one row per
//! call. It is fed by the service with typed, processed events
//! ([`recall_service::ProcessedEvent`]) whose caller the service already
//! decided; it never reads payload files or decides who a call belongs to.
//! `recall reindex` ([`recall_service::Service::reindex`]) rebuilds it by
//! replaying the stored events through the service.
//!
//! * A `post_call_transcription` event becomes a connected call.
//! * A `call_initiation_failure` event becomes a call that never connected:
//!   status `failed`, unsuccessful, no duration or cost. A later
//!   transcription for the same conversation replaces it; a failure never
//!   replaces a transcription.
//! * A `post_call_audio` event marks the call as having audio; it may
//!   arrive before or after the transcription.
//!
//! Recording the same event again changes nothing (ElevenLabs may deliver
//! an event twice).
//!
//! Calls are answered as the operator API shows them, in
//! [`recall_model::ui`]'s types, with the definitions of the
//! [`CallIndex`] port (its conformance suite runs against this index).
//! What a row holds is decided by [`CallRecord::from_event`], for every
//! implementation alike.
//!
//! Every method is `async` and runs its SQLite work on Tokio's blocking
//! thread pool, so it never blocks the runtime; it must be called from
//! within a Tokio runtime.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use recall_calls::SqliteCallIndex;
//! use recall_model::{ConversationId, PostCallWebhookRequest};
//! use recall_service::{CallIndex as _, CallQuery, ProcessedEvent};
//!
//! let dir = tempfile::tempdir()?;
//! let index = SqliteCallIndex::open(dir.path().join("calls.db")).await?;
//! let request: PostCallWebhookRequest = serde_json::from_str(r#"{
//!   "type": "post_call_transcription", "event_timestamp": 1739537297,
//!   "data": {"agent_id": "xyz", "conversation_id": "abc", "status": "done",
//!     "metadata": {"start_time_unix_secs": 1739537297, "call_duration_secs": 22, "cost": 296},
//!     "analysis": {"call_successful": "success"},
//!     "conversation_initiation_client_data": {
//!       "dynamic_variables": {"system__caller_id": "+16129782029"}}}}"#)?;
//! let event = ProcessedEvent::from_request(ConversationId::parse("abc")?, request);
//! index.record(&event).await?;
//!
//! let page = index.list_calls(CallQuery::default()).await?;
//! assert_eq!(page.items.len(), 1);
//! assert_eq!(page.items[0].caller.as_ref().map(|p| p.as_str()), Some("+16129782029"));
//! assert_eq!(page.items[0].call.duration, Some(22.0));
//! assert_eq!(page.next_cursor, None);
//! # Ok(()) }
//! ```

mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use recall_model::ui::{CallAnalytics, CallDetail, DailyCalls};
use recall_model::{ConversationId, PhoneNumber, UnixTimestamp, WebhookType};
use recall_service::{
    AnalyticsQuery, CallIndex, CallIndexError, CallQuery, CallRecord, IndexedCall, Page,
    ProcessedEvent,
};

/// The file name of the index inside the data directory.
pub const INDEX_FILE_NAME: &str = "calls.db";

/// What can go wrong with the SQLite file; the port sees it as
/// [`CallIndexError::Unavailable`] with this as its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallsError {
    /// The database failed.
    #[error("call index database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A stored transcript could not be read or written.
    #[error("call index transcript column: {0}")]
    Transcript(#[from] serde_json::Error),
    /// The blocking task running the query panicked or was cancelled.
    #[error("call index task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One transcript turn as the index stores it: the `transcript` column's
/// JSON, written in this shape since schema version 1, so existing index
/// files stay readable. Read back as the UI's
/// [`TranscriptMessage`](recall_model::ui::TranscriptMessage).
#[derive(Clone, PartialEq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Turn {
    /// `agent` or `user`.
    pub(crate) role: String,
    /// What was said.
    pub(crate) message: String,
    /// Seconds since the call started.
    pub(crate) time_in_call_secs: f64,
    /// Whether the speaker was interrupted.
    pub(crate) interrupted: bool,
}

/// The call index on one SQLite file: cheap to clone and share.
#[derive(Clone)]
pub struct SqliteCallIndex {
    conn: Arc<Mutex<rusqlite::Connection>>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for SqliteCallIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCallIndex")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteCallIndex {
    /// Opens (creating if needed) the index at `path`, in WAL mode, and
    /// brings its schema up to date.
    ///
    /// # Errors
    /// [`CallsError::Database`] when the file cannot be opened or is not a
    /// database.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, CallsError> {
        let path = path.as_ref().to_path_buf();
        let opened = path.clone();
        let conn = blocking(move || store::open(&opened)).await?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
        })
    }

    /// The file this index lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T, CallIndexError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T, CallsError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        blocking(move || {
            // A panic while holding the lock leaves SQLite consistent
            // (every write is one transaction), so a poisoned lock is
            // safe to take over.
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(CallIndexError::unavailable)
    }
}

#[async_trait::async_trait]
impl CallIndex for SqliteCallIndex {
    async fn record(&self, event: &ProcessedEvent) -> Result<(), CallIndexError> {
        match CallRecord::from_event(event)? {
            Some(record) => {
                self.with_conn(move |conn| store::upsert(conn, &record))
                    .await
            }
            None if event.kind == WebhookType::PostCallAudio => {
                let id = event.conversation.clone();
                self.with_conn(move |conn| store::mark_audio(conn, &id))
                    .await
            }
            None => Ok(()),
        }
    }

    async fn rebuild(
        &self,
        mut events: tokio::sync::mpsc::Receiver<ProcessedEvent>,
    ) -> Result<u64, CallIndexError> {
        self.with_conn(move |conn| store::replace_all(conn, &mut events))
            .await
    }

    async fn forget_caller(
        &self,
        caller: &PhoneNumber,
    ) -> Result<Vec<ConversationId>, CallIndexError> {
        let phone = caller.clone();
        self.with_conn(move |conn| {
            let forgotten = store::forget(conn, &phone)?;
            // The write-ahead log still holds the rows as they were: copy
            // the current pages into the database and empty the log.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(forgotten)
        })
        .await
    }

    async fn unmark_audio(&self, conversation: &ConversationId) -> Result<bool, CallIndexError> {
        let id = conversation.clone();
        self.with_conn(move |conn| store::unmark_audio(conn, &id))
            .await
    }

    async fn callers_silent_since(
        &self,
        before: UnixTimestamp,
    ) -> Result<Vec<PhoneNumber>, CallIndexError> {
        self.with_conn(move |conn| store::silent_callers(conn, before))
            .await
    }

    async fn list_calls(&self, query: CallQuery) -> Result<Page<IndexedCall>, CallIndexError> {
        let limit = query.page_size()?;
        let after = query.after()?;
        self.with_conn(move |conn| store::list(conn, &query, limit, after))
            .await
    }

    async fn get_call(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<CallDetail>, CallIndexError> {
        let id = conversation.clone();
        self.with_conn(move |conn| store::get(conn, &id)).await
    }

    async fn analytics(&self, query: AnalyticsQuery) -> Result<CallAnalytics, CallIndexError> {
        self.with_conn(move |conn| store::analytics(conn, &query))
            .await
    }

    async fn daily(&self, query: AnalyticsQuery) -> Result<Vec<DailyCalls>, CallIndexError> {
        self.with_conn(move |conn| store::daily(conn, &query)).await
    }
}

async fn blocking<T, F>(f: F) -> Result<T, CallsError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CallsError> + Send + 'static,
{
    recall_memory::spawn_blocking(f).await?
}
