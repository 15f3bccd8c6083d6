//! The [`EventLog`] port: the raw post-call events Recall acknowledged,
//! kept durably, with their processing state. It is the source of truth
//! of every memory and call, and the worker's queue.
//!
//! What a log keeps, per conversation: each event exactly as received
//! (one per `type`: a redelivery is a duplicate), its state (pending,
//! done with a small record, failed with the reason), the caller the
//! service attributed the call to, and the decoded call audio. Beside
//! them, the quarantine: bodies refused at ingest, kept for inspection
//! within caps.
//!
//! The rules every implementation keeps are the conformance suite
//! [`crate::conformance::events`]. Two implementations ship: the
//! filesystem [`PayloadStore`](crate::PayloadStore) (the embedded default)
//! and [`InMemoryEventLog`].

use std::fmt;
use std::io::{self, Read};

use async_trait::async_trait;
use recall_model::{
    ConversationId, FieldProblem, PhoneNumber, PostCallWebhookRequest, UnixTimestamp, WebhookType,
};
use tokio::io::AsyncRead;

use crate::envelope::{BodyError, read_envelope_from};

#[cfg(feature = "conformance")]
pub mod conformance;
mod in_memory;

pub use in_memory::InMemoryEventLog;

/// The default cap on quarantined bodies, by count.
pub const QUARANTINE_MAX_FILES: u64 = 1_000;
/// The default cap on quarantined bodies, by bytes (256 MiB).
pub const QUARANTINE_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Where Recall keeps the events it acknowledged. See the
/// [module](self) for what it holds.
///
/// Every method that writes is durable when it returns: an event
/// [`append`](StagedBody::append)ed survives a crash, and so does a state
/// recorded by [`mark_done`](Self::mark_done) or
/// [`mark_failed`](Self::mark_failed).
#[async_trait]
pub trait EventLog: Send + Sync + fmt::Debug + 'static {
    /// Starts receiving a body. Dropping the staged body without
    /// appending it leaves nothing behind.
    async fn stage(&self) -> io::Result<StagedEvent>;

    /// Checks that the log can take writes (readiness).
    async fn probe(&self) -> io::Result<()>;

    /// Every conversation with stored events, in id order.
    async fn conversations(&self) -> io::Result<Vec<ConversationId>>;

    /// The stored events of a conversation with their state, in type
    /// order. Empty when the conversation is unknown.
    async fn events(&self, conversation: &ConversationId) -> io::Result<Vec<StoredEvent>>;

    /// Reads a stored event, typed and field by field (a field that
    /// cannot be read is skipped and reported). `Ok(None)` when no such
    /// event is stored.
    ///
    /// # Errors
    /// [`StoredEventError::Io`] when it cannot be read now;
    /// [`StoredEventError::Unusable`] when nothing usable is in it.
    async fn read_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> Result<Option<(PostCallWebhookRequest, Vec<FieldProblem>)>, StoredEventError>;

    /// The stored body of an event, byte for byte as it was received, for
    /// streaming (e.g. to copy the log elsewhere); `None` when no such
    /// event is stored.
    async fn open_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> io::Result<Option<AudioReader>>;

    /// Records that an event was processed, with a small JSON `record`
    /// of what came of it; clears a failure recorded before.
    async fn mark_done(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        record: &str,
    ) -> io::Result<()>;

    /// Records that an event's processing failed for good, and why. It
    /// stays failed until [`mark_done`](Self::mark_done).
    async fn mark_failed(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        reason: &str,
    ) -> io::Result<()>;

    /// Why an event failed for good; `None` when it has not.
    async fn failure_reason(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> io::Result<Option<String>>;

    /// The caller the service attributed a conversation to, if any.
    async fn caller(&self, conversation: &ConversationId) -> io::Result<Option<PhoneNumber>>;

    /// Records the caller of a conversation (replacing any recorded).
    async fn record_caller(
        &self,
        conversation: &ConversationId,
        caller: &PhoneNumber,
    ) -> io::Result<()>;

    /// Decodes the stored `post_call_audio` event's `data.full_audio`
    /// into the conversation's audio; returns its length in bytes.
    ///
    /// # Errors
    /// [`AudioError::Invalid`] when the event holds no decodable audio;
    /// [`AudioError::Io`] when it could not be read or written now.
    async fn decode_audio(&self, conversation: &ConversationId) -> Result<u64, AudioError>;

    /// Whether the conversation's decoded audio is stored.
    async fn has_audio(&self, conversation: &ConversationId) -> io::Result<bool>;

    /// The conversation's decoded audio (MP3), for streaming; `None` when
    /// none is stored.
    async fn open_audio(&self, conversation: &ConversationId) -> io::Result<Option<StoredAudio>>;

    /// Removes everything stored for a conversation: events, states,
    /// caller, audio. `None` when nothing was stored.
    async fn remove_conversation(
        &self,
        conversation: &ConversationId,
    ) -> io::Result<Option<RemovedConversation>>;

    /// Replaces the stored body of an event by a redacted one (what
    /// [`redact`](crate::redact) keeps of it), keeping its state, record,
    /// failure and arrival time. Only deletions use it: the log never
    /// changes a body otherwise.
    ///
    /// # Errors
    /// `NotFound` when no such event is stored.
    async fn redact_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        redacted: &[u8],
    ) -> io::Result<()>;

    /// Removes the conversation's decoded audio; `false` when none was
    /// stored. The events stay.
    async fn remove_audio(&self, conversation: &ConversationId) -> io::Result<bool>;

    /// Records what is to be deleted of a conversation and when, and what
    /// was (replacing any record). Durable when it returns, so a pending
    /// deletion survives a restart; removed with the conversation.
    ///
    /// # Errors
    /// `NotFound` when no events are stored for the conversation.
    async fn record_deletion(
        &self,
        conversation: &ConversationId,
        record: &DeletionRecord,
    ) -> io::Result<()>;

    /// The conversation's deletion record, if any.
    async fn deletion(&self, conversation: &ConversationId) -> io::Result<Option<DeletionRecord>>;

    /// The conversations whose scheduled deletion is due at `now` and not
    /// carried out yet ([`DeletionRecord::outstanding`]), in id order. By
    /// default, a scan of every conversation; a log that can find them
    /// directly should.
    async fn deletions_due(&self, now: UnixTimestamp) -> io::Result<Vec<ConversationId>> {
        let mut due = Vec::new();
        for conversation in self.conversations().await? {
            if let Some(record) = self.deletion(&conversation).await?
                && record.outstanding(now).any()
            {
                due.push(conversation);
            }
        }
        Ok(due)
    }

    /// The conversations with an event of `part` received before
    /// `before` whose `part` is not deleted yet, in id order: what a
    /// retention window removes. For [`RawPart::Audio`], the
    /// conversations with a `post_call_audio` event; for
    /// [`RawPart::Transcript`], those with any other event. By default, a
    /// scan of every conversation; a log that can find them directly
    /// should.
    async fn retention_due(
        &self,
        part: RawPart,
        before: UnixTimestamp,
    ) -> io::Result<Vec<ConversationId>> {
        let before = u128::try_from(before.as_secs()).unwrap_or(0) * 1_000_000_000;
        let mut due = Vec::new();
        for conversation in self.conversations().await? {
            let old = self
                .events(&conversation)
                .await?
                .iter()
                .any(|e| e.received_nanos < before && part.covers(&e.kind));
            if !old {
                continue;
            }
            let deleted = self
                .deletion(&conversation)
                .await?
                .is_some_and(|r| r.deleted_at(part).is_some());
            if !deleted {
                due.push(conversation);
            }
        }
        Ok(due)
    }

    /// The quarantined bodies in arrival order, after the one whose
    /// [`id`](QuarantinedBody::id) is `after`, at most `limit`.
    async fn quarantined(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Vec<QuarantinedBody>>;

    /// Removes the quarantined bodies that mention `number` as a whole
    /// number; returns how many.
    async fn forget_quarantined(&self, number: &PhoneNumber) -> io::Result<u64>;

    /// Removes the quarantined bodies refused before `before` (by the
    /// time in their [`id`](QuarantinedBody::id)); returns how many. The
    /// retention window of raw events applies to them too.
    async fn forget_quarantined_before(&self, before: UnixTimestamp) -> io::Result<u64>;

    /// What the quarantine holds now, and its caps.
    fn quarantine_usage(&self) -> QuarantineUsage;

    /// Every event not processed yet (pending or failed), in no order:
    /// what the worker loads at start. By default, a scan of every
    /// conversation; a log that can find them directly should.
    async fn unfinished(&self) -> io::Result<Vec<StoredEvent>> {
        let mut found = Vec::new();
        for conversation in self.conversations().await? {
            let events = self.events(&conversation).await?;
            found.extend(events.into_iter().filter(|e| e.state != EventState::Done));
        }
        Ok(found)
    }

    /// Whether other processes append to and process this log too (the
    /// replicas of a deployment on one database). Their worker then looks
    /// for pending events every little while, since a replica that died
    /// may have left some, and [`claim`](Self::claim)s each before
    /// processing it. A log of one process is not shared (the default).
    fn shared(&self) -> bool {
        false
    }

    /// Takes a pending event for this process for `lease`: `false` when it
    /// is done, failed, gone, or held by another process whose lease has
    /// not run out. Marking it done or failed, or
    /// [`release`](Self::release), ends the claim; a process that dies
    /// holding one loses it when the lease runs out. A log that is not
    /// [`shared`](Self::shared) has no one to share with: every claim
    /// succeeds (the default).
    async fn claim(
        &self,
        _conversation: &ConversationId,
        _kind: &WebhookType,
        _lease: std::time::Duration,
    ) -> io::Result<bool> {
        Ok(true)
    }

    /// Gives back a claim this process holds without finishing the event
    /// (its processing is to be retried), so that any process may take it.
    async fn release(&self, _conversation: &ConversationId, _kind: &WebhookType) -> io::Result<()> {
        Ok(())
    }
}

