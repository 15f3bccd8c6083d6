//! An in-memory [`MemoryStore`](crate::MemoryStore) (being written).

/// An in-memory store (being written).
#[derive(Debug, Default)]
pub struct InMemoryStore {}
