//! Auditing operator access: every `/api` request that reads or erases a
//! caller's data leaves one [`AuditEntry`] — time, token fingerprint,
//! route, caller, status — whatever its outcome (refused, 400, 404, 503
//! included).
//!
//! The entry is written after the handler decided its answer and before
//! any byte of it is sent. When the entry cannot be written, the answer is
//! dropped and a 503 `audit_unavailable` is sent instead: data that cannot
//! be audited is not served. (An erasure has then already happened; the
//! 503 says so and the normal log records it.)

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{ResponseError as _, web};
use recall_model::{ConversationId, PhoneNumber, UnixTimestamp};
use recall_service::AuditEntry;
use serde::Deserialize;

use super::AdminState;
use crate::error::ApiError;

/// The first 16 hex digits of the SHA-256 of `token`: tells tokens apart
/// in the audit log without making it a store of secrets.
pub(crate) fn fingerprint(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    hex::encode(&digest.as_ref()[..8])
}

/// What an audited request is about.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    route: &'static str,
    phone: Option<String>,
    conversation: Option<String>,
}

#[derive(Deserialize)]
struct PhoneQuery {
    phone: Option<String>,
}

/// The audited route `method` `path` falls on, or `None` when it reads no
/// caller's data.
fn target(method: &Method, path: &str, query: &str) -> Option<Target> {
    let rest = path.strip_prefix("/api/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let get = method == Method::GET;
    let (route, phone, conversation) = match segments.as_slice() {
        ["users", phone] if get => ("GET /api/users/{phone}", Some(*phone), None),
        ["users", phone] if method == Method::DELETE => {
            ("DELETE /api/users/{phone}", Some(*phone), None)
        }
        ["users", phone, "memories"] if get => {
            ("GET /api/users/{phone}/memories", Some(*phone), None)
        }
        ["users", phone, "export"] if get => ("GET /api/users/{phone}/export", Some(*phone), None),
        ["calls"] if get => {
            let phone = web::Query::<PhoneQuery>::from_query(query)
                .ok()
                .and_then(|q| q.into_inner().phone)
                // An unencoded `+` in a query string reads as a space.
                .map(|p| match p.strip_prefix(' ') {
                    Some(rest) => format!("+{rest}"),
                    None => p,
                });
            return Some(Target {
                route: "GET /api/calls",
                phone,
                conversation: None,
            });
        }
        ["calls", id] if get => ("GET /api/calls/{conversation_id}", None, Some(*id)),
        ["calls", id, "audio"] if get => {
            ("GET /api/calls/{conversation_id}/audio", None, Some(*id))
        }
        _ => return None,
    };
    Some(Target {
        route,
        phone: phone.map(str::to_owned),
        conversation: conversation.map(str::to_owned),
    })
}

/// Whose data a request was about: the number it named, or the caller of
/// the conversation it named (when Recall knows it).
async fn caller_of(state: Option<&AdminState>, target: &Target) -> Option<PhoneNumber> {
    if let Some(raw) = &target.phone {
        return super::handlers::parse_phone(raw).ok();
    }
    let id = ConversationId::parse(target.conversation.as_deref()?).ok()?;
    let service = &state?.service;
    if let Ok(Some(caller)) = service.event_log().caller(&id).await {
        return Some(caller);
    }
    let index = service.call_index()?;
    index.get_call(&id).await.ok().flatten()?.caller_phone
}

/// The audit middleware of the `/api` scope (outside the token check, so
/// refused requests are audited too).
pub(super) async fn audit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(target) = target(req.method(), req.path(), req.query_string()) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let state = req.app_data::<web::Data<AdminState>>().cloned();
    let token = crate::auth::bearer(req.headers()).map_or_else(|| "none".to_owned(), fingerprint);
    let method = req.method().clone();
    // The handlers answer their errors as responses; an error from the
    // service chain itself is audited with its status, then passed on.
    let response = next.call(req).await;
    let status = match &response {
        Ok(response) => response.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    let caller = caller_of(state.as_ref().map(|s| s.get_ref()), &target).await;
    let entry = AuditEntry {
        time: UnixTimestamp::now().to_rfc3339(),
        token,
        route: target.route.to_owned(),
        caller,
        conversation_id: target.conversation.clone(),
        status,
    };
    let masked = entry.caller.as_ref().map(PhoneNumber::masked);
    let written = match &state {
        Some(state) => state.audit.append(&entry).await,
        None => Err(std::io::Error::other("no audit log configured")),
    };
    let response = match (written, response) {
        (_, Err(e)) => {
            tracing::warn!(route = entry.route, status, "operator request failed");
            return Err(e);
        }
        (written, Ok(response)) => (written, response.map_into_boxed_body()),
    };
    match response {
        (Ok(()), response) => {
            tracing::info!(
                route = entry.route,
                caller = masked.as_deref().unwrap_or("-"),
                token = entry.token,
                status,
                "operator access audited"
            );
            Ok(response)
        }
        (Err(e), response) => {
            tracing::error!(
                error = %e,
                route = entry.route,
                caller = masked.as_deref().unwrap_or("-"),
                status,
                "the audit log cannot be written: the answer is withheld"
            );
            let message = if method == Method::DELETE && response.status().is_success() {
                "the caller was erased, but the audit log cannot be written; check the server's log"
            } else {
                "the audit log cannot be written, so no caller data is served; retry later"
            };
            let error = ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                message,
            );
            let (http, _withheld) = response.into_parts();
            Ok(ServiceResponse::new(http, error.error_response()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_short_stable_and_not_the_token() {
        let fp = fingerprint("s3cret-admin-token");
        assert_eq!(fp.len(), 16);
        assert_eq!(fp, fingerprint("s3cret-admin-token"));
        assert_ne!(fp, fingerprint("s3cret-admin-tokeN"));
        assert!(!fp.contains("s3cret"));
    }

    #[test]
    fn only_routes_reading_a_callers_data_are_audited() {
        let t = |m: Method, p: &str, q: &str| target(&m, p, q).map(|t| t.route);
        assert_eq!(
            t(Method::GET, "/api/users/%2B16129782029/export", ""),
            Some("GET /api/users/{phone}/export")
        );
        assert_eq!(
            t(Method::DELETE, "/api/users/+1612", ""),
            Some("DELETE /api/users/{phone}")
        );
        assert_eq!(
            t(Method::GET, "/api/calls/conv_1/audio", ""),
            Some("GET /api/calls/{conversation_id}/audio")
        );
        assert_eq!(t(Method::GET, "/api/analytics", ""), None);
        assert_eq!(t(Method::GET, "/api/events", ""), None);
        assert_eq!(t(Method::POST, "/api/users/+1612", ""), None);
        let calls = target(&Method::GET, "/api/calls", "phone=+16129782029").unwrap();
        assert_eq!(calls.phone.as_deref(), Some("+16129782029"));
    }
}