/// A reader of a call's decoded audio, or of a stored event's body.
pub type AudioReader = Box<dyn AsyncRead + Send + Unpin>;

/// The decoded audio of a call, as [`EventLog::open_audio`] gives it.
pub struct StoredAudio {
    /// Its length in bytes.
    pub len: u64,
    /// Its bytes.
    pub reader: AudioReader,
}

impl fmt::Debug for StoredAudio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredAudio")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// A body being received, from [`EventLog::stage`]. Written chunk by
/// chunk as it arrives; handed to
/// [`Service::ingest`](crate::Service::ingest) once complete. Dropping it
/// instead discards it.
pub struct StagedEvent {
    body: Box<dyn StagedBody>,
    len: u64,
}

impl fmt::Debug for StagedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedEvent")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl StagedEvent {
    /// A staged event over an implementation's body.
    pub fn new(body: Box<dyn StagedBody>) -> Self {
        Self { body, len: 0 }
    }

    /// Appends a chunk of the body.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.body.write(chunk).await?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) async fn append(self) -> io::Result<Appended> {
        self.body.append().await
    }
}

/// An implementation's body being received (see [`StagedEvent`]).
#[async_trait]
pub trait StagedBody: Send {
    /// Appends a chunk.
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()>;

    /// Makes the complete body durable and files it: checked with
    /// [`check_envelope`], then stored as its conversation's event of its
    /// type, or, when already stored, dropped as a duplicate, or, when
    /// refused, moved to the quarantine with the reason.
    ///
    /// Two deliveries of one event racing store it once: exactly one is
    /// [`Appended::Stored`].
    async fn append(self: Box<Self>) -> io::Result<Appended>;
}

