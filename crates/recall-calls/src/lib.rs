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
//! [`recall_model::ui`]'s types: [`IndexedCall`] carries a
//! [`CallSummary`] with what only the index knows (caller, start time,
//! audio); [`CallIndex::get_call`], [`CallIndex::analytics`] and
//! [`CallIndex::daily`] answer [`CallDetail`], [`CallAnalytics`] and
//! [`DailyCalls`].
//!
//! Every method is `async` and runs its SQLite work on Tokio's blocking
//! thread pool, so it never blocks the runtime; it must be called from
//! within a Tokio runtime.
//!
//! # Definitions used by [`CallIndex::analytics`]
//!
//! * `total_calls`: calls in range, connected or not (initiation failures
//!   count).
//! * `success_rate`: calls whose analysis said `call_successful: success`
//!   divided by `total_calls`, from 0.0 to 1.0 (0.0 when there are no
//!   calls). Initiation failures, `failure` and `unknown` are unsuccessful.
//! * `avg_duration`: mean `call_duration_secs` of the calls that report one
//!   (initiation failures have none), in seconds; 0.0 when none do.
//! * `total_cost`: sum of `metadata.cost` as ElevenLabs reports it.
//! * `data_collected`: for each data-collection field id and value (values
//!   compared as JSON), how many calls collected it; `null` values are not
//!   counted. Ordered by count (highest first), then field id, then value
//!   (as JSON text); `recall_model::ui::CallAnalytics::from_calls` orders
//!   the same way.
//!
//! A call's time is `metadata.start_time_unix_secs`, else the event's
//! `event_timestamp`. Time ranges (`from`, `to`) include both ends.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use recall_calls::{CallIndex, CallQuery};
//! use recall_model::{ConversationId, PostCallWebhookRequest};
//! use recall_service::{CallIndex as _, ProcessedEvent};
//!
//! let dir = tempfile::tempdir()?;
//! let index = CallIndex::open(dir.path().join("calls.db")).await?;
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

mod extract;
mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use recall_model::ui::{CallAnalytics, CallDetail, CallSummary, DailyCalls};
use recall_model::{AgentId, ConversationId, PhoneNumber, UnixTimestamp, WebhookType};
use recall_service::{CallIndexError, ProcessedEvent};

use crate::extract::CallRecord;

/// The file name of the index inside the data directory.
pub const INDEX_FILE_NAME: &str = "calls.db";

/// The page size used when a query sets none.
pub const DEFAULT_LIMIT: u32 = 50;

/// The largest page a query may ask for.
pub const MAX_LIMIT: u32 = 200;

/// Everything that can go wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    /// A paging cursor that this index did not hand out (or was altered).
    #[error("invalid cursor: not one returned by a previous page")]
    InvalidCursor,
    /// A page size outside `1..=MAX_LIMIT`.
    #[error("invalid limit: must be from 1 to {MAX_LIMIT} (got {0})")]
    InvalidLimit(u32),
    /// An event the index cannot read (missing or invalid ids).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The database failed.
    #[error("call index database: {0}")]
    Database(#[from] rusqlite::Error),
    /// Reading payload files failed.
    #[error("call index I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The blocking task running the query panicked or was cancelled.
    #[error("call index task failed: {0}")]
    Task(String),
}

/// One call as listed: the UI's [`CallSummary`], plus what only the index
/// knows: who called, when, whether audio is stored and whether the call
/// ever connected.
#[derive(Clone, PartialEq, Debug)]
pub struct IndexedCall {
    /// The call as the UI lists it. Its `status` is `failed`, and
    /// `successful` is `Some(false)`, for a call that never connected.
    pub call: CallSummary,
    /// The caller's number, when known and not withheld.
    pub caller: Option<PhoneNumber>,
    /// When the call started (or failed to).
    pub start_time: UnixTimestamp,
    /// Whether the call's audio is stored.
    pub has_audio: bool,
    /// Whether the call never connected (`call_initiation_failure`).
    pub initiation_failed: bool,
}

/// One transcript turn as the index stores it: the `transcript` column's
/// JSON, written in this shape since schema version 1, so existing index
/// files stay readable. Read back as the UI's
/// [`TranscriptMessage`](recall_model::ui::TranscriptMessage). Turns
/// without text (tool calls only) and roles other than `agent`/`user` are
/// not stored.
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

/// A page of results, newest first.
#[derive(Clone, PartialEq, Debug)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass this as the next query's `cursor` to get the following page;
    /// `None` on the last page. Cursors stay valid when calls are added.
    pub next_cursor: Option<String>,
}

