//! Processing off the request path: facts and calls, retries, restarts,
//! the worker, replay and forget.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use recall_memory::{
    AddOutcome, InMemoryStore, ListRequest, Memory, MemoryError, MemoryId, MemoryPage, MemoryStore,
    MemoryUpdate, NewMemory, ScoredMemory, SearchQuery, UserProfile,
};
use recall_model::{ConversationId, MemorySector, PhoneNumber};
use recall_service::{GreetOutcome, PayloadStore, Service, ServiceConfig, ServiceError};
use serde_json::json;

fn phone(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw).unwrap()
}

async fn all_memories(store: &InMemoryStore, caller: &str) -> Vec<Memory> {
    store
        .list(&phone(caller), &ListRequest::first(100))
        .await
        .unwrap()
        .items
}

/// Waits (without asserting on time) until `done` holds, failing after a
/// generous bound so a broken worker cannot hang the suite.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_later_call_supersedes_the_callers_name() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET).fact("first_name", "Margaret"),
    )
    .await;
    remember(
        &h.service,
        &Call::new("conv_2", MARGARET)
            .start(1_739_900_000)
            .fact("first_name", "Maggie")
            .fact("favourite_colour", "green"),
    )
    .await;
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.response.dynamic_variables.user_name, "Maggie");
    let names: Vec<String> = all_memories(&h.store, MARGARET)
        .await
        .into_iter()
        .filter(|m| {
            m.fact
                .as_ref()
                .is_some_and(|f| f.key.as_str() == "first_name")
        })
        .map(|m| m.content)
        .collect();
    assert_eq!(names, ["Caller's first_name: Maggie"]);

    // Replaying every event does not bring the old name back.
    let report = h.service.replay(None).await.unwrap();
    assert_eq!(report.processed, 2);
    assert_eq!(report.memories_written, 0, "{report:?}");
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.response.dynamic_variables.user_name, "Maggie");
}

#[tokio::test]
async fn an_older_call_processed_late_does_not_supersede_a_newer_fact() {
    let h = Harness::new();
    // The later call arrives (or is retried) first...
    remember(
        &h.service,
        &Call::new("conv_later", MARGARET)
            .start(1_739_900_000)
            .fact("first_name", "Maggie"),
    )
    .await;
    // ...then the earlier one, which also taught something new.
    remember(
        &h.service,
        &Call::new("conv_earlier", MARGARET)
            .start(1_739_000_000)
            .fact("first_name", "Margaret")
            .fact("dentist", "Dr Okafor"),
    )
    .await;
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.response.dynamic_variables.user_name, "Maggie");
    assert!(
        g.response
            .dynamic_variables
            .user_profile_summary
            .contains("Dr Okafor")
    );
}

#[tokio::test]
async fn replay_after_the_store_lost_everything_keeps_the_newest_name() {
    let h = Harness::new();
    // Conversation ids sort in the opposite order to the calls.
    remember(
        &h.service,
        &Call::new("conv_z", MARGARET)
            .start(1_739_000_000)
            .fact("first_name", "Margaret"),
    )
    .await;
    remember(
        &h.service,
        &Call::new("conv_a", MARGARET)
            .start(1_739_900_000)
            .fact("first_name", "Maggie"),
    )
    .await;
    h.store.erase_user(&phone(MARGARET)).await.unwrap();
    h.service.replay(None).await.unwrap();
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.response.dynamic_variables.user_name, "Maggie");
}

#[tokio::test]
async fn the_agents_words_are_never_taken_as_facts_about_the_caller() {
    let h = Harness::new();
    let call = Call::new("conv_1", MARGARET).transcript(json!([
        {"role": "agent", "message": "Hi, this is Margaret from Northside Dental. Who am I speaking with?"},
        {"role": "user", "message": "I'd like to book a cleaning next week."},
        {"role": "agent", "message": "Of course, Margaret can help with that."},
    ]));
    remember(&h.service, &call).await;
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(
        g.outcome,
        GreetOutcome::Recognised {
            named: false,
            last_call: true
        }
    );
    assert_eq!(g.response.dynamic_variables.user_name, "");
    assert_eq!(
        first_message(&g.response),
        None,
        "no name, no personal greeting"
    );
    let memories = all_memories(&h.store, MARGARET).await;
    assert_eq!(memories.len(), 1);
    assert_eq!(memories[0].sector, MemorySector::Episodic);
    assert!(memories[0].content.contains("book a cleaning"));
    assert!(
        !memories[0].content.contains("Margaret"),
        "{}",
        memories[0].content
    );
}

