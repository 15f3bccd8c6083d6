//! The post-call webhook: one signed envelope per event,
//! `{type, event_timestamp, data}`, where `data` depends on `type`.
//!
//! These are tolerant wire types. Fields real payloads may omit are
//! `Option` (or default to empty when a list or map), `null` is accepted
//! wherever ElevenLabs sends it, and unknown fields are kept in each
//! struct's `extra` so that re-serializing loses nothing. Ids stay plain
//! strings here; the accessors ([`PostCallData::conversation`],
//! [`PostCallData::agent`]) validate them into [`ConversationId`] and
//! [`AgentId`].
//!
//! ```
//! use recall_model::{PostCallEvent, PostCallWebhookRequest, WebhookType};
//! let body = r#"{"type":"post_call_audio","event_timestamp":1739537319,
//!   "data":{"agent_id":"xyz","conversation_id":"abc","full_audio":"SUQz"}}"#;
//! let req: PostCallWebhookRequest = serde_json::from_str(body).unwrap();
//! assert_eq!(req.webhook_type(), WebhookType::PostCallAudio);
//! let PostCallEvent::Audio(audio) = &req.data else { panic!() };
//! assert_eq!(audio.full_audio.as_deref(), Some("SUQz"));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::wire::{Tagged, null_as_default, without_type};
use crate::{
    AgentId, ConversationConfigOverride, ConversationId, NoIdentity, PhoneNumber, UnixTimestamp,
    ValueError, WebhookType, classify_caller_id,
};

// ---------------------------------------------------------------------------
// Envelope

/// A whole post-call webhook body. `data` is parsed according to the
/// envelope's `type`; a type this version does not know is kept as
/// [`PostCallEvent::Unknown`] with its raw data, never dropped.
#[derive(Clone, PartialEq, Debug)]
pub struct PostCallWebhookRequest {
    /// When ElevenLabs emitted the event, unix seconds (validate with
    /// [`Self::event_time`]).
    pub event_timestamp: Option<i64>,
    /// The event's data, by type.
    pub data: PostCallEvent,
    /// Other top-level fields, kept as received.
    pub extra: Map<String, Value>,
}

impl PostCallWebhookRequest {
    /// The envelope's `type`.
    pub fn webhook_type(&self) -> WebhookType {
        self.data.webhook_type()
    }

    /// The event time, validated.
    pub fn event_time(&self) -> Result<UnixTimestamp, ValueError> {
        match self.event_timestamp {
            Some(secs) => UnixTimestamp::from_secs(secs),
            None => Err(ValueError::new("event_timestamp", "is required", "")),
        }
    }
}

/// The `data` of a post-call event, chosen by the envelope's `type`.
#[derive(Clone, PartialEq, Debug)]
pub enum PostCallEvent {
    /// `post_call_transcription`: transcript, analysis and metadata.
    Transcription(Box<PostCallData>),
    /// `post_call_audio`: the whole call as base64 MP3.
    Audio(PostCallAudioData),
    /// `call_initiation_failure`: the call never connected.
    InitiationFailure(CallInitiationFailureData),
    /// A type this version does not know, with its data as received.
    Unknown {
        /// The envelope's `type`.
        kind: String,
        /// The raw `data`.
        data: Value,
    },
}

impl PostCallEvent {
    /// The `type` this data belongs to.
    pub fn webhook_type(&self) -> WebhookType {
        match self {
            Self::Transcription(_) => WebhookType::PostCallTranscription,
            Self::Audio(_) => WebhookType::PostCallAudio,
            Self::InitiationFailure(_) => WebhookType::CallInitiationFailure,
            Self::Unknown { kind, .. } => WebhookType::parse(kind),
        }
    }

    /// The conversation id as sent, if the data has one.
    pub fn conversation_id(&self) -> Option<&str> {
        match self {
            Self::Transcription(d) => Some(&d.conversation_id),
            Self::Audio(d) => d.conversation_id.as_deref(),
            Self::InitiationFailure(d) => d.conversation_id.as_deref(),
            Self::Unknown { data, .. } => data.get("conversation_id").and_then(Value::as_str),
        }
    }

