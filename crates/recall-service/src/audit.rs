//! The audit log of operator access: one entry per operator request that
//! read or erased a caller's data: when, which token (by fingerprint,
//! never the token), which route, whose data, and the answer's status.
//!
//! The port is [`AuditLog`]; [`FileAuditLog`] appends JSON lines to a file
//! (the embedded deployment), [`InMemoryAuditLog`] is for tests, and the
//! PostgreSQL adapter lives in `recall-postgres`. The log is append-only:
//! the port has no way to change or remove an entry.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use recall_model::PhoneNumber;
use serde::{Deserialize, Serialize};

/// One operator access to a caller's data.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the answer was decided, RFC 3339 UTC.
    pub time: String,
    /// The first 16 hex digits of the SHA-256 of the bearer token used:
    /// tells tokens apart without revealing one.
    pub token: String,
    /// HTTP method and route pattern, e.g. `GET /api/users/{phone}`.
    pub route: String,
    /// The caller whose data was asked for, whole; absent when the request
    /// named no caller that could be resolved (a call not indexed, a list
    /// of every caller's calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<PhoneNumber>,
    /// The conversation asked for, for the call routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// Where audit entries are appended.
#[async_trait]
pub trait AuditLog: Send + Sync + std::fmt::Debug + 'static {
    /// Appends `entry` durably (returns once it is stored).
    ///
    /// # Errors
    /// When the entry could not be stored: the caller must then not serve
    /// the data it was about to serve.
    async fn append(&self, entry: &AuditEntry) -> std::io::Result<()>;

    /// Every entry about `caller`, oldest first.
    ///
    /// # Errors
    /// When the log cannot be read.
    async fn for_caller(&self, caller: &PhoneNumber) -> std::io::Result<Vec<AuditEntry>>;
}

/// The default file name of the audit log in the data directory.
pub const AUDIT_FILE_NAME: &str = "audit.jsonl";

/// An audit log in a file of JSON lines, opened for appending only.
#[derive(Debug, Clone)]
pub struct FileAuditLog {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl FileAuditLog {
    /// Opens (creating it, and its folder, when missing) the log at `path`
    /// for appending. On Unix a new file is readable by its owner only.
    ///
    /// # Errors
    /// When the file cannot be created or opened.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl AuditLog for FileAuditLog {
    async fn append(&self, entry: &AuditEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let file = Arc::clone(&self.file);
        crate::blocking::spawn(move || {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            // One write of the whole line: with O_APPEND, lines of
            // concurrent writers never interleave.
            file.write_all(&line)?;
            file.sync_data()
        })
        .await
        .map_err(std::io::Error::other)?
    }

    async fn for_caller(&self, caller: &PhoneNumber) -> std::io::Result<Vec<AuditEntry>> {
        let path = self.path.clone();
        let caller = caller.clone();
        crate::blocking::spawn(move || {
            let file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut entries = Vec::new();
            for line in std::io::BufReader::new(file).lines() {
                let line = line?;
                // A line cut short by a crash is skipped, not fatal.
                if let Ok(entry) = serde_json::from_str::<AuditEntry>(&line)
                    && entry.caller.as_ref() == Some(&caller)
                {
                    entries.push(entry);
                }
            }
            Ok(entries)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// An audit log in memory, for tests; [`InMemoryAuditLog::failing`] makes
/// every append fail.
#[derive(Debug, Default, Clone)]
pub struct InMemoryAuditLog {
    entries: Arc<Mutex<Vec<AuditEntry>>>,
    failing: bool,
}

impl InMemoryAuditLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log whose every append fails (to test that data is not served
    /// unaudited).
    pub fn failing() -> Self {
        Self {
            failing: true,
            ..Self::default()
        }
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<AuditEntry> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl AuditLog for InMemoryAuditLog {
    async fn append(&self, entry: &AuditEntry) -> std::io::Result<()> {
        if self.failing {
            return Err(std::io::Error::other("the audit log is failing (test)"));
        }
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry.clone());
        Ok(())
    }

    async fn for_caller(&self, caller: &PhoneNumber) -> std::io::Result<Vec<AuditEntry>> {
        Ok(self
            .entries()
            .into_iter()
            .filter(|e| e.caller.as_ref() == Some(caller))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(caller: Option<&str>, status: u16) -> AuditEntry {
        AuditEntry {
            time: "2026-01-01T00:00:00Z".into(),
            token: "0123456789abcdef".into(),
            route: "GET /api/users/{phone}".into(),
            caller: caller.map(|c| PhoneNumber::parse(c).unwrap()),
            conversation_id: None,
            status,
        }
    }

    #[tokio::test]
    async fn the_file_log_appends_lines_and_finds_a_callers_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(AUDIT_FILE_NAME);
        let log = FileAuditLog::open(&path).unwrap();
        log.append(&entry(Some("+16129782029"), 200)).await.unwrap();
        log.append(&entry(Some("+447700900123"), 404))
            .await
            .unwrap();
        log.append(&entry(None, 200)).await.unwrap();
        // Reopening appends after what is there.
        let again = FileAuditLog::open(&path).unwrap();
        again
            .append(&entry(Some("+16129782029"), 403))
            .await
            .unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        let theirs = again
            .for_caller(&PhoneNumber::parse("+16129782029").unwrap())
            .await
            .unwrap();
        assert_eq!(
            theirs.iter().map(|e| e.status).collect::<Vec<_>>(),
            [200, 403]
        );
    }

    #[tokio::test]
    async fn a_missing_file_has_no_entries_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE_NAME);
        let log = FileAuditLog::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let caller = PhoneNumber::parse("+16129782029").unwrap();
        assert!(log.for_caller(&caller).await.unwrap().is_empty());

        std::fs::write(&path, "{\"time\":\"2026\n").unwrap();
        let log = FileAuditLog::open(&path).unwrap();
        log.append(&entry(Some("+16129782029"), 200)).await.unwrap();
        assert_eq!(log.for_caller(&caller).await.unwrap().len(), 1);
    }
}
