//! Search: finding one caller's candidate memories, then the shared
//! ranking ([`recall_memory::rank`]).
//!
//! A caller with at most [`ALL_CANDIDATES`] memories offers all of them.
//! A larger caller offers, each source bounded so the work does not grow
//! with the caller:
//!
//! * the memories whose words best match the question (FTS5 over the
//!   caller's row range, BM25-bounded);
//! * the memories nearest in meaning (every stored vector of the caller
//!   scanned, one contiguous range of small rows);
//! * the newest calls, or the oldest, or those of the span of time the
//!   question names;
//! * the profile facts.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use recall_memory::rank::{Candidate, CandidateNeeds, rank};
use recall_memory::{MemoryError, MemoryFilter, ScoredMemory, SearchQuery};
use recall_model::{AgentId, MemorySector, PhoneNumber, Salience};
use rusqlite::{Connection, params};

use crate::error::memory_error;
use crate::store::{
    MEMORY_COLUMNS, UserRow, corrupt, inconsistent, load_memory, load_user, memory_from_row,
    parse_id,
};
use crate::{bm25, text};

/// A caller with at most this many memories offers all of them.
pub(crate) const ALL_CANDIDATES: i64 = 300;
/// The most memories each source offers for a larger caller.
const PER_SOURCE: usize = 40;
/// The most profile facts offered.
const MAX_FACTS: i64 = 100;
/// The most memories one query term contributes to the word match: the
/// caller's newest memories holding it.
const MAX_TERM_ROWS: i64 = 250;
/// How much further a filtered search looks per term.
const FILTERED_TERM_ROWS_FACTOR: i64 = 8;

/// The columns of [`MEMORY_COLUMNS`] without the tags and metadata JSON
/// (read as empty): what the ranking needs of a candidate. The few
/// memories returned are read in full afterwards.
fn light_columns() -> String {
    MEMORY_COLUMNS.replace("tags, metadata", "'[]', '{}'")
}

/// The SQL condition of a [`MemoryFilter`] on `memories` (parameters
/// `?2` sector, `?3` minimum salience, `?4` agent).
const FILTER_SQL: &str = "(?2 IS NULL OR sector = ?2) AND (?3 IS NULL OR salience >= ?3) \
     AND (?4 IS NULL OR agent_id = ?4)";

fn filter_params(filter: &MemoryFilter) -> (Option<&str>, Option<f64>, Option<&str>) {
    (
        filter.sector.map(MemorySector::as_str),
        filter.min_salience.map(Salience::get),
        filter.agent_id.as_ref().map(AgentId::as_str),
    )
}

pub(crate) fn search_blocking(
    tx: &Connection,
    cache: &VectorCache,
    user: &PhoneNumber,
    query: &SearchQuery,
) -> Result<Vec<ScoredMemory>, MemoryError> {
    let Some(row) = load_user(tx, user)? else {
        return Ok(Vec::new());
    };
    if row.memory_count <= 0 {
        return Ok(Vec::new());
    }
    let (sector, min_salience, agent) = filter_params(&query.filter);
    let candidates = if row.memory_count <= ALL_CANDIDATES {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {}, (SELECT v FROM vectors WHERE vectors.id = memories.id) \
                 FROM memories WHERE slot = ?1 AND {FILTER_SQL}",
                light_columns()
            ))
            .map_err(memory_error)?;
        let mut rows = stmt
            .query(params![row.slot, sector, min_salience, agent])
            .map_err(memory_error)?;
        let mut out = Vec::with_capacity(row.memory_count as usize);
        while let Some(r) = rows.next().map_err(memory_error)? {
            let memory = memory_from_row(user, r)?;
            let vector: Option<Vec<u8>> = r.get(14).map_err(corrupt)?;
            out.push(Candidate::with_vector(memory, vector.as_deref()));
        }
        out
    } else {
        let ids = candidate_ids(tx, cache, row, query)?;
        load_candidates(tx, user, &ids)?
    };
    // The ranking read each candidate without its tags and metadata: read
    // the few it returns in full.
    let mut found = rank(query, candidates);
    for scored in &mut found {
        let id = parse_id(&scored.memory.id)
            .ok_or_else(|| inconsistent("a ranked memory lost its id"))?;
        if let Some(full) = load_memory(tx, user, id)? {
            scored.memory = full;
        }
    }
    Ok(found)
}

