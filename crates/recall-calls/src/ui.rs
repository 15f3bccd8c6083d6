//! The index's values as the seed's UI models (`recall_model::ui`).

use recall_model::TranscriptRole;
use recall_model::ui::{CallAnalytics, CallSummary, DataCollectedStat, Speaker, TranscriptMessage};

use crate::{Analytics, IndexedCall, Turn};

impl IndexedCall {
    /// The call as the UI's `CallSummary`.
    pub fn to_summary(&self) -> CallSummary {
        CallSummary {
            conversation_id: self.conversation_id.as_str().to_owned(),
            agent_id: self.agent_id.as_str().to_owned(),
            status: self.status.clone(),
            duration: self.duration.map(|d| d as f64),
            cost: self.cost,
            summary: self.summary.clone(),
            title: self.title.clone(),
            successful: self.successful,
        }
    }
}

impl Turn {
    /// The turn as the UI's `TranscriptMessage`; `None` for a role the UI
    /// does not show (never stored).
    pub fn to_message(&self) -> Option<TranscriptMessage> {
        Some(TranscriptMessage {
            role: Speaker::from_role(&TranscriptRole::parse(&self.role))?,
            message: self.message.clone(),
            time_in_call_secs: self.time_in_call_secs,
            interrupted: self.interrupted,
        })
    }
}

impl Analytics {
    /// The aggregates as the UI's `CallAnalytics`.
    pub fn to_ui(&self) -> CallAnalytics {
        CallAnalytics {
            total_calls: self.total_calls,
            success_rate: self.success_rate,
            avg_duration: self.avg_duration,
            total_cost: self.total_cost,
            data_collected: self
                .data_collected
                .iter()
                .map(|c| DataCollectedStat {
                    field_id: c.field_id.clone(),
                    value: c.value.clone(),
                    count: c.count,
                })
                .collect(),
        }
    }
}
