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
        /// What is wrong (SQLite's report, when it found it).
        detail: String,
        /// SQLite's error, when it found it.
        #[source]
        source: Option<rusqlite::Error>,
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
        /// SQLite's error, when it reported one.
        #[source]
        source: Option<rusqlite::Error>,
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
                source: Some(source),
            },
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Self::Corrupt {
                path,
                detail: source.to_string(),
                source: Some(source),
            },
            Some(ErrorCode::CannotOpen) => Self::Io {
                path,
                source: std::io::Error::other(source),
            },
            _ => Self::Sqlite { path, source },
        }
    }
}

/// Maps a SQLite error at run time onto what a service can act on: a busy
/// or locked file, a full disk or an I/O error may pass (retry later);
/// anything else is internal.
pub(crate) fn memory_error(error: rusqlite::Error) -> MemoryError {
    match error.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory,
        ) => MemoryError::unavailable("embedded store").with_source(error),
        _ => MemoryError::internal("embedded store").with_source(error),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::Path;

    use recall_memory::MemoryError;
    use rusqlite::ffi;

    use super::{OpenError, memory_error};

    fn sqlite(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn a_run_time_io_failure_is_unavailable_and_keeps_sqlites_error() {
        let err = memory_error(sqlite(ffi::SQLITE_IOERR));
        assert!(matches!(err, MemoryError::Unavailable { .. }), "{err:?}");
        assert!(err.is_retryable());
        let source = err.source().expect("SQLite's error is the source");
        assert!(source.is::<rusqlite::Error>(), "{source:?}");
        assert!(
            err.to_string()
                .starts_with("memory store unavailable: embedded store: "),
            "{err}"
        );
    }

    #[test]
    fn any_other_run_time_failure_is_internal_and_keeps_sqlites_error() {
        let err = memory_error(sqlite(ffi::SQLITE_CONSTRAINT));
        assert!(matches!(err, MemoryError::Internal { .. }), "{err:?}");
        assert!(err.source().is_some_and(|s| s.is::<rusqlite::Error>()));
    }

    #[test]
    fn open_errors_keep_sqlites_error() {
        let path = Path::new("memory.db");
        let locked = OpenError::from_sqlite(path, sqlite(ffi::SQLITE_BUSY));
        assert!(matches!(locked, OpenError::Locked { .. }), "{locked:?}");
        assert!(locked.source().is_some_and(|s| s.is::<rusqlite::Error>()));

        let cannot_open = OpenError::from_sqlite(path, sqlite(ffi::SQLITE_CANTOPEN));
        let OpenError::Io { source, .. } = &cannot_open else {
            panic!("expected Io, got {cannot_open:?}");
        };
        assert!(
            source
                .get_ref()
                .is_some_and(|inner| inner.is::<rusqlite::Error>()),
            "{source:?}"
        );
    }
}