/// The ids a large caller offers, without repeats.
fn candidate_ids(
    tx: &Connection,
    cache: &VectorCache,
    row: UserRow,
    query: &SearchQuery,
) -> Result<Vec<i64>, MemoryError> {
    let mut ids: Vec<i64> = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |found: Vec<i64>, ids: &mut Vec<i64>| {
        for id in found {
            if seen.insert(id) {
                ids.push(id);
            }
        }
    };
    add(word_matches(tx, row, query)?, &mut ids);
    if let Some(vector) = &query.vector {
        add(nearest(tx, cache, row, vector, query)?, &mut ids);
    }
    let (sector, min_salience, agent) = filter_params(&query.filter);
    let needs = CandidateNeeds::of(query);
    let by_time = |order: &str, from: i64, to: i64| -> Result<Vec<i64>, MemoryError> {
        tx.prepare_cached(&format!(
            "SELECT id FROM memories WHERE slot = ?1 AND {FILTER_SQL} \
             AND fact_key IS NULL AND created_at >= ?5 AND created_at < ?6 \
             ORDER BY created_at {order}, id LIMIT ?7"
        ))
        .and_then(|mut s| {
            s.query_map(
                params![
                    row.slot,
                    sector,
                    min_salience,
                    agent,
                    from,
                    to,
                    PER_SOURCE as i64
                ],
                |r| r.get(0),
            )?
            .collect()
        })
        .map_err(memory_error)
    };
    if needs.newest {
        add(by_time("DESC", i64::MIN, i64::MAX)?, &mut ids);
    }
    if needs.oldest {
        add(by_time("ASC", i64::MIN, i64::MAX)?, &mut ids);
    }
    if let Some((start, end)) = needs.window {
        add(by_time("DESC", start, end)?, &mut ids);
    }
    let facts: Vec<i64> = tx
        .prepare_cached(&format!(
            "SELECT id FROM memories WHERE slot = ?1 AND {FILTER_SQL} \
             AND fact_key IS NOT NULL LIMIT ?5"
        ))
        .and_then(|mut s| {
            s.query_map(
                params![row.slot, sector, min_salience, agent, MAX_FACTS],
                |r| r.get(0),
            )?
            .collect()
        })
        .map_err(memory_error)?;
    add(facts, &mut ids);
    Ok(ids)
}

/// Loads the candidates with their vectors, in the order of `ids`.
fn load_candidates(
    tx: &Connection,
    user: &PhoneNumber,
    ids: &[i64],
) -> Result<Vec<Candidate>, MemoryError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {}, (SELECT v FROM vectors WHERE vectors.id = memories.id) \
             FROM memories WHERE id = ?1",
            light_columns()
        ))
        .map_err(memory_error)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut rows = stmt.query([id]).map_err(memory_error)?;
        if let Some(r) = rows.next().map_err(memory_error)? {
            let memory = memory_from_row(user, r)?;
            let vector: Option<Vec<u8>> = r.get(14).map_err(corrupt)?;
            out.push(Candidate::with_vector(memory, vector.as_deref()));
        }
    }
    Ok(out)
}

/// A large caller's vectors, as one block: read once from the database,
/// then scanned from memory while the caller's memories do not change.
pub(crate) struct CallerVectors {
    ids: Vec<i64>,
    /// The stored forms, each `stride` bytes, in the order of `ids`.
    bytes: Vec<u8>,
    stride: usize,
}

impl CallerVectors {
    fn size(&self) -> usize {
        self.bytes.len() + self.ids.len() * 8
    }
}

/// Copies of large callers' vectors, each for one version of the caller
/// (`users.version`, read in the same snapshot, so a copy never mixes
/// states), least recently used dropped past [`VECTOR_CACHE_BYTES`].
#[derive(Default)]
pub(crate) struct VectorCache {
    entries: Mutex<CacheEntries>,
}

#[derive(Default)]
struct CacheEntries {
    /// slot → (version, vectors, last use).
    map: HashMap<i64, (i64, Arc<CallerVectors>, u64)>,
    bytes: usize,
    clock: u64,
}

