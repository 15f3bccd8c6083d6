//! The call index port: its conformance suite on the in-memory index, and
//! the service driving it (record, reindex, erase).

mod common;

use std::sync::Arc;

use common::*;
use recall_memory::InMemoryStore;
use recall_service::{
    CallIndex, CallQuery, InMemoryCallIndex, PayloadStore, Service, ServiceConfig, ServiceError,
};
use serde_json::json;

#[tokio::test]
async fn the_in_memory_index_passes_the_conformance_suite() {
    recall_service::conformance::calls::run_all(&InMemoryCallIndex::new()).await;
}

fn phone(raw: &str) -> recall_model::PhoneNumber {
    recall_model::PhoneNumber::parse(raw).unwrap()
}

struct Indexed {
    _dir: tempfile::TempDir,
    service: Service,
    index: Arc<InMemoryCallIndex>,
}

fn indexed() -> Indexed {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(InMemoryCallIndex::new());
    let service = Service::builder(
        Arc::new(InMemoryStore::new()),
        PayloadStore::open(dir.path()).unwrap(),
    )
    .config(ServiceConfig::default())
    .call_index(index.clone())
    .build();
    Indexed {
        _dir: dir,
        service,
        index,
    }
}

async fn calls_of(index: &InMemoryCallIndex, caller: &str) -> Vec<String> {
    index
        .list_calls(CallQuery {
            phone: Some(phone(caller)),
            ..CallQuery::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.call.conversation_id)
        .collect()
}

/// An outbound call: the agent rang Margaret from its own line.
fn outbound(id: &str) -> Vec<u8> {
    json!({"type": "post_call_transcription", "event_timestamp": 1_739_537_400,
        "data": {"agent_id": "agent_front_desk", "conversation_id": id,
            "metadata": {"start_time_unix_secs": 1_739_537_297,
                "phone_call": {"type": "twilio", "direction": "outbound",
                    "agent_number": BOB, "external_number": MARGARET}},
            "analysis": {"transcript_summary": "Reminded her of Friday's appointment."},
            "conversation_initiation_client_data": {
                "dynamic_variables": {"system__caller_id": BOB}}}})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn the_worker_reindex_and_erase_attribute_a_call_by_the_one_caller_rule() {
    let h = indexed();
    h.service.ingest_bytes(&outbound("conv_out")).await.unwrap();
    h.service
        .ingest_bytes(
            &Call::new("conv_in", MARGARET)
                .fact("first_name", "Margaret")
                .body(),
        )
        .await
        .unwrap();
    h.service.process_pending().await;
    // Live: filed under the person called, never the agent's line.
    assert_eq!(calls_of(&h.index, MARGARET).await, ["conv_out", "conv_in"]);
    assert!(calls_of(&h.index, BOB).await.is_empty());

    // A rebuild from the stored events answers the same.
    let before = h.index.list_calls(CallQuery::default()).await.unwrap();
    let report = h.service.reindex().await.unwrap();
    assert_eq!(
        (report.transcriptions, report.calls, report.skipped),
        (2, 2, 0)
    );
    assert_eq!(
        h.index.list_calls(CallQuery::default()).await.unwrap(),
        before
    );

    // Erasing her removes memories, events and index rows together.
    let erased = h.service.erase_caller(&phone(MARGARET)).await.unwrap();
    assert_eq!(
        (erased.conversations, erased.payloads, erased.indexed_calls),
        (2, 2, 2)
    );
    assert!(erased.memories >= 2, "{erased:?}");
    assert!(calls_of(&h.index, MARGARET).await.is_empty());
    assert!(
        h.service
            .event_log()
            .conversations()
            .await
            .unwrap()
            .is_empty()
    );
    // Idempotent.
    let again = h.service.erase_caller(&phone(MARGARET)).await.unwrap();
    assert_eq!(again, recall_service::EraseReport::default());
}

#[tokio::test]
async fn reindex_without_an_index_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::new(
        Arc::new(InMemoryStore::new()),
        PayloadStore::open(dir.path()).unwrap(),
        ServiceConfig::default(),
    );
    assert!(matches!(
        service.reindex().await,
        Err(ServiceError::NoCallIndex)
    ));
}
