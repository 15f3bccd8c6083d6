//! A whole call lifecycle over HTTP: an unknown caller, the post-call
//! event that names them, the next call greeted by name, then a search.

use serde_json::{Value, json};

use crate::helpers::{CALLER, Options, TestApp, spawn_app, spawn_with, transcription};

async fn play_lifecycle(app: &TestApp) {
    // First call: nobody knows this caller.
    let first = app.greet(CALLER).await;
    assert_eq!(first["type"], "conversation_initiation_client_data");
    assert_eq!(first["dynamic_variables"]["user_name"], "");
    assert!(
        first.get("conversation_config_override").is_none(),
        "an unknown caller gets the agent's own first message: {first}"
    );

    // After the call, ElevenLabs posts the signed transcription.
    let response = app
        .post_call(&transcription("conv_lifecycle_1", CALLER, "Margaret"))
        .await;
    assert_eq!(response.status(), 200);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack["status"], "stored");
    assert_eq!(ack["conversation_id"], "conv_lifecycle_1");
    app.settle().await;

    // Second call: greeted by name, with the last call in mind.
    let second = app.greet(CALLER).await;
    assert_eq!(second["dynamic_variables"]["user_name"], "Margaret");
    let first_message = second["conversation_config_override"]["agent"]["first_message"]
        .as_str()
        .expect("a known caller gets a first message");
    assert!(first_message.contains("Margaret"), "{first_message}");
    assert!(
        second["dynamic_variables"]["last_call_summary"]
            .as_str()
            .unwrap()
            .contains("roses"),
        "{second}"
    );

    // During the call, the agent's memory tool finds what was said.
    let response = app
        .search(&json!({"query": "roses black spot", "user_id": CALLER, "agent_id": "agent_1"}))
        .await;
    assert_eq!(response.status(), 200);
    let found: Value = response.json().await.unwrap();
    assert_eq!(found["profile"]["name"], "Margaret", "{found}");
    let memories = found["memories"].as_array().unwrap();
    assert!(
        memories
            .iter()
            .any(|m| m["content"].as_str().unwrap().contains("black spot")),
        "{found}"
    );

    // Another caller learns nothing about Margaret.
    let stranger = app.greet("+442071838750").await;
    assert_eq!(stranger["dynamic_variables"]["user_name"], "");
}

#[tokio::test]
async fn lifecycle_on_the_in_memory_store() {
    let app = spawn_app().await;
    play_lifecycle(&app).await;
}

#[tokio::test]
async fn lifecycle_on_the_embedded_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::new(dir.path()).var("RECALL_STORE", "embedded");
    let app = spawn_with(options()).await;
    play_lifecycle(&app).await;
    app.stop().await;
    drop(app);

    let again = spawn_with(options()).await;
    let greeting = again.greet(CALLER).await;
    assert_eq!(greeting["dynamic_variables"]["user_name"], "Margaret");
    assert!(dir.path().join("recall.db").exists());
}

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    app.greet(CALLER).await;
    // An invented method must not become a label set of its own.
    let invented = reqwest::Method::from_bytes(b"SCANME").unwrap();
    let odd = app
        .client
        .request(invented, app.url("/health"))
        .send()
        .await
        .unwrap();
    assert!(odd.status().is_client_error(), "{}", odd.status());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"recall_http_requests_total{route="/webhook/client-data",method="POST",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("recall_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(!metrics.contains("SCANME"), "{metrics}");
    assert!(metrics.contains(r#"method="OTHER""#), "{metrics}");
    assert!(
        metrics.contains("recall_post_call_pending_events 0"),
        "{metrics}"
    );
    assert!(metrics.contains("recall_store_errors_total 0"), "{metrics}");
    assert!(
        metrics.contains("recall_greeting_fallbacks_total 0"),
        "{metrics}"
    );
}
