//! The OpenMemory HTTP adapter: [`OpenMemoryStore`] keeps Recall's
//! memories in an [OpenMemory](https://github.com/CaviraOSS/OpenMemory)
//! server of the v1.2–v1.3 line (the user-scoped API, which trusts the
//! `user_id` it is sent).
//!
//! OpenMemory ignores or alters much of what Recall writes, so the adapter
//! compensates (see `docs/openmemory.md` for the whole table):
//!
//! * **Kept in metadata.** Salience, decay rate, agent, conversation,
//!   time, fact (key, value, is-name), idempotency key, tags, the caller's
//!   metadata and the exact content live in `metadata.recall`; every read
//!   restores them. The sector is also sent as `metadata.sector`, which
//!   the server honours.
//! * **Ranking.** The server's query scores are z-scores, relative to the
//!   other candidates, and its vector search is global (other callers'
//!   memories can crowd a caller's out) and cached for 60 s. Search
//!   therefore lists the caller's own memories and ranks them with the
//!   shared ranking ([`crate::rank`]) and Recall's own embeddings, kept in
//!   the envelope: the answers are those of every other store.
//! * **Filters** (sector, minimum salience, agent) are applied here.
//! * **Dedup.** The server merges any add whose 32-bit word-set hash
//!   equals a stored row's — even another caller's, or a different fact
//!   that collides — into that row. The adapter never reports that row:
//!   it computes the same hash ([`dedup::ContentHash`]) and sends the
//!   content with a reference marker chosen so the hash provably differs
//!   (at once when it knows the hash is taken, else after a merge), so
//!   the write is really stored for this caller; reads take the content
//!   from the envelope, without the marker. A write merged on every
//!   attempt is [`MemoryError::NotKept`], which is retryable.
//! * **Idempotency and supersession** are done here: keys are looked up
//!   in the caller's memories before writing, and so is a newer holder of
//!   a fact's key (OpenMemory has no transaction, so two writers of one
//!   caller must take turns themselves); a superseding fact carries
//!   the keys of the facts it replaced, and a deleted memory's keys are
//!   kept in a tombstone row that reads never show.
//! * **Scoping.** Every request carries the caller's `user_id`
//!   (percent-encoded in query strings), and every row read back is
//!   checked to belong to the caller; anything else is dropped.
//! * **Newer releases** that answer `403 tenant_mismatch` are reported as
//!   [`MemoryError::Incompatible`], at [`OpenMemoryStore::connect`] and on
//!   any request.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use recall_memory::openmemory::{OpenMemoryConfig, OpenMemoryStore};
//!
//! let config = OpenMemoryConfig::from_port_or_url("8080")?.with_api_key("secret")?;
//! let store = OpenMemoryStore::connect(config).await?;
//! # let _ = store; Ok(()) }
//! ```

mod config;
pub mod dedup;
mod http;
mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use recall_model::{PhoneNumber, UnixTimestamp};
use reqwest::{Method, StatusCode};

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_READ_TIMEOUT, DEFAULT_RETRY_BASE_DELAY,
    DEFAULT_WRITE_TIMEOUT, MAX_RETRIES_LIMIT, OpenMemoryConfig,
};

use self::dedup::ContentHash;
use self::http::{Answer, Call, Http, Kind};
use self::wire::{
    AddRequest, AddResponse, Envelope, EraseResponse, HealthResponse, ListResponse, PatchRequest,
    RetiredWrite, StoredRow, WireMemory,
};
use crate::embed::ModelTag;
use crate::rank::{Candidate, rank};
use crate::store::{
    AddOutcome, EmbeddingBacklog, EmbeddingTask, IdempotencyKey, ListRequest, Memory, MemoryError,
    MemoryId, MemoryPage, MemoryStore, MemoryUpdate, NewMemory, ScoredMemory, SearchQuery,
    UserProfile,
};

