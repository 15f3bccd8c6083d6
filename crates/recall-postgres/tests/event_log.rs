//! The event log port on PostgreSQL: the conformance suite, and what only
//! a shared database shows (replicas racing, reopening, chunked audio).

mod common;

use base64::Engine as _;
use common::{url, with_schema};
use recall_postgres::{AUDIO_CHUNK, Database, PgEventLog};
use recall_service::conformance::events;
use recall_service::event_log::{EventLog, EventState};
use recall_service::{IngestError, Service, ServiceConfig};
use serde_json::json;
use tokio::io::AsyncReadExt as _;

/// What the service made of a body ingested on `log`: `Ok(true)` for a
/// duplicate, `Err` with the reason when refused.
async fn ingest(log: &PgEventLog, body: &[u8]) -> Result<bool, String> {
    let service = Service::new(
        std::sync::Arc::new(recall_memory::InMemoryStore::new()),
        log.clone(),
        ServiceConfig::default(),
    );
    match service.ingest_bytes(body).await {
        Ok(ack) => Ok(ack.duplicate),
        Err(IngestError::Invalid(reason)) => Err(reason),
        Err(e) => panic!("the log failed: {e:?}"),
    }
}

#[tokio::test]
async fn the_postgres_event_log_keeps_the_event_log_rules() {
    with_schema(|db| async move {
        events::run_all(&PgEventLog::open(db).await.unwrap()).await;
    })
    .await;
}

/// A second replica: its own pool on the same schema.
async fn replica(db: &Database) -> PgEventLog {
    let other = Database::builder(url().0)
        .schema(db.schema().unwrap())
        .pool_size(2)
        .connect()
        .await
        .unwrap();
    PgEventLog::open(other).await.unwrap()
}

#[tokio::test]
async fn replicas_racing_one_delivery_store_it_once_and_both_see_it() {
    with_schema(|db| async move {
        let (a, b) = (
            PgEventLog::open(db.clone()).await.unwrap(),
            replica(&db).await,
        );
        for round in 0..10 {
            let body = json!({"type": "post_call_transcription",
                "data": {"conversation_id": format!("conv_race_{round}"), "agent_id": "a"}})
            .to_string();
            let (x, y) = tokio::join!(ingest(&a, body.as_bytes()), ingest(&b, body.as_bytes()));
            let mut outcomes = [x.clone(), y.clone()];
            outcomes.sort();
            assert_eq!(
                outcomes,
                [Ok(false), Ok(true)],
                "round {round}: one stored, one duplicate"
            );
        }
        assert_eq!(a.conversations().await.unwrap().len(), 10);
        assert_eq!(b.conversations().await.unwrap().len(), 10);
    })
    .await;
}

#[tokio::test]
async fn what_was_acknowledged_is_there_for_a_new_process() {
    with_schema(|db| async move {
        let body = br#"{"type":"post_call_transcription","data":{"conversation_id":"conv_kept"}}"#;
        let first = PgEventLog::open(db.clone()).await.unwrap();
        assert_eq!(ingest(&first, body).await, Ok(false));
        assert!(ingest(&first, b"refused").await.is_err());
        drop(first);
        let reopened = replica(&db).await;
        let conversation = "conv_kept".parse().unwrap();
        let events = reopened.events(&conversation).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].state, EventState::Pending);
        assert!(events[0].received_nanos > 1_700_000_000_000_000_000);
        let usage = reopened.quarantine_usage();
        assert_eq!((usage.files, usage.bytes), (1, 7), "{usage:?}");
    })
    .await;
}

