//! Recall's storage ports on PostgreSQL, so that several replicas of the
//! service can share one database.
//!
//! * [`Database`]: a connection pool (TLS through rustls, honouring the
//!   URL's `sslmode`), with an optional schema of its own and the
//!   embedded migrations ([`Database::migrate`]), safe to run from every
//!   replica at start-up.
//! * [`PgEventLog`]: the [`EventLog`](recall_service::EventLog) port: raw
//!   webhook events, their processing state, decoded audio and the
//!   quarantine.
//! * [`PgCallIndex`]: the [`CallIndex`](recall_service::CallIndex) port,
//!   the operator API's call list, transcripts and analytics.
//! * [`PgMemoryStore`]: the [`MemoryStore`](recall_memory::MemoryStore)
//!   port: callers' memories, full-text and embedding candidates ranked
//!   by the shared ranking.
//!
//! * [`PgAuditLog`]: the [`AuditLog`](recall_service::AuditLog) port,
//!   operator access to callers' data, in the `audit_log` table.
//!
//! Every implementation here passes its port's conformance suite on a
//! real server (`tests/`).

mod audit;
mod cache;
mod calls;
mod db;
mod event_log;
mod memory;
mod migrate;

pub use audit::PgAuditLog;
pub use cache::DEFAULT_BUDGET_BYTES as DEFAULT_CACHE_BYTES;
pub use calls::PgCallIndex;
pub use db::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_POOL_SIZE, Database, DatabaseBuilder, DatabaseError,
};
pub use event_log::{AUDIO_CHUNK, PgEventLog};
pub use memory::{ALL_CANDIDATES, PgMemoryStore};
pub use migrate::{SCHEMA_VERSION, migration_versions};
