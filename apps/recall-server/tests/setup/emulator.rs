//! A local emulator of the parts of the ElevenLabs API `recall setup`
//! reads and writes (loopback, port 0): an agent, the workspace settings
//! and webhooks, workspace tools and secrets. Shapes follow the official
//! SDK's models (`GetAgentResponseModel`, `GetConvAiSettingsResponseModel`,
//! `WorkspaceWebhookResponseModel`, `ToolResponseModel`, secrets), with the
//! `null`s the API sends for unset optional fields. `PATCH` merges objects
//! member by member, as the API's partial updates do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// The key the emulator accepts.
pub const KEY: &str = "xi-test-key-setup-0123";
/// Recall's public address in the tests.
pub const PUBLIC: &str = "https://recall.example.com";
/// The agent's id.
pub const AGENT: &str = "agent_7k2";
/// An unrelated tool every agent has.
pub const OTHER_TOOL: &str = "tool_weather";
/// The memory tool's id.
pub const MEMORY_TOOL: &str = "tool_memory";
/// The post-call webhook's id.
pub const WEBHOOK: &str = "wh_recall";
/// Recall's keys in the tests.
pub const CLIENT_DATA_KEY: &str = "cd-secret-value-5f1e9a";
/// The search key.
pub const SEARCH_KEY: &str = "sd-secret-value-77c2b0";
/// The post-call HMAC secret.
pub const POST_CALL_KEY: &str = "wsec_post-call-secret-d41d8c";

/// The emulated workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The agent (as `GET /v1/convai/agents/{id}` answers).
    pub agent: Value,
    /// `GET /v1/convai/settings`.
    pub settings: Value,
    /// `GET /v1/workspace/webhooks`'s `webhooks`.
    pub webhooks: Vec<Value>,
    /// Workspace tools by id (`ToolResponseModel`).
    pub tools: BTreeMap<String, Value>,
    /// Workspace secrets: id → (name, value).
    pub secrets: BTreeMap<String, (String, String)>,
    /// Whether the key may read the workspace webhooks.
    pub webhooks_readable: bool,
}

/// A request that wrote something: method and path.
pub type Write = (String, String);

#[derive(Debug)]
struct State {
    workspace: Mutex<Workspace>,
    writes: Mutex<Vec<Write>>,
    next_id: Mutex<u32>,
}

/// A running emulator.
#[derive(Clone, Debug)]
pub struct Emulator {
    state: Arc<State>,
    /// Its base URL.
    pub url: String,
}

/// The memory tool as Recall's docs say to configure it, with its header
/// a workspace secret.
pub fn memory_tool(url: &str, header: &Value, user_id: &Value) -> Value {
    json!({
        "id": MEMORY_TOOL,
        "tool_config": {
            "type": "webhook",
            "name": "recall_caller_memory",
            "description": "Look up what we remember about the caller.",
            "response_timeout_secs": 5,
            "disable_interruptions": null,
            "assignments": [],
            "api_schema": {
                "url": url,
                "method": "POST",
                "path_params_schema": null,
                "query_params_schema": null,
                "request_headers": {"X-Api-Key": header},
                "request_body_schema": {
                    "type": "object",
                    "description": "A memory lookup.",
                    "required": ["query", "user_id"],
                    "properties": {
                        "query": {"type": "string", "description": "What to look up."},
                        "user_id": user_id,
                    }
                },
                "content_type": "application/json"
            }
        },
        "access_info": {"is_creator": true, "creator_name": "ops", "creator_email": "ops@example.com", "role": "admin"},
        "usage_stats": {"total_calls": 12, "avg_latency_secs": 0.04}
    })
}

