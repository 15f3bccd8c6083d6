//! The operator surface: a read API over callers, memories and calls, the
//! dashboard that uses it, and the OpenAPI document of the whole server.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/users/{phone}` | the caller's profile (`User`) |
//! | `GET /api/users/{phone}/memories?sector=&limit=&cursor=` | their memories, newest first (`MemoryDisplay[]`) |
//! | `GET /api/users/{phone}/export` | everything held about the caller, one JSON document, streamed (`CallerExport`) |
//! | `DELETE /api/users/{phone}` | erase the caller: memories, payloads, audio, index rows, quarantined bodies, queued and failed events |
//! | `GET /api/calls?phone=&agent=&from=&to=&limit=&cursor=` | calls newest first (`CallSummary[]`) |
//! | `GET /api/calls/{conversation_id}` | one call with its transcript, or when it was deleted |
//! | `GET /api/calls/{conversation_id}/audio` | the call's MP3, when stored |
//! | `GET /api/events?status=&limit=&cursor=` | events not turned into memories: `pending`, `failed` or `quarantined`, with the reason |
//! | `GET /api/analytics?agent=&from=&to=` | `CallAnalytics` |
//! | `GET /api/analytics/daily?agent=&from=&to=` | calls and successes per UTC day |
//! | `GET /dashboard` | the dashboard (HTML, CSS and JS embedded in the binary) |
//! | `GET /openapi.json` | the OpenAPI 3 document of every route |
//!
//! * **Access.** Every `/api` request needs `Authorization: Bearer
//!   <token>` with one of the tokens of `RECALL_ADMIN_TOKEN`
//!   (comma-separated), compared in constant time. Without a configured
//!   token, `/api` and `/dashboard` do not exist (404). No CORS headers are
//!   sent: the dashboard is served from the same origin.
//! * **Audit.** Every request on a route that reads or erases a caller's
//!   data (users, memories, export, calls, transcript, audio, erase)
//!   appends one entry to the audit log, whatever the answer; see
//!   the `audit` module for what is written and when a request fails
//!   because it cannot be.
//! * **Paging.** Lists answer a plain JSON array (the seed's interfaces);
//!   the cursor of the next page is in the `X-Next-Cursor` response
//!   header, absent on the last page. Cursors are opaque and stable.
//! * **Times.** `from` and `to` take RFC 3339 (`2025-02-14T12:48:17Z`) or
//!   unix seconds; both ends are included.
//! * **Salience labels.** `High` from 0.8, `Medium` from 0.5, else `Low`
//!   ([`recall_model::Salience::label`]): each band is centred on one of
//!   the seed's levels 0.9, 0.7 and 0.3.
//! * **Errors.** `{"error": code, "message": ...}`; a bad parameter is a
//!   400 whose message starts with the parameter's name.

mod assets;
mod audit;
mod handlers;
pub mod openapi;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{ResponseError, web};
use recall_calls::SqliteCallIndex;
use recall_service::{AuditLog, Service};
use recall_signature::Secrets;

use crate::error::ApiError;
use crate::routes::method_not_allowed;

/// The response header carrying the next page's cursor.
pub const NEXT_CURSOR_HEADER: &str = "X-Next-Cursor";

/// What the operator routes need.
#[derive(Clone)]
pub struct AdminState {
    /// Accepted bearer tokens; empty turns the surface off.
    pub tokens: Secrets,
    /// The use cases: every read and erasure goes through the service,
    /// which owns the memory store, the payloads and the call index.
    pub service: Service,
    /// Where operator access to callers' data is recorded.
    pub audit: Arc<dyn AuditLog>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// Whether the operator surface is on (a token is configured).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }
}

/// Registers `/openapi.json` always, and `/api/*` and `/dashboard` when a
/// token is configured. Call it before the app's default service.
pub fn configure(cfg: &mut web::ServiceConfig, state: AdminState) {
    cfg.service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi::serve))
            .default_service(method_not_allowed("GET")),
    );
    if !state.enabled() {
        return;
    }
    let data = web::Data::new(state);
    let resource = |path: &str, allow: &'static str| {
        web::resource(path).default_service(method_not_allowed(allow))
    };
    cfg.service(
        web::scope("/api")
            .app_data(data)
            .wrap(from_fn(require_token))
            // Outermost: refused requests are audited too.
            .wrap(from_fn(audit::audit))
            .service(
                resource("/users/{phone}", "GET, DELETE")
                    .route(web::get().to(handlers::get_user))
                    .route(web::delete().to(handlers::delete_user)),
            )
            .service(
                resource("/users/{phone}/export", "GET")
                    .route(web::get().to(handlers::export_user)),
            )
            .service(
                resource("/users/{phone}/memories", "GET")
                    .route(web::get().to(handlers::list_memories)),
            )
            .service(resource("/calls", "GET").route(web::get().to(handlers::list_calls)))
            .service(
                resource("/calls/{conversation_id}", "GET")
                    .route(web::get().to(handlers::get_call)),
            )
            .service(
                resource("/calls/{conversation_id}/audio", "GET")
                    .route(web::get().to(handlers::get_audio)),
            )
            .service(resource("/events", "GET").route(web::get().to(handlers::list_events)))
            .service(resource("/analytics", "GET").route(web::get().to(handlers::analytics)))
            .service(resource("/analytics/daily", "GET").route(web::get().to(handlers::daily)))
            .default_service(web::to(handlers::api_not_found)),
    )
    .configure(assets::configure);
}

/// Refuses an `/api` request without a valid bearer token (401, JSON).
async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let allowed = req
        .app_data::<web::Data<AdminState>>()
        .is_some_and(|state| {
            crate::auth::bearer(req.headers())
                .is_some_and(|token| state.tokens.check_shared(token).is_ok())
        });
    if !allowed {
        let error = ApiError::unauthorized(
            "send an admin token (RECALL_ADMIN_TOKEN) as Authorization: Bearer <token>",
        );
        return Ok(req.into_response(error.error_response()));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// Opens the call index `<data_dir>/calls.db`; `true` when it was just
/// created (empty: the caller fills it with
/// [`Service::reindex`](recall_service::Service::reindex)).
///
/// # Errors
/// When the data directory or the index cannot be created or read.
pub async fn open_index(config: &crate::config::Config) -> anyhow::Result<(SqliteCallIndex, bool)> {
    use anyhow::Context as _;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let path = config.data_dir.join(recall_calls::INDEX_FILE_NAME);
    let fresh = !path.exists();
    let index = SqliteCallIndex::open(&path)
        .await
        .with_context(|| format!("cannot open the call index {}", path.display()))?;
    Ok((index, fresh))
}