/// What [`StagedBody::append`] did with a body.
#[derive(Debug)]
#[non_exhaustive]
pub enum Appended {
    /// Stored: durable, and pending.
    Stored {
        /// Its conversation.
        conversation: ConversationId,
        /// Its type.
        kind: WebhookType,
    },
    /// The same conversation and type were stored already; nothing
    /// changed.
    Duplicate {
        /// Its conversation.
        conversation: ConversationId,
        /// Its type.
        kind: WebhookType,
    },
    /// Refused by [`check_envelope`] and quarantined (unless that
    /// failed: `quarantined` says).
    Refused {
        /// Why, naming the field or rule.
        reason: String,
        /// Where the body was kept, or why it could not be.
        quarantined: io::Result<String>,
    },
}

/// Why [`check_envelope`] refused a body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The body is not an event Recall can file: the reason names the
    /// field or rule.
    #[error("{0}")]
    Invalid(String),
    /// The body could not be read.
    #[error("reading the body: {0}")]
    Io(#[source] io::Error),
}

/// Reads and checks a body's envelope, streaming: its `type` (1 to 64
/// ASCII letters, digits, `_` or `-`) and `data.conversation_id` (a valid
/// id not starting with `_` or `.`), wherever they are in the object.
/// Every [`StagedBody::append`] files a body by this.
///
/// ```
/// use recall_service::event_log::check_envelope;
///
/// let body = br#"{"type":"post_call_transcription","data":{"conversation_id":"conv_1"}}"#;
/// let (conversation, kind) = check_envelope(&body[..]).unwrap();
/// assert_eq!((conversation.as_str(), kind.as_str()), ("conv_1", "post_call_transcription"));
/// let refused = check_envelope(&br#"{"type":"x","data":{}}"#[..]).unwrap_err();
/// assert_eq!(refused.to_string(), "`data.conversation_id` is missing");
/// ```
///
/// # Errors
/// [`EnvelopeError::Invalid`] naming what is wrong, or
/// [`EnvelopeError::Io`].
pub fn check_envelope(body: impl Read) -> Result<(ConversationId, WebhookType), EnvelopeError> {
    let mut body = io::BufReader::with_capacity(64 * 1024, body);
    if io::BufRead::fill_buf(&mut body)
        .map_err(EnvelopeError::Io)?
        .is_empty()
    {
        return Err(EnvelopeError::Invalid("the body is empty".into()));
    }
    let envelope = read_envelope_from(body).map_err(|e| match e {
        BodyError::Invalid(reason) => EnvelopeError::Invalid(reason),
        BodyError::Io(e) => EnvelopeError::Io(e),
    })?;
    check_type(&envelope.kind).map_err(EnvelopeError::Invalid)?;
    let conversation =
        check_conversation(&envelope.conversation_id).map_err(EnvelopeError::Invalid)?;
    Ok((conversation, WebhookType::parse(&envelope.kind)))
}

