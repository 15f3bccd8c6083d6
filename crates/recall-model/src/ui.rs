//! The seed's UI models, serialized in camelCase exactly as its TypeScript
//! interfaces (`User`, `MemoryDisplay`, `TranscriptMessage`, `CallSummary`,
//! `CallAnalytics`), and the other answers of Recall's operator API built
//! from them ([`CallDetail`], [`DailyCalls`], [`EventEntry`],
//! [`EraseReport`]). Optional fields are left out when absent, as a
//! TypeScript `field?:` expects. Times are RFC 3339 strings in UTC, which
//! `new Date(...)` parses.
//!
//! With the `openapi` feature every type here has an OpenAPI schema
//! (utoipa's `ToSchema`) describing exactly what it serializes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    ConversationId, MemoryItem, MemorySector, PhoneNumber, PostCallData, Salience, SalienceLabel,
    TranscriptEntry, TranscriptRole, UnixTimestamp, ValueError,
};

/// A caller as the UI shows them (`GET /api/users/{phone}`).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// E.164 number, e.g. `+16129782029`.
    pub phone_number: PhoneNumber,
    /// The caller's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A short profile: what is known about the caller (`key: value`
    /// facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_summary: Option<String>,
    /// The summary of the caller's latest connected call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_call_summary: Option<String>,
}

/// A memory as the UI shows it. `salienceLabel` is always derived from
/// `salience` ([`Salience::label`]); a payload whose label disagrees with
/// its salience is rejected.
///
/// ```
/// use recall_model::{MemorySector, Salience, ui::MemoryDisplay};
/// let m = MemoryDisplay::new("Likes jazz", MemorySector::Semantic, Salience::HIGH, None);
/// let json = serde_json::to_value(&m).unwrap();
/// assert_eq!(json["salienceLabel"], "High");
/// assert!(json.get("timestamp").is_none());
/// ```
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(into = "MemoryDisplayWire", try_from = "MemoryDisplayWire")]
pub struct MemoryDisplay {
    /// The memory's text.
    pub content: String,
    /// Its kind.
    pub sector: MemorySector,
    /// How important it is.
    pub salience: Salience,
    /// When it was made.
    pub timestamp: Option<UnixTimestamp>,
}

impl MemoryDisplay {
    /// A memory for display.
    pub fn new(
        content: impl Into<String>,
        sector: MemorySector,
        salience: Salience,
        timestamp: Option<UnixTimestamp>,
    ) -> Self {
        Self {
            content: content.into(),
            sector,
            salience,
            timestamp,
        }
    }

    /// `High`, `Medium` or `Low`, from the salience.
    pub fn salience_label(&self) -> SalienceLabel {
        self.salience.label()
    }
}

impl From<MemoryItem> for MemoryDisplay {
    fn from(item: MemoryItem) -> Self {
        Self::new(item.content, item.sector, item.salience, item.timestamp)
    }
}

/// A memory as the UI shows it (the seed's `MemoryDisplay`).
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = MemoryDisplay))]
#[serde(rename_all = "camelCase")]
struct MemoryDisplayWire {
    /// The memory's text.
    content: String,
    /// Its kind.
    sector: MemorySector,
    /// How important it is, 0.0 to 1.0.
    salience: Salience,
    /// When it was made, RFC 3339 UTC.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timefmt::rfc3339_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    timestamp: Option<UnixTimestamp>,
    /// From `salience`: `High` ≥ 0.8, `Medium` ≥ 0.5, else `Low`.
    salience_label: SalienceLabel,
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for MemoryDisplay {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <MemoryDisplayWire as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for MemoryDisplay {
    fn name() -> std::borrow::Cow<'static, str> {
        <MemoryDisplayWire as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <MemoryDisplayWire as utoipa::ToSchema>::schemas(schemas);
    }
}

impl From<MemoryDisplay> for MemoryDisplayWire {
    fn from(m: MemoryDisplay) -> Self {
        Self {
            salience_label: m.salience.label(),
            content: m.content,
            sector: m.sector,
            salience: m.salience,
            timestamp: m.timestamp,
        }
    }
}

impl TryFrom<MemoryDisplayWire> for MemoryDisplay {
    type Error = ValueError;
    fn try_from(w: MemoryDisplayWire) -> Result<Self, Self::Error> {
        if w.salience.label() != w.salience_label {
            return Err(ValueError::new(
                "salienceLabel",
                "must match salience (High ≥ 0.8, Medium ≥ 0.5, else Low)",
                format!("{:?} for salience {}", w.salience_label, w.salience),
            ));
        }
        Ok(Self::new(w.content, w.sector, w.salience, w.timestamp))
    }
}

/// Who spoke a turn the UI shows: the seed's `'agent' | 'user'`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The agent.
    Agent,
    /// The caller.
    User,
}

