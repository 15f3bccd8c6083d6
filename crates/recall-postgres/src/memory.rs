//! [`PgMemoryStore`]: the memory store on PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use recall_memory::rank::{Candidate, CandidateNeeds, rank};
use recall_memory::{
    AddOutcome, Embedding, EmbeddingBacklog, EmbeddingTask, Fact, FactKey, IdempotencyKey,
    ListRequest, Memory, MemoryError, MemoryFilter, MemoryId, MemoryPage, MemoryStore,
    MemoryUpdate, ModelTag, NewMemory, ScoredMemory, SearchQuery, UserProfile,
};
use recall_model::{
    AgentId, ConversationId, DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::cache::{CallerCache, CallerData, MemoryRow};
use crate::{Database, DatabaseError};

/// A caller with at most this many memories offers all of them to the
/// ranking.
pub const ALL_CANDIDATES: i64 = 300;
/// The most memories each source offers for a larger caller.
const PER_SOURCE: i64 = 40;
/// The most profile facts offered.
const MAX_FACTS: i64 = 100;

/// A [`MemoryStore`] on PostgreSQL, shared by every replica on the same
/// database (and schema). It keeps the port's rules (it passes
/// `recall_memory::conformance`):
///
/// * Writes of one caller take turns (a transaction-level advisory lock
///   on the caller), so supersession (an outdated fact included) and
///   idempotency hold across replicas. A batch is one transaction.
/// * Ids are `mem_` and a simple UUID v4; `created_at` is the memory's
///   `occurred_at`, else the time of the write; `list` is newest first,
///   ties in write order.
/// * Search reads one snapshot. A caller with at most
///   [`ALL_CANDIDATES`] memories offers them all to the shared ranking
///   ([`recall_memory::rank`]); a larger one offers, each source bounded,
///   the memories whose words match the question (a `tsvector` with a
///   GIN index, words matched as prefixes of the ranking's stems), the
///   nearest in meaning (every stored embedding of the caller compared
///   exactly, here), the newest, oldest or those of the span of time the
///   question names, and the profile facts. What the words and meaning
///   sources read of a large caller is kept in memory between searches
///   while the caller's version (changed by a trigger on every write, on
///   any replica) is unchanged, within a byte budget
///   ([`PgMemoryStore::with_cache`]); the words source then weighs each
///   word by its rarity among the caller's memories.
/// * Embeddings are kept in the form the ranking reads
///   ([`Embedding::to_bytes`]) with their model, for backfills. Updating
///   a memory's content drops its embedding.
/// * An idempotency key stays written when its memory is superseded or
///   deleted; [`erase_user`](MemoryStore::erase_user) forgets the
///   caller's keys too.
///
/// Needs a [`Database`] whose schema is migrated
/// ([`Database::migrate`]).
#[derive(Clone, Debug)]
pub struct PgMemoryStore {
    db: Database,
    cache: Arc<CallerCache>,
}

impl PgMemoryStore {
    /// The store on `db`, caching large callers' search data within
    /// [`DEFAULT_CACHE_BYTES`](crate::DEFAULT_CACHE_BYTES).
    pub fn new(db: Database) -> Self {
        Self::with_cache(db, crate::DEFAULT_CACHE_BYTES)
    }

    /// The store on `db`, caching large callers' search data within
    /// `bytes` of memory (0: read it from the database on every search).
    pub fn with_cache(db: Database, bytes: usize) -> Self {
        Self {
            db,
            cache: Arc::new(CallerCache::new(bytes)),
        }
    }
}

fn unavailable(e: impl Into<DatabaseError>) -> MemoryError {
    let e = e.into();
    let reason = if e.is_timeout() {
        "postgres: the statement timed out"
    } else {
        "postgres"
    };
    MemoryError::unavailable(reason).with_source(e)
}

fn corrupt(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> MemoryError {
    MemoryError::internal(format!("a stored memory's {what} is unreadable")).with_source(e)
}

/// The columns [`memory_from_row`] reads, in its order.
const MEMORY_COLUMNS: &str = "id, user_id, content, sector, salience, decay_lambda, tags, \
     metadata, agent_id, conversation_id, fact_key, fact_value, fact_is_name, created_at, \
     updated_at";

/// The SQL condition of a [`MemoryFilter`] (parameters `$2` sector, `$3`
/// minimum salience, `$4` agent).
const FILTER: &str = "($2::text IS NULL OR sector = $2) \
     AND ($3::float8 IS NULL OR salience >= $3) \
     AND ($4::text IS NULL OR agent_id = $4)";

/// The values of [`FILTER`]'s parameters.
struct FilterParams {
    sector: Option<&'static str>,
    min_salience: Option<f64>,
    agent: Option<String>,
}

impl FilterParams {
    fn of(filter: &MemoryFilter) -> Self {
        Self {
            sector: filter.sector.map(MemorySector::as_str),
            min_salience: filter.min_salience.map(Salience::get),
            agent: filter.agent_id.as_ref().map(|a| a.as_str().to_owned()),
        }
    }
}

/// The statement of one page of `list` (parameters `$1` the caller,
/// [`FILTER`]'s, `$5` and `$6` the cursor's time and sequence, `$7` how
/// many rows to fetch): the memory's columns, then `seq` and the columns
/// in `extra` (SQL beginning with a comma, or empty), in list order.
fn page_sql(extra: &str) -> String {
    format!(
        "SELECT {MEMORY_COLUMNS}, seq{extra} FROM memories WHERE user_id = $1 AND {FILTER} \
         AND ($5::bigint IS NULL OR (created_at, seq) < ($5, $6::bigint)) \
         ORDER BY created_at DESC, seq DESC LIMIT $7"
    )
}

/// The values of [`page_sql`]'s parameters.
struct PageParams {
    user: String,
    filter: FilterParams,
    after_at: Option<i64>,
    after_seq: Option<i64>,
    fetch: i64,
    limit: usize,
}

impl PageParams {
    fn of(user: &PhoneNumber, request: &ListRequest) -> Result<Self, MemoryError> {
        let after = request.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = request.effective_limit();
        Ok(Self {
            user: user.as_str().to_owned(),
            filter: FilterParams::of(&request.filter),
            after_at: after.map(|a| a.0),
            after_seq: after.map(|a| a.1),
            // One more than the page: whether there is a next one.
            fetch: i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1,
            limit,
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.user,
            &self.filter.sector,
            &self.filter.min_salience,
            &self.filter.agent,
            &self.after_at,
            &self.after_seq,
            &self.fetch,
        ]
    }
}

/// A page of at most `limit` memories from the rows of [`page_sql`] (in
/// list order, one more than `limit` when there is a next page).
fn page_of(rows: &[&Row], limit: usize) -> Result<MemoryPage, MemoryError> {
    let more = rows.len() > limit;
    let rows = &rows[..rows.len().min(limit)];
    let next_cursor = if more {
        rows.last()
            .map(|r| encode_cursor(r.get::<_, i64>(13), r.get::<_, i64>(15)))
    } else {
        None
    };
    Ok(MemoryPage {
        items: rows
            .iter()
            .map(|r| memory_from_row(r))
            .collect::<Result<_, _>>()?,
        next_cursor,
    })
}

/// The memory count and version of a caller, read (as `coalesce(max(..),
/// 0)` and `max(..)` of `memory_versions`) at columns `at` and `at + 1`
/// of `row`; none for a caller never written.
fn count_and_version(row: Option<&Row>, at: usize) -> (i64, Option<i64>) {
    row.map_or((0, None), |r| (r.get(at), r.get(at + 1)))
}

/// A caller's profile from their count and the rows holding a fact,
/// read from columns `key`.. (`fact_key`, `fact_value`, `fact_is_name`,
/// `created_at`); rows without a fact key are skipped.
fn profile_of<'a>(
    user: &PhoneNumber,
    count: i64,
    rows: impl IntoIterator<Item = &'a Row>,
    key: usize,
) -> Result<UserProfile, MemoryError> {
    let mut facts = Vec::new();
    for row in rows {
        let Some(fact_key) = row.get::<_, Option<String>>(key) else {
            continue;
        };
        facts.push((
            Fact {
                key: FactKey::new(fact_key).map_err(|e| corrupt("fact key", e))?,
                value: row.get::<_, Option<String>>(key + 1).unwrap_or_default(),
                is_name: row.get::<_, Option<bool>>(key + 2).unwrap_or(false),
            },
            UnixTimestamp::from_secs(row.get(key + 3)).map_err(|e| corrupt("time", e))?,
        ));
    }
    Ok(UserProfile::from_facts(
        user.clone(),
        facts.iter().map(|(f, at)| (f, *at)),
        u64::try_from(count).unwrap_or(0),
    ))
}

fn memory_from_row(row: &Row) -> Result<Memory, MemoryError> {
    let id = MemoryId::new(row.get::<_, String>(0)).map_err(|e| corrupt("id", e))?;
    let user_id = PhoneNumber::parse(row.get(1)).map_err(|e| corrupt("user id", e))?;
    let sector = MemorySector::parse(row.get(3)).map_err(|e| corrupt("sector", e))?;
    let salience = Salience::new(row.get(4)).map_err(|e| corrupt("salience", e))?;
    let decay_lambda = DecayLambda::new(row.get(5)).map_err(|e| corrupt("decay", e))?;
    let tags = serde_json::from_str(row.get(6)).map_err(|e| corrupt("tags", e))?;
    let metadata = serde_json::from_str(row.get(7)).map_err(|e| corrupt("metadata", e))?;
    let agent_id = row
        .get::<_, Option<&str>>(8)
        .map(AgentId::parse)
        .transpose()
        .map_err(|e| corrupt("agent id", e))?;
    let conversation_id = row
        .get::<_, Option<&str>>(9)
        .map(ConversationId::parse)
        .transpose()
        .map_err(|e| corrupt("conversation id", e))?;
    let fact = match row.get::<_, Option<String>>(10) {
        Some(key) => Some(Fact {
            key: FactKey::new(key).map_err(|e| corrupt("fact key", e))?,
            value: row.get::<_, Option<String>>(11).unwrap_or_default(),
            is_name: row.get::<_, Option<bool>>(12).unwrap_or(false),
        }),
        None => None,
    };
    let created_at = UnixTimestamp::from_secs(row.get(13)).map_err(|e| corrupt("time", e))?;
    let updated_at = UnixTimestamp::from_secs(row.get(14)).map_err(|e| corrupt("time", e))?;
    Ok(Memory {
        id,
        user_id,
        content: row.get(2),
        sector,
        salience,
        decay_lambda,
        tags,
        metadata,
        agent_id,
        conversation_id,
        fact,
        created_at,
        updated_at,
    })
}

/// A caller's memory count and version (kept by the version trigger;
/// `$1` the caller) as `n` and `v`: always one row, `0` and `NULL` for a
/// caller never written.
const COUNT_AND_VERSION: &str = "SELECT coalesce(max(memories), 0) AS n, max(version) AS v \
     FROM memory_versions WHERE user_id = $1";

/// A search candidate from a row of the memory's columns and its
/// embedding (column 15).
fn candidate_of(row: &Row) -> Result<Candidate, MemoryError> {
    Ok(Candidate::with_vector(
        memory_from_row(row)?,
        row.get::<_, Option<&[u8]>>(15),
    ))
}

/// The prefix of every list cursor this store issues (a version, so a
/// cursor of a future format is refused rather than misread).
const CURSOR_PREFIX: &str = "pg1.";
/// The prefix of every backlog cursor.
const BACKLOG_PREFIX: &str = "pgb1.";

fn encode_cursor(created_at: i64, seq: i64) -> String {
    format!("{CURSOR_PREFIX}{created_at}.{seq}")
}

fn decode_cursor(cursor: &str) -> Result<(i64, i64), MemoryError> {
    let bad = || MemoryError::InvalidCursor("not a cursor issued by this store".into());
    let rest = cursor.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    let (at, seq) = rest.split_once('.').ok_or_else(bad)?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let seq: i64 = seq.parse().map_err(|_| bad())?;
    UnixTimestamp::from_secs(at).map_err(|_| bad())?;
    if seq < 0 {
        return Err(bad());
    }
    Ok((at, seq))
}

/// Serializes the writes of one caller (across replicas) until the
/// transaction ends.
async fn lock_caller(tx: &Transaction<'_>, user: &PhoneNumber) -> Result<(), MemoryError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('recall.memories'), hashtext($1))",
        &[&user.as_str()],
    )
    .await
    .map_err(unavailable)?;
    Ok(())
}

async fn load(
    tx: &Transaction<'_>,
    user: &PhoneNumber,
    id: &str,
    for_update: bool,
) -> Result<Option<Memory>, MemoryError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    tx.query_opt(
        &format!("SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = $1 AND id = $2{lock}"),
        &[&user.as_str(), &id],
    )
    .await
    .map_err(unavailable)?
    .as_ref()
    .map(memory_from_row)
    .transpose()
}

