//! Webhook authentication for Recall. No I/O happens in this crate; the
//! clock is always passed in (unix seconds).
//!
//! * **Post-call webhooks** are signed by ElevenLabs:
//!   `ElevenLabs-Signature: t=<unix secs>,v0=<hex>` where
//!   `v0 = hex(HMAC-SHA256(secret, "<t>.<raw body>"))`. A [`Verifier`]
//!   checks it over the raw body bytes, whole ([`Verifier::verify`]) or
//!   chunk by chunk ([`Verifier::start`] → [`StreamingVerifier`]). It is
//!   stricter than the official SDK: constant-time comparison, a bounded
//!   future skew, clean errors for a missing or non-numeric `t`; it accepts
//!   several `v0=` entries and several configured secrets, so secrets
//!   rotate without downtime. See [`SignatureHeader`] for the exact header
//!   rules and [`Tolerance`] for the time window.
//! * [`sign`] produces the header, for tests, the `recall sign` command and
//!   users testing their endpoint.
//! * **Client-data and search-data webhooks** are not signed; operators
//!   attach a secret header, which [`Secrets::check_shared`] compares in
//!   constant time.
//! * [`Secret`] never shows itself in `Debug` or `Display`;
//!   [`Secret::generate`] makes a fresh one for a first run.
//!
//! Every failure is a [`SignatureError`] a server maps to a response.
//!
//! # Verify a post-call webhook
//!
//! ```
//! use recall_signature::{Secret, SignatureError, Verifier};
//!
//! let verifier = Verifier::new(Secret::new("wsec_test_secret")?);
//! let body = br#"{"type":"post_call_audio","event_timestamp":1739537319,"data":{"agent_id":"xyz","conversation_id":"abc","full_audio":"SUQz"}}"#;
//! let header = "t=1739537297,v0=e3ad8a1d3a2d47de6aec9b1a24ce3dc6a39c2512e25cde1dbbf4a5312ec7967b";
//!
//! let verified = verifier.verify(header, body, 1739537297 + 60)?;
//! assert_eq!(verified.timestamp(), 1739537297);
//!
//! // The same request replayed 31 minutes later is refused.
//! assert!(matches!(
//!     verifier.verify(header, body, 1739537297 + 31 * 60),
//!     Err(SignatureError::TimestampTooOld { .. })
//! ));
//! // So is a tampered body.
//! assert_eq!(
//!     verifier.verify(header, b"{}", 1739537297),
//!     Err(SignatureError::NoMatchingSignature)
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Verify while streaming, with a secret being rotated
//!
//! ```
//! use recall_signature::{Secret, Secrets, Tolerance, Verifier, sign};
//! use std::time::Duration;
//!
//! let new = Secret::new("wsec_new")?;
//! let old = Secret::new("wsec_old")?;
//! let verifier = Verifier::new(Secrets::new([new, old.clone()]))
//!     .with_tolerance(Tolerance::new(Duration::from_secs(600), Duration::from_secs(60)));
//!
//! let body = vec![b'x'; 1 << 20];
//! let header = sign(&body, &old, 1_700_000_000);
//!
//! // Header and time are checked before any body byte is read...
//! let mut streaming = verifier.start(header.as_str(), 1_700_000_005)?;
//! // ...then the body is fed as it arrives, and never held whole.
//! for chunk in body.chunks(64 * 1024) {
//!     streaming.update(chunk);
//! }
//! let verified = streaming.finish()?;
//! assert_eq!(verified.secret_index(), 1); // the old secret is still in use
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sign
//!
//! ```
//! use recall_signature::{Secret, sign};
//!
//! let secret = Secret::new("wsec_test_secret")?;
//! let body = br#"{"type":"post_call_audio","event_timestamp":1739537319,"data":{"agent_id":"xyz","conversation_id":"abc","full_audio":"SUQz"}}"#;
//! assert_eq!(
//!     sign(body, &secret, 1739537297),
//!     "t=1739537297,v0=e3ad8a1d3a2d47de6aec9b1a24ce3dc6a39c2512e25cde1dbbf4a5312ec7967b"
//! );
//! # Ok::<(), recall_signature::SecretError>(())
//! ```
//!
//! # Check a shared-secret header
//!
//! ```
//! use recall_signature::{Secret, Secrets, SignatureError};
//!
//! let secrets = Secrets::single(Secret::new("s3cret-header-value")?);
//! assert_eq!(secrets.check_shared("s3cret-header-value"), Ok(0));
//! assert_eq!(secrets.check_shared("guess"), Err(SignatureError::SecretMismatch));
//! assert_eq!(secrets.check_shared(None), Err(SignatureError::MissingHeader));
//! # Ok::<(), recall_signature::SecretError>(())
//! ```

pub mod error;
pub mod header;
pub mod secret;
pub mod verify;

pub use error::{HeaderProblem, SecretError, SignatureError};
pub use header::{SIGNATURE_HEADER, SIGNATURE_LEN, SignatureHeader};
pub use secret::{GENERATED_SECRET_BYTES, SECRET_PREFIX, Secret, Secrets};
pub use verify::{StreamingVerifier, Tolerance, VerifiedSignature, Verifier, sign};

/// Compiles and runs the README's example as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
