//! [`EmbeddedStore`]: the [`MemoryStore`] on a SQLite file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use recall_memory::embed::Embedding;
use recall_memory::{
    AddOutcome, EmbeddingBacklog, EmbeddingTask, Fact, FactKey, IdempotencyKey, ListRequest,
    Memory, MemoryError, MemoryId, MemoryPage, MemoryStore, MemoryUpdate, ModelTag, NewMemory,
    ScoredMemory, SearchQuery, UserProfile,
};
use recall_model::{
    AgentId, ConversationId, DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp,
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::error::memory_error;
use crate::schema::{self, EmbeddedOptions};
use crate::search::search_blocking;
use crate::{OpenError, text};

/// Bits of a row id that number a caller's memories; the bits above
/// number the caller. Each caller's memories thus occupy one contiguous
/// range of row ids, which the full-text index can seek to directly.
const SEQ_BITS: u32 = 32;
/// The largest per-caller sequence number.
const MAX_SEQ: i64 = (1 << SEQ_BITS) - 1;

/// Columns read to rebuild a [`Memory`], in the order [`memory_from_row`]
/// expects.
pub(crate) const MEMORY_COLUMNS: &str = "id, content, sector, salience, decay_lambda, tags, metadata, \
     agent_id, conversation_id, fact_key, fact_value, fact_is_name, created_at, updated_at";

/// Recall's default memory store: one SQLite file on local disk (WAL
/// journal, FTS5 full-text index), one writer connection and a small pool
/// of read-only connections, every call run on Tokio's blocking pool.
///
/// Cloning is cheap and shares the connections.
///
/// ```
/// use recall_embedded::EmbeddedStore;
/// use recall_memory::{MemoryStore, NewMemory, SearchQuery};
/// use recall_model::{MemorySector, PhoneNumber};
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 1)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("recall-doc-{}", std::process::id()));
/// let store = EmbeddedStore::open(dir.join("memory.db"))?;
/// let caller = PhoneNumber::parse("+16125550123")?;
/// store
///     .add(&caller, NewMemory::new(
///         "Caller asked about refinancing the mortgage on their Elm Street house",
///         MemorySector::Episodic,
///     ))
///     .await?;
/// let hits = store.search(&caller, &SearchQuery::new("refinance", 5)).await?;
/// assert_eq!(hits.len(), 1);
/// # drop(store);
/// # std::fs::remove_dir_all(dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish()
    }
}

struct Inner {
    path: PathBuf,
    options: EmbeddedOptions,
    /// Copies of large callers' vectors, for searches.
    pub(crate) vectors: crate::search::VectorCache,
    // Dropped before the writer: the last connection to close checkpoints
    // the write-ahead log into the main file, which a read-only one cannot.
    readers: Vec<Mutex<Connection>>,
    writer: Mutex<Connection>,
    next_reader: AtomicUsize,
}

/// A caller's row in `users`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserRow {
    pub(crate) slot: i64,
    next_seq: i64,
    pub(crate) memory_count: i64,
    pub(crate) token_total: i64,
    /// Grows with every change to the caller's memories.
    pub(crate) version: i64,
}

impl UserRow {
    pub(crate) fn first_id(self) -> i64 {
        self.slot << SEQ_BITS
    }

    pub(crate) fn last_id(self) -> i64 {
        (self.slot << SEQ_BITS) | MAX_SEQ
    }

