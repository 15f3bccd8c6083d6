//! The OpenAPI 3 document of the whole HTTP surface, generated with
//! `utoipa` and served at `GET /openapi.json`.
//!
//! The schemas of what the server answers are generated from the very
//! types it serializes: the operator API's models in `recall_model::ui`,
//! the webhooks' answers (`ClientDataResponse`, `SearchDataResponse`) and
//! the value types they hold, through recall-model's `openapi` feature;
//! the error body, the status answer and the post-call acknowledgement
//! from the server's own [`crate::error::ErrorBody`],
//! [`crate::routes::Status`] and [`crate::routes::post_call::PostCallAck`].
//! The client-data request is recall-model's tolerant `ClientDataRequest`.
//! [`schemas`] declares only what no Rust type holds: the formats of query
//! parameters and the rules by which search-data and post-call accept a
//! body.
//! The server's tests check that every documented operation is answered by
//! the server with the documented method, status and body, so the document
//! cannot drift.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Schemas of what no Rust type serializes: parameter formats and the
/// webhooks' request bodies as they are accepted.
pub mod schemas {
    use serde::Serialize;
    use utoipa::ToSchema;

    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Schema};

    /// A query string's `phone`: E.164, where an unencoded `+` arrives as
    /// a space and is read back as `+`.
    pub const E164_IN_QUERY: &str = r"^[+ ][1-9][0-9]{1,14}$";

    /// A stored event's conversation id: a `recall_model::ConversationId`
    /// (`recall_model::openapi::PATH_SAFE_ID_PATTERN`), not starting
    /// with `_` or `.` (reserved in the payload store).
    pub const EVENT_CONVERSATION_ID: &str = r"^[^._/\\\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]\.?(?:[^./\\\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]\.?)*$";

    /// Unix seconds as `from` and `to` take them (larger values mean the
    /// end of time).
    pub const UNIX_SECONDS: &str = r"^[0-9]+$";

    fn string(pattern: &str, description: &str, example: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .description(Some(description))
            .examples([example])
    }

    /// An E.164 phone number in a query string.
    pub struct PhoneNumberInQuery;

    impl utoipa::PartialSchema for PhoneNumberInQuery {
        fn schema() -> RefOr<Schema> {
            string(
                E164_IN_QUERY,
                "E.164; send '+' as %2B (an unencoded '+' decodes as a space, which is read back as '+')",
                "+16129782029",
            )
            .into()
        }
    }

    impl ToSchema for PhoneNumberInQuery {}

    /// `from` or `to`: an RFC 3339 date-time or unix seconds.
    pub struct Time;

    impl utoipa::PartialSchema for Time {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new()
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                        .examples(["2025-02-14T12:48:17Z"]),
                )
                .item(string(UNIX_SECONDS, "unix seconds", "1739537297"))
                .description(Some(
                    "An RFC 3339 date-time or unix seconds; bounds before 1970 or after 9999 mean the start or end of time",
                ))
                .into()
        }
    }

    impl ToSchema for Time {}

    /// The search tool's request. Other fields are accepted and ignored.
    #[derive(Serialize, ToSchema)]
    pub struct SearchDataRequest {
        /// What the agent looks for; not blank.
        #[schema(
            pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        )]
        pub query: String,
        /// The caller's E.164 number (from `system__caller_id`); white
        /// space around it is ignored.
        #[schema(
            pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+[1-9][0-9]{1,14}[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
        )]
        pub user_id: String,
        /// The agent; with `same_agent_only: true` it is required and must
        /// be a valid agent id.
        pub agent_id: Option<String>,
        /// The conversation.
        pub conversation_id: Option<String>,
        /// Free context.
        pub context: Option<serde_json::Value>,
        /// How many memories to return, a whole number from 1 (default
        /// `search_k`; more than `search_max_k` returns `search_max_k`).
        #[schema(schema_with = whole_number_from_one)]
        pub k: Option<u64>,
        /// Only memories at least this salient.
        #[schema(minimum = 0.0, maximum = 1.0)]
        pub min_salience: Option<f64>,
        /// Only what `agent_id` learnt.
        pub same_agent_only: Option<bool>,
    }

    fn whole_number_from_one() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::Integer,
                Type::Null,
            ]))
            .minimum(Some(1))
    }

    /// A post-call webhook envelope (`post_call_transcription`,
    /// `post_call_audio`, `call_initiation_failure`, or a type this version
    /// does not know, which is stored but not processed). Only the envelope
    /// is checked on receipt; the rest is read by the worker afterwards.
    #[derive(Serialize, ToSchema)]
    pub struct PostCallEvent {
        /// The event type: 1 to 64 ASCII letters, digits, `_` or `-`.
        #[serde(rename = "type")]
        #[schema(
            example = "post_call_transcription",
            pattern = r"^[A-Za-z0-9_-]{1,64}$"
        )]
        pub kind: String,
        /// Unix seconds, as ElevenLabs sends it (any value: it is not
        /// checked on receipt).
        #[schema(required = false)]
        pub event_timestamp: serde_json::Value,
        /// The event's data (see ElevenLabs' documentation).
        pub data: PostCallData,
    }

    /// The part of `data` checked on receipt; other fields are free.
    #[derive(Serialize, ToSchema)]
    pub struct PostCallData {
        /// The conversation: an id safe as a file name, not starting with
        /// `_` or `.`.
        #[schema(
            pattern = r"^[^._/\\\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]\.?(?:[^./\\\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]\.?)*$",
            min_length = 1,
            max_length = 128
        )]
        pub conversation_id: String,
    }
}