/// Adds one memory (validated) within a transaction holding the caller's
/// lock.
async fn add_in(
    tx: &Transaction<'_>,
    user: &PhoneNumber,
    new: NewMemory,
    now: UnixTimestamp,
) -> Result<AddOutcome, MemoryError> {
    if let Some(key) = &new.idempotency_key {
        let written = tx
            .query_opt(
                "SELECT memory_id, first_written FROM memory_keys WHERE user_id = $1 AND key = $2",
                &[&user.as_str(), &key.as_str()],
            )
            .await
            .map_err(unavailable)?;
        if let Some(row) = written {
            // The memory as it is now, or as first written if it is gone.
            let current = load(tx, user, row.get(0), false).await?;
            let memory = match current {
                Some(memory) => memory,
                None => serde_json::from_str(row.get(1))
                    .map_err(|e| corrupt("first written form", e))?,
            };
            return Ok(AddOutcome::Duplicate(memory));
        }
    }
    let mut replaced = Vec::new();
    if let Some(fact) = &new.fact {
        // One statement: the holders of the key are deleted unless one was
        // learnt later than this fact, whose id is then returned instead
        // (the caller's lock is held, so nothing changes in between).
        let row = tx
            .query_one(
                "WITH newer AS (SELECT id FROM memories \
                     WHERE user_id = $1 AND fact_key = $2 AND created_at > $3 LIMIT 1), \
                 gone AS (DELETE FROM memories \
                     WHERE user_id = $1 AND fact_key = $2 AND NOT EXISTS (SELECT 1 FROM newer) \
                     RETURNING id) \
                 SELECT (SELECT id FROM newer), ARRAY(SELECT id FROM gone)",
                &[
                    &user.as_str(),
                    &fact.key.as_str(),
                    &new.occurred_at.map(UnixTimestamp::as_secs),
                ],
            )
            .await
            .map_err(unavailable)?;
        if let Some(newer) = row.get::<_, Option<String>>(0) {
            let current = load(tx, user, &newer, false).await?.ok_or_else(|| {
                MemoryError::internal("a fact's newer holder vanished under the caller's lock")
            })?;
            return Ok(AddOutcome::Outdated(current));
        }
        for id in row.get::<_, Vec<String>>(1) {
            replaced.push(MemoryId::new(id).map_err(|e| corrupt("id", e))?);
        }
    }
    let embedding = new.embedding.as_ref().map(Embedding::to_bytes);
    let model = new.embedding.as_ref().map(|e| i64::from(e.model().get()));
    let idempotency_key: Option<IdempotencyKey> = new.idempotency_key.clone();
    let memory = new.into_memory(user, now);
    let tags = serde_json::to_string(&memory.tags).map_err(|e| corrupt("tags", e))?;
    let metadata = serde_json::to_string(&memory.metadata).map_err(|e| corrupt("metadata", e))?;
    let params: [&(dyn ToSql + Sync); 17] = [
        &memory.id.as_str(),
        &user.as_str(),
        &memory.content,
        &memory.sector.as_str(),
        &memory.salience.get(),
        &memory.decay_lambda.per_day(),
        &tags,
        &metadata,
        &memory.agent_id.as_ref().map(AgentId::as_str),
        &memory.conversation_id.as_ref().map(ConversationId::as_str),
        &memory.fact.as_ref().map(|f| f.key.as_str()),
        &memory.fact.as_ref().map(|f| f.value.as_str()),
        &memory.fact.as_ref().map(|f| f.is_name),
        &memory.created_at.as_secs(),
        &memory.updated_at.as_secs(),
        &embedding,
        &model,
    ];
    tx.execute(
        &format!(
            "INSERT INTO memories ({MEMORY_COLUMNS}, embedding, embedding_model) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ),
        &params,
    )
    .await
    .map_err(unavailable)?;
    if let Some(key) = idempotency_key {
        let first_written =
            serde_json::to_string(&memory).map_err(|e| corrupt("first written form", e))?;
        tx.execute(
            "INSERT INTO memory_keys (user_id, key, memory_id, first_written) VALUES ($1, $2, $3, $4)",
            &[&user.as_str(), &key.as_str(), &memory.id.as_str(), &first_written],
        )
        .await
        .map_err(unavailable)?;
    }
    Ok(if replaced.is_empty() {
        AddOutcome::Created(memory)
    } else {
        AddOutcome::Superseded { memory, replaced }
    })
}

/// The words of the question as a `tsquery` of prefixes: each of the
/// ranking's stems (`refinanc`) matches the words it begins
/// (`refinancing`). `None` without words.
fn word_query(text: &str) -> Option<String> {
    let terms: Vec<String> = recall_memory::text::terms(text)
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(|t| format!("'{}':*", t.replace('\\', "\\\\").replace('\'', "''")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" | "))
}

impl PgMemoryStore {
    async fn write_tx<T>(
        &self,
        user: &PhoneNumber,
        f: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, MemoryError>,
    ) -> Result<T, MemoryError> {
        let mut client = self.db.client().await.map_err(unavailable)?;
        let tx = client.transaction().await.map_err(unavailable)?;
        lock_caller(&tx, user).await?;
        let out = f(&tx).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(out)
    }

    /// The candidates of a search.
    async fn candidates(
        &self,
        tx: &impl GenericClient,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<Vec<Candidate>, MemoryError> {
        let row = cached_one(tx, COUNT_AND_VERSION, &[&user.as_str()]).await?;
        let (count, version) = count_and_version(Some(&row), 0);
        if count == 0 {
            self.forget_erased(user);
            return Ok(Vec::new());
        }
        if count > ALL_CANDIDATES {
            return self.large_candidates(tx, user, version, query).await;
        }
        let filter = FilterParams::of(&query.filter);
        let rows = cached_query(
            tx,
            &format!(
                "SELECT {MEMORY_COLUMNS}, embedding FROM memories \
                 WHERE user_id = $1 AND {FILTER} ORDER BY seq"
            ),
            &[
                &user.as_str(),
                &filter.sector,
                &filter.min_salience,
                &filter.agent,
            ],
        )
        .await?;
        rows.iter().map(candidate_of).collect()
    }

    /// The candidates a caller of more than [`ALL_CANDIDATES`] memories
    /// offers, their `version` as read before.
    async fn large_candidates(
        &self,
        tx: &impl GenericClient,
        user: &PhoneNumber,
        version: Option<i64>,
        query: &SearchQuery,
    ) -> Result<Vec<Candidate>, MemoryError> {
        let filter = FilterParams::of(&query.filter);
        let base: [&(dyn ToSql + Sync); 4] = [
            &user.as_str(),
            &filter.sector,
            &filter.min_salience,
            &filter.agent,
        ];
        let seqs = self.candidate_seqs(tx, user, version, &base, query).await?;
        let rows = cached_query(
            tx,
            &format!(
                "SELECT {MEMORY_COLUMNS}, embedding FROM memories \
                 WHERE user_id = $1 AND seq = ANY($2) ORDER BY seq"
            ),
            &[&user.as_str(), &seqs],
        )
        .await?;
        rows.iter().map(candidate_of).collect()
    }

    /// A caller without memories was erased, maybe on another replica:
    /// what this one cached of them goes.
    fn forget_erased(&self, user: &PhoneNumber) {
        self.cache.forget(user.as_str());
    }

    /// A large caller is greeted while the phone rings; the memory tool
    /// is asked seconds later: have their search data ready by then.
    fn warm(&self, user: &PhoneNumber, count: i64, version: Option<i64>) {
        if count > ALL_CANDIDATES
            && let Some(version) = version
        {
            self.fill_in_background(user, version);
        }
    }

    /// The rows a large caller offers, without repeats.
    async fn candidate_seqs(
        &self,
        tx: &impl GenericClient,
        user: &PhoneNumber,
        version: Option<i64>,
        base: &[&(dyn ToSql + Sync); 4],
        query: &SearchQuery,
    ) -> Result<Vec<i64>, MemoryError> {
        let first = |rows: Vec<Row>| rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>();
        let [_, sector, salience, agent] = *base;
        // The sources are independent: their statements are sent together
        // (pipelined on the one connection), one round trip for all.
        let cached = self.caller_data(user, version);
        let words = async {
            if let Some(data) = &cached {
                return Ok(data.matching(&query.text, &query.filter, PER_SOURCE as usize));
            }
            let Some(words) = word_query(&query.text) else {
                return Ok(Vec::new());
            };
            let sql = format!(
                "SELECT seq FROM memories, to_tsquery('simple', $5) q \
                 WHERE user_id = $1 AND {FILTER} AND words @@ q \
                 ORDER BY ts_rank(words, q) DESC, created_at DESC, seq DESC LIMIT $6"
            );
            let params: [&(dyn ToSql + Sync); 6] =
                [base[0], sector, salience, agent, &words, &PER_SOURCE];
            cached_query(tx, &sql, &params).await.map(first)
        };
        let meaning = async {
            let Some(vector) = &query.vector else {
                return Ok(Vec::new());
            };
            // Exact: every stored embedding of the caller compared here.
            let probe = vector.probe();
            if let Some(data) = &cached {
                return Ok(data.nearest(&probe, &query.filter, PER_SOURCE as usize));
            }
            let sql = format!(
                "SELECT seq, embedding FROM memories \
                 WHERE user_id = $1 AND {FILTER} AND embedding_model = $5"
            );
            let model = i64::from(vector.model().get());
            let params: [&(dyn ToSql + Sync); 5] = [base[0], sector, salience, agent, &model];
            let rows = cached_query(tx, &sql, &params).await?;
            let mut scored: Vec<(f32, i64)> = rows
                .iter()
                .filter_map(|r| Some((probe.cosine(r.get(1))?, r.get::<_, i64>(0))))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
            Ok(scored
                .into_iter()
                .take(PER_SOURCE as usize)
                .map(|(_, seq)| seq)
                .collect())
        };
        let needs = CandidateNeeds::of(query);
        let mut spans: Vec<(&str, i64, i64)> = Vec::new();
        if needs.newest {
            spans.push(("DESC", i64::MIN, i64::MAX));
        }
        if needs.oldest {
            spans.push(("ASC", i64::MIN, i64::MAX));
        }
        if let Some((start, end)) = needs.window {
            spans.push(("DESC", start, end));
        }
        let times = futures_util::future::try_join_all(spans.into_iter().map(
            |(order, from, to)| async move {
                let sql = format!(
                    "SELECT seq FROM memories WHERE user_id = $1 AND {FILTER} \
                     AND fact_key IS NULL AND created_at >= $5 AND created_at < $6 \
                     ORDER BY created_at {order}, seq {order} LIMIT $7"
                );
                let params: [&(dyn ToSql + Sync); 7] =
                    [base[0], sector, salience, agent, &from, &to, &PER_SOURCE];
                cached_query(tx, &sql, &params).await.map(first)
            },
        ));
        let facts = async {
            let sql = format!(
                "SELECT seq FROM memories WHERE user_id = $1 AND {FILTER} \
                 AND fact_key IS NOT NULL ORDER BY seq DESC LIMIT $5"
            );
            let params: [&(dyn ToSql + Sync); 5] = [base[0], sector, salience, agent, &MAX_FACTS];
            cached_query(tx, &sql, &params).await.map(first)
        };
        let (words, meaning, times, facts) =
            futures_util::future::try_join4(words, meaning, times, facts).await?;
        let mut seen = HashSet::new();
        let mut seqs: Vec<i64> = Vec::new();
        for seq in words
            .into_iter()
            .chain(meaning)
            .chain(times.into_iter().flatten())
            .chain(facts)
        {
            if seen.insert(seq) {
                seqs.push(seq);
            }
        }
        Ok(seqs)
    }
}

impl PgMemoryStore {
    /// A large caller's search data, when the cache holds it as of
    /// `version`. Otherwise `None` (the search reads the database), and
    /// the data is read into the cache in the background for the next
    /// search: the first search after a write costs what an uncached one
    /// does, not more.
    fn caller_data(&self, user: &PhoneNumber, version: Option<i64>) -> Option<Arc<CallerData>> {
        let version = version.filter(|_| self.cache.enabled())?;
        let hit = self.cache.get(user.as_str(), version);
        if hit.is_none() {
            self.fill_in_background(user, version);
        }
        hit
    }

    /// Reads a large caller's search data into the cache, in the
    /// background, unless it is there as of `version` or being read.
    fn fill_in_background(&self, user: &PhoneNumber, version: i64) {
        if !self.cache.enabled()
            || self.cache.get(user.as_str(), version).is_some()
            || !self.cache.begin_fill(user.as_str())
        {
            return;
        }
        let (store, user) = (self.clone(), user.clone());
        tokio::spawn(async move {
            if let Err(error) = store.cache_caller(&user).await {
                tracing::debug!(%error, "a caller's search data was not cached");
            }
            store.cache.end_fill(user.as_str());
        });
    }

    /// Reads a caller's search data into this replica's cache now, at the
    /// version read with it (one snapshot), rather than in the background
    /// after a search or greeting finds it missing. Does nothing for a
    /// caller without memories or with the cache off.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn cache_caller(&self, user: &PhoneNumber) -> Result<(), MemoryError> {
        if !self.cache.enabled() {
            return Ok(());
        }
        let mut client = self.db.client().await.map_err(unavailable)?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(unavailable)?;
        let version = cached_query(
            &tx,
            "SELECT version FROM memory_versions WHERE user_id = $1",
            &[&user.as_str()],
        )
        .await?;
        let Some(version) = version.first().map(|r| r.get::<_, i64>(0)) else {
            return Ok(());
        };
        let rows = cached_query(
            &tx,
            "SELECT seq, created_at, sector, salience, agent_id, embedding, content, fact_key \
             FROM memories WHERE user_id = $1",
            &[&user.as_str()],
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        let sectors = rows
            .iter()
            .map(|r| MemorySector::parse(r.get(2)).map_err(|e| corrupt("sector", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let user_key = user.as_str().to_owned();
        let cache = self.cache.clone();
        // Building the dictionary is CPU work: off the async threads.
        recall_memory::spawn_blocking(move || {
            let data = CallerData::build(rows.iter().zip(sectors).map(|(r, sector)| MemoryRow {
                seq: r.get(0),
                created_at: r.get(1),
                sector,
                salience: r.get(3),
                agent_id: r.get(4),
                embedding: r.get(5),
                content: r.get(6),
                fact_key: r.get(7),
            }));
            cache.put(&user_key, version, data);
        })
        .await
        .map_err(|e| MemoryError::internal("caching a caller's search data").with_source(e))
    }
}

/// Runs `sql`, prepared once per connection (a round trip saved on every
/// later call).
async fn cached_query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, MemoryError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client.query(&statement, params).await.map_err(unavailable)
}

/// [`cached_query`], for a statement answering one row.
async fn cached_one(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, MemoryError> {
    let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
    client
        .query_one(&statement, params)
        .await
        .map_err(unavailable)
}

#[async_trait]
impl MemoryStore for PgMemoryStore {
    async fn add(&self, user: &PhoneNumber, memory: NewMemory) -> Result<AddOutcome, MemoryError> {
        memory.validate()?;
        self.write_tx(user, async |tx| {
            add_in(tx, user, memory, UnixTimestamp::now()).await
        })
        .await
    }

    /// Adds all or nothing: every memory is validated before any is
    /// written, and the batch is one transaction.
    async fn add_batch(
        &self,
        user: &PhoneNumber,
        memories: Vec<NewMemory>,
    ) -> Result<Vec<AddOutcome>, MemoryError> {
        NewMemory::validate_batch(&memories)?;
        if memories.is_empty() {
            return Ok(Vec::new());
        }
        self.write_tx(user, async |tx| {
            let now = UnixTimestamp::now();
            let mut outcomes = Vec::with_capacity(memories.len());
            for memory in memories {
                outcomes.push(add_in(tx, user, memory, now).await?);
            }
            Ok(outcomes)
        })
        .await
    }

    async fn search(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<Vec<ScoredMemory>, MemoryError> {
        // No transaction: the count only picks how candidates are found,
        // and a memory written between two reads is found or not, as it
        // would be a moment earlier or later. Statements are prepared once
        // per connection.
        let client = self.db.client().await.map_err(unavailable)?;
        let candidates = self.candidates(&client, user, query).await?;
        Ok(rank(query, candidates))
    }

    /// One statement for the count, the facts and, for a caller of at
    /// most [`ALL_CANDIDATES`] memories, every candidate: the memory
    /// tool's answer is one round trip (a larger caller's candidates are
    /// then found as [`search`](MemoryStore::search) finds them).
    async fn search_with_profile(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<(UserProfile, Vec<ScoredMemory>), MemoryError> {
        let filter = FilterParams::of(&query.filter);
        let client = self.db.client().await.map_err(unavailable)?;
        let candidate = format!("(c.n <= $5 AND {FILTER})");
        // Columns: the memory's (0..=14), a candidate's embedding (15),
        // seq (16), whether the row is a candidate rather than only a fact
        // (17), the count and version (18, 19).
        let rows = cached_query(
            &client,
            &format!(
                "SELECT m.*, c.n, c.v FROM ({COUNT_AND_VERSION}) c \
                 LEFT JOIN LATERAL ( \
                   SELECT {MEMORY_COLUMNS}, CASE WHEN {candidate} THEN embedding END, seq, \
                          {candidate} AS candidate \
                   FROM memories WHERE user_id = $1 AND (fact_key IS NOT NULL OR {candidate}) \
                 ) m ON true"
            ),
            &[
                &user.as_str(),
                &filter.sector,
                &filter.min_salience,
                &filter.agent,
                &ALL_CANDIDATES,
            ],
        )
        .await?;
        let (count, version) = count_and_version(rows.first(), 18);
        let profile = profile_of(user, count, &rows, 10)?;
        let candidates = if count == 0 {
            self.forget_erased(user);
            Vec::new()
        } else if count <= ALL_CANDIDATES {
            let mut rows: Vec<&Row> = rows
                .iter()
                .filter(|r| r.get::<_, Option<bool>>(17) == Some(true))
                .collect();
            // In write order, as `search` offers them.
            rows.sort_by_key(|r| r.get::<_, i64>(16));
            rows.into_iter()
                .map(candidate_of)
                .collect::<Result<_, _>>()?
        } else {
            self.large_candidates(&client, user, version, query).await?
        };
        Ok((profile, rank(query, candidates)))
    }

    async fn list(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<MemoryPage, MemoryError> {
        let page = PageParams::of(user, request)?;
        let client = self.db.client().await.map_err(unavailable)?;
        let rows = cached_query(&client, &page_sql(""), &page.params()).await?;
        page_of(&rows.iter().collect::<Vec<_>>(), page.limit)
    }

    /// One statement: the count, the facts and the page (a caller's
    /// greeting is one round trip).
    async fn list_with_profile(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<(UserProfile, MemoryPage), MemoryError> {
        let page = PageParams::of(user, request)?;
        let client = self.db.client().await.map_err(unavailable)?;
        // Columns: the memory's (0..=14), seq (15), whether the row is of
        // the page rather than a fact (16), the count and version (17, 18).
        let rows = cached_query(
            &client,
            &format!(
                "SELECT m.*, c.n, c.v FROM ({COUNT_AND_VERSION}) c \
                 LEFT JOIN LATERAL ( \
                   (SELECT {MEMORY_COLUMNS}, seq, false AS listed FROM memories \
                    WHERE user_id = $1 AND fact_key IS NOT NULL) \
                   UNION ALL ({}) \
                 ) m ON true",
                page_sql(", true")
            ),
            &page.params(),
        )
        .await?;
        let (count, version) = count_and_version(rows.first(), 17);
        self.warm(user, count, version);
        let listed = |r: &&Row| r.get::<_, Option<bool>>(16);
        let profile = profile_of(
            user,
            count,
            rows.iter().filter(|r| listed(r) == Some(false)),
            10,
        )?;
        let mut in_page: Vec<&Row> = rows.iter().filter(|r| listed(r) == Some(true)).collect();
        // A union keeps no order: put the page back in list order.
        in_page.sort_by_key(|r| std::cmp::Reverse((r.get::<_, i64>(13), r.get::<_, i64>(15))));
        Ok((profile, page_of(&in_page, page.limit)?))
    }

    async fn get(&self, user: &PhoneNumber, id: &MemoryId) -> Result<Memory, MemoryError> {
        let client = self.db.client().await.map_err(unavailable)?;
        client
            .query_opt(
                &format!("SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = $1 AND id = $2"),
                &[&user.as_str(), &id.as_str()],
            )
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(memory_from_row)
            .transpose()?
            .ok_or_else(|| MemoryError::NotFound(id.clone()))
    }

    async fn update(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        update: MemoryUpdate,
    ) -> Result<Memory, MemoryError> {
        update.validate()?;
        self.write_tx(user, async |tx| {
            let mut memory = load(tx, user, id.as_str(), true)
                .await?
                .ok_or_else(|| MemoryError::NotFound(id.clone()))?;
            let new_content = update.content.is_some();
            update.apply_to(&mut memory);
            let tags = serde_json::to_string(&memory.tags).map_err(|e| corrupt("tags", e))?;
            let metadata =
                serde_json::to_string(&memory.metadata).map_err(|e| corrupt("metadata", e))?;
            // A new content drops the embedding of the old one.
            tx.execute(
                "UPDATE memories SET content = $3, salience = $4, tags = $5, metadata = $6, \
                 updated_at = $7, \
                 embedding = CASE WHEN $8 THEN NULL ELSE embedding END, \
                 embedding_model = CASE WHEN $8 THEN NULL ELSE embedding_model END \
                 WHERE user_id = $1 AND id = $2",
                &[
                    &user.as_str(),
                    &id.as_str(),
                    &memory.content,
                    &memory.salience.get(),
                    &tags,
                    &metadata,
                    &memory.updated_at.as_secs(),
                    &new_content,
                ],
            )
            .await
            .map_err(unavailable)?;
            Ok(memory)
        })
        .await
    }

    async fn delete(&self, user: &PhoneNumber, id: &MemoryId) -> Result<(), MemoryError> {
        // In the caller's turn like every write: the version trigger's row
        // lock is then always taken after the caller's lock, never before
        // a memory row another writer holds.
        self.write_tx(user, async |tx| {
            let deleted = tx
                .execute(
                    "DELETE FROM memories WHERE user_id = $1 AND id = $2",
                    &[&user.as_str(), &id.as_str()],
                )
                .await
                .map_err(unavailable)?;
            if deleted == 0 {
                return Err(MemoryError::NotFound(id.clone()));
            }
            Ok(())
        })
        .await
    }

    async fn erase_user(&self, user: &PhoneNumber) -> Result<u64, MemoryError> {
        self.cache.forget(user.as_str());
        self.write_tx(user, async |tx| {
            let erased = tx
                .execute("DELETE FROM memories WHERE user_id = $1", &[&user.as_str()])
                .await
                .map_err(unavailable)?;
            tx.execute(
                "DELETE FROM memory_keys WHERE user_id = $1",
                &[&user.as_str()],
            )
            .await
            .map_err(unavailable)?;
            Ok(erased)
        })
        .await
    }

    async fn profile(&self, user: &PhoneNumber) -> Result<UserProfile, MemoryError> {
        // The count and version (kept by the version trigger) and the
        // facts in one statement (one snapshot, one round trip): a caller
        // without facts still gets the count's row.
        let client = self.db.client().await.map_err(unavailable)?;
        let rows = cached_query(
            &client,
            &format!(
                "SELECT c.n, c.v, m.fact_key, m.fact_value, m.fact_is_name, m.created_at \
                 FROM ({COUNT_AND_VERSION}) c \
                 LEFT JOIN memories m ON m.user_id = $1 AND m.fact_key IS NOT NULL"
            ),
            &[&user.as_str()],
        )
        .await?;
        let (count, version) = count_and_version(rows.first(), 0);
        self.warm(user, count, version);
        profile_of(user, count, &rows, 2)
    }

    async fn health(&self) -> Result<(), MemoryError> {
        let client = self.db.client().await.map_err(unavailable)?;
        client
            .query_one("SELECT count(*) FROM memories WHERE false", &[])
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn embedding_backlog(
        &self,
        model: ModelTag,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<EmbeddingBacklog, MemoryError> {
        let after: i64 = match cursor {
            None => 0,
            Some(c) => c
                .strip_prefix(BACKLOG_PREFIX)
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|s| *s >= 0)
                .ok_or_else(|| {
                    MemoryError::InvalidCursor("not a backlog cursor this store issued".into())
                })?,
        };
        let limit = limit.max(1);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let client = self.db.client().await.map_err(unavailable)?;
        let rows = client
            .query(
                "SELECT seq, user_id, id, content FROM memories \
                 WHERE seq > $1 AND (embedding IS NULL OR embedding_model IS DISTINCT FROM $2) \
                 ORDER BY seq LIMIT $3",
                &[&after, &i64::from(model.get()), &fetch],
            )
            .await
            .map_err(unavailable)?;
        let more = rows.len() > limit;
        let rows = &rows[..rows.len().min(limit)];
        Ok(EmbeddingBacklog {
            next_cursor: if more {
                rows.last()
                    .map(|r| format!("{BACKLOG_PREFIX}{}", r.get::<_, i64>(0)))
            } else {
                None
            },
            tasks: rows
                .iter()
                .map(|r| {
                    Ok(EmbeddingTask {
                        user: PhoneNumber::parse(r.get(1)).map_err(|e| corrupt("user id", e))?,
                        id: MemoryId::new(r.get::<_, String>(2)).map_err(|e| corrupt("id", e))?,
                        content: r.get(3),
                    })
                })
                .collect::<Result<_, MemoryError>>()?,
        })
    }

    async fn set_embedding(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        embedding: Embedding,
    ) -> Result<(), MemoryError> {
        self.write_tx(user, async |tx| {
            let changed = tx
                .execute(
                    "UPDATE memories SET embedding = $3, embedding_model = $4 \
                     WHERE user_id = $1 AND id = $2",
                    &[
                        &user.as_str(),
                        &id.as_str(),
                        &embedding.to_bytes(),
                        &i64::from(embedding.model().get()),
                    ],
                )
                .await
                .map_err(unavailable)?;
            if changed == 0 {
                return Err(MemoryError::NotFound(id.clone()));
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_foreign_text() {
        assert_eq!(
            decode_cursor(&encode_cursor(1_700_000_000, 42)).unwrap(),
            (1_700_000_000, 42)
        );
        for bad in [
            "", "pg1.", "pg1.x.1", "pg1.5", "pg2.5.1", "pg1.5.-1", "im1.5.1",
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(MemoryError::InvalidCursor(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_words_of_a_question_become_prefixes() {
        assert_eq!(
            word_query("Is she refinancing the mortgage?").as_deref(),
            Some("'refinanc':* | 'mortgag':*")
        );
        assert_eq!(word_query("what is the"), None);
        assert_eq!(word_query("o'brien").as_deref(), Some("'o':* | 'brien':*"));
    }
}
