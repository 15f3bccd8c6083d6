//! Processing stored events off the request path: memories from
//! transcriptions, audio decoding, retries with backoff, replay.

use std::io;

use futures_util::stream::{self, StreamExt};
use recall_memory::{AddOutcome, MemoryError};
use recall_model::{ConversationId, FieldProblem, PostCallData, WebhookType};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::event_log::{AudioError, EventState, StoredEvent};
use crate::extract::call_memories;
use crate::service::{EventKey, PendingEntry, is_processed_type};
use crate::{ProcessedData, ProcessedEvent, Service, ServiceError, StoredEventError};

/// What a processing pass (or a replay) did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ProcessReport {
    /// Events processed to the end (`<type>.done` written).
    pub processed: usize,
    /// Events whose processing failed for good (`<type>.failed` written).
    pub failed: usize,
    /// Events left pending after a retryable failure (store down, disk).
    pub retrying: usize,
    /// Stored events of a type that is not processed (replay only).
    pub skipped: usize,
    /// Memories written (created or superseding).
    pub memories_written: usize,
    /// Memories already written earlier (idempotent duplicates).
    pub memories_unchanged: usize,
}

/// What [`Service::replay`] did.
pub type ReplayReport = ProcessReport;

/// How processing one event ended.
pub(crate) enum Step {
    Done {
        outcome: String,
        written: usize,
        unchanged: usize,
        /// Fields skipped or shortened; the rest of the event was used.
        problems: Vec<FieldProblem>,
    },
    /// A retryable failure of the payload store or the disk.
    Retry(String),
    /// The memory store is down (retryable): the rest of a pass waits too.
    StoreDown(String),
    Failed(String),
}

/// How many events a replica sharing the event log processes at once.
const SHARED_IN_FLIGHT: usize = 4;

/// How often a replica sharing the event log looks for pending events it
/// was not told of: acknowledged by a replica that died, or left to retry
/// by one whose lease ran out.
pub(crate) const SHARED_RESCAN: std::time::Duration = std::time::Duration::from_secs(2);

fn io_retry(e: &io::Error) -> Step {
    Step::Retry(format!("payload store: {e}"))
}

/// A running background worker; see [`Service::spawn_worker`].
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops the worker after the event it is processing, and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "processing worker ended abnormally");
        }
    }
}

