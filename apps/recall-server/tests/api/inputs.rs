//! Bad input on every route: a clear JSON error, and nothing changes.

use serde_json::{Value, json};

use crate::helpers::{CALLER, Options, error_code, spawn_app, spawn_with, transcription};

#[tokio::test]
async fn client_data_rejects_bodies_that_are_not_json_and_greets_withheld_callers_with_defaults() {
    let app = spawn_app().await;
    for body in ["", "not json", "[1,2", "{\"caller_id\": 5}"] {
        let response = app
            .client
            .post(app.url("/webhook/client-data"))
            .header("X-Api-Key", &app.client_data_key)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        assert_eq!(error_code(response).await, "invalid_json", "{body:?}");
    }
    for withheld in ["anonymous", "", "+266696687", "{{system__caller_id}}"] {
        let greeting = app.greet(withheld).await;
        assert_eq!(greeting["dynamic_variables"]["user_name"], "", "{withheld}");
    }
}

#[tokio::test]
async fn search_names_the_bad_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"user_id": CALLER}), "invalid_query"),
        (json!({"query": "   ", "user_id": CALLER}), "invalid_query"),
        (
            json!({"query": "name", "user_id": "anonymous"}),
            "invalid_user_id",
        ),
        (json!({"query": "name"}), "invalid_user_id"),
        (
            json!({"query": "name", "user_id": "16129782029"}),
            "invalid_user_id",
        ),
    ];
    for (body, code) in cases {
        let response = app.search(&body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    let response = app
        .client
        .post(app.url("/webhook/search-data"))
        .header("X-Api-Key", &app.search_data_key)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_json");
}

#[tokio::test]
async fn post_call_rejects_signed_bodies_that_are_not_events_and_stores_nothing() {
    let app = spawn_app().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"{}".to_vec(),
        serde_json::to_vec(&json!({"type": "post_call_transcription", "data": {}})).unwrap(),
        serde_json::to_vec(&json!({
            "type": "post_call_transcription",
            "data": {"conversation_id": "../../etc", "agent_id": "a"}
        }))
        .unwrap(),
    ];
    for body in bodies {
        let response = app.post_call(&body).await;
        assert_eq!(response.status(), 400, "{}", String::from_utf8_lossy(&body));
        assert_eq!(error_code(response).await, "invalid_event");
    }
    assert_eq!(app.stored_conversations().await, 0);
    assert_eq!(app.service.pending_count(), 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
    let response = app
        .client
        .get(app.url("/webhook/post-call"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(error_code(response).await, "method_not_allowed");
}

#[tokio::test]
async fn oversized_bodies_get_413_as_json_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(Options::new(dir.path()).var("RECALL_POST_CALL_MAX_BYTES", "4096")).await;

    let big = vec![b' '; 100 * 1024];
    let response = app
        .client
        .post(app.url("/webhook/client-data"))
        .header("X-Api-Key", &app.client_data_key)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "payload_too_large");

    let mut event = transcription("conv_big", CALLER, "Margaret");
    event.extend(std::iter::repeat_n(b' ', 8 * 1024));
    let response = app.post_call(&event).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    assert!(body["message"].as_str().unwrap().contains("4096"));
    assert_eq!(app.stored_conversations().await, 0);
}

#[tokio::test]
async fn a_30_mib_audio_event_is_streamed_and_stored() {
    let app = spawn_app().await;
    let audio = "QUJD".repeat(30 * 1024 * 1024 / 4);
    let body = serde_json::to_vec(&json!({
        "type": "post_call_audio",
        "event_timestamp": 1_739_537_319,
        "data": {"agent_id": "agent_1", "conversation_id": "conv_audio", "full_audio": audio}
    }))
    .unwrap();
    assert!(body.len() > 30 * 1024 * 1024);
    let response = app.post_call(&body).await;
    assert_eq!(response.status(), 200);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack["type"], "post_call_audio");
    assert_eq!(app.stored_conversations().await, 1);
}

#[tokio::test]
async fn the_ip_allowlist_refuses_other_clients_and_believes_trusted_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(
        Options::new(dir.path())
            .var("RECALL_IP_ALLOWLIST", "34.67.146.145")
            .var("RECALL_TRUSTED_PROXIES", "127.0.0.1"),
    )
    .await;
    let greet = |forwarded: &'static str| {
        app.client
            .post(app.url("/webhook/client-data"))
            .header("X-Api-Key", &app.client_data_key)
            .header("X-Forwarded-For", forwarded)
            .json(&json!({"caller_id": CALLER, "agent_id": "agent_1"}))
            .send()
    };
    let refused = greet("6.6.6.6").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(error_code(refused).await, "forbidden");
    assert_eq!(greet("6.6.6.6, 34.67.146.145").await.unwrap().status(), 200);
    // Health is not a webhook: not restricted.
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // A percent-encoded path reaches the same handler, so it must meet the
    // same allowlist.
    let encoded = app
        .client
        .post(app.url("/webhook/%63lient-data"))
        .header("X-Api-Key", &app.client_data_key)
        .header("X-Forwarded-For", "6.6.6.6")
        .json(&json!({"caller_id": CALLER, "agent_id": "agent_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        encoded.status(),
        403,
        "an encoded path skipped the allowlist"
    );

    // A proxy that adds its own X-Forwarded-For line (instead of appending)
    // leaves the client's forged line first: the last line is the proxy's.
    let forged = app
        .client
        .post(app.url("/webhook/client-data"))
        .header("X-Api-Key", &app.client_data_key)
        .header("X-Forwarded-For", "34.67.146.145")
        .header("X-Forwarded-For", "6.6.6.6")
        .json(&json!({"caller_id": CALLER, "agent_id": "agent_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        403,
        "a forged first X-Forwarded-For line was believed"
    );
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_body_gets_408_and_nothing_is_stored() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(Options::new(dir.path()).var("RECALL_BODY_TIMEOUT_SECS", "1")).await;
    let event = transcription("conv_slow", CALLER, "Margaret");
    let signature = app.signature(&event);
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /webhook/post-call HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         ElevenLabs-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        event.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Half the body, then nothing more.
    stream.write_all(&event[..event.len() / 2]).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"request_timeout\""), "{response}");
    assert_eq!(app.stored_conversations().await, 0);
    assert_eq!(app.service.pending_count(), 0);
}

#[tokio::test]
async fn a_chunked_post_call_body_is_accepted_like_elevenlabs_sends_audio() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let app = spawn_app().await;
    let event = transcription("conv_chunked", CALLER, "Margaret");
    let signature = app.signature(&event);
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut request = format!(
        "POST /webhook/post-call HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         ElevenLabs-Signature: {signature}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in event.chunks(97) {
        request.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"stored\""), "{response}");
    assert_eq!(app.stored_conversations().await, 1);
}