/// Callers with at least this many memories have their vectors kept in
/// memory between searches; smaller ones are read each time (cheaply).
const CACHE_MIN_MEMORIES: i64 = 1_000;
/// The most memory the copies take.
const VECTOR_CACHE_BYTES: usize = 32 * 1024 * 1024;

impl VectorCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, row: UserRow) -> Option<Arc<CallerVectors>> {
        let mut entries = self.lock();
        entries.clock += 1;
        let clock = entries.clock;
        match entries.map.get_mut(&row.slot) {
            Some((version, vectors, used)) if *version == row.version => {
                *used = clock;
                Some(Arc::clone(vectors))
            }
            _ => None,
        }
    }

    fn put(&self, row: UserRow, vectors: Arc<CallerVectors>) {
        let size = vectors.size();
        if size > VECTOR_CACHE_BYTES / 4 {
            return;
        }
        let mut entries = self.lock();
        entries.clock += 1;
        let clock = entries.clock;
        if let Some((_, old, _)) = entries.map.insert(row.slot, (row.version, vectors, clock)) {
            entries.bytes -= old.size();
        }
        entries.bytes += size;
        while entries.bytes > VECTOR_CACHE_BYTES {
            let Some((&oldest, _)) = entries.map.iter().min_by_key(|(_, (_, _, used))| *used)
            else {
                break;
            };
            if let Some((_, old, _)) = entries.map.remove(&oldest) {
                entries.bytes -= old.size();
            }
        }
    }
}

/// Reads all of a caller's vectors as one block.
fn read_vectors(tx: &Connection, row: UserRow) -> Result<CallerVectors, MemoryError> {
    let mut stmt = tx
        .prepare_cached("SELECT id, v FROM vectors WHERE id BETWEEN ?1 AND ?2")
        .map_err(memory_error)?;
    let mut rows = stmt
        .query(params![row.first_id(), row.last_id()])
        .map_err(memory_error)?;
    let mut out = CallerVectors {
        ids: Vec::with_capacity(row.memory_count.max(0) as usize),
        bytes: Vec::new(),
        stride: 0,
    };
    while let Some(r) = rows.next().map_err(memory_error)? {
        let id: i64 = r.get(0).map_err(corrupt)?;
        let bytes = r.get_ref(1).map_err(corrupt)?.as_blob().map_err(corrupt)?;
        if out.stride == 0 {
            out.stride = bytes.len();
            out.bytes.reserve(out.stride * out.ids.capacity());
        }
        // A vector of another size (another model) cannot match the
        // question's anyway.
        if bytes.len() == out.stride {
            out.ids.push(id);
            out.bytes.extend_from_slice(bytes);
        }
    }
    Ok(out)
}

/// The caller's memories nearest the question in meaning: every stored
/// vector of the caller compared, the best [`PER_SOURCE`] kept.
fn nearest(
    tx: &Connection,
    cache: &VectorCache,
    row: UserRow,
    vector: &recall_memory::Embedding,
    query: &SearchQuery,
) -> Result<Vec<i64>, MemoryError> {
    let vectors = if row.memory_count >= CACHE_MIN_MEMORIES {
        match cache.get(row) {
            Some(v) => v,
            None => {
                let v = Arc::new(read_vectors(tx, row)?);
                cache.put(row, Arc::clone(&v));
                v
            }
        }
    } else {
        Arc::new(read_vectors(tx, row)?)
    };
    // A filter may reject the nearest: keep more, check them after.
    let keep = if query.filter == MemoryFilter::default() {
        PER_SOURCE
    } else {
        PER_SOURCE * 4
    };
    let probe = vector.probe();
    let mut best: Vec<(f32, i64)> = Vec::with_capacity(keep + 1);
    if vectors.stride > 0 {
        for (id, bytes) in vectors
            .ids
            .iter()
            .zip(vectors.bytes.chunks_exact(vectors.stride))
        {
            let Some(similarity) = probe.cosine(bytes) else {
                continue;
            };
            if best.len() < keep {
                best.push((similarity, *id));
                if best.len() == keep {
                    best.sort_by(|a, b| b.0.total_cmp(&a.0));
                }
            } else if similarity > best[keep - 1].0 {
                best[keep - 1] = (similarity, *id);
                best.sort_by(|a, b| b.0.total_cmp(&a.0));
            }
        }
    }
    if query.filter == MemoryFilter::default() {
        return Ok(best.into_iter().map(|(_, id)| id).collect());
    }
    let mut passing = Vec::new();
    for (_, id) in best {
        if let Some(a) = attributes(tx, id)?
            && passes(&query.filter, &a)
        {
            passing.push(id);
            if passing.len() == PER_SOURCE {
                break;
            }
        }
    }
    Ok(passing)
}

