//! `recall import`: backfills memories from the ElevenLabs Conversations
//! API.
//!
//! Each finished conversation (`status: done`) is fetched whole and turned
//! into the body of a `post_call_transcription` webhook,
//! `{"type":"post_call_transcription","event_timestamp":…,"data":<details>}`,
//! then goes through [`Service::ingest`] exactly like a webhook delivery:
//! same event log, same duplicate detection (an imported conversation and
//! a later webhook of the same `conversation_id` are one event), same
//! processing into memories. With `--audio` the recording is stored as a
//! `post_call_audio` event would be.
//!
//! Progress is kept in a checkpoint file (the listing cursor reached, the
//! oldest call imported and the time window) written after each page, so
//! an interrupted import resumes where it stopped, by cursor, or by time
//! when the cursor has expired; idempotency comes from duplicate detection.

mod progress;
mod when;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use base64::Engine as _;
use futures_util::TryStreamExt as _;
use recall_model::{ConversationId, PostCallData, WebhookType};
use recall_service::{IngestError, ProcessReport, Service};
use serde::{Deserialize, Serialize};

pub use crate::elevenlabs::{
    ApiError, ConversationSummary, ConversationsPage, ElevenLabsClient, ListQuery, RetryPolicy,
};
pub use progress::Progress;
pub use when::parse_when;

/// The checkpoint file's name, in the data directory.
pub const CHECKPOINT_FILE: &str = "import-checkpoint.json";

/// The most conversations the API returns per page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Only these agents' conversations (all when empty).
    pub agents: Vec<String>,
    /// `--since` as given (a date or a duration), kept to recognise the
    /// same import in the checkpoint.
    pub since: Option<String>,
    /// `--until` as given.
    pub until: Option<String>,
    /// Count only: fetch and classify, write nothing.
    pub dry_run: bool,
    /// Also fetch and store each conversation's recording.
    pub audio: bool,
    /// Conversations fetched at once.
    pub concurrency: usize,
    /// Conversations per listed page (1 to [`MAX_PAGE_SIZE`]).
    pub page_size: u32,
    /// Process the stored events into memories at the end (otherwise the
    /// server does it at its next start).
    pub process: bool,
    /// The checkpoint file (`None`: no checkpoint).
    pub checkpoint: Option<PathBuf>,
    /// Ignore an existing checkpoint and start from the beginning.
    pub restart: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            agents: Vec::new(),
            since: None,
            until: None,
            dry_run: false,
            audio: false,
            concurrency: 4,
            page_size: MAX_PAGE_SIZE,
            process: true,
            checkpoint: None,
            restart: false,
        }
    }
}

/// The counts of an import (live while it runs, final at the end).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Conversations listed.
    pub listed: u64,
    /// Conversations stored as new events (in a dry run: that would be).
    pub imported: u64,
    /// Conversations already stored (by a webhook or an earlier import).
    pub skipped_duplicate: u64,
    /// Conversations without a usable caller number (web calls, withheld
    /// numbers): never keyed, not stored.
    pub skipped_withheld_caller: u64,
    /// Conversations not finished (`status` other than `done`).
    pub skipped_not_done: u64,
    /// Conversations that could not be imported (gone between listing and
    /// details, unreadable, retries exhausted).
    pub failed: u64,
    /// Recordings stored (`--audio`).
    pub audio: u64,
    /// Whether this run resumed from a checkpoint.
    pub resumed: bool,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The processing pass at the end, when one ran.
    pub processed: Option<ProcessReport>,
}

