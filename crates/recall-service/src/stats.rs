//! Counters for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters of what the service did, for `/metrics`. Read them
/// with the getters; they only ever grow.
#[derive(Debug, Default)]
pub struct ServiceStats {
    greeting_fallbacks: AtomicU64,
    store_errors: AtomicU64,
    events_stored: AtomicU64,
    events_processed: AtomicU64,
    duplicates: AtomicU64,
    unknown_types: AtomicU64,
    quarantined: AtomicU64,
    processing_failures: AtomicU64,
    retries: AtomicU64,
    field_problems: AtomicU64,
    transcripts_deleted_by_settings: AtomicU64,
    transcripts_deleted_by_retention: AtomicU64,
    audio_deleted_by_settings: AtomicU64,
    audio_deleted_by_retention: AtomicU64,
    memories_deleted: AtomicU64,
    quarantined_deleted_by_retention: AtomicU64,
    callers_erased_by_retention: AtomicU64,
    deletion_failures: AtomicU64,
}

impl ServiceStats {
    /// Fields of processed events that were skipped or shortened (the rest
    /// of each event was used).
    pub fn field_problems(&self) -> u64 {
        self.field_problems.load(Ordering::Relaxed)
    }

    pub(crate) fn add_field_problems(&self, n: u64) {
        self.field_problems.fetch_add(n, Ordering::Relaxed);
    }

    /// Memories deleted with their call's transcript (deletion policy
    /// `all`).
    pub fn memories_deleted(&self) -> u64 {
        self.memories_deleted.load(Ordering::Relaxed)
    }

    pub(crate) fn add_memories_deleted(&self, n: u64) {
        self.memories_deleted.fetch_add(n, Ordering::Relaxed);
    }

    /// Quarantined bodies deleted by the retention window of raw events.
    pub fn quarantined_deleted_by_retention(&self) -> u64 {
        self.quarantined_deleted_by_retention
            .load(Ordering::Relaxed)
    }

    pub(crate) fn add_quarantined_deleted_by_retention(&self, n: u64) {
        self.quarantined_deleted_by_retention
            .fetch_add(n, Ordering::Relaxed);
    }
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident => $bump:ident;)*) => {
        impl ServiceStats {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> u64 {
                    self.$name.load(Ordering::Relaxed)
                }

                pub(crate) fn $bump(&self) {
                    self.$name.fetch_add(1, Ordering::Relaxed);
                }
            )*
        }
    };
}

counters! {
    /// Greetings answered with the defaults because the store was slow or failing.
    greeting_fallbacks => add_greeting_fallback;
    /// Memory-store calls that failed (any use case).
    store_errors => add_store_error;
    /// Post-call events written to the payload store (duplicates excluded).
    events_stored => add_event_stored;
    /// Events whose processing finished (memories written, or nothing to write).
    events_processed => add_event_processed;
    /// Redelivered events acknowledged without change.
    duplicates => add_duplicate;
    /// Events of a type this version does not know (stored, not processed).
    unknown_types => add_unknown_type;
    /// Bodies rejected as invalid and moved to quarantine.
    quarantined => add_quarantined;
    /// Events whose processing failed for good (recorded as `.failed`).
    processing_failures => add_processing_failure;
    /// Processing attempts that failed with a retryable error.
    retries => add_retry;
    /// Calls whose stored events and transcript were deleted on
    /// ElevenLabs' deletion settings.
    transcripts_deleted_by_settings => add_transcript_deleted_by_settings;
    /// Calls whose stored events and transcript were deleted by the
    /// retention window.
    transcripts_deleted_by_retention => add_transcript_deleted_by_retention;
    /// Calls whose audio was deleted on ElevenLabs' deletion settings.
    audio_deleted_by_settings => add_audio_deleted_by_settings;
    /// Calls whose audio was deleted by the retention window.
    audio_deleted_by_retention => add_audio_deleted_by_retention;
    /// Callers erased by the retention window (not heard from in time).
    callers_erased_by_retention => add_caller_erased_by_retention;
    /// Deletions that failed and are retried at the next sweep.
    deletion_failures => add_deletion_failure;
}
