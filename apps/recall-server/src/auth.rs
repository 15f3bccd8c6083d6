//! Authentication of the webhooks, on raw bytes, before any parsing.
//!
//! * post-call: `ElevenLabs-Signature` made with `ELEVENLABS_POST_CALL_KEY`
//!   (checked while the body streams in, see [`crate::routes::post_call`]);
//! * client-data and search-data: `X-Api-Key: <secret>` or
//!   `Authorization: Bearer <secret>` against the route's key, or a valid
//!   `ElevenLabs-Signature` made with that key.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;
use recall_signature::{SIGNATURE_HEADER, SignatureError, Verifier};

use crate::error::ApiError;

/// The shared-secret header.
pub const API_KEY_HEADER: &str = "X-Api-Key";

/// The current time in unix seconds.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A header's value as text, `None` when absent or not visible ASCII.
pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The shared secret presented by `X-Api-Key` or `Authorization: Bearer`.
pub fn presented_secret(req: &HttpRequest) -> Option<&str> {
    if let Some(value) = header(req, API_KEY_HEADER) {
        return Some(value);
    }
    let auth = header(req, "Authorization")?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// How a request was authenticated (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A shared-secret header.
    SharedSecret,
    /// An `ElevenLabs-Signature`.
    Signature,
}

/// Authenticates a client-data or search-data request whose whole body is
/// `body`, with the route's `verifier` (its secrets double as shared
/// secrets). A shared-secret header, when present, decides; otherwise an
/// `ElevenLabs-Signature` must verify.
///
/// # Errors
/// A 401 [`ApiError`] naming what failed (never the secret).
pub fn check_small_webhook(
    req: &HttpRequest,
    verifier: &Verifier,
    body: &[u8],
) -> Result<AuthMethod, ApiError> {
    if let Some(presented) = presented_secret(req) {
        return verifier
            .secrets()
            .check_shared(presented)
            .map(|_| AuthMethod::SharedSecret)
            .map_err(|e| reject(&e));
    }
    match header(req, SIGNATURE_HEADER) {
        Some(signature) => verifier
            .verify(signature, body, now_unix())
            .map(|_| AuthMethod::Signature)
            .map_err(|e| reject(&e)),
        None => Err(ApiError::unauthorized(
            "missing credentials: send the shared secret in X-Api-Key or Authorization: Bearer, or sign the body with ElevenLabs-Signature",
        )),
    }
}

/// Turns a verification failure into a 401 that says what was wrong.
pub fn reject(error: &SignatureError) -> ApiError {
    let message = match error {
        SignatureError::MissingHeader => {
            "missing credentials: the authentication header is absent or empty".to_owned()
        }
        SignatureError::NoSecretConfigured => {
            "this webhook has no secret configured on the server".to_owned()
        }
        other => other.to_string(),
    };
    tracing::info!(reason = %message, "authentication failed");
    ApiError::unauthorized(message)
}