#[tokio::test]
async fn memories_carry_the_call_context() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_ctx", MARGARET)
            .agent("agent_clinic")
            .fact("first_name", "Margaret")
            .summary("Booked a cleaning for Friday.", "booking a cleaning"),
    )
    .await;
    let memories = all_memories(&h.store, MARGARET).await;
    let call = memories
        .iter()
        .find(|m| m.sector == MemorySector::Episodic)
        .unwrap();
    assert_eq!(call.salience.get(), 0.7);
    assert_eq!(
        call.created_at.as_secs(),
        1_739_537_297,
        "occurred at the call's start"
    );
    assert_eq!(call.agent_id.as_ref().unwrap().as_str(), "agent_clinic");
    assert_eq!(call.conversation_id.as_ref().unwrap().as_str(), "conv_ctx");
    assert_eq!(call.metadata["title"], "booking a cleaning");
    assert_eq!(call.metadata["duration_secs"], 42.0);
    let fact = memories
        .iter()
        .find(|m| m.sector == MemorySector::Semantic)
        .unwrap();
    assert_eq!(fact.salience.get(), 0.9);
    assert!(fact.decay_lambda.is_permanent());
    assert!(fact.tags.iter().any(|t| t == "first_name"));
    assert_eq!(
        std::fs::read_to_string(h.path("conv_ctx/caller")).unwrap(),
        MARGARET
    );
}

#[tokio::test]
async fn a_store_that_fails_then_recovers_loses_nothing() {
    let h = Harness::new();
    h.store.set_unavailable(true);
    let call = Call::new("conv_1", MARGARET)
        .fact("first_name", "Margaret")
        .summary("Asked for a callback.", "a callback");
    h.service.ingest_bytes(&call.body()).await.unwrap();

    let report = h.service.process_pending().await;
    assert_eq!(report.retrying, 1);
    assert_eq!(report.processed, 0);
    assert_eq!(h.service.pending_count(), 1);
    assert!(!h.path("conv_1/post_call_transcription.done").exists());
    assert!(!h.path("conv_1/post_call_transcription.failed").exists());
    assert_eq!(h.service.stats().retries(), 1);

    h.store.set_unavailable(false);
    let report = h.service.process_pending().await;
    assert_eq!(report.processed, 1);
    assert_eq!(report.memories_written, 2);
    assert_eq!(h.service.pending_count(), 0);
    assert!(h.path("conv_1/post_call_transcription.done").exists());
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.response.dynamic_variables.user_name, "Margaret");
}

#[tokio::test]
async fn a_restart_resumes_the_pending_events() {
    let h = Harness::new();
    h.service
        .ingest_bytes(
            &Call::new("conv_1", MARGARET)
                .fact("first_name", "Margaret")
                .body(),
        )
        .await
        .unwrap();
    h.service
        .ingest_bytes(&Call::new("conv_2", BOB).fact("first_name", "Bob").body())
        .await
        .unwrap();
    // The process stops before processing anything.
    drop(h.service.clone());
    let restarted = h.restart();
    assert_eq!(
        restarted.pending_count(),
        0,
        "nothing known before the scan"
    );
    let worker = restarted.spawn_worker();
    eventually("both events processed after the restart", || {
        h.path("conv_1/post_call_transcription.done").exists()
            && h.path("conv_2/post_call_transcription.done").exists()
    })
    .await;
    worker.shutdown().await;
    let g = restarted.greet(&ringing(BOB, "agent_front_desk")).await;
    assert_eq!(g.response.dynamic_variables.user_name, "Bob");
    assert_eq!(restarted.pending_count(), 0);
}

#[tokio::test]
async fn the_worker_processes_events_as_they_arrive_and_retries_with_backoff() {
    let config = ServiceConfig {
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        ..ServiceConfig::default()
    };
    let h = Harness::with_config(config);
    let worker = h.service.spawn_worker();

    h.service
        .ingest_bytes(
            &Call::new("conv_1", MARGARET)
                .fact("first_name", "Margaret")
                .body(),
        )
        .await
        .unwrap();
    eventually("the worker processed the event", || {
        h.path("conv_1/post_call_transcription.done").exists()
    })
    .await;

    h.store.set_unavailable(true);
    h.service
        .ingest_bytes(&Call::new("conv_2", BOB).fact("first_name", "Bob").body())
        .await
        .unwrap();
    let stats = h.service.clone();
    eventually("the worker retried", || stats.stats().retries() >= 2).await;
    assert!(!h.path("conv_2/post_call_transcription.done").exists());
    h.store.set_unavailable(false);
    eventually(
        "the worker processed the event once the store recovered",
        || h.path("conv_2/post_call_transcription.done").exists(),
    )
    .await;
    worker.shutdown().await;
    assert_eq!(h.service.stats().events_processed(), 2);
    assert_eq!(h.service.pending_count(), 0);
}

