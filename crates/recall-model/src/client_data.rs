//! The conversation-initiation client-data webhook: the request ElevenLabs
//! sends while the phone rings and the response that personalises the call.
//!
//! The request is a tolerant wire type (every field optional, unknown
//! fields kept); validation happens when its values are converted to
//! domain values ([`ClientDataRequest::caller`], [`ClientDataRequest::agent`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{AgentId, NoIdentity, PhoneNumber, ValueError, classify_caller_id};

/// What ElevenLabs POSTs to the client-data webhook for an inbound Twilio
/// or SIP call: `{caller_id, agent_id, called_number, call_sid}`, all
/// strings. Every field is optional here and unknown fields are kept in
/// [`extra`](Self::extra), so a changed payload never fails to parse.
///
/// ```
/// use recall_model::ClientDataRequest;
/// let req: ClientDataRequest = serde_json::from_str(
///     r#"{"caller_id":"+12025550148","agent_id":"agent_1","new_field":1}"#,
/// ).unwrap();
/// assert_eq!(req.caller().unwrap().as_str(), "+12025550148");
/// assert_eq!(req.agent().unwrap().as_str(), "agent_1");
/// assert!(req.extra.contains_key("new_field"));
/// ```
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientDataRequest {
    /// The caller's number as the carrier gave it (may be withheld).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// The agent that answers the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The number that was dialled (the agent's number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_number: Option<String>,
    /// The telephony provider's call id (Twilio `CA...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ClientDataRequest {
    /// The caller's identity, or why there is none (withheld, placeholder,
    /// missing, malformed). See [`classify_caller_id`].
    pub fn caller(&self) -> Result<PhoneNumber, NoIdentity> {
        classify_caller_id(self.caller_id.as_deref())
    }

    /// The validated agent id; an error names `agent_id` when it is
    /// missing or unsafe.
    pub fn agent(&self) -> Result<AgentId, ValueError> {
        match self.agent_id.as_deref() {
            Some(raw) => AgentId::parse(raw),
            None => Err(ValueError::new("agent_id", "is required", "")),
        }
    }
}

/// The `"type"` marker of a [`ClientDataResponse`]: always
/// `"conversation_initiation_client_data"`, which ElevenLabs requires.
/// Deserializing any other value fails with a message naming the field.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ClientDataType;

impl ClientDataType {
    /// The wire value.
    pub const VALUE: &'static str = "conversation_initiation_client_data";
}

impl Serialize for ClientDataType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Self::VALUE)
    }
}

impl<'de> Deserialize<'de> for ClientDataType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
        if raw == Self::VALUE {
            Ok(Self)
        } else {
            Err(serde::de::Error::custom(ValueError::new(
                "type",
                "must be \"conversation_initiation_client_data\"",
                raw.as_ref(),
            )))
        }
    }
}

/// The client-data webhook's answer: dynamic variables for the agent's
/// prompt and first message, and optional overrides of the agent's
/// configuration (each override must also be enabled on the agent).
///
/// It always serializes `"type": "conversation_initiation_client_data"`.
///
/// ```
/// use recall_model::{ClientDataResponse, DynamicVariables};
/// let mut vars = DynamicVariables::default();
/// vars.user_name = "Angelo".into();
/// let json = serde_json::to_value(ClientDataResponse::new(vars)).unwrap();
/// assert_eq!(json["type"], "conversation_initiation_client_data");
/// assert_eq!(json["dynamic_variables"]["user_name"], "Angelo");
/// assert_eq!(json["dynamic_variables"]["last_call_summary"], "");
/// assert!(json.get("conversation_config_override").is_none());
/// ```
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientDataResponse {
    /// Always `conversation_initiation_client_data`.
    #[serde(rename = "type", default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub kind: ClientDataType,
    /// Values for the agent's `{{...}}` variables.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub dynamic_variables: DynamicVariables,
    /// Overrides of the agent's prompt, first message, language or voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_config_override: Option<ConversationConfigOverride>,
    /// Other top-level fields (e.g. `branch_id`, `environment`), kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ClientDataResponse {
    /// A response with these variables and no overrides.
    pub fn new(dynamic_variables: DynamicVariables) -> Self {
        Self {
            dynamic_variables,
            ..Self::default()
        }
    }

    /// Sets the agent's first message (the greeting) and returns self.
    pub fn with_first_message(mut self, first_message: impl Into<String>) -> Self {
        self.conversation_config_override
            .get_or_insert_with(Default::default)
            .agent
            .get_or_insert_with(Default::default)
            .first_message = Some(first_message.into());
        self
    }
}

