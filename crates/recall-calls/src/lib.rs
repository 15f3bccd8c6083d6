//! Recall's call index.
//!
//! The payload store keeps every post-call event as a file
//! (`<payload root>/<conversation_id>/<type>.json`); that is the source of
//! truth. The operator read API (call list, transcript, analytics) must not
//! scan those files on every request, so this crate keeps a small SQLite
//! database beside them (`<data>/calls.db`, WAL mode) with one row per
//! call, updated as each stored event is processed and rebuilt from the payload
//! files by [`CallIndex::reindex`] (`recall reindex`).
//!
//! * A `post_call_transcription` event becomes a connected call:
//!   [`CallIndex::record_transcription`].
//! * A `call_initiation_failure` event becomes a call that never connected
//!   ([`CallIndex::record_initiation_failure`]): status `failed`,
//!   unsuccessful, no duration or cost. A later transcription for the same
//!   conversation replaces it; a failure never replaces a transcription.
//! * A `post_call_audio` event marks the call as having audio
//!   ([`CallIndex::record_audio`]); it may arrive before or after the
//!   transcription.
//!
//! Recording the same event again changes nothing (ElevenLabs may deliver
//! an event twice).
//!
//! Every method is `async` and runs its SQLite work on Tokio's blocking
//! thread pool ([`tokio::task::spawn_blocking`]), so it never blocks the
//! runtime; it must be called from within a Tokio runtime.
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
//!   counted. Ordered by count (highest first), then field id.
//!
//! A call's time is `metadata.start_time_unix_secs`, else the event's
//! `event_timestamp`. Time ranges (`from`, `to`) include both ends.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), recall_calls::CallsError> {
//! use recall_calls::{CallIndex, CallQuery};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let index = CallIndex::open(dir.path().join("calls.db")).await?;
//! let event = json!({"type": "post_call_transcription", "event_timestamp": 1739537297,
//!     "data": {"agent_id": "xyz", "conversation_id": "abc", "status": "done",
//!         "metadata": {"start_time_unix_secs": 1739537297, "call_duration_secs": 22, "cost": 296},
//!         "analysis": {"call_successful": "success"},
//!         "conversation_initiation_client_data": {
//!             "dynamic_variables": {"system__caller_id": "+16129782029"}}}});
//! index.record_event(&event).await?;
//!
//! let page = index.list_calls(CallQuery::default()).await?;
//! assert_eq!(page.items.len(), 1);
//! assert_eq!(page.items[0].caller.as_ref().map(|p| p.as_str()), Some("+16129782029"));
//! assert_eq!(page.next_cursor, None);
//! # Ok(()) }
//! ```

mod extract;
mod store;
mod ui;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use recall_model::{AgentId, ConversationId, PhoneNumber, UnixTimestamp};
use serde_json::Value;

use crate::extract::{CallRecord, Caller};

/// The file in which Recall's service records a conversation's caller.
const CALLER_FILE: &str = "caller";

/// The file name of the index inside the data directory.
pub const INDEX_FILE_NAME: &str = "calls.db";

/// The page size used when a query sets none.
pub const DEFAULT_LIMIT: u32 = 50;

/// The largest page a query may ask for.
pub const MAX_LIMIT: u32 = 200;

/// Everything that can go wrong with the index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// An event that is not JSON (or a part of it that cannot be written
    /// back as JSON).
    #[error("invalid event: {0}")]
    Json(#[from] serde_json::Error),
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
    Task(#[source] tokio::task::JoinError),
}

/// One call as listed: what the UI's `CallSummary` shows, plus who called,
/// when, and whether audio is stored.
#[derive(Clone, PartialEq, Debug)]
pub struct IndexedCall {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The agent that took or placed the call.
    pub agent_id: AgentId,
    /// The caller's number, when known and not withheld.
    pub caller: Option<PhoneNumber>,
    /// ElevenLabs' status (`done`, `failed`, ...); `failed` for a call
    /// that never connected.
    pub status: String,
    /// When the call started (or failed to).
    pub start_time: UnixTimestamp,
    /// Length in seconds.
    pub duration: Option<i64>,
    /// Cost as ElevenLabs reports it.
    pub cost: Option<f64>,
    /// The analysis' transcript summary.
    pub summary: Option<String>,
    /// The analysis' title.
    pub title: Option<String>,
    /// `Some(true)` for `success`, `Some(false)` for `failure` and for a
    /// call that never connected, `None` when unknown.
    pub successful: Option<bool>,
    /// Whether the call's audio is stored.
    pub has_audio: bool,
    /// Whether the call never connected (`call_initiation_failure`).
    pub initiation_failed: bool,
}

/// One transcript turn (the UI's `TranscriptMessage`). Turns without text
/// (tool calls only) and roles other than `agent`/`user` are left out.
#[derive(Clone, PartialEq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Turn {
    /// `agent` or `user`.
    pub role: String,
    /// What was said.
    pub message: String,
    /// Seconds since the call started.
    pub time_in_call_secs: f64,
    /// Whether the speaker was interrupted.
    pub interrupted: bool,
}

