//! `RECALL_STORE=postgres`: the server keeps memories, events and the call
//! index in PostgreSQL, so two servers on one database answer for each
//! other. Each test uses a schema of its own, dropped at the end. Without
//! `DATABASE_URL` and without a local server, the tests say why they skip.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use recall_postgres::Database;
use serde_json::{Value, json};

use crate::helpers::{CALLER, Options, TestApp, spawn_with, transcription, try_spawn};

/// The local server CI and developers run.
const LOCAL: &str = "postgres://postgres@127.0.0.1:5432/test";
const TOKEN: &str = "postgres-test-admin-token";

fn url() -> (String, bool) {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, true),
        _ => (LOCAL.to_owned(), false),
    }
}

/// Runs `test` with a fresh schema name on a reachable server, then drops
/// the schema (also when the test fails).
async fn with_schema<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (url, asked) = url();
    let server = match Database::connect(&url).await {
        Ok(server) => server,
        Err(e) if !asked => {
            eprintln!("skipping: no PostgreSQL at {url} (set DATABASE_URL): {e}");
            return;
        }
        Err(e) => panic!("connecting to {url}: {e:?}"),
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let schema = format!("recall_server_{}_{}", std::process::id(), nanos.as_nanos());
    let outcome = tokio::spawn(test(schema.clone())).await;
    let client = server.client().await.expect("a connection");
    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    client.batch_execute(&drop).await.expect("schema dropped");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// A replica on `schema`, with its own (unused) data directory.
async fn replica(schema: &str, dir: &tempfile::TempDir) -> TestApp {
    let options = Options::new(dir.path())
        .var("RECALL_STORE", "postgres")
        .var("DATABASE_URL", &url().0)
        .var("RECALL_DATABASE_SCHEMA", schema)
        .var("RECALL_ADMIN_TOKEN", TOKEN);
    spawn_with(options).await
}

#[tokio::test]
async fn two_servers_on_one_database_answer_for_each_other() {
    with_schema(|schema| async move {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = replica(&schema, &dir_a).await;
        let b = replica(&schema, &dir_b).await;

        let event = transcription("conv_pg_1", CALLER, "Margaret");
        assert_eq!(a.post_call(&event).await.status(), 200);
        a.settle().await;

        // B never saw the event, yet greets and answers for the caller.
        let greeting = b.greet(CALLER).await;
        let variables = &greeting["dynamic_variables"];
        assert_eq!(variables["user_name"], "Margaret", "{greeting}");
        let response = b
            .search(&json!({"query": "roses black spot", "user_id": CALLER, "agent_id": "agent_1"}))
            .await;
        assert_eq!(response.status(), 200);
        let found: Value = response.json().await.unwrap();
        let memories = found["memories"].as_array().unwrap();
        assert!(
            memories
                .iter()
                .any(|m| m.to_string().contains("black spot")),
            "{found}"
        );

        // Its operator API lists the call A stored.
        let calls: Value = (b.client.get(b.url("/api/calls")).bearer_auth(TOKEN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(calls.to_string().contains("conv_pg_1"), "{calls}");

        // ElevenLabs delivering the same event again, to the other replica,
        // stores nothing new.
        assert_eq!(b.post_call(&event).await.status(), 200);
        b.settle().await;
        assert_eq!(b.stored_conversations().await, 1);
        let again = b
            .search(&json!({"query": "roses", "user_id": CALLER, "agent_id": "agent_1"}))
            .await;
        let again: Value = again.json().await.unwrap();
        assert_eq!(
            again["memories"].as_array().map(Vec::len),
            Some(memories.len()),
            "no duplicate memories: {again}"
        );

        // Another caller learns nothing of Margaret.
        let stranger = a.greet("+14155550100").await;
        assert_eq!(stranger["dynamic_variables"]["user_name"], "", "{stranger}");

        // Nothing was written to the data directories.
        for dir in [&dir_a, &dir_b] {
            let payloads = dir.path().join("payloads");
            assert!(!payloads.exists(), "{} exists", payloads.display());
        }
        a.stop().await;
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn postgres_needs_a_url_and_configured_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let error = try_spawn(Options::new(dir.path()).var("RECALL_STORE", "postgres"))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("DATABASE_URL"), "{error}");

    // Replicas must agree on the webhook secrets: none is generated.
    let mut options = Options::new(dir.path())
        .var("RECALL_STORE", "postgres")
        .var(
            "DATABASE_URL",
            "postgres://recall:hunter2@127.0.0.1:1/recall",
        );
    options.with_keys = false;
    let error = try_spawn(options).await.err().expect("refused").to_string();
    assert!(
        error.contains("replicas") && error.contains("ELEVENLABS_POST_CALL_KEY"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
    assert!(!dir.path().join("webhook-secrets.toml").exists());
}
