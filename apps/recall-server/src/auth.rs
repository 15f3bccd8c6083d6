//! Authentication of the webhooks, on raw bytes, before any parsing.
//!
//! * post-call: `ElevenLabs-Signature` made with `ELEVENLABS_POST_CALL_KEY`
//!   (checked while the body streams in, see [`crate::routes::post_call`]);
//! * client-data and search-data: `X-Api-Key: <secret>` or
//!   `Authorization: Bearer <secret>` against the route's key, or a valid
//!   `ElevenLabs-Signature` made with that key.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;
use recall_signature::{SIGNATURE_HEADER, SignatureError, StreamingVerifier, Verifier};

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
    header(req, API_KEY_HEADER).or_else(|| bearer(req.headers()))
}

/// The token of an `Authorization: Bearer <token>` header (trimmed, not
/// empty): the one parser of bearer tokens, for the webhooks' shared
/// secrets and the operator API's admin tokens.
pub fn bearer(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    let value = headers.get("Authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// How a request was authenticated (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A shared-secret header.
    SharedSecret,
    /// An `ElevenLabs-Signature`.
    Signature,
}

/// The first half of authenticating a client-data or search-data
/// request, done before any body byte is read.
#[derive(Debug)]
pub enum InCallWebhookAuth {
    /// A shared-secret header matched: the request is authentic.
    SharedSecret,
    /// An `ElevenLabs-Signature` with a timestamp in the window: the body
    /// must still match it ([`InCallWebhookAuth::finish`]).
    Signature(StreamingVerifier),
}

impl InCallWebhookAuth {
    /// Checks the headers of a client-data or search-data request with the
    /// route's `verifier` (its secrets double as the shared secrets). A
    /// shared-secret header, when present, decides; otherwise an
    /// `ElevenLabs-Signature` must be well formed and timely, and the body
    /// is checked by [`finish`](Self::finish).
    ///
    /// # Errors
    /// A 401 [`ApiError`] naming what failed (never the secret).
    pub fn start(req: &HttpRequest, verifier: &Verifier) -> Result<Self, ApiError> {
        if let Some(presented) = presented_secret(req) {
            return verifier
                .secrets()
                .check_shared(presented)
                .map(|_| Self::SharedSecret)
                .map_err(|e| reject(&e));
        }
        match header(req, SIGNATURE_HEADER) {
            Some(signature) => verifier
                .start(signature, now_unix())
                .map(Self::Signature)
                .map_err(|e| reject(&e)),
            None => {
                tracing::info!("authentication failed: no credentials");
                Err(ApiError::unauthorized(
                    "missing credentials: send the shared secret in X-Api-Key or Authorization: Bearer, or sign the body with ElevenLabs-Signature",
                ))
            }
        }
    }

    /// Completes the check with the whole body.
    ///
    /// # Errors
    /// A 401 [`ApiError`] when the signature does not match the body.
    pub fn finish(self, body: &[u8]) -> Result<AuthMethod, ApiError> {
        match self {
            Self::SharedSecret => Ok(AuthMethod::SharedSecret),
            Self::Signature(mut verifier) => {
                verifier.update(body);
                verifier
                    .finish()
                    .map(|_| AuthMethod::Signature)
                    .map_err(|e| reject(&e))
            }
        }
    }
}

/// Turns a verification failure into a 401 that says what was wrong (or a
/// 500 when the server itself has no secret for the route: a configuration
/// fault that callers need not be told about).
pub fn reject(error: &SignatureError) -> ApiError {
    let message = match error {
        SignatureError::MissingHeader => {
            "missing credentials: the authentication header is absent or empty".to_owned()
        }
        SignatureError::NoSecretConfigured => {
            tracing::error!("a webhook was called but has no secret configured");
            return ApiError::internal();
        }
        other => other.to_string(),
    };
    tracing::info!(reason = %message, "authentication failed");
    ApiError::unauthorized(message)
}
