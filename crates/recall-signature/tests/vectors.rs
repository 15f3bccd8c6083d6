//! The test vectors the official Python SDK verified, with their fixture
//! files' exact bytes.

use recall_signature::{Secret, SignatureError, Verifier, sign};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/elevenlabs/"
);

struct Vector {
    name: String,
    body: Vec<u8>,
    secret: String,
    t: u64,
    header: String,
    body_sha256: Option<String>,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(format!("{FIXTURES}hmac_test_vectors.json"))
        .expect("the vectors file is readable");
    let array: Vec<serde_json::Value> = serde_json::from_str(&text).expect("a JSON array");
    assert!(
        array.len() >= 3,
        "expected at least 3 vectors, found {}",
        array.len()
    );
    array
        .into_iter()
        .map(|object| {
            let field = |name: &str| object.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            let (name, body) = match (field("file"), field("inline_body")) {
                (Some(file), _) => {
                    let body = std::fs::read(format!("{FIXTURES}{file}"))
                        .unwrap_or_else(|e| panic!("fixture {file} is readable: {e}"));
                    (file, body)
                }
                (None, Some(inline)) => ("inline_body".to_owned(), inline.into_bytes()),
                (None, None) => panic!("a vector without a body: {object}"),
            };
            Vector {
                name,
                body,
                secret: field("secret").expect("secret"),
                t: object["t"].as_u64().expect("numeric t"),
                header: field("header").expect("header"),
                body_sha256: field("body_sha256"),
            }
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

#[test]
fn fixture_bodies_are_the_bytes_the_vectors_were_made_from() {
    for vector in vectors() {
        if let Some(expected) = &vector.body_sha256 {
            assert_eq!(&sha256_hex(&vector.body), expected, "{}", vector.name);
        }
    }
}

#[test]
fn every_vector_verifies_at_its_own_time() {
    for vector in vectors() {
        let verifier = Verifier::new(Secret::new(vector.secret.as_str()).unwrap());
        let verified = verifier
            .verify(vector.header.as_str(), &vector.body, vector.t)
            .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
        assert_eq!(verified.timestamp(), vector.t, "{}", vector.name);
        assert_eq!(verified.secret_index(), 0);
    }
}

#[test]
fn every_vector_still_verifies_exactly_thirty_minutes_later() {
    for vector in vectors() {
        let verifier = Verifier::new(Secret::new(vector.secret.as_str()).unwrap());
        assert!(
            verifier
                .verify(vector.header.as_str(), &vector.body, vector.t + 30 * 60)
                .is_ok(),
            "{}",
            vector.name
        );
    }
}

#[test]
fn every_vector_fails_thirty_minutes_and_one_second_later() {
    for vector in vectors() {
        let verifier = Verifier::new(Secret::new(vector.secret.as_str()).unwrap());
        let result = verifier.verify(vector.header.as_str(), &vector.body, vector.t + 30 * 60 + 1);
        assert_eq!(
            result,
            Err(SignatureError::TimestampTooOld {
                timestamp: vector.t,
                now: vector.t + 1801,
                age_secs: 1801,
                tolerance_secs: 1800,
            }),
            "{}",
            vector.name
        );
    }
}

#[test]
fn signing_reproduces_every_vector_header() {
    for vector in vectors() {
        let secret = Secret::new(vector.secret.as_str()).unwrap();
        assert_eq!(
            sign(&vector.body, &secret, vector.t),
            vector.header,
            "{}",
            vector.name
        );
    }
}

#[test]
fn every_vector_verifies_when_streamed_byte_by_byte() {
    for vector in vectors() {
        let verifier = Verifier::new(Secret::new(vector.secret.as_str()).unwrap());
        let mut streaming = verifier.start(vector.header.as_str(), vector.t).unwrap();
        for byte in &vector.body {
            streaming.update(std::slice::from_ref(byte));
        }
        assert_eq!(streaming.body_len(), vector.body.len() as u64);
        assert_eq!(
            streaming.finish().unwrap().timestamp(),
            vector.t,
            "{}",
            vector.name
        );
    }
}
