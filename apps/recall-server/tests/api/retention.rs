//! ElevenLabs' deletion settings and the retention windows, end to end: a
//! real server on the embedded layout (payload folder, SQLite call index)
//! answers for a call whose copies were deleted.

use std::time::Duration;

use serde_json::{Value, json};

use crate::admin::ADMIN_TOKEN;
use crate::helpers::{CALLER, Options, TestApp, now, spawn_with, transcription, try_spawn};

/// A transcription of `conversation` with ElevenLabs' deletion settings
/// (deleting transcript and audio at `deletion_time`), or without when
/// `None`.
pub fn scheduled(conversation: &str, deletion_time: Option<u64>) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&transcription(conversation, CALLER, "Margaret"))
        .expect("a JSON event");
    if let Some(time) = deletion_time {
        body["data"]["metadata"]["deletion_settings"] = json!({
            "deletion_time_unix_secs": time,
            "deleted_logs_at_time_unix_secs": null,
            "deleted_audio_at_time_unix_secs": null,
            "deleted_transcript_at_time_unix_secs": null,
            "delete_transcript_and_pii": true,
            "delete_audio": true
        });
    }
    serde_json::to_vec(&body).unwrap()
}

/// The call's audio event.
pub fn audio(conversation: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"type": "post_call_audio", "event_timestamp": 1_739_537_400,
        "data": {"agent_id": "agent_1", "conversation_id": conversation,
            "full_audio": "SUQzBAAAAAAA"}}),
    )
    .unwrap()
}

/// Options with an admin token and `vars`.
pub fn options(dir: &std::path::Path, vars: &[(&str, &str)]) -> Options {
    let mut options = Options::new(dir).var("RECALL_ADMIN_TOKEN", ADMIN_TOKEN);
    for (name, value) in vars {
        options = options.var(name, value);
    }
    options
}

/// `GET path` with the admin token.
pub async fn admin_get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