impl Speaker {
    /// The speaker of a transcript role; `None` for roles other than
    /// `agent` and `user`.
    pub fn from_role(role: &TranscriptRole) -> Option<Self> {
        match role {
            TranscriptRole::Agent => Some(Self::Agent),
            TranscriptRole::User => Some(Self::User),
            TranscriptRole::Other(_) => None,
        }
    }

    /// The wire name, `agent` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::User => "user",
        }
    }
}

/// One turn of a transcript as the UI shows it.
///
/// ```
/// use recall_model::{TranscriptEntry, ui::TranscriptMessage};
/// let entry: TranscriptEntry =
///     serde_json::from_str(r#"{"role":"user","message":" Hi ","time_in_call_secs":2}"#).unwrap();
/// let message = TranscriptMessage::from_entry(&entry).unwrap();
/// assert_eq!(
///     serde_json::to_string(&message).unwrap(),
///     r#"{"role":"user","message":"Hi","timeInCallSecs":2.0,"interrupted":false}"#,
/// );
/// ```
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TranscriptMessage {
    /// Who spoke.
    pub role: Speaker,
    /// What was said.
    pub message: String,
    /// Seconds since the call started.
    pub time_in_call_secs: f64,
    /// Whether the speaker was interrupted.
    pub interrupted: bool,
}

impl TranscriptMessage {
    /// The turn as the UI shows it, or `None` for a turn a transcript
    /// leaves out: one spoken by neither the agent nor the user, or one
    /// without text (only tool calls). The text is trimmed; a missing
    /// time is 0 and a missing `interrupted` false.
    pub fn from_entry(entry: &TranscriptEntry) -> Option<Self> {
        let role = Speaker::from_role(&entry.role)?;
        let message = entry.message.as_deref().map(str::trim).unwrap_or("");
        if message.is_empty() {
            return None;
        }
        Some(Self {
            role,
            message: message.to_owned(),
            time_in_call_secs: entry.time_in_call_secs.unwrap_or(0.0),
            interrupted: entry.interrupted.unwrap_or(false),
        })
    }
}

/// One call as the UI lists it (`GET /api/calls`).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CallSummary {
    /// The conversation's id.
    pub conversation_id: String,
    /// The agent's id.
    pub agent_id: String,
    /// The conversation's status (`done`, ...); `failed` for a call that
    /// never connected.
    pub status: String,
    /// Length in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Cost as ElevenLabs reports it (credits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// ElevenLabs' summary of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// A short title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Whether the call succeeded: `call_successful` was `success` (true)
    /// or `failure` (false); false for a call that never connected;
    /// absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful: Option<bool>,
}

impl From<&PostCallData> for CallSummary {
    fn from(d: &PostCallData) -> Self {
        let analysis = d.analysis.as_ref();
        Self {
            conversation_id: d.conversation_id.clone(),
            agent_id: d.agent_id.clone(),
            status: d.status.clone().unwrap_or_default(),
            duration: d.call_duration_secs(),
            cost: d.metadata.as_ref().and_then(|m| m.cost),
            summary: d.transcript_summary().map(str::to_owned),
            title: analysis.and_then(|a| a.call_summary_title.clone()),
            successful: analysis.and_then(|a| a.successful()),
        }
    }
}

/// Totals over a set of calls for a dashboard (`GET /api/analytics`).
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CallAnalytics {
    /// How many calls, initiation failures included.
    pub total_calls: u64,
    /// Calls whose analysis said `success`, divided by `totalCalls`
    /// (0.0 to 1.0; 0 without calls).
    pub success_rate: f64,
    /// Mean length in seconds of the calls whose length is known.
    pub avg_duration: f64,
    /// Sum of the known costs.
    pub total_cost: f64,
    /// How many calls collected each value, most frequent first (then by
    /// field id, then value); null values are not counted.
    pub data_collected: Vec<DataCollectedStat>,
}

/// How often one collected value occurred.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DataCollectedStat {
    /// The data-collection field id.
    pub field_id: String,
    /// The value collected (any JSON value).
    pub value: Value,
    /// In how many calls.
    pub count: u64,
}

