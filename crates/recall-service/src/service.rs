//! The [`Service`]: shared state, ingest and readiness.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use recall_memory::{Embedder, MemoryStore};
use recall_model::{ConversationId, UnixTimestamp, WebhookType};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::event_log::Appended;
use crate::{
    CallIndex, EventLog, IngestError, ServiceConfig, ServiceError, ServiceStats, StagedEvent,
};

/// Recall's use cases over a [`MemoryStore`] and an [`EventLog`]:
/// [`greet`](Self::greet), [`search`](Self::search),
/// [`ingest`](Self::ingest) (then processing off the request path),
/// [`replay`](Self::replay) and [`forget`](Self::forget).
///
/// Cheap to clone: clones share everything. Run one process per event
/// log: processing is serialized within a process, not across processes.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("payloads", &self.inner.payloads)
            .field("config", &self.inner.config)
            .field("pending", &self.pending_count())
            .finish_non_exhaustive()
    }
}

/// The key of a stored event.
pub(crate) type EventKey = (ConversationId, String);

/// A stored event waiting for processing.
#[derive(Clone, Debug)]
pub(crate) struct PendingEntry {
    /// Processing order: lower first.
    pub(crate) seq: u64,
    /// Failed attempts so far.
    pub(crate) attempts: u32,
    /// Not before this time (`None`: now).
    pub(crate) due: Option<Instant>,
    /// Why the last attempt failed.
    pub(crate) last_error: Option<String>,
}

/// Where a service reads the time: the system clock, or a fixed time
/// (for tests and evaluations that ask "last week" of a known day).
pub(crate) type Clock = Arc<dyn Fn() -> UnixTimestamp + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn MemoryStore>,
    pub(crate) embedder: Option<Arc<dyn Embedder>>,
    pub(crate) clock: Option<Clock>,
    pub(crate) payloads: Arc<dyn EventLog>,
    pub(crate) config: ServiceConfig,
    pub(crate) stats: ServiceStats,
    pub(crate) pending: Mutex<HashMap<EventKey, PendingEntry>>,
    /// Events whose processing failed for good, with the reason (as in
    /// their `.failed` files; filled from disk by the first scan).
    pub(crate) failed: Mutex<std::collections::BTreeMap<EventKey, String>>,
    pub(crate) next_seq: AtomicU64,
    /// Whether [`Service::load_backlog`] has run.
    pub(crate) backlog_loaded: std::sync::atomic::AtomicBool,
    /// Wakes the worker when an event arrives.
    pub(crate) wake: Notify,
    /// One processing pass (or replay, or forget) at a time.
    pub(crate) process_lock: tokio::sync::Mutex<()>,
    /// Told of each processed event (see [`Service::set_observer`]).
    pub(crate) observer: std::sync::OnceLock<Arc<dyn crate::EventObserver>>,
    /// The call index the worker records processed events in.
    pub(crate) call_index: Option<Arc<dyn CallIndex>>,
}

/// What [`Service::ingest`] did with an event.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IngestAck {
    /// The event's conversation.
    pub conversation_id: ConversationId,
    /// The event's type (possibly one this version does not know).
    pub event_type: WebhookType,
    /// Whether the same `(conversation_id, type)` was already stored, so
    /// nothing changed.
    pub duplicate: bool,
}

/// Whether events of this type are processed (the others are only kept).
pub(crate) fn is_processed_type(kind: &WebhookType) -> bool {
    matches!(
        kind,
        WebhookType::PostCallTranscription
            | WebhookType::PostCallAudio
            | WebhookType::CallInitiationFailure
    )
}

/// Builds a [`Service`] with the optional parts: an [`Embedder`] (search
/// by meaning) and a fixed clock.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use recall_memory::InMemoryStore;
/// use recall_model::UnixTimestamp;
/// use recall_service::{PayloadStore, Service, ServiceConfig};
///
/// let dir = tempfile::tempdir()?;
/// let asked_at = UnixTimestamp::from_secs(1_796_058_000)?;
/// let service = Service::builder(Arc::new(InMemoryStore::new()), PayloadStore::open(dir.path())?)
///     .config(ServiceConfig::default())
///     .clock(move || asked_at)
///     .build();
/// assert!(service.embedder().is_none());
/// # Ok(()) }
/// ```
pub struct ServiceBuilder {
    store: Arc<dyn MemoryStore>,
    payloads: Arc<dyn EventLog>,
    config: ServiceConfig,
    embedder: Option<Arc<dyn Embedder>>,
    clock: Option<Clock>,
    call_index: Option<Arc<dyn CallIndex>>,
}

