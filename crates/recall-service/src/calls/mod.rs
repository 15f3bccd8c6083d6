//! The call index port: one row per call, for the operator's read API
//! (call list, transcript, analytics), fed by the worker with typed
//! events.
//!
//! The service owns it: the worker records each event once processed
//! ([`CallIndex::record`]), [`Service::reindex`](crate::Service::reindex)
//! rebuilds it by replaying the stored events through the same caller
//! rule, and [`Service::erase_caller`](crate::Service::erase_caller)
//! removes a caller's rows with their memories and payloads. Adapters
//! (recall-calls' SQLite index, a database) implement the trait and never
//! read payload files or decide who a call belongs to.

mod in_memory;
mod record;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use recall_model::ui::{CallAnalytics, CallDetail, CallSummary, DailyCalls};
use recall_model::{
    AgentId, CallInitiationFailureData, ConversationId, PhoneNumber, PostCallData, PostCallEvent,
    PostCallWebhookRequest, UnixTimestamp, WebhookType,
};

pub use in_memory::InMemoryCallIndex;
pub use record::CallRecord;

/// The page size of [`CallQuery`] when it sets none.
pub const DEFAULT_CALL_PAGE: u32 = 50;

/// The largest page a [`CallQuery`] may ask for.
pub const MAX_CALL_PAGE: u32 = 200;

/// A stored event once the worker has processed it, as the call index
/// and observers are told of it.
#[derive(Clone, PartialEq, Debug)]
pub struct ProcessedEvent {
    /// The event's conversation.
    pub conversation: ConversationId,
    /// The event's type.
    pub kind: WebhookType,
    /// Who the call was with, by Recall's one caller rule
    /// ([`PostCallData::caller`], [`CallInitiationFailureData::party`]):
    /// `None` when the call has no usable caller identity (withheld,
    /// missing) and for audio.
    pub caller: Option<PhoneNumber>,
    /// The envelope's `event_timestamp`, when valid.
    pub event_time: Option<UnixTimestamp>,
    /// What the event says, typed.
    pub data: ProcessedData,
}

/// The typed content of a [`ProcessedEvent`].
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum ProcessedData {
    /// A `post_call_transcription`: the call connected.
    Transcription(Box<PostCallData>),
    /// A `call_initiation_failure`: the call never connected.
    InitiationFailure(Box<CallInitiationFailureData>),
    /// A `post_call_audio` whose audio is now stored (the audio itself is
    /// read from the payload store, never carried here).
    Audio,
    /// A type this version keeps but does not process.
    Other,
}

impl ProcessedEvent {
    /// The event of `conversation` as read from its stored body, with its
    /// caller decided by the one caller rule. Audio events carry no
    /// content ([`ProcessedData::Audio`]).
    pub fn from_request(conversation: ConversationId, request: PostCallWebhookRequest) -> Self {
        let event_time = request.event_time().ok();
        let kind = request.webhook_type();
        let (caller, data) = match request.data {
            PostCallEvent::Transcription(data) => {
                (data.caller().ok(), ProcessedData::Transcription(data))
            }
            PostCallEvent::InitiationFailure(data) => (
                data.party(),
                ProcessedData::InitiationFailure(Box::new(data)),
            ),
            PostCallEvent::Audio(_) => (None, ProcessedData::Audio),
            PostCallEvent::Unknown { .. } => (None, ProcessedData::Other),
        };
        Self {
            conversation,
            kind,
            caller,
            event_time,
            data,
        }
    }

    /// A `post_call_audio` event of `conversation`: its audio is stored.
    pub fn audio_stored(conversation: ConversationId) -> Self {
        Self {
            conversation,
            kind: WebhookType::PostCallAudio,
            caller: None,
            event_time: None,
            data: ProcessedData::Audio,
        }
    }
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

/// A page of calls, newest first.
#[derive(Clone, PartialEq, Debug)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass this as the next query's `cursor` to get the following page;
    /// `None` on the last page. Cursors stay valid when calls are added.
    pub next_cursor: Option<String>,
}

impl Page<IndexedCall> {
    /// The page of up to `limit` calls out of `fetched`, which holds at
    /// most `limit + 1` newest first: the extra one only tells that a
    /// next page exists, whose cursor is the last call kept.
    pub fn of_fetched(mut fetched: Vec<IndexedCall>, limit: usize) -> Self {
        let more = fetched.len() > limit;
        fetched.truncate(limit);
        let last = fetched.last().filter(|_| more);
        let next_cursor =
            last.map(|c| encode_cursor(c.start_time.as_secs(), &c.call.conversation_id));
        Self {
            items: fetched,
            next_cursor,
        }
    }
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
    /// Page size, 1 to [`MAX_CALL_PAGE`]; [`DEFAULT_CALL_PAGE`] when `None`.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl CallQuery {
    /// The page size asked for, checked.
    ///
    /// # Errors
    /// [`CallIndexError::InvalidLimit`] outside `1..=MAX_CALL_PAGE`.
    pub fn page_size(&self) -> Result<u32, CallIndexError> {
        let limit = self.limit.unwrap_or(DEFAULT_CALL_PAGE);
        if (1..=MAX_CALL_PAGE).contains(&limit) {
            Ok(limit)
        } else {
            Err(CallIndexError::InvalidLimit(limit))
        }
    }

