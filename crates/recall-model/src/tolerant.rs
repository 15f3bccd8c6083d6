//! Reading a stored post-call event field by field.
//!
//! ElevenLabs occasionally sends a field of the wrong type (a duration as
//! text, an `analysis` that is a list). Parsing the whole event strictly
//! would lose the call for one bad field; [`PostCallWebhookRequest::from_value_tolerant`]
//! instead drops each field that cannot be read, says which and why, and
//! keeps everything else.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{PostCallEvent, PostCallWebhookRequest, UnixTimestamp, ValueError, WebhookType};

/// How many bad fields one event may have before it is given up as
/// unreadable: each costs a parse of the event's data.
const MAX_PROBLEMS: usize = 64;

/// A field of an event that could not be read and was skipped.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct FieldProblem {
    /// Where the field is, as a path from the envelope (`data.metadata.call_duration_secs`,
    /// `data.transcript[3]`).
    pub field: String,
    /// What was wrong with it.
    pub reason: String,
}

impl FieldProblem {
    /// A problem of `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl PostCallWebhookRequest {
    /// Reads an event, skipping every field that cannot be read and
    /// reporting it as a [`FieldProblem`], rather than rejecting the whole
    /// event for one bad field.
    ///
    /// Fails only when nothing usable is left: the body is not an object,
    /// `type` is missing or not text, or the data lacks what identifies
    /// the call (a transcription's `conversation_id` and `agent_id`).
    ///
    /// ```
    /// use recall_model::{PostCallEvent, PostCallWebhookRequest};
    /// let event = serde_json::json!({
    ///     "type": "post_call_transcription",
    ///     "event_timestamp": 1e30,
    ///     "data": {
    ///         "agent_id": "agent_1", "conversation_id": "conv_1",
    ///         "metadata": {"start_time_unix_secs": 1739537297, "call_duration_secs": "x"},
    ///         "analysis": {"transcript_summary": "Asked about roses."}
    ///     }
    /// });
    /// let (request, problems) = PostCallWebhookRequest::from_value_tolerant(event).unwrap();
    /// let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    /// assert_eq!(fields, ["event_timestamp", "data.metadata.call_duration_secs"]);
    /// let PostCallEvent::Transcription(data) = request.data else { panic!() };
    /// assert_eq!(data.transcript_summary(), Some("Asked about roses."));
    /// assert_eq!(data.start_time().unwrap().as_secs(), 1739537297);
    /// ```
    ///
    /// # Errors
    /// A [`ValueError`] naming what is missing or unreadable.
    pub fn from_value_tolerant(value: Value) -> Result<(Self, Vec<FieldProblem>), ValueError> {
        let Value::Object(mut envelope) = value else {
            return Err(ValueError::new(
                "body",
                "must be a JSON object",
                kind_of(&value),
            ));
        };
        let kind = match envelope.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(other) => return Err(ValueError::new("type", "must be text", kind_of(&other))),
            None => return Err(ValueError::new("type", "is required", "")),
        };
        let mut problems = Vec::new();
        let event_timestamp = match envelope.remove("event_timestamp") {
            None | Some(Value::Null) => None,
            Some(raw) => match raw.as_i64() {
                Some(secs) if UnixTimestamp::from_secs(secs).is_ok() => Some(secs),
                _ => {
                    let error = ValueError::new(
                        "event_timestamp",
                        "must be whole unix seconds from 0 to 253402300799",
                        raw.to_string(),
                    );
                    problems.push(FieldProblem::new("event_timestamp", error.to_string()));
                    None
                }
            },
        };
        let raw = envelope.remove("data").unwrap_or(Value::Null);
        let webhook = WebhookType::parse(&kind);
        let data = match raw {
            _ if matches!(webhook, WebhookType::Unknown(_)) => raw,
            Value::Null => Value::Object(Map::new()),
            data @ Value::Object(_) => data,
            other => {
                return Err(ValueError::new(
                    "data",
                    "must be a JSON object",
                    kind_of(&other),
                ));
            }
        };
        let data = match webhook {
            WebhookType::PostCallTranscription => {
                PostCallEvent::Transcription(Box::new(read_tolerant(data, &mut problems)?))
            }
            WebhookType::PostCallAudio => PostCallEvent::Audio(read_tolerant(data, &mut problems)?),
            WebhookType::CallInitiationFailure => {
                PostCallEvent::InitiationFailure(read_tolerant(data, &mut problems)?)
            }
            WebhookType::Unknown(kind) => PostCallEvent::Unknown { kind, data },
        };
        Ok((
            Self {
                event_timestamp,
                data,
                extra: envelope,
            },
            problems,
        ))
    }
}

