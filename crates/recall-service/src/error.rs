//! One error enum per use case, with variants a caller can act on.

use std::io;

use recall_memory::MemoryError;
use recall_model::ConversationId;

/// Why a search was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// `user_id` is not a usable E.164 caller number (HTTP 400/422).
    #[error("invalid caller: {0}")]
    InvalidCaller(String),
    /// The query or an option (`query`, `k`, `min_salience`, `agent_id`)
    /// is invalid; the text names the field (HTTP 400/422).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The memory store failed (HTTP 503 when retryable, else 500).
    #[error(transparent)]
    Store(#[from] MemoryError),
}

/// Why a post-call event was not acknowledged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The body is not a usable event (not JSON, no envelope, unsafe
    /// conversation id or type). The text names what is wrong; the body
    /// was moved to quarantine (HTTP 400).
    #[error("invalid event: {0}")]
    Invalid(String),
    /// The payload store could not write the event durably; it was not
    /// stored (HTTP 500, so ElevenLabs may retry).
    #[error("could not store the event: {0}")]
    Io(#[from] io::Error),
}

/// Why replay, forget or the readiness check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The payload store could not be read or written.
    #[error("payload store: {0}")]
    Io(#[from] io::Error),
    /// The memory store failed.
    #[error(transparent)]
    Store(#[from] MemoryError),
    /// The call index failed.
    #[error(transparent)]
    Index(#[from] crate::CallIndexError),
    /// The service has no call index to rebuild.
    #[error("the service has no call index")]
    NoCallIndex,
    /// No stored event belongs to this conversation.
    #[error("no stored events for conversation {0}")]
    UnknownConversation(ConversationId),
}

pub(crate) fn join_error(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(e)
}
