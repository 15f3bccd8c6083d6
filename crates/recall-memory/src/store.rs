//! The port: [`MemoryStore`] and the values that cross it.

use std::time::Duration;

use async_trait::async_trait;
use recall_model::{
    AgentId, ConversationId, DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp,
    ValueError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::embed::{Embedding, ModelTag};

/// Free-form metadata kept with a memory (JSON object).
pub type Metadata = Map<String, Value>;

/// Longest accepted [`FactKey`] or [`IdempotencyKey`], in bytes.
pub const MAX_KEY_LEN: usize = 200;

/// Longest accepted memory content, in bytes (64 KiB).
pub const MAX_CONTENT_LEN: usize = 64 * 1024;

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts 1 to [`MAX_KEY_LEN`] bytes without control characters.
            pub fn new(key: impl Into<String>) -> Result<Self, ValueError> {
                let key = key.into();
                if key.is_empty() || key.len() > MAX_KEY_LEN {
                    return Err(ValueError::new($field, "must be 1 to 200 bytes long", key));
                }
                if key.chars().any(char::is_control) {
                    return Err(ValueError::new($field, "must not contain control characters", key));
                }
                Ok(Self(key))
            }

            /// The key as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

key_type!(
    /// The key of a profile fact (e.g. the data-collection field id
    /// `first_name`). Storing a fact with the same key for the same user
    /// supersedes the earlier one.
    FactKey,
    "fact_key"
);

key_type!(
    /// A write's idempotency key (e.g. `conv_123/summary`). Writing a
    /// memory with a key already written for that user changes nothing.
    IdempotencyKey,
    "idempotency_key"
);

key_type!(
    /// A memory's id, assigned by the store.
    MemoryId,
    "memory_id"
);

/// A profile fact carried by a memory: a key, the bare value and whether
/// the value is the caller's name.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Fact {
    /// The fact's key; the supersession key.
    pub key: FactKey,
    /// The bare value, e.g. `Margaret` (the memory's content is the
    /// sentence an LLM reads, e.g. `Caller's first_name: Margaret`).
    pub value: String,
    /// Whether this fact holds the caller's name (the profile's `name`).
    pub is_name: bool,
}

/// A memory to write.
#[derive(Clone, PartialEq, Debug)]
pub struct NewMemory {
    /// The text an agent will read.
    pub content: String,
    /// The sector.
    pub sector: MemorySector,
    /// How important it is.
    pub salience: Salience,
    /// Decay rate; `None` means the sector's default, `Some(PERMANENT)`
    /// never decays.
    pub decay_lambda: Option<DecayLambda>,
    /// Free tags (e.g. the data-collection field id).
    pub tags: Vec<String>,
    /// Free metadata (title, duration, source, ...).
    pub metadata: Metadata,
    /// The agent that learnt it.
    pub agent_id: Option<AgentId>,
    /// The conversation it came from.
    pub conversation_id: Option<ConversationId>,
    /// When it happened; `None` means now.
    pub occurred_at: Option<UnixTimestamp>,
    /// Set for a profile fact: supersedes the caller's fact with the same
    /// key, unless that one was learnt later (see [`MemoryStore`]).
    pub fact: Option<Fact>,
    /// Set to make the write idempotent.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The embedding of its content, kept for search by meaning.
    pub embedding: Option<Embedding>,
}

impl NewMemory {
    /// A memory with the given content and sector, the seed's medium
    /// salience, the sector's decay, and nothing else set.
    pub fn new(content: impl Into<String>, sector: MemorySector) -> Self {
        Self {
            content: content.into(),
            sector,
            salience: Salience::MEDIUM,
            decay_lambda: None,
            tags: Vec::new(),
            metadata: Metadata::new(),
            agent_id: None,
            conversation_id: None,
            occurred_at: None,
            fact: None,
            idempotency_key: None,
            embedding: None,
        }
    }

    /// Sets the salience.
    pub fn salience(mut self, salience: Salience) -> Self {
        self.salience = salience;
        self
    }

