//! The `/api` handlers. Parameters are parsed into domain values first; a
//! bad one is a 400 naming it, before anything is read or changed.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use recall_memory::{ErrorChain, ListRequest, MAX_RESULTS, MemoryError, MemoryFilter};
use recall_model::ui::{CallSummary, EraseReport, MemoryDisplay};
use recall_model::{AgentId, ConversationId, MemorySector, PhoneNumber, UnixTimestamp};
use recall_service::{
    AnalyticsQuery, CallIndexError, CallQuery, EventStatus, MAX_CALL_PAGE, MAX_EVENT_PAGE,
    ServiceError,
};
use serde::Deserialize;

use super::{AdminState, NEXT_CURSOR_HEADER};
use crate::error::ApiError;

/// Query of `GET /api/events`.
#[derive(Debug, Default, Deserialize)]
struct EventsParams {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
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

pub(super) fn parse_phone(raw: &str) -> Result<PhoneNumber, ApiError> {
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

fn index_error(error: &CallIndexError) -> ApiError {
    match error {
        CallIndexError::InvalidCursor => ApiError::bad_request(
            "invalid_cursor",
            "cursor: not a cursor returned in X-Next-Cursor by this API",
        ),
        CallIndexError::InvalidLimit(n) => ApiError::bad_request(
            "invalid_limit",
            format!("limit: must be a whole number from 1 to {MAX_CALL_PAGE} (got {n})"),
        ),
        other => {
            tracing::error!(error = %ErrorChain(other), "call index failed");
            ApiError::internal()
        }
    }
}

fn service_error(error: ServiceError) -> ApiError {
    match error {
        ServiceError::Store(e) => store_error(&e),
        ServiceError::Index(e) => index_error(&e),
        other => {
            tracing::error!(error = %ErrorChain(&other), "operator request failed");
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
            tracing::warn!(error = %ErrorChain(e), "memory store unavailable");
            ApiError::unavailable("the memory store is unavailable; retry later")
        }
        e => {
            tracing::error!(error = %ErrorChain(e), "memory store failed");
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
            tracing::error!(error = %ErrorChain(&e), "cannot list events");
            ApiError::internal()
        })?;
    Ok(with_cursor(
        HttpResponse::Ok().json(page.items),
        page.next_cursor,
    ))
}

/// `GET /api/users/{phone}`: [`recall_service::Service::caller`].
pub(super) async fn get_user(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&path)?;
    match state.service.caller(&phone).await.map_err(service_error)? {
        Some(user) => Ok(HttpResponse::Ok().json(user)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "phone: no caller with this number is known",
        )),
    }
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
        .service
        .memories(&phone, &request)
        .await
        .map_err(service_error)?;
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

/// `GET /api/users/{phone}/export`: [`recall_service::Service::export_caller`]
/// streamed. The service writes into one end of a bounded in-memory pipe
/// while the response reads the other, so at most the pipe's 64 KiB (plus
/// one page of memories or calls) is held, whatever the caller's history.
/// When the export fails part-way the response is cut off (no final
/// chunk), so a client never takes a short document for a whole one.
pub(super) async fn export_user(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    use tracing::Instrument as _;

    let phone = parse_phone(&path)?;
    if state
        .service
        .caller(&phone)
        .await
        .map_err(service_error)?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "phone: no caller with this number is known",
        ));
    }
    let (mut writer, reader) = tokio::io::duplex(EXPORT_PIPE_BYTES);
    let (done, finished) = tokio::sync::oneshot::channel::<bool>();
    let service = state.service.clone();
    tokio::spawn(
        async move {
            let outcome = match service.export_caller(&phone, &mut writer).await {
                Ok(_) => writer.shutdown().await.is_ok(),
                Err(e) => {
                    tracing::error!(error = %ErrorChain(&e), "the export failed part-way; the response is cut off");
                    false
                }
            };
            let _ = done.send(outcome);
        }
        .instrument(tracing::Span::current()),
    );
    let tail = futures_util::stream::once(async move {
        match finished.await {
            Ok(true) => None,
            _ => Some(Err(std::io::Error::other("the export failed part-way"))),
        }
    })
    .filter_map(std::future::ready);
    let body = tokio_util::io::ReaderStream::with_capacity(reader, 16 * 1024).chain(tail);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"recall-export.json\"",
        ))
        .streaming(body))
}

/// The bounded pipe between the export writer and the response.
const EXPORT_PIPE_BYTES: usize = 64 * 1024;

/// `DELETE /api/users/{phone}`: [`recall_service::Service::erase_caller`].
pub(super) async fn delete_user(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&path)?;
    match state.service.erase_caller(&phone).await {
        Ok(report) => Ok(HttpResponse::Ok().json(EraseReport {
            phone_number: phone,
            memories: report.memories,
            conversations: report.conversations,
            payloads: report.payloads,
            audio: report.audio,
            indexed_calls: report.indexed_calls,
            quarantined: report.quarantined,
            pending_events: report.pending_events,
            failed_events: report.failed_events,
        })),
        Err(recall_service::ServiceError::Store(e)) => {
            tracing::warn!(error = %ErrorChain(&e), "erasing a caller failed");
            Err(ApiError::unavailable(
                "the caller could not be erased; nothing was deleted; retry later",
            ))
        }
        Err(e) => {
            tracing::error!(error = %ErrorChain(&e), "erasing a caller failed part-way; erasing again finishes it");
            Err(ApiError::internal())
        }
    }
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
    let limit = parse_limit(params.limit.as_ref(), MAX_CALL_PAGE as usize)?;
    let page = state
        .service
        .calls()
        .map_err(service_error)?
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
    let items: Vec<CallSummary> = page.items.into_iter().map(|c| c.call).collect();
    Ok(with_cursor(
        HttpResponse::Ok().json(items),
        page.next_cursor,
    ))
}

/// `GET /api/calls/{conversation_id}`: [`recall_service::Service::call_detail`]
/// (with when its transcript and audio were deleted, if they were).
pub(super) async fn get_call(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_conversation(&path)?;
    let detail = state
        .service
        .call_detail(&id)
        .await
        .map_err(service_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "conversation_id: no call with this id is indexed",
            )
        })?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `GET /api/calls/{conversation_id}/audio`: streams the stored audio.
pub(super) async fn get_audio(
    path: web::Path<String>,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_conversation(&path)?;
    let audio = match state.service.call_audio(&id).await {
        Ok(Some(audio)) => audio,
        Ok(None) => {
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
    let body = tokio_util::io::ReaderStream::with_capacity(audio.reader, 64 * 1024);
    Ok(HttpResponse::Ok()
        .content_type("audio/mpeg")
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .no_chunking(audio.len)
        .streaming(body))
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
        .service
        .calls()
        .map_err(service_error)?
        .analytics(analytics_query(&req)?)
        .await
        .map_err(|e| index_error(&e))?;
    Ok(HttpResponse::Ok().json(analytics))
}

/// `GET /api/analytics/daily`.
pub(super) async fn daily(
    req: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, ApiError> {
    let days = state
        .service
        .calls()
        .map_err(service_error)?
        .daily(analytics_query(&req)?)
        .await
        .map_err(|e| index_error(&e))?;
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