/// The call once its transcript and audio are reported deleted (both are
/// scheduled in these tests; they go one after the other), polled until
/// `deadline_secs` run out.
pub async fn deleted_call(app: &TestApp, conversation: &str, deadline_secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(deadline_secs);
    let path = format!("/api/calls/{conversation}");
    loop {
        let response = admin_get(app, &path).await;
        if response.status() == 200 {
            let call: Value = response.json().await.unwrap();
            let deleted = call.get("transcriptDeletedAt").is_some()
                && call.get("audioDeletedAt").is_some()
                && call["hasAudio"] == false;
            if deleted {
                return call;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{conversation}: the transcript and audio were not deleted in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a deleted call answers: its figures, no transcript, no audio, and
/// when they went.
pub async fn assert_deleted(app: &TestApp, call: &Value, conversation: &str) {
    assert_eq!(call["transcript"], json!([]), "{call}");
    assert_eq!(call["hasAudio"], false, "{call}");
    assert_eq!(call["call"]["duration"], 22.0, "{call}");
    assert_eq!(call["call"]["successful"], true, "{call}");
    assert_eq!(call["callerPhone"], CALLER, "{call}");
    assert!(
        call["transcriptDeletedAt"].as_str().unwrap().ends_with('Z'),
        "{call}"
    );
    assert!(call["audioDeletedAt"].as_str().is_some(), "{call}");
    let audio = admin_get(app, &format!("/api/calls/{conversation}/audio")).await;
    assert_eq!(audio.status(), 404);
    let analytics: Value = admin_get(app, "/api/analytics").await.json().await.unwrap();
    // Still counted, with its figures (every call here lasts 22 s).
    assert!(analytics["totalCalls"].as_u64() >= Some(1), "{analytics}");
    assert_eq!(analytics["avgDuration"], 22.0, "{analytics}");
}

#[tokio::test]
async fn a_deletion_time_already_past_deletes_the_copies_and_the_call_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(options(dir.path(), &[])).await;
    let body = scheduled("conv_past", Some(now() - 60));
    assert_eq!(app.post_call(&body).await.status(), 200);
    assert_eq!(app.post_call(&audio("conv_past")).await.status(), 200);
    app.settle().await;

    let call = deleted_call(&app, "conv_past", 10).await;
    assert_deleted(&app, &call, "conv_past").await;
    let stored =
        std::fs::read_to_string(app.event_path("conv_past", "post_call_transcription")).unwrap();
    assert!(
        !stored.contains("black spots") && !stored.contains("Margaret"),
        "{stored}"
    );
    let audio_event =
        std::fs::read_to_string(app.event_path("conv_past", "post_call_audio")).unwrap();
    assert!(!audio_event.contains("SUQz"), "{audio_event}");
    assert!(!app.payload_dir.join("conv_past/audio.mp3").exists());
    // Policy `raw` (the default): the memories learnt from the call stay.
    let memories: Value = admin_get(&app, &format!("/api/users/{CALLER}/memories"))
        .await
        .json()
        .await
        .unwrap();
    assert!(!memories.as_array().unwrap().is_empty(), "{memories}");
    let metrics = app.metrics().await;
    assert!(
        metrics
            .contains(r#"recall_deletions_total{part="transcript",reason="deletion_settings"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"recall_deletions_total{part="audio",reason="retention"} 0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("recall_deleted_memories_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_deletion_time_in_the_near_future_is_carried_out_by_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(options(dir.path(), &[("RECALL_RETENTION_SWEEP_SECS", "1")])).await;
    let due = now() + 3;
    assert_eq!(
        app.post_call(&scheduled("conv_soon", Some(due)))
            .await
            .status(),
        200
    );
    assert_eq!(app.post_call(&audio("conv_soon")).await.status(), 200);
    app.settle().await;
    if now() + 1 < due {
        let call: Value = admin_get(&app, "/api/calls/conv_soon")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            call["transcript"].as_array().map(Vec::len),
            Some(2),
            "{call}"
        );
        assert!(call.get("transcriptDeletedAt").is_none(), "{call}");
    }
    let call = deleted_call(&app, "conv_soon", 20).await;
    assert_deleted(&app, &call, "conv_soon").await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"recall_deletions_total{part="audio",reason="deletion_settings"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_call_without_deletion_settings_keeps_its_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(options(dir.path(), &[])).await;
    assert_eq!(
        app.post_call(&scheduled("conv_kept", None)).await.status(),
        200
    );
    app.settle().await;
    let report = app.service.sweep_retention().await;
    assert_eq!(report, recall_service::RetentionReport::default());
    let call: Value = admin_get(&app, "/api/calls/conv_kept")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        call["transcript"].as_array().map(Vec::len),
        Some(2),
        "{call}"
    );
    assert!(call.get("transcriptDeletedAt").is_none(), "{call}");
    assert!(call.get("audioDeletedAt").is_none(), "{call}");
}

#[tokio::test]
async fn a_pending_deletion_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let due = now() + 4;
    {
        // A sweep that never comes round again: only a restart can do it.
        let first = spawn_with(options(dir.path(), &[])).await;
        let body = scheduled("conv_restart", Some(due));
        assert_eq!(first.post_call(&body).await.status(), 200);
        first.settle().await;
        let c = "conv_restart".parse().unwrap();
        let record = first.service.event_log().deletion(&c).await.unwrap();
        assert_eq!(
            record.and_then(|r| r.due).map(|t| t.as_secs()),
            Some(due as i64)
        );
        first.stop().await;
    }
    let second = spawn_with(options(dir.path(), &[("RECALL_RETENTION_SWEEP_SECS", "1")])).await;
    let call = deleted_call(&second, "conv_restart", 20).await;
    assert_eq!(call["transcript"], json!([]), "{call}");
    assert_eq!(call["call"]["duration"], 22.0, "{call}");
}

#[tokio::test]
async fn the_callers_window_erases_a_caller_not_heard_from() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("RECALL_RETAIN_CALLERS_DAYS", "30"),
        ("RECALL_RETENTION_SWEEP_SECS", "1"),
    ];
    let app = spawn_with(options(dir.path(), &vars)).await;
    // The call started in February 2025: long before the window.
    let body = transcription("conv_silent", CALLER, "Margaret");
    assert_eq!(app.post_call(&body).await.status(), 200);
    app.settle().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while admin_get(&app, &format!("/api/users/{CALLER}"))
        .await
        .status()
        != 404
    {
        assert!(tokio::time::Instant::now() < deadline, "never erased");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        admin_get(&app, "/api/calls/conv_silent").await.status(),
        404
    );
    // The caller is 404 as soon as their memories are gone; the rest of
    // the erasure, and its count, follow a moment later.
    loop {
        let metrics = app.metrics().await;
        if metrics.contains("recall_retention_erased_callers_total 1") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!app.payload_dir.join("conv_silent").exists());
}

#[tokio::test]
async fn bad_deletion_and_retention_settings_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value, allowed) in [
        ("RECALL_DELETION_POLICY", "never", "raw, all or off"),
        ("RECALL_RETAIN_EVENTS_DAYS", "-1", "a whole number from 1"),
        ("RECALL_RETAIN_AUDIO_DAYS", "0", "a whole number from 1"),
        (
            "RECALL_RETAIN_CALLERS_DAYS",
            "a year",
            "a whole number from 1",
        ),
        ("RECALL_RETENTION_SWEEP_SECS", "0", "a whole number from 1"),
    ] {
        let options = Options::new(dir.path()).var(name, value);
        let error = try_spawn(options).await.err().expect("refused").to_string();
        assert!(error.contains(name), "{name}: {error}");
        assert!(error.contains(allowed), "{name}: {error}");
    }
    let options = Options::new(dir.path()).var("RECALL_DELETION_POLICY", "all");
    let config = options.config().unwrap();
    assert_eq!(
        config.service.deletion_policy,
        recall_service::DeletionPolicy::All
    );
    assert_eq!(config.service.retain_events, None);
}