impl Service {
    /// Starts processing stored events in the background: first the events
    /// a previous run left pending (found by scanning the payload store),
    /// then each event as soon as [`ingest`](Self::ingest) stores it (the
    /// worker is woken, it does not poll). A retryable failure (store
    /// down) leaves the event pending and retries it after
    /// [`retry_initial`](crate::ServiceConfig::retry_initial), doubling up
    /// to [`retry_max`](crate::ServiceConfig::retry_max).
    ///
    /// Must be called within a Tokio runtime.
    pub fn spawn_worker(&self) -> WorkerHandle {
        let (stop, mut stopped) = watch::channel(false);
        let service = self.clone();
        let backfill = self.clone();
        tokio::spawn(async move {
            if let Err(e) = backfill.backfill_embeddings().await {
                tracing::warn!(error = %e, "embedding backfill stopped; it resumes at the next start");
            }
        });
        let task = tokio::spawn(async move {
            if !service
                .inner
                .backlog_loaded
                .load(std::sync::atomic::Ordering::Acquire)
                && let Err(e) = service.scan_pending().await
            {
                tracing::error!(error = %e, "could not scan the payload store for pending events");
            }
            loop {
                if *stopped.borrow() {
                    break;
                }
                service.run_pass(true, Some(&stopped)).await;
                let next_due = service.next_due();
                let shared = service.payloads().shared();
                let rescan = async {
                    if shared {
                        tokio::time::sleep(SHARED_RESCAN).await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    changed = stopped.changed() => {
                        if changed.is_err() { break; }
                    }
                    () = service.inner.wake.notified() => {}
                    () = sleep_until(next_due) => {}
                    () = rescan => {
                        if let Err(e) = service.scan_pending().await {
                            tracing::warn!(error = %e, "could not look for pending events");
                        }
                    }
                }
            }
            tracing::debug!("processing worker stopped");
        });
        WorkerHandle { stop, task }
    }

    /// One processing pass over every pending event, retry delays ignored:
    /// scans the payload store for events not yet processed, then
    /// processes them in arrival order. For tests and `recall replay`.
    pub async fn process_pending(&self) -> ProcessReport {
        if let Err(e) = self.scan_pending().await {
            tracing::error!(error = %e, "could not scan the payload store for pending events");
        }
        self.run_pass(false, None).await
    }

    /// Re-processes the stored events of one conversation, or of all of
    /// them, whatever their state, oldest first. Idempotent: memories
    /// already written are not written again (idempotency keys), and a
    /// fact is never written over a newer one learnt in a later call.
    pub async fn replay(
        &self,
        conversation: Option<&ConversationId>,
    ) -> Result<ReplayReport, ServiceError> {
        self.replay_where(conversation, false).await
    }

    /// Re-processes only the events whose processing failed for good (a
    /// `.failed` record), oldest first, e.g. once the bug or the data that
    /// made them fail is fixed. Those that succeed leave the failed list;
    /// the others stay in it with the new reason.
    pub async fn replay_failed(&self) -> Result<ReplayReport, ServiceError> {
        self.replay_where(None, true).await
    }

    async fn replay_where(
        &self,
        conversation: Option<&ConversationId>,
        only_failed: bool,
    ) -> Result<ReplayReport, ServiceError> {
        let _lock = self.inner.process_lock.lock().await;
        let payloads = self.payloads();
        let conversations = match conversation {
            Some(c) => vec![c.clone()],
            None => payloads.conversations().await?,
        };
        let mut events = Vec::new();
        for c in &conversations {
            events.extend(
                payloads
                    .events(c)
                    .await?
                    .into_iter()
                    .filter(|e| !only_failed || e.state == EventState::Failed),
            );
        }
        if let Some(c) = conversation
            && events.is_empty()
        {
            return Err(ServiceError::UnknownConversation(c.clone()));
        }
        events.sort_by(arrival_order);
        let mut report = ReplayReport::default();
        for event in events {
            let kind = event.kind;
            if !is_processed_type(&kind) {
                report.skipped += 1;
                continue;
            }
            let key = (event.conversation.clone(), kind.as_str().to_owned());
            let step = self.process_one(&event.conversation, &kind).await;
            self.settle(&key, step, &mut report);
        }
        tracing::info!(?report, "replay finished");
        Ok(report)
    }

    /// Reads the backlog from disk: every stored event not processed yet
    /// is queued and every failed one listed, so that
    /// [`pending_count`](Self::pending_count), [`failed_count`](Self::failed_count)
    /// and [`list_events`](Self::list_events) tell the truth from the
    /// start. Call it before serving; [`spawn_worker`](Self::spawn_worker)
    /// then does not scan again. Returns the number of pending events.
    ///
    /// # Errors
    /// When the payload store cannot be read.
    pub async fn load_backlog(&self) -> io::Result<usize> {
        self.scan_pending().await?;
        self.inner
            .backlog_loaded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(self.pending_count())
    }

    /// Adds every stored, unprocessed event to the queue.
    pub(crate) async fn scan_pending(&self) -> io::Result<()> {
        let payloads = self.payloads();
        let mut found = Vec::new();
        let mut failed = Vec::new();
        for event in payloads.unfinished().await? {
            if !is_processed_type(&event.kind) {
                continue;
            }
            match event.state {
                EventState::Pending => found.push(event),
                EventState::Failed => {
                    let c = &event.conversation;
                    let reason = payloads.failure_reason(c, &event.kind).await?;
                    let key = (c.clone(), event.kind.as_str().to_owned());
                    failed.push((key, reason.unwrap_or_default()));
                }
                EventState::Done => {}
            }
        }
        self.failed().extend(failed);
        found.sort_by(arrival_order);
        for event in found {
            self.enqueue((event.conversation, event.kind.as_str().to_owned()));
        }
        Ok(())
    }

    /// When the earliest waiting retry is due.
    fn next_due(&self) -> Option<Instant> {
        self.pending().values().filter_map(|e| e.due).min()
    }

    /// Processes the queued events (only those due when `only_due`), in
    /// arrival order, stopping early when `stop` turns true.
    async fn run_pass(
        &self,
        only_due: bool,
        stop: Option<&watch::Receiver<bool>>,
    ) -> ProcessReport {
        let _lock = self.inner.process_lock.lock().await;
        let now = Instant::now();
        let mut batch: Vec<(EventKey, u64)> = self
            .pending()
            .iter()
            .filter(|(_, e)| !only_due || e.due.is_none_or(|d| d <= now))
            .map(|(k, e)| (k.clone(), e.seq))
            .collect();
        batch.sort_by_key(|(_, seq)| *seq);
        let keys: Vec<EventKey> = batch.into_iter().map(|(key, _)| key).collect();
        let mut report = ProcessReport::default();
        // A shared event log (PostgreSQL) takes several events at once:
        // each waits on its commits, and concurrent commits share a flush.
        // Replicas already process side by side, so nothing here relies on
        // one event at a time. A store of one process keeps arrival order.
        let in_flight = if self.payloads().shared() {
            SHARED_IN_FLIGHT
        } else {
            1
        };
        let outage = std::sync::atomic::AtomicBool::new(false);
        let mut steps = stream::iter(keys.iter().cloned())
            .take_while(|_| {
                std::future::ready(
                    !outage.load(std::sync::atomic::Ordering::Relaxed)
                        && !stop.is_some_and(|s| *s.borrow()),
                )
            })
            .map(|key| async move {
                let step = self.claim_and_process(&key).await;
                (key, step)
            })
            .buffered(in_flight);
        while let Some((key, step)) = steps.next().await {
            let Some(step) = step else {
                // Done, or being processed by another replica, which
                // hands it back if it dies.
                tracing::debug!(conversation = %key.0, event_type = %key.1, "event held elsewhere");
                self.pending().remove(&key);
                continue;
            };
            let down = matches!(step, Step::StoreDown(_));
            self.settle(&key, step, &mut report);
            if down && only_due {
                // The store is down: the rest of the batch would only wait
                // out the same timeout each. It waits for this event's retry.
                outage.store(true, std::sync::atomic::Ordering::Relaxed);
                let mut pending = self.pending();
                let due = pending.get(&key).and_then(|e| e.due);
                let mut deferred = 0;
                for rest in &keys {
                    if let Some(entry) = pending.get_mut(rest)
                        && entry.due < due
                    {
                        entry.due = due;
                        deferred += 1;
                    }
                }
                if deferred > 0 {
                    tracing::info!(
                        deferred,
                        "memory store unavailable: the other pending events wait for the next retry"
                    );
                }
            }
        }
        if report != ProcessReport::default() {
            tracing::debug!(?report, "processing pass");
        }
        report
    }

    /// Claims the event when the event log is shared, then processes it;
    /// `None` when another replica holds it or it is done.
    async fn claim_and_process(&self, key: &EventKey) -> Option<Step> {
        let kind = WebhookType::parse(&key.1);
        let payloads = self.payloads();
        if payloads.shared() {
            match payloads
                .claim(&key.0, &kind, self.config().claim_lease)
                .await
            {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(io_retry(&e)),
            }
        }
        Some(self.process_one(&key.0, &kind).await)
    }

    /// Records how processing ended: markers, queue, counters, report.
    fn settle(&self, key: &EventKey, step: Step, report: &mut ProcessReport) {
        let (conversation, kind) = key;
        match step {
            Step::Done {
                outcome,
                written,
                unchanged,
                problems,
            } => {
                self.pending().remove(key);
                self.failed().remove(key);
                self.stats().add_event_processed();
                report.processed += 1;
                report.memories_written += written;
                report.memories_unchanged += unchanged;
                if problems.is_empty() {
                    tracing::info!(%conversation, event_type = %kind, outcome, written, unchanged, "event processed");
                } else {
                    self.stats().add_field_problems(problems.len() as u64);
                    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
                    tracing::warn!(%conversation, event_type = %kind, outcome, written, unchanged, problems = ?fields, "event processed; fields skipped or shortened (see its .done record)");
                }
            }
            Step::Failed(reason) => {
                self.pending().remove(key);
                self.failed().insert(key.clone(), reason.clone());
                self.stats().add_processing_failure();
                report.failed += 1;
                tracing::error!(%conversation, event_type = %kind, reason, "event processing failed; not retried");
            }
            Step::Retry(reason) | Step::StoreDown(reason) => {
                self.stats().add_retry();
                report.retrying += 1;
                let mut pending = self.pending();
                let seq = self.next_seq();
                let entry = pending.entry(key.clone()).or_insert(PendingEntry {
                    seq,
                    attempts: 0,
                    due: None,
                    last_error: None,
                });
                entry.attempts = entry.attempts.saturating_add(1);
                entry.last_error = Some(reason.clone());
                let delay = self.config().retry_delay(entry.attempts);
                entry.due = Some(Instant::now() + delay);
                tracing::warn!(
                    %conversation,
                    event_type = %kind,
                    attempts = entry.attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    reason,
                    "event processing failed; will retry"
                );
            }
        }
    }

    /// Processes one stored event, records it in the call index, tells
    /// the observer and writes its `.done` marker.
    async fn process_one(&self, conversation: &ConversationId, kind: &WebhookType) -> Step {
        let payloads = self.payloads();
        let stored = payloads
            .events(conversation)
            .await
            .map(|events| events.iter().any(|e| e.kind == *kind));
        match stored {
            Ok(true) => {}
            Err(e) => return io_retry(&e),
            // Forgotten since it was queued.
            Ok(false) => {
                return Step::Done {
                    outcome: "gone".into(),
                    written: 0,
                    unchanged: 0,
                    problems: Vec::new(),
                };
            }
        }
        let (step, processed) = match kind {
            WebhookType::PostCallTranscription | WebhookType::CallInitiationFailure => {
                let read = match payloads.read_event(conversation, kind).await {
                    Ok(Some(read)) => Ok(read),
                    Ok(None) => Err(Step::Retry("the stored event disappeared".into())),
                    Err(StoredEventError::Io(e)) => Err(io_retry(&e)),
                    Err(StoredEventError::Unusable(reason)) => Err(Step::Failed(reason)),
                };
                match read {
                    Ok((request, problems)) => {
                        let processed = ProcessedEvent::from_request(conversation.clone(), request);
                        let step = match &processed.data {
                            // The schedule is durable before any memory is
                            // written, so a deletion is never missed.
                            ProcessedData::Transcription(data) => {
                                match self.schedule_deletion(conversation, data).await {
                                    Ok(()) => {
                                        self.process_transcription(&processed, data, problems).await
                                    }
                                    Err(e) => io_retry(&e),
                                }
                            }
                            ProcessedData::InitiationFailure(_) => {
                                self.process_failure(&processed).await
                            }
                            _ => Step::Failed(format!("stored as {kind} but is another type")),
                        };
                        (step, Some(processed))
                    }
                    // A call that never connected is kept even when its
                    // body cannot be read: it leads to no memory.
                    Err(Step::Failed(_)) if *kind == WebhookType::CallInitiationFailure => (
                        Step::Done {
                            outcome: "kept (no caller)".into(),
                            written: 0,
                            unchanged: 0,
                            problems: Vec::new(),
                        },
                        None,
                    ),
                    Err(step) => (step, None),
                }
            }
            WebhookType::PostCallAudio => (
                self.process_audio(conversation).await,
                Some(ProcessedEvent::audio_stored(conversation.clone())),
            ),
            WebhookType::Unknown(_) => (
                Step::Done {
                    outcome: "unknown type: kept".into(),
                    written: 0,
                    unchanged: 0,
                    problems: Vec::new(),
                },
                None,
            ),
        };
        let (outcome, written, unchanged, problems) = match step {
            Step::Done {
                outcome,
                written,
                unchanged,
                problems,
            } => (outcome, written, unchanged, problems),
            Step::Failed(reason) => return self.record_failure(conversation, kind, reason).await,
            Step::Retry(_) | Step::StoreDown(_) => return step,
        };
        if let Some(processed) = &processed {
            self.tell_processed(processed).await;
        }
        let record = serde_json::json!({
            "processed_at": recall_model::UnixTimestamp::now().as_secs(),
            "outcome": outcome,
            "memories_written": written,
            "memories_unchanged": unchanged,
            "problems": problems,
        });
        match payloads
            .mark_done(conversation, kind, &record.to_string())
            .await
        {
            Ok(()) => {
                self.after_processing(conversation, kind).await;
                Step::Done {
                    outcome,
                    written,
                    unchanged,
                    problems,
                }
            }
            Err(e) => io_retry(&e),
        }
    }

    /// Records the failure with the reason, so the event is not retried
    /// (a replay tries it again). If even that fails, the event stays
    /// pending rather than be lost.
    async fn record_failure(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        reason: String,
    ) -> Step {
        match self
            .payloads()
            .mark_failed(conversation, kind, &reason)
            .await
        {
            Ok(()) => Step::Failed(reason),
            Err(e) => io_retry(&e),
        }
    }

    /// Records a transcription's caller and writes its memories.
    async fn process_transcription(
        &self,
        event: &ProcessedEvent,
        data: &PostCallData,
        mut problems: Vec<FieldProblem>,
    ) -> Step {
        let conversation = &event.conversation;
        let caller = match data.caller() {
            Ok(caller) => caller,
            Err(reason) => {
                tracing::info!(%conversation, reason = reason.as_str(), "no caller identity: payload kept, no memory written");
                return Step::Done {
                    outcome: format!("no caller identity ({reason})"),
                    written: 0,
                    unchanged: 0,
                    problems,
                };
            }
        };
        // The caller is recorded before any memory is written, so that
        // forgetting the caller finds this conversation whatever happens next.
        if let Err(e) = self.payloads().record_caller(conversation, &caller).await {
            return io_retry(&e);
        }
        let memories = call_memories(
            data,
            conversation,
            event.event_time,
            self.config(),
            &mut problems,
        );
        // A memory the store would refuse is skipped, not the whole call.
        let mut memories: Vec<_> = memories
            .into_iter()
            .filter(|m| match m.validate() {
                Ok(()) => true,
                Err(e) => {
                    let field = m.fact.as_ref().map_or_else(
                        || "data.analysis.transcript_summary".to_owned(),
                        |f| format!("data.analysis.data_collection_results.{}", f.key.as_str()),
                    );
                    problems.push(FieldProblem::new(field, format!("not remembered: {e}")));
                    false
                }
            })
            .collect();
        if memories.is_empty() {
            return Step::Done {
                outcome: "nothing to remember".into(),
                written: 0,
                unchanged: 0,
                problems,
            };
        }
        self.embed_memories(&mut memories).await;
        // The store keeps a call processed late from undoing a later call's
        // facts (`AddOutcome::Outdated`): it decides under the caller's own
        // lock, so this holds for events processed side by side, here or on
        // another replica.
        match self.store().add_batch(&caller, memories).await {
            Ok(outcomes) => {
                let unchanged = outcomes.iter().filter(|o| o.changed_nothing()).count();
                let superseded = outcomes
                    .iter()
                    .filter(|o| matches!(o, AddOutcome::Superseded { .. }))
                    .count();
                let outdated = outcomes
                    .iter()
                    .filter(|o| matches!(o, AddOutcome::Outdated(_)))
                    .count();
                if outdated > 0 {
                    tracing::info!(%conversation, outdated, "facts older than what a later call taught: not written");
                }
                tracing::debug!(%conversation, caller = %caller.masked(), superseded, "memories written");
                Step::Done {
                    outcome: "memories written".into(),
                    written: outcomes.len() - unchanged,
                    unchanged,
                    problems,
                }
            }
            Err(e) => {
                self.stats().add_store_error();
                store_step(&e)
            }
        }
    }

    /// Keeps a call that never connected: no memory, but the person it
    /// was for is recorded (unless a transcription recorded its caller)
    /// so that forgetting them removes it too.
    async fn process_failure(&self, event: &ProcessedEvent) -> Step {
        let Some(party) = event.caller.clone() else {
            return Step::Done {
                outcome: "kept (no caller)".into(),
                written: 0,
                unchanged: 0,
                problems: Vec::new(),
            };
        };
        let payloads = self.payloads();
        let conversation = &event.conversation;
        let recorded = match payloads.caller(conversation).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => payloads.record_caller(conversation, &party).await,
            Err(e) => Err(e),
        };
        match recorded {
            Ok(()) => Step::Done {
                outcome: "kept".into(),
                written: 0,
                unchanged: 0,
                problems: Vec::new(),
            },
            Err(e) => io_retry(&e),
        }
    }

