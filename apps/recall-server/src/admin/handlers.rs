//! The `/api` handlers. Parameters are parsed into domain values first; a
//! bad one is a 400 naming it, before anything is read or changed.

use std::path::Path;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use recall_calls::{AnalyticsQuery, CallQuery, CallsError, MAX_LIMIT};
use recall_memory::{ListRequest, MAX_RESULTS, MemoryError, MemoryFilter};
use recall_model::ui::{CallSummary, MemoryDisplay, TranscriptMessage, User};
use recall_model::{AgentId, ConversationId, MemorySector, PhoneNumber, UnixTimestamp};
use recall_service::{EventStatus, MAX_EVENT_PAGE};
use serde::{Deserialize, Serialize};

use super::{AdminState, NEXT_CURSOR_HEADER};
use crate::error::ApiError;

/// One call with its transcript (`GET /api/calls/{conversation_id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallDetailResponse {
    /// The call, as in the list.
    #[schema(value_type = super::openapi::schemas::CallSummary)]
    pub call: CallSummary,
    /// Its transcript in order (turns without text are left out).
    #[schema(value_type = Vec<super::openapi::schemas::TranscriptMessage>)]
    pub transcript: Vec<TranscriptMessage>,
    /// Whether the call's audio is stored (`GET .../audio`).
    pub has_audio: bool,
    /// When the call started (or failed to), RFC 3339 UTC.
    #[schema(format = DateTime, example = "2025-02-14T12:48:17Z")]
    pub start_time: String,
    /// The caller's number, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "+16129782029", pattern = r"^\+[1-9][0-9]{1,14}$")]
    pub caller_phone: Option<String>,
}

/// Calls on one UTC day (`GET /api/analytics/daily`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyCallsResponse {
    /// The day, `YYYY-MM-DD` (UTC).
    #[schema(example = "2025-02-14")]
    pub day: String,
    /// Calls that day, initiation failures included.
    pub calls: u64,
    /// Successful calls that day.
    pub successful: u64,
}

/// An event that has not become memories (`GET /api/events`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    /// `pending`, `failed` or `quarantined`.
    #[schema(example = "failed")]
    pub status: &'static str,
    /// The conversation (absent for a quarantined body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The event's `type` (absent for a quarantined body).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Why: the last error of a pending event being retried, the failure,
    /// or why a body was refused. Absent for a pending event not tried yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Failed attempts so far (pending events).
    pub attempts: u32,
    /// A quarantined body's file, under `<payload dir>/_quarantine/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A quarantined body's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// When a body was refused (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub received_at: Option<String>,
}

/// Query of `GET /api/events`.
#[derive(Debug, Default, Deserialize)]
struct EventsParams {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// What `DELETE /api/users/{phone}` erased.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForgetResponse {
    /// The caller erased.
    #[schema(example = "+16129782029", pattern = r"^\+[1-9][0-9]{1,14}$")]
    pub phone_number: String,
    /// Memories erased from the store.
    pub memories: u64,
    /// Conversations whose stored events were removed.
    pub conversations: u64,
    /// Stored events (raw payloads) removed.
    pub payloads: u64,
    /// Audio files removed.
    pub audio: u64,
    /// Calls removed from the call index.
    pub indexed_calls: u64,
}

/// Query of `GET /api/users/{phone}/memories`.
#[derive(Debug, Default, Deserialize)]
struct MemoriesParams {
    sector: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Query of `GET /api/calls`.
#[derive(Debug, Default, Deserialize)]
struct CallsParams {
    phone: Option<String>,
    agent: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Query of `GET /api/analytics` and `/api/analytics/daily`.
#[derive(Debug, Default, Deserialize)]
struct AnalyticsParams {
    agent: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request("invalid_query", format!("query string: {e}")))
}

/// A parameter exactly as sent: one that is present is checked, even when
/// empty (`?to=` is not a time) or padded (`?limit=%205` is not a number).
fn given(value: Option<&String>) -> Option<&str> {
    value.map(String::as_str)
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, ApiError> {
    // A `+` sent percent-encoded in the path arrives as `%2B`.
    let raw = match raw.get(..3) {
        Some(prefix) if prefix.eq_ignore_ascii_case("%2b") => format!("+{}", &raw[3..]),
        _ => raw.to_owned(),
    };
    PhoneNumber::parse(&raw).map_err(|_| {
        ApiError::bad_request(
            "invalid_phone",
            "phone: must be an E.164 number such as +16129782029 ('+', a digit 1-9, then 1 to 14 digits)",
        )
    })
}

fn parse_limit(raw: Option<&String>, max: usize) -> Result<Option<u32>, ApiError> {
    let Some(raw) = given(raw) else {
        return Ok(None);
    };
    match raw.parse::<u32>() {
        Ok(n) if n >= 1 && n as usize <= max => Ok(Some(n)),
        _ => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit: must be a whole number from 1 to {max} (got {raw:?})"),
        )),
    }
}