/// A call with its transcript.
#[derive(Clone, PartialEq, Debug)]
pub struct CallDetail {
    /// The call.
    pub call: IndexedCall,
    /// Its transcript, in order.
    pub transcript: Vec<Turn>,
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

/// How often one data-collection value was collected.
#[derive(Clone, PartialEq, Debug)]
pub struct CollectedValue {
    /// The data-collection field id (e.g. `first_name`).
    pub field_id: String,
    /// The value, as collected.
    pub value: Value,
    /// In how many calls.
    pub count: u64,
}

/// Aggregates over calls (the UI's `CallAnalytics`; see the crate docs for
/// the definitions).
#[derive(Clone, PartialEq, Debug)]
pub struct Analytics {
    /// Calls in range, initiation failures included.
    pub total_calls: u64,
    /// Successful calls / total calls, 0.0 to 1.0.
    pub success_rate: f64,
    /// Mean duration in seconds of the calls that report one.
    pub avg_duration: f64,
    /// Sum of the calls' cost.
    pub total_cost: f64,
    /// Collected values with their counts.
    pub data_collected: Vec<CollectedValue>,
}

/// Calls on one UTC day, for a chart.
#[derive(Clone, PartialEq, Debug)]
pub struct DailyCalls {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Calls that day, initiation failures included.
    pub calls: u64,
    /// Successful calls that day.
    pub successful: u64,
}

/// What [`CallIndex::reindex`] found.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ReindexReport {
    /// Transcription events indexed.
    pub transcriptions: u64,
    /// Initiation failures indexed.
    pub initiation_failures: u64,
    /// Calls with stored audio.
    pub audio: u64,
    /// Payload files that could not be read as events (logged, skipped).
    pub skipped: u64,
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

    /// Indexes any post-call event envelope by its `type`:
    /// transcription, initiation failure or audio. Other types are
    /// ignored. The caller is read from the event.
    ///
    /// # Errors
    /// [`CallsError::InvalidEvent`] when ids are missing or invalid.
    pub async fn record_event(&self, event: &Value) -> Result<(), CallsError> {
        self.record(event, Caller::FromEvent).await
    }

    /// [`record_event`](Self::record_event), with the caller decided by
    /// whoever processed the event (Recall's service records it beside the
    /// payload): `None` means the call has no caller identity. This keeps
    /// the index attributing calls exactly as memories are attributed, so
    /// erasing a caller erases their index rows too (on an outbound call,
    /// for instance, the event's `system__caller_id` is the agent's own
    /// line, not the person called).
    ///
    /// # Errors
    /// [`CallsError::InvalidEvent`] when ids are missing or invalid.
    pub async fn record_event_for(
        &self,
        event: &Value,
        caller: Option<&PhoneNumber>,
    ) -> Result<(), CallsError> {
        self.record(event, Caller::Decided(caller)).await
    }

