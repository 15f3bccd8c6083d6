//! A call index held in memory: for tests, for other projects' tests, and
//! to show that the port is all a backend needs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use recall_model::ui::{CallAnalytics, CallDetail, CallSummary, DailyCalls, DataCollectedStat};
use recall_model::{ConversationId, PhoneNumber, UnixTimestamp, WebhookType};

use super::{
    AnalyticsQuery, CallIndex, CallIndexError, CallQuery, CallRecord, IndexedCall, Page,
    ProcessedEvent, encode_cursor,
};

/// A [`CallIndex`] in memory, answering exactly as the SQLite one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use recall_service::{CallIndex, CallQuery, InMemoryCallIndex};
///
/// let index = InMemoryCallIndex::new();
/// let page = index.list_calls(CallQuery::default()).await.unwrap();
/// assert!(page.items.is_empty());
/// # }
/// ```
#[derive(Debug, Default)]
pub struct InMemoryCallIndex {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    calls: BTreeMap<ConversationId, CallRecord>,
    audio: BTreeSet<ConversationId>,
}

impl State {
    fn write(&mut self, record: CallRecord) {
        let replaces_a_connected_call = self
            .calls
            .get(&record.conversation)
            .is_some_and(|old| !old.initiation_failed);
        if record.initiation_failed && replaces_a_connected_call {
            return;
        }
        self.calls.insert(record.conversation.clone(), record);
    }

    fn apply(&mut self, event: &ProcessedEvent) -> Result<(), CallIndexError> {
        match CallRecord::from_event(event)? {
            Some(record) => self.write(record),
            None if event.kind == WebhookType::PostCallAudio => {
                self.audio.insert(event.conversation.clone());
            }
            None => {}
        }
        Ok(())
    }

    fn listed(&self, record: &CallRecord) -> IndexedCall {
        IndexedCall {
            call: CallSummary {
                conversation_id: record.conversation.as_str().to_owned(),
                agent_id: record.agent.as_str().to_owned(),
                status: record.status.clone(),
                duration: record.duration.map(|d| d as f64),
                cost: record.cost,
                summary: record.summary.clone(),
                title: record.title.clone(),
                successful: record.successful,
            },
            caller: record.caller.clone(),
            start_time: record.start_time,
            has_audio: self.audio.contains(&record.conversation),
            initiation_failed: record.initiation_failed,
        }
    }

    /// The calls in range, newest first.
    fn in_range<'a>(
        &'a self,
        query: &'a AnalyticsQuery,
    ) -> impl Iterator<Item = &'a CallRecord> + 'a {
        self.calls.values().filter(move |c| {
            query.agent.as_ref().is_none_or(|a| &c.agent == a)
                && query.from.is_none_or(|from| c.start_time >= from)
                && query.to.is_none_or(|to| c.start_time <= to)
        })
    }
}

impl InMemoryCallIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change is applied whole under the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Newest first: by start time, then conversation id, both descending.
fn newest_first(a: &CallRecord, b: &CallRecord) -> std::cmp::Ordering {
    (b.start_time, &b.conversation).cmp(&(a.start_time, &a.conversation))
}

#[async_trait]
impl CallIndex for InMemoryCallIndex {
    async fn record(&self, event: &ProcessedEvent) -> Result<(), CallIndexError> {
        self.state().apply(event)
    }

    async fn rebuild(
        &self,
        mut events: tokio::sync::mpsc::Receiver<ProcessedEvent>,
    ) -> Result<u64, CallIndexError> {
        // Built aside, swapped in at once: readers see the old index until
        // the new one is complete.
        let mut fresh = State::default();
        while let Some(event) = events.recv().await {
            if let Err(error) = fresh.apply(&event) {
                tracing::warn!(conversation_id = %event.conversation, %error, "reindex: event skipped");
            }
        }
        let calls = fresh.calls.len() as u64;
        *self.state() = fresh;
        Ok(calls)
    }

    async fn forget_caller(
        &self,
        caller: &PhoneNumber,
    ) -> Result<Vec<ConversationId>, CallIndexError> {
        let mut state = self.state();
        let mut theirs: Vec<&CallRecord> = state
            .calls
            .values()
            .filter(|c| c.caller.as_ref() == Some(caller))
            .collect();
        theirs.sort_by(|a, b| newest_first(a, b));
        let ids: Vec<ConversationId> = theirs.iter().map(|c| c.conversation.clone()).collect();
        for id in &ids {
            state.calls.remove(id);
            state.audio.remove(id);
        }
        Ok(ids)
    }

