//! The streaming post-call envelope reader and audio decoder
//! (`crates/recall-service/src/envelope.rs`), which read bodies of tens of
//! MiB without loading them.
//!
//! Input: a post-call body. Invariants checked, against `serde_json` as the
//! reference parser:
//! * a body the reader accepts is valid JSON, and its `type` and
//!   `data.conversation_id` are what the reader returned;
//! * a valid JSON object with a string `type` and a string
//!   `data.conversation_id` (no duplicate keys) is accepted;
//! * a refusal says what is wrong: the body, its JSON, or a field named
//!   in backquotes;
//! * the audio decoder returns exactly the base64 decoding of
//!   `data.full_audio` whenever the reference finds one, and otherwise
//!   names `data.full_audio` or the JSON in its refusal.
#![no_main]

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use libfuzzer_sys::fuzz_target;
use recall_service::fuzzing::{decode_audio, read_envelope};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The envelope as serde sees it (duplicate fields are an error, unknown
/// fields ignored).
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    conversation_id: String,
}

/// `data.full_audio` as serde sees it.
#[derive(Deserialize)]
struct Audio {
    data: AudioData,
}

#[derive(Deserialize)]
struct AudioData {
    full_audio: String,
}

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether serde_json gave up for a reason the streaming reader does not
/// share (it has no nesting limit, and never converts numbers).
fn reference_limit(e: &serde_json::Error) -> bool {
    let text = e.to_string();
    text.contains("recursion limit") || text.contains("number out of range")
}

fuzz_target!(|body: &[u8]| {
    // serde_json does not check the UTF-8 of strings it skips, so it is a
    // reference for UTF-8 bodies only; JSON text must be UTF-8 (RFC 8259).
    let utf8 = std::str::from_utf8(body).is_ok();
    let valid = serde_json::from_slice::<IgnoredAny>(body);
    let value = serde_json::from_slice::<serde_json::Value>(body);
    let object = value.as_ref().map(|v| v.is_object()).unwrap_or(false);
    // serde's derive also reads a struct from a JSON array of its fields
    // (`["t", [""]]`, `{"data": [""]}`); an envelope and its `data` are
    // objects, so only those count.
    let objects = value
        .as_ref()
        .map(|v| v.is_object() && v.get("data").is_some_and(|d| d.is_object()))
        .unwrap_or(false);
    let reference = serde_json::from_slice::<Envelope>(body)
        .ok()
        .filter(|_| utf8 && objects);

    match read_envelope(body) {
        Ok((kind, conversation_id)) => {
            assert!(utf8, "accepted a body that is not UTF-8");
            if let Err(e) = &valid {
                assert!(reference_limit(e), "accepted invalid JSON: {e}");
            }
            if let Some(env) = &reference {
                assert_eq!(kind, env.kind);
                assert_eq!(conversation_id, env.data.conversation_id);
            }
        }
        Err(reason) => {
            assert!(
                reason.contains("not valid JSON")
                    || reason.contains("the body")
                    || reason.contains('`'),
                "a refusal that names nothing: {reason:?}"
            );
            // A `\uD800` escape without its pair is JSON grammar but no
            // text: serde_json skips it (`IgnoredAny`, or a field it does
            // not read) yet refuses it as a string, as the service's typed
            // reading does. The reader refuses it up front; that is right
            // when serde_json cannot read the body as a value either.
            let lone_surrogate = reason.contains("Surrogate") && value.is_err();
            if let Some(env) = reference.as_ref().filter(|_| !lone_surrogate) {
                panic!(
                    "refused a body serde_json reads as type {:?}, conversation {:?}: {reason}",
                    env.kind, env.data.conversation_id
                );
            }
            if reason.contains("not valid JSON") {
                assert!(
                    !utf8 || valid.is_err() || lone_surrogate,
                    "called valid JSON invalid: {reason}"
                );
            } else if utf8 && valid.is_ok() {
                // Structurally valid JSON: refused for its shape only.
                assert!(reason.contains('`') || !object, "{reason}");
            }
        }
    }

    let mut audio = Vec::new();
    let decoded = decode_audio(body, &mut audio);
    let audio_reference = serde_json::from_slice::<Audio>(body)
        .ok()
        .filter(|_| utf8 && objects);
    match (&decoded, audio_reference) {
        (Ok(n), reference) => {
            assert_eq!(*n, audio.len() as u64);
            assert!(*n > 0, "an empty decoding is refused");
            if let Some(reference) = reference {
                // The reader stops at `full_audio`; a body bad further on
                // can still decode, so compare only what serde reads.
                let expected = BASE64
                    .decode(reference.data.full_audio.as_bytes())
                    .expect("the reader decoded text base64 refuses");
                assert_eq!(audio, expected);
            }
        }
        (Err(reason), reference) => {
            assert!(
                reason.contains("`data.full_audio`") || reason.contains("not valid JSON"),
                "{reason}"
            );
            if let Some(reference) = reference {
                // Only the first `data` is looked at; serde refuses
                // duplicates, so this one is it.
                match BASE64.decode(reference.data.full_audio.as_bytes()) {
                    Ok(bytes) if !bytes.is_empty() => {
                        panic!("refused decodable audio: {reason}")
                    }
                    _ => {}
                }
            }
        }
    }
});