/// Filters and paging for [`CallIndex::list_calls`].
#[derive(Clone, PartialEq, Debug, Default)]
pub struct CallQuery {
    /// Only this caller's calls.
    pub phone: Option<PhoneNumber>,
    /// Only this agent's calls.
    pub agent: Option<AgentId>,
    /// Only calls at or after this time.
    pub from: Option<UnixTimestamp>,
    /// Only calls at or before this time.
    pub to: Option<UnixTimestamp>,
    /// Page size, 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when `None`.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters for [`CallIndex::analytics`] and [`CallIndex::daily`].
#[derive(Clone, PartialEq, Debug, Default)]
pub struct AnalyticsQuery {
    /// Only this agent's calls.
    pub agent: Option<AgentId>,
    /// Only calls at or after this time.
    pub from: Option<UnixTimestamp>,
    /// Only calls at or before this time.
    pub to: Option<UnixTimestamp>,
}

/// The call index: a handle to one SQLite file, cheap to clone and share.
#[derive(Clone)]
pub struct CallIndex {
    conn: Arc<Mutex<rusqlite::Connection>>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for CallIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallIndex")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl CallIndex {
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

    async fn with_conn<T, F>(&self, f: F) -> Result<T, CallsError>
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
    }

    /// Notes that the call's audio is stored.
    pub async fn record_audio(&self, conversation_id: &ConversationId) -> Result<(), CallsError> {
        let id = conversation_id.clone();
        self.with_conn(move |conn| store::mark_audio(conn, &id))
            .await
    }

    /// Calls newest first (by start time, then conversation id), filtered
    /// and paged.
    ///
    /// # Errors
    /// [`CallsError::InvalidLimit`], [`CallsError::InvalidCursor`].
    pub async fn list_calls(&self, query: CallQuery) -> Result<Page<IndexedCall>, CallsError> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(CallsError::InvalidLimit(limit));
        }
        let after = query
            .cursor
            .as_deref()
            .map(store::decode_cursor)
            .transpose()?;
        self.with_conn(move |conn| store::list(conn, &query, limit, after))
            .await
    }

    /// One call with its transcript, or `None` when not indexed.
    pub async fn get_call(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<CallDetail>, CallsError> {
        let id = conversation_id.clone();
        self.with_conn(move |conn| store::get(conn, &id)).await
    }

    /// Aggregates over the calls in range (see the crate docs).
    pub async fn analytics(&self, query: AnalyticsQuery) -> Result<CallAnalytics, CallsError> {
        self.with_conn(move |conn| store::analytics(conn, &query))
            .await
    }

    /// Calls and successful calls per UTC day, oldest day first.
    pub async fn daily(&self, query: AnalyticsQuery) -> Result<Vec<DailyCalls>, CallsError> {
        self.with_conn(move |conn| store::daily(conn, &query)).await
    }

    /// The conversations of one caller, newest first.
    pub async fn conversations_of(
        &self,
        phone: &PhoneNumber,
    ) -> Result<Vec<ConversationId>, CallsError> {
        let phone = phone.clone();
        self.with_conn(move |conn| store::conversations_of(conn, &phone))
            .await
    }

    /// Removes every call of one caller from the index and returns the
    /// conversations removed (so their payload files can be erased too).
    pub async fn forget_caller(
        &self,
        phone: &PhoneNumber,
    ) -> Result<Vec<ConversationId>, CallsError> {
        let phone = phone.clone();
        self.with_conn(move |conn| store::forget(conn, &phone))
            .await
    }
}

#[async_trait::async_trait]
impl recall_service::CallIndex for CallIndex {
    async fn record(&self, event: &ProcessedEvent) -> Result<(), CallIndexError> {
        match CallRecord::from_event(event)? {
            Some(record) => self
                .with_conn(move |conn| store::upsert(conn, &record))
                .await
                .map_err(CallIndexError::from),
            None if event.kind == WebhookType::PostCallAudio => {
                Ok(self.record_audio(&event.conversation).await?)
            }
            None => Ok(()),
        }
    }

    async fn rebuild(
        &self,
        mut events: tokio::sync::mpsc::Receiver<ProcessedEvent>,
    ) -> Result<u64, CallIndexError> {
        Ok(self
            .with_conn(move |conn| store::replace_all(conn, &mut events))
            .await?)
    }

    async fn forget_caller(
        &self,
        caller: &PhoneNumber,
    ) -> Result<Vec<ConversationId>, CallIndexError> {
        Ok(CallIndex::forget_caller(self, caller).await?)
    }
}

impl From<CallsError> for CallIndexError {
    fn from(error: CallsError) -> Self {
        match error {
            CallsError::InvalidEvent(reason) => CallIndexError::InvalidEvent(reason),
            other => CallIndexError::unavailable(other),
        }
    }
}

async fn blocking<T, F>(f: F) -> Result<T, CallsError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CallsError> + Send + 'static,
{
    // Inside the caller's span, so the work's logs keep its fields.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| CallsError::Task(e.to_string()))?
}
