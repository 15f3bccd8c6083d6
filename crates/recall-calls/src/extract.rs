//! What the index keeps of a processed event: typed data from the
//! service, whose caller is already decided by the service's one caller
//! rule. Nothing here reads payload files or JSON.

use recall_model::ui::TranscriptMessage;
use recall_model::{AgentId, CallInitiationFailureData, ConversationId, PhoneNumber, PostCallData};
use recall_service::{ProcessedData, ProcessedEvent};
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

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn agent(raw: Option<&str>) -> Result<AgentId, CallsError> {
    let raw = raw.ok_or_else(|| CallsError::InvalidEvent("data.agent_id is required".into()))?;
    AgentId::parse(raw).map_err(|e| CallsError::InvalidEvent(e.to_string()))
}

impl CallRecord {
    /// The row an event makes; `None` for events that are not a call
    /// (audio, unknown types).
    pub(crate) fn from_event(event: &ProcessedEvent) -> Result<Option<Self>, CallsError> {
        match &event.data {
            ProcessedData::Transcription(data) => transcription(event, data).map(Some),
            ProcessedData::InitiationFailure(data) => initiation_failure(event, data).map(Some),
            _ => Ok(None),
        }
    }
}

/// A connected call (`post_call_transcription`).
fn transcription(event: &ProcessedEvent, data: &PostCallData) -> Result<CallRecord, CallsError> {
    let metadata = data.metadata.as_ref();
    let analysis = data.analysis.as_ref();
    let start_time = data
        .start_time()
        .or(event.event_time)
        .map_or(0, |t| t.as_secs().max(0));
    let transcript = data
        .transcript
        .iter()
        .filter_map(TranscriptMessage::from_entry)
        .map(|turn| Turn {
            role: turn.role.as_str().to_owned(),
            message: turn.message,
            time_in_call_secs: turn.time_in_call_secs,
            interrupted: turn.interrupted,
        })
        .collect();
    let data_collected = data
        .collected_values()
        .map(|(field, value)| (field.to_owned(), value.clone()))
        .collect();
    Ok(CallRecord {
        conversation_id: event.conversation.clone(),
        agent_id: agent(Some(&data.agent_id))?,
        caller: event.caller.clone(),
        kind: Kind::Transcription,
        status: non_empty(data.status.as_deref()).unwrap_or_else(|| "done".to_owned()),
        start_time,
        duration: metadata
            .and_then(|m| m.call_duration_secs)
            .map(|secs| secs as i64),
        cost: metadata.and_then(|m| m.cost),
        summary: non_empty(analysis.and_then(|a| a.transcript_summary.as_deref())),
        title: non_empty(analysis.and_then(|a| a.call_summary_title.as_deref())),
        successful: analysis.and_then(recall_model::Analysis::successful),
        transcript,
        data_collected,
    })
}

/// A call that never connected (`call_initiation_failure`).
fn initiation_failure(
    event: &ProcessedEvent,
    data: &CallInitiationFailureData,
) -> Result<CallRecord, CallsError> {
    let reason = non_empty(data.failure_reason.as_deref()).unwrap_or_else(|| "unknown".into());
    Ok(CallRecord {
        conversation_id: event.conversation.clone(),
        agent_id: agent(data.agent_id.as_deref())?,
        caller: event.caller.clone(),
        kind: Kind::InitiationFailure,
        status: "failed".to_owned(),
        start_time: event.event_time.map_or(0, |t| t.as_secs().max(0)),
        duration: None,
        cost: None,
        summary: Some(format!("The call could not be started: {reason}.")),
        title: Some(format!("Call not connected ({reason})")),
        successful: Some(false),
        transcript: Vec::new(),
        data_collected: Vec::new(),
    })
}
