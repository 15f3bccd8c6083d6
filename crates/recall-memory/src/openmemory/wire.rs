//! OpenMemory v1.3's JSON shapes (tolerant: unknown fields are ignored,
//! fields real answers omit are optional) and the envelope the adapter
//! keeps in each memory's metadata.

use base64::Engine as _;
use recall_model::{
    AgentId, ConversationId, DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::{Fact, IdempotencyKey, Memory, MemoryId, Metadata, NewMemory};

/// The metadata key holding the [`Envelope`].
pub(crate) const ENVELOPE_KEY: &str = "recall";

/// The envelope format written by this version.
pub(crate) const ENVELOPE_VERSION: u32 = 1;

/// `POST /memory/add` body.
#[derive(Serialize, Debug)]
pub(crate) struct AddRequest<'a> {
    pub content: &'a str,
    pub tags: &'a [String],
    pub metadata: &'a Map<String, Value>,
    pub user_id: &'a str,
}

/// `POST /memory/add` answer: a new row, or `deduplicated: true` with the
/// id of an existing row (possibly another user's).
#[derive(Deserialize, Debug)]
pub(crate) struct AddResponse {
    pub id: String,
    #[serde(default)]
    pub deduplicated: bool,
}

/// `GET /memory/all` answer.
#[derive(Deserialize, Debug)]
pub(crate) struct ListResponse {
    #[serde(default)]
    pub items: Vec<WireMemory>,
}

/// A stored row as `GET /memory/all` and `GET /memory/:id` return it.
#[derive(Deserialize, Debug, Clone)]
pub(crate) struct WireMemory {
    pub id: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub primary_sector: Option<String>,
    #[serde(default)]
    pub tags: Value,
    #[serde(default)]
    pub metadata: Value,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<i64>,
    #[serde(default)]
    pub salience: Option<f64>,
    #[serde(default)]
    pub decay_lambda: Option<f64>,
    #[serde(default)]
    pub user_id: Option<String>,
}

/// `PATCH /memory/:id` body (tags and metadata are replaced, not merged).
#[derive(Serialize, Debug)]
pub(crate) struct PatchRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    pub tags: &'a [String],
    pub metadata: &'a Map<String, Value>,
    pub user_id: &'a str,
}

/// `DELETE /users/:id/memories` answer.
#[derive(Deserialize, Debug)]
pub(crate) struct EraseResponse {
    #[serde(default)]
    pub deleted: u64,
}

/// `GET /health` answer.
#[derive(Deserialize, Debug)]
pub(crate) struct HealthResponse {
    #[serde(default)]
    pub ok: Option<bool>,
}

/// What OpenMemory ignores or may alter, kept in `metadata.recall` so
/// that reads restore it: the exact content (the server may summarise
/// long content), salience and decay (ignored on add), the sector (also
/// sent as `metadata.sector`, which the server honours), tags and the
/// caller's metadata (replaced on patch), agent, conversation, time, fact
/// and idempotency key (no server field), and the owner (checked on
/// every read).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Envelope {
    pub v: u32,
    pub user_id: String,
    pub content: String,
    pub sector: MemorySector,
    pub salience: Salience,
    pub decay_lambda: DecayLambda,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<UnixTimestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<Fact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
    /// Writes of memories this one superseded: their keys stay written,
    /// so replaying an old event cannot bring back a replaced fact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredWrite>,
    /// Set on a row that only keeps the idempotency keys of deleted
    /// memories; never shown as a memory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tombstone: bool,
    /// The content's embedding, in its stored form, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<String>,
}

/// An idempotency key whose memory was superseded, and that memory as it
/// was first written.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct RetiredWrite {
    pub key: IdempotencyKey,
    pub memory: Memory,
}

