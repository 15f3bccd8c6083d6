//! Erasing a caller everywhere: memories, stored events, audio, call
//! index rows and quarantined bodies that mention them.

use recall_model::{ConversationId, PhoneNumber, WebhookType};

use crate::event_log::{EventLog, EventState};
use crate::{ProcessedEvent, Service, ServiceError, StoredEventError};

/// What [`Service::erase_caller`] erased. Erasing again finds nothing and
/// reports zeros.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct EraseReport {
    /// Memories erased from the store.
    pub memories: u64,
    /// Conversations whose events were removed.
    pub conversations: u64,
    /// Stored events (raw payloads) removed.
    pub payloads: u64,
    /// Decoded audio removed.
    pub audio: u64,
    /// Quarantined (invalid) bodies removed because they mention the
    /// caller's number.
    pub quarantined: u64,
    /// Calls removed from the call index.
    pub indexed_calls: u64,
    /// Events of the caller's conversations that were waiting to be
    /// processed (or retried) and were dropped from the queue.
    pub pending_events: u64,
    /// Events of the caller's conversations that had failed and were
    /// dropped from the failure list.
    pub failed_events: u64,
}

/// The caller recorded for a conversation; for an event not processed
/// yet, decided from the payload by the one caller rule (and recorded, so
/// this is done once).
async fn resolve_caller(
    payloads: &dyn EventLog,
    conversation: &ConversationId,
) -> std::io::Result<Option<PhoneNumber>> {
    if let Some(caller) = payloads.caller(conversation).await? {
        return Ok(Some(caller));
    }
    let events = payloads.events(conversation).await?;
    let pending = |kind: &WebhookType| {
        events
            .iter()
            .any(|e| e.kind == *kind && e.state != EventState::Done)
    };
    let kind = if pending(&WebhookType::PostCallTranscription) {
        WebhookType::PostCallTranscription
    } else if pending(&WebhookType::CallInitiationFailure) {
        WebhookType::CallInitiationFailure
    } else {
        return Ok(None);
    };
    let request = match payloads.read_event(conversation, &kind).await {
        Ok(Some((request, _))) => request,
        Ok(None) | Err(StoredEventError::Unusable(_)) => return Ok(None),
        Err(StoredEventError::Io(e)) => return Err(e),
    };
    let Some(caller) = ProcessedEvent::from_request(conversation.clone(), request).caller else {
        return Ok(None);
    };
    payloads.record_caller(conversation, &caller).await?;
    Ok(Some(caller))
}

impl Service {
    /// Erases a caller everywhere, together: every memory (through the
    /// store), every stored event and audio of their conversations (found
    /// through the per-conversation caller record, so calls that never
    /// connected count when they were to or from the caller), their rows
    /// in the call index (and the stored events of any call the index
    /// attributes to them), and every quarantined body that mentions their
    /// number. Idempotent: erasing again reports zeros.
    ///
    /// Runs exclusively with processing, so an event of this caller
    /// cannot be turned into memories while it runs. When the memory store
    /// fails, nothing is deleted and the error is returned.
    ///
    /// # Errors
    /// [`ServiceError::Store`] (nothing deleted), [`ServiceError::Io`] or
    /// [`ServiceError::Index`] when the payloads or the index failed after
    /// the memories were erased: erasing again finishes the job.
    #[tracing::instrument(name = "erase_caller", skip_all, fields(caller = %caller.masked()))]
    pub async fn erase_caller(&self, caller: &PhoneNumber) -> Result<EraseReport, ServiceError> {
        let _lock = self.inner.process_lock.lock().await;
        let payloads = self.payloads();
        let mut theirs = Vec::new();
        for c in payloads.conversations().await? {
            if resolve_caller(payloads, &c).await?.as_ref() == Some(caller) {
                theirs.push(c);
            }
        }

        let memories = match self.store().erase_user(caller).await {
            Ok(n) => n,
            Err(e) => {
                self.stats().add_store_error();
                return Err(e.into());
            }
        };
        let indexed = match self.call_index() {
            Some(index) => index.forget_caller(caller).await?,
            None => Vec::new(),
        };
        for c in &indexed {
            if !theirs.contains(c) {
                theirs.push(c.clone());
            }
        }

        let mut report = EraseReport::default();
        {
            let mut pending = self.pending();
            let before = pending.len();
            pending.retain(|(c, _), _| !theirs.contains(c));
            report.pending_events = (before - pending.len()) as u64;
        }
        for c in &theirs {
            report.failed_events += self.drop_failures_of(c);
        }
        for c in &theirs {
            if let Some(removed) = payloads.remove_conversation(c).await? {
                report.payloads += removed.events;
                report.audio += u64::from(removed.audio);
                report.conversations += 1;
            }
        }
        report.quarantined = payloads.forget_quarantined(caller).await?;
        report.memories = memories;
        report.indexed_calls = indexed.len() as u64;
        tracing::info!(?report, "caller erased");
        Ok(report)
    }
}
