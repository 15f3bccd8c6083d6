//! Streaming readers over stored bodies: the envelope (`type`,
//! `data.conversation_id`) and the audio of a `post_call_audio` event.
//! Neither ever holds a whole body in memory.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use struson::reader::{JsonReader, JsonStreamReader, ValueType};

/// What every post-call event carries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Envelope {
    /// The raw `type`.
    pub(crate) kind: String,
    /// The raw `data.conversation_id` (not validated yet).
    pub(crate) conversation_id: String,
}

/// Why a body is not a usable event (the text names what is wrong).
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body is not what it must be.
    Invalid(String),
    /// Reading the file failed.
    Io(io::Error),
}

fn syntax(e: struson::reader::ReaderError) -> BodyError {
    match e {
        // The reader is a file, which never reports `InvalidData` itself:
        // struson does, for bytes that are not UTF-8 (RFC 8259 §8.1).
        struson::reader::ReaderError::IoError { error, location }
            if error.kind() == io::ErrorKind::InvalidData =>
        {
            BodyError::Invalid(format!(
                "not valid JSON: not valid UTF-8 at {location}: {error}"
            ))
        }
        struson::reader::ReaderError::IoError { error, .. } => BodyError::Io(error),
        other => BodyError::Invalid(format!("not valid JSON: {other}")),
    }
}

fn value_type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Array => "an array",
        ValueType::Object => "an object",
        ValueType::String => "a string",
        ValueType::Number => "a number",
        ValueType::Boolean => "a boolean",
        ValueType::Null => "null",
    }
}

/// Reads the envelope of a non-empty body, checking that the whole body
/// is valid JSON, without loading it: big values are skipped as they
/// stream past.
pub(crate) fn read_envelope_from(body: impl Read) -> Result<Envelope, BodyError> {
    let mut json = JsonStreamReader::new(body);
    let top = json.peek().map_err(syntax)?;
    if top != ValueType::Object {
        return Err(BodyError::Invalid(format!(
            "the body must be a JSON object, not {}",
            value_type_name(top)
        )));
    }
    json.begin_object().map_err(syntax)?;
    let mut kind: Option<String> = None;
    let mut conversation: Option<Result<String, String>> = None;
    let mut saw_data = false;
    while json.has_next().map_err(syntax)? {
        let name = json.next_name_owned().map_err(syntax)?;
        match name.as_str() {
            "type" if kind.is_none() => {
                let t = json.peek().map_err(syntax)?;
                if t != ValueType::String {
                    return Err(BodyError::Invalid(format!(
                        "`type` must be a string, not {}",
                        value_type_name(t)
                    )));
                }
                kind = Some(json.next_string().map_err(syntax)?);
            }
            "data" if !saw_data => {
                saw_data = true;
                let t = json.peek().map_err(syntax)?;
                if t != ValueType::Object {
                    return Err(BodyError::Invalid(format!(
                        "`data` must be an object, not {}",
                        value_type_name(t)
                    )));
                }
                json.begin_object().map_err(syntax)?;
                while json.has_next().map_err(syntax)? {
                    let field = json.next_name_owned().map_err(syntax)?;
                    if field == "conversation_id" && conversation.is_none() {
                        let t = json.peek().map_err(syntax)?;
                        if t == ValueType::String {
                            conversation = Some(Ok(json.next_string().map_err(syntax)?));
                        } else {
                            json.skip_value().map_err(syntax)?;
                            conversation = Some(Err(value_type_name(t).to_owned()));
                        }
                    } else {
                        json.skip_value().map_err(syntax)?;
                    }
                }
                json.end_object().map_err(syntax)?;
            }
            _ => json.skip_value().map_err(syntax)?,
        }
    }
    json.end_object().map_err(syntax)?;
    json.consume_trailing_whitespace().map_err(syntax)?;

    let kind = kind.ok_or_else(|| BodyError::Invalid("`type` is missing".into()))?;
    if !saw_data {
        return Err(BodyError::Invalid("`data` is missing".into()));
    }
    let conversation_id = match conversation {
        None => {
            return Err(BodyError::Invalid(
                "`data.conversation_id` is missing".into(),
            ));
        }
        Some(Err(found)) => {
            return Err(BodyError::Invalid(format!(
                "`data.conversation_id` must be a string, not {found}"
            )));
        }
        Some(Ok(id)) => id,
    };
    Ok(Envelope {
        kind,
        conversation_id,
    })
}

