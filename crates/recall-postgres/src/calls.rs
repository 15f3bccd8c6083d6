//! [`PgCallIndex`]: the call index on PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use recall_model::ui::{CallAnalytics, CallDetail, CallSummary, DailyCalls, DataCollectedStat};
use recall_model::{AgentId, ConversationId, PhoneNumber, UnixTimestamp, WebhookType};
use recall_service::{
    AnalyticsQuery, CallIndex, CallIndexError, CallQuery, CallRecord, IndexedCall, Page,
    ProcessedEvent,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{Database, DatabaseError};

/// A [`CallIndex`] on PostgreSQL, shared by every replica on the same
/// database (and schema). It answers as the SQLite index does (it passes
/// `recall_service::conformance::calls`): a call's row is decided by
/// [`CallRecord::from_event`], written in one statement that never puts
/// a failure over a connected call, so replicas recording the events of
/// one call in any order agree.
///
/// [`rebuild`](CallIndex::rebuild) replaces every row in one
/// transaction: readers see the old index until it commits.
///
/// Needs a [`Database`] whose schema is migrated
/// ([`Database::migrate`]).
#[derive(Clone, Debug)]
pub struct PgCallIndex {
    db: Database,
}

impl PgCallIndex {
    /// The index on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn unavailable(e: impl Into<DatabaseError>) -> CallIndexError {
    CallIndexError::unavailable(e.into())
}

/// A value read from the database that is not what was written.
fn corrupt(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> CallIndexError {
    CallIndexError::Unavailable {
        reason: format!("call index holds an unreadable {what}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// The filters every read shares: `$1` caller, `$2` agent, `$3` from,
/// `$4` to (each ignored when null).
const FILTER: &str = "($1::text IS NULL OR c.caller = $1) \
     AND ($2::text IS NULL OR c.agent_id = $2) \
     AND ($3::bigint IS NULL OR c.start_time >= $3) \
     AND ($4::bigint IS NULL OR c.start_time <= $4)";

const CALL_COLUMNS: &str = "c.conversation_id, c.agent_id, c.caller, c.initiation_failed, \
     c.status, c.start_time, c.duration, c.cost, c.summary, c.title, c.successful, \
     (a.conversation_id IS NOT NULL)";

const FROM_CALLS: &str =
    "FROM calls c LEFT JOIN call_audio a ON a.conversation_id = c.conversation_id";

/// The values of [`FILTER`]'s parameters.
struct Filter {
    caller: Option<String>,
    agent: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
}

impl Filter {
    fn new(
        caller: Option<&PhoneNumber>,
        agent: Option<&AgentId>,
        from: Option<UnixTimestamp>,
        to: Option<UnixTimestamp>,
    ) -> Self {
        Self {
            caller: caller.map(|c| c.as_str().to_owned()),
            agent: agent.map(|a| a.as_str().to_owned()),
            from: from.map(UnixTimestamp::as_secs),
            to: to.map(UnixTimestamp::as_secs),
        }
    }

    fn of(query: &AnalyticsQuery) -> Self {
        Self::new(None, query.agent.as_ref(), query.from, query.to)
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.caller, &self.agent, &self.from, &self.to]
    }
}

fn call_from_row(row: &Row) -> Result<IndexedCall, CallIndexError> {
    let caller: Option<String> = row.get(2);
    let duration: Option<i64> = row.get(6);
    Ok(IndexedCall {
        call: CallSummary {
            conversation_id: row.get(0),
            agent_id: row.get(1),
            status: row.get(4),
            duration: duration.map(|d| d as f64),
            cost: row.get(7),
            summary: row.get(8),
            title: row.get(9),
            successful: row.get(10),
        },
        caller: caller
            .map(|c| PhoneNumber::parse(&c))
            .transpose()
            .map_err(|e| corrupt("caller", e))?,
        initiation_failed: row.get(3),
        start_time: UnixTimestamp::from_secs(row.get(5)).map_err(|e| corrupt("start time", e))?,
        has_audio: row.get(11),
    })
}

/// Writes one call, unless that would put a failure over a connected
/// call; replaces its collected values when written.
async fn write(tx: &Transaction<'_>, record: &CallRecord) -> Result<(), CallIndexError> {
    let transcript = serde_json::to_string(&record.transcript)
        .map_err(|e| CallIndexError::InvalidEvent(format!("transcript: {e}")))?;
    let id = record.conversation.as_str();
    let written = tx
        .execute(
            "INSERT INTO calls (conversation_id, agent_id, caller, initiation_failed, status,
                 start_time, duration, cost, summary, title, successful, transcript)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (conversation_id) DO UPDATE SET
                 agent_id = EXCLUDED.agent_id, caller = EXCLUDED.caller,
                 initiation_failed = EXCLUDED.initiation_failed, status = EXCLUDED.status,
                 start_time = EXCLUDED.start_time, duration = EXCLUDED.duration,
                 cost = EXCLUDED.cost, summary = EXCLUDED.summary, title = EXCLUDED.title,
                 successful = EXCLUDED.successful, transcript = EXCLUDED.transcript
             WHERE NOT (EXCLUDED.initiation_failed AND NOT calls.initiation_failed)",
            &[
                &id,
                &record.agent.as_str(),
                &record.caller.as_ref().map(PhoneNumber::as_str),
                &record.initiation_failed,
                &record.status,
                &record.start_time.as_secs(),
                &record.duration,
                &record.cost,
                &record.summary,
                &record.title,
                &record.successful,
                &transcript,
            ],
        )
        .await
        .map_err(unavailable)?;
    if written == 0 {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM call_collected WHERE conversation_id = $1",
        &[&id],
    )
    .await
    .map_err(unavailable)?;
    for (field, value) in &record.collected {
        // One value per field and call: the last given.
        tx.execute(
            "INSERT INTO call_collected (conversation_id, field_id, value) VALUES ($1, $2, $3)
             ON CONFLICT (conversation_id, field_id) DO UPDATE SET value = EXCLUDED.value",
            &[&id, field, &value.to_string()],
        )
        .await
        .map_err(unavailable)?;
    }
    Ok(())
}

async fn mark_audio(tx: &Transaction<'_>, id: &ConversationId) -> Result<(), CallIndexError> {
    tx.execute(
        "INSERT INTO call_audio (conversation_id) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&id.as_str()],
    )
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Applies one event: a call's row, or the mark of its stored audio;
/// other events change nothing.
async fn apply(tx: &Transaction<'_>, event: &ProcessedEvent) -> Result<(), CallIndexError> {
    match CallRecord::from_event(event)? {
        Some(record) => write(tx, &record).await,
        None if event.kind == WebhookType::PostCallAudio => {
            mark_audio(tx, &event.conversation).await
        }
        None => Ok(()),
    }
}

#[async_trait]
impl CallIndex for PgCallIndex {
    async fn record(&self, event: &ProcessedEvent) -> Result<(), CallIndexError> {
        // Refused before a connection is taken.
        CallRecord::from_event(event)?;
        let mut client = self.db.client().await.map_err(unavailable)?;
        let tx = client.transaction().await.map_err(unavailable)?;
        apply(&tx, event).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn rebuild(
        &self,
        mut events: tokio::sync::mpsc::Receiver<ProcessedEvent>,
    ) -> Result<u64, CallIndexError> {
        let mut client = self.db.client().await.map_err(unavailable)?;
        let tx = client.transaction().await.map_err(unavailable)?;
        tx.batch_execute("DELETE FROM call_collected; DELETE FROM calls; DELETE FROM call_audio")
            .await
            .map_err(unavailable)?;
        while let Some(event) = events.recv().await {
            match apply(&tx, &event).await {
                Ok(()) => {}
                Err(error @ CallIndexError::InvalidEvent(_)) => {
                    tracing::warn!(conversation_id = %event.conversation, %error, "reindex: event skipped");
                }
                // The transaction is rolled back: the old index stays.
                Err(e) => return Err(e),
            }
        }
        let calls: i64 = tx
            .query_one("SELECT count(*) FROM calls", &[])
            .await
            .map_err(unavailable)?
            .get(0);
        tx.commit().await.map_err(unavailable)?;
        Ok(u64::try_from(calls).unwrap_or(0))
    }

    async fn forget_caller(
        &self,
        caller: &PhoneNumber,
    ) -> Result<Vec<ConversationId>, CallIndexError> {
        let mut client = self.db.client().await.map_err(unavailable)?;
        let tx = client.transaction().await.map_err(unavailable)?;
        // Collected values go with their call (ON DELETE CASCADE).
        let mut gone: Vec<(i64, String)> = tx
            .query(
                "DELETE FROM calls WHERE caller = $1 RETURNING start_time, conversation_id",
                &[&caller.as_str()],
            )
            .await
            .map_err(unavailable)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let ids: Vec<&str> = gone.iter().map(|(_, id)| id.as_str()).collect();
        tx.execute(
            "DELETE FROM call_audio WHERE conversation_id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        gone.sort_by(|a, b| b.cmp(a));
        gone.into_iter()
            .map(|(_, id)| ConversationId::parse(&id).map_err(|e| corrupt("conversation id", e)))
            .collect()
    }

    async fn unmark_audio(&self, conversation: &ConversationId) -> Result<bool, CallIndexError> {
        let client = self.db.client().await.map_err(unavailable)?;
        let removed = client
            .execute(
                "DELETE FROM call_audio WHERE conversation_id = $1",
                &[&conversation.as_str()],
            )
            .await
            .map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn callers_silent_since(
        &self,
        before: UnixTimestamp,
    ) -> Result<Vec<PhoneNumber>, CallIndexError> {
        let client = self.db.client().await.map_err(unavailable)?;
        let rows = client
            .query(
                "SELECT caller FROM calls WHERE caller IS NOT NULL \
                 GROUP BY caller HAVING max(start_time) < $1 ORDER BY caller COLLATE \"C\"",
                &[&before.as_secs()],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| PhoneNumber::parse(r.get::<_, &str>(0)).map_err(|e| corrupt("caller", e)))
            .collect()
    }

    async fn list_calls(&self, query: CallQuery) -> Result<Page<IndexedCall>, CallIndexError> {
        let limit = query.page_size()?;
        let after = query.after()?;
        let filter = Filter::new(
            query.phone.as_ref(),
            query.agent.as_ref(),
            query.from,
            query.to,
        );
        let (after_start, after_id) = match &after {
            Some((start, id)) => (Some(*start), Some(id.as_str())),
            None => (None, None),
        };
        let fetch = i64::from(limit) + 1;
        let [caller, agent, from, to] = filter.params();
        let client = self.db.client().await.map_err(unavailable)?;
        let rows = client
            .query(
                &format!(
                    "SELECT {CALL_COLUMNS} {FROM_CALLS} WHERE {FILTER} \
                     AND ($5::bigint IS NULL OR (c.start_time, c.conversation_id) < ($5, $6::text)) \
                     ORDER BY c.start_time DESC, c.conversation_id DESC LIMIT $7"
                ),
                &[caller, agent, from, to, &after_start, &after_id, &fetch],
            )
            .await
            .map_err(unavailable)?;
        let items = rows
            .iter()
            .map(call_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::of_fetched(items, limit as usize))
    }

    async fn get_call(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<CallDetail>, CallIndexError> {
        let client = self.db.client().await.map_err(unavailable)?;
        let Some(row) = client
            .query_opt(
                &format!(
                    "SELECT {CALL_COLUMNS}, c.transcript {FROM_CALLS} WHERE c.conversation_id = $1"
                ),
                &[&conversation.as_str()],
            )
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let call = call_from_row(&row)?;
        let transcript = serde_json::from_str(row.get(12)).map_err(|e| corrupt("transcript", e))?;
        Ok(Some(CallDetail {
            transcript,
            has_audio: call.has_audio,
            start_time: call.start_time,
            caller_phone: call.caller,
            transcript_deleted_at: None,
            audio_deleted_at: None,
            call: call.call,
        }))
    }

    async fn analytics(&self, query: AnalyticsQuery) -> Result<CallAnalytics, CallIndexError> {
        let filter = Filter::of(&query);
        let client = self.db.client().await.map_err(unavailable)?;
        let totals = client
            .query_one(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE c.successful), \
                     coalesce(sum(c.duration), 0)::bigint, count(c.duration), \
                     coalesce(sum(c.cost), 0.0) FROM calls c WHERE {FILTER}"
                ),
                &filter.params(),
            )
            .await
            .map_err(unavailable)?;
        let collected = client
            .query(
                &format!(
                    "SELECT d.field_id, d.value, count(*) FROM call_collected d \
                     JOIN calls c ON c.conversation_id = d.conversation_id WHERE {FILTER} \
                     GROUP BY d.field_id, d.value"
                ),
                &filter.params(),
            )
            .await
            .map_err(unavailable)?;
        let mut data_collected = collected
            .iter()
            .map(|r| {
                let field_id: String = r.get(0);
                let text: String = r.get(1);
                let value =
                    serde_json::from_str(&text).map_err(|e| corrupt("collected value", e))?;
                Ok((field_id, text, value, r.get::<_, i64>(2)))
            })
            .collect::<Result<Vec<_>, CallIndexError>>()?;
        // By field id, then the value's JSON text, bytewise; then by count,
        // highest first, keeping that order for ties (as DataCollectedStat::tally).
        data_collected.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        data_collected.sort_by_key(|d| std::cmp::Reverse(d.3));
        let (total, successful): (i64, i64) = (totals.get(0), totals.get(1));
        let (duration_sum, durations): (i64, i64) = (totals.get(2), totals.get(3));
        Ok(CallAnalytics {
            total_calls: u64::try_from(total).unwrap_or(0),
            success_rate: if total > 0 {
                successful as f64 / total as f64
            } else {
                0.0
            },
            avg_duration: if durations > 0 {
                duration_sum as f64 / durations as f64
            } else {
                0.0
            },
            total_cost: totals.get(4),
            data_collected: data_collected
                .into_iter()
                .map(|(field_id, _, value, count)| DataCollectedStat {
                    field_id,
                    value,
                    count: u64::try_from(count).unwrap_or(0),
                })
                .collect(),
        })
    }

    async fn daily(&self, query: AnalyticsQuery) -> Result<Vec<DailyCalls>, CallIndexError> {
        let filter = Filter::of(&query);
        let client = self.db.client().await.map_err(unavailable)?;
        let rows = client
            .query(
                &format!(
                    "SELECT to_char(to_timestamp(c.start_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, \
                     count(*), count(*) FILTER (WHERE c.successful) \
                     FROM calls c WHERE {FILTER} GROUP BY day ORDER BY day"
                ),
                &filter.params(),
            )
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|r| DailyCalls {
                day: r.get(0),
                calls: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                successful: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            })
            .collect())
    }
}
