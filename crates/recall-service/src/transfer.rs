//! Moving a deployment's state to other stores (the embedded store to
//! PostgreSQL, say): every stored event byte for byte with its state and
//! caller and audio, then every caller's memories, then the call index.
//!
//! It is idempotent, hence resumable: an event already in the target is a
//! duplicate there, and a memory is written with an idempotency key naming
//! the memory it copies, so a run interrupted (Ctrl-C, a crash) and started
//! again goes on where it stopped and adds nothing twice. It goes through
//! the ports only, so it moves between any two sets of stores.

use std::collections::BTreeSet;

use recall_memory::{IdempotencyKey, ListRequest, MAX_RESULTS, Memory, NewMemory};
use recall_model::{ConversationId, PhoneNumber};
use tokio::io::AsyncReadExt as _;

use crate::event_log::{Appended, EventState};
use crate::{Service, ServiceError};

/// What a move copied, and what the target already had. Given to the
/// progress callback after each conversation and each caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransferReport {
    /// Conversations in the source.
    pub conversations: u64,
    /// Conversations gone through so far.
    pub conversations_done: u64,
    /// Events copied now.
    pub events_copied: u64,
    /// Events the target already had (an earlier run, or a webhook).
    pub events_present: u64,
    /// Conversations whose decoded audio was rebuilt in the target.
    pub audio: u64,
    /// Callers whose memories were copied.
    pub callers: u64,
    /// Memories copied now.
    pub memories_copied: u64,
    /// Memories the target already had (from an earlier run, or a newer
    /// fact of the same key).
    pub memories_present: u64,
    /// Calls in the target's rebuilt call index.
    pub calls_indexed: u64,
}

/// The source and target disagree after a move.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("after the move, the target holds {target} {what} where the source holds {source_count}")]
pub struct CountMismatch {
    /// What was counted (`events of conv_1`, `memories of +1…`).
    pub what: String,
    /// The source's count.
    pub source_count: u64,
    /// The target's count.
    pub target: u64,
}

/// The `record` marked on an event done in the source (the source's own
/// record of what came of it is not part of the port).
const MOVED_RECORD: &str = r#"{"moved":true}"#;

impl Service {
    /// Copies this service's events, audio, callers and memories into
    /// `target`'s stores, rebuilds `target`'s call index, and compares
    /// the counts. `progress` is told after every conversation and every
    /// caller.
    ///
    /// Memories are copied for the callers of the stored conversations
    /// (every caller Recall learnt of through a webhook). A memory keeps
    /// its content, sector, salience, decay, tags, metadata, fact, agent,
    /// conversation and time; the target assigns it a new id and embeds
    /// it again (`backfill_embeddings`).
    ///
    /// # Errors
    /// A [`ServiceError`] when a store fails (run it again to resume), or
    /// [`ServiceError::Io`] wrapping a [`CountMismatch`] when the target
    /// holds fewer events or memories than the source afterwards.
    pub async fn copy_to(
        &self,
        target: &Service,
        mut progress: impl FnMut(&TransferReport),
    ) -> Result<TransferReport, ServiceError> {
        let from = self.event_log();
        let conversations = from.conversations().await?;
        let mut report = TransferReport {
            conversations: conversations.len() as u64,
            ..TransferReport::default()
        };
        let mut callers = BTreeSet::new();
        for conversation in &conversations {
            if let Some(caller) = self
                .copy_conversation(target, conversation, &mut report)
                .await?
            {
                callers.insert(caller);
            }
            report.conversations_done += 1;
            progress(&report);
        }
        for caller in &callers {
            self.copy_memories(target, caller, &mut report).await?;
            report.callers += 1;
            progress(&report);
        }
        if target.call_index().is_some() {
            let rebuilt = target.reindex().await?;
            report.calls_indexed = rebuilt.transcriptions + rebuilt.initiation_failures;
        }
        self.compare(target, &conversations, &callers).await?;
        Ok(report)
    }

