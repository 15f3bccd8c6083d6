//! Privacy over real HTTP: the per-caller export, the audit log of
//! operator access, and erasure that leaves the number nowhere.

use recall_model::ui::CallerExport;
use serde_json::{Value, json};

use crate::admin::{ADMIN_TOKEN, get, get_json, spawn_admin};
use crate::helpers::{CALLER, Options, TestApp, error_code, spawn_with, transcription};

const OTHER_CALLER: &str = "+15550002222";

/// A transcription of `conversation` by `caller` starting at `start`.
fn call_at(conversation: &str, caller: &str, name: &str, start: i64) -> Vec<u8> {
    let mut event: Value =
        serde_json::from_slice(&transcription(conversation, caller, name)).unwrap();
    event["data"]["metadata"]["start_time_unix_secs"] = json!(start);
    serde_json::to_vec(&event).unwrap()
}

async fn post(app: &TestApp, body: &[u8]) {
    let response = app.post_call(body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

fn audio(conversation: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"type": "post_call_audio", "event_timestamp": 1_739_537_400,
        "data": {"agent_id": "agent_1", "conversation_id": conversation,
                 "full_audio": "SUQzBAAAAAAAAA=="}}),
    )
    .unwrap()
}

/// Every memory of `phone`, paged through the memories route.
async fn all_memories(app: &TestApp, phone: &str) -> usize {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/users/%2B{}/memories?limit=100", &phone[1..]);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let response = get(app, &path).await;
        assert_eq!(response.status(), 200);
        cursor = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        count += response.json::<Vec<Value>>().await.unwrap().len();
        if cursor.is_none() {
            return count;
        }
    }
}

#[tokio::test]
async fn the_export_of_a_large_caller_is_whole_valid_and_only_theirs() {
    let (app, _dir) = spawn_admin().await;
    const CALLS: usize = 260;
    for i in 0..CALLS {
        let body = call_at(
            &format!("conv_big_{i}"),
            CALLER,
            "Margaret",
            1_739_000_000 + i as i64,
        );
        post(&app, &body).await;
    }
    post(&app, &audio("conv_big_7")).await;
    for i in 0..3 {
        post(
            &app,
            &call_at(
                &format!("conv_other_{i}"),
                OTHER_CALLER,
                "Bob",
                1_739_500_000,
            ),
        )
        .await;
    }
    app.settle().await;

    let response = get(&app, &format!("/api/users/%2B{}/export", &CALLER[1..])).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = response.text().await.unwrap();
    let export: CallerExport = serde_json::from_str(&text).expect("one valid JSON document");

    assert_eq!(export.phone_number.as_ref(), CALLER);
    assert_eq!(
        export.profile.as_ref().unwrap().name.as_deref(),
        Some("Margaret")
    );
    assert_eq!(export.calls.len(), CALLS, "every call, across pages");
    let mut ids: Vec<&str> = export
        .calls
        .iter()
        .map(|c| c.call.conversation_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), CALLS, "no call twice");
    assert!(
        export
            .calls
            .iter()
            .all(|c| c.caller_phone.as_ref().map(AsRef::as_ref) == Some(CALLER))
    );
    assert!(export.calls.iter().all(|c| !c.transcript.is_empty()));
    let with_audio: Vec<&str> = export
        .calls
        .iter()
        .filter(|c| c.has_audio)
        .map(|c| c.call.conversation_id.as_str())
        .collect();
    assert_eq!(with_audio, ["conv_big_7"]);
    assert!(!export.memories.is_empty());
    assert_eq!(
        export.memories.len(),
        all_memories(&app, CALLER).await,
        "every memory"
    );
    // Nothing of the other caller.
    assert!(
        !text.contains(&OTHER_CALLER[1..]) && !text.contains("conv_other") && !text.contains("Bob")
    );
}

#[tokio::test]
async fn an_export_of_an_unknown_or_malformed_number_is_refused() {
    let (app, _dir) = spawn_admin().await;
    let unknown = get(&app, "/api/users/%2B15550009999/export").await;
    assert_eq!(unknown.status(), 404);
    let bad = get(&app, "/api/users/16129782029/export").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_phone");
    assert!(body["message"].as_str().unwrap().starts_with("phone:"));
}

