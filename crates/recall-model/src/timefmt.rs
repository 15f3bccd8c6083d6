//! Serde helpers that write a [`UnixTimestamp`] as an RFC 3339 string.
//!
//! The JSON this service produces for people, LLMs and browsers
//! (`MemoryItem.timestamp`, the UI models) carries times as RFC 3339 text
//! in UTC (`2025-02-14T12:48:17Z`): an LLM reads it without arithmetic and
//! JavaScript's `new Date(...)` parses it. ElevenLabs' own payloads use unix
//! seconds and keep them.
//!
//! Use with `#[serde(with = "recall_model::timefmt::rfc3339")]` on a
//! `UnixTimestamp` field, or `rfc3339_option` on an `Option<UnixTimestamp>`.

use serde::{Deserialize, Deserializer, Serializer};

use crate::UnixTimestamp;

/// `UnixTimestamp` ⇄ RFC 3339 string.
pub mod rfc3339 {
    use super::*;

    /// Writes the time as RFC 3339 text.
    pub fn serialize<S: Serializer>(t: &UnixTimestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    /// Reads RFC 3339 text; anything else is an error naming the rule.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UnixTimestamp, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(d)?;
        UnixTimestamp::parse_rfc3339(&raw).map_err(serde::de::Error::custom)
    }
}

/// `Option<UnixTimestamp>` ⇄ RFC 3339 string or null. Pair it with
/// `default` and `skip_serializing_if = "Option::is_none"`.
pub mod rfc3339_option {
    use super::*;

    /// Writes the time as RFC 3339 text, or null.
    pub fn serialize<S: Serializer>(t: &Option<UnixTimestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339()),
            None => s.serialize_none(),
        }
    }

    /// Reads RFC 3339 text or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UnixTimestamp>, D::Error> {
        match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
            Some(raw) => UnixTimestamp::parse_rfc3339(&raw)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
