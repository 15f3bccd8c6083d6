//! The SQLite side of the index: schema, writes and queries. Every
//! function here blocks; `lib.rs` runs them on the blocking pool.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use recall_model::{AgentId, ConversationId, PhoneNumber, UnixTimestamp};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::extract::{CallRecord, Kind};
use crate::{
    Analytics, AnalyticsQuery, CallDetail, CallQuery, CallsError, CollectedValue, DailyCalls,
    IndexedCall, Page, Payloads, ReindexReport, Turn,
};

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
    let id = record.conversation_id.as_str();
    if record.kind == Kind::InitiationFailure
        && kind_of(conn, id)?.as_deref() == Some(Kind::Transcription.as_str())
    {
        return Ok(());
    }
    conn.execute("DELETE FROM collected WHERE conversation_id = ?1", [id])?;
    conn.execute("DELETE FROM calls WHERE conversation_id = ?1", [id])?;
    let transcript = serde_json::to_string(&record.transcript)?;
    conn.execute(
        "INSERT INTO calls (conversation_id, agent_id, caller, kind, status, start_time,
             duration, cost, summary, title, successful, transcript)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            id,
            record.agent_id.as_str(),
            record.caller.as_ref().map(PhoneNumber::as_str),
            record.kind.as_str(),
            record.status,
            record.start_time,
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
    for (field, value) in &record.data_collected {
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

pub(crate) fn encode_cursor(start_time: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{start_time}:{id}"))
}

pub(crate) fn decode_cursor(raw: &str) -> Result<(i64, String), CallsError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| CallsError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| CallsError::InvalidCursor)?;
    let (start, id) = text.split_once(':').ok_or(CallsError::InvalidCursor)?;
    let start: i64 = start.parse().map_err(|_| CallsError::InvalidCursor)?;
    let id = ConversationId::parse(id).map_err(|_| CallsError::InvalidCursor)?;
    Ok((start, id.as_str().to_owned()))
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
    let id: String = row.get(0)?;
    let agent: String = row.get(1)?;
    let caller: Option<String> = row.get(2)?;
    let kind: String = row.get(3)?;
    let start: i64 = row.get(5)?;
    Ok(IndexedCall {
        conversation_id: ConversationId::parse(&id).map_err(|e| bad_column(0, e))?,
        agent_id: AgentId::parse(&agent).map_err(|e| bad_column(1, e))?,
        caller: caller
            .map(|c| PhoneNumber::parse(&c))
            .transpose()
            .map_err(|e| bad_column(2, e))?,
        initiation_failed: kind == Kind::InitiationFailure.as_str(),
        status: row.get(4)?,
        start_time: UnixTimestamp::from_secs(start).map_err(|e| bad_column(5, e))?,
        duration: row.get(6)?,
        cost: row.get(7)?,
        summary: row.get(8)?,
        title: row.get(9)?,
        successful: row.get(10)?,
        has_audio: row.get(11)?,
    })
}

pub(crate) fn list(
    conn: &mut Connection,
    query: &CallQuery,
    limit: u32,
    after: Option<(i64, String)>,
) -> Result<Page<IndexedCall>, CallsError> {
    let mut filter = Filter::new();
    if let Some(phone) = &query.phone {
        filter.and("c.caller = ?", [Sql::Text(phone.as_str().to_owned())]);
    }
    filter.common(query.agent.as_ref(), query.from, query.to);
    if let Some((start, id)) = after {
        filter.and(
            "(c.start_time, c.conversation_id) < (?, ?)",
            [Sql::Integer(start), Sql::Text(id)],
        );
    }
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls c LEFT JOIN audio a ON a.conversation_id = c.conversation_id \
         {} ORDER BY c.start_time DESC, c.conversation_id DESC LIMIT {}",
        filter.sql,
        u64::from(limit) + 1
    );
    let mut statement = conn.prepare(&sql)?;
    let mut items = statement
        .query_map(params_from_iter(filter.params), call_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| encode_cursor(last.start_time.as_secs(), last.conversation_id.as_str()))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
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
    let transcript: Vec<Turn> =
        serde_json::from_str(&transcript).map_err(|e| CallsError::Database(bad_column(12, e)))?;
    Ok(Some(CallDetail { call, transcript }))
}

pub(crate) fn analytics(
    conn: &mut Connection,
    query: &AnalyticsQuery,
) -> Result<Analytics, CallsError> {
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
            Ok(CollectedValue {
                field_id: row.get(0)?,
                value: serde_json::from_str(&value).map_err(|e| bad_column(1, e))?,
                count: row.get::<_, i64>(2)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Analytics {
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

pub(crate) fn replace_all(
    conn: &mut Connection,
    payloads: &Payloads,
) -> Result<ReindexReport, CallsError> {
    let tx = conn.transaction()?;
    tx.execute_batch("DELETE FROM collected; DELETE FROM audio; DELETE FROM calls;")?;
    for record in &payloads.records {
        write(&tx, record)?;
    }
    for id in &payloads.audio {
        tx.execute(
            "INSERT OR IGNORE INTO audio (conversation_id) VALUES (?1)",
            [id.as_str()],
        )?;
    }
    let count = |sql: &str| -> rusqlite::Result<u64> {
        tx.query_row(sql, [], |row| row.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
    };
    let report = ReindexReport {
        transcriptions: count("SELECT COUNT(*) FROM calls WHERE kind = 'transcription'")?,
        initiation_failures: count("SELECT COUNT(*) FROM calls WHERE kind = 'initiation_failure'")?,
        audio: count("SELECT COUNT(*) FROM audio")?,
        skipped: payloads.skipped,
    };
    tx.commit()?;
    Ok(report)
}
