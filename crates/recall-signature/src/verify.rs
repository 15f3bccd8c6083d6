//! Verifying and producing `ElevenLabs-Signature` headers.

use std::{fmt, time::Duration};

use ring::hmac;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::{
    error::SignatureError,
    header::{SIGNATURE_LEN, SignatureHeader},
    secret::{Secret, Secrets},
};

/// How far the signed time may lie from the verifier's clock.
///
/// Defaults: 30 minutes in the past (exactly 30 minutes is still
/// accepted, as in the official SDK) and 5 minutes in the future (the SDK
/// accepts any future time). Only whole seconds count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    past_secs: u64,
    future_secs: u64,
}

impl Tolerance {
    /// The default past tolerance: 30 minutes.
    pub const DEFAULT_PAST: Duration = Duration::from_secs(30 * 60);
    /// The default future tolerance: 5 minutes.
    pub const DEFAULT_FUTURE: Duration = Duration::from_secs(5 * 60);

    /// A tolerance of `past` before and `future` after the verifier's clock
    /// (fractions of a second are dropped).
    #[must_use]
    pub const fn new(past: Duration, future: Duration) -> Self {
        Self {
            past_secs: past.as_secs(),
            future_secs: future.as_secs(),
        }
    }

    /// How old a signature may be.
    #[must_use]
    pub const fn past(&self) -> Duration {
        Duration::from_secs(self.past_secs)
    }

    /// How far ahead of the clock a signature may be.
    #[must_use]
    pub const fn future(&self) -> Duration {
        Duration::from_secs(self.future_secs)
    }

    /// Checks a signed time against the clock `now` (both unix seconds).
    ///
    /// # Errors
    /// [`SignatureError::TimestampTooOld`] or
    /// [`SignatureError::TimestampInFuture`] outside the tolerance.
    pub fn check(&self, timestamp: u64, now: u64) -> Result<(), SignatureError> {
        if timestamp <= now {
            let age_secs = now - timestamp;
            if age_secs > self.past_secs {
                return Err(SignatureError::TimestampTooOld {
                    timestamp,
                    now,
                    age_secs,
                    tolerance_secs: self.past_secs,
                });
            }
        } else {
            let ahead_secs = timestamp - now;
            if ahead_secs > self.future_secs {
                return Err(SignatureError::TimestampInFuture {
                    timestamp,
                    now,
                    ahead_secs,
                    tolerance_secs: self.future_secs,
                });
            }
        }
        Ok(())
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PAST, Self::DEFAULT_FUTURE)
    }
}

/// A successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedSignature {
    timestamp: u64,
    secret_index: usize,
}

impl VerifiedSignature {
    /// The signed time, in unix seconds.
    #[must_use]
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The position, in the configured [`Secrets`], of the secret that
    /// matched (the first one if several did) — handy to see whether an old
    /// secret is still in use during a rotation.
    #[must_use]
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

/// Verifies `ElevenLabs-Signature` headers against a set of secrets and a
/// time tolerance. Build one at start-up and share it.
///
/// The clock is passed to every call (unix seconds), so tests control time.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    secrets: Secrets,
    tolerance: Tolerance,
}

impl Verifier {
    /// A verifier accepting any of `secrets`, with the default
    /// [`Tolerance`].
    pub fn new(secrets: impl Into<Secrets>) -> Self {
        Self {
            secrets: secrets.into(),
            tolerance: Tolerance::default(),
        }
    }

    /// The same verifier with another tolerance.
    #[must_use]
    pub fn with_tolerance(self, tolerance: Tolerance) -> Self {
        Self { tolerance, ..self }
    }

    /// The secrets accepted.
    #[must_use]
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The time tolerance in force.
    #[must_use]
    pub fn tolerance(&self) -> Tolerance {
        self.tolerance
    }

    /// Verifies a whole body against the header value at time `now` (unix
    /// seconds). `header` is the header's value, or `None` when the request
    /// has no such header.
    ///
    /// # Errors
    /// In the order checked: [`SignatureError::NoSecretConfigured`],
    /// [`SignatureError::MissingHeader`], [`SignatureError::MalformedHeader`],
    /// [`SignatureError::TimestampTooOld`],
    /// [`SignatureError::TimestampInFuture`],
    /// [`SignatureError::NoMatchingSignature`].
    pub fn verify<'a>(
        &self,
        header: impl Into<Option<&'a str>>,
        body: &[u8],
        now: u64,
    ) -> Result<VerifiedSignature, SignatureError> {
        let mut streaming = self.start(header, now)?;
        streaming.update(body);
        streaming.finish()
    }

    /// Starts verifying a body that will arrive in chunks: everything that
    /// can be checked without the body (configuration, header syntax, time)
    /// is checked now, so a server can reject before reading anything.
    ///
    /// # Errors
    /// The errors of [`Verifier::verify`] except
    /// [`SignatureError::NoMatchingSignature`], which only
    /// [`StreamingVerifier::finish`] can tell.
    pub fn start<'a>(
        &self,
        header: impl Into<Option<&'a str>>,
        now: u64,
    ) -> Result<StreamingVerifier, SignatureError> {
        if self.secrets.is_empty() {
            return Err(SignatureError::NoSecretConfigured);
        }
        let header = SignatureHeader::parse(header.into().unwrap_or(""))?;
        self.tolerance.check(header.timestamp(), now)?;
        let contexts = self
            .secrets
            .iter()
            .map(|secret| {
                let mut context = hmac::Context::with_key(secret.hmac_key());
                header.feed_signed_prefix(|bytes| context.update(bytes));
                context
            })
            .collect();
        Ok(StreamingVerifier {
            contexts,
            timestamp: header.timestamp(),
            signatures: header.into_signatures(),
            body_len: 0,
        })
    }
}