/// A `type` is used as a name: ASCII letters, digits, `_` and `-`.
fn check_type(kind: &str) -> Result<(), String> {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid type: must be 1 to 64 ASCII letters, digits, '_' or '-' (got {kind:?})"
        ))
    }
}

fn check_conversation(raw: &str) -> Result<ConversationId, String> {
    let id = ConversationId::parse(raw).map_err(|e| format!("data.conversation_id: {e}"))?;
    if raw.starts_with('_') || raw.starts_with('.') {
        return Err(format!(
            "data.conversation_id: must not start with '_' or '.' (reserved) (got {raw:?})"
        ));
    }
    Ok(id)
}

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoredEventError {
    /// The log could not be read; retrying may help.
    #[error("payload store: {0}")]
    Io(#[from] io::Error),
    /// Nothing usable is in the stored body; retrying cannot help.
    #[error("{0}")]
    Unusable(String),
}

/// Reads a stored body typed, as every implementation of
/// [`EventLog::read_event`] does.
///
/// # Errors
/// As [`EventLog::read_event`].
pub fn parse_stored_event(
    body: impl Read,
) -> Result<(PostCallWebhookRequest, Vec<FieldProblem>), StoredEventError> {
    let value: serde_json::Value =
        serde_json::from_reader(io::BufReader::new(body)).map_err(|e| {
            if e.is_io() {
                StoredEventError::Io(e.into())
            } else {
                StoredEventError::Unusable(format!("not a JSON event: {e}"))
            }
        })?;
    PostCallWebhookRequest::from_value_tolerant(value)
        .map_err(|e| StoredEventError::Unusable(format!("nothing usable in the event: {e}")))
}

/// Why [`EventLog::decode_audio`] decoded nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The event holds no decodable `data.full_audio`; retrying cannot
    /// help.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing failed; retrying may help.
    #[error("payload store: {0}")]
    Io(#[from] io::Error),
}

/// Decodes a `post_call_audio` body's `data.full_audio` (base64) into
/// `out`, streaming, as every implementation of
/// [`EventLog::decode_audio`] does; returns the decoded length.
///
/// # Errors
/// As [`EventLog::decode_audio`].
pub fn decode_audio(body: impl Read, out: &mut impl io::Write) -> Result<u64, AudioError> {
    crate::envelope::decode_audio_from(body, out).map_err(|e| match e {
        BodyError::Invalid(reason) => AudioError::Invalid(reason),
        BodyError::Io(e) => AudioError::Io(e),
    })
}

/// Whether `body` mentions `number` as a whole number (not as the start
/// of a longer one), reading it in bounded chunks.
///
/// # Errors
/// When the body cannot be read.
pub fn mentions_number(mut body: impl Read, number: &PhoneNumber) -> io::Result<bool> {
    let needle = number.as_str().as_bytes();
    let mut window: Vec<u8> = Vec::with_capacity(64 * 1024 + needle.len());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body.read(&mut buf)?;
        let eof = n == 0;
        window.extend_from_slice(&buf[..n]);
        let mut from = 0;
        while let Some(at) = window[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
        {
            match window.get(at + needle.len()) {
                Some(next) if next.is_ascii_digit() => from = at + 1,
                Some(_) => return Ok(true),
                None if eof => return Ok(true),
                // The byte after it has not been read yet.
                None => break,
            }
        }
        if eof {
            return Ok(false);
        }
        let keep = needle.len().min(window.len());
        window.drain(..window.len() - keep);
    }
}

/// Processing state of a stored event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventState {
    /// Not processed yet (or failed with a retryable error).
    Pending,
    /// Processed.
    Done,
    /// Processing failed for good (see [`EventLog::failure_reason`]).
    Failed,
}