/// Rows fetched per `GET /memory/all` page.
const PAGE: usize = 100;
/// Most rows of one caller the adapter reads (list, search, profile).
const MAX_SCAN: usize = 10_000;
/// `DELETE /users/:id/memories` deletes at most this many rows per call.
const ERASE_BATCH: u64 = 10_000;
/// How many times an add merged by the server's dedup is re-sent.
const DEDUP_RESENDS: usize = 3;
/// Markers tried per send before settling for one whose hash the adapter
/// has already seen stored.
const MARKER_TRIES: usize = 4;
/// Dedup hashes of stored rows the adapter remembers (about 16 bytes each).
const SEEN_HASHES: usize = 65_536;
/// Most retired writes a superseding memory carries.
const MAX_RETIRED: usize = 50;
/// The user id of the start-up probe: a number no caller has.
const PROBE_USER: &str = "+10000000000";
/// Number of write locks (callers are spread over them by hash).
const LOCK_STRIPES: usize = 16;

/// A [`MemoryStore`] on an OpenMemory v1.2–v1.3 server.
///
/// One pooled HTTP client; reads time out after
/// [`OpenMemoryConfig::read_timeout`], writes after
/// [`OpenMemoryConfig::write_timeout`]; reads, deletes and adds that carry
/// an idempotency key are retried with jittered exponential backoff, other
/// adds never.
pub struct OpenMemoryStore {
    config: OpenMemoryConfig,
    http: Http,
    /// Serialises one caller's writes in this process, so that the
    /// idempotency check and supersession see each other's results.
    locks: Box<[tokio::sync::Mutex<()>]>,
    /// Dedup hashes the server is known to hold.
    seen: SeenHashes,
    counters: DedupCounters,
}

/// Counts of OpenMemory's dedup merges met by one [`OpenMemoryStore`]
/// (see [`OpenMemoryStore::dedup_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Adds the server merged into an existing row (each send counts);
    /// each was re-sent with a reference marker.
    pub merged: u64,
    /// Writes sent with a marker at once, because the adapter knew the
    /// server already held a row with the text's hash.
    pub marked_first: u64,
    /// Writes the server merged on every attempt, reported as
    /// [`MemoryError::NotKept`] to be retried later.
    pub not_kept: u64,
}

#[derive(Default, Debug)]
struct DedupCounters {
    merged: AtomicU64,
    marked_first: AtomicU64,
    not_kept: AtomicU64,
}

/// The last [`SEEN_HASHES`] dedup hashes the server answered for, stored
/// or merged. Deletes are not tracked: a deleted row's hash only costs a
/// needless marker.
#[derive(Default, Debug)]
struct SeenHashes(Mutex<(HashSet<ContentHash>, VecDeque<ContentHash>)>);

impl SeenHashes {
    fn contains(&self, hash: ContentHash) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .contains(&hash)
    }

    fn insert(&self, hash: ContentHash) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        if set.insert(hash) {
            order.push_back(hash);
            if order.len() > SEEN_HASHES
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }
}

impl std::fmt::Debug for OpenMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenMemoryStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OpenMemoryStore {
    /// An adapter for the server in `config`, without touching the
    /// network. A bad setting is [`MemoryError::Rejected`] naming it.
    pub fn new(config: OpenMemoryConfig) -> Result<Self, MemoryError> {
        config
            .validate()
            .map_err(|e| MemoryError::rejected(e.to_string()))?;
        let http = Http::new(&config)?;
        let locks = (0..LOCK_STRIPES)
            .map(|_| tokio::sync::Mutex::new(()))
            .collect();
        Ok(Self {
            config,
            http,
            locks,
            seen: SeenHashes::default(),
            counters: DedupCounters::default(),
        })
    }

    /// An adapter for the server in `config`, after checking that the
    /// server is up, accepts the API key and honours per-caller `user_id`
    /// (see [`OpenMemoryStore::check_compatibility`]).
    pub async fn connect(config: OpenMemoryConfig) -> Result<Self, MemoryError> {
        let store = Self::new(config)?;
        store.check_compatibility().await?;
        Ok(store)
    }

    /// The configuration.
    pub fn config(&self) -> &OpenMemoryConfig {
        &self.config
    }