fn audit_lines(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn every_access_to_a_callers_data_leaves_one_audit_line_without_the_token() {
    let (app, dir) = spawn_admin().await;
    post(&app, &transcription("conv_a", CALLER, "Margaret")).await;
    post(&app, &audio("conv_a")).await;
    app.settle().await;
    let enc = format!("%2B{}", &CALLER[1..]);

    let mut expected: Vec<(&str, u16, Option<&str>)> = Vec::new();
    for (path, route, status) in [
        (format!("/api/users/{enc}"), "GET /api/users/{phone}", 200),
        (
            format!("/api/users/{enc}/memories"),
            "GET /api/users/{phone}/memories",
            200,
        ),
        (
            format!("/api/users/{enc}/export"),
            "GET /api/users/{phone}/export",
            200,
        ),
        (format!("/api/calls?phone={enc}"), "GET /api/calls", 200),
        (
            "/api/calls/conv_a".to_owned(),
            "GET /api/calls/{conversation_id}",
            200,
        ),
        (
            "/api/calls/conv_a/audio".to_owned(),
            "GET /api/calls/{conversation_id}/audio",
            200,
        ),
    ] {
        let response = get(&app, &path).await;
        assert_eq!(response.status(), status, "{path}");
        let _ = response.bytes().await.unwrap();
        expected.push((route, status, Some(CALLER)));
    }
    // Unknown, malformed and refused requests are audited too.
    assert_eq!(get(&app, "/api/users/%2B15550009999").await.status(), 404);
    expected.push(("GET /api/users/{phone}", 404, Some("+15550009999")));
    assert_eq!(get(&app, "/api/users/not-a-number").await.status(), 400);
    expected.push(("GET /api/users/{phone}", 400, None));
    assert_eq!(get(&app, "/api/calls/conv_nowhere").await.status(), 404);
    expected.push(("GET /api/calls/{conversation_id}", 404, None));
    let refused = app
        .client
        .get(app.url(&format!("/api/users/{enc}")))
        .bearer_auth("a-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    expected.push(("GET /api/users/{phone}", 401, Some(CALLER)));
    // Routes that read no caller's data are not audited.
    assert_eq!(get(&app, "/api/analytics").await.status(), 200);
    let erased = app
        .client
        .delete(app.url(&format!("/api/users/{enc}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    expected.push(("DELETE /api/users/{phone}", 200, Some(CALLER)));

    let lines = audit_lines(dir.path());
    let seen: Vec<(&str, u16, Option<&str>)> = lines
        .iter()
        .map(|l| {
            (
                l["route"].as_str().unwrap(),
                l["status"].as_u64().unwrap() as u16,
                l["caller"].as_str(),
            )
        })
        .collect();
    assert_eq!(seen, expected);
    let admin = lines[0]["token"].as_str().unwrap();
    assert_eq!(admin.len(), 16);
    assert!(admin.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        lines
            .iter()
            .all(|l| l["time"].as_str().unwrap().ends_with('Z'))
    );
    let refused_line = &lines[lines.len() - 2];
    assert_ne!(
        refused_line["token"], lines[0]["token"],
        "another token, another fingerprint"
    );
    let raw = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(!raw.contains(ADMIN_TOKEN) && !raw.contains("a-wrong-token"));
    // The conversation routes name the conversation.
    assert_eq!(lines[4]["conversation_id"], "conv_a");
}

#[tokio::test]
async fn data_that_cannot_be_audited_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    // Writes to /dev/full fail with "no space left on device".
    let app = spawn_with(
        Options::new(dir.path())
            .var("RECALL_ADMIN_TOKEN", ADMIN_TOKEN)
            .var("RECALL_AUDIT_LOG", "/dev/full"),
    )
    .await;
    post(&app, &transcription("conv_a", CALLER, "Margaret")).await;
    app.settle().await;
    for path in [
        format!("/api/users/%2B{}", &CALLER[1..]),
        format!("/api/users/%2B{}/export", &CALLER[1..]),
        "/api/calls/conv_a".to_owned(),
    ] {
        let response = get(&app, &path).await;
        assert_eq!(response.status(), 503, "{path}");
        assert_eq!(error_code(response).await, "audit_unavailable");
    }
    // What reads no caller's data is still served.
    assert_eq!(get_json(&app, "/api/analytics").await["totalCalls"], 1);
}

/// The files under `dir` (the audit log aside) whose name or bytes hold
/// `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let named = path.to_string_lossy().into_owned();
            if named.contains(std::str::from_utf8(needle).unwrap()) {
                found.push(named);
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "audit.jsonl") {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn after_erasure_the_number_is_nowhere_in_the_data_directory_but_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(
        Options::new(dir.path())
            .var("RECALL_STORE", "embedded")
            .var("RECALL_ADMIN_TOKEN", ADMIN_TOKEN),
    )
    .await;
    // Processed calls with audio, a quarantined body that names the
    // caller, and an event that may still be pending.
    post(&app, &transcription("conv_1", CALLER, "Margaret")).await;
    post(&app, &audio("conv_1")).await;
    post(&app, &call_at("conv_2", CALLER, "Margaret", 1_739_100_000)).await;
    post(&app, &transcription("conv_3", OTHER_CALLER, "Bob")).await;
    app.settle().await;
    let mut bad = transcription("conv_q", CALLER, "Margaret");
    let at = bad.windows(8).position(|w| w == b"Margaret").unwrap();
    bad[at] = 0xff;
    assert_eq!(app.post_call(&bad).await.status(), 400);
    post(
        &app,
        &call_at("conv_pending", CALLER, "Margaret", 1_739_200_000),
    )
    .await;
    assert_eq!(
        get(&app, "/api/users/%2B16129782029/export").await.status(),
        200
    );

    let digits = &CALLER[1..];
    assert!(
        !files_containing(dir.path(), digits.as_bytes()).is_empty(),
        "the search finds it before"
    );

    let response = app
        .client
        .delete(app.url("/api/users/%2B16129782029"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["quarantined"], 1, "{report}");
    // conv_pending is erased whether or not the worker got to it first.
    assert_eq!(report["conversations"], 3, "{report}");
    assert_eq!(report["audio"], 1, "{report}");
    app.stop().await;

    let left = files_containing(dir.path(), digits.as_bytes());
    assert!(left.is_empty(), "the number is still in {left:?}");
    // The other caller is still there, and the audit log keeps the record.
    assert!(!files_containing(dir.path(), &OTHER_CALLER.as_bytes()[1..]).is_empty());
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains(CALLER));
}

/// Runs `recall <args>` on the embedded data directory `dir`.
fn recall(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_recall"))
        .env_clear()
        .current_dir(dir)
        .env("RECALL_DATA_DIR", dir)
        .env("RECALL_STORE", "embedded")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn recall_export_caller_and_recall_audit_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(
        Options::new(dir.path())
            .var("RECALL_STORE", "embedded")
            .var("RECALL_ADMIN_TOKEN", ADMIN_TOKEN),
    )
    .await;
    post(&app, &transcription("conv_1", CALLER, "Margaret")).await;
    post(&app, &transcription("conv_2", OTHER_CALLER, "Bob")).await;
    app.settle().await;
    assert_eq!(get(&app, "/api/users/%2B16129782029").await.status(), 200);
    app.stop().await;
    drop(app);

    let out = recall(dir.path(), &["export-caller", CALLER]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export: CallerExport = serde_json::from_str(&stdout).unwrap();
    assert_eq!(export.calls.len(), 1);
    assert_eq!(export.calls[0].call.conversation_id, "conv_1");
    assert!(!stdout.contains("Bob"));

    let bad = recall(dir.path(), &["export-caller", "16129782029"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("number"));
    let unknown = recall(dir.path(), &["export-caller", "+15550009999"]);
    assert!(!unknown.status.success());

    let out = recall(dir.path(), &["audit", "--caller", CALLER]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let routes: Vec<(&str, u64)> = lines
        .iter()
        .map(|l| (l["route"].as_str().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        routes,
        [("GET /api/users/{phone}", 200), ("CLI export-caller", 200)]
    );
    assert!(lines.iter().all(|l| l["caller"] == CALLER));
    // The refused export of an unknown number is on record too, under
    // that number only.
    let other = recall(dir.path(), &["audit", "--caller", "+15550009999"]);
    assert!(other.status.success());
    let other = String::from_utf8(other.stdout).unwrap();
    assert_eq!(other.lines().count(), 1, "{other}");
    assert!(other.contains("\"status\":404") && !other.contains(CALLER));
}
