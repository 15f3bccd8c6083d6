//! What the fuzz targets share: a service with one known caller, built
//! once per process.

use std::sync::{Arc, OnceLock};

use recall_memory::InMemoryStore;
use recall_service::{PayloadStore, Service, ServiceConfig};

/// The caller the service knows (the number of the shared client-data
/// fixture).
pub const KNOWN_CALLER: &str = "+12025550148";
/// Their name, which must never reach another caller.
pub const KNOWN_NAME: &str = "Margaret";
/// What they talked about, ditto.
pub const KNOWN_TOPIC: &str = "dental";

/// A post-call event teaching the service about [`KNOWN_CALLER`].
const EVENT: &str = r#"{"type":"post_call_transcription","event_timestamp":1739537297,
  "data":{"agent_id":"agent_1","conversation_id":"conv_fuzz_1",
    "analysis":{"transcript_summary":"Margaret moved her dental check-up to Friday.",
      "call_summary_title":"rebooking your dental check-up",
      "data_collection_results":{"first_name":{"data_collection_id":"first_name","value":"Margaret"}}},
    "conversation_initiation_client_data":{"dynamic_variables":{"system__caller_id":"+12025550148"}}}}"#;

/// A current-thread runtime and a service over an in-memory store that
/// knows one caller. The payload directory is a fresh directory under the
/// system's temporary directory, left behind (a few small files).
pub fn service() -> &'static (tokio::runtime::Runtime, Service) {
    static SERVICE: OnceLock<(tokio::runtime::Runtime, Service)> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime");
        let dir = std::env::temp_dir().join(format!("recall-fuzz-{}", std::process::id()));
        let payloads = PayloadStore::open(&dir).expect("a payload directory");
        let service = Service::new(
            Arc::new(InMemoryStore::new()),
            payloads,
            ServiceConfig::default(),
        );
        runtime.block_on(async {
            service
                .ingest_bytes(EVENT.as_bytes())
                .await
                .expect("the seed event is stored");
            let report = service.process_pending().await;
            assert!(service.pending_count() == 0, "{report:?}");
        });
        (runtime, service)
    })
}

/// Parses a small webhook body exactly as the server's routes do
/// (`apps/recall-server/src/routes/small.rs`): a blank body is refused,
/// anything else goes to `serde_json`.
pub fn parse_small_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// A parsed request serializes to JSON that parses back to it.
pub fn assert_round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_vec(value).expect("a request serializes");
    let back: T = serde_json::from_slice(&text).expect("a serialized request parses");
    assert_eq!(&back, value, "{}", String::from_utf8_lossy(&text));
}