    /// Sets the decay rate.
    pub fn decay(mut self, lambda: DecayLambda) -> Self {
        self.decay_lambda = Some(lambda);
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets a metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the agent.
    pub fn agent(mut self, agent: AgentId) -> Self {
        self.agent_id = Some(agent);
        self
    }

    /// Sets the conversation.
    pub fn conversation(mut self, conversation: ConversationId) -> Self {
        self.conversation_id = Some(conversation);
        self
    }

    /// Sets when it happened.
    pub fn occurred_at(mut self, at: UnixTimestamp) -> Self {
        self.occurred_at = Some(at);
        self
    }

    /// Whether this fact was learnt before `current`, the `created_at` of
    /// the caller's fact holding the same key, so that it must not replace
    /// it ([`AddOutcome::Outdated`]). A memory without `occurred_at` is
    /// learnt now, and never is.
    ///
    /// ```
    /// # use recall_memory::NewMemory;
    /// # use recall_model::{MemorySector, UnixTimestamp};
    /// let at = UnixTimestamp::from_secs(1_700_000_000).unwrap();
    /// let late = NewMemory::new("Caller's city: Leeds", MemorySector::Semantic).occurred_at(at);
    /// assert!(late.learnt_before(at.plus_secs(60)));
    /// assert!(!late.learnt_before(at));
    /// assert!(!NewMemory::new("Caller's city: York", MemorySector::Semantic).learnt_before(at));
    /// ```
    pub fn learnt_before(&self, current: UnixTimestamp) -> bool {
        self.occurred_at.is_some_and(|at| at < current)
    }

    /// Whether `held`, a memory of the caller, is a fact with this fact's
    /// key learnt later, so that this one is [`AddOutcome::Outdated`]
    /// ([`learnt_before`](Self::learnt_before) its `created_at`).
    pub fn is_outdated_by(&self, held: &Memory) -> bool {
        self.fact.as_ref().is_some_and(|fact| {
            held.fact.as_ref().is_some_and(|f| f.key == fact.key)
                && self.learnt_before(held.created_at)
        })
    }

    /// Makes it a profile fact.
    pub fn fact(mut self, fact: Fact) -> Self {
        self.fact = Some(fact);
        self
    }

    /// Makes the write idempotent under `key`.
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Sets the embedding of its content.
    pub fn embedding(mut self, embedding: Embedding) -> Self {
        self.embedding = Some(embedding);
        self
    }

    /// The memory this becomes for `user`, written at `now`, under a fresh
    /// `mem_<uuid>` id: what every store keeps (the embedding and the
    /// idempotency key are the store's to keep beside it).
    pub fn into_memory(self, user: &PhoneNumber, now: UnixTimestamp) -> Memory {
        let id = MemoryId::new(format!("mem_{}", uuid::Uuid::new_v4().simple()))
            .expect("a mem_ id of 36 ASCII characters is a valid key");
        Memory {
            id,
            user_id: user.clone(),
            decay_lambda: self.effective_decay(),
            content: self.content,
            sector: self.sector,
            salience: self.salience,
            tags: self.tags,
            metadata: self.metadata,
            agent_id: self.agent_id,
            conversation_id: self.conversation_id,
            fact: self.fact,
            created_at: self.occurred_at.unwrap_or(now),
            updated_at: now,
        }
    }

    /// Validates every memory of a batch before any is written; a
    /// rejection names the memory (`memories[2].content ...`).
    ///
    /// # Errors
    /// The first memory that [`validate`](Self::validate) refuses.
    pub fn validate_batch(memories: &[NewMemory]) -> Result<(), MemoryError> {
        for (i, memory) in memories.iter().enumerate() {
            memory.validate().map_err(|e| match e {
                MemoryError::Rejected { reason, source } => MemoryError::Rejected {
                    reason: format!("memories[{i}].{reason}"),
                    source,
                },
                other => other,
            })?;
        }
        Ok(())
    }

    /// The effective decay rate: the one set, else the sector's default.
    pub fn effective_decay(&self) -> DecayLambda {
        self.decay_lambda
            .unwrap_or_else(|| self.sector.default_decay_lambda())
    }

    /// Checks what the types cannot: content is not blank and at most
    /// [`MAX_CONTENT_LEN`] bytes.
    pub fn validate(&self) -> Result<(), MemoryError> {
        validate_content(&self.content)
    }
}

/// The content rule every write keeps: not blank and at most
/// [`MAX_CONTENT_LEN`] bytes. The error names the `content` field.
pub fn validate_content(content: &str) -> Result<(), MemoryError> {
    if content.trim().is_empty() {
        return Err(MemoryError::rejected("content: must not be empty"));
    }
    if content.len() > MAX_CONTENT_LEN {
        return Err(MemoryError::rejected(format!(
            "content: must be at most {MAX_CONTENT_LEN} bytes (got {})",
            content.len()
        )));
    }
    Ok(())
}

/// A stored memory (ERD `Memory`).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Memory {
    /// Assigned by the store.
    pub id: MemoryId,
    /// The owner.
    pub user_id: PhoneNumber,
    /// The text.
    pub content: String,
    /// The sector.
    pub sector: MemorySector,
    /// The salience as written (not decayed).
    pub salience: Salience,
    /// The decay rate per day (0 = permanent).
    pub decay_lambda: DecayLambda,
    /// Tags.
    pub tags: Vec<String>,
    /// Metadata.
    pub metadata: Metadata,
    /// The agent that learnt it.
    pub agent_id: Option<AgentId>,
    /// The conversation it came from.
    pub conversation_id: Option<ConversationId>,
    /// The profile fact it holds.
    pub fact: Option<Fact>,
    /// When it happened (or was written).
    pub created_at: UnixTimestamp,
    /// When it was last changed.
    pub updated_at: UnixTimestamp,
}