impl Summary {
    /// The counts as one line.
    pub fn line(&self) -> String {
        let imported = if self.dry_run {
            "would import"
        } else {
            "imported"
        };
        let mut line = format!(
            "listed {}, {imported} {}, skipped {} duplicate, {} withheld caller, {} not done, failed {}",
            self.listed,
            self.imported,
            self.skipped_duplicate,
            self.skipped_withheld_caller,
            self.skipped_not_done,
            self.failed
        );
        if self.audio > 0 {
            line.push_str(&format!(", {} recordings", self.audio));
        }
        line
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub struct Counts {
    listed: AtomicU64,
    imported: AtomicU64,
    duplicate: AtomicU64,
    withheld: AtomicU64,
    not_done: AtomicU64,
    failed: AtomicU64,
    audio: AtomicU64,
}

impl Counts {
    /// The counts now (`resumed`, `dry_run` and `processed` unset).
    pub fn snapshot(&self) -> Summary {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Summary {
            listed: get(&self.listed),
            imported: get(&self.imported),
            skipped_duplicate: get(&self.duplicate),
            skipped_withheld_caller: get(&self.withheld),
            skipped_not_done: get(&self.not_done),
            failed: get(&self.failed),
            audio: get(&self.audio),
            ..Summary::default()
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Where an import stopped: the listing reached, and the time window it
/// lists (fixed at the first run, so that `--since 90d` resumes the same
/// window).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// The base URL imported from.
    base_url: String,
    /// `--agent`s as given.
    agents: Vec<String>,
    /// `--since` as given.
    since: Option<String>,
    /// `--until` as given.
    until: Option<String>,
    /// The window's start (unix seconds), resolved.
    after_unix: Option<i64>,
    /// The window's end (unix seconds), resolved.
    before_unix: i64,
    /// Which `--agent` is being listed (0 when none given).
    agent_index: usize,
    /// The cursor of the first page not fully imported (`None`: the first
    /// page).
    cursor: Option<String>,
    /// Pages fully imported.
    pages: u64,
    /// The earliest call start among the current agent's pages fully
    /// imported: the listing is newest first, so when a saved cursor is
    /// refused (expired), listing again before this time resumes there.
    #[serde(default)]
    reached_unix: Option<i64>,
    /// The window's end used by the current agent's listing, when it was
    /// narrowed to `reached_unix` after a refused cursor.
    #[serde(default)]
    list_before_unix: Option<i64>,
}

impl Checkpoint {
    fn same_import(&self, other: &Self) -> bool {
        self.base_url == other.base_url
            && self.agents == other.agents
            && self.since == other.since
            && self.until == other.until
    }

    fn read(path: &Path) -> anyhow::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(checkpoint) => Ok(Some(checkpoint)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable import checkpoint ignored");
                    Ok(None)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes it durably (a temporary file renamed over the old one).
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(self)?)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().with_context(|| format!("cannot write the import checkpoint {}", path.display()))
    }
}

/// An import of one API into one service.
#[derive(Debug)]
pub struct Importer<'a> {
    service: &'a Service,
    client: &'a ElevenLabsClient,
    options: &'a ImportOptions,
    progress: &'a Progress,
    counts: &'a Counts,
}

/// What the event log holds of a conversation already.
#[derive(Clone, Copy, Debug, Default)]
struct Stored {
    transcription: bool,
    audio: bool,
}

impl<'a> Importer<'a> {
    /// An import into `service` from `client`. `counts` is read live
    /// (e.g. to print a summary when interrupted).
    pub fn new(
        service: &'a Service,
        client: &'a ElevenLabsClient,
        options: &'a ImportOptions,
        progress: &'a Progress,
        counts: &'a Counts,
    ) -> Self {
        Self {
            service,
            client,
            options,
            progress,
            counts,
        }
    }

    /// Runs the import to the end: lists, fetches, stores, then (unless
    /// told not to, or a dry run) processes the stored events into
    /// memories. Removes the checkpoint when done.
    ///
    /// # Errors
    /// A refused key (401/403), a listing that keeps failing, an event log
    /// that cannot be written: the import stops; the checkpoint keeps what
    /// was done.
    pub async fn run(&self) -> anyhow::Result<Summary> {
        let options = self.options;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let fresh = Checkpoint {
            base_url: self.client.base_url().to_owned(),
            agents: options.agents.clone(),
            since: options.since.clone(),
            until: options.until.clone(),
            after_unix: options
                .since
                .as_deref()
                .map(|t| parse_when(t, now, false))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?,
            before_unix: options
                .until
                .as_deref()
                .map(|t| parse_when(t, now, true))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--until: {e}"))?
                .unwrap_or(now + 1),
            agent_index: 0,
            cursor: None,
            pages: 0,
            reached_unix: None,
            list_before_unix: None,
        };
        if let Some(after) = fresh.after_unix
            && after >= fresh.before_unix
        {
            anyhow::bail!(
                "--since ({}) is not before --until ({}): the window is empty",
                options.since.as_deref().unwrap_or(""),
                options.until.as_deref().unwrap_or("now")
            );
        }
        let checkpoint_path = options.checkpoint.as_deref().filter(|_| !options.dry_run);
        let mut state = fresh.clone();
        let mut resumed = false;
        if let Some(path) = checkpoint_path
            && !options.restart
            && let Some(saved) = Checkpoint::read(path)?
        {
            if saved.same_import(&fresh) {
                self.progress.note(&format!(
                    "resuming from {} ({} pages already imported)",
                    path.display(),
                    saved.pages
                ));
                state = saved;
                resumed = true;
            } else {
                self.progress.note(&format!(
                    "{} is of another import (other --agent/--since/--until or base URL): starting from the beginning",
                    path.display()
                ));
            }
        }
        let agents: Vec<Option<String>> = if options.agents.is_empty() {
            vec![None]
        } else {
            options.agents.iter().cloned().map(Some).collect()
        };
        while state.agent_index < agents.len() {
            let mut query = ListQuery {
                agent_id: agents[state.agent_index].clone(),
                after_unix: state.after_unix,
                before_unix: Some(state.list_before_unix.unwrap_or(state.before_unix)),
                page_size: options.page_size.clamp(1, MAX_PAGE_SIZE),
                cursor: state.cursor.clone(),
            };
            let mut page = match self.client.list(&query).await {
                Err(ApiError::Status { status, .. }) if resumed && query.cursor.is_some() => {
                    // A saved cursor may expire: list again, newest first,
                    // from the oldest call already imported (duplicates are
                    // skipped without being fetched).
                    let before = state
                        .reached_unix
                        .map_or(state.before_unix, |t| t.saturating_add(1))
                        .min(state.before_unix);
                    self.progress.note(&format!(
                        "the saved listing cursor was refused ({status}): resuming from the calls started before {before}"
                    ));
                    query.cursor = None;
                    query.before_unix = Some(before);
                    state.list_before_unix = Some(before);
                    self.client.list(&query).await?
                }
                listed => listed?,
            };
            loop {
                let next = match &page.next_cursor {
                    Some(cursor) if page.has_more && Some(cursor) != query.cursor.as_ref() => {
                        Some(ListQuery {
                            cursor: Some(cursor.clone()),
                            ..query.clone()
                        })
                    }
                    _ => None,
                };
                // The next page is listed while this one is imported.
                let (done, next_page) = tokio::join!(self.page(&page.conversations), async {
                    match &next {
                        Some(q) => Some(self.client.list(q).await),
                        None => None,
                    }
                });
                done?;
                state.pages += 1;
                state.cursor = next.as_ref().and_then(|q| q.cursor.clone());
                let oldest = page
                    .conversations
                    .iter()
                    .filter_map(|c| c.start_time_unix_secs)
                    .min();
                state.reached_unix = match (state.reached_unix, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if state.cursor.is_none() {
                    state.agent_index += 1;
                    state.reached_unix = None;
                    state.list_before_unix = None;
                }
                if let Some(path) = checkpoint_path {
                    state.write(path)?;
                }
                self.progress.update(&self.counts.snapshot());
                match (next, next_page) {
                    (Some(q), Some(listed)) => {
                        page = listed?;
                        query = q;
                    }
                    _ => break,
                }
            }
        }
        let mut summary = self.counts.snapshot();
        summary.resumed = resumed;
        summary.dry_run = options.dry_run;
        if options.process && !options.dry_run {
            self.progress.note(&format!(
                "{}; processing the stored events into memories",
                summary.line()
            ));
            let processing = self.service.process_pending();
            tokio::pin!(processing);
            let report = loop {
                tokio::select! {
                    report = &mut processing => break report,
                    () = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
                        self.progress.status(|| format!(
                            "{}; processing into memories: {} events left",
                            summary.line(),
                            self.service.pending_count()
                        ));
                    }
                }
            };
            summary.processed = Some(report);
        }
        if let Some(path) = checkpoint_path {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        Ok(summary)
    }

    /// Imports one page's conversations, `concurrency` at a time.
    async fn page(&self, conversations: &[ConversationSummary]) -> anyhow::Result<()> {
        futures_util::stream::iter(conversations.iter().map(Ok))
            .try_for_each_concurrent(self.options.concurrency.max(1), |summary| async move {
                let outcome = self.conversation(summary).await;
                self.progress.update(&self.counts.snapshot());
                outcome
            })
            .await
    }

    /// Imports one conversation. `Err` only for what must stop the import.
    async fn conversation(&self, summary: &ConversationSummary) -> anyhow::Result<()> {
        let counts = self.counts;
        bump(&counts.listed);
        let raw_id = summary.conversation_id.as_str();
        if summary.status.as_deref() != Some("done") {
            bump(&counts.not_done);
            return Ok(());
        }
        let id = match ConversationId::parse(raw_id) {
            Ok(id) => id,
            Err(e) => {
                return self.failed(raw_id, &format!("unusable conversation_id: {e}"));
            }
        };
        let stored = self.stored(&id).await?;
        if stored.transcription && (!self.options.audio || stored.audio) {
            bump(&counts.duplicate);
            return Ok(());
        }
        let body = match self.client.conversation(raw_id).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return self.failed(raw_id, "gone (404) between the listing and its details");
            }
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => return self.failed(raw_id, &e.to_string()),
        };
        let data: PostCallData = match serde_json::from_slice(&body) {
            Ok(data) => data,
            Err(e) => return self.failed(raw_id, &format!("unreadable details: {e}")),
        };
        if data.conversation_id != raw_id {
            let problem = format!(
                "the details are of another conversation_id ({:?})",
                data.conversation_id
            );
            return self.failed(raw_id, &problem);
        }
        if data.status.as_deref().is_some_and(|s| s != "done") {
            bump(&counts.not_done);
            return Ok(());
        }
        if data.caller().is_err() {
            // Recall's one caller rule: no number, no memory — and no key.
            bump(&counts.withheld);
            return Ok(());
        }
        if self.options.dry_run {
            bump(if stored.transcription {
                &counts.duplicate
            } else {
                &counts.imported
            });
            if self.options.audio && !stored.audio && data.has_audio != Some(false) {
                bump(&counts.audio);
            }
            return Ok(());
        }
        let timestamp = event_timestamp(&data, summary);
        if stored.transcription {
            bump(&counts.duplicate);
        } else {
            let mut staged = self.service.stage().await?;
            let head = format!(
                r#"{{"type":"{}","event_timestamp":{timestamp},"data":"#,
                WebhookType::PostCallTranscription
            );
            staged.write(head.as_bytes()).await?;
            staged.write(&body).await?;
            staged.write(b"}").await?;
            drop(body);
            match self.service.ingest(staged).await {
                Ok(ack) if ack.duplicate => bump(&counts.duplicate),
                Ok(_) => bump(&counts.imported),
                Err(IngestError::Invalid(reason)) => {
                    return self.failed(raw_id, &format!("refused by the event log: {reason}"));
                }
                Err(e) => {
                    return Err(e).context("cannot write to the event log");
                }
            }
        }
        if self.options.audio && !stored.audio && data.has_audio != Some(false) {
            self.recording(raw_id, &data, timestamp).await?;
        }
        Ok(())
    }

    /// Stores a conversation's recording as a `post_call_audio` event
    /// (base64 in `full_audio`), streamed: never whole in memory.
    async fn recording(&self, raw_id: &str, data: &PostCallData, ts: i64) -> anyhow::Result<()> {
        let mut response = match self.client.audio(raw_id).await {
            Ok(Some(response)) => response,
            Ok(None) => {
                self.progress
                    .note(&format!("{raw_id}: no recording (404); transcript kept"));
                return Ok(());
            }
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                self.progress
                    .note(&format!("{raw_id}: recording not imported: {e}"));
                return Ok(());
            }
        };
        let mut staged = self.service.stage().await?;
        let head = serde_json::json!({
            "agent_id": data.agent_id,
            "conversation_id": data.conversation_id,
        })
        .to_string();
        // `{"agent_id":…,"conversation_id":…` then `,"full_audio":"…"}`.
        let head = format!(
            r#"{{"type":"{}","event_timestamp":{ts},"data":{},"full_audio":""#,
            WebhookType::PostCallAudio,
            head.trim_end_matches('}')
        );
        staged.write(head.as_bytes()).await?;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut carry: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    carry.extend_from_slice(&chunk);
                    let whole = carry.len() / 3 * 3;
                    staged
                        .write(engine.encode(&carry[..whole]).as_bytes())
                        .await?;
                    carry.drain(..whole);
                }
                Ok(None) => break,
                Err(e) => {
                    // The staged body is dropped: nothing is left behind.
                    self.progress
                        .note(&format!("{raw_id}: recording not imported: {e}"));
                    return Ok(());
                }
            }
        }
        staged.write(engine.encode(&carry).as_bytes()).await?;
        staged.write(br#""}}"#).await?;
        match self.service.ingest(staged).await {
            Ok(ack) if !ack.duplicate => bump(&self.counts.audio),
            Ok(_) => {}
            Err(IngestError::Invalid(reason)) => self
                .progress
                .note(&format!("{raw_id}: recording refused: {reason}")),
            Err(e) => return Err(e).context("cannot write to the event log"),
        }
        Ok(())
    }

    /// Which events of the conversation are stored already.
    async fn stored(&self, id: &ConversationId) -> anyhow::Result<Stored> {
        let events = self
            .service
            .event_log()
            .events(id)
            .await
            .context("cannot read the event log")?;
        let mut stored = Stored::default();
        for event in events {
            match event.kind {
                WebhookType::PostCallTranscription => stored.transcription = true,
                WebhookType::PostCallAudio => stored.audio = true,
                _ => {}
            }
        }
        Ok(stored)
    }

    /// Counts a failed conversation and says why.
    fn failed(&self, id: &str, why: &str) -> anyhow::Result<()> {
        bump(&self.counts.failed);
        self.progress.note(&format!("{id}: failed: {why}"));
        Ok(())
    }
}

/// The event's time: when the call ended (as a webhook would be sent),
/// else when it started, else now.
fn event_timestamp(data: &PostCallData, summary: &ConversationSummary) -> i64 {
    let metadata = data.metadata.as_ref();
    let start = metadata
        .and_then(|m| m.start_time_unix_secs)
        .or(summary.start_time_unix_secs);
    let duration = metadata
        .and_then(|m| m.call_duration_secs)
        .or(summary.call_duration_secs)
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map_or(0, |d| d.ceil() as i64);
    match start {
        Some(start) if start > 0 => start.saturating_add(duration),
        _ => time::OffsetDateTime::now_utc().unix_timestamp(),
    }
}
