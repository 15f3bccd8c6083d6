//! Forget: erase a caller.

use std::fs::{self, File};
use std::io::{self, BufReader};

use recall_model::{PhoneNumber, PostCallEvent, PostCallWebhookRequest, WebhookType};

use crate::error::join_error;
use crate::extract::identify;
use crate::payload::{AUDIO_FILE, CALLER_FILE, EventState, sync_dir, write_atomic};
use crate::{PayloadStore, Service, ServiceError};

/// What [`Service::forget`] erased.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ForgetReport {
    /// Memories erased from the store.
    pub memories: u64,
    /// Conversations whose folder was removed.
    pub conversations: u64,
    /// Stored events (raw payloads) removed.
    pub payloads: u64,
    /// Decoded audio files removed.
    pub audio: u64,
}

/// The caller recorded for a conversation; for a transcription not yet
/// processed, read from the payload (and recorded, so this is done once).
fn resolve_caller(
    payloads: &PayloadStore,
    conversation: &recall_model::ConversationId,
) -> io::Result<Option<String>> {
    if let Some(caller) = payloads.caller_of(conversation)? {
        return Ok(Some(caller));
    }
    let kind = WebhookType::PostCallTranscription.as_str();
    let pending = payloads
        .events(conversation)?
        .into_iter()
        .any(|e| e.kind == kind && e.state == EventState::Pending);
    if !pending {
        return Ok(None);
    }
    let file = File::open(payloads.event_path(conversation, kind))?;
    let Ok(request) = serde_json::from_reader::<_, PostCallWebhookRequest>(BufReader::new(file))
    else {
        return Ok(None);
    };
    let PostCallEvent::Transcription(data) = request.data else {
        return Ok(None);
    };
    let Ok(caller) = identify(&data) else {
        return Ok(None);
    };
    write_atomic(
        &payloads.conversation_dir(conversation),
        CALLER_FILE,
        caller.as_str().as_bytes(),
    )?;
    Ok(Some(caller.as_str().to_owned()))
}

impl Service {
    /// Erases a caller: every memory (through the store), then every
    /// stored payload and audio of their conversations (found through the
    /// per-conversation `caller` record, not by parsing every payload).
    ///
    /// Runs exclusively with processing, so an event of this caller
    /// cannot be turned into memories while it runs. When the store
    /// fails, nothing is deleted and the error is returned.
    #[tracing::instrument(name = "forget", skip_all, fields(caller = %caller.masked()))]
    pub async fn forget(&self, caller: &PhoneNumber) -> Result<ForgetReport, ServiceError> {
        let _lock = self.inner.process_lock.lock().await;
        let payloads = self.payloads().clone();
        let number = caller.as_str().to_owned();
        let theirs = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let mut theirs = Vec::new();
            for c in payloads.conversations()? {
                if resolve_caller(&payloads, &c)?.as_deref() == Some(number.as_str()) {
                    theirs.push(c);
                }
            }
            Ok(theirs)
        })
        .await
        .map_err(join_error)??;

        let memories = match self.store().erase_user(caller).await {
            Ok(n) => n,
            Err(e) => {
                self.stats().add_store_error();
                return Err(e.into());
            }
        };

        self.pending().retain(|(c, _), _| !theirs.contains(c));
        let payloads = self.payloads().clone();
        let mut report = tokio::task::spawn_blocking(move || -> io::Result<ForgetReport> {
            let mut report = ForgetReport::default();
            for c in &theirs {
                let dir = payloads.conversation_dir(c);
                report.payloads += payloads.events(c)?.len() as u64;
                if dir.join(AUDIO_FILE).exists() {
                    report.audio += 1;
                }
                fs::remove_dir_all(&dir)?;
                report.conversations += 1;
            }
            if report.conversations > 0 {
                sync_dir(payloads.root())?;
            }
            Ok(report)
        })
        .await
        .map_err(join_error)??;
        report.memories = memories;
        tracing::info!(?report, "caller forgotten");
        Ok(report)
    }
}
