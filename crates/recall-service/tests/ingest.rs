//! Durable ingest: fixtures, redelivery, unknown types, quarantine, audio.

mod common;

use base64::Engine;
use common::*;
use recall_model::{NoIdentity, WebhookType};
use recall_service::{EventState, GreetOutcome, IngestError};

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn the_transcription_fixture_is_stored_and_processed_without_an_identity() {
    let h = Harness::new();
    let body = fixture("post_call_transcription.docs-example.json");
    let ack = h.service.ingest_bytes(&body).await.unwrap();
    assert_eq!(ack.conversation_id.as_str(), "abc");
    assert_eq!(ack.event_type, WebhookType::PostCallTranscription);
    assert!(!ack.duplicate);
    assert_eq!(
        std::fs::read(h.path("abc/post_call_transcription.json")).unwrap(),
        body
    );
    assert_eq!(h.service.pending_count(), 1);

    // Its user_id is "user123" and it has no caller id: kept, no memory.
    let report = h.service.process_pending().await;
    assert_eq!(report.processed, 1);
    assert_eq!(report.memories_written, 0);
    assert_eq!(h.store.total_memories(), 0);
    assert!(h.path("abc/post_call_transcription.done").exists());
    assert!(!h.path("abc/caller").exists());
    assert_eq!(h.service.pending_count(), 0);
}

#[tokio::test]
async fn the_audio_fixture_is_stored_and_its_placeholder_audio_recorded_as_a_failure() {
    let h = Harness::new();
    let ack = h
        .service
        .ingest_bytes(&fixture("post_call_audio.docs-example.json"))
        .await
        .unwrap();
    assert_eq!(ack.event_type, WebhookType::PostCallAudio);
    // The docs example's audio is "SUQz...base64_encoded_mp3_data...": not base64.
    let report = h.service.process_pending().await;
    assert_eq!(report.failed, 1);
    let reason = std::fs::read_to_string(h.path("abc/post_call_audio.failed")).unwrap();
    assert!(
        reason.contains("full_audio") && reason.contains("base64"),
        "{reason}"
    );
    assert!(!h.path("abc/audio.mp3").exists());
    assert_eq!(h.service.stats().processing_failures(), 1);
    // Not retried in a loop: the next pass has nothing to do.
    assert_eq!(h.service.process_pending().await, Default::default());
    let events = h
        .service
        .event_log()
        .events(&ack.conversation_id)
        .await
        .unwrap();
    assert_eq!(events[0].state, EventState::Failed);
}