/// A workspace where the agent is wired right, everything as the docs say.
pub fn wired() -> Workspace {
    let mut tools = BTreeMap::new();
    tools.insert(
        OTHER_TOOL.to_owned(),
        json!({
            "id": OTHER_TOOL,
            "tool_config": {"type": "client", "name": "get_weather", "description": "The weather.",
                            "parameters": null, "expects_response": false},
            "access_info": {"is_creator": true}, "usage_stats": {"total_calls": 0}
        }),
    );
    tools.insert(
        MEMORY_TOOL.to_owned(),
        memory_tool(
            &format!("{PUBLIC}/webhook/search-data"),
            &json!({"secret_id": "sec_search"}),
            &json!({"type": "string", "dynamic_variable": "system__caller_id", "description": null}),
        ),
    );
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "sec_search".to_owned(),
        ("recall_search_data_key".to_owned(), SEARCH_KEY.to_owned()),
    );
    Workspace {
        agent: json!({
            "agent_id": AGENT,
            "name": "Garden centre support",
            "conversation_config": {
                "asr": {"quality": "high"},
                "tts": {"voice_id": "cjVigY5qzO86Huf0OWal"},
                "agent": {
                    "first_message": "Hello {{ user_name }}, how can I help?",
                    "language": "en",
                    "dynamic_variables": {"dynamic_variable_placeholders": {"user_name": ""}},
                    "prompt": {
                        "prompt": "You are the garden centre's assistant. The caller is {{user_name}}. Last call: {{last_call_summary}}.",
                        "llm": "gemini-2.0-flash",
                        "tool_ids": [OTHER_TOOL, MEMORY_TOOL],
                        "tools": [],
                        "knowledge_base": null
                    }
                }
            },
            "metadata": {"created_at_unix_secs": 1_760_000_000},
            "platform_settings": {
                "overrides": {
                    "conversation_config_override": {
                        "agent": {"first_message": true, "language": false, "prompt": {"prompt": false}},
                        "tts": {"voice_id": false}
                    },
                    "custom_llm_extra_body": false,
                    "enable_conversation_initiation_client_data_from_webhook": true
                },
                "workspace_overrides": {
                    "conversation_initiation_client_data_webhook": null,
                    "webhooks": null
                },
                "privacy": {"record_voice": true}
            },
            "phone_numbers": [],
            "tags": null
        }),
        settings: json!({
            "conversation_initiation_client_data_webhook": {
                "url": format!("{PUBLIC}/webhook/client-data"),
                "request_headers": {"X-Api-Key": {"secret_id": "sec_client"}}
            },
            "webhooks": {
                "post_call_webhook_id": WEBHOOK,
                "events": ["transcript", "call_initiation_failure"],
                "send_audio": false
            },
            "can_use_mcp_servers": false,
            "rag_retention_period_days": 10
        }),
        webhooks: vec![json!({
            "name": "Recall",
            "webhook_id": WEBHOOK,
            "webhook_url": format!("{PUBLIC}/webhook/post-call"),
            "is_disabled": false,
            "is_auto_disabled": false,
            "created_at_unix": 1_760_000_000,
            "auth_type": "hmac",
            "usage": [{"usage_type": "ConvAI Settings"}],
            "most_recent_failure_error_code": null,
            "most_recent_failure_timestamp": null
        })],
        tools,
        secrets,
        webhooks_readable: true,
    }
}

/// Merges `patch` into `target`: objects member by member, anything else
/// replaced.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

impl Emulator {
    /// Starts an emulator of `workspace` on a free loopback port.
    pub fn start(workspace: Workspace) -> Self {
        let state = Arc::new(State {
            workspace: Mutex::new(workspace),
            writes: Mutex::new(Vec::new()),
            next_id: Mutex::new(1),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/convai/agents/{id}", web::get().to(get_agent))
                .route("/v1/convai/agents/{id}", web::patch().to(patch_agent))
                .route("/v1/convai/settings", web::get().to(settings))
                .route("/v1/workspace/webhooks", web::get().to(webhooks))
                .route("/v1/convai/tools", web::post().to(create_tool))
                .route("/v1/convai/tools/{id}", web::get().to(get_tool))
                .route("/v1/convai/tools/{id}", web::patch().to(patch_tool))
                .route("/v1/convai/secrets", web::get().to(list_secrets))
                .route("/v1/convai/secrets", web::post().to(create_secret))
                .route("/v1/convai/secrets/{id}", web::patch().to(patch_secret))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            state,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The workspace as it is now.
    pub fn workspace(&self) -> Workspace {
        self.state.workspace.lock().unwrap().clone()
    }

    /// The writes received so far.
    pub fn writes(&self) -> Vec<Write> {
        self.state.writes.lock().unwrap().clone()
    }
}

fn refused(req: &HttpRequest) -> Option<HttpResponse> {
    let key = req
        .headers()
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok());
    (key != Some(KEY)).then(|| {
        HttpResponse::Unauthorized().json(json!({
            "detail": {"status": "invalid_api_key", "message": "Invalid API key"}
        }))
    })
}

fn not_found(what: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({"detail": {"status": "not_found", "message": what}}))
}

fn record(state: &State, req: &HttpRequest) {
    state
        .writes
        .lock()
        .unwrap()
        .push((req.method().to_string(), req.path().to_owned()));
}

fn new_id(state: &State, prefix: &str) -> String {
    let mut next = state.next_id.lock().unwrap();
    *next += 1;
    format!("{prefix}_new{next}")
}

async fn get_agent(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    let ws = state.workspace.lock().unwrap();
    if ws.agent["agent_id"] != json!(id.as_str()) {
        return not_found("agent not found");
    }
    HttpResponse::Ok().json(&ws.agent)
}

async fn patch_agent(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    record(&state, &req);
    let mut ws = state.workspace.lock().unwrap();
    if ws.agent["agent_id"] != json!(id.as_str()) {
        return not_found("agent not found");
    }
    // Attached tools must exist.
    if let Some(ids) = body.pointer("/conversation_config/agent/prompt/tool_ids") {
        for tool in ids.as_array().into_iter().flatten() {
            if !ws.tools.contains_key(tool.as_str().unwrap_or_default()) {
                return HttpResponse::UnprocessableEntity()
                    .json(json!({"detail": format!("unknown tool {tool}")}));
            }
        }
    }
    merge(&mut ws.agent, &body);
    HttpResponse::Ok().json(&ws.agent)
}

async fn settings(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    HttpResponse::Ok().json(&state.workspace.lock().unwrap().settings)
}

async fn webhooks(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    let ws = state.workspace.lock().unwrap();
    if !ws.webhooks_readable {
        return HttpResponse::Forbidden()
            .json(json!({"detail": "missing permission workspace_webhooks"}));
    }
    HttpResponse::Ok().json(json!({"webhooks": ws.webhooks}))
}

/// A webhook tool's configuration from a tool write, or why it is refused.
fn valid_tool(body: &Value) -> Result<Value, &'static str> {
    let config = body.get("tool_config").cloned().unwrap_or(Value::Null);
    let url = config.pointer("/api_schema/url").and_then(Value::as_str);
    if config["type"] != "webhook" || url.is_none() || config["name"].as_str().is_none() {
        return Err("tool_config: a webhook tool needs type, name and api_schema.url");
    }
    Ok(config)
}