fn parse_time(name: &'static str, raw: Option<&String>) -> Result<Option<UnixTimestamp>, ApiError> {
    let Some(raw) = given(raw) else {
        return Ok(None);
    };
    // A bound before 1970 or after 9999 is the start or end of time: the
    // range it asks for is clear, so it is not refused.
    let parsed = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        Some(UnixTimestamp::from_secs_saturating(
            raw.parse::<i64>().unwrap_or(i64::MAX),
        ))
    } else {
        UnixTimestamp::parse_rfc3339_saturating(raw).ok()
    };
    parsed.map(Some).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_time",
            format!(
                "{name}: must be an RFC 3339 date-time such as 2025-02-14T12:48:17Z or unix seconds"
            ),
        )
    })
}

fn parse_agent(raw: Option<&String>) -> Result<Option<AgentId>, ApiError> {
    given(raw)
        .map(|raw| {
            AgentId::parse(raw)
                .map_err(|e| ApiError::bad_request("invalid_agent", format!("agent: {}", e.rule())))
        })
        .transpose()
}

fn parse_range(
    from: Option<&String>,
    to: Option<&String>,
) -> Result<(Option<UnixTimestamp>, Option<UnixTimestamp>), ApiError> {
    let from = parse_time("from", from)?;
    let to = parse_time("to", to)?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::bad_request(
            "invalid_time",
            "from: must not be later than to",
        ));
    }
    Ok((from, to))
}

fn parse_conversation(raw: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(raw).map_err(|e| {
        ApiError::bad_request(
            "invalid_conversation_id",
            format!("conversation_id: {}", e.rule()),
        )
    })
}

fn index_error(error: &CallsError) -> ApiError {
    match error {
        CallsError::InvalidCursor => ApiError::bad_request(
            "invalid_cursor",
            "cursor: not a cursor returned in X-Next-Cursor by this API",
        ),
        CallsError::InvalidLimit(n) => ApiError::bad_request(
            "invalid_limit",
            format!("limit: must be a whole number from 1 to {MAX_LIMIT} (got {n})"),
        ),
        other => {
            tracing::error!(error = %other, "call index failed");
            ApiError::internal()
        }
    }
}

fn store_error(error: &MemoryError) -> ApiError {
    match error {
        MemoryError::InvalidCursor(_) => ApiError::bad_request(
            "invalid_cursor",
            "cursor: not a cursor returned in X-Next-Cursor by this API",
        ),
        e if e.is_retryable() => {
            tracing::warn!(error = %e, "memory store unavailable");
            ApiError::unavailable("the memory store is unavailable; retry later")
        }
        e => {
            tracing::error!(error = %e, "memory store failed");
            ApiError::internal()
        }
    }
}

fn with_cursor(mut response: HttpResponse, cursor: Option<String>) -> HttpResponse {
    if let Some(value) = cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-next-cursor"), value);
    }
    debug_assert!(NEXT_CURSOR_HEADER.eq_ignore_ascii_case("x-next-cursor"));
    response
}

/// `GET /api/events?status=`.
pub(super) async fn list_events(
    req: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let params: EventsParams = query(&req)?;
    let status = match given(params.status.as_ref()) {
        Some(raw) => {
            EventStatus::parse(raw).map_err(|rule| ApiError::bad_request("invalid_status", rule))?
        }
        None => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status: is required: pending, failed or quarantined",
            ));
        }
    };
    let limit = parse_limit(params.limit.as_ref(), MAX_EVENT_PAGE)?.unwrap_or(50) as usize;
    let page = state
        .service
        .list_events(status, limit, given(params.cursor.as_ref()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot list events");
            ApiError::internal()
        })?;
    let items: Vec<EventResponse> = page
        .items
        .into_iter()
        .map(|e| EventResponse {
            status: e.status.as_str(),
            conversation_id: e.conversation_id.map(|c| c.as_str().to_owned()),
            event_type: e.event_type,
            reason: e.reason,
            attempts: e.attempts,
            file: e.file,
            bytes: e.bytes,
            received_at: e.received_at.map(UnixTimestamp::to_rfc3339),
        })
        .collect();
    Ok(with_cursor(
        HttpResponse::Ok().json(items),
        page.next_cursor,
    ))
}