    /// The agent id as sent, if the data has one.
    pub fn agent_id(&self) -> Option<&str> {
        match self {
            Self::Transcription(d) => Some(&d.agent_id),
            Self::Audio(d) => d.agent_id.as_deref(),
            Self::InitiationFailure(d) => d.agent_id.as_deref(),
            Self::Unknown { data, .. } => data.get("agent_id").and_then(Value::as_str),
        }
    }
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    event_timestamp: Option<i64>,
    #[serde(default)]
    data: Value,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for PostCallWebhookRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = RawEnvelope::deserialize(d)?;
        let kind = WebhookType::parse(&raw.kind);
        let in_data = |e: serde_json::Error| D::Error::custom(format!("{kind} data: {e}"));
        let data = match kind {
            WebhookType::PostCallTranscription => PostCallEvent::Transcription(Box::new(
                serde_json::from_value(raw.data).map_err(in_data)?,
            )),
            WebhookType::PostCallAudio => {
                PostCallEvent::Audio(serde_json::from_value(raw.data).map_err(in_data)?)
            }
            WebhookType::CallInitiationFailure => {
                PostCallEvent::InitiationFailure(serde_json::from_value(raw.data).map_err(in_data)?)
            }
            WebhookType::Unknown(kind) => PostCallEvent::Unknown {
                kind,
                data: raw.data,
            },
        };
        Ok(Self {
            event_timestamp: raw.event_timestamp,
            data,
            extra: raw.extra,
        })
    }
}

impl Serialize for PostCallWebhookRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a, T: Serialize> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            event_timestamp: Option<i64>,
            data: &'a T,
            #[serde(flatten)]
            extra: &'a Map<String, Value>,
        }
        let kind = self.webhook_type();
        macro_rules! emit {
            ($data:expr) => {
                Out {
                    kind: kind.as_str(),
                    event_timestamp: self.event_timestamp,
                    data: $data,
                    extra: &self.extra,
                }
                .serialize(s)
            };
        }
        match &self.data {
            PostCallEvent::Transcription(d) => emit!(d.as_ref()),
            PostCallEvent::Audio(d) => emit!(d),
            PostCallEvent::InitiationFailure(d) => emit!(d),
            PostCallEvent::Unknown { data, .. } => emit!(data),
        }
    }
}

// ---------------------------------------------------------------------------
// post_call_transcription

