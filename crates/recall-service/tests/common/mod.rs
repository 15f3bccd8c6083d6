//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use recall_memory::InMemoryStore;
use recall_model::{ClientDataRequest, SearchDataRequest};
use recall_service::{PayloadStore, Service, ServiceConfig};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const MARGARET: &str = "+16129782029";
pub const BOB: &str = "+442071234567";

/// A service over a fresh in-memory store and temporary payload folder.
pub struct Harness {
    pub dir: TempDir,
    pub store: InMemoryStore,
    pub service: Service,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(ServiceConfig::default())
    }

    pub fn with_config(config: ServiceConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = InMemoryStore::new();
        let service = Service::new(
            Arc::new(store.clone()),
            PayloadStore::open(dir.path()).unwrap(),
            config,
        );
        Self {
            dir,
            store,
            service,
        }
    }

    /// Another service over the same folder and store (a restart).
    pub fn restart(&self) -> Service {
        Service::new(
            Arc::new(self.store.clone()),
            PayloadStore::open(self.dir.path()).unwrap(),
            self.service.config().clone(),
        )
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/elevenlabs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A post-call transcription event.
pub struct Call<'a> {
    pub conversation: &'a str,
    pub caller: &'a str,
    pub agent: &'a str,
    pub start: i64,
    pub facts: Vec<(&'a str, Value)>,
    pub summary: Option<&'a str>,
    pub title: Option<&'a str>,
    pub transcript: Value,
}

impl<'a> Call<'a> {
    pub fn new(conversation: &'a str, caller: &'a str) -> Self {
        Self {
            conversation,
            caller,
            agent: "agent_front_desk",
            start: 1_739_537_297,
            facts: Vec::new(),
            summary: None,
            title: None,
            transcript: json!([]),
        }
    }

    pub fn fact(mut self, field: &'a str, value: impl Into<Value>) -> Self {
        self.facts.push((field, value.into()));
        self
    }

    pub fn summary(mut self, summary: &'a str, title: &'a str) -> Self {
        self.summary = Some(summary);
        self.title = Some(title);
        self
    }

    pub fn agent(mut self, agent: &'a str) -> Self {
        self.agent = agent;
        self
    }

    pub fn start(mut self, start: i64) -> Self {
        self.start = start;
        self
    }

    pub fn transcript(mut self, transcript: Value) -> Self {
        self.transcript = transcript;
        self
    }

    pub fn body(&self) -> Vec<u8> {
        let results: serde_json::Map<String, Value> = self
            .facts
            .iter()
            .map(|(field, value)| {
                (
                    (*field).to_owned(),
                    json!({"data_collection_id": field, "value": value, "rationale": "said so"}),
                )
            })
            .collect();
        serde_json::to_vec(&json!({
            "type": "post_call_transcription",
            "event_timestamp": self.start + 60,
            "data": {
                "agent_id": self.agent,
                "conversation_id": self.conversation,
                "status": "done",
                "transcript": self.transcript,
                "metadata": {"start_time_unix_secs": self.start, "call_duration_secs": 42},
                "analysis": {
                    "data_collection_results": results,
                    "call_successful": "success",
                    "transcript_summary": self.summary,
                    "call_summary_title": self.title,
                },
                "conversation_initiation_client_data": {
                    "dynamic_variables": {"system__caller_id": self.caller}
                }
            }
        }))
        .unwrap()
    }
}

pub fn ringing(caller: &str, agent: &str) -> ClientDataRequest {
    serde_json::from_value(json!({
        "caller_id": caller, "agent_id": agent,
        "called_number": "+12025550158", "call_sid": "CA00000000000000000000000000000000"
    }))
    .unwrap()
}

pub fn asking(caller: &str, query: &str) -> SearchDataRequest {
    serde_json::from_value(
        json!({"query": query, "user_id": caller, "agent_id": "agent_front_desk"}),
    )
    .unwrap()
}

pub fn first_message(response: &recall_model::ClientDataResponse) -> Option<String> {
    response
        .conversation_config_override
        .as_ref()?
        .agent
        .as_ref()?
        .first_message
        .clone()
}

/// Ingests and processes a call.
pub async fn remember(service: &Service, call: &Call<'_>) {
    let ack = service.ingest_bytes(&call.body()).await.unwrap();
    assert!(!ack.duplicate);
    let report = service.process_pending().await;
    assert_eq!(report.processed, 1, "{report:?}");
}

/// A small, deterministic embedder for tests: each word lands on one of
/// 64 dimensions (with a few synonyms sharing one), so texts sharing
/// words or their synonyms point the same way.
#[derive(Debug, Default)]
pub struct WordEmbedder {
    pub calls: std::sync::atomic::AtomicUsize,
}

impl recall_memory::Embedder for WordEmbedder {
    fn model_id(&self) -> &str {
        "test/words-64"
    }

    fn dims(&self) -> usize {
        64
    }

    fn is_cheap(&self) -> bool {
        true
    }

    fn embed(
        &self,
        text: &str,
    ) -> Result<recall_memory::Embedding, recall_memory::embed::EmbedError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut v = vec![0.01_f32; 64];
        for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
            let word = match word {
                "flowers" | "flower" | "roses" => "roses",
                "" => continue,
                w => w,
            };
            let h = word
                .bytes()
                .fold(7_u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            v[(h % 64) as usize] += 1.0;
        }
        Ok(recall_memory::Embedding::new(self.tag(), v).expect("non-zero"))
    }
}
