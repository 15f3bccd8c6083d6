//! The search-data webhook tool the agent calls during a call, and its
//! compact answer.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    AgentId, ConversationId, MemorySector, NoIdentity, PhoneNumber, Salience, UnixTimestamp,
    ValueError, classify_caller_id,
};

/// What the agent's memory tool sends: `{query, user_id, agent_id,
/// conversation_id?, context?}`. Tolerant: every field is optional and
/// unknown fields are kept; the accessors validate.
///
/// `user_id` must be filled from the `system__caller_id` dynamic variable
/// in the tool's configuration, never by the LLM.
///
/// ```
/// use recall_model::SearchDataRequest;
/// let req: SearchDataRequest = serde_json::from_str(
///     r#"{"query":"favourite colour","user_id":"+16129782029","agent_id":"a1"}"#,
/// ).unwrap();
/// assert_eq!(req.query_text().unwrap(), "favourite colour");
/// assert_eq!(req.caller().unwrap().as_str(), "+16129782029");
/// ```
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct SearchDataRequest {
    /// What the agent wants to recall, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The caller's E.164 number (from `system__caller_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The agent asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The conversation in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Free-form context from the tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Fields this version does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SearchDataRequest {
    /// The caller, or why there is none. See [`classify_caller_id`].
    pub fn caller(&self) -> Result<PhoneNumber, NoIdentity> {
        classify_caller_id(self.user_id.as_deref())
    }

    /// The query with surrounding white space removed; an error names
    /// `query` when it is missing or blank.
    pub fn query_text(&self) -> Result<&str, ValueError> {
        match self.query.as_deref().map(str::trim) {
            Some(q) if !q.is_empty() => Ok(q),
            Some(q) => Err(ValueError::new("query", "must not be blank", q)),
            None => Err(ValueError::new("query", "is required", "")),
        }
    }

    /// The validated agent id, if one was sent.
    pub fn agent(&self) -> Option<Result<AgentId, ValueError>> {
        self.agent_id.as_deref().map(AgentId::parse)
    }

    /// The validated conversation id, if one was sent.
    pub fn conversation(&self) -> Option<Result<ConversationId, ValueError>> {
        self.conversation_id.as_deref().map(ConversationId::parse)
    }
}

/// The memory tool's answer, shown to the LLM: kept compact (absent
/// values are left out rather than written as null).
///
/// ```
/// use recall_model::{MemoryItem, MemorySector, Salience, SearchDataResponse};
/// let resp = SearchDataResponse {
///     profile: None,
///     memories: vec![MemoryItem::new("Likes jazz", MemorySector::Semantic, Salience::HIGH)],
/// };
/// assert_eq!(
///     serde_json::to_string(&resp).unwrap(),
///     r#"{"memories":[{"content":"Likes jazz","sector":"semantic","salience":0.9}]}"#,
/// );
/// ```
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchDataResponse {
    /// What is known about the caller, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileData>,
    /// The most relevant memories, best first.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub memories: Vec<MemoryItem>,
}

/// The caller's profile as shown to the agent.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileData {
    /// The caller's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A short summary of what is known about the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The caller's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<PhoneNumber>,
}

/// One memory as shown to the agent. `timestamp` is when the memory was
/// made, written as an RFC 3339 string in UTC (`2025-02-14T12:48:17Z`) so
/// the LLM can read it directly.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemoryItem {
    /// The memory's text.
    pub content: String,
    /// Its kind.
    pub sector: MemorySector,
    /// How important it is.
    pub salience: Salience,
    /// When it was made, RFC 3339 UTC.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timefmt::rfc3339_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub timestamp: Option<UnixTimestamp>,
    /// How well it answers the question, from 0 (nothing in common) to 1
    /// (a strong match), so the agent can tell a real answer from the
    /// closest thing there is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub score: Option<f64>,
}

impl MemoryItem {
    /// A memory without a timestamp or score.
    pub fn new(content: impl Into<String>, sector: MemorySector, salience: Salience) -> Self {
        Self {
            content: content.into(),
            sector,
            salience,
            timestamp: None,
            score: None,
        }
    }
}
