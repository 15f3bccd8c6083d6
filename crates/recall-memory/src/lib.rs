//! Recall's long-term memory port.
//!
//! Services talk to memory only through the [`MemoryStore`] trait, so that
//! production runs on OpenMemory or the embedded store and tests run on an
//! in-memory store with the same rules.
//!
//! * [`store`]: the port — [`MemoryStore`], the values that cross it
//!   ([`NewMemory`], [`Memory`], [`SearchQuery`], [`ListRequest`], ...) and
//!   [`MemoryError`], whose variants say whether to retry.
//! * [`in_memory`]: [`InMemoryStore`], a thread-safe store held in memory
//!   with the real rules, plus failure and latency injection for tests.
//! * `openmemory` (feature `openmemory`, off by default): the OpenMemory
//!   v1.3 HTTP adapter.
//! * `conformance` (feature `conformance`): the suite of checks every store
//!   passes; `conformance::run_all(&store).await` runs it on any store.
//! * [`text`]: the tokenising and BM25 scoring the in-memory store ranks
//!   with, for other stores that search locally.
//!
//! Every operation is scoped to one caller, identified by their E.164
//! number; facts supersede earlier facts with the same key; a write with an
//! idempotency key already written changes nothing.
//!
//! # Example
//!
//! A service holds whichever store was chosen at start-up as an
//! `Arc<dyn MemoryStore>`; tests hand it the in-memory store:
//!
//! ```
//! use std::sync::Arc;
//!
//! use recall_memory::{
//!     AddOutcome, Fact, FactKey, InMemoryStore, MemoryStore, NewMemory, SearchQuery,
//! };
//! use recall_model::{DecayLambda, MemorySector, PhoneNumber, Salience};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn MemoryStore> = Arc::new(InMemoryStore::new());
//! let caller = PhoneNumber::parse("+16129782029")?;
//!
//! // A profile fact: permanent, highly salient, superseding by key.
//! let name = |value: &str| -> Result<NewMemory, recall_model::ValueError> {
//!     let fact = Fact { key: FactKey::new("first_name")?, value: value.into(), is_name: true };
//!     Ok(NewMemory::new(format!("Caller's first_name: {value}"), MemorySector::Semantic)
//!         .salience(Salience::HIGH)
//!         .decay(DecayLambda::PERMANENT)
//!         .fact(fact))
//! };
//! store.add(&caller, name("Margaret")?).await?;
//! let outcome = store.add(&caller, name("Maggie")?).await?;
//! assert!(matches!(outcome, AddOutcome::Superseded { .. }));
//!
//! store
//!     .add(&caller, NewMemory::new("Caller is refinancing their mortgage", MemorySector::Episodic))
//!     .await?;
//!
//! let found = store.search(&caller, &SearchQuery::new("refinance", 5)).await?;
//! assert_eq!(found[0].memory.content, "Caller is refinancing their mortgage");
//!
//! let profile = store.profile(&caller).await?;
//! assert_eq!(profile.name.as_deref(), Some("Maggie"));
//! assert_eq!(profile.memory_count, 2);
//! # Ok(())
//! # }
//! ```

pub mod embed;
pub mod in_memory;
pub mod rank;
pub mod store;
pub mod text;

#[cfg(feature = "openmemory")]
pub mod openmemory;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use embed::{Embedder, Embedding, ModelTag};
pub use in_memory::InMemoryStore;
#[cfg(feature = "openmemory")]
pub use openmemory::{OpenMemoryConfig, OpenMemoryStore};
pub use store::{
    AddOutcome, BoxError, EmbeddingBacklog, EmbeddingTask, ErrorChain, Fact, FactKey,
    IdempotencyKey, ListRequest, MAX_CONTENT_LEN, MAX_KEY_LEN, MAX_RESULTS, Memory, MemoryError,
    MemoryFilter, MemoryId, MemoryPage, MemoryStore, MemoryUpdate, Metadata, NewMemory,
    QueryEmbedder, ScoredMemory, SearchQuery, UserProfile, validate_content,
};

/// [`tokio::task::spawn_blocking`], run inside the caller's tracing span,
/// so that what the blocking work logs (files, fsync, SQLite) keeps the
/// request's or the event's fields (`conversation_id`, ...). Every crate
/// of Recall that blocks goes through it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let span = tracing::info_span!("event", conversation_id = "conv_1");
/// let _entered = span.enter();
/// let answer = recall_memory::spawn_blocking(|| 6 * 7).await.unwrap();
/// assert_eq!(answer, 42);
/// # }
/// ```
pub fn spawn_blocking<F, T>(f: F) -> tokio::task::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}
