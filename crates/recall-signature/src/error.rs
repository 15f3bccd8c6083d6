//! Errors of this crate.
//!
//! [`SignatureError`] is what a request can fail with; a server maps each
//! variant to a response. [`SecretError`] is what configuring a secret can
//! fail with; a server reports it at start-up. No message ever contains a
//! secret or a signature.

use std::fmt;

/// Why a webhook request failed authentication.
///
/// Suggested HTTP mapping: [`NoSecretConfigured`](Self::NoSecretConfigured)
/// is the operator's fault (500); every other variant is the caller's
/// (400 for [`MalformedHeader`](Self::MalformedHeader), 401 for the rest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The `ElevenLabs-Signature` header (or the shared-secret header) is
    /// absent or empty.
    #[error("the authentication header is missing or empty")]
    MissingHeader,
    /// The `ElevenLabs-Signature` header is present but cannot be read.
    #[error("malformed ElevenLabs-Signature header: {0}")]
    MalformedHeader(HeaderProblem),
    /// The signed timestamp is older than the past tolerance allows.
    #[error(
        "signature timestamp {timestamp} is {age_secs} s older than now ({now}); at most {tolerance_secs} s is accepted"
    )]
    TimestampTooOld {
        /// The header's `t=` value, in unix seconds.
        timestamp: u64,
        /// The verifier's clock, in unix seconds.
        now: u64,
        /// How far in the past the timestamp is.
        age_secs: u64,
        /// The past tolerance in force.
        tolerance_secs: u64,
    },
    /// The signed timestamp is further in the future than the future
    /// tolerance allows (the official SDK accepts any future time).
    #[error(
        "signature timestamp {timestamp} is {ahead_secs} s ahead of now ({now}); at most {tolerance_secs} s is accepted"
    )]
    TimestampInFuture {
        /// The header's `t=` value, in unix seconds.
        timestamp: u64,
        /// The verifier's clock, in unix seconds.
        now: u64,
        /// How far in the future the timestamp is.
        ahead_secs: u64,
        /// The future tolerance in force.
        tolerance_secs: u64,
    },
    /// No `v0=` signature in the header matches the body under any
    /// configured secret.
    #[error("no v0 signature in the header matches the body under any configured secret")]
    NoMatchingSignature,
    /// A shared-secret header was presented but matches no configured
    /// secret.
    #[error("the presented shared secret matches no configured secret")]
    SecretMismatch,
    /// The server has no secret to check against, so it can authenticate
    /// nothing.
    #[error("no webhook secret is configured")]
    NoSecretConfigured,
}

/// What exactly is wrong with a malformed `ElevenLabs-Signature` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// There is no `t=` part.
    MissingTimestamp,
    /// The `t=` value is not a whole number of unix seconds (ASCII digits
    /// only, fitting in 64 bits).
    InvalidTimestamp,
    /// There are several `t=` parts; which one was signed is ambiguous.
    DuplicateTimestamp,
    /// There is no `v0=` part (the only scheme ElevenLabs signs with).
    MissingSignature,
    /// A `v0=` value is not exactly 64 lowercase hex digits (uppercase hex
    /// is rejected, as the official SDK does).
    InvalidSignature,
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingTimestamp => "no t= part",
            Self::InvalidTimestamp => "t= must be unix seconds written as ASCII digits",
            Self::DuplicateTimestamp => "more than one t= part",
            Self::MissingSignature => "no v0= part (the expected scheme)",
            Self::InvalidSignature => "a v0= value is not 64 lowercase hex digits",
        })
    }
}

/// Why a configured secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret is empty.
    #[error("the secret is empty")]
    Empty,
    /// The secret starts or ends with whitespace — usually a stray newline
    /// from a file or an environment variable. The signature covers the
    /// secret byte for byte, so it would never match.
    #[error("the secret starts or ends with whitespace (a stray newline?)")]
    SurroundingWhitespace,
    /// The secret contains a control character, which cannot travel in an
    /// HTTP header.
    #[error("the secret contains a control character")]
    ControlCharacter,
    /// The system random number generator failed while generating a secret.
    #[error("the system random number generator failed")]
    RandomUnavailable,
}