/// The `data` of a `post_call_transcription` event.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct PostCallData {
    /// The agent's id (required).
    pub agent_id: String,
    /// The conversation's id (required).
    pub conversation_id: String,
    /// `initiated`, `in-progress`, `processing`, `done` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    /// The user id the conversation was started with, if any.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The agent branch.
    #[serde(default)]
    pub branch_id: Option<String>,
    /// The agent version.
    #[serde(default)]
    pub version_id: Option<String>,
    /// The agent's name.
    #[serde(default)]
    pub agent_name: Option<String>,
    /// Whether audio was recorded (often absent).
    #[serde(default)]
    pub has_audio: Option<bool>,
    /// Whether the caller's audio was recorded (often absent).
    #[serde(default)]
    pub has_user_audio: Option<bool>,
    /// Whether the agent's audio was recorded (often absent).
    #[serde(default)]
    pub has_response_audio: Option<bool>,
    /// The turns of the conversation, in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub transcript: Vec<TranscriptEntry>,
    /// Timing, cost, telephony and settings of the call.
    #[serde(default)]
    pub metadata: Option<CallMetadata>,
    /// ElevenLabs' analysis of the call.
    #[serde(default)]
    pub analysis: Option<Analysis>,
    /// What the conversation was started with (dynamic variables, overrides).
    #[serde(default)]
    pub conversation_initiation_client_data: Option<ConversationInitiationClientData>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PostCallData {
    /// The validated conversation id; an error names `conversation_id`.
    pub fn conversation(&self) -> Result<ConversationId, ValueError> {
        ConversationId::parse(&self.conversation_id)
    }

    /// The validated agent id; an error names `agent_id`.
    pub fn agent(&self) -> Result<AgentId, ValueError> {
        AgentId::parse(&self.agent_id)
    }

    /// The raw `system__caller_id` dynamic variable, if it is a string.
    pub fn system_caller_id(&self) -> Option<&str> {
        self.conversation_initiation_client_data
            .as_ref()?
            .dynamic_variables
            .get("system__caller_id")?
            .as_str()
    }

    /// The telephony details, if this was a phone call.
    pub fn phone_call(&self) -> Option<&PhoneCallInfo> {
        self.metadata.as_ref()?.phone_call.as_ref()
    }

    /// Whether the call was inbound; `None` when unknown (not a phone
    /// call, or no direction given).
    pub fn is_inbound(&self) -> Option<bool> {
        self.phone_call()?.is_inbound()
    }

    /// The caller's identity: the person this call was with, and the key
    /// their memories are kept under. This is Recall's one caller rule,
    /// used when an event is processed and when the index is rebuilt.
    ///
    /// * On an outbound call (the agent rang them) the person is the
    ///   external number: `system__caller_id` there is the agent's own line.
    /// * Otherwise `system__caller_id` comes first. When it is absent,
    ///   empty, an unrendered placeholder or malformed, the external number
    ///   of an inbound phone call is used instead, else `user_id` (the
    ///   event's, then the initiation data's) when it is an E.164 number.
    /// * A withheld caller id is final: it is never replaced.
    /// * The agent's own number is never a caller: keying memories under it
    ///   would pool every customer together ([`NoIdentity::Malformed`]).
    ///
    /// Otherwise the reason from `system__caller_id` is returned.
    ///
    /// ```
    /// use recall_model::{NoIdentity, PostCallData};
    /// let data: PostCallData = serde_json::from_str(r#"{
    ///   "agent_id":"a","conversation_id":"c",
    ///   "metadata":{"phone_call":{"type":"twilio","direction":"inbound",
    ///     "external_number":"+16129782029","agent_number":"+15550001111"}},
    ///   "conversation_initiation_client_data":{
    ///     "dynamic_variables":{"system__caller_id":"{{system__caller_id}}"}}
    /// }"#).unwrap();
    /// assert_eq!(data.caller().unwrap().as_str(), "+16129782029");
    /// ```
    pub fn caller(&self) -> Result<PhoneNumber, NoIdentity> {
        let call = self.phone_call();
        let agent_number = call.and_then(PhoneCallInfo::agent_number).map(str::trim);
        let found = if call.and_then(PhoneCallInfo::is_inbound) == Some(false) {
            classify_caller_id(call.and_then(PhoneCallInfo::external_number))
        } else {
            match self.inbound_caller() {
                Ok(number) => Ok(number),
                Err(NoIdentity::Withheld) => Err(NoIdentity::Withheld),
                Err(reason) => [
                    self.user_id.as_deref(),
                    self.conversation_initiation_client_data
                        .as_ref()
                        .and_then(|c| c.user_id.as_deref()),
                ]
                .into_iter()
                .flatten()
                .find_map(|raw| classify_caller_id(Some(raw)).ok())
                .ok_or(reason),
            }
        };
        match found {
            Ok(number) if Some(number.as_str()) == agent_number => Err(NoIdentity::Malformed),
            other => other,
        }
    }

    /// `system__caller_id`, else the external number of an inbound call.
    fn inbound_caller(&self) -> Result<PhoneNumber, NoIdentity> {
        match classify_caller_id(self.system_caller_id()) {
            Ok(number) => Ok(number),
            Err(NoIdentity::Withheld) => Err(NoIdentity::Withheld),
            Err(reason) => {
                let inbound_external = self
                    .phone_call()
                    .filter(|call| call.is_inbound() == Some(true))
                    .and_then(PhoneCallInfo::external_number);
                match inbound_external {
                    Some(raw) => match classify_caller_id(Some(raw)) {
                        Ok(number) => Ok(number),
                        Err(NoIdentity::Withheld) => Err(NoIdentity::Withheld),
                        Err(_) => Err(reason),
                    },
                    None => Err(reason),
                }
            }
        }
    }

    /// When the call started, validated; `None` when absent or invalid.
    pub fn start_time(&self) -> Option<UnixTimestamp> {
        UnixTimestamp::from_secs(self.metadata.as_ref()?.start_time_unix_secs?).ok()
    }

    /// The call's length in seconds, if known.
    pub fn call_duration_secs(&self) -> Option<f64> {
        self.metadata.as_ref()?.call_duration_secs
    }

    /// ElevenLabs' summary of the transcript, if any and not blank.
    pub fn transcript_summary(&self) -> Option<&str> {
        self.analysis
            .as_ref()?
            .transcript_summary
            .as_deref()
            .filter(|s| !s.trim().is_empty())
    }

    /// The data-collection results (empty when there is no analysis).
    pub fn data_collection_results(&self) -> impl Iterator<Item = (&str, &DataCollectionResult)> {
        self.analysis
            .iter()
            .flat_map(|a| a.data_collection_results.iter())
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The values collected by the analysis, as `(field id, value)`: the
    /// field id is `data_collection_id`, else the result's key; `null`
    /// values (nothing collected) are left out. Analytics count these.
    pub fn collected_values(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.data_collection_results()
            .filter(|(_, result)| !result.value.is_null())
            .map(|(key, result)| {
                let field = if result.data_collection_id.is_empty() {
                    key
                } else {
                    result.data_collection_id.as_str()
                };
                (field, &result.value)
            })
    }
}

/// Who spoke a transcript turn. Roles this version does not know are kept.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum TranscriptRole {
    /// The caller.
    User,
    /// The agent.
    Agent,
    /// Any other role, as received (empty when absent).
    Other(String),
}

