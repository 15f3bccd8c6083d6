//! Private serde helpers shared by the wire types.

use serde::{Deserialize, Deserializer, Serialize};

/// Deserializes `null` (or an absent field, with `#[serde(default)]`) as
/// the type's default: ElevenLabs sends `null` for empty lists and maps.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A value written with a `"type"` tag in front of its own fields.
#[derive(Serialize)]
pub(crate) struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    #[serde(flatten)]
    pub(crate) inner: &'a T,
}

/// Removes the `"type"` key from a JSON object so the remaining fields can
/// be read into a variant's struct without the tag landing in its `extra`.
pub(crate) fn without_type(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(object) = value.as_object_mut() {
        object.remove("type");
    }
    value
}