    async fn unmark_audio(&self, conversation: &ConversationId) -> Result<bool, CallIndexError> {
        Ok(self.state().audio.remove(conversation))
    }

    async fn callers_silent_since(
        &self,
        before: UnixTimestamp,
    ) -> Result<Vec<PhoneNumber>, CallIndexError> {
        let mut newest: BTreeMap<&PhoneNumber, UnixTimestamp> = BTreeMap::new();
        let state = self.state();
        for call in state.calls.values() {
            if let Some(caller) = &call.caller {
                let time = newest.entry(caller).or_insert(call.start_time);
                *time = (*time).max(call.start_time);
            }
        }
        Ok(newest
            .into_iter()
            .filter(|(_, time)| *time < before)
            .map(|(caller, _)| caller.clone())
            .collect())
    }

    async fn list_calls(&self, query: CallQuery) -> Result<Page<IndexedCall>, CallIndexError> {
        let limit = query.page_size()? as usize;
        let after = query.after()?;
        let state = self.state();
        let range = AnalyticsQuery {
            agent: query.agent.clone(),
            from: query.from,
            to: query.to,
        };
        let mut calls: Vec<&CallRecord> = state
            .in_range(&range)
            .filter(|c| query.phone.is_none() || c.caller == query.phone)
            .filter(|c| {
                after.as_ref().is_none_or(|(start, id)| {
                    (c.start_time.as_secs(), &c.conversation) < (*start, id)
                })
            })
            .collect();
        calls.sort_by(|a, b| newest_first(a, b));
        let next_cursor = (calls.len() > limit).then(|| {
            let last = calls[limit - 1];
            encode_cursor(last.start_time.as_secs(), last.conversation.as_str())
        });
        let items = calls
            .into_iter()
            .take(limit)
            .map(|c| state.listed(c))
            .collect();
        Ok(Page { items, next_cursor })
    }

    async fn get_call(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<CallDetail>, CallIndexError> {
        let state = self.state();
        Ok(state.calls.get(conversation).map(|record| {
            let listed = state.listed(record);
            CallDetail {
                call: listed.call,
                transcript: record.transcript.clone(),
                has_audio: listed.has_audio,
                start_time: record.start_time,
                caller_phone: record.caller.clone(),
                transcript_deleted_at: None,
                audio_deleted_at: None,
            }
        }))
    }

    async fn analytics(&self, query: AnalyticsQuery) -> Result<CallAnalytics, CallIndexError> {
        let state = self.state();
        let calls: Vec<&CallRecord> = state.in_range(&query).collect();
        let total = calls.len() as u64;
        let successful = calls.iter().filter(|c| c.successful == Some(true)).count() as u64;
        let durations: Vec<i64> = calls.iter().filter_map(|c| c.duration).collect();
        let data_collected = DataCollectedStat::tally(calls.iter().map(|c| {
            c.collected
                .iter()
                .map(|(field, value)| (field.as_str(), value))
        }));
        Ok(CallAnalytics {
            total_calls: total,
            success_rate: if total > 0 {
                successful as f64 / total as f64
            } else {
                0.0
            },
            avg_duration: if durations.is_empty() {
                0.0
            } else {
                durations.iter().sum::<i64>() as f64 / durations.len() as f64
            },
            total_cost: calls.iter().filter_map(|c| c.cost).sum(),
            data_collected,
        })
    }

    async fn daily(&self, query: AnalyticsQuery) -> Result<Vec<DailyCalls>, CallIndexError> {
        let state = self.state();
        let mut days: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for call in state.in_range(&query) {
            let day = utc_day(call.start_time);
            let entry = days.entry(day).or_default();
            entry.0 += 1;
            entry.1 += u64::from(call.successful == Some(true));
        }
        Ok(days
            .into_iter()
            .map(|(day, (calls, successful))| DailyCalls {
                day,
                calls,
                successful,
            })
            .collect())
    }
}

/// `YYYY-MM-DD` of a time, UTC.
fn utc_day(time: UnixTimestamp) -> String {
    time.to_rfc3339()[..10].to_owned()
}
