//! Each rejection case of the spec (`elevenlabs-webhooks.md`, section 1),
//! and the places where this crate is deliberately stricter or more
//! forgiving than the official SDK.

use std::time::Duration;

use recall_signature::{HeaderProblem, Secret, Secrets, SignatureError, Tolerance, Verifier, sign};

const SECRET: &str = "wsec_test_secret";
const T: u64 = 1_739_537_297;
const BODY: &[u8] = br#"{"type":"post_call_audio","event_timestamp":1739537319,"data":{"agent_id":"xyz","conversation_id":"abc","full_audio":"SUQz"}}"#;
const V0: &str = "e3ad8a1d3a2d47de6aec9b1a24ce3dc6a39c2512e25cde1dbbf4a5312ec7967b";

fn verifier() -> Verifier {
    Verifier::new(Secret::new(SECRET).unwrap())
}

fn malformed(
    problem: HeaderProblem,
) -> Result<recall_signature::VerifiedSignature, SignatureError> {
    Err(SignatureError::MalformedHeader(problem))
}

#[test]
fn the_reference_request_is_accepted() {
    assert!(
        verifier()
            .verify(format!("t={T},v0={V0}").as_str(), BODY, T)
            .is_ok()
    );
}

#[test]
fn missing_header_sdk_missing_signature_header() {
    assert_eq!(
        verifier().verify(None, BODY, T),
        Err(SignatureError::MissingHeader)
    );
    assert_eq!(
        verifier().verify("", BODY, T),
        Err(SignatureError::MissingHeader)
    );
    assert_eq!(
        verifier().verify("  ", BODY, T),
        Err(SignatureError::MissingHeader)
    );
}

#[test]
fn no_secret_sdk_webhook_secret_not_configured() {
    let unconfigured = Verifier::new(Secrets::default());
    let header = format!("t={T},v0={V0}");
    assert_eq!(
        unconfigured.verify(header.as_str(), BODY, T),
        Err(SignatureError::NoSecretConfigured)
    );
    assert_eq!(
        unconfigured.start(header.as_str(), T).err(),
        Some(SignatureError::NoSecretConfigured)
    );
}

#[test]
fn no_v0_part_sdk_no_signature_hash_found_with_expected_scheme_v0() {
    let v = verifier();
    assert_eq!(
        v.verify(format!("t={T}").as_str(), BODY, T),
        malformed(HeaderProblem::MissingSignature)
    );
    assert_eq!(
        v.verify(format!("t={T},v1={V0}").as_str(), BODY, T),
        malformed(HeaderProblem::MissingSignature)
    );
}

#[test]
fn missing_timestamp_is_a_clean_error() {
    assert_eq!(
        verifier().verify(format!("v0={V0}").as_str(), BODY, T),
        malformed(HeaderProblem::MissingTimestamp)
    );
}

#[test]
fn non_numeric_timestamp_is_a_clean_error_where_the_python_sdk_crashes() {
    for t in [
        "abc",
        "",
        "1739537297.0",
        "-1739537297",
        "+1739537297",
        "0x67af1891",
    ] {
        assert_eq!(
            verifier().verify(format!("t={t},v0={V0}").as_str(), BODY, T),
            malformed(HeaderProblem::InvalidTimestamp),
            "{t:?}"
        );
    }
}

#[test]
fn timestamp_older_than_thirty_minutes_sdk_outside_the_tolerance_zone() {
    let header = format!("t={T},v0={V0}");
    assert!(verifier().verify(header.as_str(), BODY, T + 1800).is_ok());
    assert!(matches!(
        verifier().verify(header.as_str(), BODY, T + 1801),
        Err(SignatureError::TimestampTooOld { age_secs: 1801, .. })
    ));
}

#[test]
fn future_timestamps_are_bounded_unlike_the_sdk() {
    let header = format!("t={T},v0={V0}");
    assert!(verifier().verify(header.as_str(), BODY, T - 300).is_ok());
    assert!(matches!(
        verifier().verify(header.as_str(), BODY, T - 301),
        Err(SignatureError::TimestampInFuture {
            ahead_secs: 301,
            tolerance_secs: 300,
            ..
        })
    ));
}

#[test]
fn time_is_checked_before_the_body_is_read() {
    let header = format!("t={T},v0={V0}");
    assert!(matches!(
        verifier().start(header.as_str(), T + 3600).err(),
        Some(SignatureError::TimestampTooOld { .. })
    ));
    assert!(matches!(
        verifier().start(header.as_str(), T - 3600).err(),
        Some(SignatureError::TimestampInFuture { .. })
    ));
    assert_eq!(
        verifier().start("t=x", T).err(),
        Some(SignatureError::MalformedHeader(
            HeaderProblem::InvalidTimestamp
        ))
    );
}

#[test]
fn both_tolerances_are_configurable() {
    let header = format!("t={T},v0={V0}");
    let strict = verifier().with_tolerance(Tolerance::new(Duration::from_secs(60), Duration::ZERO));
    assert!(strict.verify(header.as_str(), BODY, T + 60).is_ok());
    assert!(matches!(
        strict.verify(header.as_str(), BODY, T + 61),
        Err(SignatureError::TimestampTooOld {
            tolerance_secs: 60,
            ..
        })
    ));
    assert!(matches!(
        strict.verify(header.as_str(), BODY, T - 1),
        Err(SignatureError::TimestampInFuture {
            tolerance_secs: 0,
            ..
        })
    ));
    let lenient = verifier().with_tolerance(Tolerance::new(
        Duration::from_secs(86_400),
        Duration::from_secs(3600),
    ));
    assert!(lenient.verify(header.as_str(), BODY, T + 86_400).is_ok());
    assert!(lenient.verify(header.as_str(), BODY, T - 3600).is_ok());
}