impl Default for TranscriptRole {
    fn default() -> Self {
        Self::Other(String::new())
    }
}

impl TranscriptRole {
    /// Classifies a raw role; never fails.
    pub fn parse(raw: &str) -> Self {
        match raw {
            "user" => Self::User,
            "agent" => Self::Agent,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
            Self::Other(raw) => raw,
        }
    }
}

impl Serialize for TranscriptRole {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TranscriptRole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<std::borrow::Cow<'de, str>>::deserialize(d)?
            .map(|raw| Self::parse(&raw))
            .unwrap_or_default())
    }
}

/// One turn of the transcript.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// Who spoke.
    #[serde(default)]
    pub role: TranscriptRole,
    /// What was said; null for turns that are only tool calls.
    #[serde(default)]
    pub message: Option<String>,
    /// Seconds since the call started (whole seconds in practice).
    #[serde(default)]
    pub time_in_call_secs: Option<f64>,
    /// Tool calls the agent made in this turn.
    #[serde(default)]
    pub tool_calls: Option<Vec<Value>>,
    /// Results of those tool calls.
    #[serde(default)]
    pub tool_results: Option<Vec<Value>>,
    /// The caller's feedback on this turn.
    #[serde(default)]
    pub feedback: Option<Value>,
    /// Whether the turn was interrupted.
    #[serde(default)]
    pub interrupted: Option<bool>,
    /// `audio` or `text`.
    #[serde(default)]
    pub source_medium: Option<String>,
    /// LLM token usage for the turn.
    #[serde(default)]
    pub llm_usage: Option<Value>,
    /// Which agent, branch and workflow node spoke.
    #[serde(default)]
    pub agent_metadata: Option<AgentMetadata>,
    /// Latency metrics of the turn.
    #[serde(default)]
    pub conversation_turn_metrics: Option<ConversationTurnMetrics>,
    /// The message before any rewriting.
    #[serde(default)]
    pub original_message: Option<String>,
    /// What knowledge-base retrieval found.
    #[serde(default)]
    pub rag_retrieval_info: Option<Value>,
    /// Multi-voice details.
    #[serde(default)]
    pub multivoice_message: Option<Value>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which agent spoke a turn.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct AgentMetadata {
    /// The agent's id.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The agent branch.
    #[serde(default)]
    pub branch_id: Option<String>,
    /// The workflow node.
    #[serde(default)]
    pub workflow_node_id: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How a turn's metrics were written.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum TurnMetricsShape {
    /// Metrics directly in the object:
    /// `{"convai_llm_service_ttfb": {"elapsed_time": 0.37}}`.
    #[default]
    Flat,
    /// Metrics under a `metrics` key:
    /// `{"metrics": {"convai_llm_service_ttfb": {"elapsed_time": 0.37}}}`.
    Nested,
}

/// A turn's latency metrics. Both shapes ElevenLabs sends are accepted;
/// [`metrics`](Self::metrics) holds them the same way for either, and
/// serializing writes the shape that was read.
///
/// ```
/// use recall_model::ConversationTurnMetrics;
/// let flat: ConversationTurnMetrics =
///     serde_json::from_str(r#"{"convai_llm_service_ttfb":{"elapsed_time":0.37}}"#).unwrap();
/// let nested: ConversationTurnMetrics =
///     serde_json::from_str(r#"{"metrics":{"convai_llm_service_ttfb":{"elapsed_time":0.37}}}"#).unwrap();
/// assert_eq!(flat.elapsed_secs("convai_llm_service_ttfb"), Some(0.37));
/// assert_eq!(nested.elapsed_secs("convai_llm_service_ttfb"), Some(0.37));
/// ```
#[derive(Clone, PartialEq, Debug, Default)]
pub struct ConversationTurnMetrics {
    /// The shape that was read (and will be written).
    pub shape: TurnMetricsShape,
    /// Metric name → its value (usually `{"elapsed_time": seconds}`).
    pub metrics: Map<String, Value>,
}

