//! `recall setup` against a local emulator of the ElevenLabs API: the
//! checklist finds each wiring mistake and says how to fix it, `--apply`
//! creates or corrects the memory tool and converges, and no secret is
//! ever printed.

mod emulator;

use std::time::Duration;

use emulator::{
    AGENT, CLIENT_DATA_KEY, Emulator, KEY, MEMORY_TOOL, OTHER_TOOL, POST_CALL_KEY, PUBLIC,
    SEARCH_KEY, Workspace, memory_tool, wired,
};
use recall_server::elevenlabs::{ApiError, ElevenLabsClient, RetryPolicy};
use recall_server::setup::{
    Change, Expected, PlanError, Report, Verdict, apply, check, inspect, plan,
};
use recall_signature::{Secret, Secrets};
use serde_json::{Value, json};

fn client(emu: &Emulator) -> ElevenLabsClient {
    let retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    };
    ElevenLabsClient::new(&emu.url, KEY, retry).unwrap()
}

fn expected(url: Option<&str>) -> Expected {
    let secrets = |v: &str| Secrets::single(Secret::new(v).unwrap());
    Expected {
        public_url: url.map(|u| u.parse().unwrap()),
        client_data_keys: secrets(CLIENT_DATA_KEY),
        search_keys: secrets(SEARCH_KEY),
        post_call_key_set: true,
    }
}

async fn report_of(workspace: Workspace, url: Option<&str>) -> Report {
    let emu = Emulator::start(workspace);
    let wiring = inspect(&client(&emu), AGENT).await.unwrap();
    let report = check(&wiring, &expected(url));
    assert_no_secret(&report.render());
    report
}

/// No secret of Recall's or of the workspace is in `text`.
fn assert_no_secret(text: &str) {
    for secret in [
        CLIENT_DATA_KEY,
        SEARCH_KEY,
        POST_CALL_KEY,
        KEY,
        "literal-wrong-value",
    ] {
        assert!(!text.contains(secret), "printed a secret: {text}");
    }
}

fn verdict(report: &Report, item: &str) -> Verdict {
    report
        .get(item)
        .unwrap_or_else(|| panic!("no check {item:?} in\n{}", report.render()))
        .verdict
}

/// Asserts `item` failed and its fix mentions each of `fix_mentions`.
fn assert_fails(report: &Report, item: &str, fix_mentions: &[&str]) {
    let check = report.get(item).unwrap_or_else(|| panic!("no {item}"));
    assert_eq!(check.verdict, Verdict::Fail, "{}", report.render());
    let fix = check
        .fix
        .as_deref()
        .expect("a failed check comes with a fix");
    for text in fix_mentions {
        assert!(fix.contains(text), "{item}'s fix lacks {text:?}: {fix}");
    }
    assert!(!report.passed());
    assert!(report.render().contains(&format!("✗ {item}")));
}

