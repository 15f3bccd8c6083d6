//! [`InMemoryEventLog`]: the event log in memory, for tests and for
//! embedding Recall where durability comes from elsewhere.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use recall_model::{
    ConversationId, FieldProblem, PhoneNumber, PostCallWebhookRequest, UnixTimestamp, WebhookType,
};

use super::{
    Appended, AudioError, AudioReader, DeletionRecord, EnvelopeError, EventLog, EventState,
    QuarantineUsage, QuarantinedBody, RemovedConversation, StagedBody, StagedEvent, StoredAudio,
    StoredEvent, StoredEventError, check_envelope, decode_audio, mentions_number,
    parse_stored_event, quarantine_id, quarantine_received,
};

/// An [`EventLog`] in memory: nothing survives the process. It keeps the
/// same rules as the filesystem [`PayloadStore`](crate::PayloadStore)
/// (both pass [`crate::conformance::events`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use recall_service::event_log::{EventLog, InMemoryEventLog};
///
/// let log = InMemoryEventLog::new();
/// let mut staged = log.stage().await?;
/// staged.write(br#"{"type":"post_call_transcription","data":{"conversation_id":"conv_1"}}"#).await?;
/// drop(staged); // never appended: nothing is kept
/// assert!(log.conversations().await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemoryEventLog {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    conversations: BTreeMap<ConversationId, Conversation>,
    /// Quarantined bodies by id (arrival order): (body, reason).
    quarantine: BTreeMap<String, (Vec<u8>, String)>,
    usage: QuarantineUsage,
    /// Arrival order of stored events.
    clock: u128,
}

#[derive(Debug, Default)]
struct Conversation {
    /// By type name.
    events: BTreeMap<String, Event>,
    caller: Option<PhoneNumber>,
    audio: Option<Arc<Vec<u8>>>,
    deletion: Option<DeletionRecord>,
}

#[derive(Debug)]
struct Event {
    body: Arc<Vec<u8>>,
    state: EventState,
    failure: Option<String>,
    received_nanos: u128,
}

impl InMemoryEventLog {
    /// An empty log with the default quarantine caps.
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps the quarantine at `max_files` bodies and `max_bytes` bytes
    /// (the oldest go first; the newest is always kept).
    pub fn with_quarantine_limits(self, max_files: u64, max_bytes: u64) -> Self {
        {
            let mut state = self.state();
            state.usage.max_files = max_files.max(1);
            state.usage.max_bytes = max_bytes;
            state.enforce_caps();
        }
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn event_body(&self, conversation: &ConversationId, kind: &str) -> Option<Arc<Vec<u8>>> {
        self.state()
            .conversations
            .get(conversation)
            .and_then(|c| c.events.get(kind))
            .map(|e| Arc::clone(&e.body))
    }

    fn with_event<T>(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        f: impl FnOnce(&mut Event) -> T,
    ) -> io::Result<T> {
        self.state()
            .conversations
            .get_mut(conversation)
            .and_then(|c| c.events.get_mut(kind.as_str()))
            .map(f)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such stored event"))
    }
}

impl State {
    fn enforce_caps(&mut self) {
        while self.usage.over() && self.quarantine.len() > 1 {
            let Some((_, (body, _))) = self.quarantine.pop_first() else {
                break;
            };
            self.usage.files -= 1;
            self.usage.bytes -= body.len() as u64;
            self.usage.evicted += 1;
        }
    }
}

#[async_trait]
impl EventLog for InMemoryEventLog {
    async fn stage(&self) -> io::Result<StagedEvent> {
        Ok(StagedEvent::new(Box::new(Staged {
            log: self.clone(),
            body: Vec::new(),
        })))
    }

    async fn probe(&self) -> io::Result<()> {
        Ok(())
    }

    async fn conversations(&self) -> io::Result<Vec<ConversationId>> {
        Ok(self.state().conversations.keys().cloned().collect())
    }

