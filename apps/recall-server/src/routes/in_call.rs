//! The webhooks called during a call, on its critical path: client-data
//! (greet a ringing caller) and search-data (the agent's memory tool). Bodies
//! are small and read whole, up to the configured limit (64 KiB by
//! default), authenticated, then parsed.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{self, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use recall_memory::ErrorChain;
use recall_model::{ClientDataRequest, SearchDataRequest};
use recall_service::SearchError;

use recall_signature::Verifier;

use crate::auth::InCallWebhookAuth;
use crate::config::Config;
use crate::error::ApiError;
use crate::startup::AppState;

/// The body length announced by `Content-Length`, if any.
pub fn announced_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The error for a client too slow to send its body.
pub fn body_timeout(limit: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body was not received within {} s",
            limit.as_secs()
        ),
    )
}

/// Reads a whole body of at most `limit` bytes within `timeout`.
///
/// # Errors
/// 413 past the limit (announced or actual), 408 when too slow, 400 when
/// the connection breaks.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<BytesMut, ApiError> {
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if announced_length(req).is_some_and(|n| n > limit_u64) {
        return Err(ApiError::too_large(limit_u64));
    }
    let read = async {
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request("body_unreadable", format!("cannot read the body: {e}"))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::too_large(limit_u64));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| body_timeout(timeout))?
}

/// Authenticates an in-call webhook with its route's `verifier` (credentials
/// first: without them not a byte of the body is read), reads the body
/// within the configured limit and time, and parses it as `T`.
async fn authenticated_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    verifier: &Verifier,
    config: &Config,
) -> Result<T, ApiError> {
    let auth = InCallWebhookAuth::start(req, verifier)?;
    let body = read_body(
        req,
        payload,
        config.webhook_max_bytes.size(),
        config.body_timeout_secs.secs(),
    )
    .await?;
    auth.finish(&body)?;
    parse_json(&body)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body is empty; a JSON object is expected",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON for this webhook: {e}"),
        )
    })
}

/// `POST /webhook/client-data`: answers 200 with the caller's greeting,
/// or with the defaults when the caller is unknown, withheld or the store
/// is failing.
pub async fn client_data(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: ClientDataRequest =
        authenticated_json(&req, payload, &state.client_data, &state.config).await?;
    if let Ok(caller) = request.caller() {
        tracing::Span::current().record("caller", caller.masked());
    }
    let greeting = state.service.greet(&request).await;
    // The outcome rides on the request's one "answered" line; the service
    // itself warns when it falls back to the defaults.
    tracing::Span::current().record("outcome", greeting.outcome.as_str());
    Ok(HttpResponse::Ok().json(greeting.response))
}

/// `POST /webhook/search-data`: the caller's profile and most relevant
/// memories.
pub async fn search_data(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: SearchDataRequest =
        authenticated_json(&req, payload, &state.search_data, &state.config).await?;
    if let Some(Ok(conversation)) = request.conversation() {
        tracing::Span::current().record("conversation_id", conversation.as_str());
    }
    if let Ok(caller) = request.caller() {
        tracing::Span::current().record("caller", caller.masked());
    }
    match state.service.search(&request).await {
        Ok(response) => Ok(HttpResponse::Ok().json(response)),
        Err(SearchError::InvalidCaller(reason)) => Err(ApiError::bad_request(
            "invalid_user_id",
            format!(
                "{reason}; user_id must be the caller's E.164 number, filled from the dynamic variable system__caller_id"
            ),
        )),
        Err(SearchError::InvalidQuery(reason)) => {
            Err(ApiError::bad_request("invalid_query", reason))
        }
        Err(SearchError::Store(error)) => {
            tracing::warn!(error = %ErrorChain(&error), "search failed in the memory store");
            Err(ApiError::unavailable(
                "the memory store is unavailable; try again shortly",
            ))
        }
        Err(error) => {
            tracing::error!(error = %ErrorChain(&error), "search failed");
            Err(ApiError::internal())
        }
    }
}