    fn owns(self, id: i64) -> bool {
        id >> SEQ_BITS == self.slot
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed, with its parent directories) the memory
    /// database at `path` with the default [`EmbeddedOptions`].
    ///
    /// Fails with an error naming the path when the file is not a SQLite
    /// database or is damaged ([`OpenError::Corrupt`]), was written by a
    /// newer Recall ([`OpenError::NewerSchema`]), belongs to another
    /// application ([`OpenError::Foreign`]) or is locked by another
    /// process or connection ([`OpenError::Locked`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// Opens the memory database at `path` with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, OpenError> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| OpenError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let writer = schema::open_writer(&path, &options)?;
        let readers = (0..options.readers)
            .map(|_| schema::open_reader(&path, &options).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                options,
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                vectors: crate::search::VectorCache::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Maintenance: merges the full-text index into one segment (fewer
    /// seeks per search term) and refreshes SQLite's statistics. Holds the
    /// write lock while it runs — seconds for a million memories — so
    /// writes wait (searches do not); run it at a quiet time, e.g. after a
    /// bulk import.
    pub async fn optimize(&self) -> Result<(), MemoryError> {
        self.run(|inner| {
            inner.write(|tx| {
                tx.execute(
                    "INSERT INTO memories_fts (memories_fts) VALUES ('optimize')",
                    [],
                )
                .map_err(memory_error)?;
                tx.execute_batch("PRAGMA optimize").map_err(memory_error)
            })
        })
        .await
    }

    /// Adds memories for many callers in one transaction, on the calling
    /// thread. For bulk loads (benchmarks, imports), not for request
    /// paths: it blocks. Returns how many memories were written.
    #[doc(hidden)]
    pub fn bulk_add_blocking(
        &self,
        batches: Vec<(PhoneNumber, Vec<NewMemory>)>,
    ) -> Result<usize, MemoryError> {
        let mut conn = self.inner.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(memory_error)?;
        let now = UnixTimestamp::now();
        let mut written = 0;
        for (user, memories) in batches {
            NewMemory::validate_batch(&memories)?;
            let mut row = ensure_user(&tx, &user)?;
            for m in &memories {
                add_one(&tx, &mut row, &user, m, now)?;
                written += 1;
            }
            save_user(&tx, row)?;
        }
        tx.commit().map_err(memory_error)?;
        Ok(written)
    }

    async fn run<T, F>(&self, work: F) -> Result<T, MemoryError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, MemoryError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        recall_memory::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| MemoryError::internal("embedded store task failed").with_source(e))?
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding a connection leaves no transaction open
    // (rusqlite rolls back on drop), so the connection is still usable.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// A free read-only connection, or (all busy) the next in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(guard) = self.readers[(start + i) % n].try_lock() {
                return guard;
            }
        }
        lock(&self.readers[start % n])
    }

    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, MemoryError>,
    ) -> Result<T, MemoryError> {
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(memory_error)?;
        let out = work(&tx)?;
        tx.commit().map_err(memory_error)?;
        Ok(out)
    }

    /// Checkpoints the write-ahead log into the database and truncates it.
    /// Best effort: a reader holding an old snapshot keeps the log from
    /// being emptied; SQLite's next automatic checkpoint then finishes it.
    fn checkpoint(&self) {
        let conn = self.writer();
        let _busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        });
    }

    fn read<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, MemoryError>,
    ) -> Result<T, MemoryError> {
        let mut conn = self.reader();
        // One read transaction: every statement sees the same snapshot.
        let tx = conn.transaction().map_err(memory_error)?;
        let out = work(&tx)?;
        tx.finish().map_err(memory_error)?;
        Ok(out)
    }
}

/// A stored value that `source` refused to read back.
pub(crate) fn corrupt(source: impl std::error::Error + Send + Sync + 'static) -> MemoryError {
    MemoryError::internal("embedded store: unreadable row").with_source(source)
}

/// Rows that do not fit together: `what` says how.
pub(crate) fn inconsistent(what: &str) -> MemoryError {
    MemoryError::internal(format!("embedded store: unreadable row: {what}"))
}

fn format_id(id: i64) -> MemoryId {
    MemoryId::new(format!("mem_{id:016x}")).expect("a formatted id is a valid key")
}

pub(crate) fn parse_id(id: &MemoryId) -> Option<i64> {
    let hex = id.as_str().strip_prefix("mem_")?;
    if hex.len() != 16 {
        return None;
    }
    i64::from_str_radix(hex, 16).ok().filter(|v| *v > 0)
}

pub(crate) fn load_user(
    tx: &Connection,
    user: &PhoneNumber,
) -> Result<Option<UserRow>, MemoryError> {
    tx.prepare_cached(
        "SELECT slot, next_seq, memory_count, token_total, version FROM users WHERE phone = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([user.as_str()], |r| {
            Ok(UserRow {
                slot: r.get(0)?,
                next_seq: r.get(1)?,
                memory_count: r.get(2)?,
                token_total: r.get(3)?,
                version: r.get(4)?,
            })
        })
        .optional()
    })
    .map_err(memory_error)
}

