//! Deleting Recall's raw copies on time: ElevenLabs' deletion settings
//! (`metadata.deletion_settings`) and the retention windows.
//!
//! * A transcription whose deletion settings schedule a deletion records
//!   the schedule in the event log before its memories are written, so a
//!   pending deletion survives restarts. Once the event is processed, a
//!   deletion already due is carried out at once; the others by the sweep.
//! * [`Service::sweep_retention`] carries out the due schedules, then the
//!   windows: stored events and transcripts (and quarantined bodies),
//!   audio, and callers not heard from. [`Service::spawn_retention`] runs it at start and then every
//!   [`retention_sweep`](crate::ServiceConfig::retention_sweep).
//! * Deleting the transcript replaces every stored body of the call (but
//!   its audio) by its [redacted](crate::redact) form and records the
//!   redacted call in the index: the figures stay, the transcript goes.
//!   Deleting the audio removes the decoded audio and the audio in its
//!   event. Either is recorded with its time ([`DeletionRecord`]), which
//!   [`Service::call_detail`] reports.
//! * A part deleted once is deleted again when an event of it is processed
//!   later (a late or replayed copy).
//!
//! Logs name conversations, never callers: no number, no name.

use std::time::Duration;

use recall_memory::{ErrorChain, ListRequest, MAX_RESULTS};
use recall_model::ui::CallDetail;
use recall_model::{ConversationId, PhoneNumber, PostCallData, UnixTimestamp, WebhookType};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber as _;

use crate::event_log::{DeletionRecord, EventState, Outstanding, RawPart};
use crate::{
    CallIndexError, DeletionPolicy, ProcessedEvent, Service, ServiceError, StoredEventError, redact,
};

/// What a retention sweep (or the deletion carried out after processing
/// an event) deleted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Calls whose stored events and transcript were deleted.
    pub transcripts: u64,
    /// Calls whose audio was deleted.
    pub audio: u64,
    /// Memories deleted with their call (deletion policy `all`).
    pub memories: u64,
    /// Quarantined (refused) bodies removed by the events window.
    pub quarantined: u64,
    /// Callers erased for not being heard from within the window.
    pub callers: u64,
    /// Deletions that failed; the next sweep tries them again.
    pub failures: u64,
}

/// Why a part of a call is deleted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reason {
    /// ElevenLabs' deletion settings.
    Settings,
    /// A retention window.
    Retention,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Self::Settings => "deletion_settings",
            Self::Retention => "retention",
        }
    }
}

/// A running retention sweep; see [`Service::spawn_retention`].
#[derive(Debug)]
pub struct RetentionHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RetentionHandle {
    /// Stops the sweep after the deletion it is carrying out, and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "retention sweep ended abnormally");
        }
    }
}

/// `window` before `now`.
fn before(now: UnixTimestamp, window: Duration) -> UnixTimestamp {
    let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    UnixTimestamp::from_secs_saturating(now.as_secs().saturating_sub(window))
}

/// The part of a call an event of `kind` holds.
fn part_of(kind: &WebhookType) -> RawPart {
    if RawPart::Audio.covers(kind) {
        RawPart::Audio
    } else {
        RawPart::Transcript
    }
}

fn part_name(part: RawPart) -> &'static str {
    match part {
        RawPart::Transcript => "transcript",
        RawPart::Audio => "audio",
    }
}

impl Service {
    /// Starts the retention sweep in the background: now, then every
    /// [`retention_sweep`](crate::ServiceConfig::retention_sweep). What a
    /// sweep could not delete, the next one tries again.
    ///
    /// Must be called within a Tokio runtime.
    pub fn spawn_retention(&self) -> RetentionHandle {
        let (stop, mut stopped) = watch::channel(false);
        let service = self.clone();
        let every = self.config().retention_sweep;
        let task = tokio::spawn(async move {
            loop {
                let report = service.sweep_retention().await;
                if report != RetentionReport::default() {
                    tracing::info!(?report, "retention sweep");
                }
                tokio::select! {
                    changed = stopped.changed() => {
                        if changed.is_err() || *stopped.borrow() { break; }
                    }
                    () = tokio::time::sleep(every) => {}
                }
            }
            tracing::debug!("retention sweep stopped");
        });
        RetentionHandle { stop, task }
    }