#[tokio::test]
async fn audio_is_kept_in_chunks_and_streams_back_whole() {
    with_schema(|db| async move {
        let log = PgEventLog::open(db.clone()).await.unwrap();
        let audio: Vec<u8> = (0..(2 * AUDIO_CHUNK + 1000) as u32)
            .map(|i| (i % 253) as u8)
            .collect();
        let body = json!({"type": "post_call_audio", "data": {"conversation_id": "conv_audio",
            "full_audio": base64::engine::general_purpose::STANDARD.encode(&audio)}});
        assert_eq!(ingest(&log, body.to_string().as_bytes()).await, Ok(false));
        let conversation = "conv_audio".parse().unwrap();
        assert_eq!(log.decode_audio(&conversation).await.unwrap(), audio.len() as u64);
        // Decoding again replaces it, no chunk left over.
        log.decode_audio(&conversation).await.unwrap();
        let chunks: Vec<i32> = db
            .client()
            .await
            .unwrap()
            .query(
                "SELECT length(data) FROM audio_chunks WHERE conversation_id = 'conv_audio' ORDER BY seq",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(chunks, [AUDIO_CHUNK as i32, AUDIO_CHUNK as i32, 1000]);
        let mut stored = log.open_audio(&conversation).await.unwrap().unwrap();
        assert_eq!(stored.len, audio.len() as u64);
        let mut read = Vec::new();
        stored.reader.read_to_end(&mut read).await.unwrap();
        assert!(read == audio, "the audio streams back byte for byte");
    })
    .await;
}

#[tokio::test]
async fn the_quarantine_keeps_within_its_caps_oldest_out_first() {
    with_schema(|db| async move {
        let log = PgEventLog::open(db)
            .await
            .unwrap()
            .with_quarantine_limits(3, 1_000);
        let mut ids = Vec::new();
        for i in 0..5 {
            assert!(
                ingest(&log, format!("not json {i}").as_bytes())
                    .await
                    .is_err()
            );
            let listed = log.quarantined(None, 100).await.unwrap();
            ids.push(listed.last().unwrap().id.clone());
        }
        let kept: Vec<String> = log
            .quarantined(None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|q| q.id)
            .collect();
        assert_eq!(kept, ids[2..]);
        let usage = log.quarantine_usage();
        assert_eq!((usage.files, usage.evicted), (3, 2), "{usage:?}");
        // One body over the byte cap alone is still kept: the newest is.
        let big = vec![b'x'; 2_000];
        assert!(ingest(&log, &big).await.is_err());
        let usage = log.quarantine_usage();
        assert_eq!(
            (usage.files, usage.bytes, usage.evicted),
            (1, 2_000, 5),
            "{usage:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn replicas_claiming_at_once_share_the_pending_events_out() {
    with_schema(|db| async move {
        let (a, b) = (
            PgEventLog::open(db.clone()).await.unwrap(),
            replica(&db).await,
        );
        for n in 0..10 {
            let body = json!({"type": "post_call_transcription",
                "data": {"conversation_id": format!("conv_claim_{n}"), "agent_id": "a"}});
            assert_eq!(ingest(&a, body.to_string().as_bytes()).await, Ok(false));
        }
        let lease = std::time::Duration::from_secs(60);
        let (x, y) = tokio::join!(a.claim("worker_a", 6, lease), b.claim("worker_b", 6, lease));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.len() + y.len(), 10, "{x:?} {y:?}");
        let mut all: Vec<String> = x
            .iter()
            .chain(&y)
            .map(|e| e.conversation.as_str().to_owned())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10, "no event is claimed twice");
        assert!(
            x.windows(2)
                .all(|w| w[0].received_nanos <= w[1].received_nanos)
        );
        assert!(a.claim("worker_c", 10, lease).await.unwrap().is_empty());

        // Done ends a claim for good; a release hands the event back at once.
        let (done, handed_back) = (&x[0], &x[1]);
        a.mark_done(&done.conversation, &done.kind, "{}")
            .await
            .unwrap();
        assert!(
            !a.release(&handed_back.conversation, &handed_back.kind, "worker_b")
                .await
                .unwrap()
        );
        assert!(
            a.release(&handed_back.conversation, &handed_back.kind, "worker_a")
                .await
                .unwrap()
        );
        let again = b.claim("worker_c", 10, lease).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].conversation, handed_back.conversation);

        // A lease that runs out lets another worker claim the event.
        let short = std::time::Duration::from_millis(50);
        a.release(&again[0].conversation, &again[0].kind, "worker_c")
            .await
            .unwrap();
        assert_eq!(a.claim("worker_d", 10, short).await.unwrap().len(), 1);
        assert!(b.claim("worker_e", 10, lease).await.unwrap().is_empty());
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert_eq!(b.claim("worker_e", 10, lease).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn an_event_is_claimed_by_one_replica_until_done_released_or_abandoned() {
    with_schema(|db| async move {
        let a = PgEventLog::open(db.clone()).await.unwrap();
        let b = replica(&db).await;
        assert!(EventLog::shared(&a), "replicas share the log");
        let body = json!({"type": "post_call_transcription", "event_timestamp": 1,
            "data": {"agent_id": "agent_1", "conversation_id": "conv_claimed", "status": "done"}});
        ingest(&a, body.to_string().as_bytes()).await.unwrap();
        let conversation = recall_model::ConversationId::parse("conv_claimed").unwrap();
        let kind = recall_model::WebhookType::PostCallTranscription;
        let lease = std::time::Duration::from_secs(60);

        assert!(
            EventLog::claim(&a, &conversation, &kind, lease)
                .await
                .unwrap()
        );
        assert!(
            !EventLog::claim(&b, &conversation, &kind, lease)
                .await
                .unwrap()
        );
        // The holder keeps it while it retries.
        assert!(
            EventLog::claim(&a, &conversation, &kind, lease)
                .await
                .unwrap()
        );
        EventLog::release(&a, &conversation, &kind).await.unwrap();
        assert!(
            EventLog::claim(&b, &conversation, &kind, lease)
                .await
                .unwrap()
        );

        // A lease that runs out frees the event for the others.
        let short = std::time::Duration::from_millis(50);
        assert!(
            EventLog::claim(&b, &conversation, &kind, short)
                .await
                .unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(
            EventLog::claim(&a, &conversation, &kind, lease)
                .await
                .unwrap()
        );

        // Done is done: nobody claims it again.
        a.mark_done(&conversation, &kind, "{}").await.unwrap();
        assert!(
            !EventLog::claim(&b, &conversation, &kind, lease)
                .await
                .unwrap()
        );
        assert!(
            !EventLog::claim(&a, &conversation, &kind, lease)
                .await
                .unwrap()
        );
        let unfinished = b.unfinished().await.unwrap();
        assert!(
            unfinished.iter().all(|e| e.conversation != conversation),
            "{unfinished:?}"
        );
    })
    .await;
}