fn ensure_user(tx: &Connection, user: &PhoneNumber) -> Result<UserRow, MemoryError> {
    if let Some(row) = load_user(tx, user)? {
        return Ok(row);
    }
    tx.prepare_cached("INSERT INTO users (phone) VALUES (?1)")
        .and_then(|mut stmt| stmt.execute([user.as_str()]))
        .map_err(memory_error)?;
    load_user(tx, user)?
        .ok_or_else(|| MemoryError::internal("embedded store: new caller row vanished"))
}

/// Saves a caller's counters after a change to their memories (which
/// moves their version on).
fn save_user(tx: &Connection, row: UserRow) -> Result<(), MemoryError> {
    tx.prepare_cached(
        "UPDATE users SET next_seq = ?2, memory_count = ?3, token_total = ?4, \
         version = version + 1 WHERE slot = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            row.slot,
            row.next_seq,
            row.memory_count,
            row.token_total
        ])
    })
    .map_err(memory_error)?;
    Ok(())
}

pub(crate) fn memory_from_row(user: &PhoneNumber, r: &Row<'_>) -> Result<Memory, MemoryError> {
    let get = |e: rusqlite::Error| corrupt(e);
    let id: i64 = r.get(0).map_err(get)?;
    let sector: String = r.get(2).map_err(get)?;
    let tags: String = r.get(5).map_err(get)?;
    let metadata: String = r.get(6).map_err(get)?;
    let agent: Option<String> = r.get(7).map_err(get)?;
    let conversation: Option<String> = r.get(8).map_err(get)?;
    let fact_key: Option<String> = r.get(9).map_err(get)?;
    let fact = match fact_key {
        Some(key) => Some(Fact {
            key: FactKey::new(key).map_err(corrupt)?,
            value: r
                .get::<_, Option<String>>(10)
                .map_err(get)?
                .unwrap_or_default(),
            is_name: r.get::<_, Option<bool>>(11).map_err(get)?.unwrap_or(false),
        }),
        None => None,
    };
    Ok(Memory {
        id: format_id(id),
        user_id: user.clone(),
        content: r.get(1).map_err(get)?,
        sector: MemorySector::parse(&sector).map_err(corrupt)?,
        salience: Salience::new(r.get(3).map_err(get)?).map_err(corrupt)?,
        decay_lambda: DecayLambda::new(r.get(4).map_err(get)?).map_err(corrupt)?,
        tags: serde_json::from_str(&tags).map_err(corrupt)?,
        metadata: serde_json::from_str(&metadata).map_err(corrupt)?,
        agent_id: agent
            .as_deref()
            .map(AgentId::parse)
            .transpose()
            .map_err(corrupt)?,
        conversation_id: conversation
            .as_deref()
            .map(ConversationId::parse)
            .transpose()
            .map_err(corrupt)?,
        fact,
        created_at: UnixTimestamp::from_secs(r.get(12).map_err(get)?).map_err(corrupt)?,
        updated_at: UnixTimestamp::from_secs(r.get(13).map_err(get)?).map_err(corrupt)?,
    })
}

pub(crate) fn load_memory(
    tx: &Connection,
    user: &PhoneNumber,
    id: i64,
) -> Result<Option<Memory>, MemoryError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ?1"
        ))
        .map_err(memory_error)?;
    let mut rows = stmt.query([id]).map_err(memory_error)?;
    match rows.next().map_err(memory_error)? {
        Some(row) => memory_from_row(user, row).map(Some),
        None => Ok(None),
    }
}

/// Loads memory `id` if it belongs to the caller of `row`.
fn owned_memory(
    tx: &Connection,
    user: &PhoneNumber,
    row: Option<UserRow>,
    id: &MemoryId,
) -> Result<(UserRow, i64, Memory), MemoryError> {
    let not_found = || MemoryError::NotFound(id.clone());
    let row = row.ok_or_else(not_found)?;
    let raw = parse_id(id)
        .filter(|raw| row.owns(*raw))
        .ok_or_else(not_found)?;
    let memory = load_memory(tx, user, raw)?.ok_or_else(not_found)?;
    Ok((row, raw, memory))
}

