//! What Recall keeps of a stored event once its transcript and personal
//! data, or its audio, are deleted: one rule, for every event log.
//!
//! A redacted body is still an event of its type: it keeps the call's
//! figures (agent, status, start time, duration, cost, success), so that
//! the call stays in the analytics and `recall reindex` rebuilds the same
//! row, and the caller Recall attributed the call to, which links the call
//! to the caller's profile until the caller is erased. Everything else
//! goes: the transcript, the analysis (summary, title, collected values),
//! the dynamic variables, the telephony details, the audio.

use recall_model::{PhoneNumber, WebhookType};
use serde_json::{Map, Value, json};

/// The redacted form of a stored body of type `kind` (see the
/// [module](self)); `caller` is the caller Recall attributed the call to.
///
/// ```
/// use recall_model::{PhoneNumber, WebhookType};
/// use serde_json::json;
///
/// let body = json!({"type": "post_call_transcription", "event_timestamp": 1739537297,
///     "data": {"agent_id": "a1", "conversation_id": "c1", "status": "done",
///         "transcript": [{"role": "user", "message": "I'm Margaret"}],
///         "metadata": {"start_time_unix_secs": 1739537000, "call_duration_secs": 22, "cost": 296},
///         "analysis": {"call_successful": "success", "transcript_summary": "Margaret called."}}});
/// let caller = PhoneNumber::parse("+16129782029").unwrap();
/// let kept = recall_service::redact::redacted_body(&WebhookType::PostCallTranscription, &body, Some(&caller));
/// assert_eq!(kept["data"]["metadata"]["call_duration_secs"], 22);
/// assert_eq!(kept["data"]["analysis"], json!({"call_successful": "success"}));
/// assert!(kept["data"].get("transcript").is_none());
/// assert!(!kept.to_string().contains("Margaret"));
/// ```
pub fn redacted_body(kind: &WebhookType, body: &Value, caller: Option<&PhoneNumber>) -> Value {
    let data = body.get("data");
    let mut kept = Map::new();
    for key in ["agent_id", "conversation_id"] {
        copy(data, key, &mut kept);
    }
    match kind {
        WebhookType::PostCallTranscription => {
            copy(data, "status", &mut kept);
            let metadata = data.and_then(|d| d.get("metadata"));
            let mut figures = Map::new();
            for key in [
                "start_time_unix_secs",
                "call_duration_secs",
                "cost",
                "deletion_settings",
            ] {
                copy(metadata, key, &mut figures);
            }
            kept.insert("metadata".into(), Value::Object(figures));
            let analysis = data.and_then(|d| d.get("analysis"));
            let mut outcome = Map::new();
            copy(analysis, "call_successful", &mut outcome);
            kept.insert("analysis".into(), Value::Object(outcome));
            if let Some(caller) = caller {
                kept.insert(
                    "conversation_initiation_client_data".into(),
                    json!({"dynamic_variables": {"system__caller_id": caller.as_str()}}),
                );
            }
        }
        WebhookType::CallInitiationFailure => {
            copy(data, "failure_reason", &mut kept);
            if let Some(caller) = caller {
                kept.insert(
                    "metadata".into(),
                    json!({"type": "sip", "body": {"to_number": caller.as_str()}}),
                );
            }
        }
        WebhookType::PostCallAudio | WebhookType::Unknown(_) => {}
    }
    let mut out = Map::new();
    out.insert("type".into(), Value::String(kind.as_str().to_owned()));
    copy(Some(body), "event_timestamp", &mut out);
    out.insert("data".into(), Value::Object(kept));
    Value::Object(out)
}

fn copy(from: Option<&Value>, key: &str, to: &mut Map<String, Value>) {
    if let Some(value) = from.and_then(|f| f.get(key)).filter(|v| !v.is_null()) {
        to.insert(key.to_owned(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recall_model::{ConversationId, PostCallWebhookRequest};

    use crate::calls::CallRecord;
    use crate::{ProcessedData, ProcessedEvent};

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../../shared/fixtures/elevenlabs/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn processed(body: &Value) -> ProcessedEvent {
        let id = ConversationId::parse(body["data"]["conversation_id"].as_str().unwrap()).unwrap();
        let (request, _) = PostCallWebhookRequest::from_value_tolerant(body.clone()).unwrap();
        ProcessedEvent::from_request(id, request)
    }

    #[test]
    fn a_redacted_transcription_indexes_the_same_figures_without_content() {
        let body = fixture("post_call_transcription.docs-example.json");
        let full = processed(&body);
        let caller = full.caller.clone();
        let redacted = redacted_body(&WebhookType::PostCallTranscription, &body, caller.as_ref());
        let kept = processed(&redacted);
        assert_eq!(kept.caller, full.caller);
        let (full, kept) = (
            CallRecord::from_event(&full).unwrap().unwrap(),
            CallRecord::from_event(&kept).unwrap().unwrap(),
        );
        assert_eq!(
            (kept.start_time, kept.duration, kept.cost, kept.successful),
            (full.start_time, full.duration, full.cost, full.successful)
        );
        assert_eq!((&kept.agent, &kept.status), (&full.agent, &full.status));
        assert!(!full.transcript.is_empty());
        assert!(kept.transcript.is_empty() && kept.collected.is_empty());
        assert_eq!((kept.summary, kept.title), (None, None));
        // The schedule stays readable, the content is gone.
        assert!(redacted["data"]["metadata"]["deletion_settings"].is_object());
        let text = redacted.to_string();
        for entry in body["data"]["transcript"].as_array().unwrap() {
            if let Some(message) = entry["message"].as_str().filter(|m| m.len() > 12) {
                assert!(!text.contains(message), "{message}");
            }
        }
    }

    #[test]
    fn a_redacted_failure_keeps_its_reason_and_party() {
        let body = fixture("call_initiation_failure.twilio.docs-example.json");
        let full = processed(&body);
        let redacted = redacted_body(
            &WebhookType::CallInitiationFailure,
            &body,
            full.caller.as_ref(),
        );
        let kept = processed(&redacted);
        assert_eq!(kept.caller, full.caller);
        assert!(matches!(kept.data, ProcessedData::InitiationFailure(_)));
        assert_eq!(
            CallRecord::from_event(&kept).unwrap().unwrap().summary,
            CallRecord::from_event(&full).unwrap().unwrap().summary
        );
        assert!(!redacted.to_string().contains("CallSid"));
    }

    #[test]
    fn a_redacted_audio_event_holds_no_audio() {
        let body = fixture("post_call_audio.docs-example.json");
        let redacted = redacted_body(&WebhookType::PostCallAudio, &body, None);
        assert!(redacted["data"].get("full_audio").is_none());
        assert_eq!(
            redacted["data"]["conversation_id"],
            body["data"]["conversation_id"]
        );
        assert_eq!(redacted["type"], "post_call_audio");
    }
}
