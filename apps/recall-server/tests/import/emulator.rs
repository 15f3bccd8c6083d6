//! A local emulator of the ElevenLabs Conversations API (loopback, port 0):
//! list pages with cursors and filters, details built from the shared
//! fixture, audio, and injected faults (429 with `Retry-After`, 500s, a
//! conversation gone between list and detail, a refused key).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// The key the emulator accepts.
pub const KEY: &str = "xi-test-key-0123456789";

/// The agent's own number (never a caller).
pub const AGENT_NUMBER: &str = "+15550001111";

/// How a conversation's caller appears.
#[derive(Clone, Debug)]
pub enum Caller {
    /// An inbound phone call from this number.
    Number(String),
    /// A web call: no phone call, no caller id.
    Web,
    /// An inbound call with the caller id withheld.
    Withheld,
}

/// One conversation of the emulated workspace.
#[derive(Clone, Debug)]
pub struct Conversation {
    /// Its id.
    pub id: String,
    /// Its agent.
    pub agent: String,
    /// Call start, unix seconds.
    pub start: i64,
    /// Its status (`done`, `in-progress`, …).
    pub status: &'static str,
    /// Who called.
    pub caller: Caller,
}

impl Conversation {
    /// A finished inbound call from `number`.
    pub fn call(id: &str, agent: &str, start: i64, number: &str) -> Self {
        Self {
            id: id.to_owned(),
            agent: agent.to_owned(),
            start,
            status: "done",
            caller: Caller::Number(number.to_owned()),
        }
    }

    /// The summary the details carry (what becomes a memory).
    pub fn summary_text(&self) -> String {
        format!(
            "The caller asked about the delivery of order {} and was told it ships on Friday.",
            self.id
        )
    }
}

/// Faults to inject.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next this many list requests answer 429 with `Retry-After`.
    pub list_429: u32,
    /// The `Retry-After` sent with a 429, in seconds.
    pub retry_after: &'static str,
    /// Details answer 500 this many times for these conversations.
    pub detail_500: HashMap<String, u32>,
    /// Listed, but gone (404) when its details are asked.
    pub gone: HashSet<String>,
    /// Wait this long before answering details.
    pub detail_delay: Duration,
    /// The last full page still says `has_more`, and an empty page follows.
    pub trailing_empty_page: bool,
}

/// Requests seen.
#[derive(Debug, Default, Clone)]
pub struct Hits {
    /// List requests (all answers).
    pub list: u32,
    /// The query of each list request.
    pub list_queries: Vec<HashMap<String, String>>,
    /// Details requests per conversation (all answers).
    pub details: HashMap<String, u32>,
    /// Audio requests.
    pub audio: u32,
    /// 429s sent.
    pub too_many: u32,
    /// 500s sent.
    pub server_errors: u32,
    /// 401s sent.
    pub unauthorized: u32,
    /// Requests whose `xi-api-key` was missing.
    pub without_key: u32,
}

impl Hits {
    /// Details requests in all.
    pub fn details_total(&self) -> u32 {
        self.details.values().sum()
    }
}

#[derive(Debug)]
struct State {
    conversations: Vec<Conversation>,
    faults: Mutex<Faults>,
    hits: Mutex<Hits>,
    fixture: Value,
}

/// A running emulator.
#[derive(Clone, Debug)]
pub struct Emulator {
    state: Arc<State>,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
}

/// The recording served for every conversation.
pub fn audio_bytes(id: &str) -> Vec<u8> {
    let mut bytes = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    bytes.extend((0..20_000u32).map(|i| (i.wrapping_mul(31) ^ id.len() as u32) as u8));
    bytes
}

impl Emulator {
    /// Starts an emulator serving `conversations` on a free loopback port
    /// (on the current tokio runtime).
    pub fn start(conversations: Vec<Conversation>, faults: Faults) -> Self {
        let fixture: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture_path("post_call_transcription.docs-example.json"))
                .expect("the shared post_call_transcription fixture"),
        )
        .unwrap();
        let mut conversations = conversations;
        // Newest first, as the API lists them.
        conversations.sort_by(|a, b| b.start.cmp(&a.start).then(a.id.cmp(&b.id)));
        let state = Arc::new(State {
            conversations,
            faults: Mutex::new(faults),
            hits: Mutex::new(Hits::default()),
            fixture: fixture["data"].clone(),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/convai/conversations", web::get().to(list))
                .route("/v1/convai/conversations/{id}", web::get().to(details))
                .route("/v1/convai/conversations/{id}/audio", web::get().to(audio))
        })
        .workers(2)
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

    /// The requests seen so far.
    pub fn hits(&self) -> Hits {
        self.state.hits.lock().unwrap().clone()
    }

    /// The details of a conversation, as the API (and the webhook's `data`)
    /// has them.
    pub fn details_of(&self, conversation: &Conversation) -> Value {
        details_json(&self.state.fixture, conversation)
    }
}

/// A file of the shared fixtures.
pub fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/elevenlabs")
        .join(name)
}