#[tokio::test]
async fn during_a_store_outage_the_worker_tries_one_event_per_retry_not_all() {
    let config = ServiceConfig {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(100),
        ..ServiceConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FailingAdds::always(|| {
        MemoryError::unavailable("store down")
    }));
    let service = Service::new(
        store.clone(),
        PayloadStore::open(dir.path()).unwrap(),
        config,
    );
    for i in 0..20 {
        service
            .ingest_bytes(
                &Call::new(&format!("conv_{i}"), MARGARET)
                    .fact("first_name", "Margaret")
                    .body(),
            )
            .await
            .unwrap();
    }
    let worker = service.spawn_worker();
    let stats = service.clone();
    eventually("the worker retried", || stats.stats().retries() >= 3).await;
    // Each pass tried one event and deferred the other 19: an outage costs
    // one store timeout per retry, not one per pending event.
    assert!(
        service.stats().retries() < 20,
        "{} attempts",
        service.stats().retries()
    );
    assert_eq!(service.pending_count(), 20);
    store.left.store(0, std::sync::atomic::Ordering::SeqCst);
    eventually("every event processed after recovery", || {
        stats.pending_count() == 0
    })
    .await;
    worker.shutdown().await;
    assert_eq!(service.stats().events_processed(), 20);
}

/// A store whose next `left` adds fail with `error`, then work.
struct FailingAdds {
    inner: InMemoryStore,
    error: fn() -> MemoryError,
    left: std::sync::atomic::AtomicUsize,
}

impl FailingAdds {
    /// Every add fails with `error`.
    fn always(error: fn() -> MemoryError) -> Self {
        Self::times(error, usize::MAX)
    }

    fn times(error: fn() -> MemoryError, n: usize) -> Self {
        Self {
            inner: InMemoryStore::new(),
            error,
            left: n.into(),
        }
    }
}

#[async_trait]
impl MemoryStore for FailingAdds {
    async fn add(&self, u: &PhoneNumber, m: NewMemory) -> Result<AddOutcome, MemoryError> {
        use std::sync::atomic::Ordering;
        let failing = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            Err((self.error)())
        } else {
            self.inner.add(u, m).await
        }
    }
    async fn search(
        &self,
        u: &PhoneNumber,
        q: &SearchQuery,
    ) -> Result<Vec<ScoredMemory>, MemoryError> {
        self.inner.search(u, q).await
    }
    async fn list(&self, u: &PhoneNumber, r: &ListRequest) -> Result<MemoryPage, MemoryError> {
        self.inner.list(u, r).await
    }
    async fn get(&self, u: &PhoneNumber, id: &MemoryId) -> Result<Memory, MemoryError> {
        self.inner.get(u, id).await
    }
    async fn update(
        &self,
        u: &PhoneNumber,
        id: &MemoryId,
        c: MemoryUpdate,
    ) -> Result<Memory, MemoryError> {
        self.inner.update(u, id, c).await
    }
    async fn delete(&self, u: &PhoneNumber, id: &MemoryId) -> Result<(), MemoryError> {
        self.inner.delete(u, id).await
    }
    async fn erase_user(&self, u: &PhoneNumber) -> Result<u64, MemoryError> {
        self.inner.erase_user(u).await
    }
    async fn profile(&self, u: &PhoneNumber) -> Result<UserProfile, MemoryError> {
        self.inner.profile(u).await
    }
    async fn health(&self) -> Result<(), MemoryError> {
        self.inner.health().await
    }
}

#[tokio::test]
async fn a_refused_write_is_recorded_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::new(
        Arc::new(FailingAdds::always(|| {
            MemoryError::rejected("content: refused by policy")
        })),
        PayloadStore::open(dir.path()).unwrap(),
        ServiceConfig::default(),
    );
    service
        .ingest_bytes(
            &Call::new("conv_1", MARGARET)
                .fact("first_name", "Margaret")
                .body(),
        )
        .await
        .unwrap();
    let report = service.process_pending().await;
    assert_eq!(report.failed, 1);
    assert_eq!(service.pending_count(), 0);
    let reason =
        std::fs::read_to_string(dir.path().join("conv_1/post_call_transcription.failed")).unwrap();
    assert!(reason.contains("refused by policy"), "{reason}");
    assert_eq!(service.process_pending().await.failed, 0, "not retried");
    // Replay tries again (an operator fixed the cause) and records it again.
    assert_eq!(service.replay(None).await.unwrap().failed, 1);
}

