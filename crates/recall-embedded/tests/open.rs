//! Opening a file: what is created, and the clear errors for files the
//! store must not use.

use std::time::Duration;

use recall_embedded::{EmbeddedOptions, EmbeddedStore, OpenError, SCHEMA_VERSION};
use recall_memory::{MemoryStore, NewMemory};
use recall_model::{MemorySector, PhoneNumber};

fn caller() -> PhoneNumber {
    PhoneNumber::parse("+16125550100").unwrap()
}

fn quick_lock_timeout() -> EmbeddedOptions {
    EmbeddedOptions {
        busy_timeout: Duration::from_millis(100),
        ..EmbeddedOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_parent_directories_and_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("memory.db");
    let store = EmbeddedStore::open(&path).unwrap();
    assert!(path.exists());
    let written = store
        .add(
            &caller(),
            NewMemory::new("Caller prefers morning calls", MemorySector::Semantic),
        )
        .await
        .unwrap();
    drop(store);

    let store = EmbeddedStore::open(&path).unwrap();
    let read = store.get(&caller(), &written.memory().id).await.unwrap();
    assert_eq!(&read, written.memory());
    assert_eq!(store.profile(&caller()).await.unwrap().memory_count, 1);
}

#[test]
fn garbage_file_is_reported_as_corrupt_naming_the_path_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();

    let err = EmbeddedStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file must not change"
    );
}

#[test]
fn damaged_pages_behind_a_valid_header_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    drop(EmbeddedStore::open(&path).unwrap());
    // Checkpointed on close; now overwrite everything after the header.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 4096);
    for (i, b) in bytes.iter_mut().enumerate().skip(100) {
        *b = (i % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();

    let err = EmbeddedStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn newer_schema_is_refused_naming_path_and_versions_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    drop(EmbeddedStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);

    let err = EmbeddedStore::open(&path).unwrap_err();
    match &err {
        OpenError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, SCHEMA_VERSION + 1);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&(SCHEMA_VERSION + 1).to_string()),
        "{message}"
    );

    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION + 1, "the file must not be migrated");
}

#[test]
fn exclusively_locked_file_is_reported_as_locked_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    drop(EmbeddedStore::open(&path).unwrap());

    let holder = rusqlite::Connection::open(&path).unwrap();
    holder
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
        .unwrap();

    let err = EmbeddedStore::open_with(&path, quick_lock_timeout()).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    // Once the other connection lets go, the file opens.
    drop(holder);
    EmbeddedStore::open_with(&path, quick_lock_timeout()).unwrap();
}

#[test]
fn file_held_in_a_write_transaction_is_reported_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    drop(EmbeddedStore::open(&path).unwrap());

    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE;").unwrap();
    let err = EmbeddedStore::open_with(&path, quick_lock_timeout()).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err:?}");
    holder.execute_batch("COMMIT;").unwrap();
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);")
        .unwrap();
    drop(raw);

    let err = EmbeddedStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Foreign { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn an_empty_file_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    std::fs::write(&path, b"").unwrap();
    EmbeddedStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn invalid_reader_count_is_refused_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let options = EmbeddedOptions {
        readers: 0,
        ..EmbeddedOptions::default()
    };
    let err = EmbeddedStore::open_with(&path, options).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::InvalidOption {
                field: "readers",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!path.exists(), "a refused open must not create the file");
}

#[test]
fn a_directory_in_the_way_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let path = blocker.join("memory.db");
    let err = EmbeddedStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let source = std::error::Error::source(&err).expect("the I/O error is the source");
    assert!(source.is::<std::io::Error>(), "{source:?}");
}
