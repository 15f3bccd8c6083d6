//! Secrets: one [`Secret`], a rotation set of them ([`Secrets`]), fresh
//! generation, and the constant-time shared-secret check.

use std::fmt;

use ring::{digest, hmac, rand::SecureRandom};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::error::{SecretError, SignatureError};

/// The prefix ElevenLabs puts on its webhook secrets; [`Secret::generate`]
/// uses it too.
pub const SECRET_PREFIX: &str = "wsec_";

/// How many random bytes [`Secret::generate`] draws (written as twice as
/// many hex digits after [`SECRET_PREFIX`]).
pub const GENERATED_SECRET_BYTES: usize = 32;

/// One webhook secret, used byte for byte as configured (including any
/// `wsec_` prefix).
///
/// `Debug` and `Display` print `[redacted]`; the value is only reachable
/// through [`Secret::expose`]. The HMAC key and the SHA-256 digest used by
/// the shared-secret check are computed once, at construction.
///
/// ```
/// use recall_signature::Secret;
///
/// let secret = Secret::new("wsec_test_secret")?;
/// assert_eq!(format!("{secret:?}"), "Secret([redacted])");
/// assert_eq!(secret.to_string(), "[redacted]");
/// assert_eq!(secret.expose(), "wsec_test_secret");
/// # Ok::<(), recall_signature::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    value: String,
    key: hmac::Key,
    digest: [u8; 32],
}

impl Secret {
    /// Accepts a configured secret.
    ///
    /// # Errors
    /// [`SecretError::Empty`] for an empty value,
    /// [`SecretError::SurroundingWhitespace`] when it starts or ends with
    /// whitespace, [`SecretError::ControlCharacter`] when it contains one.
    pub fn new(value: impl Into<String>) -> Result<Self, SecretError> {
        let value = value.into();
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        if value.trim() != value {
            return Err(SecretError::SurroundingWhitespace);
        }
        if value.chars().any(char::is_control) {
            return Err(SecretError::ControlCharacter);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, value.as_bytes());
        let digest = sha256(value.as_bytes());
        Ok(Self { value, key, digest })
    }

    /// Generates a fresh secret from the system's secure random number
    /// generator: [`SECRET_PREFIX`] followed by
    /// [`GENERATED_SECRET_BYTES`] random bytes in lowercase hex — for a
    /// server's first run.
    ///
    /// ```
    /// use recall_signature::Secret;
    ///
    /// let secret = Secret::generate()?;
    /// assert!(secret.expose().starts_with("wsec_"));
    /// assert_eq!(secret.expose().len(), 5 + 64);
    /// # Ok::<(), recall_signature::SecretError>(())
    /// ```
    ///
    /// # Errors
    /// [`SecretError::RandomUnavailable`] when the system generator fails.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = [0u8; GENERATED_SECRET_BYTES];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SecretError::RandomUnavailable)?;
        Self::new(format!("{SECRET_PREFIX}{}", hex::encode(bytes)))
    }

    /// The secret itself, for the rare place that must show or store it
    /// (printing a freshly generated secret once, writing a config file).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub(crate) fn hmac_key(&self) -> &hmac::Key {
        &self.key
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The secrets a server accepts, in order; usually one, two while a secret
/// is being rotated. May be empty (nothing configured): every check then
/// fails with [`SignatureError::NoSecretConfigured`].
///
/// The shared-secret check for the client-data and search-data webhooks:
///
/// ```
/// use recall_signature::{Secret, Secrets, SignatureError};
///
/// let secrets = Secrets::new([Secret::new("new-secret")?, Secret::new("old-secret")?]);
/// assert_eq!(secrets.check_shared(Some("old-secret")), Ok(1));
/// assert_eq!(secrets.check_shared(Some("guess")), Err(SignatureError::SecretMismatch));
/// assert_eq!(secrets.check_shared(None), Err(SignatureError::MissingHeader));
/// # Ok::<(), recall_signature::SecretError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    secrets: Vec<Secret>,
}

impl Secrets {
    /// A set of the given secrets, in order.
    pub fn new(secrets: impl IntoIterator<Item = Secret>) -> Self {
        Self {
            secrets: secrets.into_iter().collect(),
        }
    }

    /// A set of one secret.
    #[must_use]
    pub fn single(secret: Secret) -> Self {
        Self {
            secrets: vec![secret],
        }
    }