/// Operations documented for routes whose handlers live elsewhere in the
/// server; the attributes are the documentation, the functions never run.
///
/// Every status a route can answer is listed, except 500 (a bug, logged)
/// and what the HTTP layer answers before any route runs (400 for a
/// malformed request, 431 for an oversized head). The webhooks answer 403
/// when `ip_allowlist` is set and the client is not in it, and 408 when
/// the body is not received within `body_timeout_secs`. The operator
/// routes answer 404 while no admin token is configured.
#[allow(dead_code)]
mod paths {
    use recall_model::ui::{
        CallAnalytics, CallDetail, CallSummary, CallerExport, DailyCalls, EraseReport, EventEntry,
        EventStatus, MemoryDisplay, User,
    };
    use recall_model::{
        AgentId, ClientDataRequest, ClientDataResponse, ConversationId, MemorySector, PhoneNumber,
        SearchDataResponse,
    };

    use super::schemas::*;
    use crate::error::ErrorBody;
    use crate::routes::Status;
    use crate::routes::post_call::PostCallAck;

    #[utoipa::path(post, path = "/webhook/client-data", tag = "webhooks",
        request_body = ClientDataRequest,
        security(("webhookSecret" = []), ("elevenLabsSignature" = [])),
        responses(
            (status = 200, description = "Greeting variables (defaults when the caller is unknown or the store is down)", body = ClientDataResponse),
            (status = 400, description = "Body is not a JSON object of this shape", body = ErrorBody),
            (status = 401, description = "Missing or wrong secret", body = ErrorBody),
            (status = 403, description = "Client address not in ip_allowlist", body = ErrorBody),
            (status = 408, description = "Body not received in time", body = ErrorBody),
            (status = 413, description = "Body larger than webhook_max_bytes", body = ErrorBody),
        ))]
    fn client_data() {}

    #[utoipa::path(post, path = "/webhook/search-data", tag = "webhooks",
        request_body = SearchDataRequest,
        security(("webhookSecret" = []), ("elevenLabsSignature" = [])),
        responses(
            (status = 200, description = "The caller's profile and relevant memories", body = SearchDataResponse),
            (status = 400, description = "Not a JSON object of this shape: blank query, user_id not E.164, bad k, min_salience, same_agent_only or agent_id", body = ErrorBody),
            (status = 401, description = "Missing or wrong secret", body = ErrorBody),
            (status = 403, description = "Client address not in ip_allowlist", body = ErrorBody),
            (status = 408, description = "Body not received in time", body = ErrorBody),
            (status = 413, description = "Body larger than webhook_max_bytes", body = ErrorBody),
            (status = 503, description = "Memory store unavailable", body = ErrorBody),
        ))]
    fn search_data() {}

    #[utoipa::path(post, path = "/webhook/post-call", tag = "webhooks",
        request_body = PostCallEvent,
        security(("elevenLabsSignature" = [])),
        responses(
            (status = 200, description = "Stored durably (or already stored)", body = PostCallAck),
            (status = 400, description = "Not a valid event envelope (quarantined)", body = ErrorBody),
            (status = 401, description = "Bad, missing, too old or too new signature", body = ErrorBody),
            (status = 403, description = "Client address not in ip_allowlist", body = ErrorBody),
            (status = 408, description = "Body not received in time", body = ErrorBody),
            (status = 413, description = "Body larger than post_call_max_bytes", body = ErrorBody),
            (status = 503, description = "More than post_call_max_uploads bodies are being received, or the event could not be stored (nothing was kept); retry after Retry-After seconds", body = ErrorBody,
                headers(("Retry-After" = u32, description = "Seconds to wait"))),
        ))]
    fn post_call() {}

    #[utoipa::path(get, path = "/health", tag = "operations",
        responses((status = 200, description = "The process is alive", body = Status)))]
    fn health() {}

    #[utoipa::path(get, path = "/ready", tag = "operations",
        responses(
            (status = 200, description = "Store reachable, payload directory writable", body = Status),
            (status = 503, description = "Not ready", body = ErrorBody),
        ))]
    fn ready() {}

    #[utoipa::path(get, path = "/metrics", tag = "operations",
        responses((status = 200, description = "Prometheus / OpenMetrics text",
            content_type = "application/openmetrics-text", body = String)))]
    fn metrics() {}

    #[utoipa::path(get, path = "/openapi.json", tag = "operations",
        responses((status = 200, description = "This document", body = Object)))]
    fn openapi() {}

    #[utoipa::path(get, path = "/api/users/{phone}", tag = "operator",
        params(("phone" = PhoneNumber, Path, description = "E.164 number, e.g. +16129782029 (the '+' may be sent as %2B)")),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "The caller", body = User),
            (status = 400, description = "phone is not E.164", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No caller known by this number (or no admin token configured)", body = ErrorBody),
            (status = 503, description = "Memory store unavailable", body = ErrorBody),
        ))]
    fn get_user() {}

    #[utoipa::path(delete, path = "/api/users/{phone}", tag = "operator",
        params(("phone" = PhoneNumber, Path, description = "E.164 number (the '+' may be sent as %2B)")),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "What was erased", body = EraseReport),
            (status = 400, description = "phone is not E.164", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No admin token configured", body = ErrorBody),
            (status = 503, description = "Store unavailable: nothing was erased", body = ErrorBody),
        ))]
    fn delete_user() {}

    #[utoipa::path(get, path = "/api/users/{phone}/export", tag = "operator",
        description = "Everything Recall holds about the caller, as one JSON document written while it is read (streamed; a failure part-way cuts the response off). Recorded in the audit log.",
        params(("phone" = PhoneNumber, Path, description = "E.164 number (the '+' may be sent as %2B)")),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "The caller's export", body = CallerExport),
            (status = 400, description = "phone is not E.164", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No caller known by this number (or no admin token configured)", body = ErrorBody),
            (status = 503, description = "Memory store unavailable, or the audit log cannot be written", body = ErrorBody),
        ))]
    fn export_user() {}

    #[utoipa::path(get, path = "/api/users/{phone}/memories", tag = "operator",
        params(
            ("phone" = PhoneNumber, Path, description = "E.164 number (the '+' may be sent as %2B)"),
            ("sector" = Option<MemorySector>, Query, description = "Only this sector"),
            ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1 to 100 (default 50)"),
            ("cursor" = Option<String>, Query, description = "X-Next-Cursor of the previous page (opaque)"),
        ),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "Memories, newest first", body = Vec<MemoryDisplay>,
                headers(("X-Next-Cursor" = String, description = "Cursor of the next page; absent on the last"))),
            (status = 400, description = "Bad phone, sector, limit or cursor", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No admin token configured", body = ErrorBody),
            (status = 503, description = "Memory store unavailable", body = ErrorBody),
        ))]
    fn list_memories() {}

    #[utoipa::path(get, path = "/api/calls", tag = "operator",
        params(
            ("phone" = Option<PhoneNumberInQuery>, Query, description = "Only this caller (E.164)"),
            ("agent" = Option<AgentId>, Query, description = "Only this agent"),
            ("from" = Option<Time>, Query, description = "At or after (RFC 3339 or unix seconds)"),
            ("to" = Option<Time>, Query, description = "At or before (RFC 3339 or unix seconds); not before from"),
            ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1 to 200 (default 50)"),
            ("cursor" = Option<String>, Query, description = "X-Next-Cursor of the previous page (opaque)"),
        ),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "Calls, newest first", body = Vec<CallSummary>,
                headers(("X-Next-Cursor" = String, description = "Cursor of the next page; absent on the last"))),
            (status = 400, description = "Bad phone, agent, from, to, limit or cursor, or from later than to", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No admin token configured", body = ErrorBody),
        ))]
    fn list_calls() {}

    #[utoipa::path(get, path = "/api/calls/{conversation_id}", tag = "operator",
        params(("conversation_id" = ConversationId, Path, description = "The conversation")),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "The call with its transcript; once its transcript or audio was deleted (ElevenLabs' deletion settings, a retention window), its figures with transcriptDeletedAt / audioDeletedAt", body = CallDetail),
            (status = 400, description = "Not a valid conversation id", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No such call (or no admin token configured)", body = ErrorBody),
        ))]
    fn get_call() {}

    #[utoipa::path(get, path = "/api/calls/{conversation_id}/audio", tag = "operator",
        params(("conversation_id" = ConversationId, Path, description = "The conversation")),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "The call's audio", content_type = "audio/mpeg", body = Vec<u8>),
            (status = 400, description = "Not a valid conversation id", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No audio stored (or no admin token configured)", body = ErrorBody),
        ))]
    fn get_audio() {}

    #[utoipa::path(get, path = "/api/events", tag = "operator",
        params(
            ("status" = EventStatus, Query, description = "Which events: pending (not processed yet, or waiting for a retry), failed (processing failed for good; `recall replay --failed` retries them) or quarantined (refused bodies kept for inspection)"),
            ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 50)", minimum = 1, maximum = 500),
            ("cursor" = Option<String>, Query, description = "X-Next-Cursor of the previous page"),
        ),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "The events with the reason for each, in a stable order", body = Vec<EventEntry>,
                headers(("X-Next-Cursor" = String, description = "Cursor of the next page; absent on the last"))),
            (status = 400, description = "Missing or bad status, bad limit", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No admin token configured", body = ErrorBody),
        ))]
    fn list_events() {}

    #[utoipa::path(get, path = "/api/analytics", tag = "operator",
        params(
            ("agent" = Option<AgentId>, Query, description = "Only this agent"),
            ("from" = Option<Time>, Query, description = "At or after (RFC 3339 or unix seconds)"),
            ("to" = Option<Time>, Query, description = "At or before (RFC 3339 or unix seconds); not before from"),
        ),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "Aggregates", body = CallAnalytics),
            (status = 400, description = "Bad agent, from or to, or from later than to", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No admin token configured", body = ErrorBody),
        ))]
    fn analytics() {}

    #[utoipa::path(get, path = "/api/analytics/daily", tag = "operator",
        params(
            ("agent" = Option<AgentId>, Query, description = "Only this agent"),
            ("from" = Option<Time>, Query, description = "At or after (RFC 3339 or unix seconds)"),
            ("to" = Option<Time>, Query, description = "At or before (RFC 3339 or unix seconds); not before from"),
        ),
        security(("adminToken" = [])),
        responses(
            (status = 200, description = "Calls and successes per UTC day, oldest first", body = Vec<DailyCalls>),
            (status = 400, description = "Bad agent, from or to, or from later than to", body = ErrorBody),
            (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
            (status = 404, description = "No admin token configured", body = ErrorBody),
        ))]
    fn daily() {}

    #[utoipa::path(get, path = "/dashboard", tag = "operator",
        responses(
            (status = 200, description = "The dashboard (HTML)", content_type = "text/html", body = String),
            (status = 404, description = "No admin token configured", body = ErrorBody),
        ))]
    fn dashboard() {}
}

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "webhookSecret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
        components.add_security_scheme(
            "elevenLabsSignature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("ElevenLabs-Signature"))),
        );
    }
}