/// Moves a reader to the value of `data.<field>` of the event at its
/// start. Returns `false` when there is no such field.
fn seek_data_field<R: Read>(
    json: &mut JsonStreamReader<R>,
    field: &str,
) -> Result<bool, BodyError> {
    json.begin_object().map_err(syntax)?;
    while json.has_next().map_err(syntax)? {
        if json.next_name().map_err(syntax)? != "data" {
            json.skip_value().map_err(syntax)?;
            continue;
        }
        if json.peek().map_err(syntax)? != ValueType::Object {
            return Ok(false);
        }
        json.begin_object().map_err(syntax)?;
        while json.has_next().map_err(syntax)? {
            if json.next_name().map_err(syntax)? == field {
                return Ok(true);
            }
            json.skip_value().map_err(syntax)?;
        }
        return Ok(false);
    }
    Ok(false)
}

/// A reader that remembers whether its source failed, so that an error
/// coming out of the JSON reader can be told apart: the file's (retry) or
/// the body's (refuse).
struct Tracked<R> {
    inner: R,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed.set(true);
            }
        })
    }
}

/// Base64 as ElevenLabs sends it (standard alphabet), padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes `data.full_audio` of a `post_call_audio` event body into
/// `out`, streaming: the base64 text is read through a small buffer and
/// decoded as it comes. Returns the decoded length.
pub(crate) fn decode_audio_from(event: impl Read, out: &mut impl Write) -> Result<u64, BodyError> {
    let source_failed = Rc::new(Cell::new(false));
    let mut json = JsonStreamReader::new(Tracked {
        inner: event,
        failed: Rc::clone(&source_failed),
    });
    if !seek_data_field(&mut json, "full_audio")? {
        return Err(BodyError::Invalid("`data.full_audio` is missing".into()));
    }
    let t = json.peek().map_err(syntax)?;
    if t != ValueType::String {
        return Err(BodyError::Invalid(format!(
            "`data.full_audio` must be a string, not {}",
            value_type_name(t)
        )));
    }
    let text = json.next_string_reader().map_err(syntax)?;
    let mut decoder = base64::read::DecoderReader::new(text, &BASE64);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if source_failed.get() => return Err(BodyError::Io(e)),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(BodyError::Invalid(format!(
                    "`data.full_audio` is not valid base64: {e}"
                )));
            }
            // Not the file's failure: the string itself is malformed (bad
            // UTF-8, a bad escape, cut short), which struson reports as an
            // I/O error of kind `Other`. Retrying would never help.
            Err(e) => {
                return Err(BodyError::Invalid(format!(
                    "`data.full_audio` is not a valid JSON string: {e}"
                )));
            }
        };
        out.write_all(&buf[..n]).map_err(BodyError::Io)?;
        total += n as u64;
    }
    if total == 0 {
        return Err(BodyError::Invalid("`data.full_audio` is empty".into()));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> String {
        match read_envelope_from(text.as_bytes()) {
            Err(BodyError::Invalid(reason)) => reason,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn envelope_is_found_wherever_its_fields_are() {
        let f = r#"{"data":{"full_audio":"QUJD","agent_id":"a","conversation_id":"conv_1"},
                "event_timestamp":1,"type":"post_call_audio"}"#;
        let env = read_envelope_from(f.as_bytes()).unwrap();
        assert_eq!(env.kind, "post_call_audio");
        assert_eq!(env.conversation_id, "conv_1");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_invalid_wherever_they_are() {
        let valid = br#"{"type":"post_call_transcription","data":{"conversation_id":"conv_1","x":"Margaret"}}"#;
        let at = valid.windows(8).position(|w| w == b"Margaret").unwrap();
        for bad in [
            &[0xff_u8][..],
            &[0xc3, 0x28],
            &[0xed, 0xa0, 0x80],
            &[0xe2, 0x82],
            &[0x80],
        ] {
            for at in [at, 2] {
                let mut bytes = valid.to_vec();
                bytes.splice(at..at + 1, bad.iter().copied());
                match read_envelope_from(&bytes[..]) {
                    Err(BodyError::Invalid(reason)) => {
                        assert!(reason.contains("UTF-8"), "{bad:?} at {at}: {reason}");
                    }
                    other => panic!("{bad:?} at {at}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn bad_bodies_are_named() {
        assert!(invalid("").contains("not valid JSON"));
        assert!(invalid("{\"type\":").contains("not valid JSON"));
        assert!(invalid("[1]").contains("must be a JSON object"));
        assert!(invalid(r#"{"data":{"conversation_id":"c"}}"#).contains("`type` is missing"));
        assert!(invalid(r#"{"type":1,"data":{}}"#).contains("`type` must be a string"));
        assert!(invalid(r#"{"type":"x"}"#).contains("`data` is missing"));
        assert!(invalid(r#"{"type":"x","data":{}}"#).contains("`data.conversation_id` is missing"));
        assert!(
            invalid(r#"{"type":"x","data":{"conversation_id":7}}"#)
                .contains("`data.conversation_id` must be a string")
        );
        assert!(
            invalid(r#"{"type":"x","data":{"conversation_id":"c"}} trailing"#)
                .contains("not valid JSON")
        );
    }

    #[test]
    fn a_body_that_is_not_utf8_is_invalid_not_an_io_error() {
        // Found by fuzzing: struson reports bad UTF-8 as an I/O error, which
        // made ingest answer 500 (and ElevenLabs retry) instead of 400.
        for text in [
            &b"{\"type\":\"x\xff\",\"data\":{\"conversation_id\":\"c\"}}"[..],
            b"{\"type\":\"x\",\"data\":{\"conversation_id\":\"c\",\"other\":\"\xc3\"}}",
            b"{\"\xfe\":1}",
        ] {
            match read_envelope_from(text) {
                Err(BodyError::Invalid(reason)) => {
                    assert!(reason.contains("not valid JSON"), "{reason}")
                }
                other => panic!("expected invalid for {text:?}, got {other:?}"),
            }
        }
        // Inside the audio the error surfaces through the string reader,
        // as an I/O error of kind `Other`: the worker retried it forever.
        for audio in [
            &b"{\"data\":{\"full_audio\":\"QU\xffJD\"}}"[..],
            b"{\"data\":{\"full_audio\":\"QU\\qJD\"}}",
            b"{\"data\":{\"full_audio\":\"QUJD",
        ] {
            let decoded = decode_audio_from(audio, &mut Vec::new());
            match decoded {
                Err(BodyError::Invalid(reason)) => assert!(reason.contains("`data.full_audio`")),
                other => panic!("expected invalid for {audio:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_failing_file_is_still_an_io_error() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("the disk is on fire"))
            }
        }
        let body = b"{\"data\":{\"full_audio\":\"QUJD".chain(Failing);
        let decoded = decode_audio_from(body, &mut Vec::new());
        assert!(matches!(decoded, Err(BodyError::Io(_))), "{decoded:?}");
    }

    #[test]
    fn audio_decodes_escaped_base64() {
        // "\/" is a legal JSON escape of '/', which base64 uses.
        let f = r#"{"type":"post_call_audio","data":{"conversation_id":"c","full_audio":"Pz8\/"}}"#;
        let mut out = Vec::new();
        assert_eq!(decode_audio_from(f.as_bytes(), &mut out).unwrap(), 3);
        assert_eq!(out, b"???");
    }

    #[test]
    fn audio_that_is_not_base64_is_invalid() {
        let f = r#"{"type":"post_call_audio","data":{"full_audio":"SUQz...not base64..."}}"#;
        match decode_audio_from(f.as_bytes(), &mut Vec::new()) {
            Err(BodyError::Invalid(reason)) => assert!(reason.contains("not valid base64")),
            other => panic!("expected invalid, got {other:?}"),
        }
    }
}
