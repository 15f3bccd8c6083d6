//! Redelivery, a store outage, and a restart with pending events: nothing
//! is lost and nothing is doubled.

use serde_json::{Value, json};

use crate::helpers::{CALLER, FlakyStore, Options, spawn_app, spawn_with, transcription};

async fn memory_count(app: &crate::helpers::TestApp) -> usize {
    let response = app
        .search(&json!({"query": "roses", "user_id": CALLER}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["memories"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing() {
    let app = spawn_app().await;
    let event = transcription("conv_twice", CALLER, "Margaret");
    let first: Value = app.post_call(&event).await.json().await.unwrap();
    assert_eq!(first["status"], "stored");
    app.settle().await;
    let before = memory_count(&app).await;
    assert!(before > 0);

    let second = app.post_call(&event).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["status"], "duplicate");
    app.settle().await;
    assert_eq!(memory_count(&app).await, before);
}

#[tokio::test]
async fn a_store_outage_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FlakyStore::new();
    let app = spawn_with(Options::new(dir.path()).store(store.clone())).await;
    store.set_failing(true);

    // The ringing phone is still answered, with the defaults.
    let greeting = app.greet(CALLER).await;
    assert_eq!(greeting["dynamic_variables"]["user_name"], "");
    // The event is acknowledged: it is on disk.
    assert_eq!(
        app.post_call(&transcription("conv_outage", CALLER, "Margaret"))
            .await
            .status(),
        200
    );
    app.settle().await;
    assert_eq!(app.service.pending_count(), 1);
    let search = app
        .search(&json!({"query": "roses", "user_id": CALLER}))
        .await;
    assert_eq!(search.status(), 503);
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("recall_post_call_pending_events 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("recall_store_errors_total 0"),
        "{metrics}"
    );

    // The store comes back; replaying the stored events catches up.
    store.set_failing(false);
    app.service.replay(None).await.unwrap();
    assert_eq!(app.service.pending_count(), 0);
    assert_eq!(
        app.greet(CALLER).await["dynamic_variables"]["user_name"],
        "Margaret"
    );
}

#[tokio::test]
async fn events_pending_at_shutdown_are_processed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = FlakyStore::new();
    store.set_failing(true);
    let app = spawn_with(Options::new(dir.path()).store(store.clone())).await;
    assert_eq!(
        app.post_call(&transcription("conv_restart", CALLER, "Margaret"))
            .await
            .status(),
        200
    );
    app.stop().await;
    drop(app);

    store.set_failing(false);
    let again = spawn_with(Options::new(dir.path()).store(store.clone())).await;
    again.settle().await;
    assert_eq!(again.service.pending_count(), 0);
    assert_eq!(
        again.greet(CALLER).await["dynamic_variables"]["user_name"],
        "Margaret"
    );
}

#[tokio::test]
async fn with_openmemory_unreachable_the_phone_is_still_answered() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(
        Options::new(dir.path())
            .var("RECALL_STORE", "openmemory")
            .var("OPENMEMORY_PORT", &port.to_string()),
    )
    .await;
    let greeting = app.greet(CALLER).await;
    assert_eq!(greeting["type"], "conversation_initiation_client_data");
    assert_eq!(greeting["dynamic_variables"]["user_name"], "");
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(crate::helpers::error_code(ready).await, "unavailable");
    // Post-call events are still acknowledged: they wait on disk.
    assert_eq!(
        app.post_call(&transcription("conv_om_down", CALLER, "Margaret"))
            .await
            .status(),
        200
    );
    assert_eq!(app.stored_conversations().await, 1);
}
