//! The call index port on PostgreSQL: the conformance suite, and replicas
//! recording one call's events at once.

mod common;

use common::with_schema;
use recall_model::PostCallWebhookRequest;
use recall_postgres::PgCallIndex;
use recall_service::{CallIndex, CallQuery, ProcessedEvent};
use serde_json::json;

#[tokio::test]
async fn the_postgres_call_index_keeps_the_call_index_rules() {
    with_schema(|db| async move {
        recall_service::conformance::calls::run_all(&PgCallIndex::new(db)).await;
    })
    .await;
}

fn event(envelope: serde_json::Value) -> ProcessedEvent {
    let id = envelope["data"]["conversation_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (request, _) = PostCallWebhookRequest::from_value_tolerant(envelope).unwrap();
    ProcessedEvent::from_request(id, request)
}

#[tokio::test]
async fn a_failure_racing_its_transcription_never_wins() {
    with_schema(|db| async move {
        let index = PgCallIndex::new(db);
        for round in 0..10 {
            let id = format!("conv_race_{round}");
            let connected = event(json!({"type": "post_call_transcription", "event_timestamp": 100,
                "data": {"agent_id": "agent_race", "conversation_id": id, "status": "done",
                    "metadata": {"start_time_unix_secs": 100, "call_duration_secs": 5}}}));
            let failed = event(json!({"type": "call_initiation_failure", "event_timestamp": 90,
                "data": {"agent_id": "agent_race", "conversation_id": id, "failure_reason": "busy"}}));
            let (a, b) = tokio::join!(index.record(&connected), index.record(&failed));
            a.unwrap();
            b.unwrap();
        }
        let page = index
            .list_calls(CallQuery {
                limit: Some(100),
                ..CallQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 10);
        assert!(page.items.iter().all(|c| !c.initiation_failed), "{page:?}");
    })
    .await;
}