    /// Deletes what is due now: the due deletions ElevenLabs' settings
    /// scheduled (unless the policy is `off`), then the stored events and
    /// transcripts (and quarantined bodies), the audio, and the callers
    /// past their retention windows. Each step goes on when another
    /// fails: a deletion (or a listing) that fails is counted in
    /// [`RetentionReport::failures`], logged and left for the next sweep.
    pub async fn sweep_retention(&self) -> RetentionReport {
        let mut report = RetentionReport::default();
        let now = self.now();
        let config = self.config();
        if config.deletion_policy != DeletionPolicy::Off {
            let due = self.payloads().deletions_due(now).await;
            for conversation in self.listed(due, "due deletions", &mut report) {
                let _lock = self.inner.process_lock.lock().await;
                let result = self.carry_out_deletions(&conversation, None).await;
                self.settle_deletion(&conversation, result, &mut report);
            }
        }
        let windows = [
            (RawPart::Transcript, config.retain_events),
            (RawPart::Audio, config.retain_audio),
        ];
        for (part, window) in windows {
            let Some(window) = window else { continue };
            let due = self
                .payloads()
                .retention_due(part, before(now, window))
                .await;
            for conversation in self.listed(due, part_name(part), &mut report) {
                let _lock = self.inner.process_lock.lock().await;
                let result = self
                    .delete_part(&conversation, part, Reason::Retention)
                    .await
                    .map(|memories| tally(part, memories));
                self.settle_deletion(&conversation, result, &mut report);
            }
        }
        if let Some(window) = config.retain_events {
            // Refused bodies are raw events too, with whatever they hold.
            let removed = self
                .payloads()
                .forget_quarantined_before(before(now, window))
                .await;
            match removed {
                Ok(removed) => {
                    report.quarantined += removed;
                    self.stats().add_quarantined_deleted_by_retention(removed);
                    if removed > 0 {
                        tracing::info!(
                            removed,
                            "quarantined bodies past the retention window deleted"
                        );
                    }
                }
                Err(e) => {
                    report.failures += 1;
                    self.stats().add_deletion_failure();
                    tracing::warn!(error = %e, "could not delete old quarantined bodies; the next sweep tries again");
                }
            }
        }
        if let (Some(window), Some(index)) = (config.retain_callers, self.call_index()) {
            let silent = index
                .callers_silent_since(before(now, window))
                .await
                .map_err(ServiceError::from);
            for caller in self.listed(silent, "silent callers", &mut report) {
                self.erase_silent_caller(&caller, &mut report).await;
            }
        }
        report
    }

    /// What a listing found, or nothing when it failed (counted, logged).
    fn listed<T>(
        &self,
        found: Result<Vec<T>, impl Into<ServiceError>>,
        what: &str,
        report: &mut RetentionReport,
    ) -> Vec<T> {
        found.map_err(Into::into).unwrap_or_else(|e: ServiceError| {
            report.failures += 1;
            self.stats().add_deletion_failure();
            tracing::warn!(error = %ErrorChain(&e), listing = what, "retention sweep could not list what is due; the next sweep tries again");
            Vec::new()
        })
    }

    /// Erases a caller past the callers' window. Erasing logs the caller's
    /// (masked) number; this log names none, so erasing is silenced here
    /// and its outcome logged without it.
    async fn erase_silent_caller(&self, caller: &PhoneNumber, report: &mut RetentionReport) {
        let quiet = tracing::subscriber::NoSubscriber::default();
        match self.erase_caller(caller).with_subscriber(quiet).await {
            Ok(erased) => {
                report.callers += 1;
                self.stats().add_caller_erased_by_retention();
                tracing::info!(
                    memories = erased.memories,
                    conversations = erased.conversations,
                    indexed_calls = erased.indexed_calls,
                    "caller not heard from within the retention window erased"
                );
            }
            Err(e) => {
                report.failures += 1;
                self.stats().add_deletion_failure();
                tracing::warn!(error = %ErrorChain(&e), "could not erase a caller past the retention window; the next sweep tries again");
            }
        }
    }

    fn settle_deletion(
        &self,
        conversation: &ConversationId,
        result: Result<RetentionReport, ServiceError>,
        report: &mut RetentionReport,
    ) {
        match result {
            Ok(done) => {
                report.transcripts += done.transcripts;
                report.audio += done.audio;
                report.memories += done.memories;
            }
            Err(e) => {
                report.failures += 1;
                self.stats().add_deletion_failure();
                tracing::warn!(%conversation, error = %ErrorChain(&e), "deletion failed; the next sweep tries again");
            }
        }
    }

