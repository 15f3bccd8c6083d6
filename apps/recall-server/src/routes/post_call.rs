//! `POST /webhook/post-call`: verify the `ElevenLabs-Signature` while the
//! body streams to a staged file, and only then hand the event to the
//! service, which stores it durably and acknowledges it. The body is never
//! held whole in memory (audio events are tens of MiB).

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use recall_memory::ErrorChain;
use recall_model::{ConversationId, WebhookType};
use recall_service::IngestError;
use recall_signature::SIGNATURE_HEADER;
use serde::Serialize;

use crate::auth::{header, now_unix, reject};
use crate::error::ApiError;
use crate::routes::in_call::{announced_length, body_timeout};
use crate::startup::AppState;

/// `Retry-After` of a 503 for too many uploads at once, in seconds.
const UPLOADS_RETRY_AFTER_SECS: u32 = 2;

/// `Retry-After` of a 503 when the event log cannot store the event (a
/// full disk, a database outage), in seconds.
const STORE_RETRY_AFTER_SECS: u32 = 5;

/// The event log failed to store the event: nothing was acknowledged, so
/// ElevenLabs is asked to deliver it again later.
fn cannot_store(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "cannot store a post-call event");
    ApiError::unavailable("the event could not be stored durably; nothing was kept, retry later")
        .retry_after(STORE_RETRY_AFTER_SECS)
}

/// The acknowledgement of a post-call event, once stored durably.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostCallAck {
    /// The event's conversation.
    pub conversation_id: ConversationId,
    /// `stored`, or `duplicate` when already stored.
    pub status: AckStatus,
    /// The event type.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "post_call_transcription")]
    pub kind: WebhookType,
}

/// Whether the event was new.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AckStatus {
    /// Stored now.
    Stored,
    /// Already stored (a retried delivery).
    Duplicate,
}

/// Receives one post-call event.
pub async fn post_call(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let config = &state.config;
    let limit = config.post_call_max_bytes.get();

    // Header and clock first: a request that cannot be authentic is
    // refused before a single body byte is read or written.
    let mut verifier = state
        .post_call
        .start(header(&req, SIGNATURE_HEADER), now_unix())
        .map_err(|e| reject(&e))?;
    if announced_length(&req).is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    // Until its signature is checked, a body is anyone's: only so many are
    // staged at once. ElevenLabs retries a 503.
    let Ok(_upload) = state.uploads.clone().try_acquire_owned() else {
        tracing::warn!(
            max = config.post_call_max_uploads.size(),
            "post-call upload refused: too many bodies being received"
        );
        return Err(ApiError::unavailable(format!(
            "too many post-call bodies are being received (at most {}); retry later",
            config.post_call_max_uploads.size()
        ))
        .retry_after(UPLOADS_RETRY_AFTER_SECS));
    };

    let mut staged = (state.service.stage().await).map_err(|e| cannot_store(&e))?;
    let receive = async {
        let mut received: u64 = 0;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request("body_unreadable", format!("cannot read the body: {e}"))
            })?;
            received += chunk.len() as u64;
            if received > limit {
                return Err(ApiError::too_large(limit));
            }
            verifier.update(&chunk);
            staged.write(&chunk).await.map_err(|e| cannot_store(&e))?;
        }
        Ok(())
    };
    tokio::time::timeout(config.body_timeout_secs.secs(), receive)
        .await
        .map_err(|_| body_timeout(config.body_timeout_secs.secs()))??;
    // A bad signature drops `staged`, which removes its file.
    verifier.finish().map_err(|e| reject(&e))?;

    match state.service.ingest(staged).await {
        Ok(ack) => {
            tracing::Span::current().record("conversation_id", ack.conversation_id.as_str());
            tracing::info!(
                event_type = %ack.event_type,
                duplicate = ack.duplicate,
                "post-call event stored"
            );
            Ok(HttpResponse::Ok().json(PostCallAck {
                status: if ack.duplicate {
                    AckStatus::Duplicate
                } else {
                    AckStatus::Stored
                },
                conversation_id: ack.conversation_id,
                kind: ack.event_type,
            }))
        }
        Err(IngestError::Invalid(reason)) => {
            tracing::info!(%reason, "post-call event refused");
            Err(ApiError::bad_request("invalid_event", reason))
        }
        Err(error) => Err(cannot_store(&ErrorChain(&error))),
    }
}