impl Memory {
    /// The memory's weight at `now`: its written salience times its decay
    /// factor for its age (a permanent memory keeps its salience).
    pub fn weight_at(&self, now: UnixTimestamp) -> f64 {
        let age = now.as_secs() - self.created_at.as_secs();
        self.salience.get() * self.decay_lambda.factor(age)
    }
}

/// What a successful write did.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum AddOutcome {
    /// A new memory was written.
    Created(Memory),
    /// A new fact was written and replaced earlier facts with the same key
    /// (their ids are given; they are gone).
    Superseded {
        /// The new memory.
        memory: Memory,
        /// The ids of the memories it replaced.
        replaced: Vec<MemoryId>,
    },
    /// The idempotency key was already written: nothing changed; this is
    /// the memory written the first time.
    Duplicate(Memory),
    /// A fact learnt before the caller's current fact with the same key
    /// ([`NewMemory::learnt_before`]): nothing was written, so that a call
    /// processed late never undoes what a later call taught. This is the
    /// current fact.
    Outdated(Memory),
}

impl AddOutcome {
    /// The memory written (or found, for a duplicate; the newer fact kept,
    /// for an outdated one).
    pub fn memory(&self) -> &Memory {
        match self {
            Self::Created(m) | Self::Duplicate(m) | Self::Outdated(m) => m,
            Self::Superseded { memory, .. } => memory,
        }
    }

    /// Whether this write was already made (its idempotency key was
    /// written), so it changed nothing.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Self::Duplicate(_))
    }

    /// Whether this write changed nothing: a duplicate, or an outdated
    /// fact.
    pub fn changed_nothing(&self) -> bool {
        matches!(self, Self::Duplicate(_) | Self::Outdated(_))
    }
}

/// Filters applied by search and list.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct MemoryFilter {
    /// Only this sector.
    pub sector: Option<MemorySector>,
    /// Only memories whose written salience is at least this.
    pub min_salience: Option<Salience>,
    /// Only memories learnt by this agent.
    pub agent_id: Option<AgentId>,
}

impl MemoryFilter {
    /// Whether `memory` passes the filter.
    pub fn matches(&self, memory: &Memory) -> bool {
        self.sector.is_none_or(|s| s == memory.sector)
            && self
                .min_salience
                .is_none_or(|s| memory.salience.get() >= s.get())
            && self
                .agent_id
                .as_ref()
                .is_none_or(|a| memory.agent_id.as_ref() == Some(a))
    }
}

/// Largest `k` and page size a store must honour; larger requests are
/// clamped to it.
pub const MAX_RESULTS: usize = 100;

/// The embedder a query was embedded with, so that the ranking can
/// embed a variant of the question (without the caller's name). Equal
/// when it is the same embedder.
#[derive(Clone, Debug)]
pub struct QueryEmbedder(pub std::sync::Arc<dyn crate::embed::Embedder>);