#[tokio::test]
async fn a_write_the_store_did_not_keep_stays_pending_and_is_retried() {
    // What the OpenMemory adapter answers when the server merged a write
    // into another caller's row on every attempt.
    let dir = tempfile::tempdir().unwrap();
    let service = Service::new(
        Arc::new(FailingAdds::times(
            || MemoryError::NotKept("OpenMemory merged the write".into()),
            1,
        )),
        PayloadStore::open(dir.path()).unwrap(),
        ServiceConfig::default(),
    );
    service
        .ingest_bytes(
            &Call::new("conv_1", MARGARET)
                .fact("first_name", "Margaret")
                .body(),
        )
        .await
        .unwrap();
    let report = service.process_pending().await;
    assert_eq!((report.retrying, report.failed), (1, 0));
    assert_eq!(service.pending_count(), 1);
    assert!(
        !dir.path()
            .join("conv_1/post_call_transcription.failed")
            .exists()
    );
    let report = service.process_pending().await;
    assert_eq!((report.processed, report.memories_written), (1, 1));
    assert_eq!(service.pending_count(), 0);
}

#[tokio::test]
async fn replay_rebuilds_lost_memories_idempotently() {
    let h = Harness::new();
    let call = Call::new("conv_1", MARGARET)
        .fact("first_name", "Margaret")
        .summary("Asked for a callback.", "a callback");
    remember(&h.service, &call).await;
    let conv = ConversationId::parse("conv_1").unwrap();

    let again = h.service.replay(Some(&conv)).await.unwrap();
    assert_eq!(
        (
            again.processed,
            again.memories_written,
            again.memories_unchanged
        ),
        (1, 0, 2)
    );
    assert_eq!(h.store.total_memories(), 2);

    // The store lost everything: replay brings it back.
    h.store.erase_user(&phone(MARGARET)).await.unwrap();
    let rebuilt = h.service.replay(None).await.unwrap();
    assert_eq!(rebuilt.memories_written, 2);
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.response.dynamic_variables.user_name, "Margaret");

    let missing = ConversationId::parse("conv_nope").unwrap();
    assert!(matches!(
        h.service.replay(Some(&missing)).await,
        Err(ServiceError::UnknownConversation(c)) if c == missing
    ));
}

#[tokio::test]
async fn forget_erases_a_caller_and_nobody_else() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_m1", MARGARET).fact("first_name", "Margaret"),
    )
    .await;
    remember(
        &h.service,
        &Call::new("conv_m2", MARGARET).summary("Asked about parking.", "parking"),
    )
    .await;
    // Her second call's audio.
    let audio = br#"{"type":"post_call_audio","data":{"conversation_id":"conv_m2","full_audio":"SUQzBAAAAAAA"}}"#;
    h.service.ingest_bytes(audio).await.unwrap();
    h.service
        .ingest_bytes(
            &Call::new("conv_m3", MARGARET)
                .fact("first_name", "Maggie")
                .body(),
        )
        .await
        .unwrap();
    h.service.process_pending().await;
    remember(
        &h.service,
        &Call::new("conv_b1", BOB).fact("first_name", "Bob"),
    )
    .await;
    // A fourth call of hers, not processed yet.
    h.service
        .ingest_bytes(
            &Call::new("conv_m4", MARGARET)
                .fact("first_name", "Peggy")
                .body(),
        )
        .await
        .unwrap();

    // A call to her that never connected.
    let failed = json!({"type": "call_initiation_failure", "data": {
        "agent_id": "agent_front_desk", "conversation_id": "conv_m5", "failure_reason": "busy",
        "metadata": {"type": "twilio", "body": {"Direction": "outbound-api",
            "From": "+15550001111", "To": MARGARET}}}});
    h.service
        .ingest_bytes(failed.to_string().as_bytes())
        .await
        .unwrap();
    // Bodies refused as invalid: one mentions her, one mentions Bob.
    let broken_hers = format!("{{\"caller\":\"{MARGARET}\",");
    let broken_bobs = format!("{{\"caller\":\"{BOB}\",");
    for body in [&broken_hers, &broken_bobs] {
        assert!(h.service.ingest_bytes(body.as_bytes()).await.is_err());
    }

    let report = h.service.erase_caller(&phone(MARGARET)).await.unwrap();
    assert_eq!(report.conversations, 5);
    assert_eq!(
        report.payloads, 6,
        "four transcriptions, one audio event, one failed call"
    );
    assert_eq!(report.audio, 1);
    assert_eq!(report.quarantined, 1);
    let left: Vec<String> = std::fs::read_dir(h.path("_quarantine"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(left.len(), 2, "Bob's body and its reason");
    assert!(left.iter().any(|t| t == &broken_bobs));
    // Her current name (Maggie superseded Margaret) and the parking call.
    assert_eq!(report.memories, 2, "{report:?}");
    for conv in ["conv_m1", "conv_m2", "conv_m3", "conv_m4", "conv_m5"] {
        assert!(!h.path(conv).exists(), "{conv}");
    }
    assert!(all_memories(&h.store, MARGARET).await.is_empty());
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.outcome, GreetOutcome::NewCaller);

    // Bob is untouched.
    assert!(h.path("conv_b1/post_call_transcription.json").exists());
    let g = h.service.greet(&ringing(BOB, "agent_front_desk")).await;
    assert_eq!(g.response.dynamic_variables.user_name, "Bob");
}