impl Envelope {
    /// An envelope for a row written by another tool (no envelope yet).
    pub fn from_memory(memory: &Memory) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            user_id: memory.user_id.as_str().to_owned(),
            content: memory.content.clone(),
            sector: memory.sector,
            salience: memory.salience,
            decay_lambda: memory.decay_lambda,
            tags: memory.tags.clone(),
            metadata: memory.metadata.clone(),
            agent_id: memory.agent_id.clone(),
            conversation_id: memory.conversation_id.clone(),
            occurred_at: Some(memory.created_at),
            fact: memory.fact.clone(),
            idempotency_key: None,
            retired: Vec::new(),
            tombstone: false,
            embedding: None,
        }
    }

    /// The envelope of a new memory of `user`.
    pub fn new(user: &PhoneNumber, memory: &NewMemory) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            user_id: user.as_str().to_owned(),
            content: memory.content.clone(),
            sector: memory.sector,
            salience: memory.salience,
            decay_lambda: memory.effective_decay(),
            tags: memory.tags.clone(),
            metadata: memory.metadata.clone(),
            agent_id: memory.agent_id.clone(),
            conversation_id: memory.conversation_id.clone(),
            occurred_at: memory.occurred_at,
            fact: memory.fact.clone(),
            idempotency_key: memory.idempotency_key.clone(),
            retired: Vec::new(),
            tombstone: false,
            embedding: memory
                .embedding
                .as_ref()
                .map(|e| base64::engine::general_purpose::STANDARD.encode(e.to_bytes())),
        }
    }

    /// Keeps `embedding` (in its stored form).
    pub fn set_embedding(&mut self, embedding: &crate::embed::Embedding) {
        self.embedding =
            Some(base64::engine::general_purpose::STANDARD.encode(embedding.to_bytes()));
    }

    /// The stored form of the embedding, if it has a readable one.
    pub fn embedding_bytes(&self) -> Option<Vec<u8>> {
        self.embedding
            .as_deref()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    }

    /// A row keeping the idempotency keys of `retired` deleted memories,
    /// so replaying their events cannot write them again.
    pub fn tombstone(user: &PhoneNumber, retired: Vec<RetiredWrite>) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            user_id: user.as_str().to_owned(),
            content: "Recall keeps the idempotency keys of deleted memories here".to_owned(),
            sector: MemorySector::Reflective,
            salience: Salience::MIN,
            decay_lambda: DecayLambda::PERMANENT,
            tags: vec!["recall_tombstone".to_owned()],
            metadata: Metadata::new(),
            agent_id: None,
            conversation_id: None,
            occurred_at: None,
            fact: None,
            idempotency_key: None,
            retired,
            tombstone: true,
            embedding: None,
        }
    }

    /// The writes this memory's deletion must keep: its own key and the
    /// keys it carries for memories it replaced.
    pub fn writes_to_keep(&self, memory: &Memory) -> Vec<RetiredWrite> {
        let mut out = self.retired.clone();
        if let Some(key) = &self.idempotency_key {
            out.push(RetiredWrite {
                key: key.clone(),
                memory: memory.clone(),
            });
        }
        out
    }

    /// The `metadata` object sent to OpenMemory: `sector` (which forces
    /// the server's primary sector), a few readable fields for people
    /// browsing OpenMemory, and the envelope.
    pub fn to_server_metadata(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("sector".into(), Value::from(self.sector.as_str()));
        if let Some(c) = &self.conversation_id {
            out.insert("conversation_id".into(), Value::from(c.as_str()));
        }
        if let Some(f) = &self.fact {
            out.insert("field".into(), Value::from(f.key.as_str()));
        }
        out.insert(
            ENVELOPE_KEY.into(),
            serde_json::to_value(self).unwrap_or(Value::Null),
        );
        out
    }
}

/// Epoch milliseconds to whole seconds, clamped to the valid range.
fn from_millis(ms: i64) -> UnixTimestamp {
    UnixTimestamp::from_secs(ms.div_euclid(1000).clamp(0, UnixTimestamp::MAX_SECS))
        .unwrap_or_else(|_| UnixTimestamp::now())
}

/// A row read back, with its envelope (if it carries a valid one).
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub memory: Memory,
    pub envelope: Option<Envelope>,
    /// The server's `created_at` in milliseconds: the write order.
    pub written_ms: i64,
}

impl StoredRow {
    /// Whether the row only keeps keys of deleted memories.
    pub fn is_tombstone(&self) -> bool {
        self.envelope.as_ref().is_some_and(|e| e.tombstone)
    }
}