#[test]
fn mismatch_sdk_signature_hash_does_not_match() {
    let header = format!("t={T},v0={V0}");
    // wrong secret
    let other = Verifier::new(Secret::new("wsec_other_secret").unwrap());
    assert_eq!(
        other.verify(header.as_str(), BODY, T),
        Err(SignatureError::NoMatchingSignature)
    );
    // tampered body, and the body with a trailing newline a proxy might add
    assert_eq!(
        verifier().verify(header.as_str(), b"{}", T),
        Err(SignatureError::NoMatchingSignature)
    );
    let mut with_newline = BODY.to_vec();
    with_newline.push(b'\n');
    assert_eq!(
        verifier().verify(header.as_str(), &with_newline, T),
        Err(SignatureError::NoMatchingSignature)
    );
    // another timestamp with the same signature
    assert_eq!(
        verifier().verify(format!("t={},v0={V0}", T + 1).as_str(), BODY, T),
        Err(SignatureError::NoMatchingSignature)
    );
    // the secret without its wsec_ prefix is another secret
    let unprefixed = Verifier::new(Secret::new("test_secret").unwrap());
    assert_eq!(
        unprefixed.verify(header.as_str(), BODY, T),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn uppercase_hex_is_rejected_as_the_sdk_does() {
    assert_eq!(
        verifier().verify(format!("t={T},v0={}", V0.to_uppercase()).as_str(), BODY, T),
        malformed(HeaderProblem::InvalidSignature)
    );
}

#[test]
fn parts_are_trimmed_reordered_and_unknown_ones_ignored() {
    for header in [
        format!("v0={V0},t={T}"),
        format!("t={T}, v0={V0}"),
        format!(" t={T} ,\tv0={V0} "),
        format!("v1=deadbeef,t={T},v0={V0},future=1"),
    ] {
        assert!(
            verifier().verify(header.as_str(), BODY, T).is_ok(),
            "{header}"
        );
    }
}

#[test]
fn any_of_several_v0_entries_may_match_whichever_comes_first() {
    let wrong = "0".repeat(64);
    for header in [
        format!("t={T},v0={wrong},v0={V0}"),
        format!("t={T},v0={V0},v0={wrong}"),
    ] {
        assert!(
            verifier().verify(header.as_str(), BODY, T).is_ok(),
            "{header}"
        );
    }
    assert_eq!(
        verifier().verify(format!("t={T},v0={wrong},v0={wrong}").as_str(), BODY, T),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn duplicate_timestamps_are_ambiguous() {
    assert_eq!(
        verifier().verify(format!("t={T},t={T},v0={V0}").as_str(), BODY, T),
        malformed(HeaderProblem::DuplicateTimestamp)
    );
}

#[test]
fn any_configured_secret_may_match_during_rotation() {
    let old = Secret::new("wsec_old").unwrap();
    let new = Secret::new("wsec_new").unwrap();
    let verifier = Verifier::new(Secrets::new([new.clone(), old.clone()]));
    let signed_old = sign(BODY, &old, T);
    let signed_new = sign(BODY, &new, T);
    assert_eq!(
        verifier
            .verify(signed_new.as_str(), BODY, T)
            .unwrap()
            .secret_index(),
        0
    );
    assert_eq!(
        verifier
            .verify(signed_old.as_str(), BODY, T)
            .unwrap()
            .secret_index(),
        1
    );
    // once the old secret is retired, its signatures stop working
    let retired = Verifier::new(new);
    assert_eq!(
        retired.verify(signed_old.as_str(), BODY, T),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn error_messages_name_the_rule_and_never_the_secret() {
    let header = format!("t={T},v0={V0}");
    let errors = [
        verifier().verify(None, BODY, T).unwrap_err(),
        verifier().verify("t=x,v0=1", BODY, T).unwrap_err(),
        verifier()
            .verify(header.as_str(), BODY, T + 4000)
            .unwrap_err(),
        verifier()
            .verify(header.as_str(), BODY, T - 4000)
            .unwrap_err(),
        verifier().verify(header.as_str(), b"x", T).unwrap_err(),
        Verifier::new(Secrets::default())
            .verify(header.as_str(), BODY, T)
            .unwrap_err(),
        Secrets::single(Secret::new(SECRET).unwrap())
            .check_shared("nope")
            .unwrap_err(),
    ];
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for message in &messages {
        assert!(!message.contains(SECRET), "{message}");
        assert!(!message.contains("test_secret"), "{message}");
        assert!(!message.contains(V0), "{message}");
    }
    assert!(messages[1].contains("t="), "{}", messages[1]);
    assert!(messages[2].contains("1800"), "{}", messages[2]);
    assert!(messages[3].contains("300"), "{}", messages[3]);
}

#[test]
fn the_timestamp_is_signed_as_sent_including_leading_zeros() {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut message = format!("00{T}.").into_bytes();
    message.extend_from_slice(BODY);
    let v0 = hex::encode(ring::hmac::sign(&key, &message));
    let verified = verifier()
        .verify(format!("t=00{T},v0={v0}").as_str(), BODY, T)
        .unwrap();
    assert_eq!(verified.timestamp(), T);
    // the canonical spelling of the same time is another message
    assert_eq!(
        verifier().verify(format!("t={T},v0={v0}").as_str(), BODY, T),
        Err(SignatureError::NoMatchingSignature)
    );
}