    /// Checks the server: `GET /health` answers `ok`, and a scoped read
    /// for a caller no one has is answered like v1.2–v1.3 do. A newer
    /// release's `403 tenant_mismatch` is [`MemoryError::Incompatible`];
    /// a missing or wrong key is [`MemoryError::Rejected`].
    pub async fn check_compatibility(&self) -> Result<(), MemoryError> {
        let call = Call::new(
            Method::GET,
            self.http.url(&["health"]),
            Kind::Read,
            "GET /health",
        );
        let health: HealthResponse = self.http.send(&call).await?.ok()?.json()?;
        if health.ok != Some(true) {
            return Err(MemoryError::unavailable(
                "OpenMemory's GET /health did not answer ok: true",
            ));
        }
        let mut url = self.http.url(&["memory", "all"]);
        url.query_pairs_mut()
            .append_pair("user_id", PROBE_USER)
            .append_pair("l", "1");
        let call = Call::new(Method::GET, url, Kind::Read, "GET /memory/all");
        let list: ListResponse = self.http.send(&call).await?.ok()?.json()?;
        if list
            .items
            .iter()
            .any(|i| i.user_id.as_deref() != Some(PROBE_USER))
        {
            return Err(MemoryError::incompatible(
                "OpenMemory ignored the user_id filter of GET /memory/all and returned other users' memories: run OpenMemory v1.2 or v1.3, or set RECALL_STORE=embedded",
            ));
        }
        Ok(())
    }

