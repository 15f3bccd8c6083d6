//! Reading the `ElevenLabs-Signature` header.

use crate::error::{HeaderProblem, SignatureError};

/// The name of the header ElevenLabs signs post-call webhooks with (header
/// names are case-insensitive on the wire).
pub const SIGNATURE_HEADER: &str = "ElevenLabs-Signature";

/// Length in bytes of an HMAC-SHA256 signature.
pub const SIGNATURE_LEN: usize = 32;

/// A parsed `ElevenLabs-Signature: t=<unix secs>,v0=<hex>` header.
///
/// Parsing is stricter than the official SDK where the SDK is weak, and
/// more forgiving where forgiving costs nothing:
/// * parts are split on `,` and trimmed; empty parts are ignored;
/// * the order of parts does not matter; unknown parts (`v1=...`) are
///   ignored;
/// * exactly one `t=` part, made of ASCII digits only (no sign, no spaces
///   inside), fitting in 64 bits;
/// * at least one `v0=` part; each must be exactly 64 lowercase hex digits
///   (uppercase is rejected, as the SDK does); several are accepted and any
///   of them may match.
///
/// ```
/// use recall_signature::SignatureHeader;
///
/// let header = SignatureHeader::parse(
///     " v1=ignored , t=1739537297,v0=5cde3c8a490b66fd44602236df8aa93a946f274551e299710ee9282f8a80c045",
/// )?;
/// assert_eq!(header.timestamp(), 1739537297);
/// assert_eq!(header.signatures().len(), 1);
/// # Ok::<(), recall_signature::SignatureError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    timestamp: u64,
    /// How many zeros the `t=` value had before `timestamp` written in
    /// decimal: the signed message starts with the text exactly as sent.
    leading_zeros: usize,
    signatures: Vec<[u8; SIGNATURE_LEN]>,
}

impl SignatureHeader {
    /// Parses a header value.
    ///
    /// # Errors
    /// [`SignatureError::MissingHeader`] when the value is empty or blank;
    /// [`SignatureError::MalformedHeader`] with the [`HeaderProblem`]
    /// otherwise.
    pub fn parse(value: &str) -> Result<Self, SignatureError> {
        let malformed = SignatureError::MalformedHeader;
        if value.trim().is_empty() {
            return Err(SignatureError::MissingHeader);
        }
        let mut timestamp: Option<(u64, &str)> = None;
        let mut signatures = Vec::new();
        for part in value.split(',') {
            let Some((key, part_value)) = part.trim().split_once('=') else {
                continue;
            };
            let part_value = part_value.trim();
            match key.trim() {
                "t" => {
                    if timestamp.is_some() {
                        return Err(malformed(HeaderProblem::DuplicateTimestamp));
                    }
                    timestamp = Some((parse_timestamp(part_value)?, part_value));
                }
                "v0" => signatures.push(parse_signature(part_value)?),
                _ => {}
            }
        }
        let (timestamp, timestamp_text) =
            timestamp.ok_or(malformed(HeaderProblem::MissingTimestamp))?;
        if signatures.is_empty() {
            return Err(malformed(HeaderProblem::MissingSignature));
        }
        let mut digits = [0u8; MAX_DIGITS];
        let leading_zeros = timestamp_text.len() - decimal(timestamp, &mut digits).len();
        Ok(Self {
            timestamp,
            leading_zeros,
            signatures,
        })
    }

    /// The signed time, in unix seconds.
    #[must_use]
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The `v0` signatures, in the order they appeared.
    #[must_use]
    pub fn signatures(&self) -> &[[u8; SIGNATURE_LEN]] {
        &self.signatures
    }

    /// Feeds `feed` the start of the signed message: the `t=` value exactly
    /// as sent, then `.` — without allocating.
    pub(crate) fn feed_signed_prefix(&self, mut feed: impl FnMut(&[u8])) {
        const ZEROS: [u8; 64] = [b'0'; 64];
        let mut zeros = self.leading_zeros;
        while zeros > 0 {
            let n = zeros.min(ZEROS.len());
            feed(&ZEROS[..n]);
            zeros -= n;
        }
        let mut digits = [0u8; MAX_DIGITS];
        feed(decimal(self.timestamp, &mut digits));
        feed(b".");
    }

    pub(crate) fn into_signatures(self) -> Vec<[u8; SIGNATURE_LEN]> {
        self.signatures
    }
}

/// The most decimal digits a `u64` takes.
const MAX_DIGITS: usize = 20;