impl QueryEmbedder {
    /// The embedder.
    pub fn get(&self) -> &dyn crate::embed::Embedder {
        self.0.as_ref()
    }
}

impl PartialEq for QueryEmbedder {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A text search in one user's memories.
#[derive(Clone, PartialEq, Debug)]
pub struct SearchQuery {
    /// What to look for.
    pub text: String,
    /// How many results at most (clamped to 1..=[`MAX_RESULTS`]).
    pub k: usize,
    /// Filters.
    pub filter: MemoryFilter,
    /// The time decay is computed at, and the question is asked at
    /// ("last week" is the week before it); `None` means now.
    pub now: Option<UnixTimestamp>,
    /// The embedding of `text`, to rank by meaning; `None` ranks by words
    /// and intent only.
    pub vector: Option<Embedding>,
    /// The embedder that made `vector`, to embed variants of the question.
    pub embedder: Option<QueryEmbedder>,
}

impl SearchQuery {
    /// A search for `text`, returning at most `k` memories.
    pub fn new(text: impl Into<String>, k: usize) -> Self {
        Self {
            text: text.into(),
            k,
            filter: MemoryFilter::default(),
            now: None,
            vector: None,
            embedder: None,
        }
    }

    /// Sets the embedder that made the question's vector.
    pub fn embedder(mut self, embedder: std::sync::Arc<dyn crate::embed::Embedder>) -> Self {
        self.embedder = Some(QueryEmbedder(embedder));
        self
    }

    /// Sets the embedding of the question.
    pub fn vector(mut self, vector: Embedding) -> Self {
        self.vector = Some(vector);
        self
    }

    /// Sets the filters.
    pub fn filter(mut self, filter: MemoryFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the time decay is computed at.
    pub fn at(mut self, now: UnixTimestamp) -> Self {
        self.now = Some(now);
        self
    }

    /// `k` clamped to `1..=MAX_RESULTS`.
    pub fn effective_k(&self) -> usize {
        self.k.clamp(1, MAX_RESULTS)
    }
}

/// A search result: the memory and its score, from 0 (nothing in common
/// with the question) to 1 (a strong match), as the shared ranking
/// ([`crate::rank`]) computes it.
#[derive(Clone, PartialEq, Debug)]
pub struct ScoredMemory {
    /// The memory.
    pub memory: Memory,
    /// Its relevance score.
    pub score: f64,
}

/// A request for one page of a user's memories, newest first.
#[derive(Clone, PartialEq, Debug)]
pub struct ListRequest {
    /// Filters.
    pub filter: MemoryFilter,
    /// Page size (clamped to 1..=[`MAX_RESULTS`]).
    pub limit: usize,
    /// The `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

impl ListRequest {
    /// The first page of `limit` memories, unfiltered.
    pub fn first(limit: usize) -> Self {
        Self {
            filter: MemoryFilter::default(),
            limit,
            cursor: None,
        }
    }

    /// `limit` clamped to `1..=MAX_RESULTS`.
    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, MAX_RESULTS)
    }
}

/// One page of memories, newest first.
#[derive(Clone, PartialEq, Debug)]
pub struct MemoryPage {
    /// The memories.
    pub items: Vec<Memory>,
    /// Opaque cursor of the next page; `None` on the last page. Cursors
    /// are stable: writes after the first page neither repeat nor skip
    /// older memories.
    pub next_cursor: Option<String>,
}

/// Changes to a memory; `None` leaves a field as it is.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct MemoryUpdate {
    /// New content.
    pub content: Option<String>,
    /// New salience.
    pub salience: Option<Salience>,
    /// New tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
    /// Metadata entries to set (merged into the old metadata).
    pub metadata: Option<Metadata>,
}

impl MemoryUpdate {
    /// Checks the new content, if any, by the rule of [`validate_content`].
    pub fn validate(&self) -> Result<(), MemoryError> {
        self.content.as_deref().map_or(Ok(()), validate_content)
    }

    /// Applies the update to `memory`: given fields replace the old ones,
    /// metadata entries are merged in, and `updated_at` moves to now (never
    /// backwards).
    pub fn apply_to(self, memory: &mut Memory) {
        if let Some(content) = self.content {
            memory.content = content;
        }
        if let Some(salience) = self.salience {
            memory.salience = salience;
        }
        if let Some(tags) = self.tags {
            memory.tags = tags;
        }
        if let Some(metadata) = self.metadata {
            memory.metadata.extend(metadata);
        }
        memory.updated_at = UnixTimestamp::now().max(memory.updated_at);
    }
}

