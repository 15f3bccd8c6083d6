//! The payload store: raw post-call events kept durably on disk, the
//! source of truth and the retry queue for memory writes.
//!
//! Layout under the root (`PAYLOAD_STORAGE_PATH`):
//!
//! ```text
//! _incoming/<uuid>.part              a body being received (staged)
//! _quarantine/<s>-<ns>-<uuid>.json   a rejected body, kept for inspection
//! _quarantine/<s>-<ns>-<uuid>.reason why it was rejected
//! <conversation_id>/<type>.json      the raw event, exactly as received
//! <conversation_id>/<type>.done      processed (a small JSON record)
//! <conversation_id>/<type>.failed    processing failed for good (the reason)
//! <conversation_id>/caller           the caller's E.164 number, once known
//! <conversation_id>/audio.mp3        the decoded call audio
//! ```
//!
//! Every file is written atomically: a temporary file in the same
//! directory, fsync, rename, fsync of the directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use recall_model::{
    ConversationId, FieldProblem, PhoneNumber, PostCallWebhookRequest, UnixTimestamp, WebhookType,
};
use tokio::io::AsyncWriteExt;

pub(crate) const INCOMING: &str = "_incoming";
pub(crate) const QUARANTINE: &str = "_quarantine";
pub(crate) const CALLER_FILE: &str = "caller";
pub(crate) const AUDIO_FILE: &str = "audio.mp3";
const EVENT_EXT: &str = "json";
const DONE_EXT: &str = "done";
const FAILED_EXT: &str = "failed";
const PART_EXT: &str = "part";
/// Bytes gathered before a staged body is written to disk.
const STAGE_BUFFER: usize = 256 * 1024;

/// Where raw events are kept (`PAYLOAD_STORAGE_PATH`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let payloads = recall_service::PayloadStore::open(dir.path())?;
/// let mut staged = payloads.stage().await?;
/// staged.write(b"{}").await?;
/// assert_eq!(staged.len(), 2);
/// drop(staged); // never acknowledged: the temporary file is removed
/// assert_eq!(std::fs::read_dir(dir.path().join("_incoming"))?.count(), 0);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PayloadStore {
    root: PathBuf,
    quarantine: Arc<Mutex<Quarantine>>,
}

/// The default cap on quarantined bodies, by count.
pub const QUARANTINE_MAX_FILES: u64 = 1_000;
/// The default cap on quarantined bodies, by bytes (256 MiB).
pub const QUARANTINE_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// What the quarantine holds, and its caps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct QuarantineUsage {
    /// Bodies kept.
    pub files: u64,
    /// Their size in bytes.
    pub bytes: u64,
    /// Bodies removed (oldest first) to stay within the caps since start.
    pub evicted: u64,
    /// The cap by count.
    pub max_files: u64,
    /// The cap by bytes.
    pub max_bytes: u64,
}

#[derive(Debug)]
struct Quarantine {
    usage: QuarantineUsage,
}