    /// Where the page starts: after the call at `(start time, conversation)`
    /// of the cursor, in newest-first order.
    ///
    /// # Errors
    /// [`CallIndexError::InvalidCursor`] for a cursor no page handed out.
    pub fn after(&self) -> Result<Option<(i64, ConversationId)>, CallIndexError> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// The cursor of a page that ends with the call at `start_time` of
/// `conversation` (every [`CallIndex`] of this workspace hands out this
/// format; another may use its own).
pub fn encode_cursor(start_time: i64, conversation: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{start_time}:{conversation}"))
}

fn decode_cursor(raw: &str) -> Result<(i64, ConversationId), CallIndexError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| CallIndexError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| CallIndexError::InvalidCursor)?;
    let (start, id) = text.split_once(':').ok_or(CallIndexError::InvalidCursor)?;
    let start: i64 = start.parse().map_err(|_| CallIndexError::InvalidCursor)?;
    let id = ConversationId::parse(id).map_err(|_| CallIndexError::InvalidCursor)?;
    Ok((start, id))
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

/// Why a call index operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallIndexError {
    /// A paging cursor that the index did not hand out (or was altered).
    #[error("invalid cursor: not one returned by a previous page")]
    InvalidCursor,
    /// A page size outside `1..=MAX_CALL_PAGE`.
    #[error("invalid limit: must be from 1 to {MAX_CALL_PAGE} (got {0})")]
    InvalidLimit(u32),
    /// The event cannot be indexed (no valid agent id, for instance); the
    /// text names the field.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The index could not be read or written.
    #[error("call index unavailable: {reason}")]
    Unavailable {
        /// What failed, for the log.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl CallIndexError {
    /// An [`Unavailable`](Self::Unavailable) error caused by `source`.
    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable {
            reason: source.to_string(),
            source: Some(Box::new(source)),
        }
    }
}

/// The call index port.
///
/// Implementations are idempotent: recording the same event again changes
/// nothing (events are delivered at least once). A transcription replaces
/// an initiation failure of the same conversation; a failure never
/// replaces a transcription; audio may arrive before or after the
/// transcription. What a call's row holds is decided by
/// [`CallRecord::from_event`], the same for every implementation.
///
/// Reads, as the operator API shows them:
///
/// * `list_calls`: newest first by start time, then conversation id
///   (descending); time ranges include both ends.
/// * `analytics`: `total_calls` counts calls that never connected too;
///   `success_rate` is the share whose analysis said `success` (0 without
///   calls); `avg_duration` is the mean of the whole seconds of the calls
///   that report one (0 when none do); `total_cost` the sum of costs;
///   `data_collected` counts each (field id, value) once per call (one
///   value per field and call, the last given), `null` never, ordered by
///   count (highest first), then field id, then the value's JSON text.
/// * `daily`: calls and successful calls per UTC day, oldest day first.
///
/// [`conformance`] checks all of it (feature `conformance`).
#[async_trait]
pub trait CallIndex: Send + Sync + 'static {
    /// Records one processed event.
    ///
    /// # Errors
    /// [`CallIndexError`]; the worker logs it and goes on (a reindex
    /// repairs the index).
    async fn record(&self, event: &ProcessedEvent) -> Result<(), CallIndexError>;

    /// Replaces the whole index with the events received from `events`
    /// (until the sender is dropped), atomically: readers see the old
    /// index until the new one is complete. Returns how many calls the new
    /// index holds.
    ///
    /// # Errors
    /// [`CallIndexError`]; the old index is kept.
    async fn rebuild(
        &self,
        events: tokio::sync::mpsc::Receiver<ProcessedEvent>,
    ) -> Result<u64, CallIndexError>;

    /// Removes every call of one caller (with its collected values and
    /// audio mark) and returns their conversations, newest first.
    ///
    /// # Errors
    /// [`CallIndexError`].
    async fn forget_caller(
        &self,
        caller: &PhoneNumber,
    ) -> Result<Vec<ConversationId>, CallIndexError>;

    /// Records that a call's audio is no longer stored (deleted); `false`
    /// when it was not marked. The call stays.
    ///
    /// # Errors
    /// [`CallIndexError`].
    async fn unmark_audio(&self, conversation: &ConversationId) -> Result<bool, CallIndexError>;

    /// The callers whose newest call started before `before` (none
    /// since), in number order: those a retention window forgets.
    ///
    /// # Errors
    /// [`CallIndexError`].
    async fn callers_silent_since(
        &self,
        before: UnixTimestamp,
    ) -> Result<Vec<PhoneNumber>, CallIndexError>;

    /// Calls newest first, filtered and paged.
    ///
    /// # Errors
    /// [`CallIndexError::InvalidLimit`], [`CallIndexError::InvalidCursor`].
    async fn list_calls(&self, query: CallQuery) -> Result<Page<IndexedCall>, CallIndexError>;

    /// One call with its transcript, or `None` when not indexed.
    ///
    /// # Errors
    /// [`CallIndexError`].
    async fn get_call(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<CallDetail>, CallIndexError>;

    /// Totals over the calls in range (see the trait's docs).
    ///
    /// # Errors
    /// [`CallIndexError`].
    async fn analytics(&self, query: AnalyticsQuery) -> Result<CallAnalytics, CallIndexError>;

    /// Calls and successful calls per UTC day, oldest day first.
    ///
    /// # Errors
    /// [`CallIndexError`].
    async fn daily(&self, query: AnalyticsQuery) -> Result<Vec<DailyCalls>, CallIndexError>;
}