/// A verification in progress over a body fed in chunks, holding one HMAC
/// state per configured secret and nothing of the body itself — so a
/// 64 MiB upload can be verified while it streams to disk.
///
/// Made by [`Verifier::start`]; feed it with [`update`](Self::update), then
/// call [`finish`](Self::finish). The time was checked at the start.
pub struct StreamingVerifier {
    contexts: Vec<hmac::Context>,
    timestamp: u64,
    signatures: Vec<[u8; SIGNATURE_LEN]>,
    body_len: u64,
}

impl StreamingVerifier {
    /// Feeds the next chunk of the raw body.
    pub fn update(&mut self, chunk: &[u8]) {
        for context in &mut self.contexts {
            context.update(chunk);
        }
        self.body_len += chunk.len() as u64;
    }

    /// How many body bytes have been fed so far.
    #[must_use]
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// The signed time, in unix seconds (already checked against the
    /// tolerance).
    #[must_use]
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Completes the verification: every `v0` signature of the header is
    /// compared in constant time with the HMAC under every secret.
    ///
    /// # Errors
    /// [`SignatureError::NoMatchingSignature`] when none matches.
    pub fn finish(self) -> Result<VerifiedSignature, SignatureError> {
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (position, context) in (0u64..).zip(self.contexts) {
            let tag = context.sign();
            let mut equal = subtle::Choice::from(0);
            for signature in &self.signatures {
                equal |= tag.as_ref().ct_eq(signature.as_slice());
            }
            let take = equal & !found;
            index = u64::conditional_select(&index, &position, take);
            found |= equal;
        }
        if bool::from(found) {
            Ok(VerifiedSignature {
                timestamp: self.timestamp,
                secret_index: usize::try_from(index).unwrap_or(usize::MAX),
            })
        } else {
            Err(SignatureError::NoMatchingSignature)
        }
    }
}

impl fmt::Debug for StreamingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingVerifier")
            .field("timestamp", &self.timestamp)
            .field("candidate_secrets", &self.contexts.len())
            .field("signatures", &self.signatures.len())
            .field("body_len", &self.body_len)
            .finish()
    }
}

/// Produces the `ElevenLabs-Signature` header value for `body` signed with
/// `secret` at `timestamp` (unix seconds), exactly as ElevenLabs does:
/// `t=<timestamp>,v0=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>">`.
#[must_use]
pub fn sign(body: &[u8], secret: &Secret, timestamp: u64) -> String {
    let timestamp = timestamp.to_string();
    let mut context = hmac::Context::with_key(secret.hmac_key());
    context.update(timestamp.as_bytes());
    context.update(b".");
    context.update(body);
    format!("t={timestamp},v0={}", hex::encode(context.sign()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_bounds_are_inclusive() {
        let tolerance = Tolerance::default();
        let now = 1_000_000;
        assert_eq!(tolerance.check(now - 1800, now), Ok(()));
        assert_eq!(tolerance.check(now + 300, now), Ok(()));
        assert_eq!(tolerance.check(now, now), Ok(()));
        assert!(matches!(
            tolerance.check(now - 1801, now),
            Err(SignatureError::TimestampTooOld {
                age_secs: 1801,
                tolerance_secs: 1800,
                ..
            })
        ));
        assert!(matches!(
            tolerance.check(now + 301, now),
            Err(SignatureError::TimestampInFuture {
                ahead_secs: 301,
                tolerance_secs: 300,
                ..
            })
        ));
    }

    #[test]
    fn tolerance_handles_the_ends_of_the_clock() {
        let tolerance = Tolerance::default();
        assert!(tolerance.check(u64::MAX, 0).is_err());
        assert!(tolerance.check(0, u64::MAX).is_err());
        assert_eq!(tolerance.check(u64::MAX, u64::MAX), Ok(()));
        let none = Tolerance::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(none.check(5, 5), Ok(()));
        assert!(none.check(4, 5).is_err());
        assert!(none.check(6, 5).is_err());
    }

    #[test]
    fn tolerance_drops_fractions() {
        let tolerance = Tolerance::new(Duration::from_millis(1999), Duration::from_millis(999));
        assert_eq!(tolerance.past(), Duration::from_secs(1));
        assert_eq!(tolerance.future(), Duration::ZERO);
    }

    #[test]
    fn streaming_debug_shows_no_state() {
        let secret = Secret::new("wsec_private").unwrap();
        let header = sign(b"body", &secret, 10);
        let verifier = Verifier::new(secret).start(header.as_str(), 10).unwrap();
        let shown = format!("{verifier:?}");
        assert!(shown.contains("timestamp: 10"), "{shown}");
        assert!(!shown.contains("private"), "{shown}");
    }
}