impl ConversationTurnMetrics {
    /// The `elapsed_time` of a metric, in seconds.
    pub fn elapsed_secs(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric)?.get("elapsed_time")?.as_f64()
    }

    /// Time to the LLM's first byte (`convai_llm_service_ttfb`), in seconds.
    pub fn llm_ttfb_secs(&self) -> Option<f64> {
        self.elapsed_secs("convai_llm_service_ttfb")
    }
}

impl Serialize for ConversationTurnMetrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.shape {
            TurnMetricsShape::Flat => self.metrics.serialize(s),
            TurnMetricsShape::Nested => {
                #[derive(Serialize)]
                struct Nested<'a> {
                    metrics: &'a Map<String, Value>,
                }
                Nested {
                    metrics: &self.metrics,
                }
                .serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for ConversationTurnMetrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut object = Map::<String, Value>::deserialize(d)?;
        let nested = object.len() == 1 && object.get("metrics").is_some_and(Value::is_object);
        if nested && let Some(Value::Object(metrics)) = object.remove("metrics") {
            return Ok(Self {
                shape: TurnMetricsShape::Nested,
                metrics,
            });
        }
        Ok(Self {
            shape: TurnMetricsShape::Flat,
            metrics: object,
        })
    }
}

/// The call's metadata.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct CallMetadata {
    /// When the call started, unix seconds.
    #[serde(default)]
    pub start_time_unix_secs: Option<i64>,
    /// When the call was accepted, unix seconds.
    #[serde(default)]
    pub accepted_time_unix_secs: Option<i64>,
    /// The call's length in seconds.
    #[serde(default)]
    pub call_duration_secs: Option<f64>,
    /// The call's cost (in ElevenLabs credits).
    #[serde(default)]
    pub cost: Option<f64>,
    /// When the conversation's data will be or was deleted.
    #[serde(default)]
    pub deletion_settings: Option<DeletionSettings>,
    /// The caller's feedback on the call.
    #[serde(default)]
    pub feedback: Option<MetadataFeedback>,
    /// How the conversation was authorised.
    #[serde(default)]
    pub authorization_method: Option<String>,
    /// Charging details.
    #[serde(default)]
    pub charging: Option<Value>,
    /// Telephony details, for phone calls.
    #[serde(default)]
    pub phone_call: Option<PhoneCallInfo>,
    /// The batch call this call belonged to.
    #[serde(default)]
    pub batch_call: Option<Value>,
    /// Why the call ended.
    #[serde(default)]
    pub termination_reason: Option<String>,
    /// The error that ended the call, if any.
    #[serde(default)]
    pub error: Option<CallError>,
    /// Warnings raised during the call.
    #[serde(default)]
    pub warnings: Option<Vec<Value>>,
    /// The main language spoken.
    #[serde(default)]
    pub main_language: Option<String>,
    /// Knowledge-base usage.
    #[serde(default)]
    pub rag_usage: Option<Value>,
    /// Whether the conversation was text only.
    #[serde(default)]
    pub text_only: Option<bool>,
    /// Which features the call used.
    #[serde(default)]
    pub features_usage: Option<FeaturesUsage>,
    /// The call's timezone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The error that ended a call.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct CallError {
    /// The error code.
    #[serde(default)]
    pub code: Option<i64>,
    /// The reason, in words.
    #[serde(default)]
    pub reason: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// When a conversation's data is deleted.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct DeletionSettings {
    /// When deletion is scheduled, unix seconds.
    #[serde(default)]
    pub deletion_time_unix_secs: Option<i64>,
    /// When logs were deleted.
    #[serde(default)]
    pub deleted_logs_at_time_unix_secs: Option<i64>,
    /// When audio was deleted.
    #[serde(default)]
    pub deleted_audio_at_time_unix_secs: Option<i64>,
    /// When the transcript was deleted.
    #[serde(default)]
    pub deleted_transcript_at_time_unix_secs: Option<i64>,
    /// Whether the transcript and personal data are to be deleted.
    #[serde(default)]
    pub delete_transcript_and_pii: Option<bool>,
    /// Whether the audio is to be deleted.
    #[serde(default)]
    pub delete_audio: Option<bool>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The caller's feedback on a call.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct MetadataFeedback {
    /// The kind of feedback.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `like` or `dislike`.
    #[serde(default)]
    pub overall_score: Option<Value>,
    /// Number of likes.
    #[serde(default)]
    pub likes: Option<i64>,
    /// Number of dislikes.
    #[serde(default)]
    pub dislikes: Option<i64>,
    /// A rating.
    #[serde(default)]
    pub rating: Option<f64>,
    /// A comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Telephony details of a phone call, by provider (the `type` field).