impl DataCollectedStat {
    /// Counts the values collected over calls, each call given as its
    /// `(field id, value)` pairs: a call counts once per field (its last
    /// value for that field), ordered by count (highest first), then field
    /// id, then the value's JSON text. Every analytics of Recall (the call
    /// indexes, [`CallAnalytics::from_calls`]) counts with it.
    ///
    /// ```
    /// use recall_model::ui::DataCollectedStat;
    /// use serde_json::json;
    /// let (ada, paris) = (json!("Ada"), json!("Paris"));
    /// let calls = [vec![("name", &ada), ("city", &paris)], vec![("name", &ada)]];
    /// let stats = DataCollectedStat::tally(calls);
    /// assert_eq!((stats[0].field_id.as_str(), stats[0].count), ("name", 2));
    /// ```
    pub fn tally<'a, C, P>(calls: C) -> Vec<Self>
    where
        C: IntoIterator<Item = P>,
        P: IntoIterator<Item = (&'a str, &'a Value)>,
    {
        let mut counts: BTreeMap<(String, String), (Value, u64)> = BTreeMap::new();
        for call in calls {
            let per_field: BTreeMap<&str, &Value> = call.into_iter().collect();
            for (field, value) in per_field {
                counts
                    .entry((field.to_owned(), value.to_string()))
                    .or_insert_with(|| (value.clone(), 0))
                    .1 += 1;
            }
        }
        // Keyed by (field id, value as JSON text): iterating yields that
        // order, which a stable sort by count keeps for ties.
        let mut stats: Vec<Self> = counts
            .into_iter()
            .map(|((field_id, _), (value, count))| Self {
                field_id,
                value,
                count,
            })
            .collect();
        stats.sort_by_key(|stat| std::cmp::Reverse(stat.count));
        stats
    }
}

impl CallAnalytics {
    /// Totals over these calls. Null values of collected data are not
    /// counted; `dataCollected` is ordered by count (highest first), then
    /// field id, then value (as JSON text): the order of the call indexes'
    /// analytics ([`DataCollectedStat::tally`]), so both answer
    /// the same list for the same calls.
    ///
    /// ```
    /// use recall_model::ui::CallAnalytics;
    /// assert_eq!(CallAnalytics::from_calls(&[]).total_calls, 0);
    /// ```
    pub fn from_calls(calls: &[PostCallData]) -> Self {
        let total = calls.len();
        let successes = calls
            .iter()
            .filter(|c| c.analysis.as_ref().and_then(|a| a.successful()) == Some(true))
            .count();
        let durations: Vec<f64> = calls
            .iter()
            .filter_map(|c| c.call_duration_secs())
            .collect();
        let total_cost = calls
            .iter()
            .filter_map(|c| c.metadata.as_ref().and_then(|m| m.cost))
            .sum();
        let data_collected =
            DataCollectedStat::tally(calls.iter().map(PostCallData::collected_values));
        Self {
            total_calls: total as u64,
            success_rate: if total == 0 {
                0.0
            } else {
                successes as f64 / total as f64
            },
            avg_duration: if durations.is_empty() {
                0.0
            } else {
                durations.iter().sum::<f64>() / durations.len() as f64
            },
            total_cost,
            data_collected,
        }
    }
}

/// One call with its transcript (`GET /api/calls/{conversation_id}`).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CallDetail {
    /// The call, as in the list.
    pub call: CallSummary,
    /// Its transcript in order (see [`TranscriptMessage::from_entry`] for
    /// the turns left out).
    pub transcript: Vec<TranscriptMessage>,
    /// Whether the call's audio is stored (`GET .../audio`).
    pub has_audio: bool,
    /// When the call started (or failed to), RFC 3339 UTC.
    #[serde(with = "crate::timefmt::rfc3339")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, format = DateTime, example = "2025-02-14T12:48:17Z")
    )]
    pub start_time: UnixTimestamp,
    /// The caller's number, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_phone: Option<PhoneNumber>,
    /// When Recall deleted the call's stored events and transcript (an
    /// ElevenLabs deletion setting or a retention window), RFC 3339 UTC;
    /// absent while they are kept. The call's figures stay.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timefmt::rfc3339_option"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime, example = "2025-03-16T12:48:17Z")
    )]
    pub transcript_deleted_at: Option<UnixTimestamp>,
    /// When Recall deleted the call's audio, RFC 3339 UTC; absent while it
    /// is kept (or there never was any).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timefmt::rfc3339_option"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime, example = "2025-03-16T12:48:17Z")
    )]
    pub audio_deleted_at: Option<UnixTimestamp>,
}