fn details_json(fixture: &Value, c: &Conversation) -> Value {
    let mut data = fixture.clone();
    data["conversation_id"] = json!(c.id);
    data["agent_id"] = json!(c.agent);
    data["status"] = json!(c.status);
    data["has_audio"] = json!(true);
    data["metadata"]["start_time_unix_secs"] = json!(c.start);
    data["analysis"]["transcript_summary"] = json!(c.summary_text());
    let phone_call = |external: &str| {
        json!({"type": "twilio", "direction": "inbound", "phone_number_id": "pn_1",
               "agent_number": AGENT_NUMBER, "external_number": external,
               "call_sid": format!("CA{}", c.id)})
    };
    match &c.caller {
        Caller::Number(n) => {
            data["metadata"]["phone_call"] = phone_call(n);
            data["conversation_initiation_client_data"]["dynamic_variables"]["system__caller_id"] =
                json!(n);
        }
        Caller::Web => {}
        Caller::Withheld => {
            data["metadata"]["phone_call"] = phone_call("anonymous");
            data["conversation_initiation_client_data"]["dynamic_variables"]["system__caller_id"] =
                json!("anonymous");
        }
    }
    data
}

fn authorized(state: &State, req: &HttpRequest) -> Option<HttpResponse> {
    let key = req
        .headers()
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok());
    let mut hits = state.hits.lock().unwrap();
    if key.is_none() {
        hits.without_key += 1;
    }
    if key == Some(KEY) {
        return None;
    }
    hits.unauthorized += 1;
    Some(HttpResponse::Unauthorized().json(json!({
        "detail": {"status": "invalid_api_key", "message": "Invalid API key"}
    })))
}

async fn list(
    state: web::Data<State>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    state.hits.lock().unwrap().list += 1;
    state
        .hits
        .lock()
        .unwrap()
        .list_queries
        .push(query.0.clone());
    if let Some(refused) = authorized(&state, &req) {
        return refused;
    }
    let (trailing, retry_after) = {
        let mut faults = state.faults.lock().unwrap();
        if faults.list_429 > 0 {
            faults.list_429 -= 1;
            state.hits.lock().unwrap().too_many += 1;
            return HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", faults.retry_after))
                .json(json!({"detail": "rate limited"}));
        }
        (faults.trailing_empty_page, faults.retry_after)
    };
    let _ = retry_after;
    let number = |k: &str| query.get(k).map(|v| v.parse::<i64>().unwrap());
    let page_size = number("page_size").unwrap_or(30);
    if !(1..=100).contains(&page_size) {
        return HttpResponse::UnprocessableEntity().json(json!({"detail": "page_size"}));
    }
    let (after, before) = (
        number("call_start_after_unix"),
        number("call_start_before_unix"),
    );
    let agent = query.get("agent_id");
    let matching: Vec<&Conversation> = state
        .conversations
        .iter()
        .filter(|c| agent.is_none_or(|a| *a == c.agent))
        .filter(|c| after.is_none_or(|t| c.start >= t))
        .filter(|c| before.is_none_or(|t| c.start < t))
        .collect();
    let offset = match query.get("cursor") {
        None => 0,
        Some(cursor) => match cursor.strip_prefix("cur_").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return HttpResponse::UnprocessableEntity().json(json!({"detail": "cursor"})),
        },
    };
    let end = (offset + page_size as usize).min(matching.len());
    let page = matching.get(offset..end).unwrap_or_default();
    let has_more = end < matching.len() || (trailing && !page.is_empty());
    let summaries: Vec<Value> = page
        .iter()
        .map(|c| {
            json!({"agent_id": c.agent, "agent_name": "Support", "conversation_id": c.id,
                   "start_time_unix_secs": c.start, "call_duration_secs": 22,
                   "message_count": 3, "status": c.status, "call_successful": "success",
                   "direction": "inbound"})
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "conversations": summaries,
        "next_cursor": if has_more { json!(format!("cur_{end}")) } else { Value::Null },
        "has_more": has_more,
    }))
}

async fn details(state: web::Data<State>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    *state
        .hits
        .lock()
        .unwrap()
        .details
        .entry(id.clone())
        .or_default() += 1;
    if let Some(refused) = authorized(&state, &req) {
        return refused;
    }
    let delay = {
        let mut faults = state.faults.lock().unwrap();
        if faults.gone.contains(id.as_str()) {
            return HttpResponse::NotFound()
                .json(json!({"detail": {"status": "conversation_not_found"}}));
        }
        if let Some(left) = faults.detail_500.get_mut(id.as_str())
            && *left > 0
        {
            *left -= 1;
            state.hits.lock().unwrap().server_errors += 1;
            return HttpResponse::InternalServerError().json(json!({"detail": "oops"}));
        }
        faults.detail_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match state.conversations.iter().find(|c| c.id == *id) {
        Some(c) => HttpResponse::Ok().json(details_json(&state.fixture, c)),
        None => HttpResponse::NotFound().json(json!({"detail": "not found"})),
    }
}

async fn audio(state: web::Data<State>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    state.hits.lock().unwrap().audio += 1;
    if let Some(refused) = authorized(&state, &req) {
        return refused;
    }
    if state.conversations.iter().any(|c| c.id == *id) {
        HttpResponse::Ok()
            .content_type("audio/mpeg")
            .body(audio_bytes(&id))
    } else {
        HttpResponse::NotFound().json(json!({"detail": "not found"}))
    }
}
