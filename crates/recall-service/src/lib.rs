//! Recall's use cases, generic over the [`MemoryStore`](recall_memory::MemoryStore)
//! port, an [`EventLog`] and a [`CallIndex`], with no HTTP in them.
//!
//! * [`Service::greet`]: the client-data webhook while the phone rings —
//!   dynamic variables and a personal `first_message`, within a latency
//!   budget, never failing.
//! * [`Service::search`]: the agent's memory tool during the call — one
//!   caller's profile and most relevant memories, compact.
//! * [`Service::ingest`]: the post-call webhook — the raw event stored
//!   durably (atomic write, fsync) before it is acknowledged; duplicates,
//!   unknown types and invalid bodies handled.
//! * [`Service::spawn_worker`] / [`Service::process_pending`]: turning
//!   stored events into memories off the request path (profile facts,
//!   the call's summary, decoded audio), retried with backoff when the
//!   store is down, resumed after a restart. [`Service::replay`] does it
//!   again, idempotently.
//! * [`Service::erase_caller`]: erasing a caller everywhere — memories,
//!   stored events, audio, call index rows, quarantined bodies, queued and
//!   failed events.
//! * [`Service::export_caller`]: everything held about one caller as one
//!   JSON document, written page by page.
//! * [`AuditLog`]: the port recording operator access to callers' data
//!   ([`FileAuditLog`], [`InMemoryAuditLog`]; PostgreSQL in
//!   `recall-postgres`).
//! * [`Service::reindex`]: rebuilding the [`CallIndex`] by replaying the
//!   stored events.
//! * [`Service::sweep_retention`] / [`Service::spawn_retention`]: carrying
//!   out ElevenLabs' deletion settings and the retention windows.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use recall_memory::InMemoryStore;
//! use recall_model::{ClientDataRequest, SearchDataRequest};
//! use recall_service::{PayloadStore, Service, ServiceConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let service = Service::new(
//!     Arc::new(InMemoryStore::new()),
//!     PayloadStore::open(dir.path())?,
//!     ServiceConfig::default(),
//! );
//!
//! // After a call, ElevenLabs posts what it learnt.
//! let ack = service.ingest_bytes(br#"{"type":"post_call_transcription","event_timestamp":1739537297,
//!   "data":{"agent_id":"agent_1","conversation_id":"conv_1",
//!     "analysis":{"transcript_summary":"Margaret moved her dental check-up to Friday.",
//!       "call_summary_title":"rebooking your check-up",
//!       "data_collection_results":{"first_name":{"data_collection_id":"first_name","value":"Margaret"}}},
//!     "conversation_initiation_client_data":{"dynamic_variables":{"system__caller_id":"+16129782029"}}}}"#).await?;
//! assert!(!ack.duplicate);
//! service.process_pending().await; // what the worker does in the background
//!
//! // Next time she calls, the agent greets her by name.
//! let request: ClientDataRequest = serde_json::from_str(
//!     r#"{"caller_id":"+16129782029","agent_id":"agent_1"}"#)?;
//! let greeting = service.greet(&request).await;
//! assert_eq!(greeting.response.dynamic_variables.user_name, "Margaret");
//! let first = greeting.response.conversation_config_override.unwrap().agent.unwrap().first_message.unwrap();
//! assert!(first.contains("Margaret") && first.contains("rebooking your check-up"));
//!
//! // During the call, the agent's tool finds the memory.
//! let search: SearchDataRequest = serde_json::from_str(
//!     r#"{"query":"dental check-up","user_id":"+16129782029","agent_id":"agent_1"}"#)?;
//! let found = service.search(&search).await?;
//! assert!(found.memories[0].content.contains("Friday"));
//! # Ok(()) }
//! ```

mod audit;
mod blocking;
mod calls;
mod config;
mod embedding;
mod envelope;
mod erase;
mod error;
pub mod event_log;
mod events;
mod export;
mod extract;
mod greet;
mod observer;
mod operator;
mod payload;
mod process;
pub mod redact;
mod reindex;
mod retention;
mod search;
mod service;
mod stats;
mod transfer;

/// The private body readers, exposed for the fuzz targets in `fuzz/` only
/// (enable the `fuzzing` feature). Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::envelope::{BodyError, decode_audio_from, read_envelope_from};

    fn reason(e: BodyError) -> String {
        match e {
            BodyError::Invalid(reason) => reason,
            // In-memory readers cannot fail to read.
            BodyError::Io(e) => panic!("I/O error reading memory: {e}"),
        }
    }

    /// Reads the envelope of a post-call body exactly as
    /// [`Service::ingest`](crate::Service::ingest) does: `(type,
    /// data.conversation_id)`, or why the body is refused.
    pub fn read_envelope(body: &[u8]) -> Result<(String, String), String> {
        if body.is_empty() {
            return Err("the body is empty".into());
        }
        read_envelope_from(body)
            .map(|e| (e.kind, e.conversation_id))
            .map_err(reason)
    }

    /// Decodes `data.full_audio` of a `post_call_audio` body into `out`
    /// as the worker does; returns the decoded length, or why not.
    pub fn decode_audio(body: &[u8], out: &mut Vec<u8>) -> Result<u64, String> {
        decode_audio_from(body, out).map_err(reason)
    }
}

pub use calls::{
    AnalyticsQuery, CallIndex, CallIndexError, CallQuery, CallRecord, DEFAULT_CALL_PAGE,
    InMemoryCallIndex, IndexedCall, MAX_CALL_PAGE, Page, ProcessedData, ProcessedEvent,
    encode_cursor,
};

/// Conformance suites of the ports this crate defines, for any
/// implementation (feature `conformance`). The `MemoryStore` port's suite
/// is `recall_memory::conformance`.
#[cfg(feature = "conformance")]
pub mod conformance {
    pub use crate::calls::conformance as calls;
    pub use crate::event_log::conformance as events;
}
pub use audit::{AUDIT_FILE_NAME, AuditEntry, AuditLog, FileAuditLog, InMemoryAuditLog};
pub use config::{
    ConfigError, DEFAULT_GREETING, DEFAULT_GREETING_WITHOUT_LAST_CALL, DEFAULT_NAME_FIELD_IDS,
    DeletionPolicy, RESERVED_VARIABLES, ServiceConfig,
};
pub use embedding::BackfillReport;
pub use erase::EraseReport;
pub use error::{IngestError, SearchError, ServiceError};
pub use event_log::{
    EventLog, EventState, InMemoryEventLog, QUARANTINE_MAX_BYTES, QUARANTINE_MAX_FILES,
    QuarantineUsage, StagedEvent, StoredEvent, StoredEventError,
};
pub use events::{EventEntry, EventPage, EventStatus, MAX_EVENT_PAGE};
pub use export::ExportReport;
pub use greet::{GreetFallback, GreetOutcome, Greeting};
pub use observer::EventObserver;
pub use payload::PayloadStore;
pub use process::{ProcessReport, ReplayReport, WorkerHandle};
pub use reindex::ReindexReport;
pub use retention::{RetentionHandle, RetentionReport};
pub use service::{IngestAck, Service, ServiceBuilder};
pub use stats::ServiceStats;
pub use transfer::{CountMismatch, TransferReport};