/// Everything Recall holds about one caller (`GET
/// /api/users/{phone}/export`, `recall export-caller`): the profile, every
/// memory, and every indexed call with its transcript and whether its
/// audio is stored. The server writes it field by field in this order, so
/// a caller with thousands of calls is never held in memory whole.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CallerExport {
    /// The caller.
    pub phone_number: PhoneNumber,
    /// When the export was made, RFC 3339 UTC.
    #[serde(with = "crate::timefmt::rfc3339")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, format = DateTime, example = "2025-02-14T12:48:17Z")
    )]
    pub exported_at: UnixTimestamp,
    /// Name and summaries, `null` when nothing is known of the caller
    /// beyond their calls.
    pub profile: Option<User>,
    /// Every memory, newest first, with sector, salience and time.
    pub memories: Vec<MemoryDisplay>,
    /// Every indexed call, newest first, with its transcript (empty when
    /// none is kept) and `hasAudio`.
    pub calls: Vec<CallDetail>,
}

/// Calls on one UTC day, for a chart (`GET /api/analytics/daily`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DailyCalls {
    /// The day, `YYYY-MM-DD` (UTC).
    #[cfg_attr(feature = "openapi", schema(format = Date, example = "2025-02-14"))]
    pub day: String,
    /// Calls that day, initiation failures included.
    pub calls: u64,
    /// Successful calls that day.
    pub successful: u64,
}

/// Which events that have not become memories to list (`GET
/// /api/events?status=`).
///
/// ```
/// use recall_model::ui::EventStatus;
/// assert_eq!(EventStatus::parse("failed"), Ok(EventStatus::Failed));
/// assert_eq!(serde_json::to_string(&EventStatus::Quarantined).unwrap(), r#""quarantined""#);
/// assert!(EventStatus::parse("done").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Stored, not processed yet (possibly waiting for a retry).
    Pending,
    /// Processing failed for good (`recall replay --failed` retries).
    Failed,
    /// Refused at the door (not a usable event) and kept for inspection.
    Quarantined,
}

impl EventStatus {
    /// Parses `pending`, `failed` or `quarantined`.
    ///
    /// # Errors
    /// The rule, naming the accepted values.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "pending" => Ok(Self::Pending),
            "failed" => Ok(Self::Failed),
            "quarantined" => Ok(Self::Quarantined),
            other => Err(format!(
                "status: must be pending, failed or quarantined (got {other:?})"
            )),
        }
    }

    /// The name, as [`parse`](Self::parse) takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Quarantined => "quarantined",
        }
    }
}

/// One event that has not become memories (`GET /api/events`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventEntry {
    /// Its status.
    pub status: EventStatus,
    /// Its conversation (absent for a quarantined body: it was refused
    /// before one could be trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// Its `type` (absent for a quarantined body).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Why it is here: the last error of a pending event being retried,
    /// the failure, or why the body was refused. Absent for a pending
    /// event not tried yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Failed attempts so far (pending events).
    pub attempts: u32,
    /// The quarantined body's file name, under the quarantine folder
    /// (`<payload dir>/_quarantine/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The quarantined body's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// When a quarantined body was refused, RFC 3339 UTC.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timefmt::rfc3339_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub received_at: Option<UnixTimestamp>,
}

/// What erasing a caller removed (`DELETE /api/users/{phone}`, `recall
/// forget`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EraseReport {
    /// The caller erased.
    pub phone_number: PhoneNumber,
    /// Memories erased from the store.
    pub memories: u64,
    /// Conversations whose stored events were removed.
    pub conversations: u64,
    /// Stored events (raw payloads) removed.
    pub payloads: u64,
    /// Audio files removed.
    pub audio: u64,
    /// Calls removed from the call index.
    pub indexed_calls: u64,
    /// Quarantined (invalid) bodies removed because they mention the
    /// caller's number.
    #[serde(default)]
    pub quarantined: u64,
    /// Events of the caller that were waiting to be processed or retried.
    #[serde(default)]
    pub pending_events: u64,
    /// Events of the caller that had failed processing.
    #[serde(default)]
    pub failed_events: u64,
}