/// A stored event and its state.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredEvent {
    /// Its conversation.
    pub conversation: ConversationId,
    /// Its `type`, as received.
    pub kind: WebhookType,
    /// Its processing state.
    pub state: EventState,
    /// When it was stored, in nanoseconds since the epoch: events are
    /// processed and replayed in this order.
    pub received_nanos: u128,
}

/// What [`EventLog::remove_conversation`] removed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RemovedConversation {
    /// Stored events (raw payloads).
    pub events: u64,
    /// Whether decoded audio was stored.
    pub audio: bool,
}

/// One of the raw copies of a call that deletions remove.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RawPart {
    /// The stored event bodies (transcript, personal data), and the
    /// transcript in the call index.
    Transcript,
    /// The decoded audio, and the audio in the `post_call_audio` body.
    Audio,
}

impl RawPart {
    /// Whether a stored event of `kind` holds this part.
    pub fn covers(self, kind: &WebhookType) -> bool {
        (*kind == WebhookType::PostCallAudio) == (self == Self::Audio)
    }
}

/// What is to be deleted of a conversation and when (ElevenLabs'
/// `metadata.deletion_settings`), and what was deleted and when (by that
/// schedule or a retention window), as [`EventLog::record_deletion`]
/// keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DeletionRecord {
    /// When the scheduled deletion is due; `None` without a schedule.
    pub due: Option<UnixTimestamp>,
    /// Whether the schedule deletes the transcript and personal data.
    pub transcript: bool,
    /// Whether the schedule deletes the audio.
    pub audio: bool,
    /// When the stored events and the transcript were deleted.
    pub transcript_deleted_at: Option<UnixTimestamp>,
    /// When the audio was deleted.
    pub audio_deleted_at: Option<UnixTimestamp>,
}