fn set(ws: &mut Workspace, pointer: &str, value: Value) {
    *ws.agent.pointer_mut(pointer).unwrap() = value;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wired_agent_passes_every_check() {
    let report = report_of(wired(), Some(PUBLIC)).await;
    assert!(report.passed(), "{}", report.render());
    for item in [
        "initiation URL",
        "agent fetches it",
        "{{user_name}} used",
        "{{last_call_summary}} used",
        "first message overridable",
        "tool attached",
        "tool URL",
        "tool user_id",
        "transcript events",
        "post-call URL",
        "post-call enabled",
    ] {
        assert_eq!(verdict(&report, item), Verdict::Pass, "{item}");
    }
    // Workspace secrets cannot be read back: said, not guessed.
    assert_eq!(verdict(&report, "tool header"), Verdict::Unknown);
    assert_eq!(verdict(&report, "initiation header"), Verdict::Unknown);
    let text = report.render();
    assert!(text.contains("✓ tool user_id"), "{text}");
    assert!(text.contains("All "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_initiation_webhook_and_a_wrong_header_are_found() {
    let mut ws = wired();
    ws.settings["conversation_initiation_client_data_webhook"] = Value::Null;
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "initiation URL",
        &[
            "https://recall.example.com/webhook/client-data",
            "X-Api-Key",
        ],
    );

    let mut ws = wired();
    ws.settings["conversation_initiation_client_data_webhook"]["request_headers"] = json!({});
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "initiation header",
        &["ELEVENLABS_CLIENT_DATA_KEY"],
    );

    // A literal is compared with Recall's key, and never shown.
    let mut ws = wired();
    ws.settings["conversation_initiation_client_data_webhook"]["request_headers"] =
        json!({"X-Api-Key": "literal-wrong-value"});
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "initiation header",
        &["ELEVENLABS_CLIENT_DATA_KEY"],
    );
    let mut ws = wired();
    ws.settings["conversation_initiation_client_data_webhook"]["request_headers"] =
        json!({"Authorization": format!("Bearer {CLIENT_DATA_KEY}")});
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_eq!(verdict(&report, "initiation header"), Verdict::Pass);

    // The agent's own webhook setting wins over the workspace's.
    let mut ws = wired();
    ws.agent["platform_settings"]["workspace_overrides"]["conversation_initiation_client_data_webhook"] =
        json!({"url": "https://old-host.example.com/webhook/client-data", "request_headers": {}});
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "initiation URL",
        &["https://recall.example.com/webhook/client-data"],
    );
    assert!(
        report
            .get("initiation URL")
            .unwrap()
            .detail
            .contains("agent's settings")
    );

    let mut ws = wired();
    set(
        &mut ws,
        "/platform_settings/overrides/enable_conversation_initiation_client_data_from_webhook",
        json!(false),
    );
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "agent fetches it",
        &[
            "enable_conversation_initiation_client_data_from_webhook\": true",
            AGENT,
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_variables_and_the_first_message_override_are_checked() {
    let mut ws = wired();
    set(
        &mut ws,
        "/conversation_config/agent/prompt/prompt",
        json!("You are helpful. Ask for their name."),
    );
    let report = report_of(ws, Some(PUBLIC)).await;
    // {{ user_name }} is still in the first message.
    assert_eq!(verdict(&report, "{{user_name}} used"), Verdict::Pass);
    assert_fails(
        &report,
        "{{last_call_summary}} used",
        &["{{last_call_summary}}"],
    );

    let mut ws = wired();
    set(
        &mut ws,
        "/conversation_config/agent/first_message",
        Value::Null,
    );
    set(
        &mut ws,
        "/conversation_config/agent/prompt/prompt",
        json!("Last call: {{last_call_summary}}"),
    );
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(&report, "{{user_name}} used", &["{{user_name}}"]);

    let mut ws = wired();
    set(
        &mut ws,
        "/platform_settings/overrides/conversation_config_override/agent/first_message",
        json!(false),
    );
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "first message overridable",
        &["First message", "\"first_message\": true"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_tool_mistakes_are_found() {
    // Not attached (the tool exists in the workspace but not on the agent).
    let mut ws = wired();
    set(
        &mut ws,
        "/conversation_config/agent/prompt/tool_ids",
        json!([OTHER_TOOL]),
    );
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "tool attached",
        &[
            "--apply",
            "\"dynamic_variable\": \"system__caller_id\"",
            "https://recall.example.com/webhook/search-data",
        ],
    );

    // user_id chosen by the LLM: the leak between callers.
    let mut ws = wired();
    ws.tools.insert(
        MEMORY_TOOL.to_owned(),
        memory_tool(
            &format!("{PUBLIC}/webhook/search-data"),
            &json!({"secret_id": "sec_search"}),
            &json!({"type": "string", "description": "The caller's phone number"}),
        ),
    );
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(&report, "tool user_id", &["system__caller_id"]);
    assert!(
        report
            .get("tool user_id")
            .unwrap()
            .detail
            .contains("another caller")
    );

    // No header; a literal that is not Recall's key.
    let mut ws = wired();
    ws.tools.get_mut(MEMORY_TOOL).unwrap()["tool_config"]["api_schema"]["request_headers"] =
        json!({});
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(&report, "tool header", &["ELEVENLABS_SEARCH_DATA_KEY"]);
    let mut ws = wired();
    ws.tools.get_mut(MEMORY_TOOL).unwrap()["tool_config"]["api_schema"]["request_headers"] =
        json!({"x-api-key": "literal-wrong-value"});
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(&report, "tool header", &["ELEVENLABS_SEARCH_DATA_KEY"]);
    let mut ws = wired();
    ws.tools.get_mut(MEMORY_TOOL).unwrap()["tool_config"]["api_schema"]["request_headers"] =
        json!({"X-Api-Key": SEARCH_KEY});
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_eq!(verdict(&report, "tool header"), Verdict::Pass);

    // Another host, or GET: found with --url; the path alone passes without.
    let mut ws = wired();
    ws.tools.get_mut(MEMORY_TOOL).unwrap()["tool_config"]["api_schema"]["url"] =
        json!("https://staging.example.com/webhook/search-data");
    let report = report_of(ws.clone(), Some(PUBLIC)).await;
    assert_fails(
        &report,
        "tool URL",
        &["https://recall.example.com/webhook/search-data"],
    );
    let report = report_of(ws, None).await;
    assert_eq!(verdict(&report, "tool URL"), Verdict::Pass);
    assert!(report.render().contains("pass --url"));
    let mut ws = wired();
    ws.tools.get_mut(MEMORY_TOOL).unwrap()["tool_config"]["api_schema"]["method"] = json!("GET");
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(&report, "tool URL", &["method POST"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_call_webhook_mistakes_are_found() {
    let mut ws = wired();
    ws.settings["webhooks"]["post_call_webhook_id"] = Value::Null;
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "post-call webhook chosen",
        &["ELEVENLABS_POST_CALL_KEY", "HMAC"],
    );

    let mut ws = wired();
    ws.webhooks[0]["auth_type"] = json!("oauth2");
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(&report, "HMAC secret", &["HMAC"]);

    let mut ws = wired();
    ws.webhooks[0]["is_auto_disabled"] = json!(true);
    ws.webhooks[0]["most_recent_failure_error_code"] = json!(401);
    ws.webhooks[0]["most_recent_failure_timestamp"] = json!(1_764_000_000);
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "post-call enabled",
        &["enable it", "recall import"],
    );
    assert!(
        report
            .get("post-call enabled")
            .unwrap()
            .detail
            .contains("401 at 2025-11-24")
    );

    let mut ws = wired();
    ws.webhooks[0]["webhook_url"] = json!("https://recall.example.com/webhook/client-data");
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(
        &report,
        "post-call URL",
        &["https://recall.example.com/webhook/post-call"],
    );

    let mut ws = wired();
    ws.settings["webhooks"]["events"] = json!(["audio"]);
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(&report, "transcript events", &["transcript"]);

    let mut ws = wired();
    ws.webhooks.clear();
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_fails(&report, "post-call webhook", &["Create webhook"]);

    // A key that may not read the workspace webhooks: said, not failed.
    let mut ws = wired();
    ws.webhooks_readable = false;
    let report = report_of(ws, Some(PUBLIC)).await;
    assert_eq!(verdict(&report, "post-call webhook"), Verdict::Unknown);
    assert!(report.passed(), "{}", report.render());

    // Recall without its HMAC secret.
    let emu = Emulator::start(wired());
    let wiring = inspect(&client(&emu), AGENT).await.unwrap();
    let report = check(
        &wiring,
        &Expected {
            post_call_key_set: false,
            ..expected(Some(PUBLIC))
        },
    );
    assert_fails(&report, "HMAC secret", &["ELEVENLABS_POST_CALL_KEY"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_the_tool_and_a_secret_then_converges() {
    let mut ws = wired();
    set(
        &mut ws,
        "/conversation_config/agent/prompt/tool_ids",
        json!([OTHER_TOOL]),
    );
    ws.tools.remove(MEMORY_TOOL);
    ws.secrets.clear();
    let emu = Emulator::start(ws);
    let client = client(&emu);
    let expected = expected(Some(PUBLIC));
    let wiring = inspect(&client, AGENT).await.unwrap();
    let plan = plan(&client, &wiring, &expected).await.unwrap();
    assert!(matches!(
        plan.changes(),
        [
            Change::CreateSecret,
            Change::CreateTool { .. },
            Change::AttachTool { .. }
        ]
    ));
    let shown = plan.describe();
    assert_no_secret(&shown);
    assert!(shown.contains("POST /v1/convai/tools"), "{shown}");
    assert!(emu.writes().is_empty(), "planning writes nothing");

    let applied = apply(&client, &plan).await.unwrap();
    assert!(applied.attached);
    let ws = emu.workspace();
    // The secret holds Recall's search key; the tool uses it.
    let secret_id = applied.secret_id.unwrap();
    assert_eq!(ws.secrets[&secret_id].1, SEARCH_KEY);
    let tool = &ws.tools[applied.tool_id.as_deref().unwrap()]["tool_config"];
    assert_eq!(
        tool["api_schema"]["request_headers"]["X-Api-Key"],
        json!({"secret_id": secret_id})
    );
    assert_eq!(
        tool["api_schema"]["request_body_schema"]["properties"]["user_id"]["dynamic_variable"],
        "system__caller_id"
    );
    // Attached beside the other tool; the rest of the agent untouched.
    let ids = ws
        .agent
        .pointer("/conversation_config/agent/prompt/tool_ids")
        .unwrap();
    assert_eq!(ids[0], OTHER_TOOL);
    assert_eq!(ids.as_array().unwrap().len(), 2);
    assert!(
        ws.agent
            .pointer("/conversation_config/agent/prompt/prompt")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("{{last_call_summary}}")
    );

    let report = check(&inspect(&client, AGENT).await.unwrap(), &expected);
    assert!(report.passed(), "{}", report.render());
    // Again: nothing to do, nothing written.
    let writes = emu.writes().len();
    let again = plan_again(&client, &expected).await;
    assert!(again.is_empty(), "{}", again.describe());
    assert_eq!(emu.writes().len(), writes);
}

async fn plan_again(client: &ElevenLabsClient, expected: &Expected) -> recall_server::setup::Plan {
    let wiring = inspect(client, AGENT).await.unwrap();
    plan(client, &wiring, expected).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_corrects_an_attached_tool_in_place() {
    // user_id left to the LLM and no header: the tool is updated, keeping
    // its id and name; the existing secret of that name is updated.
    let mut ws = wired();
    let mut tool = memory_tool(
        "https://old.example.com/webhook/search-data",
        &Value::Null,
        &json!({"type": "string", "description": "phone"}),
    );
    tool["tool_config"]["name"] = json!("caller_history");
    tool["tool_config"]["api_schema"]["request_headers"] = json!({});
    ws.tools.insert(MEMORY_TOOL.to_owned(), tool);
    ws.secrets.get_mut("sec_search").unwrap().1 = "an-old-rotated-value".to_owned();
    let emu = Emulator::start(ws);
    let client = client(&emu);
    let expected = expected(Some(PUBLIC));
    let wiring = inspect(&client, AGENT).await.unwrap();
    let plan = plan(&client, &wiring, &expected).await.unwrap();
    assert!(
        matches!(
            plan.changes(),
            [Change::UpdateSecret { .. }, Change::UpdateTool { .. }]
        ),
        "{:?}",
        plan.changes()
    );
    let applied = apply(&client, &plan).await.unwrap();
    assert_eq!(applied.tool_id.as_deref(), Some(MEMORY_TOOL));
    assert!(!applied.attached);
    let ws = emu.workspace();
    assert_eq!(ws.secrets["sec_search"].1, SEARCH_KEY);
    assert_eq!(ws.tools.len(), 2, "no second memory tool");
    let config = &ws.tools[MEMORY_TOOL]["tool_config"];
    assert_eq!(config["name"], "caller_history");
    assert_eq!(
        config["api_schema"]["url"],
        "https://recall.example.com/webhook/search-data"
    );
    let report = check(&inspect(&client, AGENT).await.unwrap(), &expected);
    assert!(report.passed(), "{}", report.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_needs_the_public_url_and_refuses_inline_tools() {
    let emu = Emulator::start(wired());
    let client = client(&emu);
    let wiring = inspect(&client, AGENT).await.unwrap();
    assert!(matches!(
        plan(&client, &wiring, &expected(None)).await,
        Err(PlanError::NoUrl)
    ));

    let mut ws = wired();
    set(
        &mut ws,
        "/conversation_config/agent/prompt/tool_ids",
        json!([]),
    );
    let mut inline = memory_tool(
        &format!("{PUBLIC}/webhook/search-data"),
        &json!({"secret_id": "s"}),
        &json!({"type": "string"}),
    );
    inline["tool_config"]["name"] = json!("inline_memory");
    set(
        &mut ws,
        "/conversation_config/agent/prompt/tools",
        json!([inline["tool_config"]]),
    );
    let emu = Emulator::start(ws);
    let client = self::client(&emu);
    let wiring = inspect(&client, AGENT).await.unwrap();
    let report = check(&wiring, &expected(Some(PUBLIC)));
    assert!(
        report
            .get("tool attached")
            .unwrap()
            .detail
            .contains("inline")
    );
    assert_fails(&report, "tool user_id", &["system__caller_id"]);
    let refused = plan(&client, &wiring, &expected(Some(PUBLIC)))
        .await
        .unwrap_err();
    assert!(matches!(refused, PlanError::InlineTool(ref name) if name == "inline_memory"));
    assert!(emu.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_and_an_unknown_agent_say_what_to_check() {
    let emu = Emulator::start(wired());
    let bad = ElevenLabsClient::new(&emu.url, "wrong-key", RetryPolicy::default()).unwrap();
    let error = inspect(&bad, AGENT).await.unwrap_err();
    assert!(matches!(error, ApiError::Unauthorized { .. }));
    assert!(error.to_string().contains("ELEVENLABS_API_KEY"), "{error}");
    assert!(!error.to_string().contains("wrong-key"));

    let error = inspect(&client(&emu), "agent_nope").await.unwrap_err();
    assert!(error.to_string().contains("agent_nope"), "{error}");
    assert!(error.to_string().contains("404"), "{error}");
}

/// The command itself: exit status, output, no secret, and `--apply`
/// without a terminal or `--yes` writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_prints_the_checklist_and_exits_1_on_a_mistake() {
    let mut ws = wired();
    set(
        &mut ws,
        "/conversation_config/agent/prompt/tool_ids",
        json!([OTHER_TOOL]),
    );
    let emu = Emulator::start(ws);
    let dir = tempfile::tempdir().unwrap();
    let (url, data_dir) = (emu.url.clone(), dir.path().to_owned());
    let run = move |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_recall"))
            .args(["setup", "--agent", AGENT])
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RECALL_DATA_DIR", &data_dir)
            .env("ELEVENLABS_API_KEY", KEY)
            .env("ELEVENLABS_API_URL", &url)
            .env("ELEVENLABS_CLIENT_DATA_KEY", CLIENT_DATA_KEY)
            .env("ELEVENLABS_SEARCH_DATA_KEY", SEARCH_KEY)
            .env("ELEVENLABS_POST_CALL_KEY", POST_CALL_KEY)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_secret(&text);
        (out.status.code(), text)
    };
    let ((code, text), (apply_code, apply_text)) = tokio::task::spawn_blocking(move || {
        (run(&["--url", PUBLIC]), run(&["--url", PUBLIC, "--apply"]))
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("✗ tool attached"), "{text}");
    assert!(text.contains("✓ initiation URL"), "{text}");
    assert_eq!(apply_code, Some(1), "{apply_text}");
    assert!(apply_text.contains("pass --yes"), "{apply_text}");
    assert!(
        emu.writes().is_empty(),
        "nothing applied without confirmation"
    );
}

/// The tool JSON docs/elevenlabs-setup.md tells to paste is the one
/// `recall setup` shows and `--apply` creates.
#[test]
fn the_documented_tool_is_the_applied_one() {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/elevenlabs-setup.md"),
    )
    .unwrap();
    let start = docs
        .find("```json\n{\n  \"type\": \"webhook\"")
        .expect("the tool's JSON block");
    let block = &docs[start + "```json\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    let documented: Value = serde_json::from_str(block).unwrap();
    let built = recall_server::setup::memory_tool_config(
        "https://recall.example.com/webhook/search-data",
        recall_server::setup::HeaderValue::Secret {
            secret_id: "YOUR_WORKSPACE_SECRET_ID".to_owned(),
        },
    );
    assert_eq!(documented, built);
}