    fn lock_for(&self, user: &PhoneNumber) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user.hash(&mut h);
        &self.locks[(h.finish() % self.locks.len() as u64) as usize]
    }

    fn memory_url(&self, id: &MemoryId, user: &PhoneNumber) -> url::Url {
        let mut url = self.http.url(&["memory", id.as_str()]);
        url.query_pairs_mut().append_pair("user_id", user.as_str());
        url
    }

    /// Searches the caller's rows with the shared ranking, handing them to
    /// `seen` once read (so `search_with_profile` builds the profile from
    /// the same read).
    async fn search_rows(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
        seen: impl FnOnce(&[StoredRow]) + Send,
    ) -> Result<Vec<ScoredMemory>, MemoryError> {
        let rows = self.memory_rows(user).await?;
        seen(&rows);
        let candidates: Vec<Candidate> = rows
            .into_iter()
            .filter(|r| query.filter.matches(&r.memory))
            .map(|r| {
                let vector = r.envelope.as_ref().and_then(Envelope::embedding_bytes);
                Candidate::with_vector(r.memory, vector.as_deref())
            })
            .collect();
        Ok(rank(query, candidates))
    }

    /// Every row of `user`, newest first, tombstones included; rows that are
    /// not provably the caller's are dropped. A caller with more than
    /// [`MAX_SCAN`] rows is refused: a partial read would let idempotency
    /// and supersession checks miss older rows.
    async fn rows(&self, user: &PhoneNumber) -> Result<Vec<StoredRow>, MemoryError> {
        let (rows, complete) = self.rows_upto(user).await?;
        if complete {
            Ok(rows)
        } else {
            Err(MemoryError::rejected(format!(
                "this caller has more than {MAX_SCAN} memories in OpenMemory, more than the adapter reads per call; erase or prune them, or use the embedded store"
            )))
        }
    }

    /// The first [`MAX_SCAN`] rows of `user`, newest first, and whether that
    /// is all of them.
    async fn rows_upto(&self, user: &PhoneNumber) -> Result<(Vec<StoredRow>, bool), MemoryError> {
        let mut complete = false;
        let mut rows = Vec::new();
        let mut seen = HashSet::new();
        let mut offset = 0;
        while offset < MAX_SCAN {
            let mut url = self.http.url(&["memory", "all"]);
            url.query_pairs_mut()
                .append_pair("user_id", user.as_str())
                .append_pair("l", &PAGE.to_string())
                .append_pair("u", &offset.to_string());
            let call = Call::new(Method::GET, url, Kind::Read, "GET /memory/all");
            let page: ListResponse = self.http.send(&call).await?.ok()?.json()?;
            let n = page.items.len();
            for item in page.items {
                if let Some(row) = item.into_row(user)
                    && seen.insert(row.memory.id.clone())
                {
                    rows.push(row);
                }
            }
            if n < PAGE {
                complete = true;
                break;
            }
            offset += n;
        }
        rows.sort_by(newest_first);
        Ok((rows, complete))
    }

    /// Every memory row of `user` (no tombstones), newest first.
    async fn memory_rows(&self, user: &PhoneNumber) -> Result<Vec<StoredRow>, MemoryError> {
        let mut rows = self.rows(user).await?;
        rows.retain(|r| !r.is_tombstone());
        Ok(rows)
    }

    /// One memory row of `user` by id (a tombstone is not found).
    async fn row(&self, user: &PhoneNumber, id: &MemoryId) -> Result<StoredRow, MemoryError> {
        let call = Call::new(
            Method::GET,
            self.memory_url(id, user),
            Kind::Read,
            "GET /memory/:id",
        );
        let answer = not_found_as(self.http.send(&call).await?, id)?;
        let wire: WireMemory = answer.json()?;
        if wire.id != id.as_str() {
            return Err(MemoryError::incompatible(
                "OpenMemory answered GET /memory/:id with another memory than asked for: run OpenMemory v1.2 or v1.3",
            ));
        }
        wire.into_row(user)
            .filter(|r| !r.is_tombstone())
            .ok_or_else(|| MemoryError::NotFound(id.clone()))
    }

    /// Deletes one row of `user`; `false` when it was already gone.
    async fn delete_row(&self, user: &PhoneNumber, id: &MemoryId) -> Result<bool, MemoryError> {
        let call = Call::new(
            Method::DELETE,
            self.memory_url(id, user),
            Kind::Write,
            "DELETE /memory/:id",
        );
        match not_found_as(self.http.send(&call).await?, id) {
            Ok(_) => Ok(true),
            Err(MemoryError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends the add and returns the id of the row stored for `user`.
    ///
    /// The server merges an add whose dedup hash equals any stored row's
    /// (another caller's, or a different text that collides) and stores
    /// nothing. The adapter computes that hash ([`dedup::ContentHash`]):
    /// when the text's hash is one it has seen stored, the first send
    /// already carries a reference marker; after a merge it re-sends with
    /// a marker whose hash is checked, before sending, to be far from the
    /// text's and from every merged attempt's. If the server still merges
    /// every attempt, the write is [`MemoryError::NotKept`] (retryable),
    /// never dropped. Never retried on a lost answer: that may have stored
    /// the row.
    async fn insert(
        &self,
        user: &PhoneNumber,
        envelope: &Envelope,
    ) -> Result<MemoryId, MemoryError> {
        let metadata = envelope.to_server_metadata();
        let text = &envelope.content;
        let plain = ContentHash::of(text);
        // Hashes the server holds that this write must not land on.
        let mut taken = Vec::new();
        if self.seen.contains(plain) {
            taken.push(plain);
            self.counters.marked_first.fetch_add(1, Ordering::Relaxed);
        }
        let mut rng = fastrand::Rng::new();
        for attempt in 0..=DEDUP_RESENDS {
            let content = if taken.is_empty() {
                text.clone()
            } else {
                self.marked(text, &mut taken, &mut rng)
            };
            let sent = ContentHash::of(&content);
            let body = AddRequest {
                content: &content,
                tags: &envelope.tags,
                metadata: &metadata,
                user_id: user.as_str(),
            };
            let call = Call::new(
                Method::POST,
                self.http.url(&["memory", "add"]),
                Kind::Write,
                "POST /memory/add",
            )
            .json(&body)?
            .retry(false);
            let added: AddResponse = self.http.send(&call).await?.ok()?.json()?;
            // Stored now, or already held by the row it was merged into.
            self.seen.insert(sent);
            if !added.deduplicated {
                return MemoryId::new(added.id).map_err(|e| {
                    MemoryError::incompatible(
                        "OpenMemory's POST /memory/add answered an unusable id",
                    )
                    .with_source(e)
                });
            }
            self.counters.merged.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                attempt,
                hash = %sent,
                "OpenMemory merged an add into an existing row; re-sending with a reference marker"
            );
            if !taken.contains(&sent) {
                taken.push(sent);
            }
        }
        self.counters.not_kept.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            attempts = DEDUP_RESENDS + 1,
            "OpenMemory merged every attempt of a write into existing rows; reporting it as not kept, to be retried"
        );
        Err(MemoryError::NotKept(format!(
            "OpenMemory merged the write into existing memories {} times in a row; nothing was stored",
            DEDUP_RESENDS + 1
        )))
    }

    /// `text` with a reference marker whose hash is far from every hash
    /// in `taken` and, if possible, not one this adapter has seen stored
    /// (such a hash is added to `taken` and another marker chosen).
    fn marked(&self, text: &str, taken: &mut Vec<ContentHash>, rng: &mut fastrand::Rng) -> String {
        let mut last = None;
        for _ in 0..MARKER_TRIES {
            let Some(out) = dedup::marked(text, taken, rng) else {
                break;
            };
            let hash = ContentHash::of(&out);
            if !self.seen.contains(hash) {
                return out;
            }
            taken.push(hash);
            last = Some(out);
        }
        // Not expected (see dedup's tests); if the server merges it, the
        // write is re-sent or reported as not kept.
        last.unwrap_or_else(|| dedup::unchecked_marker(text, rng))
    }

    /// Counts of the server's dedup merges this adapter has met.
    pub fn dedup_stats(&self) -> DedupStats {
        DedupStats {
            merged: self.counters.merged.load(Ordering::Relaxed),
            marked_first: self.counters.marked_first.load(Ordering::Relaxed),
            not_kept: self.counters.not_kept.load(Ordering::Relaxed),
        }
    }

    /// The memory just written as the server stores it; if reading it
    /// back fails, the memory as sent (the write did succeed).
    async fn written(&self, user: &PhoneNumber, id: MemoryId, envelope: &Envelope) -> Memory {
        match self.row(user, &id).await {
            Ok(row) => row.memory,
            Err(_) => {
                let now = UnixTimestamp::now();
                let created_at = envelope.occurred_at.unwrap_or(now);
                Memory {
                    id,
                    user_id: user.clone(),
                    content: envelope.content.clone(),
                    sector: envelope.sector,
                    salience: envelope.salience,
                    decay_lambda: envelope.decay_lambda,
                    tags: envelope.tags.clone(),
                    metadata: envelope.metadata.clone(),
                    agent_id: envelope.agent_id.clone(),
                    conversation_id: envelope.conversation_id.clone(),
                    fact: envelope.fact.clone(),
                    created_at,
                    updated_at: now.max(created_at),
                }
            }
        }
    }

    /// One attempt at an add: the idempotency check, the write, then
    /// supersession.
    async fn add_once(
        &self,
        user: &PhoneNumber,
        memory: &NewMemory,
    ) -> Result<AddOutcome, MemoryError> {
        let needs_rows = memory.idempotency_key.is_some() || memory.fact.is_some();
        let rows = if needs_rows {
            self.rows(user).await?
        } else {
            Vec::new()
        };
        if let Some(key) = &memory.idempotency_key
            && let Some(found) = find_key(&rows, key)
        {
            // A retry of a write whose supersession was cut short (the
            // new fact stored, an old one not yet deleted) finishes it.
            if let Some(live) = rows.iter().find(|r| r.memory.id == found.id)
                && let Some(fact) = &live.memory.fact
            {
                for older in rows.iter().filter(|r| {
                    r.written_ms < live.written_ms
                        && r.memory.fact.as_ref().is_some_and(|f| f.key == fact.key)
                }) {
                    self.delete_row(user, &older.memory.id).await?;
                }
            }
            return Ok(AddOutcome::Duplicate(found));
        }
        if let Some(newer) = rows.iter().find(|r| memory.is_outdated_by(&r.memory)) {
            return Ok(AddOutcome::Outdated(newer.memory.clone()));
        }
        let mut envelope = Envelope::new(user, memory);
        let superseded: Vec<&StoredRow> = match &memory.fact {
            Some(fact) => rows
                .iter()
                .filter(|r| r.memory.fact.as_ref().is_some_and(|f| f.key == fact.key))
                .collect(),
            None => Vec::new(),
        };
        // Keys written by the memories about to be replaced stay written.
        for row in &superseded {
            if let Some(e) = &row.envelope {
                envelope.retired.extend(e.retired.iter().cloned());
                if let Some(key) = &e.idempotency_key {
                    envelope.retired.push(RetiredWrite {
                        key: key.clone(),
                        memory: row.memory.clone(),
                    });
                }
            }
        }
        if envelope.retired.len() > MAX_RETIRED {
            let excess = envelope.retired.len() - MAX_RETIRED;
            envelope.retired.drain(..excess);
        }
        let id = self.insert(user, &envelope).await?;
        let stored = self.written(user, id, &envelope).await;
        let mut replaced = Vec::new();
        for row in superseded {
            if row.memory.id != stored.id {
                self.delete_row(user, &row.memory.id).await?;
                replaced.push(row.memory.id.clone());
            }
        }
        Ok(if replaced.is_empty() {
            AddOutcome::Created(stored)
        } else {
            AddOutcome::Superseded {
                memory: stored,
                replaced,
            }
        })
    }

    async fn update_once(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        update: &MemoryUpdate,
    ) -> Result<(), MemoryError> {
        let row = self.row(user, id).await?;
        let mut envelope = row
            .envelope
            .unwrap_or_else(|| Envelope::from_memory(&row.memory));
        if let Some(content) = &update.content {
            envelope.content.clone_from(content);
            // The embedding described the old content; a backfill makes a new one.
            envelope.embedding = None;
        }
        if let Some(salience) = update.salience {
            envelope.salience = salience;
        }
        if let Some(tags) = &update.tags {
            envelope.tags.clone_from(tags);
        }
        if let Some(metadata) = &update.metadata {
            for (k, v) in metadata {
                envelope.metadata.insert(k.clone(), v.clone());
            }
        }
        let metadata = envelope.to_server_metadata();
        let body = PatchRequest {
            content: update.content.as_deref(),
            tags: &envelope.tags,
            metadata: &metadata,
            user_id: user.as_str(),
        };
        // The patch replaces whole fields, so sending it twice is harmless.
        let call = Call::new(
            Method::PATCH,
            self.http.url(&["memory", id.as_str()]),
            Kind::Write,
            "PATCH /memory/:id",
        )
        .json(&body)?
        .retry(true);
        not_found_as(self.http.send(&call).await?, id)?;
        Ok(())
    }
}