impl WireMemory {
    /// The row as a memory of `user`, or `None` when it is not provably
    /// `user`'s: the server's `user_id` must be `user` and so must the
    /// envelope's, if present. Rows without an envelope (written by other
    /// tools) fall back to the server's own fields.
    pub fn into_row(self, user: &PhoneNumber) -> Option<StoredRow> {
        if self.user_id.as_deref() != Some(user.as_str()) {
            return None;
        }
        let envelope = match &self.metadata {
            Value::Object(m) => m
                .get(ENVELOPE_KEY)
                .and_then(|e| serde_json::from_value::<Envelope>(e.clone()).ok()),
            _ => None,
        };
        if let Some(e) = &envelope
            && e.user_id != user.as_str()
        {
            return None;
        }
        let id = MemoryId::new(self.id).ok()?;
        let written_ms = self.created_at.unwrap_or(0);
        let server_created = from_millis(written_ms);
        let server_updated = self.updated_at.map(from_millis).unwrap_or(server_created);
        let memory = match &envelope {
            Some(e) => {
                let created_at = e.occurred_at.unwrap_or(server_created);
                Memory {
                    id,
                    user_id: user.clone(),
                    content: e.content.clone(),
                    sector: e.sector,
                    salience: e.salience,
                    decay_lambda: e.decay_lambda,
                    tags: e.tags.clone(),
                    metadata: e.metadata.clone(),
                    agent_id: e.agent_id.clone(),
                    conversation_id: e.conversation_id.clone(),
                    fact: e.fact.clone(),
                    created_at,
                    updated_at: server_updated.max(created_at),
                }
            }
            None => {
                let sector = self
                    .primary_sector
                    .as_deref()
                    .and_then(|s| MemorySector::parse(s).ok())
                    .unwrap_or(MemorySector::Semantic);
                let tags = match &self.tags {
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                let metadata = match self.metadata {
                    Value::Object(m) => m,
                    _ => Metadata::new(),
                };
                Memory {
                    id,
                    user_id: user.clone(),
                    content: self.content,
                    sector,
                    salience: self
                        .salience
                        .and_then(|s| Salience::new(s.clamp(0.0, 1.0)).ok())
                        .unwrap_or(Salience::MEDIUM),
                    decay_lambda: self
                        .decay_lambda
                        .and_then(|d| DecayLambda::new(d).ok())
                        .unwrap_or_else(|| sector.default_decay_lambda()),
                    tags,
                    metadata,
                    agent_id: None,
                    conversation_id: None,
                    fact: None,
                    created_at: server_created,
                    updated_at: server_updated.max(server_created),
                }
            }
        };
        Some(StoredRow {
            memory,
            envelope,
            written_ms,
        })
    }
}

/// The reason in an OpenMemory error body: `err`, `error` and `message`
/// are all in use; a non-JSON body is shown as text (shortened).
pub(crate) fn error_reason(body: &str) -> Option<String> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return None;
    }
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(trimmed) {
        let pick = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let main = pick("err").or_else(|| pick("error"));
        return match (main, pick("message")) {
            (Some(e), Some(msg)) => Some(format!("{e}: {msg}")),
            (Some(e), None) => Some(e),
            (None, Some(msg)) => Some(msg),
            (None, None) => Some(shorten(trimmed)),
        };
    }
    Some(shorten(trimmed))
}

fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: &str) -> PhoneNumber {
        PhoneNumber::parse(n).unwrap()
    }

    #[test]
    fn error_reasons_come_from_every_body_shape() {
        assert_eq!(error_reason(r#"{"err":"nf"}"#).as_deref(), Some("nf"));
        assert_eq!(
            error_reason(r#"{"error":"authentication_required","message":"API key required"}"#)
                .as_deref(),
            Some("authentication_required: API key required")
        );
        assert_eq!(
            error_reason("404: Not Found").as_deref(),
            Some("404: Not Found")
        );
        assert_eq!(error_reason(""), None);
    }

    #[test]
    fn a_row_of_another_user_is_never_returned() {
        let row: WireMemory = serde_json::from_value(serde_json::json!({
            "id": "x", "content": "c", "user_id": "+16125550102", "metadata": {}
        }))
        .unwrap();
        assert!(row.clone().into_row(&user("+16125550101")).is_none());
        assert!(row.into_row(&user("+16125550102")).is_some());
    }

    #[test]
    fn an_envelope_naming_another_user_is_never_returned() {
        let me = user("+16125550101");
        let other = user("+16125550102");
        let env = Envelope::new(&other, &NewMemory::new("hi", MemorySector::Semantic));
        let row: WireMemory = serde_json::from_value(serde_json::json!({
            "id": "x", "content": "hi", "user_id": "+16125550101",
            "metadata": env.to_server_metadata()
        }))
        .unwrap();
        assert!(row.into_row(&me).is_none());
    }

    #[test]
    fn the_envelope_restores_what_the_server_ignores() {
        let me = user("+16125550101");
        let new = NewMemory::new("The caller's name is Maria", MemorySector::Semantic)
            .salience(Salience::HIGH)
            .decay(DecayLambda::PERMANENT)
            .tag("profile")
            .meta("source", "data_collection")
            .occurred_at(UnixTimestamp::from_secs(1_700_000_000).unwrap());
        let env = Envelope::new(&me, &new);
        let row: WireMemory = serde_json::from_value(serde_json::json!({
            "id": "e707d1c8-d533-4d64-b248-a2ef6b05c285",
            "content": "The caller's name is Maria",
            "primary_sector": "semantic",
            "tags": ["profile"],
            "metadata": env.to_server_metadata(),
            "created_at": 1795672584391_i64, "updated_at": 1795672584525_i64,
            "salience": 0.4, "decay_lambda": 0.005, "user_id": "+16125550101"
        }))
        .unwrap();
        let m = row.into_row(&me).unwrap().memory;
        assert_eq!(m.salience, Salience::HIGH);
        assert!(m.decay_lambda.is_permanent());
        assert_eq!(m.created_at.as_secs(), 1_700_000_000);
        assert_eq!(
            m.metadata.get("source"),
            Some(&Value::from("data_collection"))
        );
        assert_eq!(m.tags, ["profile"]);
    }
}
