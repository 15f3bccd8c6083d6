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
//! <conversation_id>/deletion         what is to be / was deleted, when (JSON)
//! ```
//!
//! Every file is written atomically: a temporary file in the same
//! directory, fsync, rename, fsync of the directory. The layout is this
//! module's own: everything else goes through the [`EventLog`] port.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use recall_model::{
    ConversationId, FieldProblem, PhoneNumber, PostCallWebhookRequest, UnixTimestamp, WebhookType,
};
use tokio::io::AsyncWriteExt;

use crate::error::join_error;
use crate::event_log::{
    Appended, AudioError, AudioReader, DeletionRecord, EnvelopeError, EventLog, EventState,
    QuarantineUsage, QuarantinedBody, RemovedConversation, StagedBody, StagedEvent, StoredAudio,
    StoredEvent, StoredEventError, check_envelope, decode_audio, mentions_number,
    parse_stored_event, quarantine_id, quarantine_received,
};

const INCOMING: &str = "_incoming";
const QUARANTINE: &str = "_quarantine";
const CALLER_FILE: &str = "caller";
const AUDIO_FILE: &str = "audio.mp3";
const DELETION_FILE: &str = "deletion";
const EVENT_EXT: &str = "json";
const DONE_EXT: &str = "done";
const FAILED_EXT: &str = "failed";
const PART_EXT: &str = "part";
/// Bytes gathered before a staged body is written to disk.
const STAGE_BUFFER: usize = 256 * 1024;

