//! The Recall domain model.
//!
//! * [`values`]: validated value types — [`PhoneNumber`], [`Salience`],
//!   [`MemorySector`], [`DecayLambda`], [`UnixTimestamp`], [`WebhookType`],
//!   [`ConversationId`], [`AgentId`]. Deserialization goes through their
//!   constructors, so an invalid value cannot exist.
//! * [`identity`]: [`classify_caller_id`] turns a raw caller id into a
//!   phone number or a reason why there is no identity.
//!
//! No I/O happens in this crate.

pub mod error;
pub mod identity;
pub mod values;

pub use error::ValueError;
pub use identity::{NoIdentity, classify_caller_id};
pub use values::{
    AgentId, ConversationId, DecayLambda, MAX_ID_LEN, MemorySector, PhoneNumber, Salience,
    SalienceLabel, UnixTimestamp, WebhookType,
};