    /// How many secrets are configured.
    #[must_use]
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether no secret is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The secrets, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Secret> {
        self.secrets.iter()
    }

    /// Checks a value presented in a shared-secret header against every
    /// configured secret and returns the position of the one it equals.
    ///
    /// The comparison is constant time and reveals neither the secrets'
    /// lengths nor which one matched: the SHA-256 digests of the presented
    /// value and of each secret are compared with `subtle`, and every
    /// secret is always compared. The value is compared exactly, without
    /// trimming. `None` or an empty value means the header is missing.
    ///
    /// # Errors
    /// [`SignatureError::NoSecretConfigured`] when the set is empty,
    /// [`SignatureError::MissingHeader`] when nothing was presented,
    /// [`SignatureError::SecretMismatch`] when no secret matches.
    pub fn check_shared<'a>(
        &self,
        presented: impl Into<Option<&'a str>>,
    ) -> Result<usize, SignatureError> {
        if self.is_empty() {
            return Err(SignatureError::NoSecretConfigured);
        }
        let presented = match presented.into() {
            None | Some("") => return Err(SignatureError::MissingHeader),
            Some(value) => value,
        };
        let presented = sha256(presented.as_bytes());
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (position, secret) in (0u64..).zip(&self.secrets) {
            let equal = secret.digest.ct_eq(&presented);
            // Keep the first match, without branching on secret data.
            let take = equal & !found;
            index = u64::conditional_select(&index, &position, take);
            found |= equal;
        }
        if bool::from(found) {
            Ok(usize::try_from(index).unwrap_or(usize::MAX))
        } else {
            Err(SignatureError::SecretMismatch)
        }
    }
}

impl From<Secret> for Secrets {
    fn from(secret: Secret) -> Self {
        Self::single(secret)
    }
}

impl FromIterator<Secret> for Secrets {
    fn from_iter<I: IntoIterator<Item = Secret>>(iter: I) -> Self {
        Self::new(iter)
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_values_that_could_never_match() {
        assert_eq!(Secret::new("").err(), Some(SecretError::Empty));
        assert_eq!(
            Secret::new("wsec_abc\n").err(),
            Some(SecretError::SurroundingWhitespace)
        );
        assert_eq!(
            Secret::new(" wsec_abc").err(),
            Some(SecretError::SurroundingWhitespace)
        );
        assert_eq!(
            Secret::new("wsec\u{7}abc").err(),
            Some(SecretError::ControlCharacter)
        );
        assert!(Secret::new("wsec_ inner space is fine").is_ok());
    }

    #[test]
    fn redacts_in_debug_and_display_including_inside_sets() {
        let secret = Secret::new("wsec_very_private").unwrap();
        let set = Secrets::single(secret.clone());
        for shown in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{secret:#?}"),
            format!("{set:?}"),
        ] {
            assert!(!shown.contains("private"), "{shown}");
        }
    }

    #[test]
    fn generated_secrets_are_prefixed_hex_and_distinct() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        let hex_part = a.expose().strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(hex_part.len(), 2 * GENERATED_SECRET_BYTES);
        assert!(
            hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn shared_check_finds_the_matching_secret_in_a_rotation_set() {
        let set: Secrets = ["first", "second", "third"]
            .into_iter()
            .map(|s| Secret::new(s).unwrap())
            .collect();
        assert_eq!(set.check_shared("first"), Ok(0));
        assert_eq!(set.check_shared("second"), Ok(1));
        assert_eq!(set.check_shared(Some("third")), Ok(2));
    }

    #[test]
    fn shared_check_is_exact() {
        let set = Secrets::single(Secret::new("secret").unwrap());
        for wrong in ["secre", "secret ", " secret", "Secret", "secretsecret", "x"] {
            assert_eq!(
                set.check_shared(wrong),
                Err(SignatureError::SecretMismatch),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn shared_check_reports_missing_and_unconfigured() {
        let set = Secrets::single(Secret::new("secret").unwrap());
        assert_eq!(set.check_shared(""), Err(SignatureError::MissingHeader));
        assert_eq!(set.check_shared(None), Err(SignatureError::MissingHeader));
        assert_eq!(
            Secrets::default().check_shared("secret"),
            Err(SignatureError::NoSecretConfigured)
        );
    }
}