    /// Records the deletion a transcription's settings schedule (unless
    /// the policy is `off`), keeping what was deleted already. Called
    /// before its memories are written: if this fails, the event is
    /// retried.
    pub(crate) async fn schedule_deletion(
        &self,
        conversation: &ConversationId,
        data: &PostCallData,
    ) -> std::io::Result<()> {
        if self.config().deletion_policy == DeletionPolicy::Off {
            return Ok(());
        }
        let Some(settings) = data
            .metadata
            .as_ref()
            .and_then(|m| m.deletion_settings.as_ref())
        else {
            return Ok(());
        };
        let (transcript, audio) = (
            settings.delete_transcript_and_pii == Some(true),
            settings.delete_audio == Some(true),
        );
        let Some(secs) = settings
            .deletion_time_unix_secs
            .filter(|_| transcript || audio)
        else {
            return Ok(());
        };
        let Ok(due) = UnixTimestamp::from_secs(secs) else {
            tracing::warn!(%conversation, secs, "deletion time out of range: not scheduled");
            return Ok(());
        };
        let payloads = self.payloads();
        let known = payloads.deletion(conversation).await?.unwrap_or_default();
        let scheduled = DeletionRecord {
            due: Some(due),
            transcript,
            audio,
            ..known
        };
        if scheduled != known {
            payloads.record_deletion(conversation, &scheduled).await?;
            tracing::info!(%conversation, due = %due.to_rfc3339(), transcript, audio, "deletion scheduled");
        }
        Ok(())
    }

    /// Once an event of `kind` is processed: carries out what is due of
    /// the conversation's deletions. A failure is logged; the sweep tries
    /// again. The process lock is held.
    pub(crate) async fn after_processing(&self, conversation: &ConversationId, kind: &WebhookType) {
        let result = self.carry_out_deletions(conversation, Some(kind)).await;
        self.settle_deletion(conversation, result, &mut RetentionReport::default());
    }

    /// Carries out what is due of a conversation's scheduled deletion, and
    /// deletes again the part of a `processed` event when that part was
    /// deleted before. The process lock is held.
    async fn carry_out_deletions(
        &self,
        conversation: &ConversationId,
        processed: Option<&WebhookType>,
    ) -> Result<RetentionReport, ServiceError> {
        let Some(record) = self.payloads().deletion(conversation).await? else {
            return Ok(RetentionReport::default());
        };
        let scheduled = match self.config().deletion_policy {
            DeletionPolicy::Off => Outstanding::default(),
            _ => record.outstanding(self.now()),
        };
        let again = processed
            .map(part_of)
            .filter(|part| record.deleted_at(*part).is_some());
        let mut done = RetentionReport::default();
        for part in [RawPart::Transcript, RawPart::Audio] {
            let reason = match part {
                RawPart::Transcript if scheduled.transcript => Reason::Settings,
                RawPart::Audio if scheduled.audio => Reason::Settings,
                _ if again == Some(part) => {
                    // Deleted before by whichever rule; a late copy goes too.
                    if record.due.is_some() {
                        Reason::Settings
                    } else {
                        Reason::Retention
                    }
                }
                _ => continue,
            };
            let memories = self.delete_part(conversation, part, reason).await?;
            let part_done = tally(part, memories);
            done.transcripts += part_done.transcripts;
            done.audio += part_done.audio;
            done.memories += part_done.memories;
        }
        Ok(done)
    }