/// The dynamic variables sent to ElevenLabs. The three Recall knows are
/// always present (empty text when unknown — ElevenLabs rejects null and
/// needs every variable the agent uses); any others go in
/// [`extra`](Self::extra), written beside them.
///
/// A key in `extra` that repeats one of the three named fields is not
/// written (the named field wins), so the JSON never holds a key twice;
/// [`insert`](Self::insert) routes those keys to their fields.
///
/// ```
/// use recall_model::{DynamicValue, DynamicVariables};
/// let mut vars = DynamicVariables::default();
/// vars.insert("user_name", "Angelo");
/// vars.insert("open_tickets", 2);
/// assert_eq!(vars.user_name, "Angelo");
/// let json = serde_json::to_value(&vars).unwrap();
/// assert_eq!(json["open_tickets"], 2);
/// assert_eq!(json["last_call_summary"], "");
/// ```
#[derive(Clone, PartialEq, Debug, Default, Deserialize)]
pub struct DynamicVariables {
    /// The caller's name, or empty.
    #[serde(default)]
    pub user_name: String,
    /// A short profile of the caller, or empty.
    #[serde(default)]
    pub user_profile_summary: String,
    /// The summary of the caller's previous call, or empty.
    #[serde(default)]
    pub last_call_summary: String,
    /// Any other variables, as scalars.
    #[serde(flatten)]
    pub extra: BTreeMap<String, DynamicValue>,
}

impl DynamicVariables {
    /// The names of the three variables Recall always sends.
    pub const KNOWN: [&'static str; 3] = ["user_name", "user_profile_summary", "last_call_summary"];

    /// Sets a variable by name. The three known names set their fields
    /// (a number or bool is written as its text); any other name goes in
    /// `extra`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<DynamicValue>) {
        let name = name.into();
        let value = value.into();
        match name.as_str() {
            "user_name" => self.user_name = value.to_string(),
            "user_profile_summary" => self.user_profile_summary = value.to_string(),
            "last_call_summary" => self.last_call_summary = value.to_string(),
            _ => {
                self.extra.insert(name, value);
            }
        }
    }

    /// A variable's value by name, the three known ones included.
    pub fn get(&self, name: &str) -> Option<DynamicValue> {
        match name {
            "user_name" => Some(self.user_name.as_str().into()),
            "user_profile_summary" => Some(self.user_profile_summary.as_str().into()),
            "last_call_summary" => Some(self.last_call_summary.as_str().into()),
            _ => self.extra.get(name).cloned(),
        }
    }
}

impl Serialize for DynamicVariables {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let extra = self
            .extra
            .iter()
            .filter(|(k, _)| !Self::KNOWN.contains(&k.as_str()));
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("user_name", &self.user_name)?;
        map.serialize_entry("user_profile_summary", &self.user_profile_summary)?;
        map.serialize_entry("last_call_summary", &self.last_call_summary)?;
        for (k, v) in extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A dynamic variable's value: a string, a number or a bool — never null,
/// which ElevenLabs rejects.
///
/// ```
/// use recall_model::DynamicValue;
/// let v: DynamicValue = serde_json::from_str("42").unwrap();
/// assert_eq!(v, DynamicValue::from(42));
/// let err = serde_json::from_str::<DynamicValue>("null").unwrap_err();
/// assert!(err.to_string().contains("dynamic variable"));
/// ```
#[derive(Clone, PartialEq, Debug)]
pub enum DynamicValue {
    /// Text.
    String(String),
    /// A finite number (JSON cannot hold NaN or infinity).
    Number(serde_json::Number),
    /// A boolean.
    Bool(bool),
}

impl From<String> for DynamicValue {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl From<&str> for DynamicValue {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

impl From<bool> for DynamicValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<i64> for DynamicValue {
    fn from(v: i64) -> Self {
        Self::Number(v.into())
    }
}

impl From<u64> for DynamicValue {
    fn from(v: u64) -> Self {
        Self::Number(v.into())
    }
}

impl From<i32> for DynamicValue {
    fn from(v: i32) -> Self {
        Self::Number(v.into())
    }
}

impl TryFrom<f64> for DynamicValue {
    type Error = ValueError;
    /// Fails for NaN and infinities, which JSON cannot carry.
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        serde_json::Number::from_f64(v)
            .map(Self::Number)
            .ok_or_else(|| {
                ValueError::new("dynamic_variables", "numbers must be finite", v.to_string())
            })
    }
}

impl fmt::Display for DynamicValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Number(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Serialize for DynamicValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::String(v) => s.serialize_str(v),
            Self::Number(v) => v.serialize(s),
            Self::Bool(v) => s.serialize_bool(*v),
        }
    }
}

impl<'de> Deserialize<'de> for DynamicValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(v) => Ok(Self::String(v)),
            Value::Number(v) => Ok(Self::Number(v)),
            Value::Bool(v) => Ok(Self::Bool(v)),
            other => Err(serde::de::Error::custom(ValueError::new(
                "dynamic variable",
                "must be a string, number or bool (never null, a list or an object)",
                other.to_string(),
            ))),
        }
    }
}

/// Overrides of the agent's configuration for one conversation. Used in
/// the client-data response and echoed back in post-call data.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationConfigOverride {
    /// Agent overrides: prompt, first message, language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentOverride>,
    /// Text-to-speech overrides: the voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tts: Option<TtsOverride>,
    /// Other overrides (e.g. `conversation.text_only`), kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Agent overrides.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentOverride {
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptOverride>,
    /// The first thing the agent says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    /// The conversation's language code, e.g. `en`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Other agent overrides, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The prompt override.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptOverride {
    /// The system prompt text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Other prompt settings (e.g. `llm`), kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Text-to-speech overrides.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TtsOverride {
    /// The ElevenLabs voice id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_id: Option<String>,
    /// Other voice settings, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