/// The parts of a call a deletion is to remove.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Outstanding {
    /// The stored events and the transcript.
    pub transcript: bool,
    /// The audio.
    pub audio: bool,
}

impl Outstanding {
    /// Whether anything is to be removed.
    pub fn any(self) -> bool {
        self.transcript || self.audio
    }
}

impl DeletionRecord {
    /// When `part` was deleted.
    pub fn deleted_at(&self, part: RawPart) -> Option<UnixTimestamp> {
        match part {
            RawPart::Transcript => self.transcript_deleted_at,
            RawPart::Audio => self.audio_deleted_at,
        }
    }

    /// What the schedule still has to delete at `now`: nothing before it
    /// is due, nothing already deleted.
    ///
    /// ```
    /// use recall_model::UnixTimestamp;
    /// use recall_service::event_log::DeletionRecord;
    ///
    /// let at = |s| UnixTimestamp::from_secs(s).unwrap();
    /// let record = DeletionRecord { due: Some(at(100)), transcript: true, audio: true, ..Default::default() };
    /// assert!(!record.outstanding(at(99)).any());
    /// assert!(record.outstanding(at(100)).transcript);
    /// let done = DeletionRecord { audio_deleted_at: Some(at(100)), ..record };
    /// assert!(!done.outstanding(at(200)).audio);
    /// ```
    pub fn outstanding(&self, now: UnixTimestamp) -> Outstanding {
        let due = self.due.is_some_and(|due| due <= now);
        Outstanding {
            transcript: due && self.transcript && self.transcript_deleted_at.is_none(),
            audio: due && self.audio && self.audio_deleted_at.is_none(),
        }
    }

    /// The record as one line of JSON, as the logs that keep it as text
    /// store it (times in unix seconds).
    pub fn to_json(&self) -> String {
        let secs = |t: Option<UnixTimestamp>| t.map(UnixTimestamp::as_secs);
        serde_json::json!({
            "due": secs(self.due),
            "transcript": self.transcript,
            "audio": self.audio,
            "transcript_deleted_at": secs(self.transcript_deleted_at),
            "audio_deleted_at": secs(self.audio_deleted_at),
        })
        .to_string()
    }

    /// Reads [`to_json`](Self::to_json)'s text.
    ///
    /// # Errors
    /// `InvalidData` when it is not such a record.
    pub fn from_json(text: &str) -> io::Result<Self> {
        let invalid = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unreadable deletion record: {what}"),
            )
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(&e.to_string()))?;
        let time = |key: &str| match value.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .and_then(|s| UnixTimestamp::from_secs(s).ok())
                .map(Some)
                .ok_or_else(|| invalid(key)),
        };
        let flag = |key: &str| value.get(key).and_then(serde_json::Value::as_bool);
        Ok(Self {
            due: time("due")?,
            transcript: flag("transcript").ok_or_else(|| invalid("transcript"))?,
            audio: flag("audio").ok_or_else(|| invalid("audio"))?,
            transcript_deleted_at: time("transcript_deleted_at")?,
            audio_deleted_at: time("audio_deleted_at")?,
        })
    }
}

/// A body kept in quarantine.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QuarantinedBody {
    /// Its id, ordered by arrival (`<unix s>-<ns>-<uuid>` on both
    /// implementations).
    pub id: String,
    /// Why it was refused.
    pub reason: String,
    /// Its size.
    pub bytes: u64,
    /// When it was refused.
    pub received: Option<UnixTimestamp>,
}

