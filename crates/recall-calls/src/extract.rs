//! Reading what the index keeps out of a stored post-call event.
//!
//! Events are read as raw JSON, tolerantly: every field may be absent or
//! `null`, unknown fields are ignored, and only `conversation_id` and
//! `agent_id` are required (validated as [`ConversationId`] and
//! [`AgentId`]).

use recall_model::{AgentId, ConversationId, PhoneNumber, classify_caller_id};
use serde_json::Value;

use crate::{CallsError, Turn};

/// What kind of row a call is in the index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// A `post_call_transcription`: the call connected.
    Transcription,
    /// A `call_initiation_failure`: the call never connected.
    InitiationFailure,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Transcription => "transcription",
            Kind::InitiationFailure => "initiation_failure",
        }
    }
}

/// One call as the index keeps it.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct CallRecord {
    pub(crate) conversation_id: ConversationId,
    pub(crate) agent_id: AgentId,
    pub(crate) caller: Option<PhoneNumber>,
    pub(crate) kind: Kind,
    pub(crate) status: String,
    pub(crate) start_time: i64,
    pub(crate) duration: Option<i64>,
    pub(crate) cost: Option<f64>,
    pub(crate) summary: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) successful: Option<bool>,
    pub(crate) transcript: Vec<Turn>,
    pub(crate) data_collected: Vec<(String, Value)>,
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn int_at(value: &Value, pointer: &str) -> Option<i64> {
    let v = value.pointer(pointer)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The event's `data` object, whether given the whole envelope or `data`.
fn data_of(event: &Value) -> &Value {
    match event.get("data") {
        Some(data) if data.is_object() => data,
        _ => event,
    }
}

fn ids(data: &Value) -> Result<(ConversationId, AgentId), CallsError> {
    let conversation = str_at(data, "/conversation_id")
        .ok_or_else(|| CallsError::InvalidEvent("data.conversation_id is required".into()))?;
    let conversation =
        ConversationId::parse(conversation).map_err(|e| CallsError::InvalidEvent(e.to_string()))?;
    let agent = str_at(data, "/agent_id")
        .ok_or_else(|| CallsError::InvalidEvent("data.agent_id is required".into()))?;
    let agent = AgentId::parse(agent).map_err(|e| CallsError::InvalidEvent(e.to_string()))?;
    Ok((conversation, agent))
}

/// The caller of a transcription event: the `system__caller_id` dynamic
/// variable, else `metadata.phone_call.external_number`. Withheld or
/// malformed ids give `None`.
pub(crate) fn transcription_caller(data: &Value) -> Option<PhoneNumber> {
    let from_variables = str_at(
        data,
        "/conversation_initiation_client_data/dynamic_variables/system__caller_id",
    );
    classify_caller_id(from_variables)
        .ok()
        .or_else(|| classify_caller_id(str_at(data, "/metadata/phone_call/external_number")).ok())
}

/// The other party of a call that failed to start: for Twilio, `To` on an
/// outbound call and `From` otherwise; for SIP, `to_number` (ElevenLabs
/// reports initiation failures for the calls it places).
pub(crate) fn failure_caller(data: &Value) -> Option<PhoneNumber> {
    let kind = str_at(data, "/metadata/type");
    let raw = match kind {
        Some("twilio") => {
            let outbound =
                str_at(data, "/metadata/body/Direction").is_none_or(|d| d.starts_with("outbound"));
            if outbound {
                str_at(data, "/metadata/body/To")
            } else {
                str_at(data, "/metadata/body/From")
            }
        }
        _ => str_at(data, "/metadata/body/to_number"),
    };
    classify_caller_id(raw).ok()
}

/// Who an indexed call belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Caller<'a> {
    /// Read from the event by [`transcription_caller`] / [`failure_caller`].
    FromEvent,
    /// Decided elsewhere (by the service that wrote the memories); `None`
    /// means the call has no caller identity.
    Decided(Option<&'a PhoneNumber>),
}

impl Caller<'_> {
    /// The caller, reading the event with `rule` only when not decided.
    fn resolve(self, rule: impl FnOnce() -> Option<PhoneNumber>) -> Option<PhoneNumber> {
        match self {
            Caller::FromEvent => rule(),
            Caller::Decided(caller) => caller.cloned(),
        }
    }
}

/// Reads a `post_call_transcription` event (envelope or `data`).
pub(crate) fn transcription(event: &Value, caller: Caller<'_>) -> Result<CallRecord, CallsError> {
    let data = data_of(event);
    let (conversation_id, agent_id) = ids(data)?;
    let start_time = int_at(data, "/metadata/start_time_unix_secs")
        .or_else(|| int_at(event, "/event_timestamp"))
        .unwrap_or(0)
        .max(0);
    let successful = match str_at(data, "/analysis/call_successful") {
        Some("success") => Some(true),
        Some("failure") => Some(false),
        _ => None,
    };
    let transcript = data
        .get("transcript")
        .and_then(Value::as_array)
        .map(|turns| turns.iter().filter_map(turn).collect())
        .unwrap_or_default();
    let data_collected = data
        .pointer("/analysis/data_collection_results")
        .and_then(Value::as_object)
        .map(|results| {
            results
                .iter()
                .filter_map(|(key, result)| {
                    let value = result.get("value")?;
                    if value.is_null() {
                        return None;
                    }
                    let field = str_at(result, "/data_collection_id").unwrap_or(key);
                    Some((field.to_owned(), value.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CallRecord {
        caller: caller.resolve(|| transcription_caller(data)),
        conversation_id,
        agent_id,
        kind: Kind::Transcription,
        status: non_empty(str_at(data, "/status")).unwrap_or_else(|| "done".to_owned()),
        start_time,
        duration: int_at(data, "/metadata/call_duration_secs"),
        cost: data.pointer("/metadata/cost").and_then(Value::as_f64),
        summary: non_empty(str_at(data, "/analysis/transcript_summary")),
        title: non_empty(str_at(data, "/analysis/call_summary_title")),
        successful,
        transcript,
        data_collected,
    })
}

fn turn(raw: &Value) -> Option<Turn> {
    let role = match str_at(raw, "/role")? {
        "agent" => "agent",
        "user" => "user",
        _ => return None,
    };
    let message = non_empty(str_at(raw, "/message"))?;
    Some(Turn {
        role: role.to_owned(),
        message,
        time_in_call_secs: raw
            .get("time_in_call_secs")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        interrupted: raw
            .get("interrupted")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Reads a `call_initiation_failure` event (envelope or `data`).
pub(crate) fn initiation_failure(
    event: &Value,
    caller: Caller<'_>,
) -> Result<CallRecord, CallsError> {
    let data = data_of(event);
    let (conversation_id, agent_id) = ids(data)?;
    let reason = non_empty(str_at(data, "/failure_reason")).unwrap_or_else(|| "unknown".into());
    Ok(CallRecord {
        caller: caller.resolve(|| failure_caller(data)),
        conversation_id,
        agent_id,
        kind: Kind::InitiationFailure,
        status: "failed".to_owned(),
        start_time: int_at(event, "/event_timestamp").unwrap_or(0).max(0),
        duration: None,
        cost: None,
        summary: Some(format!("The call could not be started: {reason}.")),
        title: Some(format!("Call not connected ({reason})")),
        successful: Some(false),
        transcript: Vec::new(),
        data_collected: Vec::new(),
    })
}