struct Attributes {
    sector: MemorySector,
    salience: f64,
    agent: Option<String>,
    n_tokens: i64,
}

fn attributes(tx: &Connection, id: i64) -> Result<Option<Attributes>, MemoryError> {
    let mut stmt = tx
        .prepare_cached("SELECT sector, salience, agent_id, n_tokens FROM memories WHERE id = ?1")
        .map_err(memory_error)?;
    let mut rows = stmt.query([id]).map_err(memory_error)?;
    let Some(r) = rows.next().map_err(memory_error)? else {
        return Ok(None);
    };
    let sector: String = r.get(0).map_err(corrupt)?;
    Ok(Some(Attributes {
        sector: MemorySector::parse(&sector).map_err(corrupt)?,
        salience: r.get(1).map_err(corrupt)?,
        agent: r.get(2).map_err(corrupt)?,
        n_tokens: r.get(3).map_err(corrupt)?,
    }))
}

fn passes(filter: &MemoryFilter, a: &Attributes) -> bool {
    filter.sector.is_none_or(|s| s == a.sector)
        && filter.min_salience.is_none_or(|s| a.salience >= s.get())
        && filter
            .agent_id
            .as_ref()
            .is_none_or(|want| a.agent.as_deref() == Some(want.as_str()))
}

/// The caller's memories that best match the question's words: per term,
/// the caller's newest memories holding it (FTS5, bounded), scored by
/// BM25 within the caller's memories; the best [`PER_SOURCE`] that pass
/// the filter.
fn word_matches(
    tx: &Connection,
    row: UserRow,
    query: &SearchQuery,
) -> Result<Vec<i64>, MemoryError> {
    let n = row.memory_count as f64;
    let avg_len = row.token_total as f64 / n;
    let terms = text::query_terms(&query.text);
    let term_rows = if query.filter == MemoryFilter::default() {
        MAX_TERM_ROWS
    } else {
        MAX_TERM_ROWS * FILTERED_TERM_ROWS_FACTOR
    };
    let mut matched: HashMap<i64, Vec<usize>> = HashMap::new();
    let mut idfs = Vec::with_capacity(terms.len());
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?1 \
                 AND rowid BETWEEN ?2 AND ?3 LIMIT ?4",
            )
            .map_err(memory_error)?;
        for (t, term) in terms.iter().enumerate() {
            let ids: Vec<i64> = stmt
                .query_map(
                    params![
                        text::fts_query(term),
                        row.first_id(),
                        row.last_id(),
                        term_rows
                    ],
                    |r| r.get(0),
                )
                .and_then(Iterator::collect)
                .map_err(memory_error)?;
            idfs.push(bm25::idf(n, ids.len() as f64));
            for id in ids {
                matched.entry(id).or_default().push(t);
            }
        }
    }
    // Candidates in order of their best possible score, so that the scan
    // can stop once no remaining one can enter the best.
    let mut bounded: Vec<(f64, i64)> = matched
        .iter()
        .map(|(id, ts)| {
            let bound = ts.iter().map(|t| bm25::max_term_weight(idfs[*t])).sum();
            (bound, *id)
        })
        .collect();
    bounded.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut scored: Vec<(f64, i64)> = Vec::new();
    let mut examined = 0usize;
    for (bound, id) in bounded {
        examined += 1;
        if scored.len() >= PER_SOURCE && examined.is_multiple_of(16) {
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.truncate(PER_SOURCE);
            if bound < scored[PER_SOURCE - 1].0 {
                break;
            }
        }
        let Some(a) = attributes(tx, id)? else {
            continue;
        };
        if !passes(&query.filter, &a) {
            continue;
        }
        let len = a.n_tokens as f64;
        let score: f64 = matched[&id]
            .iter()
            .map(|t| bm25::term_weight(idfs[*t], len, avg_len))
            .sum();
        scored.push((score, id));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(PER_SOURCE);
    Ok(scored.into_iter().map(|(_, id)| id).collect())
}