fn idempotency_key_of(tx: &Connection, id: i64) -> Result<Option<String>, MemoryError> {
    tx.prepare_cached("SELECT idempotency_key FROM memories WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |r| r.get(0)).optional())
        .map(Option::flatten)
        .map_err(memory_error)
}

/// Deletes one memory row and its index entry; keeps a snapshot for its
/// idempotency key so that replaying the write that created it still
/// changes nothing.
fn delete_row(
    tx: &Connection,
    user: &PhoneNumber,
    row: &mut UserRow,
    id: i64,
) -> Result<(), MemoryError> {
    if let Some(key) = idempotency_key_of(tx, id)?
        && let Some(memory) = load_memory(tx, user, id)?
    {
        let snapshot = serde_json::to_string(&memory).map_err(corrupt)?;
        tx.prepare_cached("UPDATE idempotency SET snapshot = ?3 WHERE slot = ?1 AND key = ?2")
            .and_then(|mut s| s.execute(params![row.slot, key, snapshot]))
            .map_err(memory_error)?;
    }
    let n_tokens: i64 = tx
        .prepare_cached("DELETE FROM memories WHERE id = ?1 RETURNING n_tokens")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
        .map_err(memory_error)?;
    tx.prepare_cached("DELETE FROM memories_fts WHERE rowid = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(memory_error)?;
    tx.prepare_cached("DELETE FROM vectors WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(memory_error)?;
    row.memory_count -= 1;
    row.token_total -= n_tokens;
    Ok(())
}

fn store_vector(tx: &Connection, id: i64, embedding: &Embedding) -> Result<(), MemoryError> {
    tx.prepare_cached("INSERT OR REPLACE INTO vectors (id, model, v) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| {
            s.execute(params![
                id,
                i64::from(embedding.model().get()),
                embedding.to_bytes()
            ])
        })
        .map_err(memory_error)?;
    Ok(())
}

fn index(tx: &Connection, id: i64, body: &str) -> Result<(), MemoryError> {
    tx.prepare_cached("INSERT INTO memories_fts (rowid, body) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![id, body]))
        .map_err(memory_error)?;
    Ok(())
}

fn body_of(content: &str, tags: &[String], fact: Option<&Fact>) -> (String, i64) {
    text::index_body(
        content,
        tags,
        fact.map(|f| (f.key.as_str(), f.value.as_str())),
    )
}

/// Adds one validated memory inside `tx`, keeping idempotency and
/// supersession. `row` is updated in memory; the caller saves it.
fn add_one(
    tx: &Connection,
    row: &mut UserRow,
    user: &PhoneNumber,
    new: &NewMemory,
    now: UnixTimestamp,
) -> Result<AddOutcome, MemoryError> {
    if let Some(key) = &new.idempotency_key {
        let seen: Option<(i64, Option<String>)> = tx
            .prepare_cached(
                "SELECT memory_id, snapshot FROM idempotency WHERE slot = ?1 AND key = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![row.slot, key.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(memory_error)?;
        if let Some((id, snapshot)) = seen {
            if let Some(memory) = load_memory(tx, user, id)? {
                return Ok(AddOutcome::Duplicate(memory));
            }
            let snapshot =
                snapshot.ok_or_else(|| inconsistent("idempotency key without memory"))?;
            let memory: Memory = serde_json::from_str(&snapshot).map_err(corrupt)?;
            return Ok(AddOutcome::Duplicate(memory));
        }
    }

    let mut replaced = Vec::new();
    if let Some(fact) = &new.fact {
        let held: Vec<(i64, i64)> = tx
            .prepare_cached(
                "SELECT id, created_at FROM memories WHERE slot = ?1 AND fact_key = ?2 ORDER BY id",
            )
            .and_then(|mut s| {
                s.query_map(params![row.slot, fact.key.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(memory_error)?;
        if let Some(&(newer, _)) = held
            .iter()
            .find(|(_, created)| new.learnt_before(UnixTimestamp::from_secs_saturating(*created)))
        {
            let current = load_memory(tx, user, newer)?
                .ok_or_else(|| inconsistent("fact row vanished inside its transaction"))?;
            return Ok(AddOutcome::Outdated(current));
        }
        for (id, _) in held {
            delete_row(tx, user, row, id)?;
            replaced.push(format_id(id));
        }
    }

    if row.next_seq > MAX_SEQ {
        return Err(MemoryError::rejected(format!(
            "caller has reached the limit of {MAX_SEQ} memory writes"
        )));
    }
    // Counting down: a caller's newest write has the smallest id, so
    // full-text lookups, which run in ascending row id order, meet the
    // newest memories first.
    let id = (row.slot << SEQ_BITS) | (MAX_SEQ - row.next_seq);
    row.next_seq += 1;
    let (body, n_tokens) = body_of(&new.content, &new.tags, new.fact.as_ref());
    let created_at = new.occurred_at.unwrap_or(now);
    let tags = serde_json::to_string(&new.tags).map_err(corrupt)?;
    let metadata = serde_json::to_string(&new.metadata).map_err(corrupt)?;
    tx.prepare_cached(
        "INSERT INTO memories (id, slot, content, sector, salience, decay_lambda, tags, metadata, \
         agent_id, conversation_id, fact_key, fact_value, fact_is_name, idempotency_key, \
         n_tokens, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            row.slot,
            new.content,
            new.sector.as_str(),
            new.salience.get(),
            new.effective_decay().per_day(),
            tags,
            metadata,
            new.agent_id.as_ref().map(AgentId::as_str),
            new.conversation_id.as_ref().map(ConversationId::as_str),
            new.fact.as_ref().map(|f| f.key.as_str()),
            new.fact.as_ref().map(|f| f.value.as_str()),
            new.fact.as_ref().map(|f| f.is_name),
            new.idempotency_key.as_ref().map(IdempotencyKey::as_str),
            n_tokens,
            created_at.as_secs(),
            now.as_secs(),
        ])
    })
    .map_err(memory_error)?;
    index(tx, id, &body)?;
    if let Some(embedding) = &new.embedding {
        store_vector(tx, id, embedding)?;
    }
    if let Some(key) = &new.idempotency_key {
        tx.prepare_cached("INSERT INTO idempotency (slot, key, memory_id) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![row.slot, key.as_str(), id]))
            .map_err(memory_error)?;
    }
    row.memory_count += 1;
    row.token_total += n_tokens;

    let memory = Memory {
        id: format_id(id),
        user_id: user.clone(),
        content: new.content.clone(),
        sector: new.sector,
        salience: new.salience,
        decay_lambda: new.effective_decay(),
        tags: new.tags.clone(),
        metadata: new.metadata.clone(),
        agent_id: new.agent_id.clone(),
        conversation_id: new.conversation_id.clone(),
        fact: new.fact.clone(),
        created_at,
        updated_at: now,
    };
    Ok(if replaced.is_empty() {
        AddOutcome::Created(memory)
    } else {
        AddOutcome::Superseded { memory, replaced }
    })
}

/// A list cursor: the position after the last item of a page.
fn encode_cursor(created_at: i64, id: i64) -> String {
    format!("{created_at}.{id:x}")
}

fn decode_cursor(cursor: &str) -> Result<(i64, i64), MemoryError> {
    let bad = || MemoryError::InvalidCursor("not a cursor this store issued".into());
    let (at, id) = cursor.split_once('.').ok_or_else(bad)?;
    let at = at.parse::<i64>().map_err(|_| bad())?;
    let id = i64::from_str_radix(id, 16).map_err(|_| bad())?;
    Ok((at, id))
}

fn list_blocking(
    tx: &Connection,
    user: &PhoneNumber,
    request: &ListRequest,
) -> Result<MemoryPage, MemoryError> {
    let after = request.cursor.as_deref().map(decode_cursor).transpose()?;
    let Some(row) = load_user(tx, user)? else {
        return Ok(MemoryPage {
            items: Vec::new(),
            next_cursor: None,
        });
    };
    let limit = request.effective_limit();
    let (at, id) = after.unwrap_or((i64::MAX, i64::MIN));
    let filter = &request.filter;
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {MEMORY_COLUMNS} FROM memories \
             WHERE slot = ?1 AND (created_at < ?2 OR (created_at = ?2 AND id > ?3)) \
             AND (?4 IS NULL OR sector = ?4) AND (?5 IS NULL OR salience >= ?5) \
             AND (?6 IS NULL OR agent_id = ?6) \
             ORDER BY created_at DESC, id ASC LIMIT ?7"
        ))
        .map_err(memory_error)?;
    let mut rows = stmt
        .query(params![
            row.slot,
            at,
            id,
            filter.sector.map(MemorySector::as_str),
            filter.min_salience.map(Salience::get),
            filter.agent_id.as_ref().map(AgentId::as_str),
            limit as i64 + 1,
        ])
        .map_err(memory_error)?;
    let mut items = Vec::with_capacity(limit + 1);
    while let Some(r) = rows.next().map_err(memory_error)? {
        items.push(memory_from_row(user, r)?);
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .and_then(|m| parse_id(&m.id).map(|raw| encode_cursor(m.created_at.as_secs(), raw)))
    } else {
        None
    };
    Ok(MemoryPage { items, next_cursor })
}

fn update_blocking(
    tx: &Connection,
    user: &PhoneNumber,
    id: &MemoryId,
    update: MemoryUpdate,
) -> Result<Memory, MemoryError> {
    update.validate()?;
    let (mut row, raw, mut memory) = owned_memory(tx, user, load_user(tx, user)?, id)?;
    let content_changed = update.content.is_some();
    let reindex = content_changed || update.tags.is_some();
    update.apply_to(&mut memory);
    let (body, n_tokens) = body_of(&memory.content, &memory.tags, memory.fact.as_ref());
    let old_tokens: i64 = tx
        .prepare_cached("SELECT n_tokens FROM memories WHERE id = ?1")
        .and_then(|mut s| s.query_row([raw], |r| r.get(0)))
        .map_err(memory_error)?;
    tx.prepare_cached(
        "UPDATE memories SET content = ?2, salience = ?3, tags = ?4, metadata = ?5, \
         n_tokens = ?6, updated_at = ?7 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            raw,
            memory.content,
            memory.salience.get(),
            serde_json::to_string(&memory.tags).unwrap_or_else(|_| "[]".into()),
            serde_json::to_string(&memory.metadata).unwrap_or_else(|_| "{}".into()),
            n_tokens,
            memory.updated_at.as_secs(),
        ])
    })
    .map_err(memory_error)?;
    if reindex {
        tx.prepare_cached("DELETE FROM memories_fts WHERE rowid = ?1")
            .and_then(|mut s| s.execute([raw]))
            .map_err(memory_error)?;
        index(tx, raw, &body)?;
    }
    if content_changed {
        // The embedding described the old content; the backfill makes a new one.
        tx.prepare_cached("DELETE FROM vectors WHERE id = ?1")
            .and_then(|mut s| s.execute([raw]))
            .map_err(memory_error)?;
    }
    row.token_total += n_tokens - old_tokens;
    save_user(tx, row)?;
    Ok(memory)
}

fn erase_blocking(tx: &Connection, user: &PhoneNumber) -> Result<u64, MemoryError> {
    let Some(row) = load_user(tx, user)? else {
        return Ok(0);
    };
    let ids: Vec<i64> = tx
        .prepare_cached("SELECT id FROM memories WHERE slot = ?1")
        .and_then(|mut s| s.query_map([row.slot], |r| r.get(0))?.collect())
        .map_err(memory_error)?;
    {
        let mut del = tx
            .prepare_cached("DELETE FROM memories_fts WHERE rowid = ?1")
            .map_err(memory_error)?;
        for id in &ids {
            del.execute([id]).map_err(memory_error)?;
        }
    }
    tx.execute(
        "DELETE FROM vectors WHERE id BETWEEN ?1 AND ?2",
        [row.first_id(), row.last_id()],
    )
    .map_err(memory_error)?;
    let erased = tx
        .execute("DELETE FROM memories WHERE slot = ?1", [row.slot])
        .map_err(memory_error)?;
    tx.execute("DELETE FROM idempotency WHERE slot = ?1", [row.slot])
        .map_err(memory_error)?;
    tx.execute("DELETE FROM users WHERE slot = ?1", [row.slot])
        .map_err(memory_error)?;
    Ok(erased as u64)
}

fn profile_blocking(tx: &Connection, user: &PhoneNumber) -> Result<UserProfile, MemoryError> {
    let Some(row) = load_user(tx, user)? else {
        return Ok(UserProfile::from_facts(user.clone(), [], 0));
    };
    let mut stmt = tx
        .prepare_cached(
            "SELECT fact_key, fact_value, fact_is_name, created_at FROM memories \
             WHERE slot = ?1 AND fact_key IS NOT NULL",
        )
        .map_err(memory_error)?;
    let facts: Vec<(Fact, UnixTimestamp)> = stmt
        .query_map([row.slot], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<bool>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(memory_error)?
        .into_iter()
        .map(|(key, value, is_name, at)| {
            Ok((
                Fact {
                    key: FactKey::new(key).map_err(corrupt)?,
                    value: value.unwrap_or_default(),
                    is_name: is_name.unwrap_or(false),
                },
                UnixTimestamp::from_secs(at).map_err(corrupt)?,
            ))
        })
        .collect::<Result<_, MemoryError>>()?;
    Ok(UserProfile::from_facts(
        user.clone(),
        facts.iter().map(|(f, at)| (f, *at)),
        u64::try_from(row.memory_count).unwrap_or(0),
    ))
}

#[async_trait]
impl MemoryStore for EmbeddedStore {
    async fn add(&self, user: &PhoneNumber, memory: NewMemory) -> Result<AddOutcome, MemoryError> {
        memory.validate()?;
        let user = user.clone();
        self.run(move |inner| {
            inner.write(|tx| {
                let mut row = ensure_user(tx, &user)?;
                let outcome = add_one(tx, &mut row, &user, &memory, UnixTimestamp::now())?;
                if !outcome.is_duplicate() {
                    save_user(tx, row)?;
                }
                Ok(outcome)
            })
        })
        .await
    }

    async fn add_batch(
        &self,
        user: &PhoneNumber,
        memories: Vec<NewMemory>,
    ) -> Result<Vec<AddOutcome>, MemoryError> {
        NewMemory::validate_batch(&memories)?;
        if memories.is_empty() {
            return Ok(Vec::new());
        }
        let user = user.clone();
        self.run(move |inner| {
            inner.write(|tx| {
                let mut row = ensure_user(tx, &user)?;
                let now = UnixTimestamp::now();
                let outcomes = memories
                    .iter()
                    .map(|m| add_one(tx, &mut row, &user, m, now))
                    .collect::<Result<Vec<_>, _>>()?;
                save_user(tx, row)?;
                Ok(outcomes)
            })
        })
        .await
    }

    async fn search(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<Vec<ScoredMemory>, MemoryError> {
        let user = user.clone();
        let query = query.clone();
        self.run(move |inner| inner.read(|tx| search_blocking(tx, &inner.vectors, &user, &query)))
            .await
    }

    async fn search_with_profile(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<(UserProfile, Vec<ScoredMemory>), MemoryError> {
        let user = user.clone();
        let query = query.clone();
        // One blocking hand-off and one read snapshot for both: under load
        // the context switches of two hand-offs per call dominated.
        self.run(move |inner| {
            inner.read(|tx| {
                Ok((
                    profile_blocking(tx, &user)?,
                    search_blocking(tx, &inner.vectors, &user, &query)?,
                ))
            })
        })
        .await
    }

    async fn list_with_profile(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<(UserProfile, MemoryPage), MemoryError> {
        let user = user.clone();
        let request = request.clone();
        // A greeting's reads: one hand-off and one snapshot, as for search.
        self.run(move |inner| {
            inner.read(|tx| {
                Ok((
                    profile_blocking(tx, &user)?,
                    list_blocking(tx, &user, &request)?,
                ))
            })
        })
        .await
    }

    async fn list(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<MemoryPage, MemoryError> {
        let user = user.clone();
        let request = request.clone();
        self.run(move |inner| inner.read(|tx| list_blocking(tx, &user, &request)))
            .await
    }

    async fn get(&self, user: &PhoneNumber, id: &MemoryId) -> Result<Memory, MemoryError> {
        let user = user.clone();
        let id = id.clone();
        self.run(move |inner| {
            inner.read(|tx| owned_memory(tx, &user, load_user(tx, &user)?, &id).map(|(_, _, m)| m))
        })
        .await
    }

    async fn update(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        update: MemoryUpdate,
    ) -> Result<Memory, MemoryError> {
        let user = user.clone();
        let id = id.clone();
        self.run(move |inner| inner.write(|tx| update_blocking(tx, &user, &id, update)))
            .await
    }

    async fn delete(&self, user: &PhoneNumber, id: &MemoryId) -> Result<(), MemoryError> {
        let user = user.clone();
        let id = id.clone();
        self.run(move |inner| {
            inner.write(|tx| {
                let (mut row, raw, _) = owned_memory(tx, &user, load_user(tx, &user)?, &id)?;
                delete_row(tx, &user, &mut row, raw)?;
                save_user(tx, row)
            })
        })
        .await
    }

    async fn erase_user(&self, user: &PhoneNumber) -> Result<u64, MemoryError> {
        let user = user.clone();
        self.run(move |inner| {
            let erased = inner.write(|tx| erase_blocking(tx, &user))?;
            // The write-ahead log still holds the pages as they were before
            // the erasure: copy the current pages back into the database
            // and empty the log, so the caller's rows leave the disk now
            // rather than at some later checkpoint.
            inner.checkpoint();
            Ok(erased)
        })
        .await
    }

    async fn profile(&self, user: &PhoneNumber) -> Result<UserProfile, MemoryError> {
        let user = user.clone();
        self.run(move |inner| inner.read(|tx| profile_blocking(tx, &user)))
            .await
    }

    async fn embedding_backlog(
        &self,
        model: ModelTag,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<EmbeddingBacklog, MemoryError> {
        let after: i64 = match cursor {
            None => 0,
            Some(c) => c.parse().map_err(|_| {
                MemoryError::InvalidCursor("not a backlog cursor this store issued".into())
            })?,
        };
        let limit = limit.clamp(1, 10_000);
        self.run(move |inner| {
            inner.read(|tx| {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT m.id, m.content, u.phone FROM memories m \
                         JOIN users u ON u.slot = m.slot \
                         LEFT JOIN vectors v ON v.id = m.id \
                         WHERE m.id > ?1 AND (v.id IS NULL OR v.model != ?2) \
                         ORDER BY m.id LIMIT ?3",
                    )
                    .map_err(memory_error)?;
                let rows: Vec<(i64, String, String)> = stmt
                    .query_map(
                        params![after, i64::from(model.get()), limit as i64 + 1],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .and_then(Iterator::collect)
                    .map_err(memory_error)?;
                let more = rows.len() > limit;
                let mut tasks = Vec::with_capacity(limit);
                let mut last = after;
                for (id, content, phone) in rows.into_iter().take(limit) {
                    last = id;
                    tasks.push(EmbeddingTask {
                        user: PhoneNumber::parse(&phone).map_err(corrupt)?,
                        id: format_id(id),
                        content,
                    });
                }
                Ok(EmbeddingBacklog {
                    tasks,
                    next_cursor: more.then(|| last.to_string()),
                })
            })
        })
        .await
    }

    async fn set_embedding(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        embedding: Embedding,
    ) -> Result<(), MemoryError> {
        let user = user.clone();
        let id = id.clone();
        self.run(move |inner| {
            inner.write(|tx| {
                let (row, raw, _) = owned_memory(tx, &user, load_user(tx, &user)?, &id)?;
                store_vector(tx, raw, &embedding)?;
                save_user(tx, row)
            })
        })
        .await
    }

    async fn health(&self) -> Result<(), MemoryError> {
        self.run(|inner| {
            inner.read(|tx| {
                tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(memory_error)?;
                Ok(())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ids_do_not_parse() {
        let raw = (7_i64 << SEQ_BITS) | 42;
        assert_eq!(parse_id(&format_id(raw)), Some(raw));
        assert_eq!(parse_id(&MemoryId::new("mem_xyz").unwrap()), None);
        assert_eq!(
            parse_id(&MemoryId::new("3f2b1c1e-0000-4000-8000-000000000000").unwrap()),
            None
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        assert_eq!(
            decode_cursor(&encode_cursor(1_700_000_000, 0xabc)).unwrap(),
            (1_700_000_000, 0xabc)
        );
        let err = decode_cursor("not-a-cursor").unwrap_err();
        assert!(err.to_string().contains("cursor"), "{err}");
    }
}
