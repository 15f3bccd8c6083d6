//! The event log port's conformance suite on both implementations that
//! ship: the filesystem `PayloadStore` (the embedded default) and the
//! in-memory log. A new backend runs the same suite.

use recall_service::conformance::events;
use recall_service::{InMemoryEventLog, PayloadStore};

#[tokio::test]
async fn the_filesystem_payload_store_keeps_the_event_log_rules() {
    let dir = tempfile::tempdir().unwrap();
    events::run_all(&PayloadStore::open(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn the_in_memory_event_log_keeps_the_event_log_rules() {
    events::run_all(&InMemoryEventLog::new()).await;
}

#[tokio::test]
async fn a_reopened_payload_store_still_has_what_it_acknowledged() {
    use recall_service::EventLog;
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"type":"post_call_transcription","data":{"conversation_id":"conv_kept","agent_id":"a"}}"#;
    {
        let log = PayloadStore::open(dir.path()).unwrap();
        let mut staged = log.stage().await.unwrap();
        staged.write(body).await.unwrap();
        let service = recall_service::Service::new(
            std::sync::Arc::new(recall_memory::InMemoryStore::new()),
            log,
            recall_service::ServiceConfig::default(),
        );
        assert!(!service.ingest(staged).await.unwrap().duplicate);
    }
    let log = PayloadStore::open(dir.path()).unwrap();
    let conversation = "conv_kept".parse().unwrap();
    let events = log.events(&conversation).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].state, recall_service::EventState::Pending);
}

mod common;

/// The whole call lifecycle runs on the in-memory log, no folder at all:
/// the service only speaks to the port.
#[tokio::test]
async fn the_service_remembers_a_caller_on_the_in_memory_log() {
    use common::{Call, MARGARET, first_message, remember, ringing};
    use recall_service::{EventLog, EventState, Service, ServiceConfig};
    use std::sync::Arc;

    let log = InMemoryEventLog::new();
    let service = Service::new(
        Arc::new(recall_memory::InMemoryStore::new()),
        log.clone(),
        ServiceConfig::default(),
    );
    let call = Call::new("conv_mem", MARGARET).fact("first_name", "Margaret");
    remember(&service, &call).await;
    let again = service.ingest_bytes(&call.body()).await.unwrap();
    assert!(again.duplicate);

    let conversation = "conv_mem".parse().unwrap();
    let events = log.events(&conversation).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].state, EventState::Done);
    assert_eq!(
        log.caller(&conversation).await.unwrap().unwrap().as_str(),
        MARGARET
    );
    let greeting = service.greet(&ringing(MARGARET, "agent_front_desk")).await;
    let message = first_message(&greeting.response).unwrap_or_default();
    assert!(message.contains("Margaret"), "{message}");

    let erased = service
        .erase_caller(&MARGARET.parse().unwrap())
        .await
        .unwrap();
    assert_eq!((erased.conversations, erased.payloads), (1, 1));
    assert!(log.conversations().await.unwrap().is_empty());
}