/// A new quarantine id: seconds, then nanoseconds, so that id order is
/// arrival order, then a uuid (`<unix s>-<ns>-<uuid>`, as every log makes
/// them).
pub fn quarantine_id() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{:09}-{}",
        since_epoch.as_secs(),
        since_epoch.subsec_nanos(),
        uuid::Uuid::new_v4()
    )
}

/// When a quarantined body with this [`quarantine_id`] arrived.
pub fn quarantine_received(id: &str) -> Option<UnixTimestamp> {
    id.split('-')
        .next()
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|t| UnixTimestamp::from_secs(t).ok())
}

/// What the quarantine holds, and its caps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct QuarantineUsage {
    /// Bodies kept.
    pub files: u64,
    /// Their size in bytes.
    pub bytes: u64,
    /// Bodies removed (oldest first) to stay within the caps since start.
    pub evicted: u64,
    /// The cap by count.
    pub max_files: u64,
    /// The cap by bytes.
    pub max_bytes: u64,
}

impl QuarantineUsage {
    /// Empty, with the default caps.
    pub fn new() -> Self {
        Self {
            files: 0,
            bytes: 0,
            evicted: 0,
            max_files: QUARANTINE_MAX_FILES,
            max_bytes: QUARANTINE_MAX_BYTES,
        }
    }

    /// Whether past either cap.
    pub fn over(&self) -> bool {
        self.files > self.max_files || self.bytes > self.max_bytes
    }
}

impl Default for QuarantineUsage {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number() -> PhoneNumber {
        PhoneNumber::parse("+16129782029").unwrap()
    }

    #[test]
    fn an_empty_body_is_named() {
        let refused = check_envelope(&b""[..]).unwrap_err().to_string();
        assert_eq!(refused, "the body is empty");
    }

    #[test]
    fn types_must_be_safe_names() {
        assert!(check_type("post_call_transcription").is_ok());
        assert!(check_type("post-call-video2").is_ok());
        assert!(check_type("../x").unwrap_err().contains("invalid type"));
        assert!(check_type("").is_err());
        assert!(check_type("a b").is_err());
    }

    #[test]
    fn reserved_and_traversing_conversation_ids_are_refused() {
        assert!(check_conversation("conv_1").is_ok());
        for bad in ["../etc", "_incoming", ".hidden", "a/b", ""] {
            let reason = check_conversation(bad).unwrap_err();
            assert!(
                reason.starts_with("data.conversation_id"),
                "{bad}: {reason}"
            );
        }
    }

    #[test]
    fn a_number_is_found_only_as_a_whole_number() {
        let n = number();
        assert!(mentions_number(&b"{\"caller\":\"+16129782029\""[..], &n).unwrap());
        assert!(mentions_number(&b"+16129782029"[..], &n).unwrap());
        assert!(!mentions_number(&b"+161297820291"[..], &n).unwrap());
        assert!(!mentions_number(&b"+1612978202"[..], &n).unwrap());
        assert!(!mentions_number(&b""[..], &n).unwrap());
    }

    #[test]
    fn a_number_across_chunk_boundaries_is_found() {
        let n = number();
        for offset in [64 * 1024 - 12, 64 * 1024 - 5, 64 * 1024 - 1, 64 * 1024] {
            let mut body = vec![b'x'; offset];
            body.extend_from_slice(n.as_str().as_bytes());
            body.extend_from_slice(b"\"}");
            assert!(mentions_number(&body[..], &n).unwrap(), "{offset}");
            // Followed by a digit just after the boundary: another number.
            let mut longer = vec![b'x'; offset];
            longer.extend_from_slice(n.as_str().as_bytes());
            longer.push(b'7');
            assert!(!mentions_number(&longer[..], &n).unwrap(), "{offset}");
        }
    }
}
