//! The HTTP surface.
//!
//! | route | what |
//! |---|---|
//! | `POST /webhook/client-data` | greet a ringing caller |
//! | `POST /webhook/search-data` | the agent's memory tool |
//! | `POST /webhook/post-call` | store a finished call's event durably |
//! | `GET /health` | the process is alive |
//! | `GET /ready` | the store answers and the payload directory is writable |
//! | `GET /metrics` | Prometheus metrics |

pub mod in_call;
pub mod post_call;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use recall_memory::ErrorChain;
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::net::client_ip;
use crate::startup::AppState;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhook/client-data")
            .route(web::post().to(in_call::client_data))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/webhook/search-data")
            .route(web::post().to(in_call::search_data))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/webhook/post-call")
            .route(web::post().to(post_call::post_call))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/health")
            .route(web::get().to(health))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/ready")
            .route(web::get().to(ready))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .default_service(method_not_allowed("GET")),
    )
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {} {}", req.method(), req.path()),
    )
    .error_response()
}

/// The default service of a resource that accepts only `allow` (e.g.
/// `"GET, DELETE"`): a 405 with the JSON error body and, as RFC 9110
/// requires, an `Allow` header listing the methods the route accepts.
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move |req: HttpRequest| async move {
        let mut response = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not allowed on {}; allowed: {allow}",
                req.method(),
                req.path()
            ),
        )
        .error_response();
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        response
    })
}

/// The answer of `/health` and `/ready`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` (`/health`) or `ready` (`/ready`).
    #[schema(example = "ok")]
    pub status: &'static str,
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.service.ready().await {
        Ok(()) => Ok(HttpResponse::Ok().json(Status { status: "ready" })),
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "not ready");
            Err(ApiError::unavailable(
                "not ready: the memory store or the payload directory is unavailable",
            ))
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}

/// The routes whose label is their path; anything else is `other`, so
/// that scanners cannot blow up the metrics' cardinality.
const KNOWN_ROUTES: &[&str] = &[
    "/webhook/client-data",
    "/webhook/search-data",
    "/webhook/post-call",
    "/health",
    "/ready",
    "/metrics",
];

/// The method as a metrics and log label: the standard methods by name,
/// anything else `OTHER`.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Middleware around every request: one span (with the conversation id
/// once a handler knows it), the client-IP allowlist for the webhooks, and
/// the request metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let started = Instant::now();
    // The path as the router matches it (percent-encoded unreserved
    // characters decoded): classifying the raw path would let
    // `/webhook/%63lient-data` reach a webhook without meeting the allowlist.
    let path = req.match_info().as_str();
    let is_webhook = path.starts_with("/webhook/");
    let route = KNOWN_ROUTES
        .iter()
        .copied()
        .find(|r| *r == path)
        .unwrap_or("other");
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "request",
        %method,
        route,
        conversation_id = tracing::field::Empty,
        caller = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let state = req.app_data::<web::Data<AppState>>().cloned();

    let response = async {
        if let Some(state) = &state
            && is_webhook
            && !state.config.ip_allowlist.is_empty()
        {
            let peer = req.peer_addr().map(|a| a.ip());
            // Every line, in order: a proxy may add its own line rather
            // than append to the client's, and the last hops are the ones
            // to believe.
            let forwarded = req
                .headers()
                .get_all("X-Forwarded-For")
                .map(|v| v.to_str().unwrap_or("invalid"))
                .collect::<Vec<_>>()
                .join(",");
            let forwarded = (!forwarded.is_empty()).then_some(forwarded.as_str());
            let allowed = peer.is_some_and(|peer| {
                let ip = client_ip(peer, forwarded, &state.config.trusted_proxies);
                let allowlist = &state.config.ip_allowlist;
                allowlist.iter().any(|n| n.contains(ip))
            });
            if !allowed {
                tracing::warn!(peer = ?peer, "client address not in the allowlist");
                let error = ApiError::forbidden("this client address may not call the webhooks");
                let response = error.error_response();
                return Ok(req.into_response(response));
            }
        }
        next.call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body)
    }
    .instrument(span.clone())
    .await;

    let status = match &response {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state
            .metrics
            .observe(route, method, status, elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "answered"
        );
    });
    response
}