impl ServiceBuilder {
    /// Sets the call index: the worker records every processed event in
    /// it, [`Service::reindex`] rebuilds it and [`Service::erase_caller`]
    /// erases a caller's rows from it. Without one, calls are not indexed.
    pub fn call_index(mut self, index: Arc<dyn CallIndex>) -> Self {
        self.call_index = Some(index);
        self
    }

    /// Sets the configuration (default: [`ServiceConfig::default`]).
    pub fn config(mut self, config: ServiceConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the embedder: memories are embedded when written and questions
    /// when asked, and search ranks by meaning as well as by words.
    /// Without one, search ranks by words and intent only.
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Reads the time from `clock` instead of the system clock: the time
    /// questions are asked at ("last week"), decay is computed at, and
    /// memories without a call time are dated.
    pub fn clock(mut self, clock: impl Fn() -> UnixTimestamp + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The service.
    pub fn build(self) -> Service {
        Service {
            inner: Arc::new(Inner {
                store: self.store,
                embedder: self.embedder,
                clock: self.clock,
                payloads: self.payloads,
                config: self.config,
                stats: ServiceStats::default(),
                pending: Mutex::new(HashMap::new()),
                failed: Mutex::new(std::collections::BTreeMap::new()),
                next_seq: AtomicU64::new(0),
                backlog_loaded: std::sync::atomic::AtomicBool::new(false),
                wake: Notify::new(),
                process_lock: tokio::sync::Mutex::new(()),
                observer: std::sync::OnceLock::new(),
                call_index: self.call_index,
            }),
        }
    }
}

impl Service {
    /// A service over `store` and `payloads`, without an embedder. Call
    /// [`ServiceConfig::validate`] first; start processing with
    /// [`spawn_worker`](Self::spawn_worker) (or run
    /// [`process_pending`](Self::process_pending) yourself).
    pub fn new(store: Arc<dyn MemoryStore>, events: impl EventLog, config: ServiceConfig) -> Self {
        Self::builder(store, events).config(config).build()
    }

    /// A builder for a service over `store` and `events` (the
    /// filesystem [`PayloadStore`](crate::PayloadStore) by default), to add
    /// an embedder, a call index or a clock.
    pub fn builder(store: Arc<dyn MemoryStore>, events: impl EventLog) -> ServiceBuilder {
        ServiceBuilder {
            store,
            payloads: Arc::new(events),
            config: ServiceConfig::default(),
            embedder: None,
            clock: None,
            call_index: None,
        }
    }

    /// The embedder, if the service has one.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.inner.embedder.as_ref()
    }

    /// The current time, from the service's clock.
    pub fn now(&self) -> UnixTimestamp {
        self.inner
            .clock
            .as_ref()
            .map_or_else(UnixTimestamp::now, |clock| clock())
    }

    /// Sets the observer told of each processed event, before the worker
    /// starts. There is one observer per service; a second one is refused
    /// and handed back.
    ///
    /// # Errors
    /// The observer, when one is already set.
    pub fn set_observer(
        &self,
        observer: Arc<dyn crate::EventObserver>,
    ) -> Result<(), Arc<dyn crate::EventObserver>> {
        self.inner.observer.set(observer)
    }

    /// The call index, if the service has one.
    pub fn call_index(&self) -> Option<&Arc<dyn CallIndex>> {
        self.inner.call_index.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// The event log: every event acknowledged, and the work queue.
    pub fn event_log(&self) -> &Arc<dyn EventLog> {
        &self.inner.payloads
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &ServiceStats {
        &self.inner.stats
    }

    /// Stored events waiting for processing (including those waiting to be
    /// retried). Events stored by an earlier run are counted once the
    /// worker or [`process_pending`](Self::process_pending) has scanned
    /// the payload store.
    pub fn pending_count(&self) -> usize {
        self.pending().len()
    }

    pub(crate) fn store(&self) -> &dyn MemoryStore {
        self.inner.store.as_ref()
    }

    pub(crate) fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<EventKey, PendingEntry>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn payloads(&self) -> &dyn EventLog {
        self.inner.payloads.as_ref()
    }

    /// Queues an event for processing (keeping its place if queued).
    pub(crate) fn enqueue(&self, key: EventKey) {
        let seq = self.next_seq();
        self.pending().entry(key).or_insert(PendingEntry {
            seq,
            attempts: 0,
            due: None,
            last_error: None,
        });
    }

    /// Whether the service can take traffic: the memory store answers and
    /// the payload store is writable.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.store().health().await?;
        self.payloads().probe().await?;
        Ok(())
    }

    /// Stores a received post-call event durably, then acknowledges it.
    ///
    /// The body (already authenticated) is made durable and filed by the
    /// event log ([`StagedBody::append`](crate::event_log::StagedBody::append)):
    /// its envelope (`type`, `data.conversation_id`) is read by streaming
    /// through it. Only then is the event acknowledged and queued;
    /// memories are written later by the worker.
    ///
    /// * The same `(conversation_id, type)` again: acknowledged with
    ///   `duplicate: true`; nothing changes.
    /// * A type this version does not know: stored, acknowledged, counted
    ///   (`unknown_types`) and logged; not processed.
    /// * Not JSON, no envelope, an unsafe conversation id or type:
    ///   [`IngestError::Invalid`] naming the problem; the body is moved to
    ///   the quarantine.
    #[tracing::instrument(name = "ingest", skip_all, fields(bytes = staged.len()))]
    pub async fn ingest(&self, staged: StagedEvent) -> Result<IngestAck, IngestError> {
        let (conversation_id, event_type, duplicate) = match staged.append().await? {
            Appended::Stored { conversation, kind } => (conversation, kind, false),
            Appended::Duplicate { conversation, kind } => (conversation, kind, true),
            Appended::Refused {
                reason,
                quarantined,
            } => {
                self.stats().add_quarantined();
                match quarantined {
                    Ok(id) => {
                        tracing::warn!(reason = %reason, quarantined = %id, "invalid event quarantined")
                    }
                    Err(e) => {
                        tracing::error!(reason = %reason, error = %e, "invalid event could not be quarantined")
                    }
                }
                return Err(IngestError::Invalid(reason));
            }
        };
        let ack = IngestAck {
            conversation_id,
            event_type,
            duplicate,
        };
        if ack.duplicate {
            self.stats().add_duplicate();
            tracing::info!(conversation_id = %ack.conversation_id, event_type = %ack.event_type, "duplicate event acknowledged");
        } else {
            self.stats().add_event_stored();
            if ack.event_type.is_unknown() {
                self.stats().add_unknown_type();
                tracing::warn!(conversation_id = %ack.conversation_id, event_type = %ack.event_type, "event of an unknown type stored, not processed");
            } else {
                tracing::info!(conversation_id = %ack.conversation_id, event_type = %ack.event_type, "event stored");
                self.enqueue((ack.conversation_id.clone(), ack.event_type.to_string()));
                self.inner.wake.notify_one();
            }
        }
        Ok(ack)
    }

    /// Starts receiving a post-call body into the event log: write it
    /// chunk by chunk as it arrives, then hand it to
    /// [`ingest`](Self::ingest). Dropping it discards it.
    ///
    /// # Errors
    /// When the event log cannot take a body now.
    pub async fn stage(&self) -> std::io::Result<StagedEvent> {
        self.payloads().stage().await
    }

    /// [`ingest`](Self::ingest) of a body held in memory.
    pub async fn ingest_bytes(&self, body: &[u8]) -> Result<IngestAck, IngestError> {
        let mut staged = self.stage().await?;
        staged.write(body).await?;
        self.ingest(staged).await
    }
}
