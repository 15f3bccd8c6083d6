//! Errors at open time and the mapping of SQLite errors at run time.

use std::path::{Path, PathBuf};

use recall_memory::MemoryError;
use rusqlite::ErrorCode;

/// Why a database could not be opened. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file or its directory could not be created or opened.
    #[error("cannot open memory database {path}: {source}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a SQLite database, or its pages are damaged.
    #[error("memory database {path} is corrupt or not a database: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// Another process or connection holds a lock that keeps this store
    /// from reading or writing the file.
    #[error(
        "memory database {path} is locked by another process or connection \
         (is another Recall running on the same file, or a tool holding it open \
         with locking_mode=EXCLUSIVE?): {detail}"
    )]
    Locked {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The file was written by a newer version of Recall, with a schema
    /// this version does not know; it was not changed.
    #[error(
        "memory database {path} has schema version {found}, newer than the {supported} \
         this version of Recall supports; upgrade Recall or use another file"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The file is a SQLite database that belongs to another application.
    #[error("{path} is a SQLite database of another application, not a Recall memory database")]
    Foreign {
        /// The database file.
        path: PathBuf,
    },
    /// The options are not usable.
    #[error("invalid embedded store option {field}: {rule}")]
    InvalidOption {
        /// The option's name.
        field: &'static str,
        /// The rule it broke.
        rule: &'static str,
    },
    /// Any other SQLite failure while opening.
    #[error("cannot open memory database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
}

impl OpenError {
    /// Classifies a SQLite error raised while opening `path`.
    pub(crate) fn from_sqlite(path: &Path, source: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Locked {
                path,
                detail: source.to_string(),
            },
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Self::Corrupt {
                path,
                detail: source.to_string(),
            },
            Some(ErrorCode::CannotOpen) => Self::Io {
                path,
                source: std::io::Error::other(source.to_string()),
            },
            _ => Self::Sqlite { path, source },
        }
    }
}

/// Maps a SQLite error at run time onto what a service can act on: a busy
/// or locked file, a full disk or an I/O error may pass (retry later);
/// anything else is internal.
#[expect(
    clippy::needless_pass_by_value,
    reason = "shaped for `map_err`, which hands over the error by value"
)]
pub(crate) fn memory_error(error: rusqlite::Error) -> MemoryError {
    match error.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory,
        ) => MemoryError::Unavailable(format!("embedded store: {error}")),
        _ => MemoryError::Internal(format!("embedded store: {error}")),
    }
}