/// The document's generator.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Recall",
        description = "Long-term memory of callers for ElevenLabs voice agents: the three webhooks, operations endpoints and the operator read API."
    ),
    paths(
        paths::client_data, paths::search_data, paths::post_call,
        paths::health, paths::ready, paths::metrics, paths::openapi,
        paths::get_user, paths::delete_user, paths::export_user, paths::list_memories,
        paths::list_calls, paths::get_call, paths::get_audio, paths::list_events,
        paths::analytics, paths::daily, paths::dashboard,
    ),
    components(schemas(
        crate::error::ErrorBody, crate::routes::Status, crate::routes::post_call::PostCallAck,
        crate::routes::post_call::AckStatus,
        schemas::SearchDataRequest, schemas::PostCallEvent, schemas::PostCallData,
        schemas::PhoneNumberInQuery, schemas::Time,
        recall_model::ClientDataRequest, recall_model::ClientDataResponse,
        recall_model::SearchDataResponse, recall_model::ProfileData, recall_model::MemoryItem,
        recall_model::PhoneNumber, recall_model::AgentId, recall_model::ConversationId,
        recall_model::MemorySector, recall_model::SalienceLabel, recall_model::Salience,
        recall_model::ui::User, recall_model::ui::MemoryDisplay, recall_model::ui::Speaker,
        recall_model::ui::TranscriptMessage, recall_model::ui::CallSummary,
        recall_model::ui::DataCollectedStat, recall_model::ui::CallAnalytics,
        recall_model::ui::CallDetail, recall_model::ui::DailyCalls, recall_model::ui::EventStatus,
        recall_model::ui::EventEntry, recall_model::ui::EraseReport,
        recall_model::ui::CallerExport,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "webhooks", description = "Called by ElevenLabs"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "operator", description = "Read API and dashboard; off unless RECALL_ADMIN_TOKEN is set"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        refine(&mut doc);
        serde_json::to_string(&doc)
            .unwrap_or_else(|e| format!("{{\"error\":\"openapi\",\"message\":\"{e}\"}}"))
    })
}

/// Adds the rules utoipa's schema model cannot express (JSON Schema's
/// `if`/`then`): search-data's `same_agent_only: true` needs a valid
/// `agent_id`.
fn refine(doc: &mut serde_json::Value) {
    let request = &mut doc["components"]["schemas"]["SearchDataRequest"];
    if let Some(request) = request.as_object_mut() {
        request.insert(
            "if".into(),
            serde_json::json!({
                "properties": {"same_agent_only": {"const": true}},
                "required": ["same_agent_only"]
            }),
        );
        request.insert(
            "then".into(),
            serde_json::json!({
                "properties": {"agent_id": {"$ref": "#/components/schemas/AgentId"}},
                "required": ["agent_id"]
            }),
        );
    }
}

/// `GET /openapi.json`.
pub(super) async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