/// Newest first: `created_at`, then the server's write time, then id.
fn newest_first(a: &StoredRow, b: &StoredRow) -> std::cmp::Ordering {
    b.memory
        .created_at
        .cmp(&a.memory.created_at)
        .then_with(|| b.written_ms.cmp(&a.written_ms))
        .then_with(|| b.memory.id.cmp(&a.memory.id))
}

/// The memory written under `key`: a live row carrying it, else one that
/// a later fact superseded.
fn find_key(rows: &[StoredRow], key: &IdempotencyKey) -> Option<Memory> {
    rows.iter()
        .find(|r| r.envelope.as_ref().and_then(|e| e.idempotency_key.as_ref()) == Some(key))
        .map(|r| r.memory.clone())
        .or_else(|| {
            rows.iter()
                .filter_map(|r| r.envelope.as_ref())
                .flat_map(|e| e.retired.iter())
                .find(|w| &w.key == key)
                .map(|w| w.memory.clone())
        })
}

/// 404 and an ownership 403 on a by-id route mean "not this caller's
/// memory"; the tenant refusal of newer releases stays incompatible.
fn not_found_as(answer: Answer, id: &MemoryId) -> Result<Answer, MemoryError> {
    if answer.is_tenant_mismatch() {
        return answer.ok();
    }
    if answer.status == StatusCode::NOT_FOUND
        || (answer.status == StatusCode::FORBIDDEN && answer.has_code("forbidden"))
    {
        return Err(MemoryError::NotFound(id.clone()));
    }
    answer.ok()
}