/// What a store knows of a caller (ERD `User`).
#[derive(Clone, PartialEq, Debug)]
pub struct UserProfile {
    /// The caller.
    pub user_id: PhoneNumber,
    /// The value of the newest fact marked as a name.
    pub name: Option<String>,
    /// The caller's current facts as `key: value` pairs joined by `; `,
    /// in key order; `None` when there are none.
    pub summary: Option<String>,
    /// How many memories the caller has.
    pub memory_count: u64,
}

impl UserProfile {
    /// Builds a profile from a user's current facts (one per key; the
    /// store has already applied supersession) and memory count.
    pub fn from_facts<'a>(
        user_id: PhoneNumber,
        facts: impl IntoIterator<Item = (&'a Fact, UnixTimestamp)>,
        memory_count: u64,
    ) -> Self {
        let mut facts: Vec<(&Fact, UnixTimestamp)> = facts.into_iter().collect();
        facts.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        let name = facts
            .iter()
            .filter(|(f, _)| f.is_name && !f.value.trim().is_empty())
            .max_by_key(|&&(f, at)| (at, std::cmp::Reverse(&f.key)))
            .map(|(f, _)| f.value.clone());
        let summary = (!facts.is_empty()).then(|| {
            facts
                .iter()
                .map(|(f, _)| format!("{}: {}", f.key, f.value))
                .collect::<Vec<_>>()
                .join("; ")
        });
        Self {
            user_id,
            name,
            summary,
            memory_count,
        }
    }
}

/// A memory whose embedding is missing, or was made by another model:
/// work for a backfill.
#[derive(Clone, PartialEq, Debug)]
pub struct EmbeddingTask {
    /// The memory's owner.
    pub user: PhoneNumber,
    /// The memory.
    pub id: MemoryId,
    /// Its content (what to embed).
    pub content: String,
}

/// One page of a store's [`EmbeddingTask`]s.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct EmbeddingBacklog {
    /// The memories to embed.
    pub tasks: Vec<EmbeddingTask>,
    /// Opaque cursor of the next page; `None` when this is the last.
    pub next_cursor: Option<String>,
}

/// The error of the layer below a [`MemoryError`] (an HTTP client,
/// SQLite, I/O, JSON, a blocking task), kept as its
/// [`source`](std::error::Error::source).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, in terms a service can act on.
///
/// Variants that wrap a failure of the layer below keep it as their
/// [`source`](std::error::Error::source); build them with
/// [`MemoryError::unavailable`] (and its siblings) and
/// [`MemoryError::with_source`]. Their message ends with the source's, so
/// a log that shows only the message loses nothing of the first cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The store cannot be reached or is failing; retry later.
    #[error("memory store unavailable: {reason}{}", Cause(.source))]
    Unavailable {
        /// What failed, in words.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The store did not answer in time; retry later.
    #[error("memory store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store refused the request; retrying the same request will not help.
    #[error("memory store rejected the request: {reason}{}", Cause(.source))]
    Rejected {
        /// Why, naming the field or setting at fault when there is one.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A page cursor this store did not issue (or no longer understands);
    /// the request is refused rather than read as "start over".
    #[error("cursor: {0}")]
    InvalidCursor(String),
    /// The backend is not one this adapter can work with; an operator must act.
    #[error("incompatible memory backend: {reason}{}", Cause(.source))]
    Incompatible {
        /// What is incompatible and what to do about it.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// No memory with this id belongs to this user.
    #[error("memory {0} not found")]
    NotFound(MemoryId),
    /// The store answered but kept nothing of a write (OpenMemory merged
    /// it into another record, possibly another caller's); nothing changed
    /// for this caller, so sending the same write again later is safe and
    /// may succeed.
    #[error("memory store did not keep the write: {0}")]
    NotKept(String),
    /// Anything else (a bug or corrupt data).
    #[error("memory store failed: {reason}{}", Cause(.source))]
    Internal {
        /// What failed, in words.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl MemoryError {
    /// [`MemoryError::Unavailable`] without a source (yet).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`MemoryError::Rejected`] without a source (yet).
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`MemoryError::Incompatible`] without a source (yet).
    pub fn incompatible(reason: impl Into<String>) -> Self {
        Self::Incompatible {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`MemoryError::Internal`] without a source (yet).
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::Internal {
            reason: reason.into(),
            source: None,
        }
    }

    /// Keeps `source` as the cause of an `Unavailable`, `Rejected`,
    /// `Incompatible` or `Internal` error; the message then ends with
    /// `: {source}`. The other variants have no cause to keep and are
    /// returned unchanged.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        match &mut self {
            Self::Unavailable { source: slot, .. }
            | Self::Rejected { source: slot, .. }
            | Self::Incompatible { source: slot, .. }
            | Self::Internal { source: slot, .. } => *slot = Some(source.into()),
            Self::Timeout(_) | Self::InvalidCursor(_) | Self::NotFound(_) | Self::NotKept(_) => {}
        }
        self
    }

    /// Whether retrying later may succeed (unavailable, timeout, or a
    /// write the store did not keep).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::Timeout(_) | Self::NotKept(_)
        )
    }
}

