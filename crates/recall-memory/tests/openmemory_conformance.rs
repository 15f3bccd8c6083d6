//! The conformance suite, run against `OpenMemoryStore` talking to a
//! stateful emulator of an OpenMemory v1.3.0 server on loopback.

#![cfg(all(feature = "openmemory", feature = "conformance"))]

mod openmemory_support;

use std::time::Duration;

use openmemory_support::emulator::Emulator;
use recall_memory::conformance;
use recall_memory::openmemory::{OpenMemoryConfig, OpenMemoryStore};

async fn store_on_emulator() -> (wiremock::MockServer, Emulator, OpenMemoryStore) {
    let (server, emulator) = Emulator::new(Some("testkey123")).start().await;
    let config = OpenMemoryConfig::from_port_or_url(&server.uri())
        .unwrap()
        .with_api_key("testkey123")
        .unwrap()
        // Generous: the suite checks behaviour, not latency, on a shared CI box.
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10));
    let store = OpenMemoryStore::connect(config).await.unwrap();
    (server, emulator, store)
}

#[tokio::test]
async fn openmemory_store_passes_the_conformance_suite() {
    let (_server, _emulator, store) = store_on_emulator().await;
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn the_suite_also_passes_behind_a_dyn_store() {
    let (_server, _emulator, store) = store_on_emulator().await;
    let store: std::sync::Arc<dyn recall_memory::MemoryStore> = std::sync::Arc::new(store);
    conformance::users_are_isolated(store.as_ref()).await;
    conformance::idempotency_survives_supersession(store.as_ref()).await;
}