    /// Deletes one part of a call everywhere Recall keeps it, records when
    /// and counts it; returns the memories deleted with it. Events still
    /// pending are left for processing, which deletes them again once
    /// done. The process lock is held.
    async fn delete_part(
        &self,
        conversation: &ConversationId,
        part: RawPart,
        reason: Reason,
    ) -> Result<u64, ServiceError> {
        let payloads = self.payloads();
        let caller = payloads.caller(conversation).await?;
        let with_memories = part == RawPart::Transcript
            && reason == Reason::Settings
            && self.config().deletion_policy == DeletionPolicy::All;
        let memories = match (&caller, with_memories) {
            (Some(caller), true) => self.delete_call_memories(caller, conversation).await?,
            _ => 0,
        };
        let events = payloads.events(conversation).await?;
        let settled: Vec<&WebhookType> = events
            .iter()
            .filter(|e| part.covers(&e.kind) && e.state != EventState::Pending)
            .map(|e| &e.kind)
            .collect();
        for kind in &settled {
            let redacted = match part {
                // Its body is the audio: only its envelope is kept.
                RawPart::Audio => {
                    json!({"data": {"conversation_id": conversation.as_str()}})
                }
                RawPart::Transcript => self.stored_body(conversation, kind).await?,
            };
            let redacted = redact::redacted_body(kind, &redacted, caller.as_ref());
            payloads
                .redact_event(conversation, kind, redacted.to_string().as_bytes())
                .await?;
        }
        if part == RawPart::Audio {
            payloads.remove_audio(conversation).await?;
        }
        if let Some(index) = self.call_index() {
            match part {
                RawPart::Audio => {
                    index.unmark_audio(conversation).await?;
                }
                RawPart::Transcript => {
                    // As reindex replays them: a failure first, so that a
                    // transcription wins.
                    for kind in [
                        WebhookType::CallInitiationFailure,
                        WebhookType::PostCallTranscription,
                    ] {
                        if !settled.contains(&&kind) {
                            continue;
                        }
                        let request = match payloads.read_event(conversation, &kind).await {
                            Ok(Some((request, _))) => request,
                            // Nothing usable was ever indexed from it.
                            Ok(None) | Err(StoredEventError::Unusable(_)) => continue,
                            Err(StoredEventError::Io(e)) => return Err(e.into()),
                        };
                        let event = ProcessedEvent::from_request(conversation.clone(), request);
                        match index.record(&event).await {
                            // Not indexable (no agent id): never indexed either.
                            Ok(()) | Err(CallIndexError::InvalidEvent(_)) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        let mut record = payloads.deletion(conversation).await?.unwrap_or_default();
        let now = self.now();
        match part {
            RawPart::Transcript => record.transcript_deleted_at.get_or_insert(now),
            RawPart::Audio => record.audio_deleted_at.get_or_insert(now),
        };
        payloads.record_deletion(conversation, &record).await?;
        let stats = self.stats();
        match (part, reason) {
            (RawPart::Transcript, Reason::Settings) => stats.add_transcript_deleted_by_settings(),
            (RawPart::Transcript, Reason::Retention) => stats.add_transcript_deleted_by_retention(),
            (RawPart::Audio, Reason::Settings) => stats.add_audio_deleted_by_settings(),
            (RawPart::Audio, Reason::Retention) => stats.add_audio_deleted_by_retention(),
        }
        stats.add_memories_deleted(memories);
        tracing::info!(
            %conversation,
            part = part_name(part),
            reason = reason.name(),
            events = settled.len(),
            memories,
            "raw copies deleted"
        );
        Ok(memories)
    }

    /// A stored body as JSON (`null` when it is not: it is redacted to its
    /// type alone).
    async fn stored_body(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> std::io::Result<Value> {
        let mut raw = Vec::new();
        if let Some(mut body) = self.payloads().open_event(conversation, kind).await? {
            body.read_to_end(&mut raw).await?;
        }
        Ok(serde_json::from_slice(&raw).unwrap_or(Value::Null))
    }

    /// Deletes the caller's memories learnt in `conversation`; returns
    /// how many.
    async fn delete_call_memories(
        &self,
        caller: &PhoneNumber,
        conversation: &ConversationId,
    ) -> Result<u64, ServiceError> {
        let store = self.store();
        let mut doomed = Vec::new();
        let mut request = ListRequest::first(MAX_RESULTS);
        loop {
            let page = store.list(caller, &request).await.inspect_err(|_| {
                self.stats().add_store_error();
            })?;
            doomed.extend(
                page.items
                    .into_iter()
                    .filter(|m| m.conversation_id.as_ref() == Some(conversation))
                    .map(|m| m.id),
            );
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => break,
            }
        }
        for id in &doomed {
            store.delete(caller, id).await.inspect_err(|_| {
                self.stats().add_store_error();
            })?;
        }
        Ok(doomed.len() as u64)
    }

    /// One call with its transcript, as the index has it, and when its
    /// transcript and audio were deleted; `None` when not indexed.
    ///
    /// # Errors
    /// [`ServiceError::NoCallIndex`], [`ServiceError::Index`] or
    /// [`ServiceError::Io`].
    pub async fn call_detail(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<CallDetail>, ServiceError> {
        let Some(mut detail) = self.calls()?.get_call(conversation).await? else {
            return Ok(None);
        };
        if let Some(record) = self.payloads().deletion(conversation).await? {
            detail.transcript_deleted_at = record.transcript_deleted_at;
            detail.audio_deleted_at = record.audio_deleted_at;
        }
        Ok(Some(detail))
    }
}

/// A report of one part deleted, with `memories`.
fn tally(part: RawPart, memories: u64) -> RetentionReport {
    RetentionReport {
        transcripts: u64::from(part == RawPart::Transcript),
        audio: u64::from(part == RawPart::Audio),
        memories,
        ..RetentionReport::default()
    }
}