/// Shows an error with its chain of sources, `outer: inner: root`, for
/// logs (`tracing::warn!(error = %ErrorChain(&e), ...)`). A source whose
/// text the line already holds is skipped: most errors here end their
/// message with their direct source's.
#[derive(Clone, Copy, Debug)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut line = self.0.to_string();
        let mut next = self.0.source();
        while let Some(source) = next {
            let text = source.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            next = source.source();
        }
        f.write_str(&line)
    }
}

/// Shows a variant's source after its reason, as `: {source}`.
pub(crate) struct Cause<'a>(pub(crate) &'a Option<BoxError>);

impl std::fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

/// A long-term memory of callers, scoped to one caller per call.
///
/// Every operation takes the caller's [`PhoneNumber`]; there is no
/// operation that reads across callers, and a memory id that belongs to
/// another caller is [`MemoryError::NotFound`].
///
/// Rules every implementation keeps (the `conformance` feature's suite
/// checks them):
/// * **Supersession**: adding a memory with a [`Fact`] removes the
///   caller's earlier memories holding a fact with the same key, unless
///   one was learnt later than the new fact ([`NewMemory::learnt_before`]
///   its `created_at`): then nothing is written and the outcome is
///   [`AddOutcome::Outdated`]. Stores decide this under the same lock or
///   transaction as the write, so that two calls of one caller processed
///   side by side (on two replicas) keep the newer call's facts.
/// * **Idempotency**: adding a memory whose [`IdempotencyKey`] was already
///   written for that caller changes nothing and returns
///   [`AddOutcome::Duplicate`].
/// * **Ordering**: `list` is newest first (`created_at`, then write order),
///   with stable cursors; `search` is best first, deterministic for equal
///   inputs.
///
/// The trait uses `async-trait` so that it is object safe: services hold
/// an `Arc<dyn MemoryStore>` chosen at start-up, which native `async fn`
/// in traits does not allow.
#[async_trait]
pub trait MemoryStore: Send + Sync {
    /// Adds a memory for `user`.
    async fn add(&self, user: &PhoneNumber, memory: NewMemory) -> Result<AddOutcome, MemoryError>;

    /// Adds several memories for `user`, in order. Stores that can should
    /// do it in one transaction; the default adds them one by one.
    async fn add_batch(
        &self,
        user: &PhoneNumber,
        memories: Vec<NewMemory>,
    ) -> Result<Vec<AddOutcome>, MemoryError> {
        let mut outcomes = Vec::with_capacity(memories.len());
        for memory in memories {
            outcomes.push(self.add(user, memory).await?);
        }
        Ok(outcomes)
    }