/// A provider this version does not know is kept as raw JSON.
#[derive(Clone, PartialEq, Debug)]
pub enum PhoneCallInfo {
    /// `type: "twilio"`.
    Twilio(PhoneCallDetails),
    /// `type: "sip_trunking"`.
    SipTrunking(PhoneCallDetails),
    /// `type: "exotel"`.
    Exotel(PhoneCallDetails),
    /// Any other provider, as received (`type` included).
    Unknown(Value),
}

/// The fields phone-call details have in common across providers.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct PhoneCallDetails {
    /// `inbound` or `outbound`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// ElevenLabs' id of the agent's phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    /// The agent's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_number: Option<String>,
    /// The other party's number: the caller on an inbound call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_number: Option<String>,
    /// The media stream id (Twilio, Exotel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_sid: Option<String>,
    /// The provider's call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
    /// The SIP call id (SIP trunking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PhoneCallInfo {
    /// The provider, as written in `type`.
    pub fn provider(&self) -> &str {
        match self {
            Self::Twilio(_) => "twilio",
            Self::SipTrunking(_) => "sip_trunking",
            Self::Exotel(_) => "exotel",
            Self::Unknown(raw) => raw.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The details of a known provider.
    pub fn details(&self) -> Option<&PhoneCallDetails> {
        match self {
            Self::Twilio(d) | Self::SipTrunking(d) | Self::Exotel(d) => Some(d),
            Self::Unknown(_) => None,
        }
    }

    fn text(&self, field: &str) -> Option<&str> {
        match self {
            Self::Unknown(raw) => raw.get(field).and_then(Value::as_str),
            Self::Twilio(d) | Self::SipTrunking(d) | Self::Exotel(d) => match field {
                "direction" => d.direction.as_deref(),
                "external_number" => d.external_number.as_deref(),
                "agent_number" => d.agent_number.as_deref(),
                _ => None,
            },
        }
    }

    /// `inbound` or `outbound`, as sent (also read from an unknown provider).
    pub fn direction(&self) -> Option<&str> {
        self.text("direction")
    }

    /// Whether the call was inbound; `None` when no direction was given.
    pub fn is_inbound(&self) -> Option<bool> {
        self.direction().map(|d| d.eq_ignore_ascii_case("inbound"))
    }

    /// The other party's number as sent (the caller on an inbound call).
    pub fn external_number(&self) -> Option<&str> {
        self.text("external_number")
    }

    /// The agent's number as sent.
    pub fn agent_number(&self) -> Option<&str> {
        self.text("agent_number")
    }
}

impl Serialize for PhoneCallInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Unknown(raw) => raw.serialize(s),
            Self::Twilio(d) | Self::SipTrunking(d) | Self::Exotel(d) => Tagged {
                kind: self.provider(),
                inner: d,
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PhoneCallInfo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Value::deserialize(d)?;
        if !raw.is_object() {
            return Err(D::Error::custom(ValueError::new(
                "phone_call",
                "must be an object",
                raw.to_string(),
            )));
        }
        let details = |raw: Value| {
            serde_json::from_value::<PhoneCallDetails>(without_type(raw))
                .map_err(|e| D::Error::custom(format!("phone_call: {e}")))
        };
        match raw.get("type").and_then(Value::as_str) {
            Some("twilio") => details(raw).map(Self::Twilio),
            Some("sip_trunking") => details(raw).map(Self::SipTrunking),
            Some("exotel") => details(raw).map(Self::Exotel),
            _ => Ok(Self::Unknown(raw)),
        }
    }
}

/// Which features a call used: `{enabled, used}` items by feature name,
/// plus the workflow and agent-testing groups.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct FeaturesUsage {
    /// Workflow features.
    #[serde(default)]
    pub workflow: Option<WorkflowFeatures>,
    /// Agent-testing features.
    #[serde(default)]
    pub agent_testing: Option<AgentTestingFeatures>,
    /// Every other feature (`language_detection`, `transfer_to_agent`,
    /// `transfer_to_number`, `multivoice`, `dtmf_tones`,
    /// `external_mcp_servers`, `tool_dynamic_variable_updates`,
    /// `voicemail_detection`, ...), by name.
    #[serde(flatten)]
    pub features: BTreeMap<String, FeatureEntry>,
}

