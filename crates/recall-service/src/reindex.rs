//! Rebuilding the call index by replaying the stored events through the
//! same typed reading and caller rule as live processing.

use recall_model::{ConversationId, WebhookType};

use crate::error::join_error;
use tracing::Instrument as _;

use crate::{EventLog, ProcessedEvent, Service, ServiceError};

/// What [`Service::reindex`] read from the event log.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct ReindexReport {
    /// Calls that connected (`post_call_transcription` events).
    pub transcriptions: u64,
    /// Calls that never connected (`call_initiation_failure` events).
    pub initiation_failures: u64,
    /// Calls with stored audio.
    pub audio: u64,
    /// Stored events that could not be read (logged, skipped).
    pub skipped: u64,
    /// Calls the rebuilt index holds.
    pub calls: u64,
}

/// How many events may wait between the reader and the index.
const REPLAY_QUEUE: usize = 64;

impl Service {
    /// Rebuilds the [`CallIndex`](crate::CallIndex) from the stored events:
    /// each is read typed, its caller decided by the one caller rule, and
    /// handed to the index exactly as the worker hands it when processing
    /// (a call that never connected first, so that its transcription wins;
    /// then its audio). The index swaps to the new rows at once at the
    /// end; unreadable events are logged and counted as skipped. Safe
    /// while the worker runs.
    ///
    /// # Errors
    /// [`ServiceError::NoCallIndex`] without a call index,
    /// [`ServiceError::Io`] when the payload store cannot be listed,
    /// [`ServiceError::Index`] when the index fails (it keeps its old rows).
    pub async fn reindex(&self) -> Result<ReindexReport, ServiceError> {
        let index = self.call_index().ok_or(ServiceError::NoCallIndex)?.clone();
        let payloads = self.inner.payloads.clone();
        let conversations = payloads.conversations().await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(REPLAY_QUEUE);
        let reader = tokio::spawn(
            async move {
                let mut report = ReindexReport::default();
                for conversation in conversations {
                    for event in replayed(payloads.as_ref(), &conversation, &mut report).await {
                        if sender.send(event).await.is_err() {
                            // The index stopped reading: it reports why.
                            return report;
                        }
                    }
                }
                report
            }
            .in_current_span(),
        );
        let calls = index.rebuild(receiver).await;
        let mut report = reader.await.map_err(join_error)?;
        report.calls = calls?;
        tracing::info!(?report, "call index rebuilt");
        Ok(report)
    }
}

/// The events of one conversation as the index is told of them.
async fn replayed(
    payloads: &dyn EventLog,
    conversation: &ConversationId,
    report: &mut ReindexReport,
) -> Vec<ProcessedEvent> {
    let mut out = Vec::new();
    for kind in [
        WebhookType::CallInitiationFailure,
        WebhookType::PostCallTranscription,
    ] {
        match payloads.read_event(conversation, &kind).await {
            Ok(Some((request, _))) => {
                let event = ProcessedEvent::from_request(conversation.clone(), request);
                if event.kind != kind {
                    tracing::warn!(%conversation, stored_as = kind.as_str(), "reindex: event of another type skipped");
                    report.skipped += 1;
                    continue;
                }
                match kind {
                    WebhookType::PostCallTranscription => report.transcriptions += 1,
                    _ => report.initiation_failures += 1,
                }
                out.push(event);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%conversation, event_type = kind.as_str(), %error, "reindex: event skipped");
                report.skipped += 1;
            }
        }
    }
    // Only decoded audio counts: the audio route serves it.
    match payloads.has_audio(conversation).await {
        Ok(true) => {
            report.audio += 1;
            out.push(ProcessedEvent::audio_stored(conversation.clone()));
        }
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(%conversation, %error, "reindex: audio skipped");
            report.skipped += 1;
        }
    }
    out
}