    /// The `user`'s memories most relevant to `query`, best first.
    async fn search(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<Vec<ScoredMemory>, MemoryError>;

    /// The `user`'s profile together with their memories most relevant to
    /// `query`: what an agent's memory tool answers during a call. The
    /// default runs [`profile`](Self::profile) and [`search`](Self::search)
    /// concurrently; a store that can read both at once (one snapshot, one
    /// hand-off to a blocking thread) should override it.
    async fn search_with_profile(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<(UserProfile, Vec<ScoredMemory>), MemoryError> {
        let (profile, found) = tokio::join!(self.profile(user), self.search(user, query));
        Ok((profile?, found?))
    }

    /// The `user`'s profile together with one page of their memories: what
    /// a greeting reads (who is calling, and their last call) while the
    /// phone rings. The default runs [`profile`](Self::profile) and
    /// [`list`](Self::list) concurrently; a store that can read both at
    /// once (one statement, one hand-off to a blocking thread) should
    /// override it.
    async fn list_with_profile(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<(UserProfile, MemoryPage), MemoryError> {
        let (profile, page) = tokio::join!(self.profile(user), self.list(user, request));
        Ok((profile?, page?))
    }

    /// One page of the `user`'s memories, newest first.
    async fn list(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<MemoryPage, MemoryError>;

    /// One memory of the `user`.
    async fn get(&self, user: &PhoneNumber, id: &MemoryId) -> Result<Memory, MemoryError>;

    /// Changes one memory of the `user` and returns it as stored.
    async fn update(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        update: MemoryUpdate,
    ) -> Result<Memory, MemoryError>;

    /// Deletes one memory of the `user`.
    async fn delete(&self, user: &PhoneNumber, id: &MemoryId) -> Result<(), MemoryError>;

    /// Deletes every memory of the `user` and returns how many there were.
    async fn erase_user(&self, user: &PhoneNumber) -> Result<u64, MemoryError>;

    /// What the store knows of the `user`.
    async fn profile(&self, user: &PhoneNumber) -> Result<UserProfile, MemoryError>;

    /// Whether the store is reachable and usable.
    async fn health(&self) -> Result<(), MemoryError>;

    /// One page (at most `limit`) of the memories, across callers, whose
    /// embedding is missing or not of `model`, after `cursor` (the
    /// previous page's `next_cursor`). Maintenance, not a request path:
    /// the service backfills embeddings with it at start-up. A store that
    /// keeps no embeddings answers an empty page (the default).
    async fn embedding_backlog(
        &self,
        model: ModelTag,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<EmbeddingBacklog, MemoryError> {
        let _ = (model, cursor, limit);
        Ok(EmbeddingBacklog::default())
    }

    /// Sets the embedding of one memory of `user` (for a backfill).
    /// [`MemoryError::NotFound`] when the memory is gone; a store that keeps
    /// no embeddings ignores it (the default).
    async fn set_embedding(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        embedding: Embedding,
    ) -> Result<(), MemoryError> {
        let _ = (user, id, embedding);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::io;

    use super::{ErrorChain, MemoryError};

    #[test]
    fn a_wrapped_error_is_the_source_and_ends_the_message() {
        let err = MemoryError::unavailable("embedded store")
            .with_source(io::Error::other("disk on fire"));
        assert_eq!(
            err.to_string(),
            "memory store unavailable: embedded store: disk on fire"
        );
        let source = err.source().expect("the cause is kept");
        assert!(source.is::<io::Error>(), "{source:?}");
        assert!(err.is_retryable());
    }

    #[test]
    fn without_a_source_the_message_is_the_reason() {
        let err = MemoryError::rejected("content: must not be empty");
        assert_eq!(
            err.to_string(),
            "memory store rejected the request: content: must not be empty"
        );
        assert!(err.source().is_none());
        assert!(!err.is_retryable());
    }

    #[test]
    fn variants_without_a_cause_ignore_a_source() {
        let err = MemoryError::NotKept("merged".into()).with_source(io::Error::other("x"));
        assert!(matches!(err, MemoryError::NotKept(_)));
        assert!(err.source().is_none());
    }

    #[test]
    fn the_chain_shows_every_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("connect failed")]
        struct Connect(#[source] io::Error);

        let err = MemoryError::unavailable("cannot connect to OpenMemory")
            .with_source(Connect(io::Error::other("connection refused")));
        assert_eq!(
            ErrorChain(&err).to_string(),
            "memory store unavailable: cannot connect to OpenMemory: connect failed: connection refused"
        );
        let plain = MemoryError::internal("bug");
        assert_eq!(ErrorChain(&plain).to_string(), plain.to_string());
    }
}