impl FeaturesUsage {
    /// A feature's `{enabled, used}` item, if it has that form.
    pub fn feature(&self, name: &str) -> Option<&FeatureUsage> {
        match self.features.get(name)? {
            FeatureEntry::Usage(usage) => Some(usage),
            FeatureEntry::Other(_) => None,
        }
    }
}

/// One entry of [`FeaturesUsage`]: an `{enabled, used}` item, or any other
/// value (some entries are plain flags).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeatureEntry {
    /// An `{enabled, used}` item.
    Usage(FeatureUsage),
    /// Anything else, as received.
    Other(Value),
}

/// Whether a feature was enabled and whether it was used.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct FeatureUsage {
    /// Whether the feature was enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Whether the feature was used.
    #[serde(default)]
    pub used: Option<bool>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Workflow feature usage: whether workflows were enabled, and an
/// `{enabled, used}` item per node kind (`tool_node`,
/// `standalone_agent_node`, `phone_number_node`, `end_node`, ...).
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct WorkflowFeatures {
    /// Whether workflows were enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Node kinds by name.
    #[serde(flatten)]
    pub nodes: BTreeMap<String, FeatureEntry>,
}

/// Agent-testing feature usage.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct AgentTestingFeatures {
    /// Whether agent tests were enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Whether tests ran after the agent's last change.
    #[serde(default)]
    pub tests_ran_after_last_modification: Option<bool>,
    /// Whether tests ran in the last 7 days.
    #[serde(default)]
    pub tests_ran_in_last_7_days: Option<bool>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// ElevenLabs' analysis of a call.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct Analysis {
    /// Evaluation results by criterion id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub evaluation_criteria_results: BTreeMap<String, EvaluationCriteriaResult>,
    /// Collected data by field id (e.g. `first_name`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_collection_results: BTreeMap<String, DataCollectionResult>,
    /// `success`, `failure` or `unknown`.
    #[serde(default)]
    pub call_successful: Option<String>,
    /// A summary of the transcript.
    #[serde(default)]
    pub transcript_summary: Option<String>,
    /// A short title for the call.
    #[serde(default)]
    pub call_summary_title: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Analysis {
    /// `Some(true)` for `success`, `Some(false)` for `failure`, else `None`.
    pub fn successful(&self) -> Option<bool> {
        match self.call_successful.as_deref()? {
            "success" => Some(true),
            "failure" => Some(false),
            _ => None,
        }
    }
}