/// The cursor after `row`.
fn cursor_of(row: &StoredRow) -> String {
    format!(
        "{}:{}:{}",
        row.memory.created_at.as_secs(),
        row.written_ms,
        row.memory.id
    )
}

/// Parses a cursor made by [`cursor_of`].
fn parse_cursor(raw: &str) -> Result<(i64, i64, String), MemoryError> {
    let bad = || MemoryError::InvalidCursor("not a cursor returned by list".into());
    let mut parts = raw.splitn(3, ':');
    let secs = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let ms = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let id = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
    Ok((secs, ms, id.to_owned()))
}

/// Retries `op` after a timeout or an unavailable server, with the
/// store's backoff.
async fn with_retries<T, F, Fut>(http: &Http, mut op: F) -> Result<T, MemoryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, MemoryError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && attempt < http.max_retries() => {
                tokio::time::sleep(http.backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[async_trait]
impl MemoryStore for OpenMemoryStore {
    async fn add(&self, user: &PhoneNumber, memory: NewMemory) -> Result<AddOutcome, MemoryError> {
        memory.validate()?;
        let _guard = self.lock_for(user).lock().await;
        if memory.idempotency_key.is_some() {
            // The whole check-then-write is retried: a retry finds the row
            // an earlier attempt stored and answers Duplicate.
            with_retries(&self.http, || self.add_once(user, &memory)).await
        } else {
            self.add_once(user, &memory).await
        }
    }

    async fn search(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<Vec<ScoredMemory>, MemoryError> {
        self.search_rows(user, query, |_| ()).await
    }

    async fn search_with_profile(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<(UserProfile, Vec<ScoredMemory>), MemoryError> {
        // One read of the caller's rows serves both.
        let mut profile = None;
        let found = self
            .search_rows(user, query, |rows| profile = Some(profile_of(user, rows)))
            .await?;
        let profile = profile.unwrap_or_else(|| profile_of(user, &[]));
        Ok((profile, found))
    }

    async fn list(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<MemoryPage, MemoryError> {
        let after = request.cursor.as_deref().map(parse_cursor).transpose()?;
        let limit = request.effective_limit();
        let rows = self.memory_rows(user).await?;
        let mut items = rows
            .iter()
            .filter(|r| request.filter.matches(&r.memory))
            .filter(|r| match &after {
                None => true,
                Some((secs, ms, id)) => {
                    let key = (
                        r.memory.created_at.as_secs(),
                        r.written_ms,
                        r.memory.id.as_str(),
                    );
                    key < (*secs, *ms, id.as_str())
                }
            });
        let page: Vec<&StoredRow> = items.by_ref().take(limit).collect();
        let next_cursor = match (page.last(), items.next()) {
            (Some(last), Some(_)) => Some(cursor_of(last)),
            _ => None,
        };
        Ok(MemoryPage {
            items: page.into_iter().map(|r| r.memory.clone()).collect(),
            next_cursor,
        })
    }

    async fn get(&self, user: &PhoneNumber, id: &MemoryId) -> Result<Memory, MemoryError> {
        Ok(self.row(user, id).await?.memory)
    }

    async fn update(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        update: MemoryUpdate,
    ) -> Result<Memory, MemoryError> {
        update.validate()?;
        let _guard = self.lock_for(user).lock().await;
        self.update_once(user, id, &update).await?;
        Ok(self.row(user, id).await?.memory)
    }

    async fn delete(&self, user: &PhoneNumber, id: &MemoryId) -> Result<(), MemoryError> {
        let _guard = self.lock_for(user).lock().await;
        let row = self.row(user, id).await?;
        // Keep the memory's idempotency keys (in a tombstone written
        // first), so replaying its event cannot write it again.
        if let Some(envelope) = &row.envelope {
            let keep = envelope.writes_to_keep(&row.memory);
            if !keep.is_empty() {
                self.insert(user, &Envelope::tombstone(user, keep)).await?;
            }
        }
        if self.delete_row(user, id).await? {
            Ok(())
        } else {
            Err(MemoryError::NotFound(id.clone()))
        }
    }

    async fn erase_user(&self, user: &PhoneNumber) -> Result<u64, MemoryError> {
        let _guard = self.lock_for(user).lock().await;
        // Tombstones go too (the caller's keys are forgotten) but are not
        // memories, so they are not counted.
        let tombstones = self
            .rows_upto(user)
            .await?
            .0
            .iter()
            .filter(|r| r.is_tombstone())
            .count() as u64;
        let mut total: u64 = 0;
        loop {
            let call = Call::new(
                Method::DELETE,
                self.http.url(&["users", user.as_str(), "memories"]),
                Kind::Write,
                "DELETE /users/:id/memories",
            );
            let erased: EraseResponse = self.http.send(&call).await?.ok()?.json()?;
            total += erased.deleted;
            if erased.deleted < ERASE_BATCH {
                return Ok(total.saturating_sub(tombstones));
            }
        }
    }

    async fn profile(&self, user: &PhoneNumber) -> Result<UserProfile, MemoryError> {
        // OpenMemory's own summary stays a placeholder on v1.3; the
        // profile is built from the facts kept in the envelopes.
        Ok(profile_of(user, &self.memory_rows(user).await?))
    }

    async fn health(&self) -> Result<(), MemoryError> {
        self.check_compatibility().await
    }

    /// Pages through every caller's rows (`GET /memory/all` without a
    /// user); the cursor is the server offset of the next page.
    async fn embedding_backlog(
        &self,
        model: ModelTag,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<EmbeddingBacklog, MemoryError> {
        let mut offset: usize = match cursor {
            None => 0,
            Some(c) => c.parse().map_err(|_| {
                MemoryError::InvalidCursor("not a backlog cursor this store issued".into())
            })?,
        };
        let mut tasks = Vec::new();
        loop {
            let mut url = self.http.url(&["memory", "all"]);
            url.query_pairs_mut()
                .append_pair("l", &PAGE.to_string())
                .append_pair("u", &offset.to_string());
            let call = Call::new(Method::GET, url, Kind::Read, "GET /memory/all");
            let page: ListResponse = self.http.send(&call).await?.ok()?.json()?;
            let n = page.items.len();
            offset += n;
            for item in page.items {
                let Some(user) = item
                    .user_id
                    .as_deref()
                    .and_then(|u| PhoneNumber::parse(u).ok())
                else {
                    continue;
                };
                let Some(row) = item.into_row(&user) else {
                    continue;
                };
                let current = row.envelope.as_ref().is_some_and(|e| {
                    e.tombstone
                        || e.embedding_bytes().is_some_and(|b| {
                            crate::embed::Embedding::model_of_bytes(&b).ok() == Some(model)
                        })
                });
                if !current {
                    tasks.push(EmbeddingTask {
                        user,
                        id: row.memory.id.clone(),
                        content: row.memory.content.clone(),
                    });
                }
            }
            if n < PAGE {
                return Ok(EmbeddingBacklog {
                    tasks,
                    next_cursor: None,
                });
            }
            if tasks.len() >= limit.max(1) {
                return Ok(EmbeddingBacklog {
                    tasks,
                    next_cursor: Some(offset.to_string()),
                });
            }
        }
    }

    async fn set_embedding(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        embedding: crate::embed::Embedding,
    ) -> Result<(), MemoryError> {
        let _guard = self.lock_for(user).lock().await;
        let row = self.row(user, id).await?;
        let mut envelope = row
            .envelope
            .unwrap_or_else(|| Envelope::from_memory(&row.memory));
        envelope.set_embedding(&embedding);
        let metadata = envelope.to_server_metadata();
        let body = PatchRequest {
            content: None,
            tags: &envelope.tags,
            metadata: &metadata,
            user_id: user.as_str(),
        };
        let call = Call::new(
            Method::PATCH,
            self.http.url(&["memory", id.as_str()]),
            Kind::Write,
            "PATCH /memory/:id",
        )
        .json(&body)?
        .retry(true);
        not_found_as(self.http.send(&call).await?, id)?;
        Ok(())
    }
}

/// The caller's profile from their memory rows (newest first): the newest
/// fact per key.
fn profile_of(user: &PhoneNumber, rows: &[StoredRow]) -> UserProfile {
    let mut newest: HashMap<&str, (&crate::store::Fact, UnixTimestamp)> = HashMap::new();
    for row in rows {
        if let Some(fact) = &row.memory.fact {
            // Rows are newest first: the first per key wins.
            newest
                .entry(fact.key.as_str())
                .or_insert((fact, row.memory.created_at));
        }
    }
    UserProfile::from_facts(user.clone(), newest.into_values(), rows.len() as u64)
}