/// `GET /api/users/{phone}`.
pub(super) async fn get_user(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&path)?;
    let profile = state
        .store
        .profile(&phone)
        .await
        .map_err(|e| store_error(&e))?;
    let calls = state
        .index
        .list_calls(CallQuery {
            phone: Some(phone.clone()),
            limit: Some(20),
            ..CallQuery::default()
        })
        .await
        .map_err(|e| index_error(&e))?;
    if profile.memory_count == 0 && calls.items.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "phone: no caller with this number is known",
        ));
    }
    let last_call_summary = calls
        .items
        .iter()
        .filter(|c| !c.initiation_failed)
        .find_map(|c| c.summary.clone());
    Ok(HttpResponse::Ok().json(User {
        phone_number: phone,
        name: profile.name,
        profile_summary: profile.summary,
        last_call_summary,
    }))
}

/// `GET /api/users/{phone}/memories`.
pub(super) async fn list_memories(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&path)?;
    let params: MemoriesParams = query(&req)?;
    let sector = given(params.sector.as_ref())
        .map(|s| {
            MemorySector::parse(s).map_err(|e| {
                ApiError::bad_request("invalid_sector", format!("sector: {}", e.rule()))
            })
        })
        .transpose()?;
    let limit = parse_limit(params.limit.as_ref(), MAX_RESULTS)?.unwrap_or(50) as usize;
    let request = ListRequest {
        filter: MemoryFilter {
            sector,
            ..MemoryFilter::default()
        },
        limit,
        cursor: given(params.cursor.as_ref()).map(str::to_owned),
    };
    let page = state
        .store
        .list(&phone, &request)
        .await
        .map_err(|e| store_error(&e))?;
    let items: Vec<MemoryDisplay> = page
        .items
        .into_iter()
        .map(|m| MemoryDisplay::new(m.content, m.sector, m.salience, Some(m.created_at)))
        .collect();
    Ok(with_cursor(
        HttpResponse::Ok().json(items),
        page.next_cursor,
    ))
}

/// `DELETE /api/users/{phone}`.
pub(super) async fn delete_user(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&path)?;
    match erase_caller(&state.service, &state.index, &state.payload_dir, &phone).await {
        Ok(report) => Ok(HttpResponse::Ok().json(report)),
        Err(EraseError::Service(e)) => {
            tracing::warn!(error = %e, "forget failed");
            Err(ApiError::unavailable(
                "the caller could not be erased; nothing was deleted; retry later",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "erasing a caller failed part-way");
            Err(ApiError::internal())
        }
    }
}