    /// Records a processed event in the call index, then tells the
    /// observer. Neither can fail the event: an index failure is logged
    /// (`recall reindex` repairs it).
    async fn tell_processed(&self, event: &ProcessedEvent) {
        if let Some(index) = self.call_index()
            && let Err(error) = index.record(event).await
        {
            tracing::warn!(error = %recall_memory::ErrorChain(&error), event_type = event.kind.as_str(), "call index not updated; `recall reindex` repairs it");
        }
        if let Some(observer) = self.inner.observer.get() {
            observer.processed(event).await;
        }
    }

    /// Decodes the call audio, streaming.
    async fn process_audio(&self, conversation: &ConversationId) -> Step {
        match self.payloads().decode_audio(conversation).await {
            Ok(bytes) => Step::Done {
                outcome: format!("audio decoded ({bytes} bytes)"),
                written: 0,
                unchanged: 0,
                problems: Vec::new(),
            },
            Err(AudioError::Invalid(reason)) => Step::Failed(reason),
            Err(AudioError::Io(e)) => io_retry(&e),
        }
    }
}

/// Processing order: arrival, then conversation and type.
fn arrival_order(a: &StoredEvent, b: &StoredEvent) -> std::cmp::Ordering {
    (a.received_nanos, &a.conversation, a.kind.as_str()).cmp(&(
        b.received_nanos,
        &b.conversation,
        b.kind.as_str(),
    ))
}

/// A store failure: retry later, or give up when retrying cannot help.
fn store_step(e: &MemoryError) -> Step {
    if e.is_retryable() {
        Step::StoreDown(format!("memory store: {e}"))
    } else {
        Step::Failed(format!("memory store: {e}"))
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
