//! The service on PostgreSQL alone: events, memories and the call index
//! all in one database, through a call's whole life.

mod common;

use std::sync::Arc;

use common::with_schema;
use recall_memory::MemoryStore;
use recall_model::{ClientDataRequest, PhoneNumber};
use recall_postgres::{PgCallIndex, PgEventLog, PgMemoryStore};
use recall_service::{CallIndex, CallQuery, EventLog, EventState, Service, ServiceConfig};
use serde_json::json;

const MARGARET: &str = "+16129782029";

fn call_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "post_call_transcription",
        "event_timestamp": 1_739_537_357,
        "data": {
            "agent_id": "agent_front_desk",
            "conversation_id": "conv_pg_1",
            "status": "done",
            "transcript": [{"role": "user", "message": "Hi, it's Margaret", "time_in_call_secs": 1}],
            "metadata": {"start_time_unix_secs": 1_739_537_297, "call_duration_secs": 42},
            "analysis": {
                "data_collection_results": {"first_name": {"data_collection_id": "first_name",
                    "value": "Margaret", "rationale": "said so"}},
                "call_successful": "success",
                "transcript_summary": "Margaret asked about her boiler service.",
                "call_summary_title": "Boiler service",
            },
            "conversation_initiation_client_data": {
                "dynamic_variables": {"system__caller_id": MARGARET}
            }
        }
    }))
    .unwrap()
}

fn ringing() -> ClientDataRequest {
    serde_json::from_value(json!({
        "caller_id": MARGARET, "agent_id": "agent_front_desk",
        "called_number": "+12025550158", "call_sid": "CA00000000000000000000000000000000"
    }))
    .unwrap()
}

#[tokio::test]
async fn the_service_remembers_and_forgets_a_caller_on_postgres_alone() {
    with_schema(|db| async move {
        let store = PgMemoryStore::new(db.clone());
        let log = PgEventLog::open(db.clone()).await.unwrap();
        let index = Arc::new(PgCallIndex::new(db.clone()));
        let service = Service::builder(Arc::new(store.clone()), log.clone())
            .config(ServiceConfig::default())
            .call_index(index.clone())
            .build();

        assert!(!service.ingest_bytes(&call_body()).await.unwrap().duplicate);
        let report = service.process_pending().await;
        assert_eq!((report.processed, report.failed), (1, 0), "{report:?}");
        assert!(service.ingest_bytes(&call_body()).await.unwrap().duplicate);

        let conversation = "conv_pg_1".parse().unwrap();
        let events = log.events(&conversation).await.unwrap();
        assert_eq!(events[0].state, EventState::Done);
        let caller = PhoneNumber::parse(MARGARET).unwrap();
        assert_eq!(
            log.caller(&conversation).await.unwrap(),
            Some(caller.clone())
        );
        let listed = index.list_calls(CallQuery::default()).await.unwrap();
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].caller.as_ref(), Some(&caller));

        let greeting = service.greet(&ringing()).await;
        let message = greeting
            .response
            .conversation_config_override
            .as_ref()
            .and_then(|c| c.agent.as_ref())
            .and_then(|a| a.first_message.clone())
            .unwrap_or_default();
        assert!(message.contains("Margaret"), "{message}");

        let erased = service.erase_caller(&caller).await.unwrap();
        assert_eq!(
            (erased.conversations, erased.payloads, erased.indexed_calls),
            (1, 1, 1),
            "{erased:?}"
        );
        assert!(erased.memories > 0, "{erased:?}");
        assert!(log.conversations().await.unwrap().is_empty());
        assert!(
            index
                .list_calls(CallQuery::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert_eq!(store.profile(&caller).await.unwrap().memory_count, 0);
    })
    .await;
}

/// One caller's calls, delivered newest first and processed several at a
/// time (the event log is shared): the newest call's facts win, and
/// every call is processed once.
#[tokio::test]
async fn a_callers_calls_processed_side_by_side_keep_the_newest_facts() {
    with_schema(|db| async move {
        let store = PgMemoryStore::new(db.clone());
        let log = PgEventLog::open(db.clone()).await.unwrap();
        let service = Service::builder(Arc::new(store.clone()), log)
            .config(ServiceConfig::default())
            .build();
        let calls = 12;
        for i in (0..calls).rev() {
            let mut body: serde_json::Value = serde_json::from_slice(&call_body()).unwrap();
            let data = &mut body["data"];
            data["conversation_id"] = json!(format!("conv_pg_side_{i}"));
            data["metadata"]["start_time_unix_secs"] = json!(1_739_537_297 + i * 3_600);
            data["analysis"]["data_collection_results"]["first_name"]["value"] =
                json!(format!("Name{i}"));
            data["analysis"]["transcript_summary"] = json!(format!("Call number {i}."));
            let body = serde_json::to_vec(&body).unwrap();
            assert!(!service.ingest_bytes(&body).await.unwrap().duplicate);
        }
        let report = service.process_pending().await;
        assert_eq!(
            (report.processed, report.failed),
            (calls as usize, 0),
            "{report:?}"
        );
        let caller = PhoneNumber::parse(MARGARET).unwrap();
        let profile = store.profile(&caller).await.unwrap();
        let newest = format!("Name{}", calls - 1);
        assert_eq!(
            profile.name.as_deref(),
            Some(newest.as_str()),
            "{profile:?}"
        );
        // One name fact, one episodic memory per call.
        assert_eq!(profile.memory_count, calls as u64 + 1, "{profile:?}");
    })
    .await;
}