/// Why [`erase_caller`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The service could not forget (the store is down): nothing was
    /// deleted.
    #[error("{0}")]
    Service(#[from] recall_service::ServiceError),
    /// The call index failed after the memories and payloads were erased.
    #[error("{0}")]
    Index(#[from] CallsError),
    /// A left-over conversation folder could not be removed.
    #[error("cannot remove a conversation folder: {0}")]
    Io(#[from] std::io::Error),
}

/// Erases a caller everywhere: memories and their attributed payloads and
/// audio (through [`recall_service::Service::forget`], which deletes
/// nothing when the store fails), then their rows in the call index, then
/// the folders of indexed conversations the service did not attribute to
/// them (initiation failures). Used by `DELETE /api/users/{phone}` and
/// `recall forget`.
///
/// # Errors
/// [`EraseError`]; with [`EraseError::Service`] nothing was deleted.
pub async fn erase_caller(
    service: &recall_service::Service,
    index: &recall_calls::CallIndex,
    payload_dir: &Path,
    phone: &PhoneNumber,
) -> Result<ForgetResponse, EraseError> {
    let report = service.forget(phone).await?;
    let indexed = index.forget_caller(phone).await?;
    let root = payload_dir.to_path_buf();
    let ids = indexed.clone();
    let (extra_conversations, extra_payloads, extra_audio) = tokio::task::spawn_blocking({
        let span = tracing::Span::current();
        move || span.in_scope(|| remove_left_over(&root, &ids))
    })
    .await
    .map_err(std::io::Error::other)??;
    tracing::info!(caller = %phone.masked(), ?report, indexed = indexed.len(), "caller erased");
    Ok(ForgetResponse {
        phone_number: phone.as_str().to_owned(),
        memories: report.memories,
        conversations: report.conversations + extra_conversations,
        payloads: report.payloads + extra_payloads,
        audio: report.audio + extra_audio,
        indexed_calls: indexed.len() as u64,
    })
}

/// Removes the folders of `ids` still present; counts folders, event files
/// and audio files removed.
fn remove_left_over(root: &Path, ids: &[ConversationId]) -> std::io::Result<(u64, u64, u64)> {
    let (mut folders, mut events, mut audio) = (0, 0, 0);
    for id in ids {
        let dir = root.join(id.as_str());
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name == "audio.mp3" {
                audio += 1;
            } else if name.ends_with(".json") {
                events += 1;
            }
        }
        std::fs::remove_dir_all(&dir)?;
        folders += 1;
    }
    Ok((folders, events, audio))
}

/// `GET /api/calls`.
pub(super) async fn list_calls(
    req: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let params: CallsParams = query(&req)?;
    // An unencoded `+` in a query string reads as a space.
    let phone = params.phone.as_deref().map(|p| match p.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
        _ => p.to_owned(),
    });
    let phone = phone.as_deref().map(parse_phone).transpose()?;
    let agent = parse_agent(params.agent.as_ref())?;
    let (from, to) = parse_range(params.from.as_ref(), params.to.as_ref())?;
    let limit = parse_limit(params.limit.as_ref(), MAX_LIMIT as usize)?;
    let page = state
        .index
        .list_calls(CallQuery {
            phone,
            agent,
            from,
            to,
            limit,
            cursor: given(params.cursor.as_ref()).map(str::to_owned),
        })
        .await
        .map_err(|e| index_error(&e))?;
    let items: Vec<CallSummary> = page.items.iter().map(|c| c.to_summary()).collect();
    Ok(with_cursor(
        HttpResponse::Ok().json(items),
        page.next_cursor,
    ))
}

/// `GET /api/calls/{conversation_id}`.
pub(super) async fn get_call(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_conversation(&path)?;
    let detail = state
        .index
        .get_call(&id)
        .await
        .map_err(|e| index_error(&e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "conversation_id: no call with this id is indexed",
            )
        })?;
    Ok(HttpResponse::Ok().json(CallDetailResponse {
        call: detail.call.to_summary(),
        transcript: detail.transcript.iter().map(|t| t.to_message()).collect(),
        has_audio: detail.call.has_audio,
        start_time: detail.call.start_time.to_rfc3339(),
        caller_phone: detail.call.caller.map(|c| c.as_str().to_owned()),
    }))
}

/// `GET /api/calls/{conversation_id}/audio`: streams `audio.mp3`.
pub(super) async fn get_audio(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_conversation(&path)?;
    let file_path = state.payload_dir.join(id.as_str()).join("audio.mp3");
    let file = match tokio::fs::File::open(&file_path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "conversation_id: no audio is stored for this call",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot open stored audio");
            return Err(ApiError::internal());
        }
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let body = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
    let mut response = HttpResponse::Ok();
    response
        .content_type("audio/mpeg")
        .insert_header((header::CACHE_CONTROL, "private, no-store"));
    if let Some(len) = len {
        response.no_chunking(len);
    }
    Ok(response.streaming(body))
}

fn analytics_query(req: &HttpRequest) -> Result<AnalyticsQuery, ApiError> {
    let params: AnalyticsParams = query(req)?;
    let agent = parse_agent(params.agent.as_ref())?;
    let (from, to) = parse_range(params.from.as_ref(), params.to.as_ref())?;
    Ok(AnalyticsQuery { agent, from, to })
}

/// `GET /api/analytics`.
pub(super) async fn analytics(
    req: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let analytics = state
        .index
        .analytics(analytics_query(&req)?)
        .await
        .map_err(|e| index_error(&e))?;
    Ok(HttpResponse::Ok().json(analytics.to_ui()))
}

/// `GET /api/analytics/daily`.
pub(super) async fn daily(
    req: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let days = state
        .index
        .daily(analytics_query(&req)?)
        .await
        .map_err(|e| index_error(&e))?;
    let days: Vec<DailyCallsResponse> = days
        .into_iter()
        .map(|d| DailyCallsResponse {
            day: d.day,
            calls: d.calls,
            successful: d.successful,
        })
        .collect();
    Ok(HttpResponse::Ok().json(days))
}

/// Any other `/api` path.
pub(super) async fn api_not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {} {}", req.method(), req.path()),
    )
    .error_response()
}
