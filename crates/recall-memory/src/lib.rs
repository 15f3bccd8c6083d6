//! Recall's long-term memory port.
//!
//! Services talk to memory only through the [`MemoryStore`] trait, so that
//! production runs on OpenMemory or the embedded store and tests run on an
//! in-memory store with the same rules.

pub mod in_memory;
pub mod store;
pub mod text;

#[cfg(feature = "openmemory")]
pub mod openmemory;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use in_memory::InMemoryStore;
#[cfg(feature = "openmemory")]
pub use openmemory::{OpenMemoryConfig, OpenMemoryStore};
pub use store::{
    AddOutcome, Fact, FactKey, IdempotencyKey, ListRequest, MAX_CONTENT_LEN, MAX_KEY_LEN,
    MAX_RESULTS, Memory, MemoryError, MemoryFilter, MemoryId, MemoryPage, MemoryStore,
    MemoryUpdate, Metadata, NewMemory, ScoredMemory, SearchQuery, UserProfile,
};