    async fn events(&self, conversation: &ConversationId) -> io::Result<Vec<StoredEvent>> {
        Ok(self
            .state()
            .conversations
            .get(conversation)
            .map(|c| {
                c.events
                    .iter()
                    .map(|(kind, e)| StoredEvent {
                        conversation: conversation.clone(),
                        kind: WebhookType::parse(kind),
                        state: e.state,
                        received_nanos: e.received_nanos,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn read_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> Result<Option<(PostCallWebhookRequest, Vec<FieldProblem>)>, StoredEventError> {
        match self.event_body(conversation, kind.as_str()) {
            Some(body) => parse_stored_event(&body[..]).map(Some),
            None => Ok(None),
        }
    }

    async fn open_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> io::Result<Option<AudioReader>> {
        let body = self.event_body(conversation, kind.as_str());
        Ok(body.map(|b| Box::new(io::Cursor::new(ArcBytes(b))) as AudioReader))
    }

    async fn mark_done(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        _record: &str,
    ) -> io::Result<()> {
        self.with_event(conversation, kind, |e| {
            e.state = EventState::Done;
            e.failure = None;
        })
    }

    async fn mark_failed(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        reason: &str,
    ) -> io::Result<()> {
        self.with_event(conversation, kind, |e| {
            e.state = EventState::Failed;
            e.failure = Some(reason.to_owned());
        })
    }

    async fn failure_reason(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> io::Result<Option<String>> {
        Ok(self
            .state()
            .conversations
            .get(conversation)
            .and_then(|c| c.events.get(kind.as_str()))
            .and_then(|e| e.failure.clone()))
    }

    async fn caller(&self, conversation: &ConversationId) -> io::Result<Option<PhoneNumber>> {
        Ok(self
            .state()
            .conversations
            .get(conversation)
            .and_then(|c| c.caller.clone()))
    }

    async fn record_caller(
        &self,
        conversation: &ConversationId,
        caller: &PhoneNumber,
    ) -> io::Result<()> {
        match self.state().conversations.get_mut(conversation) {
            Some(c) => {
                c.caller = Some(caller.clone());
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no events stored for this conversation",
            )),
        }
    }

    async fn decode_audio(&self, conversation: &ConversationId) -> Result<u64, AudioError> {
        let body = self
            .event_body(conversation, WebhookType::PostCallAudio.as_str())
            .ok_or_else(|| {
                AudioError::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no post_call_audio event stored",
                ))
            })?;
        let mut audio = Vec::new();
        let bytes = decode_audio(&body[..], &mut audio)?;
        if let Some(c) = self.state().conversations.get_mut(conversation) {
            c.audio = Some(Arc::new(audio));
        }
        Ok(bytes)
    }

    async fn has_audio(&self, conversation: &ConversationId) -> io::Result<bool> {
        Ok(self
            .state()
            .conversations
            .get(conversation)
            .is_some_and(|c| c.audio.is_some()))
    }

    async fn open_audio(&self, conversation: &ConversationId) -> io::Result<Option<StoredAudio>> {
        let audio = self
            .state()
            .conversations
            .get(conversation)
            .and_then(|c| c.audio.clone());
        Ok(audio.map(|a| StoredAudio {
            len: a.len() as u64,
            reader: Box::new(io::Cursor::new(ArcBytes(a))) as AudioReader,
        }))
    }

    async fn remove_conversation(
        &self,
        conversation: &ConversationId,
    ) -> io::Result<Option<RemovedConversation>> {
        Ok(self
            .state()
            .conversations
            .remove(conversation)
            .map(|c| RemovedConversation {
                events: c.events.len() as u64,
                audio: c.audio.is_some(),
            }))
    }

    async fn redact_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        redacted: &[u8],
    ) -> io::Result<()> {
        self.with_event(conversation, kind, |e| e.body = Arc::new(redacted.to_vec()))
    }

    async fn remove_audio(&self, conversation: &ConversationId) -> io::Result<bool> {
        Ok(self
            .state()
            .conversations
            .get_mut(conversation)
            .and_then(|c| c.audio.take())
            .is_some())
    }

    async fn record_deletion(
        &self,
        conversation: &ConversationId,
        record: &DeletionRecord,
    ) -> io::Result<()> {
        match self.state().conversations.get_mut(conversation) {
            Some(c) => {
                c.deletion = Some(*record);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no events stored for this conversation",
            )),
        }
    }

    async fn deletion(&self, conversation: &ConversationId) -> io::Result<Option<DeletionRecord>> {
        Ok(self
            .state()
            .conversations
            .get(conversation)
            .and_then(|c| c.deletion))
    }

    async fn quarantined(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Vec<QuarantinedBody>> {
        Ok(self
            .state()
            .quarantine
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
            .take(limit)
            .map(|(id, (body, reason))| QuarantinedBody {
                id: id.clone(),
                reason: reason.clone(),
                bytes: body.len() as u64,
                received: quarantine_received(id),
            })
            .collect())
    }

    async fn forget_quarantined(&self, number: &PhoneNumber) -> io::Result<u64> {
        let mut state = self.state();
        let mut removed = 0;
        let mut bytes = 0;
        state.quarantine.retain(|_, (body, _)| {
            let mentions = mentions_number(&body[..], number).unwrap_or(false);
            if mentions {
                removed += 1;
                bytes += body.len() as u64;
            }
            !mentions
        });
        state.usage.files -= removed;
        state.usage.bytes -= bytes;
        Ok(removed)
    }

    async fn forget_quarantined_before(&self, before: UnixTimestamp) -> io::Result<u64> {
        let mut state = self.state();
        let (mut removed, mut bytes) = (0, 0);
        state.quarantine.retain(|id, (body, _)| {
            let old = quarantine_received(id).is_some_and(|at| at < before);
            if old {
                removed += 1;
                bytes += body.len() as u64;
            }
            !old
        });
        state.usage.files -= removed;
        state.usage.bytes -= bytes;
        Ok(removed)
    }

    fn quarantine_usage(&self) -> QuarantineUsage {
        self.state().usage
    }
}

/// Shared bytes readable through a cursor.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

struct Staged {
    log: InMemoryEventLog,
    body: Vec<u8>,
}

#[async_trait]
impl StagedBody for Staged {
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    async fn append(self: Box<Self>) -> io::Result<Appended> {
        let Staged { log, body } = *self;
        let checked = check_envelope(&body[..]);
        let mut state = log.state();
        let (conversation, kind) = match checked {
            Ok(envelope) => envelope,
            Err(EnvelopeError::Io(e)) => return Err(e),
            Err(e) => {
                let reason = e.to_string();
                let id = quarantine_id();
                state.usage.files += 1;
                state.usage.bytes += body.len() as u64;
                state.quarantine.insert(id.clone(), (body, reason.clone()));
                state.enforce_caps();
                return Ok(Appended::Refused {
                    reason,
                    quarantined: Ok(id),
                });
            }
        };
        state.clock += 1;
        let received_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .max(state.clock);
        state.clock = received_nanos;
        let events = &mut state
            .conversations
            .entry(conversation.clone())
            .or_default()
            .events;
        if events.contains_key(kind.as_str()) {
            return Ok(Appended::Duplicate { conversation, kind });
        }
        events.insert(
            kind.as_str().to_owned(),
            Event {
                body: Arc::new(body),
                state: EventState::Pending,
                failure: None,
                received_nanos,
            },
        );
        Ok(Appended::Stored { conversation, kind })
    }
}
