//! The SQLite side of the index: schema, writes and queries. Every
//! function here blocks; `lib.rs` runs them on the blocking pool.

use std::path::Path;

use recall_model::ui::{
    CallAnalytics, CallDetail, CallSummary, DailyCalls, DataCollectedStat, Speaker,
    TranscriptMessage,
};
use recall_model::{
    AgentId, ConversationId, PhoneNumber, TranscriptRole, UnixTimestamp, WebhookType,
};
use recall_service::ProcessedEvent;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use recall_service::{AnalyticsQuery, CallQuery, CallRecord, IndexedCall, Page};

use crate::{CallsError, Turn};

/// The `kind` column of a connected call.
const CONNECTED: &str = "transcription";
/// The `kind` column of a call that never connected.
const NOT_CONNECTED: &str = "initiation_failure";

/// The schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    conversation_id TEXT PRIMARY KEY NOT NULL,
    agent_id TEXT NOT NULL,
    caller TEXT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time INTEGER NOT NULL,
    duration INTEGER,
    cost REAL,
    summary TEXT,
    title TEXT,
    successful INTEGER,
    transcript TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (start_time DESC, conversation_id DESC);
CREATE INDEX IF NOT EXISTS calls_by_caller ON calls (caller, start_time DESC, conversation_id DESC);
CREATE INDEX IF NOT EXISTS calls_by_agent ON calls (agent_id, start_time DESC, conversation_id DESC);
CREATE TABLE IF NOT EXISTS collected (
    conversation_id TEXT NOT NULL,
    field_id TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (conversation_id, field_id)
);
CREATE TABLE IF NOT EXISTS audio (
    conversation_id TEXT PRIMARY KEY NOT NULL
);
";

pub(crate) fn open(path: &Path) -> Result<Connection, CallsError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // `journal_mode` answers with the mode in force, so it is read as a row.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Deleted rows are overwritten with zeros, not left in free pages: an
    // erased caller's number must not survive in the file's bytes.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(conn)
}

fn kind_of(conn: &Connection, id: &str) -> Result<Option<String>, CallsError> {
    Ok(conn
        .query_row(
            "SELECT kind FROM calls WHERE conversation_id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?)
}

/// Writes one call, replacing an earlier row of the same conversation
/// unless that would put a failure over a transcription.
fn write(conn: &Connection, record: &CallRecord) -> Result<(), CallsError> {
    let id = record.conversation.as_str();
    if record.initiation_failed && kind_of(conn, id)?.as_deref() == Some(CONNECTED) {
        return Ok(());
    }
    conn.execute("DELETE FROM collected WHERE conversation_id = ?1", [id])?;
    conn.execute("DELETE FROM calls WHERE conversation_id = ?1", [id])?;
    let turns: Vec<Turn> = record
        .transcript
        .iter()
        .map(|t| Turn {
            role: t.role.as_str().to_owned(),
            message: t.message.clone(),
            time_in_call_secs: t.time_in_call_secs,
            interrupted: t.interrupted,
        })
        .collect();
    let transcript = serde_json::to_string(&turns)?;
    conn.execute(
        "INSERT INTO calls (conversation_id, agent_id, caller, kind, status, start_time,
             duration, cost, summary, title, successful, transcript)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            id,
            record.agent.as_str(),
            record.caller.as_ref().map(PhoneNumber::as_str),
            if record.initiation_failed {
                NOT_CONNECTED
            } else {
                CONNECTED
            },
            record.status,
            record.start_time.as_secs(),
            record.duration,
            record.cost,
            record.summary,
            record.title,
            record.successful,
            transcript,
        ],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO collected (conversation_id, field_id, value) VALUES (?1, ?2, ?3)",
    )?;
    for (field, value) in &record.collected {
        insert.execute(params![id, field, value.to_string()])?;
    }
    Ok(())
}

