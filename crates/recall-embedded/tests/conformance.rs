//! The port's conformance suite, run against a store on a fresh file.

use recall_embedded::EmbeddedStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("memory.db")).unwrap();
    recall_memory::conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_again_on_a_reopened_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let store = EmbeddedStore::open(&path).unwrap();
    recall_memory::conformance::run_all(&store).await;
    drop(store);
    let store = EmbeddedStore::open(&path).unwrap();
    recall_memory::conformance::run_all(&store).await;
}
