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

use async_trait::async_trait;
use recall_model::{
    CallInitiationFailureData, ConversationId, PhoneNumber, PostCallData, PostCallEvent,
    PostCallWebhookRequest, UnixTimestamp, WebhookType,
};

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

/// Why a call index operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallIndexError {
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
/// transcription.
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

    /// Removes every call of one caller and returns their conversations.
    ///
    /// # Errors
    /// [`CallIndexError`].
    async fn forget_caller(
        &self,
        caller: &PhoneNumber,
    ) -> Result<Vec<ConversationId>, CallIndexError>;
}