/// `n` in decimal, without leading zeros, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; MAX_DIGITS]) -> &[u8] {
    let mut start = MAX_DIGITS;
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

fn parse_timestamp(text: &str) -> Result<u64, SignatureError> {
    let invalid = SignatureError::MalformedHeader(HeaderProblem::InvalidTimestamp);
    // `u64::from_str` would also accept a leading `+`; the SDK's peers would
    // sign the text as sent, so only plain digits are unambiguous.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid);
    }
    text.parse().map_err(|_| invalid)
}

fn parse_signature(text: &str) -> Result<[u8; SIGNATURE_LEN], SignatureError> {
    let invalid = SignatureError::MalformedHeader(HeaderProblem::InvalidSignature);
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        _ => Err(invalid.clone()),
    };
    let text = text.as_bytes();
    if text.len() != 2 * SIGNATURE_LEN {
        return Err(invalid);
    }
    let mut out = [0u8; SIGNATURE_LEN];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "5cde3c8a490b66fd44602236df8aa93a946f274551e299710ee9282f8a80c045";

    fn problem(value: &str) -> HeaderProblem {
        match SignatureHeader::parse(value) {
            Err(SignatureError::MalformedHeader(problem)) => problem,
            other => panic!("expected a malformed header for {value:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_any_order_spacing_unknown_and_empty_parts() {
        for value in [
            format!("t=17,v0={SIG}"),
            format!("v0={SIG},t=17"),
            format!(" t = 17 ,  v0={SIG} "),
            format!("t=17,,v1=whatever,v0={SIG},noequals,"),
        ] {
            let header = SignatureHeader::parse(&value).unwrap();
            assert_eq!(header.timestamp(), 17, "{value}");
            assert_eq!(header.signatures().len(), 1, "{value}");
            assert_eq!(hex::encode(header.signatures()[0]), SIG);
        }
    }

    #[test]
    fn keeps_every_v0_in_order() {
        let other = "00".repeat(32);
        let header = SignatureHeader::parse(&format!("t=1,v0={other},v0={SIG}")).unwrap();
        assert_eq!(
            header.signatures(),
            &[[0u8; 32], {
                let mut s = [0u8; 32];
                hex::decode_to_slice(SIG, &mut s).unwrap();
                s
            }]
        );
    }

    #[test]
    fn signs_the_timestamp_text_as_sent() {
        for text in [
            "0",
            "00",
            "17",
            "0017",
            &"0".repeat(150),
            &u64::MAX.to_string(),
        ] {
            let header = SignatureHeader::parse(&format!("t={text},v0={SIG}")).unwrap();
            let mut prefix = Vec::new();
            header.feed_signed_prefix(|bytes| prefix.extend_from_slice(bytes));
            assert_eq!(prefix, format!("{text}.").into_bytes(), "{text}");
        }
    }

    #[test]
    fn blank_is_missing() {
        for value in ["", "   ", "\t"] {
            assert_eq!(
                SignatureHeader::parse(value),
                Err(SignatureError::MissingHeader)
            );
        }
    }

    #[test]
    fn names_the_problem() {
        assert_eq!(
            problem(&format!("v0={SIG}")),
            HeaderProblem::MissingTimestamp
        );
        assert_eq!(
            problem(&format!("T=1,v0={SIG}")),
            HeaderProblem::MissingTimestamp
        );
        assert_eq!(problem("t=1"), HeaderProblem::MissingSignature);
        assert_eq!(problem("t=1,v1=abc"), HeaderProblem::MissingSignature);
        assert_eq!(
            problem(&format!("t=1,t=1,v0={SIG}")),
            HeaderProblem::DuplicateTimestamp
        );
        for t in [
            "",
            "abc",
            "-1",
            "+1",
            "1.5",
            "1 2",
            "18446744073709551616",
            "１",
        ] {
            assert_eq!(
                problem(&format!("t={t},v0={SIG}")),
                HeaderProblem::InvalidTimestamp,
                "{t:?}"
            );
        }
        for v0 in [
            SIG.to_uppercase(),
            SIG[..63].to_owned(),
            format!("{SIG}0"),
            format!("{}g", &SIG[..63]),
            String::new(),
        ] {
            assert_eq!(
                problem(&format!("t=1,v0={v0}")),
                HeaderProblem::InvalidSignature,
                "{v0:?}"
            );
        }
    }

    #[test]
    fn accepts_the_largest_timestamp() {
        let header = SignatureHeader::parse(&format!("t={},v0={SIG}", u64::MAX)).unwrap();
        assert_eq!(header.timestamp(), u64::MAX);
    }
}
