//! OpenMemory's entities as the ERD names them: a [`User`] (a caller, keyed
//! by phone number) has many [`Memory`] records.
//!
//! Serialized in camelCase as in the ERD. Times are RFC 3339 strings in UTC
//! (the ERD's `datetime`); an adapter for a store that writes times another
//! way converts at its edge.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp};

/// A caller known to the memory store.
///
/// ```
/// use recall_model::{PhoneNumber, openmemory::User};
/// let user = User {
///     user_id: PhoneNumber::parse("+16129782029").unwrap(),
///     name: Some("Angelo".into()),
///     summary: None,
///     memory_count: 3,
/// };
/// let json = serde_json::to_value(&user).unwrap();
/// assert_eq!(json["userId"], "+16129782029");
/// assert_eq!(json["memoryCount"], 3);
/// ```
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The caller's E.164 number: the user's key.
    pub user_id: PhoneNumber,
    /// The caller's name, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A short profile summary, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// How many memories the user has.
    #[serde(default)]
    pub memory_count: u64,
}

/// One memory of one caller.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// The store's id for the memory (e.g. `mem_xyz789`).
    pub id: String,
    /// The caller it belongs to.
    pub user_id: PhoneNumber,
    /// The memory's text.
    pub content: String,
    /// Its kind.
    pub sector: MemorySector,
    /// How important it is.
    pub salience: Salience,
    /// How fast its salience decays per day (0 = permanent).
    #[serde(default)]
    pub decay_lambda: DecayLambda,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// When it was made (RFC 3339).
    #[serde(with = "crate::timefmt::rfc3339")]
    pub created_at: UnixTimestamp,
    /// When it was last read (RFC 3339), if ever.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timefmt::rfc3339_option"
    )]
    pub last_accessed_at: Option<UnixTimestamp>,
}