    async fn record(&self, event: &Value, caller: Caller<'_>) -> Result<(), CallsError> {
        let upsert = |record: CallRecord| self.with_conn(move |conn| store::upsert(conn, &record));
        match event.get("type").and_then(Value::as_str) {
            Some("post_call_transcription") => upsert(extract::transcription(event, caller)?).await,
            Some("call_initiation_failure") => {
                upsert(extract::initiation_failure(event, caller)?).await
            }
            Some("post_call_audio") => {
                let id = event
                    .pointer("/data/conversation_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        CallsError::InvalidEvent("data.conversation_id is required".into())
                    })?;
                let id = ConversationId::parse(id)
                    .map_err(|e| CallsError::InvalidEvent(e.to_string()))?;
                self.record_audio(&id).await
            }
            _ => Ok(()),
        }
    }

    /// Indexes a `post_call_transcription` event (the whole envelope, or
    /// its `data`). `caller` overrides the caller read from the event
    /// (`system__caller_id`, else `metadata.phone_call.external_number`).
    ///
    /// # Errors
    /// [`CallsError::InvalidEvent`] when ids are missing or invalid.
    pub async fn record_transcription(
        &self,
        event: &Value,
        caller: Option<&PhoneNumber>,
    ) -> Result<(), CallsError> {
        self.record(
            event,
            caller.map_or(Caller::FromEvent, |c| Caller::Decided(Some(c))),
        )
        .await
    }

    /// Indexes a `call_initiation_failure` event (the whole envelope, or
    /// its `data`). `caller` overrides the number read from the event (the
    /// called party of the failed call).
    ///
    /// # Errors
    /// [`CallsError::InvalidEvent`] when ids are missing or invalid.
    pub async fn record_initiation_failure(
        &self,
        event: &Value,
        caller: Option<&PhoneNumber>,
    ) -> Result<(), CallsError> {
        self.record(
            event,
            caller.map_or(Caller::FromEvent, |c| Caller::Decided(Some(c))),
        )
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
    pub async fn analytics(&self, query: AnalyticsQuery) -> Result<Analytics, CallsError> {
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

    /// Rebuilds the whole index from the payload files under
    /// `payload_root` (`<conversation_id>/post_call_transcription.json`,
    /// `call_initiation_failure.json`, and `audio.mp3` or
    /// `post_call_audio.json` for audio), in one transaction: readers see
    /// the old index until the new one is complete. Unreadable files are
    /// logged and counted as skipped.
    ///
    /// # Errors
    /// [`CallsError::Io`] when the payload root cannot be listed.
    pub async fn reindex(
        &self,
        payload_root: impl AsRef<Path>,
    ) -> Result<ReindexReport, CallsError> {
        let root = payload_root.as_ref().to_path_buf();
        let records = blocking(move || read_payloads(&root)).await?;
        self.with_conn(move |conn| store::replace_all(conn, &records))
            .await
    }
}

/// What reindexing read from the payload files.
pub(crate) struct Payloads {
    pub(crate) records: Vec<CallRecord>,
    pub(crate) audio: Vec<ConversationId>,
    pub(crate) skipped: u64,
}

fn read_payloads(root: &Path) -> Result<Payloads, CallsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CallsError::Io { path, source }
    };
    let mut out = Payloads {
        records: Vec::new(),
        audio: Vec::new(),
        skipped: 0,
    };
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(root)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(root))?;
        if !entry.file_type().map_err(io(&entry.path()))?.is_dir() {
            continue;
        }
        let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|name| ConversationId::parse(name).ok())
        else {
            continue;
        };
        let dir = entry.path();
        let mut read = |file: &str| -> Option<Value> {
            let path = dir.join(file);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "reindex: unreadable payload");
                    out.skipped += 1;
                    return None;
                }
            };
            match serde_json::from_slice(&bytes) {
                Ok(value) => Some(value),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "reindex: payload is not JSON");
                    out.skipped += 1;
                    None
                }
            }
        };
        let transcription = read("post_call_transcription.json");
        let failure = read("call_initiation_failure.json");
        let mut push = |result: Result<CallRecord, CallsError>, file: &str| match result {
            Ok(record) => out.records.push(record),
            Err(e) => {
                tracing::warn!(conversation_id = %id.as_str(), file, error = %e, "reindex: event skipped");
                out.skipped += 1;
            }
        };
        // The caller as the service decided it (its `caller` file); an
        // event it processed without one has no caller identity; one not
        // processed yet is read by the index's own rule until it is.
        let decided = std::fs::read_to_string(dir.join(CALLER_FILE))
            .ok()
            .and_then(|raw| PhoneNumber::parse(raw.trim()).ok());
        let caller_for = |kind: &str| match &decided {
            Some(phone) => Caller::Decided(Some(phone)),
            None if dir.join(format!("{kind}.done")).is_file() => Caller::Decided(None),
            None => Caller::FromEvent,
        };
        // A transcription supersedes a failure of the same conversation, as
        // when recorded live: the failure goes first so the transcription wins.
        if let Some(event) = failure {
            push(
                extract::initiation_failure(&event, caller_for("call_initiation_failure")),
                "call_initiation_failure.json",
            );
        }
        if let Some(event) = transcription {
            push(
                extract::transcription(&event, caller_for("post_call_transcription")),
                "post_call_transcription.json",
            );
        }
        // Only decoded audio counts: the audio route serves audio.mp3.
        if dir.join("audio.mp3").is_file() {
            out.audio.push(id);
        }
    }
    Ok(out)
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
        .map_err(CallsError::Task)?
}
