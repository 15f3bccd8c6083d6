//! The seed's UI models, serialized in camelCase exactly as its TypeScript
//! interfaces (`User`, `MemoryDisplay`, `TranscriptMessage`, `CallSummary`,
//! `CallAnalytics`). Optional fields are left out when absent, as a
//! TypeScript `field?:` expects. Times are RFC 3339 strings in UTC, which
//! `new Date(...)` parses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    MemoryItem, MemorySector, PhoneNumber, PostCallData, Salience, SalienceLabel, TranscriptEntry,
    TranscriptRole, UnixTimestamp, ValueError,
};

/// A caller as the UI shows them.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// E.164 number, e.g. `+16129782029`.
    pub phone_number: PhoneNumber,
    /// The caller's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A short profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_summary: Option<String>,
    /// The previous call's summary.
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

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemoryDisplayWire {
    content: String,
    sector: MemorySector,
    salience: Salience,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timefmt::rfc3339_option"
    )]
    timestamp: Option<UnixTimestamp>,
    salience_label: SalienceLabel,
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

/// One turn of a transcript as the UI shows it.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptMessage {
    /// `agent` or `user` (other roles pass through as sent).
    pub role: TranscriptRole,
    /// What was said (empty for a turn without text).
    pub message: String,
    /// Seconds since the call started.
    pub time_in_call_secs: f64,
    /// Whether the turn was interrupted.
    pub interrupted: bool,
}

impl From<&TranscriptEntry> for TranscriptMessage {
    fn from(e: &TranscriptEntry) -> Self {
        Self {
            role: e.role.clone(),
            message: e.message.clone().unwrap_or_default(),
            time_in_call_secs: e.time_in_call_secs.unwrap_or(0.0),
            interrupted: e.interrupted.unwrap_or(false),
        }
    }
}

/// One call as the UI lists it.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSummary {
    /// The conversation's id.
    pub conversation_id: String,
    /// The agent's id.
    pub agent_id: String,
    /// The conversation's status (`done`, `failed`, ...).
    pub status: String,
    /// Length in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Cost in ElevenLabs credits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// ElevenLabs' summary of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// A short title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Whether the call succeeded, when ElevenLabs could tell.
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

/// Totals over a set of calls for a dashboard.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallAnalytics {
    /// How many calls.
    pub total_calls: u64,
    /// Successful calls as a fraction (0.0–1.0) of all calls.
    pub success_rate: f64,
    /// Mean length in seconds of the calls whose length is known.
    pub avg_duration: f64,
    /// Sum of the known costs.
    pub total_cost: f64,
    /// How often each collected value occurred, by field.
    pub data_collected: Vec<DataCollectedStat>,
}

/// How often one collected value occurred.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataCollectedStat {
    /// The data-collection field id.
    pub field_id: String,
    /// The value collected.
    pub value: Value,
    /// In how many calls.
    pub count: u64,
}

impl CallAnalytics {
    /// Totals over these calls. Null values of collected data are not
    /// counted; `dataCollected` is ordered by count (highest first), then
    /// field id, then value (as JSON text): the order of the call index's
    /// analytics (`recall_calls::CallIndex::analytics`), so both answer
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
        let mut counts: BTreeMap<(String, String), (Value, u64)> = BTreeMap::new();
        for call in calls {
            for (field, result) in call.data_collection_results() {
                if result.value.is_null() {
                    continue;
                }
                let entry = counts
                    .entry((field.to_owned(), result.value.to_string()))
                    .or_insert_with(|| (result.value.clone(), 0));
                entry.1 += 1;
            }
        }
        // Keyed by (field id, value as JSON text): iterating yields field id
        // then value order, which a stable sort by count keeps for ties.
        let mut data_collected: Vec<DataCollectedStat> = counts
            .into_iter()
            .map(|((field_id, _), (value, count))| DataCollectedStat {
                field_id,
                value,
                count,
            })
            .collect();
        data_collected.sort_by_key(|stat| std::cmp::Reverse(stat.count));
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
