//! Recall's default memory store: durable, zero-install and ranked, on
//! local disk.
//!
//! [`EmbeddedStore`] implements [`recall_memory::MemoryStore`] on one
//! SQLite file (compiled in through rusqlite's `bundled` feature, so
//! nothing needs installing): a write-ahead log so readers never wait for
//! the writer, an FTS5 full-text index searched by word prefixes (so
//! `refinance` finds `refinancing`) and by phone-number fragments, and a
//! ranking that combines BM25 relevance within the
//! caller's own memories with salience, per-sector recency decay and
//! sector weights. `docs/embedded-store.md` explains the schema, the
//! formula, durability and concurrency.
//!
//! Every call runs on Tokio's blocking pool, so it must be made from
//! within a Tokio runtime.
//!
//! ```
//! use recall_embedded::{Durability, EmbeddedOptions, EmbeddedStore};
//! use recall_memory::{Fact, FactKey, MemoryStore, NewMemory};
//! use recall_model::{DecayLambda, MemorySector, PhoneNumber, Salience};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 1)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("recall-lib-doc-{}", std::process::id()));
//! let options = EmbeddedOptions { durability: Durability::Full, ..Default::default() };
//! let store = EmbeddedStore::open_with(dir.join("memory.db"), options)?;
//! let caller = PhoneNumber::parse("+447700900123")?;
//! let name = |value: &str| {
//!     NewMemory::new(format!("Caller's first_name: {value}"), MemorySector::Semantic)
//!         .salience(Salience::HIGH)
//!         .decay(DecayLambda::PERMANENT)
//!         .fact(Fact { key: FactKey::new("first_name").unwrap(), value: value.into(), is_name: true })
//! };
//! store.add(&caller, name("Maggie")).await?;
//! // A newer value of the same fact replaces the old one.
//! store.add(&caller, name("Margaret")).await?;
//! let profile = store.profile(&caller).await?;
//! assert_eq!(profile.name.as_deref(), Some("Margaret"));
//! assert_eq!(profile.memory_count, 1);
//! # drop(store);
//! # std::fs::remove_dir_all(dir)?;
//! # Ok(())
//! # }
//! ```

mod bm25;
mod error;
mod schema;
mod search;
mod store;
mod text;

pub use error::OpenError;
pub use schema::{Durability, EmbeddedOptions, SCHEMA_VERSION};
pub use store::EmbeddedStore;
