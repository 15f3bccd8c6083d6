//! Properties over arbitrary bodies, secrets, times and chunkings.

use std::time::Duration;

use proptest::prelude::*;
use recall_signature::{Secret, SignatureError, Tolerance, Verifier, sign};

/// Secrets as an operator could configure them: printable, possibly
/// non-ASCII, no surrounding whitespace.
fn secret() -> impl Strategy<Value = Secret> {
    "[^\\s\\p{Cc}]([^\\p{Cc}]{0,40}[^\\s\\p{Cc}])?"
        .prop_map(|s| Secret::new(s).expect("valid by construction"))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

/// Accepts any time, so only the signature decides.
fn timeless(secret: Secret) -> Verifier {
    Verifier::new(secret).with_tolerance(Tolerance::new(
        Duration::from_secs(u64::MAX),
        Duration::from_secs(u64::MAX),
    ))
}

/// The byte range of the `t=` value and of the `v0=` value in a header
/// produced by `sign`.
fn ranges(header: &str) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let comma = header.find(',').expect("two parts");
    (2..comma, comma + 4..header.len())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn sign_then_verify_round_trips(secret in secret(), body in body(), t in any::<u64>()) {
        let header = sign(&body, &secret, t);
        let verified = Verifier::new(secret).verify(header.as_str(), &body, t).unwrap();
        prop_assert_eq!(verified.timestamp(), t);
    }

    #[test]
    fn another_secret_never_verifies(a in secret(), b in secret(), body in body(), t in any::<u64>()) {
        prop_assume!(a.expose() != b.expose());
        let header = sign(&body, &a, t);
        prop_assert_eq!(
            timeless(b).verify(header.as_str(), &body, t),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn flipping_any_body_byte_fails(
        secret in secret(),
        body in prop::collection::vec(any::<u8>(), 1..2048),
        t in any::<u64>(),
        index in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let header = sign(&body, &secret, t);
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= flip;
        prop_assert_eq!(
            timeless(secret).verify(header.as_str(), &tampered, t),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn changing_any_timestamp_byte_fails(
        secret in secret(),
        body in body(),
        t in any::<u64>(),
        index in any::<prop::sample::Index>(),
        replacement in 0x20..0x7fu8,
    ) {
        let header = sign(&body, &secret, t);
        let (t_range, _) = ranges(&header);
        let at = t_range.start + index.index(t_range.len());
        prop_assume!(header.as_bytes()[at] != replacement);
        let mut tampered = header.into_bytes();
        tampered[at] = replacement;
        let tampered = String::from_utf8(tampered).unwrap();
        let verifier = timeless(secret);
        let result = verifier.verify(tampered.as_str(), &body, t);
        prop_assert!(result.is_err(), "{tampered} verified");
        // a digit for a digit that still fits in 64 bits parses: then the
        // signature must be what fails
        let t_text = &tampered[2..tampered.find(',').expect("two parts")];
        if replacement.is_ascii_digit() && t_text.parse::<u64>().is_ok() {
            prop_assert_eq!(result, Err(SignatureError::NoMatchingSignature));
        }
    }

    #[test]
    fn changing_any_signature_byte_fails(
        secret in secret(),
        body in body(),
        t in any::<u64>(),
        index in any::<prop::sample::Index>(),
        replacement in 0x20..0x7fu8,
    ) {
        let header = sign(&body, &secret, t);
        let (_, v0_range) = ranges(&header);
        let at = v0_range.start + index.index(v0_range.len());
        prop_assume!(header.as_bytes()[at] != replacement);
        let mut tampered = header.into_bytes();
        tampered[at] = replacement;
        let tampered = String::from_utf8(tampered).unwrap();
        let result = timeless(secret).verify(tampered.as_str(), &body, t);
        prop_assert!(result.is_err(), "{tampered} verified");
        if replacement.is_ascii_digit() || (b'a'..=b'f').contains(&replacement) {
            prop_assert_eq!(result, Err(SignatureError::NoMatchingSignature));
        }
    }

    #[test]
    fn streaming_equals_one_shot_for_any_chunking(
        signer in secret(),
        verifier_secret in secret(),
        use_signer in any::<bool>(),
        body in body(),
        t in 0..4_000_000_000u64,
        now_offset in -4000i64..4000,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let header = sign(&body, &signer, t);
        let verifier = Verifier::new(if use_signer { signer } else { verifier_secret });
        let now = t.saturating_add_signed(now_offset);
        let one_shot = verifier.verify(header.as_str(), &body, now);

        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
        cuts.push(0);
        cuts.push(body.len());
        cuts.sort_unstable();
        let streamed = verifier.start(header.as_str(), now).and_then(|mut streaming| {
            for pair in cuts.windows(2) {
                streaming.update(&body[pair[0]..pair[1]]);
            }
            streaming.finish()
        });
        prop_assert_eq!(streamed, one_shot);
    }
}
