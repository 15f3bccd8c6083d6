//! The operator read API over real HTTP: access, every route, paging,
//! bad parameters, erasing a caller, and the index kept by the worker.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{CALLER, Options, TestApp, error_code, spawn_with, transcription};

pub const ADMIN_TOKEN: &str = "test-admin-token";
const OTHER_TOKEN: &str = "second-admin-token";
const OTHER_CALLER: &str = "+15550002222";

/// A server on the in-memory store with two admin tokens.
pub async fn spawn_admin() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(Options::new(dir.path()).var(
        "RECALL_ADMIN_TOKEN",
        &format!("{ADMIN_TOKEN}, {OTHER_TOKEN}"),
    ))
    .await;
    (app, dir)
}

pub async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

pub async fn get_json(app: &TestApp, path: &str) -> Value {
    let response = get(app, path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// Posts `body` through the signed webhook and processes it.
async fn ingest(app: &TestApp, body: &[u8]) {
    let response = app.post_call(body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    app.settle().await;
}

/// A transcription of `conversation` at `start` with `outcome`.
fn call(conversation: &str, caller: &str, name: &str, start: i64, outcome: &str) -> Vec<u8> {
    let mut event: Value =
        serde_json::from_slice(&transcription(conversation, caller, name)).unwrap();
    event["data"]["metadata"]["start_time_unix_secs"] = json!(start);
    event["data"]["analysis"]["call_successful"] = json!(outcome);
    event["data"]["transcript"][1]["interrupted"] = json!(true);
    serde_json::to_vec(&event).unwrap()
}

#[tokio::test]
async fn without_a_token_the_operator_surface_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(Options::new(dir.path())).await;
    for path in [
        "/api/calls",
        "/api/analytics",
        "/dashboard",
        "/dashboard/app.js",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth("anything")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "not_found");
    }
    // The document of the API stays available.
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn only_a_configured_bearer_token_opens_the_api() {
    let (app, _dir) = spawn_admin().await;
    let no_token = app.client.get(app.url("/api/calls")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(error_code(no_token).await, "unauthorized");
    for wrong in [
        app.client.get(app.url("/api/calls")).bearer_auth("guess"),
        app.client
            .get(app.url("/api/calls"))
            .bearer_auth(format!("{ADMIN_TOKEN}x")),
        app.client
            .get(app.url("/api/calls"))
            .header("Authorization", ADMIN_TOKEN),
        app.client
            .get(app.url("/api/calls"))
            .header("X-Api-Key", ADMIN_TOKEN),
        // A webhook secret is not an admin token.
        app.client
            .get(app.url("/api/calls"))
            .bearer_auth(&app.search_data_key),
    ] {
        let response = wrong.send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    for token in [ADMIN_TOKEN, OTHER_TOKEN] {
        let response = app
            .client
            .get(app.url("/api/calls"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{token}");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_caller_their_memories_calls_transcript_and_analytics() {
    let (app, _dir) = spawn_admin().await;
    ingest(
        &app,
        &call("conv_1", CALLER, "Margaret", 1_739_000_000, "success"),
    )
    .await;
    ingest(
        &app,
        &call("conv_2", CALLER, "Margaret", 1_739_100_000, "failure"),
    )
    .await;
    ingest(
        &app,
        &call("conv_3", OTHER_CALLER, "Bob", 1_739_200_000, "success"),
    )
    .await;

    let user = get_json(&app, &format!("/api/users/{CALLER}")).await;
    assert_eq!(user["phoneNumber"], CALLER);
    assert_eq!(user["name"], "Margaret");
    assert!(
        user["profileSummary"]
            .as_str()
            .unwrap()
            .contains("Margaret")
    );
    assert_eq!(
        user["lastCallSummary"],
        "Margaret asked how to treat black spot on her roses."
    );
    // The `+` may also arrive percent-encoded.
    let encoded = get_json(&app, "/api/users/%2B16129782029").await;
    assert_eq!(encoded, user);

    let memories = get_json(&app, &format!("/api/users/{CALLER}/memories")).await;
    let memories = memories.as_array().unwrap();
    assert!(memories.iter().all(|m| m["timestamp"].is_string()));
    let fact = memories.iter().find(|m| m["sector"] == "semantic").unwrap();
    assert_eq!(
        (fact["salience"].as_f64(), &fact["salienceLabel"]),
        (Some(0.9), &json!("High"))
    );
    let episode = memories.iter().find(|m| m["sector"] == "episodic").unwrap();
    assert_eq!(episode["salienceLabel"], "Medium");
    let semantic_only = get_json(
        &app,
        &format!("/api/users/{CALLER}/memories?sector=semantic"),
    )
    .await;
    assert!(
        semantic_only
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["sector"] == "semantic")
    );
    assert!(!semantic_only.as_array().unwrap().is_empty());

    let calls = get_json(&app, &format!("/api/calls?phone={}", "%2B16129782029")).await;
    let ids: Vec<_> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversationId"].clone())
        .collect();
    assert_eq!(ids, [json!("conv_2"), json!("conv_1")]);
    let first = &calls[1];
    assert_eq!(first["title"], "Roses with black spot");
    assert_eq!(first["duration"], 22.0);
    assert_eq!(first["successful"], true);
    assert_eq!(first["agentId"], "agent_1");
    assert_eq!(first["status"], "done");

    let detail = get_json(&app, "/api/calls/conv_1").await;
    assert_eq!(detail["call"], *first);
    assert_eq!(detail["callerPhone"], CALLER);
    assert_eq!(detail["startTime"], "2025-02-08T07:33:20Z");
    assert_eq!(detail["hasAudio"], false);
    let turns = detail["transcript"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[1]["role"], "user");
    assert_eq!(turns[1]["interrupted"], true);
    assert_eq!(turns[1]["timeInCallSecs"], 2.0);

    let analytics = get_json(&app, "/api/analytics").await;
    assert_eq!(analytics["totalCalls"], 3);
    assert!((analytics["successRate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(analytics["avgDuration"], 22.0);
    assert_eq!(
        analytics["dataCollected"],
        json!([
            {"fieldId": "first_name", "value": "Margaret", "count": 2},
            {"fieldId": "first_name", "value": "Bob", "count": 1}
        ])
    );
    let ranged = get_json(
        &app,
        "/api/analytics?from=2025-02-09T00:00:00Z&to=1739200000",
    )
    .await;
    assert_eq!(ranged["totalCalls"], 2);
    let daily = get_json(&app, "/api/analytics/daily").await;
    assert_eq!(
        daily,
        json!([
            {"day": "2025-02-08", "calls": 1, "successful": 1},
            {"day": "2025-02-09", "calls": 1, "successful": 0},
            {"day": "2025-02-10", "calls": 1, "successful": 1}
        ])
    );
}

#[tokio::test]
async fn initiation_failures_are_listed_and_counted_as_unsuccessful() {
    let (app, _dir) = spawn_admin().await;
    ingest(
        &app,
        &call("conv_1", CALLER, "Margaret", 1_739_000_000, "success"),
    )
    .await;
    let failure =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../../../shared/fixtures/elevenlabs/call_initiation_failure.sip.docs-example.json",
        ))
        .unwrap();
    ingest(&app, &failure).await;

    let calls = get_json(&app, "/api/calls").await;
    assert_eq!(calls[0]["conversationId"], "abc");
    assert_eq!(calls[0]["status"], "failed");
    assert_eq!(calls[0]["successful"], false);
    let analytics = get_json(&app, "/api/analytics").await;
    assert_eq!(analytics["totalCalls"], 2);
    assert_eq!(analytics["successRate"], 0.5);
    // Only the connected call has a duration.
    assert_eq!(analytics["avgDuration"], 22.0);
}

#[tokio::test]
async fn lists_page_with_a_cursor_header() {
    let (app, _dir) = spawn_admin().await;
    for (i, id) in ["conv_a", "conv_b", "conv_c"].iter().enumerate() {
        ingest(
            &app,
            &call(id, CALLER, "Margaret", 1_739_000_000 + i as i64, "success"),
        )
        .await;
    }
    let first = get(&app, "/api/calls?limit=2").await;
    let cursor = first.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_owned();
    let first: Value = first.json().await.unwrap();
    assert_eq!(first.as_array().unwrap().len(), 2);
    assert_eq!(first[0]["conversationId"], "conv_c");
    let second = get(&app, &format!("/api/calls?limit=2&cursor={cursor}")).await;
    assert!(second.headers().get("x-next-cursor").is_none());
    let second: Value = second.json().await.unwrap();
    assert_eq!(second, json!([first_call(&app, "conv_a").await]));

    let memories = get(&app, &format!("/api/users/{CALLER}/memories?limit=1")).await;
    let cursor = memories.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_owned();
    let page_one: Value = memories.json().await.unwrap();
    let page_two = get_json(
        &app,
        &format!("/api/users/{CALLER}/memories?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(page_one.as_array().unwrap().len(), 1);
    assert_eq!(page_two.as_array().unwrap().len(), 1);
    assert_ne!(page_one, page_two);
}

async fn first_call(app: &TestApp, id: &str) -> Value {
    get_json(app, &format!("/api/calls/{id}")).await["call"].clone()
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_them() {
    let (app, _dir) = spawn_admin().await;
    ingest(
        &app,
        &call("conv_1", CALLER, "Margaret", 1_739_000_000, "success"),
    )
    .await;
    let cases = [
        ("/api/users/16129782029", "invalid_phone", "phone"),
        (
            "/api/users/+1612-978-2029/memories",
            "invalid_phone",
            "phone",
        ),
        ("/api/calls?phone=not-a-number", "invalid_phone", "phone"),
        ("/api/calls?limit=0", "invalid_limit", "limit"),
        ("/api/calls?limit=201", "invalid_limit", "limit"),
        ("/api/calls?limit=ten", "invalid_limit", "limit"),
        ("/api/calls?cursor=not-a-cursor", "invalid_cursor", "cursor"),
        ("/api/calls?from=yesterday", "invalid_time", "from"),
        ("/api/calls?to=-5", "invalid_time", "to"),
        (
            "/api/calls?from=1739000001&to=1739000000",
            "invalid_time",
            "from",
        ),
        ("/api/calls?agent=a/b", "invalid_agent", "agent"),
        ("/api/analytics?to=tomorrow", "invalid_time", "to"),
        (
            "/api/users/+16129782029/memories?sector=musical",
            "invalid_sector",
            "sector",
        ),
        (
            "/api/users/+16129782029/memories?limit=0",
            "invalid_limit",
            "limit",
        ),
        (
            "/api/users/+16129782029/memories?cursor=zzz",
            "invalid_cursor",
            "cursor",
        ),
        (
            "/api/calls/a..b",
            "invalid_conversation_id",
            "conversation_id",
        ),
    ];
    for (path, code, parameter) in cases {
        let response = get(&app, path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{path}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{parameter}:")),
            "{path}: {message}"
        );
    }
    let unknown = get(&app, "/api/calls/conv_nope").await;
    assert_eq!(unknown.status(), 404);
    let unknown = get(&app, "/api/users/+15559990000").await;
    assert_eq!(unknown.status(), 404);
    let no_audio = get(&app, "/api/calls/conv_1/audio").await;
    assert_eq!(no_audio.status(), 404);
    assert_eq!(error_code(no_audio).await, "not_found");
    let wrong_method = app
        .client
        .post(app.url("/api/calls"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(error_code(wrong_method).await, "method_not_allowed");

    // A refused erase changes nothing.
    let refused = app
        .client
        .delete(app.url("/api/users/16129782029"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        get_json(&app, "/api/calls").await.as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn stored_audio_is_served_as_mp3() {
    let (app, _dir) = spawn_admin().await;
    ingest(
        &app,
        &call("conv_1", CALLER, "Margaret", 1_739_000_000, "success"),
    )
    .await;
    let mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00fake mp3 frames".repeat(500);
    let audio = json!({
        "type": "post_call_audio",
        "event_timestamp": 1_739_000_100,
        "data": {"agent_id": "agent_1", "conversation_id": "conv_1",
                 "full_audio": base64::engine::general_purpose::STANDARD.encode(&mp3)}
    });
    ingest(&app, &serde_json::to_vec(&audio).unwrap()).await;

    assert_eq!(get_json(&app, "/api/calls/conv_1").await["hasAudio"], true);
    let response = get(&app, "/api/calls/conv_1/audio").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(response.bytes().await.unwrap().as_ref(), mp3.as_slice());
}

#[tokio::test]
async fn erasing_a_caller_removes_memories_payloads_audio_and_calls() {
    let (app, dir) = spawn_admin().await;
    ingest(
        &app,
        &call("conv_1", CALLER, "Margaret", 1_739_000_000, "success"),
    )
    .await;
    ingest(
        &app,
        &call("conv_2", CALLER, "Margaret", 1_739_100_000, "success"),
    )
    .await;
    ingest(
        &app,
        &call("conv_3", OTHER_CALLER, "Bob", 1_739_200_000, "success"),
    )
    .await;
    let payloads = dir.path().join("payloads");
    assert!(payloads.join("conv_1").is_dir());

    let response = app
        .client
        .delete(app.url(&format!("/api/users/{CALLER}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["phoneNumber"], CALLER);
    assert_eq!(report["conversations"], 2);
    assert_eq!(report["indexedCalls"], 2);
    assert!(report["memories"].as_u64().unwrap() >= 2, "{report}");
    assert!(report["payloads"].as_u64().unwrap() >= 2, "{report}");

    assert_eq!(
        get(&app, &format!("/api/users/{CALLER}")).await.status(),
        404
    );
    assert_eq!(
        get_json(&app, &format!("/api/users/{CALLER}/memories")).await,
        json!([])
    );
    assert_eq!(
        get_json(&app, &format!("/api/calls?phone=%2B{}", &CALLER[1..])).await,
        json!([])
    );
    assert_eq!(get(&app, "/api/calls/conv_1").await.status(), 404);
    assert!(!payloads.join("conv_1").exists() && !payloads.join("conv_2").exists());
    // Nobody else is touched.
    assert!(payloads.join("conv_3").is_dir());
    assert_eq!(get_json(&app, "/api/analytics").await["totalCalls"], 1);
    assert_eq!(
        get_json(&app, &format!("/api/users/{OTHER_CALLER}")).await["name"],
        "Bob"
    );
}

#[tokio::test]
async fn a_missing_index_is_rebuilt_from_the_payloads_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        Options::new(dir.path())
            .var("RECALL_STORE", "embedded")
            .var("RECALL_ADMIN_TOKEN", ADMIN_TOKEN)
    };
    let app = spawn_with(options()).await;
    ingest(
        &app,
        &call("conv_1", CALLER, "Margaret", 1_739_000_000, "success"),
    )
    .await;
    let before = get_json(&app, "/api/calls").await;
    app.stop().await;

    std::fs::remove_file(dir.path().join("calls.db")).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("calls.db{suffix}")));
    }
    let app = spawn_with(options()).await;
    assert_eq!(get_json(&app, "/api/calls").await, before);
    assert_eq!(
        get_json(&app, "/api/calls/conv_1").await["transcript"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_with_a_strict_policy() {
    let (app, _dir) = spawn_admin().await;
    for (path, kind, needle) in [
        ("/dashboard", "text/html", "id=\"login-form\""),
        ("/dashboard/app.js", "text/javascript", "sessionStorage"),
        ("/dashboard/app.css", "text/css", "@media"),
    ] {
        // No token needed to load the sign-in page itself.
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{path}");
        // Nothing is loaded from elsewhere: the only URL is the SVG namespace.
        assert_eq!(
            body.matches("http").count(),
            body.matches("http://www.w3.org/2000/svg").count(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn reindex_rebuilds_what_the_api_serves_from_the_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(dir.path()).var("RECALL_ADMIN_TOKEN", ADMIN_TOKEN);
    let app = spawn_with(Options::new(dir.path()).var("RECALL_ADMIN_TOKEN", ADMIN_TOKEN)).await;
    ingest(
        &app,
        &call("conv_1", CALLER, "Margaret", 1_739_000_000, "success"),
    )
    .await;
    ingest(
        &app,
        &call("conv_2", CALLER, "Margaret", 1_739_100_000, "failure"),
    )
    .await;
    let before = get_json(&app, "/api/analytics").await;

    // `recall reindex`, while the server runs.
    let service = recall_server::open_service(&options.config().unwrap(), None)
        .await
        .unwrap();
    let report = service.reindex().await.unwrap();
    assert_eq!((report.transcriptions, report.skipped), (2, 0));
    assert_eq!(get_json(&app, "/api/analytics").await, before);
    assert_eq!(
        get_json(&app, "/api/calls").await.as_array().unwrap().len(),
        2
    );
}