    /// Copies one conversation's events, their states, its caller and its
    /// audio; returns its caller.
    async fn copy_conversation(
        &self,
        target: &Service,
        conversation: &ConversationId,
        report: &mut TransferReport,
    ) -> Result<Option<PhoneNumber>, ServiceError> {
        let (from, to) = (self.event_log(), target.event_log());
        for event in from.events(conversation).await? {
            let Some(mut body) = from.open_event(conversation, &event.kind).await? else {
                continue; // removed meanwhile (a caller erased)
            };
            let mut staged = to.stage().await?;
            let mut chunk = vec![0; 64 * 1024];
            loop {
                let n = body.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                staged.write(&chunk[..n]).await?;
            }
            match staged.append().await? {
                Appended::Stored { .. } => report.events_copied += 1,
                Appended::Duplicate { .. } => report.events_present += 1,
                Appended::Refused { reason, .. } => {
                    return Err(ServiceError::Io(std::io::Error::other(format!(
                        "the target refused the {} event of {conversation}: {reason}",
                        event.kind
                    ))));
                }
            }
            // The state too, also for an event copied by an interrupted
            // run: a done event must not be processed again there.
            let already = to.events(conversation).await?;
            let there = already.iter().find(|e| e.kind == event.kind);
            if there.is_some_and(|e| e.state != event.state) {
                match event.state {
                    EventState::Done => {
                        to.mark_done(conversation, &event.kind, MOVED_RECORD)
                            .await?
                    }
                    EventState::Failed => {
                        let reason = from.failure_reason(conversation, &event.kind).await?;
                        let reason = reason.unwrap_or_else(|| "failed before the move".into());
                        to.mark_failed(conversation, &event.kind, &reason).await?;
                    }
                    // Left pending there: the target's worker processes it.
                    _ => {}
                }
            }
        }
        let caller = from.caller(conversation).await?;
        if let Some(caller) = &caller {
            to.record_caller(conversation, caller).await?;
        }
        // A pending deletion moves with the call, and so does the record
        // of what was deleted.
        if let Some(deletion) = from.deletion(conversation).await? {
            to.record_deletion(conversation, &deletion).await?;
        }
        if from.has_audio(conversation).await? && !to.has_audio(conversation).await? {
            to.decode_audio(conversation)
                .await
                .map_err(|e| ServiceError::Io(std::io::Error::other(e)))?;
            report.audio += 1;
        }
        Ok(caller)
    }

    /// Copies a caller's memories, oldest first (so that a fact written
    /// later supersedes an earlier one in the target as it did here).
    async fn copy_memories(
        &self,
        target: &Service,
        caller: &PhoneNumber,
        report: &mut TransferReport,
    ) -> Result<(), ServiceError> {
        let mut memories = all_memories(self, caller).await?;
        memories.reverse();
        for memory in memories {
            let outcome = target.inner.store.add(caller, moved(memory)?).await?;
            // Already there, or there with a newer fact of its key.
            if outcome.changed_nothing() {
                report.memories_present += 1;
            } else {
                report.memories_copied += 1;
            }
        }
        Ok(())
    }

    /// Fails when the target holds fewer events or memories than here.
    async fn compare(
        &self,
        target: &Service,
        conversations: &[ConversationId],
        callers: &BTreeSet<PhoneNumber>,
    ) -> Result<(), ServiceError> {
        let mismatch = |what: String, source_count: usize, there: usize| {
            ServiceError::Io(std::io::Error::other(CountMismatch {
                what,
                source_count: source_count as u64,
                target: there as u64,
            }))
        };
        for conversation in conversations {
            let here = self.event_log().events(conversation).await?.len();
            let there = target.event_log().events(conversation).await?.len();
            if there < here {
                return Err(mismatch(format!("events of {conversation}"), here, there));
            }
        }
        for caller in callers {
            let here = all_memories(self, caller).await?.len();
            let there = all_memories(target, caller).await?.len();
            if there < here {
                return Err(mismatch(
                    format!("memories of {}", caller.masked()),
                    here,
                    there,
                ));
            }
        }
        Ok(())
    }
}

/// Every memory of `caller` in `service`'s store, newest first.
async fn all_memories(
    service: &Service,
    caller: &PhoneNumber,
) -> Result<Vec<Memory>, ServiceError> {
    let mut request = ListRequest::first(MAX_RESULTS);
    let mut all = Vec::new();
    loop {
        let page = service.inner.store.list(caller, &request).await?;
        all.extend(page.items);
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return Ok(all),
        }
    }
}

/// The memory to write in the target for `memory`, keyed by its id so
/// that writing it twice is a duplicate.
fn moved(memory: Memory) -> Result<NewMemory, ServiceError> {
    let key = IdempotencyKey::new(format!("moved:{}", memory.id))
        .map_err(|e| recall_memory::MemoryError::rejected(e.to_string()))?;
    let mut new = NewMemory::new(memory.content, memory.sector)
        .salience(memory.salience)
        .decay(memory.decay_lambda)
        .occurred_at(memory.created_at)
        .idempotency_key(key);
    new.tags = memory.tags;
    new.metadata = memory.metadata;
    new.agent_id = memory.agent_id;
    new.conversation_id = memory.conversation_id;
    new.fact = memory.fact;
    Ok(new)
}
