//! Opening a database file: checks, pragmas and schema migrations.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::OpenError;

/// `PRAGMA application_id` of a Recall memory database ("RECL").
pub(crate) const APPLICATION_ID: i64 = 0x5245_434C;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 2;

/// Migrations, in order: `MIGRATIONS[i]` takes the schema from version
/// `i` to `i + 1`. Each runs in the same transaction as the version bump.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: callers, memories, idempotency keys, the full-text index.
    r#"
    CREATE TABLE users (
        slot         INTEGER PRIMARY KEY AUTOINCREMENT,
        phone        TEXT    NOT NULL UNIQUE,
        next_seq     INTEGER NOT NULL DEFAULT 1,
        memory_count INTEGER NOT NULL DEFAULT 0,
        token_total  INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE memories (
        id              INTEGER PRIMARY KEY,
        slot            INTEGER NOT NULL,
        content         TEXT    NOT NULL,
        sector          TEXT    NOT NULL,
        salience        REAL    NOT NULL,
        decay_lambda    REAL    NOT NULL,
        tags            TEXT    NOT NULL,
        metadata        TEXT    NOT NULL,
        agent_id        TEXT,
        conversation_id TEXT,
        fact_key        TEXT,
        fact_value      TEXT,
        fact_is_name    INTEGER,
        idempotency_key TEXT,
        n_tokens        INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX memories_by_time ON memories (slot, created_at DESC, id);
    CREATE INDEX memories_by_fact ON memories (slot, fact_key) WHERE fact_key IS NOT NULL;
    CREATE TABLE idempotency (
        slot      INTEGER NOT NULL,
        key       TEXT    NOT NULL,
        memory_id INTEGER NOT NULL,
        snapshot  TEXT,
        PRIMARY KEY (slot, key)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        body,
        content = '',
        contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2',
        prefix = '4 5'
    );
    -- Merge index segments eagerly (pairs rather than FTS5's default of
    -- fours): searches seek once per segment, writes are small and many.
    INSERT INTO memories_fts (memories_fts, rank) VALUES ('automerge', 2);
    "#,
    // 1 -> 2: each memory's embedding, apart from its row so that a scan
    // of one caller's vectors reads small, contiguous rows. `model` is the
    // embedder's tag: vectors of another model are rebuilt by a backfill.
    // `users.version` grows with every change to a caller's memories: a
    // reader's copy of a caller's vectors is current while it matches.
    r#"
    CREATE TABLE vectors (
        id    INTEGER PRIMARY KEY,
        model INTEGER NOT NULL,
        v     BLOB    NOT NULL
    );
    ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    "#,
];

/// How much a committed write is protected.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is fsynced to the write-ahead log
    /// before the write returns. Survives a killed process and a power
    /// loss or OS crash. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits reach the operating system before the
    /// write returns and are fsynced at checkpoints. Survives a killed
    /// process (kill -9), but a power loss or OS crash may lose the last
    /// commits (never corrupts the file).
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Options of [`EmbeddedStore::open_with`](crate::EmbeddedStore::open_with).
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// How much a committed write is protected.
    pub durability: Durability,
    /// How long an operation waits for a lock held by another connection
    /// before failing (at open: before [`OpenError::Locked`]; later: before
    /// [`recall_memory::MemoryError::Unavailable`]).
    pub busy_timeout: Duration,
    /// How many read-only connections serve searches and reads in
    /// parallel with the single writer (1 to 64).
    pub readers: usize,
    /// Page cache per connection, in KiB.
    pub cache_kib: u32,
    /// Bytes of the file each connection maps into memory (0 disables).
    pub mmap_bytes: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            cache_kib: 32 * 1024,
            mmap_bytes: 1 << 30,
        }
    }
}

impl EmbeddedOptions {
    pub(crate) fn validate(&self) -> Result<(), OpenError> {
        if !(1..=64).contains(&self.readers) {
            return Err(OpenError::InvalidOption {
                field: "readers",
                rule: "must be from 1 to 64",
            });
        }
        Ok(())
    }
}

/// Rejects a non-empty file that does not start with SQLite's header,
/// before SQLite is asked to make sense of it.
fn check_header(path: &Path) -> Result<(), OpenError> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(OpenError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(source) => {
                return Err(OpenError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    if read == 0 || &header[..read] == b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            detail: "the file does not start with the SQLite header".into(),
            source: None,
        })
    }
}

fn apply_common_pragmas(
    conn: &Connection,
    path: &Path,
    options: &EmbeddedOptions,
) -> Result<(), OpenError> {
    let sqlite = |e| OpenError::from_sqlite(path, e);
    conn.busy_timeout(options.busy_timeout).map_err(sqlite)?;
    conn.pragma_update(None, "cache_size", -i64::from(options.cache_kib))
        .map_err(sqlite)?;
    conn.pragma_update(None, "mmap_size", options.mmap_bytes as i64)
        .map_err(sqlite)?;
    // Deleted rows are overwritten with zeros, not left in free pages: an
    // erased caller's number must not survive in the file's bytes.
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(sqlite)?;
    conn.set_prepared_statement_cache_capacity(64);
    // The bundled SQLite has STAT4, which marks the bound parameters of
    // indexed constraints as "re-prepare when the binding changes"; the
    // statement cache clears bindings on every reuse, so without this every
    // cached statement was compiled again at each call (28 % of the
    // server's CPU under greeting load). These queries have fixed shapes
    // and need no plan per bound value.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(sqlite)?;
    Ok(())
}

/// Opens the writer connection: creates the file, switches it to WAL,
/// checks what the file is, migrates the schema and makes sure this
/// connection can take the write lock.
pub(crate) fn open_writer(path: &Path, options: &EmbeddedOptions) -> Result<Connection, OpenError> {
    check_header(path)?;
    let sqlite = |e| OpenError::from_sqlite(path, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    apply_common_pragmas(&conn, path, options)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Locked {
            path: path.to_path_buf(),
            detail: format!("could not switch to WAL mode (journal mode is {mode})"),
            source: None,
        });
    }
    conn.pragma_update(None, "synchronous", options.durability.pragma())
        .map_err(sqlite)?;
    migrate(conn, path)
}

fn migrate(mut conn: Connection, path: &Path) -> Result<Connection, OpenError> {
    let sqlite = |e| OpenError::from_sqlite(path, e);
    {
        // IMMEDIATE takes the write lock now: a file locked by someone
        // else fails here, at open, rather than on the first write.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sqlite)?;
        let app: i64 = tx
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(sqlite)?;
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(sqlite)?;
        if (app != 0 && app != APPLICATION_ID) || (app == 0 && (version != 0 || tables != 0)) {
            return Err(OpenError::Foreign {
                path: path.to_path_buf(),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(OpenError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 0 {
            return Err(OpenError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("negative schema version {version}"),
                source: None,
            });
        }
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(sqlite)?;
            tx.pragma_update(None, "user_version", from as i64 + 1)
                .map_err(sqlite)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
    }
    Ok(conn)
}

/// Opens one read-only connection to a file the writer has prepared.
pub(crate) fn open_reader(path: &Path, options: &EmbeddedOptions) -> Result<Connection, OpenError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| OpenError::from_sqlite(path, e))?;
    apply_common_pragmas(&conn, path, options)?;
    Ok(conn)
}
