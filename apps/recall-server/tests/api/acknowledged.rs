//! Nothing acknowledged is lost: an event answered 200 becomes memories
//! and a call in the index, even with a bad field or an over-long summary;
//! a body that cannot be an event is refused with 400, never 500.

use serde_json::{Value, json};

use crate::admin::{get, get_json, spawn_admin};
use crate::helpers::{CALLER, TestApp, error_code, transcription};

fn event(conversation: &str) -> Value {
    serde_json::from_slice(&transcription(conversation, CALLER, "Margaret")).unwrap()
}

/// The `.done` record of a conversation's transcription.
fn done_record(app: &TestApp, conversation: &str) -> Value {
    let path = app
        .payload_dir
        .join(conversation)
        .join("post_call_transcription.done");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{conversation} was not processed: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn one_wrong_inner_field_costs_that_field_not_the_call() {
    let (app, _dir) = spawn_admin().await;
    type Break = fn(&mut Value);
    let cases: [(&str, &str, Break); 6] = [
        ("data.metadata.call_duration_secs", "conv_duration", |e| {
            e["data"]["metadata"]["call_duration_secs"] = json!("x")
        }),
        ("data.transcript", "conv_transcript", |e| {
            e["data"]["transcript"] = json!("x")
        }),
        ("data.analysis", "conv_analysis", |e| {
            e["data"]["analysis"] = json!([])
        }),
        (
            "data.analysis.data_collection_results.city",
            "conv_collected",
            |e| e["data"]["analysis"]["data_collection_results"]["city"] = json!(5),
        ),
        ("event_timestamp", "conv_timestamp", |e| {
            e["event_timestamp"] = json!(1e30)
        }),
        ("data.transcript[0].role", "conv_turn", |e| {
            e["data"]["transcript"][0]["role"] = json!({"who": "agent"})
        }),
    ];
    for (field, conversation, break_it) in cases {
        let mut body = event(conversation);
        break_it(&mut body);
        let response = app.post_call(&serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(response.status(), 200, "{field}");
        app.settle().await;

        let record = done_record(&app, conversation);
        let problems: Vec<&str> = record["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["field"].as_str().unwrap())
            .collect();
        assert_eq!(problems, [field], "{record}");

        let detail = get_json(&app, &format!("/api/calls/{conversation}")).await;
        assert_eq!(detail["callerPhone"], CALLER, "{field}");
    }
    let failed = get_json(&app, "/api/events?status=failed").await;
    assert_eq!(failed, json!([]));

    // What the good fields said is remembered: her name, from every call
    // but the one whose analysis was unreadable.
    let greeting = app.greet(CALLER).await;
    assert_eq!(
        greeting["dynamic_variables"]["user_name"], "Margaret",
        "{greeting}"
    );
    let calls = get_json(&app, "/api/calls").await;
    assert_eq!(calls.as_array().unwrap().len(), 6, "{calls}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("recall_post_call_field_problems_total 6"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_summary_over_64_kib_is_shortened_and_the_call_kept() {
    let (app, _dir) = spawn_admin().await;
    let mut body = event("conv_long");
    let sentence = "Margaret described every rose bed in her garden in great detail. ";
    let long = sentence.repeat(80 * 1024 / sentence.len());
    assert!(long.len() > 64 * 1024);
    body["data"]["analysis"]["transcript_summary"] = json!(long);
    let bytes = serde_json::to_vec(&body).unwrap();
    let response = app.post_call(&bytes).await;
    assert_eq!(response.status(), 200);
    app.settle().await;

    let record = done_record(&app, "conv_long");
    assert_eq!(
        record["problems"][0]["field"], "data.analysis.transcript_summary",
        "{record}"
    );
    assert!(
        record["memories_written"].as_u64().unwrap() >= 2,
        "{record}"
    );
    let detail = get_json(&app, "/api/calls/conv_long").await;
    assert_eq!(detail["callerPhone"], CALLER);

    let found: Value = app
        .search(
            &json!({"query": "rose beds in her garden", "user_id": CALLER, "agent_id": "agent_1"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let call = found["memories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["sector"] == "episodic")
        .unwrap_or_else(|| panic!("no call memory: {found}"));
    let content = call["content"].as_str().unwrap();
    assert!(
        content.ends_with('…') && content.len() < long.len(),
        "{}",
        content.len()
    );
    assert_eq!(
        app.greet(CALLER).await["dynamic_variables"]["user_name"],
        "Margaret"
    );

    // The stored event keeps the whole text.
    let stored = std::fs::read(app.event_path("conv_long", "post_call_transcription")).unwrap();
    assert_eq!(stored, bytes);
}

#[tokio::test]
async fn invalid_utf8_inside_a_signed_body_is_a_400_and_kept_in_quarantine() {
    let (app, _dir) = spawn_admin().await;
    let valid = transcription("conv_utf8", CALLER, "Margaret");
    let at = valid
        .windows(8)
        .position(|w| w == b"Margaret")
        .expect("the name is in the body");
    for bad in [
        &[0xff_u8][..],
        &[0xc3, 0x28],
        &[0xed, 0xa0, 0x80],
        &[0xe2, 0x82],
    ] {
        let mut body = valid.clone();
        body.splice(at..at + 1, bad.iter().copied());
        let response = app.post_call(&body).await;
        assert_eq!(response.status(), 400, "{bad:?}");
        assert_eq!(error_code(response).await, "invalid_event");
    }
    assert_eq!(app.stored_conversations().await, 0);
    let quarantined = std::fs::read_dir(app.quarantine_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(quarantined, 4);
    let listed = get_json(&app, "/api/events?status=quarantined").await;
    let items = listed.as_array().unwrap();
    assert_eq!(items.len(), 4, "{listed}");
    assert!(
        items
            .iter()
            .all(|i| i["reason"].as_str().unwrap().contains("UTF-8")),
        "{listed}"
    );
}

#[tokio::test]
async fn uploads_past_the_cap_get_503_with_retry_after_until_one_ends() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().unwrap();
    let app = crate::helpers::spawn_with(
        crate::helpers::Options::new(dir.path()).var("RECALL_POST_CALL_MAX_UPLOADS", "2"),
    )
    .await;
    let event = transcription("conv_cap", CALLER, "Margaret");
    let signature = app.signature(&event);
    let address = app.address.trim_start_matches("http://").to_owned();
    // Uploads that never finish their body (an unsigned sender needs no
    // key to do this).
    let head = format!(
        "POST /webhook/post-call HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         ElevenLabs-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        event.len()
    );
    let open_slow = || async {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&event[..10]).await.unwrap();
        stream
    };
    // An upload that was answered (refused while a probe held the room) is
    // replaced: only unanswered ones hold a place.
    let answered = |stream: &tokio::net::TcpStream| {
        let mut byte = [0_u8; 1];
        !matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    };
    let mut slow = vec![open_slow().await, open_slow().await];
    // Probe with a body the signature does not match: refused with 401
    // while there is room, so the probes store nothing.
    let probe = || app.post_call_signed(b"{}".to_vec(), Some(&signature));
    let mut refused = None;
    for _ in 0..500 {
        for stream in &mut slow {
            if answered(stream) {
                *stream = open_slow().await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let response = probe().await;
        if response.status() == 503 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 401);
    }
    let refused = refused.expect("a third upload is refused while two are received");
    assert_eq!(refused.headers()["retry-after"], "2");
    assert_eq!(error_code(refused).await, "unavailable");
    assert_eq!(app.stored_conversations().await, 0);

    // One of them ends: there is room again.
    let mut first = slow.remove(0);
    first.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = first.read_to_end(&mut sink).await;
    let mut room = false;
    for _ in 0..500 {
        if probe().await.status() == 401 {
            room = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(room, "an upload is received once another ended");
    assert_eq!(app.post_call(&event).await.status(), 200);
    assert_eq!(app.stored_conversations().await, 1);
}

#[tokio::test]
async fn the_quarantine_keeps_the_newest_bodies_within_its_caps() {
    let dir = tempfile::tempdir().unwrap();
    let app = crate::helpers::spawn_with(
        crate::helpers::Options::new(dir.path())
            .var("RECALL_QUARANTINE_MAX_FILES", "3")
            .var("RECALL_ADMIN_TOKEN", crate::admin::ADMIN_TOKEN),
    )
    .await;
    for i in 0..5 {
        let body = format!("{{\"type\": {i}}}");
        let response = app.post_call(body.as_bytes()).await;
        assert_eq!(response.status(), 400);
    }
    let listed = get_json(&app, "/api/events?status=quarantined").await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("recall_post_call_quarantined_bodies 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("recall_post_call_quarantine_evicted_total 2"),
        "{metrics}"
    );
    let kept: Vec<String> = std::fs::read_dir(app.quarantine_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for old in ["{\"type\": 0}", "{\"type\": 1}"] {
        assert!(!kept.iter().any(|k| k == old), "{kept:?}");
    }
}

#[tokio::test]
async fn failures_survive_a_restart_are_listed_and_replayed() {
    let (app, dir) = spawn_admin().await;
    // Acknowledged, then unusable when processed: a transcription whose
    // data has no agent id (ingest only reads the envelope).
    let mut body = event("conv_failed");
    body["data"].as_object_mut().unwrap().remove("agent_id");
    assert_eq!(
        app.post_call(&serde_json::to_vec(&body).unwrap())
            .await
            .status(),
        200
    );
    app.settle().await;
    let failed = get_json(&app, "/api/events?status=failed").await;
    assert_eq!(failed[0]["conversationId"], "conv_failed", "{failed}");
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("agent_id"),
        "{failed}"
    );
    app.stop().await;
    drop(app);

    // A new process over the same folder counts it from disk before its
    // first request (no processing pass needed).
    let app = crate::helpers::spawn_with(
        crate::helpers::Options::new(dir.path())
            .var("RECALL_ADMIN_TOKEN", crate::admin::ADMIN_TOKEN),
    )
    .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("recall_post_call_failed_events 1"),
        "{metrics}"
    );
    assert_eq!(
        get_json(&app, "/api/events?status=failed")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Fixed on disk (as an operator would), then replayed.
    let path = app.event_path("conv_failed", "post_call_transcription");
    std::fs::write(&path, transcription("conv_failed", CALLER, "Margaret")).unwrap();
    let report = app.service.replay_failed().await.unwrap();
    assert_eq!((report.processed, report.failed), (1, 0));
    assert_eq!(get_json(&app, "/api/events?status=failed").await, json!([]));
    assert_eq!(app.service.failed_count(), 0);
}

#[tokio::test]
async fn events_are_listed_by_status_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::helpers::FlakyStore::new();
    let app = crate::helpers::spawn_with(
        crate::helpers::Options::new(dir.path())
            .store(store.clone())
            .var("RECALL_ADMIN_TOKEN", crate::admin::ADMIN_TOKEN),
    )
    .await;
    // The store is down: events stay pending, with the reason.
    store.set_failing(true);
    for i in 0..5 {
        let response = app
            .post_call(&transcription(&format!("conv_{i}"), CALLER, "Margaret"))
            .await;
        assert_eq!(response.status(), 200);
    }
    // Not processed yet: pending.
    let first = get(&app, "/api/events?status=pending&limit=2").await;
    let cursor = first.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_owned();
    let first: Value = first.json().await.unwrap();
    let ids: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["conversationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["conv_0", "conv_1"]);
    assert_eq!(first[0]["type"], "post_call_transcription");
    assert_eq!(first[0]["status"], "pending");
    app.settle().await;
    let retrying = get_json(&app, "/api/events?status=pending&limit=1").await;
    assert!(retrying[0]["attempts"].as_u64().unwrap() >= 1, "{retrying}");
    assert!(
        retrying[0]["reason"]
            .as_str()
            .unwrap()
            .contains("test outage"),
        "{retrying}"
    );
    let rest = get(
        &app,
        &format!("/api/events?status=pending&limit=10&cursor={cursor}"),
    )
    .await;
    assert!(rest.headers().get("x-next-cursor").is_none());
    let rest: Value = rest.json().await.unwrap();
    assert_eq!(rest.as_array().unwrap().len(), 3);
    store.set_failing(false);
    app.settle().await;
    assert_eq!(
        get_json(&app, "/api/events?status=pending").await,
        json!([])
    );

    for bad in [
        "/api/events",
        "/api/events?status=done",
        "/api/events?status=failed&limit=0",
    ] {
        let response = get(&app, bad).await;
        assert_eq!(response.status(), 400, "{bad}");
        let code = error_code(response).await;
        assert!(
            code == "invalid_status" || code == "invalid_limit",
            "{bad}: {code}"
        );
    }
}