/// The result of one evaluation criterion.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct EvaluationCriteriaResult {
    /// The criterion's id.
    #[serde(default)]
    pub criteria_id: Option<String>,
    /// `success`, `failure` or `unknown`.
    #[serde(default)]
    pub result: Option<String>,
    /// Why.
    #[serde(default)]
    pub rationale: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One collected data field.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct DataCollectionResult {
    /// The field's id (e.g. `first_name`).
    #[serde(default)]
    pub data_collection_id: String,
    /// The collected value: any JSON, null when nothing was collected.
    #[serde(default)]
    pub value: Value,
    /// The field's schema.
    #[serde(default)]
    pub json_schema: Option<DataCollectionJsonSchema>,
    /// Why the value was chosen.
    #[serde(default)]
    pub rationale: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DataCollectionResult {
    /// The value as text when it is a non-blank string, number or bool;
    /// `None` for null, blank text, lists and objects.
    pub fn value_text(&self) -> Option<String> {
        match &self.value {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// The schema of a collected data field.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct DataCollectionJsonSchema {
    /// `string`, `number`, `integer` or `boolean`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// What to collect, in words.
    #[serde(default)]
    pub description: Option<String>,
    /// The allowed values, if restricted.
    #[serde(default, rename = "enum")]
    pub enum_values: Option<Vec<Value>>,
    /// Whether ElevenLabs provides the field.
    #[serde(default)]
    pub is_system_provided: Option<bool>,
    /// The dynamic variable the value comes from.
    #[serde(default)]
    pub dynamic_variable: Option<String>,
    /// A constant value.
    #[serde(default)]
    pub constant_value: Option<Value>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the conversation was started with.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct ConversationInitiationClientData {
    /// The overrides in force.
    #[serde(default)]
    pub conversation_config_override: Option<ConversationConfigOverride>,
    /// Extra body sent to a custom LLM.
    #[serde(default)]
    pub custom_llm_extra_body: Option<Value>,
    /// The user id the conversation was started with.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Which client started the conversation.
    #[serde(default)]
    pub source_info: Option<SourceInfo>,
    /// Dynamic variables: on phone calls `system__caller_id`,
    /// `system__called_number`, `system__call_sid`, and so on.
    #[serde(default, deserialize_with = "null_as_default")]
    pub dynamic_variables: BTreeMap<String, Value>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which client started a conversation.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The client, e.g. `twilio`, `js_sdk`.
    #[serde(default)]
    pub source: Option<String>,
    /// The client's version.
    #[serde(default)]
    pub version: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------------------
// post_call_audio

/// The `data` of a `post_call_audio` event.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct PostCallAudioData {
    /// The agent's id.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The conversation's id.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// The whole call as base64-encoded MP3.
    #[serde(default)]
    pub full_audio: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------------------
// call_initiation_failure

/// The `data` of a `call_initiation_failure` event.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct CallInitiationFailureData {
    /// The agent's id.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The conversation's id.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// `busy`, `no-answer` or `unknown`.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// The provider's details.
    #[serde(default)]
    pub metadata: Option<FailureMetadata>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CallInitiationFailureData {
    /// The person a call that never connected was for: the number called
    /// on an outbound call (Twilio `To`, SIP `to_number`), the number
    /// calling on an inbound one (Twilio `From`). It never leads to a
    /// memory; it lets the call be found, listed and erased with them.
    ///
    /// ```
    /// use recall_model::CallInitiationFailureData;
    /// let data: CallInitiationFailureData = serde_json::from_str(r#"{
    ///   "agent_id":"a","conversation_id":"c","failure_reason":"busy",
    ///   "metadata":{"type":"sip","body":{"to_number":"+441111111111"}}}"#).unwrap();
    /// assert_eq!(data.party().unwrap().as_str(), "+441111111111");
    /// ```
    pub fn party(&self) -> Option<PhoneNumber> {
        let raw = match self.metadata.as_ref()? {
            FailureMetadata::Sip(body) => body.to_number.as_deref(),
            FailureMetadata::Twilio(body) => {
                let text = |k: &str| body.get(k).and_then(Value::as_str);
                if text("Direction").is_some_and(|d| d.starts_with("inbound")) {
                    text("From").or_else(|| text("Caller"))
                } else {
                    text("To").or_else(|| text("Called"))
                }
            }
            FailureMetadata::Unknown(_) => None,
        };
        classify_caller_id(raw).ok()
    }
}

/// A failed call's provider details, by `type`.
#[derive(Clone, PartialEq, Debug)]
pub enum FailureMetadata {
    /// `type: "sip"`.
    Sip(SipFailureBody),
    /// `type: "twilio"`: Twilio's raw status callback (all strings).
    Twilio(Map<String, Value>),
    /// Any other type, as received (`type` included).
    Unknown(Value),
}

/// The `body` of a SIP failure.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct SipFailureBody {
    /// The calling number.
    #[serde(default)]
    pub from_number: Option<String>,
    /// The called number.
    #[serde(default)]
    pub to_number: Option<String>,
    /// The SIP status code, e.g. 486.
    #[serde(default)]
    pub sip_status_code: Option<i64>,
    /// The error, in words.
    #[serde(default)]
    pub error_reason: Option<String>,
    /// The call id.
    #[serde(default)]
    pub call_sid: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl FailureMetadata {
    /// The `type`, as written.
    pub fn kind(&self) -> &str {
        match self {
            Self::Sip(_) => "sip",
            Self::Twilio(_) => "twilio",
            Self::Unknown(raw) => raw.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

impl Serialize for FailureMetadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a, T: Serialize> {
            #[serde(rename = "type")]
            kind: &'a str,
            body: &'a T,
        }
        match self {
            Self::Sip(body) => Out { kind: "sip", body }.serialize(s),
            Self::Twilio(body) => Out {
                kind: "twilio",
                body,
            }
            .serialize(s),
            Self::Unknown(raw) => raw.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for FailureMetadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Value::deserialize(d)?;
        let body = || raw.get("body").cloned().unwrap_or(Value::Null);
        let invalid = |e: serde_json::Error| D::Error::custom(format!("metadata.body: {e}"));
        match raw.get("type").and_then(Value::as_str) {
            Some("sip") => serde_json::from_value::<Option<SipFailureBody>>(body())
                .map(|b| Self::Sip(b.unwrap_or_default()))
                .map_err(invalid),
            Some("twilio") => serde_json::from_value::<Option<Map<String, Value>>>(body())
                .map(|b| Self::Twilio(b.unwrap_or_default()))
                .map_err(invalid),
            _ => Ok(Self::Unknown(raw)),
        }
    }
}