pub(crate) fn upsert(conn: &mut Connection, record: &CallRecord) -> Result<(), CallsError> {
    let tx = conn.transaction()?;
    write(&tx, record)?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn mark_audio(conn: &mut Connection, id: &ConversationId) -> Result<(), CallsError> {
    conn.execute(
        "INSERT OR IGNORE INTO audio (conversation_id) VALUES (?1)",
        [id.as_str()],
    )?;
    Ok(())
}

pub(crate) fn unmark_audio(conn: &mut Connection, id: &ConversationId) -> Result<bool, CallsError> {
    let removed = conn.execute(
        "DELETE FROM audio WHERE conversation_id = ?1",
        [id.as_str()],
    )?;
    Ok(removed > 0)
}

pub(crate) fn silent_callers(
    conn: &mut Connection,
    before: UnixTimestamp,
) -> Result<Vec<PhoneNumber>, CallsError> {
    let mut statement = conn.prepare(
        "SELECT caller FROM calls WHERE caller IS NOT NULL \
         GROUP BY caller HAVING MAX(start_time) < ?1 ORDER BY caller",
    )?;
    let callers = statement
        .query_map([before.as_secs()], |row| {
            let caller: String = row.get(0)?;
            PhoneNumber::parse(&caller).map_err(|e| bad_column(0, e))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(callers)
}

/// A `WHERE` clause (always starting with `WHERE 1`) and its parameters.
struct Filter {
    sql: String,
    params: Vec<Sql>,
}

impl Filter {
    fn new() -> Self {
        Self {
            sql: "WHERE 1".to_owned(),
            params: Vec::new(),
        }
    }

    fn and(&mut self, clause: &str, values: impl IntoIterator<Item = Sql>) {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
        self.params.extend(values);
    }

    fn common(
        &mut self,
        agent: Option<&AgentId>,
        from: Option<UnixTimestamp>,
        to: Option<UnixTimestamp>,
    ) {
        if let Some(agent) = agent {
            self.and("c.agent_id = ?", [Sql::Text(agent.as_str().to_owned())]);
        }
        if let Some(from) = from {
            self.and("c.start_time >= ?", [Sql::Integer(from.as_secs())]);
        }
        if let Some(to) = to {
            self.and("c.start_time <= ?", [Sql::Integer(to.as_secs())]);
        }
    }
}

const CALL_COLUMNS: &str = "c.conversation_id, c.agent_id, c.caller, c.kind, c.status, \
     c.start_time, c.duration, c.cost, c.summary, c.title, c.successful, \
     (a.conversation_id IS NOT NULL)";

fn bad_column(index: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
}

fn call_from_row(row: &Row<'_>) -> rusqlite::Result<IndexedCall> {
    let caller: Option<String> = row.get(2)?;
    let kind: String = row.get(3)?;
    let start: i64 = row.get(5)?;
    // Whole seconds are stored; the UI's duration is a number of seconds.
    let duration: Option<i64> = row.get(6)?;
    Ok(IndexedCall {
        call: CallSummary {
            // Written from validated ids.
            conversation_id: row.get(0)?,
            agent_id: row.get(1)?,
            status: row.get(4)?,
            duration: duration.map(|d| d as f64),
            cost: row.get(7)?,
            summary: row.get(8)?,
            title: row.get(9)?,
            successful: row.get(10)?,
        },
        caller: caller
            .map(|c| PhoneNumber::parse(&c))
            .transpose()
            .map_err(|e| bad_column(2, e))?,
        initiation_failed: kind == NOT_CONNECTED,
        start_time: UnixTimestamp::from_secs(start).map_err(|e| bad_column(5, e))?,
        has_audio: row.get(11)?,
    })
}

/// A stored turn as the UI shows it; `None` for a role the UI does not
/// show (never stored, but the column is only text).
fn message(turn: Turn) -> Option<TranscriptMessage> {
    Some(TranscriptMessage {
        role: Speaker::from_role(&TranscriptRole::parse(&turn.role))?,
        message: turn.message,
        time_in_call_secs: turn.time_in_call_secs,
        interrupted: turn.interrupted,
    })
}

pub(crate) fn list(
    conn: &mut Connection,
    query: &CallQuery,
    limit: u32,
    after: Option<(i64, ConversationId)>,
) -> Result<Page<IndexedCall>, CallsError> {
    let mut filter = Filter::new();
    if let Some(phone) = &query.phone {
        filter.and("c.caller = ?", [Sql::Text(phone.as_str().to_owned())]);
    }
    filter.common(query.agent.as_ref(), query.from, query.to);
    if let Some((start, id)) = after {
        filter.and(
            "(c.start_time, c.conversation_id) < (?, ?)",
            [Sql::Integer(start), Sql::Text(id.as_str().to_owned())],
        );
    }
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls c LEFT JOIN audio a ON a.conversation_id = c.conversation_id \
         {} ORDER BY c.start_time DESC, c.conversation_id DESC LIMIT {}",
        filter.sql,
        u64::from(limit) + 1
    );
    let mut statement = conn.prepare(&sql)?;
    let items = statement
        .query_map(params_from_iter(filter.params), call_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::of_fetched(items, limit as usize))
}

pub(crate) fn get(
    conn: &mut Connection,
    id: &ConversationId,
) -> Result<Option<CallDetail>, CallsError> {
    let sql = format!(
        "SELECT {CALL_COLUMNS}, c.transcript FROM calls c \
         LEFT JOIN audio a ON a.conversation_id = c.conversation_id \
         WHERE c.conversation_id = ?1"
    );
    let found = conn
        .query_row(&sql, [id.as_str()], |row| {
            Ok((call_from_row(row)?, row.get::<_, String>(12)?))
        })
        .optional()?;
    let Some((call, transcript)) = found else {
        return Ok(None);
    };
    let transcript: Vec<Turn> = serde_json::from_str(&transcript)?;
    Ok(Some(CallDetail {
        transcript: transcript.into_iter().filter_map(message).collect(),
        has_audio: call.has_audio,
        start_time: call.start_time,
        caller_phone: call.caller,
        transcript_deleted_at: None,
        audio_deleted_at: None,
        call: call.call,
    }))
}

pub(crate) fn analytics(
    conn: &mut Connection,
    query: &AnalyticsQuery,
) -> Result<CallAnalytics, CallsError> {
    let mut filter = Filter::new();
    filter.common(query.agent.as_ref(), query.from, query.to);
    let (total, successful, avg, cost): (i64, i64, Option<f64>, f64) = conn.query_row(
        &format!(
            "SELECT COUNT(*), COALESCE(SUM(c.successful = 1), 0), AVG(c.duration), \
             COALESCE(SUM(c.cost), 0.0) FROM calls c {}",
            filter.sql
        ),
        params_from_iter(filter.params.iter()),
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    let mut statement = conn.prepare(&format!(
        "SELECT d.field_id, d.value, COUNT(*) AS n FROM collected d \
         JOIN calls c ON c.conversation_id = d.conversation_id {} \
         GROUP BY d.field_id, d.value ORDER BY n DESC, d.field_id, d.value",
        filter.sql
    ))?;
    let data_collected = statement
        .query_map(params_from_iter(filter.params.iter()), |row| {
            let value: String = row.get(1)?;
            Ok(DataCollectedStat {
                field_id: row.get(0)?,
                value: serde_json::from_str(&value).map_err(|e| bad_column(1, e))?,
                count: row.get::<_, i64>(2)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CallAnalytics {
        total_calls: total.max(0) as u64,
        success_rate: if total > 0 {
            successful as f64 / total as f64
        } else {
            0.0
        },
        avg_duration: avg.unwrap_or(0.0),
        total_cost: cost,
        data_collected,
    })
}

pub(crate) fn daily(
    conn: &mut Connection,
    query: &AnalyticsQuery,
) -> Result<Vec<DailyCalls>, CallsError> {
    let mut filter = Filter::new();
    filter.common(query.agent.as_ref(), query.from, query.to);
    let mut statement = conn.prepare(&format!(
        "SELECT strftime('%Y-%m-%d', c.start_time, 'unixepoch') AS day, COUNT(*), \
         COALESCE(SUM(c.successful = 1), 0) FROM calls c {} GROUP BY day ORDER BY day",
        filter.sql
    ))?;
    let days = statement
        .query_map(params_from_iter(filter.params), |row| {
            Ok(DailyCalls {
                day: row.get(0)?,
                calls: row.get::<_, i64>(1)?.max(0) as u64,
                successful: row.get::<_, i64>(2)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(days)
}

pub(crate) fn conversations_of(
    conn: &mut Connection,
    phone: &PhoneNumber,
) -> Result<Vec<ConversationId>, CallsError> {
    let mut statement = conn.prepare(
        "SELECT conversation_id FROM calls WHERE caller = ?1 \
         ORDER BY start_time DESC, conversation_id DESC",
    )?;
    let ids = statement
        .query_map([phone.as_str()], |row| {
            let id: String = row.get(0)?;
            ConversationId::parse(&id).map_err(|e| bad_column(0, e))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

pub(crate) fn forget(
    conn: &mut Connection,
    phone: &PhoneNumber,
) -> Result<Vec<ConversationId>, CallsError> {
    let ids = conversations_of(conn, phone)?;
    let tx = conn.transaction()?;
    for id in &ids {
        tx.execute(
            "DELETE FROM collected WHERE conversation_id = ?1",
            [id.as_str()],
        )?;
        tx.execute(
            "DELETE FROM audio WHERE conversation_id = ?1",
            [id.as_str()],
        )?;
        tx.execute(
            "DELETE FROM calls WHERE conversation_id = ?1",
            [id.as_str()],
        )?;
    }
    tx.commit()?;
    Ok(ids)
}

/// Replaces every row with the events received until the sender is
/// dropped, in one transaction; returns how many calls the index holds.
pub(crate) fn replace_all(
    conn: &mut Connection,
    events: &mut tokio::sync::mpsc::Receiver<ProcessedEvent>,
) -> Result<u64, CallsError> {
    let tx = conn.transaction()?;
    tx.execute_batch("DELETE FROM collected; DELETE FROM audio; DELETE FROM calls;")?;
    while let Some(event) = events.blocking_recv() {
        match CallRecord::from_event(&event) {
            Ok(Some(record)) => write(&tx, &record)?,
            Ok(None) if event.kind == WebhookType::PostCallAudio => {
                tx.execute(
                    "INSERT OR IGNORE INTO audio (conversation_id) VALUES (?1)",
                    [event.conversation.as_str()],
                )?;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(conversation_id = %event.conversation, error = %e, "reindex: event skipped");
            }
        }
    }
    let calls = tx.query_row("SELECT COUNT(*) FROM calls", [], |row| row.get::<_, i64>(0))?;
    tx.commit()?;
    Ok(calls.max(0) as u64)
}