fn unprocessable(detail: &str) -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(json!({ "detail": detail }))
}

async fn create_tool(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    record(&state, &req);
    let config = match valid_tool(&body) {
        Ok(c) => c,
        Err(why) => return unprocessable(why),
    };
    let id = new_id(&state, "tool");
    let tool = json!({"id": id, "tool_config": config, "access_info": {"is_creator": true},
                      "usage_stats": {"total_calls": 0}});
    state
        .workspace
        .lock()
        .unwrap()
        .tools
        .insert(id, tool.clone());
    HttpResponse::Ok().json(tool)
}

async fn get_tool(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    match state.workspace.lock().unwrap().tools.get(id.as_str()) {
        Some(tool) => HttpResponse::Ok().json(tool),
        None => not_found("tool not found"),
    }
}

async fn patch_tool(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    record(&state, &req);
    let config = match valid_tool(&body) {
        Ok(c) => c,
        Err(why) => return unprocessable(why),
    };
    let mut ws = state.workspace.lock().unwrap();
    match ws.tools.get_mut(id.as_str()) {
        Some(tool) => {
            tool["tool_config"] = config;
            HttpResponse::Ok().json(tool.clone())
        }
        None => not_found("tool not found"),
    }
}

async fn list_secrets(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    let ws = state.workspace.lock().unwrap();
    let secrets: Vec<Value> = ws
        .secrets
        .iter()
        .map(|(id, (name, _))| {
            json!({"type": "stored", "secret_id": id, "name": name,
                   "used_by": {"tools": [], "agents": [], "others": []}})
        })
        .collect();
    HttpResponse::Ok().json(json!({"secrets": secrets, "next_cursor": null}))
}

async fn create_secret(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    record(&state, &req);
    let (Some(name), Some(value), Some("new")) = (
        body["name"].as_str(),
        body["value"].as_str(),
        body["type"].as_str(),
    ) else {
        return HttpResponse::UnprocessableEntity()
            .json(json!({"detail": "name, value and type new"}));
    };
    let id = new_id(&state, "sec");
    state
        .workspace
        .lock()
        .unwrap()
        .secrets
        .insert(id.clone(), (name.to_owned(), value.to_owned()));
    HttpResponse::Ok().json(json!({"type": "stored", "secret_id": id, "name": name}))
}

async fn patch_secret(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    if let Some(r) = refused(&req) {
        return r;
    }
    record(&state, &req);
    let (Some(name), Some(value), Some("update")) = (
        body["name"].as_str(),
        body["value"].as_str(),
        body["type"].as_str(),
    ) else {
        return HttpResponse::UnprocessableEntity()
            .json(json!({"detail": "name, value and type update"}));
    };
    let mut ws = state.workspace.lock().unwrap();
    match ws.secrets.get_mut(id.as_str()) {
        Some(secret) => {
            *secret = (name.to_owned(), value.to_owned());
            HttpResponse::Ok()
                .json(json!({"type": "stored", "secret_id": id.as_str(), "name": name}))
        }
        None => not_found("secret not found"),
    }
}
