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