/// Parses `data` as `T`, removing each field the parse stops at until it
/// succeeds. Fails when the data itself (not one of its fields) is what
/// cannot be read, e.g. a required id is missing.
fn read_tolerant<T: DeserializeOwned>(
    mut data: Value,
    problems: &mut Vec<FieldProblem>,
) -> Result<T, ValueError> {
    for _ in 0..=MAX_PROBLEMS {
        let error = match serde_path_to_error::deserialize::<_, T>(&data) {
            Ok(parsed) => return Ok(parsed),
            Err(error) => error,
        };
        let path: Vec<Step> = error
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                _ => None,
            })
            .collect();
        let reason = error.into_inner().to_string();
        // The parse may stop inside a field it cannot describe (an untagged
        // value): drop the deepest part of the path that exists.
        let removed = (1..=path.len())
            .rev()
            .find(|&len| remove_at(&mut data, &path[..len]));
        let Some(len) = removed else {
            return Err(ValueError::new("data", "is unreadable", reason));
        };
        if problems.len() == MAX_PROBLEMS {
            return Err(ValueError::new(
                "data",
                "has too many unreadable fields",
                reason,
            ));
        }
        problems.push(FieldProblem::new(
            format!("data{}", render(&path[..len])),
            strip_position(&reason),
        ));
    }
    Err(ValueError::new(
        "data",
        "has too many unreadable fields",
        "",
    ))
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Removes the value at `path` (non-empty) from `root`; whether it was there.
fn remove_at(root: &mut Value, path: &[Step]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = root;
    for step in parents {
        let next = match (node, step) {
            (Value::Object(map), Step::Key(key)) => map.get_mut(key),
            (Value::Array(items), Step::Index(i)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    match (node, last) {
        (Value::Object(map), Step::Key(key)) => map.remove(key).is_some(),
        (Value::Array(items), Step::Index(i)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    }
}

/// serde_json's message without its position (meaningless on a `Value`).
fn strip_position(reason: &str) -> String {
    match reason.find(" at line ") {
        Some(at) => reason[..at].to_owned(),
        None => reason.to_owned(),
    }
}

fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn transcription(data: Value) -> Value {
        let mut event = json!({"type": "post_call_transcription", "event_timestamp": 1739537297});
        event["data"] = data;
        event
    }

    fn base() -> Value {
        json!({
            "agent_id": "agent_1",
            "conversation_id": "conv_1",
            "transcript": [
                {"role": "agent", "message": "Hello"},
                {"role": "user", "message": "Hi, my roses have black spot"}
            ],
            "metadata": {"start_time_unix_secs": 1739537297, "call_duration_secs": 42},
            "analysis": {
                "transcript_summary": "Margaret asked about black spot.",
                "data_collection_results": {
                    "first_name": {"data_collection_id": "first_name", "value": "Margaret"},
                    "city": {"data_collection_id": "city", "value": "Leeds"}
                }
            }
        })
    }

    fn with(pointer: &str, value: Value) -> Value {
        let mut data = base();
        *data.pointer_mut(pointer).unwrap() = value;
        transcription(data)
    }

    fn read(event: Value) -> (Box<crate::PostCallData>, Vec<FieldProblem>) {
        let (request, problems) = PostCallWebhookRequest::from_value_tolerant(event).unwrap();
        let PostCallEvent::Transcription(data) = request.data else {
            panic!("not a transcription")
        };
        (data, problems)
    }

    fn fields(problems: &[FieldProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_valid_event_reads_as_strictly_with_no_problem() {
        let event = transcription(base());
        let strict: PostCallWebhookRequest = serde_json::from_value(event.clone()).unwrap();
        let (tolerant, problems) = PostCallWebhookRequest::from_value_tolerant(event).unwrap();
        assert!(problems.is_empty());
        assert_eq!(tolerant, strict);
    }

    #[test]
    fn a_mistyped_duration_loses_only_the_duration() {
        let (data, problems) = read(with("/metadata/call_duration_secs", json!("x")));
        assert_eq!(fields(&problems), ["data.metadata.call_duration_secs"]);
        assert!(problems[0].reason.contains("invalid type"), "{problems:?}");
        assert_eq!(data.call_duration_secs(), None);
        assert_eq!(data.start_time().unwrap().as_secs(), 1739537297);
        assert_eq!(
            data.transcript_summary(),
            Some("Margaret asked about black spot.")
        );
    }

    #[test]
    fn a_transcript_that_is_text_is_dropped_and_the_rest_kept() {
        let (data, problems) = read(with("/transcript", json!("x")));
        assert_eq!(fields(&problems), ["data.transcript"]);
        assert!(data.transcript.is_empty());
        assert_eq!(data.data_collection_results().count(), 2);
    }

    #[test]
    fn an_analysis_that_is_a_list_is_dropped() {
        let (data, problems) = read(with("/analysis", json!([])));
        assert_eq!(fields(&problems), ["data.analysis"]);
        assert!(data.analysis.is_none());
        assert_eq!(data.transcript.len(), 2);
    }

    #[test]
    fn a_collected_result_that_is_a_number_loses_only_that_field() {
        let (data, problems) = read(with("/analysis/data_collection_results/city", json!(5)));
        assert_eq!(
            fields(&problems),
            ["data.analysis.data_collection_results.city"]
        );
        let kept: Vec<&str> = data.data_collection_results().map(|(k, _)| k).collect();
        assert_eq!(kept, ["first_name"]);
    }

    #[test]
    fn one_bad_turn_loses_only_that_turn() {
        let (data, problems) = read(with("/transcript/0/message", json!(7)));
        assert_eq!(fields(&problems), ["data.transcript[0].message"]);
        assert_eq!(data.transcript.len(), 2);
        assert_eq!(data.transcript[0].message, None);
    }

    #[test]
    fn an_impossible_event_time_is_a_problem_not_a_failure() {
        for bad in [json!(1e30), json!(-5), json!("soon"), json!(1.5)] {
            let mut event = transcription(base());
            event["event_timestamp"] = bad.clone();
            let (request, problems) = PostCallWebhookRequest::from_value_tolerant(event).unwrap();
            assert_eq!(fields(&problems), ["event_timestamp"], "{bad}");
            assert_eq!(request.event_timestamp, None);
        }
    }

    #[test]
    fn many_bad_fields_are_all_reported() {
        let mut data = base();
        data["metadata"]["call_duration_secs"] = json!("x");
        data["metadata"]["start_time_unix_secs"] = json!("y");
        data["transcript"][1]["role"] = json!([]);
        data["has_audio"] = json!("yes");
        let (parsed, problems) = read(transcription(data));
        let mut got = fields(&problems);
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "data.has_audio",
                "data.metadata.call_duration_secs",
                "data.metadata.start_time_unix_secs",
                "data.transcript[1].role",
            ]
        );
        assert_eq!(parsed.conversation_id, "conv_1");
    }

    #[test]
    fn without_what_identifies_the_call_nothing_is_usable() {
        for pointer in ["/conversation_id", "/agent_id"] {
            let mut data = base();
            data.as_object_mut()
                .unwrap()
                .remove(pointer.trim_start_matches('/'));
            let error = PostCallWebhookRequest::from_value_tolerant(transcription(data.clone()))
                .unwrap_err();
            assert_eq!(error.field(), "data", "{pointer}");
            assert!(
                error.to_string().contains(pointer.trim_start_matches('/')),
                "{error}"
            );
        }
        let mistyped = with("/conversation_id", json!(12));
        assert!(PostCallWebhookRequest::from_value_tolerant(mistyped).is_err());
    }

    #[test]
    fn envelopes_that_are_not_events_are_refused_by_name() {
        let cases = [
            (json!([]), "body"),
            (json!({"data": {}}), "type"),
            (json!({"type": 5, "data": {}}), "type"),
            (json!({"type": "post_call_audio", "data": "x"}), "data"),
        ];
        for (event, field) in cases {
            let error = PostCallWebhookRequest::from_value_tolerant(event.clone()).unwrap_err();
            assert_eq!(error.field(), field, "{event}");
        }
    }

    #[test]
    fn unknown_types_keep_their_data_untouched() {
        let event = json!({"type": "post_call_video", "data": {"anything": [1, 2]}});
        let (request, problems) = PostCallWebhookRequest::from_value_tolerant(event).unwrap();
        assert!(problems.is_empty());
        assert_eq!(
            request.data,
            PostCallEvent::Unknown {
                kind: "post_call_video".into(),
                data: json!({"anything": [1, 2]})
            }
        );
    }

    #[test]
    fn every_documented_fixture_reads_without_problems() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/elevenlabs");
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the shared fixtures at {}: {e}", dir.display()));
        let mut seen = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("post_call") || name.starts_with("call_initiation")) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let Ok(strict) = serde_json::from_value::<PostCallWebhookRequest>(value.clone()) else {
                continue;
            };
            let (tolerant, problems) = PostCallWebhookRequest::from_value_tolerant(value).unwrap();
            assert!(problems.is_empty(), "{}: {problems:?}", path.display());
            assert_eq!(tolerant, strict, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 4, "only {seen} post-call fixtures read");
    }
}
