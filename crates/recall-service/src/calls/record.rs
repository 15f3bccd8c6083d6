//! What a call index keeps of a processed event: one set of rules for
//! every implementation.

use recall_model::ui::TranscriptMessage;
use recall_model::{
    AgentId, CallInitiationFailureData, ConversationId, PhoneNumber, PostCallData, UnixTimestamp,
};
use serde_json::Value;

use super::{CallIndexError, ProcessedData, ProcessedEvent};

/// One call as a call index keeps it.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub struct CallRecord {
    /// The conversation.
    pub conversation: ConversationId,
    /// The agent.
    pub agent: AgentId,
    /// Who the call was with, as the service decided.
    pub caller: Option<PhoneNumber>,
    /// Whether the call never connected (`call_initiation_failure`).
    pub initiation_failed: bool,
    /// The conversation's status (`done` when not given); `failed` for a
    /// call that never connected.
    pub status: String,
    /// `metadata.start_time_unix_secs`, else the event's time, else 0.
    pub start_time: UnixTimestamp,
    /// The call's length in whole seconds, when reported.
    pub duration: Option<i64>,
    /// The cost as ElevenLabs reports it.
    pub cost: Option<f64>,
    /// ElevenLabs' summary; for a call that never connected, why.
    pub summary: Option<String>,
    /// A short title.
    pub title: Option<String>,
    /// `call_successful`: `success` is true, `failure` false, else unknown;
    /// false for a call that never connected.
    pub successful: Option<bool>,
    /// The turns the UI shows ([`TranscriptMessage::from_entry`]).
    pub transcript: Vec<TranscriptMessage>,
    /// The values collected, `(field id, value)`, nulls left out.
    pub collected: Vec<(String, Value)>,
}

impl CallRecord {
    /// The row an event makes; `None` for events that are not a call
    /// (audio, unknown types).
    ///
    /// # Errors
    /// [`CallIndexError::InvalidEvent`] when the agent id is missing or
    /// invalid.
    pub fn from_event(event: &ProcessedEvent) -> Result<Option<Self>, CallIndexError> {
        match &event.data {
            ProcessedData::Transcription(data) => transcription(event, data).map(Some),
            ProcessedData::InitiationFailure(data) => initiation_failure(event, data).map(Some),
            _ => Ok(None),
        }
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn agent(raw: Option<&str>) -> Result<AgentId, CallIndexError> {
    let raw =
        raw.ok_or_else(|| CallIndexError::InvalidEvent("data.agent_id is required".into()))?;
    AgentId::parse(raw).map_err(|e| CallIndexError::InvalidEvent(e.to_string()))
}

fn time_or_epoch(time: Option<UnixTimestamp>) -> UnixTimestamp {
    time.filter(|t| t.as_secs() >= 0)
        .or_else(|| UnixTimestamp::from_secs(0).ok())
        .expect("the epoch is a valid time")
}

fn transcription(
    event: &ProcessedEvent,
    data: &PostCallData,
) -> Result<CallRecord, CallIndexError> {
    let metadata = data.metadata.as_ref();
    let analysis = data.analysis.as_ref();
    Ok(CallRecord {
        conversation: event.conversation.clone(),
        agent: agent(Some(&data.agent_id))?,
        caller: event.caller.clone(),
        initiation_failed: false,
        status: non_empty(data.status.as_deref()).unwrap_or_else(|| "done".to_owned()),
        start_time: time_or_epoch(data.start_time().or(event.event_time)),
        duration: metadata
            .and_then(|m| m.call_duration_secs)
            .map(|secs| secs as i64),
        cost: metadata.and_then(|m| m.cost),
        summary: non_empty(analysis.and_then(|a| a.transcript_summary.as_deref())),
        title: non_empty(analysis.and_then(|a| a.call_summary_title.as_deref())),
        successful: analysis.and_then(recall_model::Analysis::successful),
        transcript: data
            .transcript
            .iter()
            .filter_map(TranscriptMessage::from_entry)
            .collect(),
        collected: data
            .collected_values()
            .map(|(field, value)| (field.to_owned(), value.clone()))
            .collect(),
    })
}

fn initiation_failure(
    event: &ProcessedEvent,
    data: &CallInitiationFailureData,
) -> Result<CallRecord, CallIndexError> {
    let reason = non_empty(data.failure_reason.as_deref()).unwrap_or_else(|| "unknown".into());
    Ok(CallRecord {
        conversation: event.conversation.clone(),
        agent: agent(data.agent_id.as_deref())?,
        caller: event.caller.clone(),
        initiation_failed: true,
        status: "failed".to_owned(),
        start_time: time_or_epoch(event.event_time),
        duration: None,
        cost: None,
        summary: Some(format!("The call could not be started: {reason}.")),
        title: Some(format!("Call not connected ({reason})")),
        successful: Some(false),
        transcript: Vec::new(),
        collected: Vec::new(),
    })
}