/// The [`EventLog`] on the filesystem (`PAYLOAD_STORAGE_PATH`): the
/// embedded default.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use recall_service::event_log::EventLog;
///
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
                    ..QuarantineUsage::new()
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

    fn quarantine_state(&self) -> std::sync::MutexGuard<'_, Quarantine> {
        self.quarantine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the quarantine again from disk (after something removed
    /// bodies, e.g. forgetting a caller).
    fn recount_quarantine(&self) -> io::Result<()> {
        let (files, bytes) = quarantine_size(&self.quarantine_dir())?;
        let mut q = self.quarantine_state();
        q.usage.files = files;
        q.usage.bytes = bytes;
        Ok(())
    }

    /// The quarantined bodies in name order (oldest first), after
    /// `after` (an id), at most `limit`.
    fn quarantined_now(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Vec<QuarantinedBody>> {
        let dir = self.quarantine_dir();
        let mut stems = quarantine_stems(&dir)?;
        stems.retain(|(stem, _)| after.is_none_or(|a| stem.as_str() > a));
        stems.truncate(limit);
        let mut out = Vec::with_capacity(stems.len());
        for (id, bytes) in stems {
            let reason = match fs::read_to_string(dir.join(format!("{id}.reason"))) {
                Ok(reason) => reason,
                Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e),
            };
            let received = quarantine_received(&id);
            out.push(QuarantinedBody {
                id,
                reason,
                bytes,
                received,
            });
        }
        Ok(out)
    }

    /// Removes the oldest quarantined bodies while over a cap.
    fn enforce_quarantine_caps(&self) -> io::Result<()> {
        let over = QuarantineUsage::over;
        if !over(&self.quarantine_state().usage) {
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
    async fn stage_file(&self) -> io::Result<StagedFile> {
        let path = self
            .root
            .join(INCOMING)
            .join(format!("{}.{PART_EXT}", uuid::Uuid::new_v4()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(StagedFile {
            store: self.clone(),
            file: tokio::io::BufWriter::with_capacity(STAGE_BUFFER, file),
            guard: TempGuard::new(path),
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

    fn done_path(&self, conversation: &ConversationId, kind: &str) -> PathBuf {
        self.conversation_dir(conversation)
            .join(format!("{kind}.{DONE_EXT}"))
    }

    fn failed_path(&self, conversation: &ConversationId, kind: &str) -> PathBuf {
        self.conversation_dir(conversation)
            .join(format!("{kind}.{FAILED_EXT}"))
    }

    /// Every stored conversation, in name order.
    fn conversations_now(&self) -> io::Result<Vec<ConversationId>> {
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
    fn events_now(&self, conversation: &ConversationId) -> io::Result<Vec<StoredEvent>> {
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
                kind: WebhookType::parse(kind),
                state,
                received_nanos: received,
            });
        }
        out.sort_by(|a, b| a.kind.as_str().cmp(b.kind.as_str()));
        Ok(out)
    }

    /// `NotFound` unless the event is stored.
    fn require_event(&self, conversation: &ConversationId, kind: &WebhookType) -> io::Result<()> {
        if self.event_path(conversation, kind.as_str()).is_file() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such stored event",
            ))
        }
    }

    fn caller_now(&self, conversation: &ConversationId) -> io::Result<Option<PhoneNumber>> {
        match fs::read_to_string(self.conversation_dir(conversation).join(CALLER_FILE)) {
            Ok(s) => Ok(PhoneNumber::parse(s.trim()).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn audio_path(&self, conversation: &ConversationId) -> PathBuf {
        self.conversation_dir(conversation).join(AUDIO_FILE)
    }

    /// Decodes the audio event into `audio.mp3` (temporary file, fsync,
    /// rename).
    fn decode_audio_now(&self, conversation: &ConversationId) -> Result<u64, AudioError> {
        let event = File::open(self.event_path(conversation, WebhookType::PostCallAudio.as_str()))?;
        let dir = self.conversation_dir(conversation);
        let temp = temp_beside(&dir, AUDIO_FILE);
        let mut out = BufWriter::with_capacity(64 * 1024, File::create(temp.path())?);
        let bytes = decode_audio(io::BufReader::with_capacity(64 * 1024, event), &mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        persist(temp, &dir, AUDIO_FILE)?;
        Ok(bytes)
    }

    fn remove_conversation_now(
        &self,
        conversation: &ConversationId,
    ) -> io::Result<Option<RemovedConversation>> {
        let dir = self.conversation_dir(conversation);
        let events = self.events_now(conversation)?.len() as u64;
        let audio = self.audio_path(conversation).is_file();
        match fs::remove_dir_all(&dir) {
            Ok(()) => {
                sync_dir(&self.root)?;
                Ok(Some(RemovedConversation { events, audio }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces a stored body, keeping its modification time (its
    /// arrival order) and its state files.
    fn redact_event_now(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        redacted: &[u8],
    ) -> io::Result<()> {
        let path = self.event_path(conversation, kind.as_str());
        let received = fs::metadata(&path)?.modified()?;
        let dir = self.conversation_dir(conversation);
        let name = format!("{kind}.{EVENT_EXT}");
        let temp = temp_beside(&dir, &name);
        let mut f = File::create(temp.path())?;
        f.write_all(redacted)?;
        f.set_modified(received)?;
        f.sync_all()?;
        drop(f);
        persist(temp, &dir, &name)
    }

    fn record_deletion_now(
        &self,
        conversation: &ConversationId,
        record: &DeletionRecord,
    ) -> io::Result<()> {
        let dir = self.conversation_dir(conversation);
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no events stored for this conversation",
            ));
        }
        write_atomic(&dir, DELETION_FILE, record.to_json().as_bytes())
    }

    fn deletion_now(&self, conversation: &ConversationId) -> io::Result<Option<DeletionRecord>> {
        match fs::read_to_string(self.conversation_dir(conversation).join(DELETION_FILE)) {
            Ok(text) => DeletionRecord::from_json(&text).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves a rejected body to quarantine with the reason beside it;
    /// returns its id.
    fn quarantine(&self, body: TempGuard, reason: &str) -> io::Result<String> {
        let dir = self.quarantine_dir();
        let id = quarantine_id();
        let target = dir.join(format!("{id}.json"));
        let bytes = fs::metadata(body.path())?.len();
        fs::rename(body.path(), &target)?;
        body.disarm();
        write_atomic(&dir, &format!("{id}.reason"), reason.as_bytes())?;
        {
            let mut q = self.quarantine_state();
            q.usage.files += 1;
            q.usage.bytes += bytes;
        }
        self.enforce_quarantine_caps()?;
        Ok(id)
    }

    /// Removes the quarantined bodies (and their reasons) that mention
    /// `number`; returns how many bodies were removed.
    fn forget_quarantined_now(&self, number: &PhoneNumber) -> io::Result<u64> {
        let dir = self.quarantine_dir();
        let mut removed = 0;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != EVENT_EXT) {
                continue;
            }
            if mentions_number(File::open(&path)?, number)? {
                fs::remove_file(&path)?;
                remove_if_exists(&path.with_extension("reason"))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&dir)?;
            self.recount_quarantine()?;
        }
        Ok(removed)
    }

    /// Removes the quarantined bodies (and their reasons) refused before
    /// `before`; returns how many.
    fn forget_quarantined_before_now(&self, before: UnixTimestamp) -> io::Result<u64> {
        let dir = self.quarantine_dir();
        let mut removed = 0;
        for (stem, _) in quarantine_stems(&dir)? {
            if quarantine_received(&stem).is_some_and(|at| at < before) {
                remove_if_exists(&dir.join(format!("{stem}.{EVENT_EXT}")))?;
                remove_if_exists(&dir.join(format!("{stem}.reason")))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&dir)?;
            self.recount_quarantine()?;
        }
        Ok(removed)
    }

    /// Checks that the root is writable.
    fn probe_now(&self) -> io::Result<()> {
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

    /// Files a received body (the blocking part of
    /// [`StagedBody::append`]): envelope, then a hard link to its name.
    fn append_now(&self, temp: TempGuard) -> io::Result<Appended> {
        let file = File::open(temp.path())?;
        let (conversation, kind) = match check_envelope(file) {
            Ok(envelope) => envelope,
            Err(EnvelopeError::Io(e)) => return Err(e),
            Err(e) => {
                let reason = e.to_string();
                let quarantined = self.quarantine(temp, &reason);
                return Ok(Appended::Refused {
                    reason,
                    quarantined,
                });
            }
        };
        let dir = self.conversation_dir(&conversation);
        match fs::create_dir(&dir) {
            Ok(()) => sync_dir(&self.root)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // Published with a hard link, which fails atomically when the name
        // exists: two deliveries of one event race safely without a lock,
        // and no acknowledgement waits on another's fsync.
        let stored = self.event_path(&conversation, kind.as_str());
        let duplicate = match fs::hard_link(temp.path(), &stored) {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => true,
            Err(e) => return Err(e),
        };
        // The staged name goes either way (a stray one left by a crash here
        // is removed at start-up); the new name is made durable.
        drop(temp);
        if duplicate {
            return Ok(Appended::Duplicate { conversation, kind });
        }
        sync_dir(&dir)?;
        Ok(Appended::Stored { conversation, kind })
    }

    /// Runs `f` on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let this = self.clone();
        crate::blocking::spawn(move || f(&this))
            .await
            .map_err(join_error)?
    }
}

#[async_trait]
impl EventLog for PayloadStore {
    async fn stage(&self) -> io::Result<StagedEvent> {
        Ok(StagedEvent::new(Box::new(self.stage_file().await?)))
    }

    async fn probe(&self) -> io::Result<()> {
        self.run(Self::probe_now).await
    }

    async fn conversations(&self) -> io::Result<Vec<ConversationId>> {
        self.run(Self::conversations_now).await
    }

    async fn events(&self, conversation: &ConversationId) -> io::Result<Vec<StoredEvent>> {
        let conversation = conversation.clone();
        self.run(move |s| s.events_now(&conversation)).await
    }

    async fn read_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> Result<Option<(PostCallWebhookRequest, Vec<FieldProblem>)>, StoredEventError> {
        let path = self.event_path(conversation, kind.as_str());
        crate::blocking::spawn(move || match File::open(path) {
            Ok(file) => parse_stored_event(file).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoredEventError::Io(e)),
        })
        .await
        .map_err(|e| StoredEventError::Io(join_error(e)))?
    }

    async fn open_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> io::Result<Option<AudioReader>> {
        let path = self.event_path(conversation, kind.as_str());
        match tokio::fs::File::open(path).await {
            Ok(file) => Ok(Some(Box::new(file) as AudioReader)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn mark_done(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        record: &str,
    ) -> io::Result<()> {
        let (conversation, kind, record) = (conversation.clone(), kind.clone(), record.to_owned());
        self.run(move |s| {
            s.require_event(&conversation, &kind)?;
            remove_if_exists(&s.failed_path(&conversation, kind.as_str()))?;
            write_atomic(
                &s.conversation_dir(&conversation),
                &format!("{kind}.{DONE_EXT}"),
                record.as_bytes(),
            )
        })
        .await
    }

    async fn mark_failed(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        reason: &str,
    ) -> io::Result<()> {
        let (conversation, kind, reason) = (conversation.clone(), kind.clone(), reason.to_owned());
        self.run(move |s| {
            s.require_event(&conversation, &kind)?;
            remove_if_exists(&s.done_path(&conversation, kind.as_str()))?;
            write_atomic(
                &s.conversation_dir(&conversation),
                &format!("{kind}.{FAILED_EXT}"),
                reason.as_bytes(),
            )
        })
        .await
    }

    async fn failure_reason(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> io::Result<Option<String>> {
        let path = self.failed_path(conversation, kind.as_str());
        self.run(move |_| match fs::read_to_string(path) {
            Ok(reason) => Ok(Some(reason)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn caller(&self, conversation: &ConversationId) -> io::Result<Option<PhoneNumber>> {
        let conversation = conversation.clone();
        self.run(move |s| s.caller_now(&conversation)).await
    }

    async fn record_caller(
        &self,
        conversation: &ConversationId,
        caller: &PhoneNumber,
    ) -> io::Result<()> {
        let dir = self.conversation_dir(conversation);
        let number = caller.as_str().to_owned();
        self.run(move |_| {
            if !dir.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no events stored for this conversation",
                ));
            }
            write_atomic(&dir, CALLER_FILE, number.as_bytes())
        })
        .await
    }

    async fn decode_audio(&self, conversation: &ConversationId) -> Result<u64, AudioError> {
        let (this, conversation) = (self.clone(), conversation.clone());
        crate::blocking::spawn(move || this.decode_audio_now(&conversation))
            .await
            .map_err(|e| AudioError::Io(join_error(e)))?
    }

    async fn has_audio(&self, conversation: &ConversationId) -> io::Result<bool> {
        let path = self.audio_path(conversation);
        self.run(move |_| Ok(path.is_file())).await
    }

    async fn open_audio(&self, conversation: &ConversationId) -> io::Result<Option<StoredAudio>> {
        match tokio::fs::File::open(self.audio_path(conversation)).await {
            Ok(file) => Ok(Some(StoredAudio {
                len: file.metadata().await?.len(),
                reader: Box::new(file) as AudioReader,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn remove_conversation(
        &self,
        conversation: &ConversationId,
    ) -> io::Result<Option<RemovedConversation>> {
        let conversation = conversation.clone();
        self.run(move |s| s.remove_conversation_now(&conversation))
            .await
    }

    async fn redact_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        redacted: &[u8],
    ) -> io::Result<()> {
        let (conversation, kind, redacted) =
            (conversation.clone(), kind.clone(), redacted.to_vec());
        self.run(move |s| s.redact_event_now(&conversation, &kind, &redacted))
            .await
    }

    async fn remove_audio(&self, conversation: &ConversationId) -> io::Result<bool> {
        let (path, dir) = (
            self.audio_path(conversation),
            self.conversation_dir(conversation),
        );
        self.run(move |_| {
            let removed = remove_if_exists(&path)?;
            if removed {
                sync_dir(&dir)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn record_deletion(
        &self,
        conversation: &ConversationId,
        record: &DeletionRecord,
    ) -> io::Result<()> {
        let (conversation, record) = (conversation.clone(), *record);
        self.run(move |s| s.record_deletion_now(&conversation, &record))
            .await
    }

    async fn deletion(&self, conversation: &ConversationId) -> io::Result<Option<DeletionRecord>> {
        let conversation = conversation.clone();
        self.run(move |s| s.deletion_now(&conversation)).await
    }

    async fn quarantined(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Vec<QuarantinedBody>> {
        let after = after.map(str::to_owned);
        self.run(move |s| s.quarantined_now(after.as_deref(), limit))
            .await
    }

    async fn forget_quarantined(&self, number: &PhoneNumber) -> io::Result<u64> {
        let number = number.clone();
        self.run(move |s| s.forget_quarantined_now(&number)).await
    }

    async fn forget_quarantined_before(&self, before: UnixTimestamp) -> io::Result<u64> {
        self.run(move |s| s.forget_quarantined_before_now(before))
            .await
    }

    fn quarantine_usage(&self) -> QuarantineUsage {
        self.quarantine_state().usage
    }
}

/// A body being received into `_incoming/`.
struct StagedFile {
    store: PayloadStore,
    file: tokio::io::BufWriter<tokio::fs::File>,
    guard: TempGuard,
}

#[async_trait]
impl StagedBody for StagedFile {
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk).await
    }

    async fn append(mut self: Box<Self>) -> io::Result<Appended> {
        self.file.flush().await?;
        self.file.get_mut().sync_all().await?;
        let StagedFile { store, guard, .. } = *self;
        store.run(move |s| s.append_now(guard)).await
    }
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

/// A temporary file removed on drop unless disarmed.
#[derive(Debug)]
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl TempGuard {
    fn new(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// The file was moved away: do not remove anything.
    fn disarm(mut self) {
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
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A temporary file beside `dir/name`, hidden from scans (dot prefix).
fn temp_beside(dir: &Path, name: &str) -> TempGuard {
    TempGuard::new(dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4())))
}

/// Moves a finished temporary file to `dir/name` atomically and durably.
fn persist(temp: TempGuard, dir: &Path, name: &str) -> io::Result<()> {
    fs::rename(temp.path(), dir.join(name))?;
    temp.disarm();
    sync_dir(dir)
}

/// Writes `dir/name` atomically: temporary file, fsync, rename, fsync dir.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_beside(dir, name);
    let mut f = File::create(temp.path())?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    persist(temp, dir, name)
}

/// Removes a file; a missing file is not an error. Returns whether it existed.
fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