impl PayloadStore {
    /// Opens (creating if needed) the store at `root`. Bodies left half
    /// received by a crash were never acknowledged and are removed.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join(INCOMING))?;
        fs::create_dir_all(root.join(QUARANTINE))?;
        for entry in fs::read_dir(root.join(INCOMING))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == PART_EXT) {
                fs::remove_file(&path)?;
            }
        }
        sync_dir(&root)?;
        let (files, bytes) = quarantine_size(&root.join(QUARANTINE))?;
        Ok(Self {
            root,
            quarantine: Arc::new(Mutex::new(Quarantine {
                usage: QuarantineUsage {
                    files,
                    bytes,
                    evicted: 0,
                    max_files: QUARANTINE_MAX_FILES,
                    max_bytes: QUARANTINE_MAX_BYTES,
                },
            })),
        })
    }

    /// Caps the quarantine at `max_files` bodies and `max_bytes` bytes:
    /// past either, the oldest bodies are removed (and counted in
    /// [`QuarantineUsage::evicted`]). The newest body is always kept.
    /// Applies the caps to what is already there.
    pub fn with_quarantine_limits(self, max_files: u64, max_bytes: u64) -> io::Result<Self> {
        {
            let mut q = self.quarantine_state();
            q.usage.max_files = max_files.max(1);
            q.usage.max_bytes = max_bytes;
        }
        self.enforce_quarantine_caps()?;
        Ok(self)
    }

    /// What the quarantine holds now.
    pub fn quarantine_usage(&self) -> QuarantineUsage {
        self.quarantine_state().usage
    }

    fn quarantine_state(&self) -> std::sync::MutexGuard<'_, Quarantine> {
        self.quarantine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the quarantine again from disk (after something removed
    /// bodies, e.g. forgetting a caller).
    pub(crate) fn recount_quarantine(&self) -> io::Result<()> {
        let (files, bytes) = quarantine_size(&self.quarantine_dir())?;
        let mut q = self.quarantine_state();
        q.usage.files = files;
        q.usage.bytes = bytes;
        Ok(())
    }

    /// The quarantined bodies in name order (oldest first), after
    /// `after` (a stem), at most `limit`: (stem, reason, size).
    pub(crate) fn quarantined(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Vec<QuarantinedBody>> {
        let dir = self.quarantine_dir();
        let mut stems = quarantine_stems(&dir)?;
        stems.retain(|(stem, _)| after.is_none_or(|a| stem.as_str() > a));
        stems.truncate(limit);
        let mut out = Vec::with_capacity(stems.len());
        for (stem, bytes) in stems {
            let reason = match fs::read_to_string(dir.join(format!("{stem}.reason"))) {
                Ok(reason) => reason,
                Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e),
            };
            let received = stem
                .split('-')
                .next()
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(|t| UnixTimestamp::from_secs(t).ok());
            out.push(QuarantinedBody {
                stem,
                reason,
                bytes,
                received,
            });
        }
        Ok(out)
    }

    /// Removes the oldest quarantined bodies while over a cap.
    fn enforce_quarantine_caps(&self) -> io::Result<()> {
        let over = |u: &QuarantineUsage| u.files > u.max_files || u.bytes > u.max_bytes;
        if !over(&self.quarantine_usage()) {
            return Ok(());
        }
        let dir = self.quarantine_dir();
        let stems = quarantine_stems(&dir)?;
        let mut q = self.quarantine_state();
        q.usage.files = stems.len() as u64;
        q.usage.bytes = stems.iter().map(|(_, b)| b).sum();
        let mut removed = false;
        for (stem, bytes) in &stems[..stems.len().saturating_sub(1)] {
            if !over(&q.usage) {
                break;
            }
            remove_if_exists(&dir.join(format!("{stem}.json")))?;
            remove_if_exists(&dir.join(format!("{stem}.reason")))?;
            q.usage.files -= 1;
            q.usage.bytes -= bytes;
            q.usage.evicted += 1;
            removed = true;
        }
        drop(q);
        if removed {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder rejected bodies are moved to.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join(QUARANTINE)
    }

    /// Starts receiving a body: a temporary file under `_incoming/`.
    /// Hand it to [`Service::ingest`](crate::Service::ingest) once complete;
    /// dropping it instead removes the file.
    pub async fn stage(&self) -> io::Result<StagedEvent> {
        let path = self
            .root
            .join(INCOMING)
            .join(format!("{}.{PART_EXT}", uuid::Uuid::new_v4()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(StagedEvent {
            file: tokio::io::BufWriter::with_capacity(STAGE_BUFFER, file),
            guard: TempGuard::new(path),
            len: 0,
        })
    }

    /// The directory of a conversation's events.
    pub fn conversation_dir(&self, conversation: &ConversationId) -> PathBuf {
        self.root.join(conversation.as_str())
    }

    /// The path of a stored event.
    pub fn event_path(&self, conversation: &ConversationId, kind: &str) -> PathBuf {
        self.conversation_dir(conversation)
            .join(format!("{kind}.{EVENT_EXT}"))
    }

    pub(crate) fn done_path(&self, conversation: &ConversationId, kind: &str) -> PathBuf {
        self.conversation_dir(conversation)
            .join(format!("{kind}.{DONE_EXT}"))
    }

    pub(crate) fn failed_path(&self, conversation: &ConversationId, kind: &str) -> PathBuf {
        self.conversation_dir(conversation)
            .join(format!("{kind}.{FAILED_EXT}"))
    }

    /// Every stored conversation, in name order.
    pub fn conversations(&self) -> io::Result<Vec<ConversationId>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if let Ok(id) = ConversationId::parse(&name) {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The stored events of a conversation with their processing state,
    /// in type order. Empty when the conversation is unknown.
    pub fn events(&self, conversation: &ConversationId) -> io::Result<Vec<StoredEvent>> {
        let dir = self.conversation_dir(conversation);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let Some(kind) = name.strip_suffix(".json") else {
                continue;
            };
            let state = if self.done_path(conversation, kind).exists() {
                EventState::Done
            } else if self.failed_path(conversation, kind).exists() {
                EventState::Failed
            } else {
                EventState::Pending
            };
            let received = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push(StoredEvent {
                conversation: conversation.clone(),
                kind: kind.to_owned(),
                state,
                received_nanos: received,
            });
        }
        out.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(out)
    }

    /// Why an event failed for good (its `.failed` file); empty when it
    /// has not failed.
    pub(crate) fn failure_reason(
        &self,
        conversation: &ConversationId,
        kind: &str,
    ) -> io::Result<String> {
        match fs::read_to_string(self.failed_path(conversation, kind)) {
            Ok(reason) => Ok(reason),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    /// The caller the service attributed a conversation to when it
    /// processed it (`None`: not processed yet, or no caller identity).
    /// Other views of the calls (the operator's call index) use it so that
    /// they attribute calls exactly as memories are.
    ///
    /// # Errors
    /// When the record exists but cannot be read.
    pub fn recorded_caller(
        &self,
        conversation: &ConversationId,
    ) -> io::Result<Option<PhoneNumber>> {
        Ok(self
            .caller_of(conversation)?
            .and_then(|raw| PhoneNumber::parse(&raw).ok()))
    }

    /// The caller recorded for a conversation, if any.
    pub(crate) fn caller_of(&self, conversation: &ConversationId) -> io::Result<Option<String>> {
        match fs::read_to_string(self.conversation_dir(conversation).join(CALLER_FILE)) {
            Ok(s) => Ok(Some(s.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads a stored event, typed and field by field (a field that cannot
    /// be read is skipped and reported). `Ok(None)` when no such event is
    /// stored.
    ///
    /// # Errors
    /// [`StoredEventError::Io`] when the file cannot be read (retry
    /// later); [`StoredEventError::Unusable`] when nothing usable is in
    /// it (not JSON, no conversation or agent id).
    pub fn read_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> Result<Option<(PostCallWebhookRequest, Vec<FieldProblem>)>, StoredEventError> {
        let file = match File::open(self.event_path(conversation, kind.as_str())) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoredEventError::Io(e)),
        };
        let value: serde_json::Value =
            serde_json::from_reader(io::BufReader::new(file)).map_err(|e| {
                if e.is_io() {
                    StoredEventError::Io(e.into())
                } else {
                    StoredEventError::Unusable(format!("not a JSON event: {e}"))
                }
            })?;
        PostCallWebhookRequest::from_value_tolerant(value)
            .map(Some)
            .map_err(|e| StoredEventError::Unusable(format!("nothing usable in the event: {e}")))
    }

    /// Whether the call's decoded audio is stored.
    pub fn has_audio(&self, conversation: &ConversationId) -> bool {
        self.audio_path(conversation).is_file()
    }

    /// Opens the call's decoded audio (MP3) for streaming; `Ok(None)` when
    /// none is stored.
    ///
    /// # Errors
    /// When the file exists but cannot be opened.
    pub async fn open_audio(
        &self,
        conversation: &ConversationId,
    ) -> io::Result<Option<tokio::fs::File>> {
        match tokio::fs::File::open(self.audio_path(conversation)).await {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn audio_path(&self, conversation: &ConversationId) -> PathBuf {
        self.conversation_dir(conversation).join(AUDIO_FILE)
    }

    /// Removes everything stored for a conversation (events, markers,
    /// caller record, audio); `None` when nothing was stored.
    pub(crate) fn remove_conversation(
        &self,
        conversation: &ConversationId,
    ) -> io::Result<Option<RemovedConversation>> {
        let dir = self.conversation_dir(conversation);
        let events = self.events(conversation)?.len() as u64;
        let audio = self.has_audio(conversation);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(Some(RemovedConversation { events, audio })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves a rejected body to quarantine with the reason beside it.
    pub(crate) fn quarantine(&self, body: TempGuard, reason: &str) -> io::Result<PathBuf> {
        let dir = self.quarantine_dir();
        // Seconds, then nanoseconds, so that name order is arrival order.
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let stem = format!(
            "{}-{:09}-{}",
            since_epoch.as_secs(),
            since_epoch.subsec_nanos(),
            uuid::Uuid::new_v4()
        );
        let target = dir.join(format!("{stem}.json"));
        let bytes = fs::metadata(body.path())?.len();
        fs::rename(body.path(), &target)?;
        body.disarm();
        write_atomic(&dir, &format!("{stem}.reason"), reason.as_bytes())?;
        {
            let mut q = self.quarantine_state();
            q.usage.files += 1;
            q.usage.bytes += bytes;
        }
        self.enforce_quarantine_caps()?;
        Ok(target)
    }

    /// Checks that the root is writable.
    pub(crate) fn probe(&self) -> io::Result<()> {
        let path = self
            .root
            .join(INCOMING)
            .join(format!(".ready-{}.probe", uuid::Uuid::new_v4()));
        let guard = TempGuard::new(path);
        let mut f = File::create(guard.path())?;
        f.write_all(b"ok")?;
        f.sync_all()?;
        drop(f);
        drop(guard);
        Ok(())
    }
}

/// What [`PayloadStore::remove_conversation`] removed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RemovedConversation {
    /// Stored events (raw payloads).
    pub(crate) events: u64,
    /// Whether decoded audio was stored.
    pub(crate) audio: bool,
}

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoredEventError {
    /// The payload store could not be read; retrying may help.
    #[error("payload store: {0}")]
    Io(#[from] io::Error),
    /// Nothing usable is in the stored body; retrying cannot help.
    #[error("{0}")]
    Unusable(String),
}

/// A body kept in quarantine.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct QuarantinedBody {
    /// Its file name without extension (`<unix time>-<uuid>`).
    pub(crate) stem: String,
    /// Why it was refused.
    pub(crate) reason: String,
    /// Its size.
    pub(crate) bytes: u64,
    /// When it was refused.
    pub(crate) received: Option<UnixTimestamp>,
}

/// The quarantined bodies' stems and sizes, oldest first.
fn quarantine_stems(dir: &Path) -> io::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if stem.starts_with('.') {
            continue;
        }
        let bytes = match entry.metadata() {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.push((stem.to_owned(), bytes));
    }
    // `<unix seconds>-<nanoseconds>-<uuid>`: the seconds have the same
    // width for centuries, so name order is age order.
    out.sort();
    Ok(out)
}

fn quarantine_size(dir: &Path) -> io::Result<(u64, u64)> {
    let stems = quarantine_stems(dir)?;
    Ok((stems.len() as u64, stems.iter().map(|(_, b)| b).sum()))
}

/// Processing state of a stored event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventState {
    /// Not processed yet (or failed with a retryable error).
    Pending,
    /// Processed.
    Done,
    /// Processing failed for good; the reason is in `<type>.failed`.
    Failed,
}

/// A stored event as seen on disk.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredEvent {
    /// Its conversation.
    pub conversation: ConversationId,
    /// Its `type`, as received.
    pub kind: String,
    /// Its processing state.
    pub state: EventState,
    pub(crate) received_nanos: u128,
}

/// A body being received into the payload store (a temporary file under
/// `_incoming/`). Dropping it removes the file: a body is acknowledged
/// only once [`Service::ingest`](crate::Service::ingest) has stored it.
#[derive(Debug)]
pub struct StagedEvent {
    file: tokio::io::BufWriter<tokio::fs::File>,
    guard: TempGuard,
    len: u64,
}

impl StagedEvent {
    /// Appends a chunk of the body.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk).await?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Flushes and fsyncs the body; the file stays guarded.
    pub(crate) async fn finish(mut self) -> io::Result<TempGuard> {
        self.file.flush().await?;
        self.file.get_mut().sync_all().await?;
        Ok(self.guard)
    }
}

/// A temporary file removed on drop unless disarmed.
#[derive(Debug)]
pub(crate) struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl TempGuard {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file was moved away: do not remove anything.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// fsyncs a directory so that a rename or a new entry in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A temporary file beside `dir/name`, hidden from scans (dot prefix).
pub(crate) fn temp_beside(dir: &Path, name: &str) -> TempGuard {
    TempGuard::new(dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4())))
}

/// Moves a finished temporary file to `dir/name` atomically and durably.
pub(crate) fn persist(temp: TempGuard, dir: &Path, name: &str) -> io::Result<()> {
    fs::rename(temp.path(), dir.join(name))?;
    temp.disarm();
    sync_dir(dir)
}

/// Writes `dir/name` atomically: temporary file, fsync, rename, fsync dir.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_beside(dir, name);
    let mut f = File::create(temp.path())?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    persist(temp, dir, name)
}

/// Removes a file; a missing file is not an error. Returns whether it existed.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