#[tokio::test]
async fn forget_finds_calls_that_are_not_processed_yet() {
    let h = Harness::new();
    h.store.set_fail_writes(true);
    h.service
        .ingest_bytes(
            &Call::new("conv_1", MARGARET)
                .fact("first_name", "Margaret")
                .body(),
        )
        .await
        .unwrap();
    h.service.process_pending().await; // fails: stays pending
    h.service
        .ingest_bytes(
            &Call::new("conv_2", MARGARET)
                .fact("first_name", "Maggie")
                .body(),
        )
        .await
        .unwrap(); // never processed
    h.store.set_fail_writes(false);
    let report = h.service.erase_caller(&phone(MARGARET)).await.unwrap();
    assert_eq!(report.conversations, 2);
    assert_eq!(h.service.pending_count(), 0);
    // Nothing of hers comes back afterwards.
    h.service.process_pending().await;
    assert_eq!(h.store.total_memories(), 0);
}

#[tokio::test]
async fn forget_deletes_nothing_when_the_store_fails() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET).fact("first_name", "Margaret"),
    )
    .await;
    h.store.set_unavailable(true);
    let err = h.service.erase_caller(&phone(MARGARET)).await.unwrap_err();
    assert!(matches!(err, ServiceError::Store(_)));
    assert!(h.path("conv_1/post_call_transcription.json").exists());
    h.store.set_unavailable(false);
    assert_eq!(all_memories(&h.store, MARGARET).await.len(), 1);
}

/// Records what it is told and what held at that moment.
struct Recorder {
    store: InMemoryStore,
    payloads: Arc<dyn recall_service::EventLog>,
    told: std::sync::Mutex<Vec<Told>>,
}

#[derive(Debug, PartialEq)]
struct Told {
    conversation: String,
    kind: String,
    event_exists: bool,
    memories_then: usize,
    caller_then: Option<PhoneNumber>,
}

#[async_trait]
impl recall_service::EventObserver for Recorder {
    async fn processed(&self, event: &recall_service::ProcessedEvent) {
        let conversation = &event.conversation;
        let event_exists = self
            .payloads
            .events(conversation)
            .await
            .unwrap()
            .iter()
            .any(|e| e.kind == event.kind);
        let caller_then = self.payloads.caller(conversation).await.unwrap();
        self.told.lock().unwrap().push(Told {
            conversation: conversation.as_str().to_owned(),
            kind: event.kind.to_string(),
            event_exists,
            memories_then: self.store.total_memories(),
            caller_then: caller_then.clone(),
        });
        assert_eq!(event.caller, caller_then);
    }
}

#[tokio::test]
async fn the_observer_hears_of_an_event_only_once_its_memories_and_caller_are_written() {
    let h = Harness::new();
    let recorder = Arc::new(Recorder {
        store: h.store.clone(),
        payloads: h.service.event_log().clone(),
        told: std::sync::Mutex::default(),
    });
    assert!(h.service.set_observer(recorder.clone()).is_ok());
    assert!(
        h.service.set_observer(recorder.clone()).is_err(),
        "a second observer must be refused"
    );

    h.store.set_unavailable(true);
    let call = Call::new("conv_observed", MARGARET).fact("first_name", "Margaret");
    h.service.ingest_bytes(&call.body()).await.unwrap();
    h.service.process_pending().await;
    assert!(
        recorder.told.lock().unwrap().is_empty(),
        "told of an event whose memories are not written"
    );

    h.store.set_unavailable(false);
    let report = h.service.replay(None).await.unwrap();
    assert_eq!(report.processed, 1, "{report:?}");
    assert_eq!(
        *recorder.told.lock().unwrap(),
        [Told {
            conversation: "conv_observed".to_owned(),
            kind: "post_call_transcription".to_owned(),
            event_exists: true,
            memories_then: 1,
            caller_then: Some(phone(MARGARET)),
        }]
    );
}