#[tokio::test]
async fn the_call_initiation_failure_fixtures_are_kept_without_memory() {
    // The person each failed outbound call was for (Twilio `To`, SIP `to_number`).
    for (name, called) in [
        (
            "call_initiation_failure.twilio.docs-example.json",
            "+441111111111",
        ),
        (
            "call_initiation_failure.sip.docs-example.json",
            "+11111111111",
        ),
    ] {
        let h = Harness::new();
        let ack = h.service.ingest_bytes(&fixture(name)).await.unwrap();
        assert_eq!(ack.event_type, WebhookType::CallInitiationFailure, "{name}");
        let report = h.service.process_pending().await;
        assert_eq!(report.processed, 1, "{name}");
        assert!(h.path("abc/call_initiation_failure.json").exists());
        assert!(h.path("abc/call_initiation_failure.done").exists());
        assert_eq!(h.store.total_memories(), 0);
        // Recorded, so that forgetting that person removes the event.
        assert_eq!(
            std::fs::read_to_string(h.path("abc/caller")).unwrap(),
            called,
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_client_data_request_fixture_is_greeted() {
    let h = Harness::new();
    let request = serde_json::from_slice(&fixture(
        "conversation_initiation_client_data.request.CONSTRUCTED.json",
    ))
    .unwrap();
    let g = h.service.greet(&request).await;
    assert_eq!(g.outcome, GreetOutcome::NewCaller);
    let json = serde_json::to_value(&g.response).unwrap();
    // The same top-level shape as the documented response.
    let documented: serde_json::Value = serde_json::from_slice(&fixture(
        "conversation_initiation_client_data.response.docs-example.json",
    ))
    .unwrap();
    assert_eq!(json["type"], documented["type"]);
    for var in ["user_name", "user_profile_summary", "last_call_summary"] {
        assert_eq!(json["dynamic_variables"][var], "", "{var}");
    }
}

#[tokio::test]
async fn a_redelivered_event_is_acknowledged_and_changes_nothing() {
    let h = Harness::new();
    let call = Call::new("conv_1", MARGARET).fact("first_name", "Margaret");
    let body = call.body();
    h.service.ingest_bytes(&body).await.unwrap();

    // Redelivered with different content before processing: the first wins.
    let changed = Call::new("conv_1", MARGARET)
        .fact("first_name", "Maggie")
        .body();
    let ack = h.service.ingest_bytes(&changed).await.unwrap();
    assert!(ack.duplicate);
    assert_eq!(
        std::fs::read(h.path("conv_1/post_call_transcription.json")).unwrap(),
        body
    );
    assert_eq!(h.service.pending_count(), 1);
    h.service.process_pending().await;
    let memories = h.store.total_memories();

    // Redelivered after processing: nothing is processed again.
    let ack = h.service.ingest_bytes(&body).await.unwrap();
    assert!(ack.duplicate);
    assert_eq!(h.service.pending_count(), 0);
    assert_eq!(h.service.process_pending().await.processed, 0);
    assert_eq!(h.store.total_memories(), memories);
    assert_eq!(h.service.stats().duplicates(), 2);
    assert_eq!(h.service.stats().events_stored(), 1);
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.response.dynamic_variables.user_name, "Margaret");
    // No temporary files are left behind.
    assert!(files_in(&h.path("_incoming")).is_empty());
}

#[tokio::test]
async fn an_unknown_type_is_stored_acknowledged_and_counted() {
    let h = Harness::new();
    let body = br#"{"type":"post_call_video","event_timestamp":1,"data":{"conversation_id":"conv_9","frames":[1,2]}}"#;
    let ack = h.service.ingest_bytes(body).await.unwrap();
    assert_eq!(
        ack.event_type,
        WebhookType::Unknown("post_call_video".into())
    );
    assert!(!ack.duplicate);
    assert_eq!(
        std::fs::read(h.path("conv_9/post_call_video.json")).unwrap(),
        body
    );
    assert_eq!(h.service.stats().unknown_types(), 1);
    assert_eq!(h.service.pending_count(), 0);
    assert_eq!(h.service.process_pending().await.processed, 0);
    let replay = h.service.replay(None).await.unwrap();
    assert_eq!(replay.skipped, 1);
}

#[tokio::test]
async fn invalid_bodies_are_refused_with_a_reason_and_quarantined() {
    let h = Harness::new();
    for (body, expected) in [
        (
            &b"{\"type\": \"post_call_transcription\", \"data\": {"[..],
            "not valid JSON",
        ),
        (b"", "empty"),
        (b"[]", "JSON object"),
        (br#"{"data":{"conversation_id":"c"}}"#, "`type` is missing"),
        (br#"{"type":"post_call_audio"}"#, "`data` is missing"),
        (
            br#"{"type":"post_call_audio","data":{}}"#,
            "`data.conversation_id` is missing",
        ),
    ] {
        let err = h.service.ingest_bytes(body).await.unwrap_err();
        let IngestError::Invalid(reason) = err else {
            panic!("expected invalid, got {err:?}")
        };
        assert!(reason.contains(expected), "{reason}");
    }
    let quarantined = files_in(&h.path("_quarantine"));
    assert_eq!(
        quarantined.len(),
        12,
        "a body and its reason each: {quarantined:?}"
    );
    let reason_file = quarantined.iter().find(|n| n.ends_with(".reason")).unwrap();
    let reason = std::fs::read_to_string(h.path("_quarantine").join(reason_file)).unwrap();
    assert!(!reason.is_empty());
    assert_eq!(h.service.stats().quarantined(), 6);
    assert_eq!(h.service.stats().events_stored(), 0);
    // Only the store's own folders exist.
    assert_eq!(files_in(h.dir.path()), ["_incoming", "_quarantine"]);
}

#[tokio::test]
async fn conversation_ids_that_escape_the_payload_folder_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("payloads");
    let h = Harness::new();
    let service = recall_service::Service::new(
        std::sync::Arc::new(h.store.clone()),
        recall_service::PayloadStore::open(&root).unwrap(),
        Default::default(),
    );
    for id in [
        "../escaped",
        "..",
        "a/b",
        "/etc",
        "_quarantine",
        ".hidden",
        "a\\b",
    ] {
        let body = serde_json::to_vec(&serde_json::json!({
            "type": "post_call_transcription", "data": {"conversation_id": id}
        }))
        .unwrap();
        let err = service.ingest_bytes(&body).await.unwrap_err();
        let IngestError::Invalid(reason) = err else {
            panic!("{id}: expected invalid, got {err:?}")
        };
        assert!(reason.contains("conversation_id"), "{id}: {reason}");
    }
    let body = br#"{"type":"../../escaped","data":{"conversation_id":"conv_1"}}"#;
    let err = service.ingest_bytes(body).await.unwrap_err();
    assert!(matches!(err, IngestError::Invalid(r) if r.contains("type")));
    assert_eq!(files_in(outer.path()), ["payloads"]);
    assert_eq!(files_in(&root), ["_incoming", "_quarantine"]);
}

/// A deterministic pseudo-random byte stream.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn a_large_audio_event_is_streamed_in_and_decoded_to_mp3() {
    let h = Harness::new();
    let audio = noise(6 * 1024 * 1024 + 5);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&audio);
    // `type` after the big field, as real senders may order it.
    let head = br#"{"data":{"agent_id":"agent_front_desk","full_audio":""#;
    let tail = br#"","conversation_id":"conv_audio"},"event_timestamp":1739537319,"type":"post_call_audio"}"#;
    let mut staged = h.service.event_log().stage().await.unwrap();
    staged.write(head).await.unwrap();
    for chunk in encoded.as_bytes().chunks(64 * 1024) {
        staged.write(chunk).await.unwrap();
    }
    staged.write(tail).await.unwrap();
    let total = (head.len() + encoded.len() + tail.len()) as u64;
    assert_eq!(staged.len(), total);
    drop(encoded);

    let ack = h.service.ingest(staged).await.unwrap();
    assert_eq!(ack.conversation_id.as_str(), "conv_audio");
    assert_eq!(ack.event_type, WebhookType::PostCallAudio);
    assert_eq!(
        std::fs::metadata(h.path("conv_audio/post_call_audio.json"))
            .unwrap()
            .len(),
        total
    );
    let report = h.service.process_pending().await;
    assert_eq!(report.processed, 1, "{report:?}");
    let decoded = std::fs::read(h.path("conv_audio/audio.mp3")).unwrap();
    assert_eq!(decoded.len(), audio.len());
    assert!(
        decoded == audio,
        "the decoded audio differs from the original"
    );
    assert!(h.path("conv_audio/post_call_audio.done").exists());
    // Only the event, its marker and the audio: no temporary files.
    assert_eq!(
        files_in(&h.path("conv_audio")),
        ["audio.mp3", "post_call_audio.done", "post_call_audio.json"]
    );
}

#[tokio::test]
async fn a_staged_body_that_is_dropped_leaves_nothing() {
    let h = Harness::new();
    let mut staged = h.service.event_log().stage().await.unwrap();
    staged.write(b"{\"type\":").await.unwrap();
    assert_eq!(files_in(&h.path("_incoming")).len(), 1);
    drop(staged);
    assert!(files_in(&h.path("_incoming")).is_empty());
}

#[tokio::test]
async fn a_withheld_caller_leaves_the_payload_and_no_memory() {
    let h = Harness::new();
    let call = Call::new("conv_anon", "anonymous")
        .fact("first_name", "Margaret")
        .summary("A caller asked about opening hours.", "opening hours");
    h.service.ingest_bytes(&call.body()).await.unwrap();
    let report = h.service.process_pending().await;
    assert_eq!(report.processed, 1);
    assert_eq!(h.store.total_memories(), 0);
    assert!(h.path("conv_anon/post_call_transcription.json").exists());
    assert!(!h.path("conv_anon/caller").exists());
    let done = std::fs::read_to_string(h.path("conv_anon/post_call_transcription.done")).unwrap();
    assert!(done.contains(NoIdentity::Withheld.as_str()), "{done}");
}

#[tokio::test]
async fn bodies_left_half_received_by_a_crash_are_removed_at_start_up() {
    let h = Harness::new();
    std::fs::write(h.path("_incoming/0000.part"), b"{\"type\":\"post_call_tr").unwrap();
    let restarted = h.restart();
    assert!(files_in(&h.path("_incoming")).is_empty());
    assert_eq!(restarted.process_pending().await, Default::default());
    assert!(restarted.ready().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_store_each_event_exactly_once() {
    let h = Harness::new();
    let same = Call::new("conv_raced", MARGARET)
        .fact("first_name", "Margaret")
        .body();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let service = h.service.clone();
        // Half redeliver one event, half deliver events of their own.
        let body = if i % 2 == 0 {
            same.clone()
        } else {
            Call::new(&format!("conv_own_{i}"), MARGARET).body()
        };
        tasks.push(tokio::spawn(
            async move { service.ingest_bytes(&body).await },
        ));
    }
    let mut stored_raced = 0;
    let mut stored_own = 0;
    for task in tasks {
        let ack = task.await.unwrap().unwrap();
        if ack.duplicate {
            continue;
        }
        if ack.conversation_id.as_str() == "conv_raced" {
            stored_raced += 1;
        } else {
            stored_own += 1;
        }
    }
    assert_eq!(stored_raced, 1, "one of eight racing deliveries is stored");
    assert_eq!(stored_own, 8, "every distinct event is stored");
    assert_eq!(
        files_in(&h.dir.path().join("_incoming")),
        Vec::<String>::new(),
        "no staged file is left behind"
    );
}
