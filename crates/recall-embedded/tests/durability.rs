//! A write that returned `Ok` survives `kill -9` of the process, with
//! either durability setting.
//!
//! The test starts this test binary again as a child process that writes
//! memories as fast as it can and prints each acknowledged one, kills it
//! with SIGKILL mid-stream, reopens the file and checks every
//! acknowledged write.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use recall_embedded::{Durability, EmbeddedOptions, EmbeddedStore};
use recall_memory::{IdempotencyKey, MemoryStore, NewMemory};
use recall_model::{MemorySector, PhoneNumber};

const CHILD_DB: &str = "RECALL_EMBEDDED_KILL_CHILD_DB";
const CHILD_DURABILITY: &str = "RECALL_EMBEDDED_KILL_CHILD_DURABILITY";
/// How many acknowledged writes the parent waits for before the kill.
const KILL_AFTER: usize = 200;

fn caller() -> PhoneNumber {
    PhoneNumber::parse("+16125550199").unwrap()
}

fn write(i: u64) -> NewMemory {
    NewMemory::new(
        format!("Caller asked about item {i}"),
        MemorySector::Episodic,
    )
    .idempotency_key(IdempotencyKey::new(format!("conv_kill/{i}")).unwrap())
}

fn options(durability: &str) -> EmbeddedOptions {
    EmbeddedOptions {
        durability: match durability {
            "normal" => Durability::Normal,
            _ => Durability::Full,
        },
        ..EmbeddedOptions::default()
    }
}

/// The writer process of the kill tests; does nothing when run on its own.
#[test]
#[ignore = "started as a child process by the kill -9 tests"]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let durability = std::env::var(CHILD_DURABILITY).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = EmbeddedStore::open_with(&path, options(&durability)).unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0.. {
            store.add(&caller(), write(i)).await.unwrap();
            writeln!(out, "acked {i}").unwrap();
            out.flush().unwrap();
        }
    });
}

async fn acknowledged_writes_survive_kill_9(durability: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &path)
        .env(CHILD_DURABILITY, durability)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked: Vec<u64> = Vec::new();
    let mut killed = false;
    for line in lines {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked.push(n.parse().unwrap());
        }
        if acked.len() >= KILL_AFTER && !killed {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "the child stopped by itself ({status:?}) after {} writes",
        acked.len()
    );
    assert!(!status.success());

    let store = EmbeddedStore::open(&path).unwrap();
    let count = store.profile(&caller()).await.unwrap().memory_count;
    assert!(
        count >= acked.len() as u64,
        "{} writes were acknowledged, {count} survived",
        acked.len()
    );
    for i in acked {
        let again = store.add(&caller(), write(i)).await.unwrap();
        assert!(again.is_duplicate(), "acknowledged write {i} was lost");
        assert_eq!(
            again.memory().content,
            format!("Caller asked about item {i}")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_with_full_durability() {
    acknowledged_writes_survive_kill_9("full").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_with_normal_durability() {
    acknowledged_writes_survive_kill_9("normal").await;
}
