//! [`PgEventLog`]: the event log on PostgreSQL.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use recall_model::UnixTimestamp;
use recall_model::{
    ConversationId, FieldProblem, PhoneNumber, PostCallWebhookRequest, WebhookType,
};
use recall_service::event_log::{
    Appended, AudioError, AudioReader, DeletionRecord, EnvelopeError, EventLog, EventState,
    QuarantineUsage, QuarantinedBody, RawPart, RemovedConversation, StagedBody, StagedEvent,
    StoredAudio, StoredEvent, StoredEventError, check_envelope, decode_audio, mentions_number,
    parse_stored_event, quarantine_id, quarantine_received,
};
use tokio_postgres::types::ToSql;
use tokio_util::io::StreamReader;

use crate::{Database, DatabaseError};

/// Decoded audio is stored in rows of at most this many bytes, and read
/// back one row at a time.
pub const AUDIO_CHUNK: usize = 256 * 1024;

/// An [`EventLog`] on PostgreSQL, shared by every replica of the service
/// on the same database (and schema). It keeps the rules of the embedded
/// log (it passes `recall_service::conformance::events`):
///
/// * A body is received into memory, checked, and stored with its
///   conversation in one transaction before [`StagedBody::append`]
///   returns (so before the webhook is acknowledged). Two deliveries of
///   one event racing, on one replica or two, store it once: the
///   primary key (conversation, type) decides, and the other is a
///   [`Appended::Duplicate`].
/// * Decoded audio is kept in rows of [`AUDIO_CHUNK`] bytes and streamed
///   back a row at a time.
/// * The quarantine's caps are kept in the database (writers take turns
///   on its table); [`quarantine_usage`](EventLog::quarantine_usage)
///   answers from what this process last saw, refreshed by each of its
///   quarantine writes, and counts evictions since this process started.
///
/// * Replicas can share the pending events out:
///   [`claim`](Self::claim) leases each to one worker for a while
///   (marking it done or failed, or [`release`](Self::release), ends the
///   lease).
///
/// Needs a [`Database`] whose schema is migrated
/// ([`Database::migrate`]).
#[derive(Clone, Debug)]
pub struct PgEventLog {
    db: Database,
    usage: Arc<Mutex<QuarantineUsage>>,
    /// This process's name in claims (`claimed_by`).
    worker: Arc<str>,
}

/// A database error as the event log port gives errors: its kind says
/// whether it timed out; the error itself is kept as the source.
fn io_error(e: impl Into<DatabaseError>) -> io::Error {
    let e = e.into();
    let kind = if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e)
}

fn not_found(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, what.to_owned())
}

fn join_error(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(e)
}

const PENDING: &str = "pending";
const DONE: &str = "done";
const FAILED: &str = "failed";

fn state_of(raw: &str) -> io::Result<EventState> {
    match raw {
        PENDING => Ok(EventState::Pending),
        DONE => Ok(EventState::Done),
        FAILED => Ok(EventState::Failed),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown event state {other:?} in the database"),
        )),
    }
}

/// Nanoseconds since the epoch, now.
fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PgEventLog {
    /// Commits a change of the quarantine, and mirrors its new usage
    /// (files and bytes) in this process's figures.
    async fn commit_quarantine_change(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
    ) -> io::Result<()> {
        let usage = tx
            .query_one(
                "SELECT count(*), coalesce(sum(bytes), 0)::bigint FROM quarantine",
                &[],
            )
            .await
            .map_err(io_error)?;
        tx.commit().await.map_err(io_error)?;
        let mut mirror = self.usage();
        mirror.files = to_u64(usage.get(0));
        mirror.bytes = to_u64(usage.get(1));
        Ok(())
    }

    /// The log on `db`, with the default quarantine caps; reads what the
    /// quarantine holds.
    ///
    /// # Errors
    /// [`DatabaseError`] when the database cannot be read (or is not
    /// migrated).
    pub async fn open(db: Database) -> Result<Self, DatabaseError> {
        let log = Self {
            db,
            usage: Arc::new(Mutex::new(QuarantineUsage::new())),
            worker: Arc::from(format!("recall-{}", uuid::Uuid::new_v4().simple())),
        };
        let client = log.db.client().await?;
        let row = client
            .query_one(
                "SELECT count(*), coalesce(sum(bytes), 0)::bigint FROM quarantine",
                &[],
            )
            .await?;
        {
            let mut usage = log.usage();
            usage.files = to_u64(row.get(0));
            usage.bytes = to_u64(row.get(1));
        }
        Ok(log)
    }

    /// Caps the quarantine at `max_files` bodies and `max_bytes` bytes
    /// (the oldest go first, the newest is always kept), from the next
    /// body quarantined on.
    pub fn with_quarantine_limits(self, max_files: u64, max_bytes: u64) -> Self {
        {
            let mut usage = self.usage();
            usage.max_files = max_files.max(1);
            usage.max_bytes = max_bytes;
        }
        self
    }

    /// Claims for `worker` at most `limit` pending events that no other
    /// worker holds (or whose lease ran out), oldest first, each for
    /// `lease`: replicas claiming at once never get the same event.
    /// Marking an event done or failed, or releasing it, ends its claim.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn claim(
        &self,
        worker: &str,
        limit: usize,
        lease: std::time::Duration,
    ) -> io::Result<Vec<StoredEvent>> {
        let client = self.db.client().await.map_err(io_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "WITH next AS (
                     SELECT conversation_id, kind FROM events
                     WHERE state = 'pending'
                       AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
                     ORDER BY received_nanos, conversation_id, kind
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE events e
                 SET claimed_by = $1, claimed_until = clock_timestamp() + make_interval(secs => $3)
                 FROM next
                 WHERE e.conversation_id = next.conversation_id AND e.kind = next.kind
                 RETURNING e.conversation_id, e.kind, e.received_nanos",
                &[&worker, &limit, &lease.as_secs_f64()],
            )
            .await
            .map_err(io_error)?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(StoredEvent {
                    conversation: ConversationId::parse(r.get::<_, &str>(0))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                    kind: WebhookType::parse(r.get(1)),
                    state: EventState::Pending,
                    received_nanos: u128::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        claimed.sort_by(|a, b| {
            (a.received_nanos, &a.conversation, a.kind.as_str()).cmp(&(
                b.received_nanos,
                &b.conversation,
                b.kind.as_str(),
            ))
        });
        Ok(claimed)
    }

    /// Hands back an event `worker` claimed and did not finish, so that
    /// any worker may claim it at once; `false` when `worker` does not
    /// hold it.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn release(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        worker: &str,
    ) -> io::Result<bool> {
        let client = self.db.client().await.map_err(io_error)?;
        let released = client
            .execute(
                "UPDATE events SET claimed_by = NULL, claimed_until = NULL \
                 WHERE conversation_id = $1 AND kind = $2 AND claimed_by = $3",
                &[&conversation.as_str(), &kind.as_str(), &worker],
            )
            .await
            .map_err(io_error)?;
        Ok(released == 1)
    }

    fn usage(&self) -> MutexGuard<'_, QuarantineUsage> {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn event_body(
        &self,
        conversation: &ConversationId,
        kind: &str,
    ) -> io::Result<Option<Vec<u8>>> {
        let client = self.db.client().await.map_err(io_error)?;
        let row = client
            .query_opt(
                "SELECT body FROM events WHERE conversation_id = $1 AND kind = $2",
                &[&conversation.as_str(), &kind],
            )
            .await
            .map_err(io_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_state(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        state: &str,
        failure: Option<&str>,
        record: Option<&str>,
    ) -> io::Result<()> {
        let client = self.db.client().await.map_err(io_error)?;
        let changed = client
            .execute(
                "UPDATE events SET state = $3, failure = $4, record = coalesce($5, record), \
                 claimed_by = NULL, claimed_until = NULL \
                 WHERE conversation_id = $1 AND kind = $2",
                &[
                    &conversation.as_str(),
                    &kind.as_str(),
                    &state,
                    &failure,
                    &record,
                ],
            )
            .await
            .map_err(io_error)?;
        if changed == 0 {
            return Err(not_found("no such stored event"));
        }
        Ok(())
    }

    /// Stores a refused body in the quarantine and evicts the oldest past
    /// the caps, in one transaction; returns its id.
    async fn quarantine(&self, body: Vec<u8>, reason: &str) -> Result<String, DatabaseError> {
        let (max_files, max_bytes) = {
            let usage = self.usage();
            (usage.max_files, usage.max_bytes)
        };
        let id = quarantine_id();
        let mut client = self.db.client().await?;
        let tx = client.transaction().await?;
        // Writers take turns, so that the caps hold across replicas.
        tx.batch_execute("LOCK TABLE quarantine IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        tx.execute(
            "INSERT INTO quarantine (id, reason, body, bytes) VALUES ($1, $2, $3, $4)",
            &[&id, &reason, &body, &(body.len() as i64)],
        )
        .await?;
        // Newest first, the bodies kept are those within both caps (the
        // newest always).
        let evicted = tx
            .execute(
                "DELETE FROM quarantine WHERE id IN (
                     SELECT id FROM (
                         SELECT id,
                                count(*) OVER newest AS n,
                                (sum(bytes) OVER newest)::bigint AS b
                         FROM quarantine
                         WINDOW newest AS (ORDER BY id DESC ROWS UNBOUNDED PRECEDING)
                     ) ranked
                     WHERE n > 1 AND (n > $1 OR b > $2)
                 )",
                &[
                    &i64::try_from(max_files).unwrap_or(i64::MAX),
                    &i64::try_from(max_bytes).unwrap_or(i64::MAX),
                ],
            )
            .await?;
        let row = tx
            .query_one(
                "SELECT count(*), coalesce(sum(bytes), 0)::bigint FROM quarantine",
                &[],
            )
            .await?;
        tx.commit().await?;
        let mut usage = self.usage();
        usage.files = to_u64(row.get(0));
        usage.bytes = to_u64(row.get(1));
        usage.evicted += evicted;
        Ok(id)
    }

    /// Stores a checked event (and its conversation) in one transaction;
    /// `false` when the same conversation and type were stored already.
    async fn store(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        body: &[u8],
    ) -> Result<bool, DatabaseError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO conversations (conversation_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&conversation.as_str()],
        )
        .await?;
        let inserted = tx
            .execute(
                "INSERT INTO events (conversation_id, kind, body, received_nanos) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id, kind) DO NOTHING",
                &[&conversation.as_str(), &kind.as_str(), &body, &now_nanos()],
            )
            .await?;
        tx.commit().await?;
        Ok(inserted == 1)
    }
}

#[async_trait]
impl EventLog for PgEventLog {
    async fn stage(&self) -> io::Result<StagedEvent> {
        Ok(StagedEvent::new(Box::new(Staged {
            log: self.clone(),
            body: Vec::new(),
        })))
    }

    async fn probe(&self) -> io::Result<()> {
        let client = self.db.client().await.map_err(io_error)?;
        let read_only: bool = client
            .query_one(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
                &[],
            )
            .await
            .map_err(io_error)?
            .get(0);
        if read_only {
            return Err(io::Error::other(
                "the database is read-only (a standby, or transactions default to read only)",
            ));
        }
        Ok(())
    }

    async fn conversations(&self) -> io::Result<Vec<ConversationId>> {
        let client = self.db.client().await.map_err(io_error)?;
        let rows = client
            .query(
                "SELECT c.conversation_id FROM conversations c \
                 WHERE EXISTS (SELECT 1 FROM events e WHERE e.conversation_id = c.conversation_id) \
                 ORDER BY c.conversation_id",
                &[],
            )
            .await
            .map_err(io_error)?;
        rows.iter()
            .map(|r| {
                ConversationId::parse(r.get::<_, &str>(0))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
            .collect()
    }

    async fn events(&self, conversation: &ConversationId) -> io::Result<Vec<StoredEvent>> {
        let client = self.db.client().await.map_err(io_error)?;
        let rows = client
            .query(
                "SELECT kind, state, received_nanos FROM events \
                 WHERE conversation_id = $1 ORDER BY kind",
                &[&conversation.as_str()],
            )
            .await
            .map_err(io_error)?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvent {
                    conversation: conversation.clone(),
                    kind: WebhookType::parse(r.get(0)),
                    state: state_of(r.get(1))?,
                    received_nanos: u128::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn read_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> Result<Option<(PostCallWebhookRequest, Vec<FieldProblem>)>, StoredEventError> {
        let Some(body) = self.event_body(conversation, kind.as_str()).await? else {
            return Ok(None);
        };
        // A body can be large (audio): parsed off the async threads.
        recall_memory::spawn_blocking(move || parse_stored_event(&body[..]))
            .await
            .map_err(|e| StoredEventError::Io(join_error(e)))?
            .map(Some)
    }

    async fn open_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> io::Result<Option<AudioReader>> {
        let body = self.event_body(conversation, kind.as_str()).await?;
        Ok(body.map(|b| Box::new(std::io::Cursor::new(b)) as AudioReader))
    }

    async fn mark_done(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        record: &str,
    ) -> io::Result<()> {
        self.set_state(conversation, kind, DONE, None, Some(record))
            .await
    }

    async fn mark_failed(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        reason: &str,
    ) -> io::Result<()> {
        self.set_state(conversation, kind, FAILED, Some(reason), None)
            .await
    }

    async fn failure_reason(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
    ) -> io::Result<Option<String>> {
        let client = self.db.client().await.map_err(io_error)?;
        let row = client
            .query_opt(
                "SELECT failure FROM events WHERE conversation_id = $1 AND kind = $2",
                &[&conversation.as_str(), &kind.as_str()],
            )
            .await
            .map_err(io_error)?;
        Ok(row.and_then(|r| r.get(0)))
    }

    async fn caller(&self, conversation: &ConversationId) -> io::Result<Option<PhoneNumber>> {
        let client = self.db.client().await.map_err(io_error)?;
        let row = client
            .query_opt(
                "SELECT caller FROM conversations WHERE conversation_id = $1",
                &[&conversation.as_str()],
            )
            .await
            .map_err(io_error)?;
        row.and_then(|r| r.get::<_, Option<String>>(0))
            .map(|raw| {
                PhoneNumber::parse(&raw).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
            .transpose()
    }

    async fn record_caller(
        &self,
        conversation: &ConversationId,
        caller: &PhoneNumber,
    ) -> io::Result<()> {
        let client = self.db.client().await.map_err(io_error)?;
        let changed = client
            .execute(
                "UPDATE conversations SET caller = $2 WHERE conversation_id = $1",
                &[&conversation.as_str(), &caller.as_str()],
            )
            .await
            .map_err(io_error)?;
        if changed == 0 {
            return Err(not_found("no events stored for this conversation"));
        }
        Ok(())
    }

    async fn decode_audio(&self, conversation: &ConversationId) -> Result<u64, AudioError> {
        let body = self
            .event_body(conversation, WebhookType::PostCallAudio.as_str())
            .await?
            .ok_or_else(|| not_found("no post_call_audio event stored"))?;
        let audio = recall_memory::spawn_blocking(move || {
            let mut audio = Vec::new();
            decode_audio(&body[..], &mut audio).map(|_| audio)
        })
        .await
        .map_err(join_error)??;
        let mut client = self.db.client().await.map_err(io_error)?;
        let tx = client.transaction().await.map_err(io_error)?;
        let id = conversation.as_str();
        tx.execute("DELETE FROM audio WHERE conversation_id = $1", &[&id])
            .await
            .map_err(io_error)?;
        let chunks: Vec<&[u8]> = audio.chunks(AUDIO_CHUNK).collect();
        tx.execute(
            "INSERT INTO audio (conversation_id, len, chunks) VALUES ($1, $2, $3)",
            &[&id, &(audio.len() as i64), &(chunks.len() as i32)],
        )
        .await
        .map_err(io_error)?;
        let insert = tx
            .prepare("INSERT INTO audio_chunks (conversation_id, seq, data) VALUES ($1, $2, $3)")
            .await
            .map_err(io_error)?;
        for (seq, chunk) in chunks.iter().enumerate() {
            tx.execute(&insert, &[&id, &(seq as i32), chunk])
                .await
                .map_err(io_error)?;
        }
        tx.commit().await.map_err(io_error)?;
        Ok(audio.len() as u64)
    }

    async fn has_audio(&self, conversation: &ConversationId) -> io::Result<bool> {
        let client = self.db.client().await.map_err(io_error)?;
        Ok(client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM audio WHERE conversation_id = $1)",
                &[&conversation.as_str()],
            )
            .await
            .map_err(io_error)?
            .get(0))
    }

    async fn open_audio(&self, conversation: &ConversationId) -> io::Result<Option<StoredAudio>> {
        let client = self.db.client().await.map_err(io_error)?;
        let Some(row) = client
            .query_opt(
                "SELECT len, chunks FROM audio WHERE conversation_id = $1",
                &[&conversation.as_str()],
            )
            .await
            .map_err(io_error)?
        else {
            return Ok(None);
        };
        drop(client);
        let len = to_u64(row.get(0));
        let chunks: i32 = row.get(1);
        let stream = audio_chunks(self.db.clone(), conversation.as_str().to_owned(), chunks);
        Ok(Some(StoredAudio {
            len,
            reader: Box::new(StreamReader::new(stream)) as AudioReader,
        }))
    }

    async fn remove_conversation(
        &self,
        conversation: &ConversationId,
    ) -> io::Result<Option<RemovedConversation>> {
        let id = conversation.as_str();
        let mut client = self.db.client().await.map_err(io_error)?;
        let tx = client.transaction().await.map_err(io_error)?;
        let found = tx
            .query_opt(
                "SELECT 1 FROM conversations WHERE conversation_id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(io_error)?;
        if found.is_none() {
            return Ok(None);
        }
        let row = tx
            .query_one(
                "SELECT (SELECT count(*) FROM events WHERE conversation_id = $1), \
                        EXISTS (SELECT 1 FROM audio WHERE conversation_id = $1)",
                &[&id],
            )
            .await
            .map_err(io_error)?;
        // Events, audio and its chunks go with it (ON DELETE CASCADE).
        tx.execute(
            "DELETE FROM conversations WHERE conversation_id = $1",
            &[&id],
        )
        .await
        .map_err(io_error)?;
        tx.commit().await.map_err(io_error)?;
        Ok(Some(RemovedConversation {
            events: to_u64(row.get(0)),
            audio: row.get(1),
        }))
    }

    async fn quarantined(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Vec<QuarantinedBody>> {
        let client = self.db.client().await.map_err(io_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT id, reason, bytes FROM quarantine \
                 WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )
            .await
            .map_err(io_error)?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: String = r.get(0);
                QuarantinedBody {
                    received: quarantine_received(&id),
                    id,
                    reason: r.get(1),
                    bytes: to_u64(r.get(2)),
                }
            })
            .collect())
    }

    async fn forget_quarantined(&self, number: &PhoneNumber) -> io::Result<u64> {
        let mut client = self.db.client().await.map_err(io_error)?;
        let tx = client.transaction().await.map_err(io_error)?;
        tx.batch_execute("LOCK TABLE quarantine IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(io_error)?;
        // The database finds the bodies holding the digits; the rule of a
        // whole number (not the start of a longer one) is checked here.
        let needle: &[u8] = number.as_str().as_bytes();
        let rows = tx
            .query(
                "SELECT id, body FROM quarantine WHERE position($1::bytea IN body) > 0",
                &[&needle],
            )
            .await
            .map_err(io_error)?;
        let mut doomed: Vec<String> = Vec::new();
        for row in &rows {
            if mentions_number(row.get::<_, &[u8]>(1), number)? {
                doomed.push(row.get(0));
            }
        }
        let removed = tx
            .execute("DELETE FROM quarantine WHERE id = ANY($1)", &[&doomed])
            .await
            .map_err(io_error)?;
        self.commit_quarantine_change(tx).await?;
        Ok(removed)
    }

    async fn redact_event(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        redacted: &[u8],
    ) -> io::Result<()> {
        let client = self.db.client().await.map_err(io_error)?;
        let changed = client
            .execute(
                "UPDATE events SET body = $3 WHERE conversation_id = $1 AND kind = $2",
                &[&conversation.as_str(), &kind.as_str(), &redacted],
            )
            .await
            .map_err(io_error)?;
        if changed == 0 {
            return Err(not_found("no such stored event"));
        }
        Ok(())
    }

    async fn remove_audio(&self, conversation: &ConversationId) -> io::Result<bool> {
        let client = self.db.client().await.map_err(io_error)?;
        // Its chunks go with it (ON DELETE CASCADE).
        let removed = client
            .execute(
                "DELETE FROM audio WHERE conversation_id = $1",
                &[&conversation.as_str()],
            )
            .await
            .map_err(io_error)?;
        Ok(removed > 0)
    }

    async fn record_deletion(
        &self,
        conversation: &ConversationId,
        record: &DeletionRecord,
    ) -> io::Result<()> {
        let secs = |t: Option<UnixTimestamp>| t.map(UnixTimestamp::as_secs);
        let client = self.db.client().await.map_err(io_error)?;
        let written = client
            .execute(
                "INSERT INTO deletions (conversation_id, due, transcript, audio, \
                     transcript_deleted_at, audio_deleted_at) \
                 SELECT $1, $2, $3, $4, $5, $6 \
                 WHERE EXISTS (SELECT 1 FROM conversations WHERE conversation_id = $1) \
                 ON CONFLICT (conversation_id) DO UPDATE SET due = EXCLUDED.due, \
                     transcript = EXCLUDED.transcript, audio = EXCLUDED.audio, \
                     transcript_deleted_at = EXCLUDED.transcript_deleted_at, \
                     audio_deleted_at = EXCLUDED.audio_deleted_at",
                &[
                    &conversation.as_str(),
                    &secs(record.due),
                    &record.transcript,
                    &record.audio,
                    &secs(record.transcript_deleted_at),
                    &secs(record.audio_deleted_at),
                ],
            )
            .await
            .map_err(io_error)?;
        if written == 0 {
            return Err(not_found("no events stored for this conversation"));
        }
        Ok(())
    }

    async fn deletion(&self, conversation: &ConversationId) -> io::Result<Option<DeletionRecord>> {
        let client = self.db.client().await.map_err(io_error)?;
        let Some(row) = client
            .query_opt(
                "SELECT due, transcript, audio, transcript_deleted_at, audio_deleted_at \
                 FROM deletions WHERE conversation_id = $1",
                &[&conversation.as_str()],
            )
            .await
            .map_err(io_error)?
        else {
            return Ok(None);
        };
        let time = |i: usize| {
            row.get::<_, Option<i64>>(i)
                .map(|s| {
                    UnixTimestamp::from_secs(s)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
                })
                .transpose()
        };
        Ok(Some(DeletionRecord {
            due: time(0)?,
            transcript: row.get(1),
            audio: row.get(2),
            transcript_deleted_at: time(3)?,
            audio_deleted_at: time(4)?,
        }))
    }

    async fn deletions_due(&self, now: UnixTimestamp) -> io::Result<Vec<ConversationId>> {
        let client = self.db.client().await.map_err(io_error)?;
        let rows = client
            .query(
                "SELECT conversation_id FROM deletions WHERE due <= $1 \
                 AND ((transcript AND transcript_deleted_at IS NULL) \
                   OR (audio AND audio_deleted_at IS NULL)) \
                 ORDER BY conversation_id",
                &[&now.as_secs()],
            )
            .await
            .map_err(io_error)?;
        conversation_ids(&rows)
    }

    async fn retention_due(
        &self,
        part: RawPart,
        before: UnixTimestamp,
    ) -> io::Result<Vec<ConversationId>> {
        let before = before.as_secs().saturating_mul(1_000_000_000);
        let audio = part == RawPart::Audio;
        let client = self.db.client().await.map_err(io_error)?;
        let rows = client
            .query(
                "SELECT DISTINCT e.conversation_id FROM events e \
                 LEFT JOIN deletions d ON d.conversation_id = e.conversation_id \
                 WHERE e.received_nanos < $1 AND (e.kind = 'post_call_audio') = $2 \
                 AND (CASE WHEN $2 THEN d.audio_deleted_at ELSE d.transcript_deleted_at END) IS NULL \
                 ORDER BY e.conversation_id",
                &[&before, &audio],
            )
            .await
            .map_err(io_error)?;
        conversation_ids(&rows)
    }

    async fn forget_quarantined_before(&self, before: UnixTimestamp) -> io::Result<u64> {
        let mut client = self.db.client().await.map_err(io_error)?;
        let tx = client.transaction().await.map_err(io_error)?;
        tx.batch_execute("LOCK TABLE quarantine IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(io_error)?;
        // Ids start with the unix seconds of their arrival (quarantine_id).
        let removed = tx
            .execute(
                "DELETE FROM quarantine WHERE split_part(id, '-', 1)::bigint < $1",
                &[&before.as_secs()],
            )
            .await
            .map_err(io_error)?;
        self.commit_quarantine_change(tx).await?;
        Ok(removed)
    }

    async fn unfinished(&self) -> io::Result<Vec<StoredEvent>> {
        let client = self.db.client().await.map_err(io_error)?;
        let rows = client
            .query(
                "SELECT conversation_id, kind, state, received_nanos FROM events \
                 WHERE state = 'pending' \
                 UNION ALL SELECT conversation_id, kind, state, received_nanos FROM events \
                 WHERE state = 'failed'",
                &[],
            )
            .await
            .map_err(io_error)?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvent {
                    conversation: ConversationId::parse(r.get(0))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                    kind: WebhookType::parse(r.get(1)),
                    state: state_of(r.get(2))?,
                    received_nanos: u128::try_from(r.get::<_, i64>(3)).unwrap_or(0),
                })
            })
            .collect()
    }

    fn shared(&self) -> bool {
        true
    }

    async fn claim(
        &self,
        conversation: &ConversationId,
        kind: &WebhookType,
        lease: std::time::Duration,
    ) -> io::Result<bool> {
        let client = self.db.client().await.map_err(io_error)?;
        // Ours already, free, or abandoned: a single UPDATE, so that two
        // replicas claiming at once cannot both win.
        let taken = client
            .execute(
                "UPDATE events SET claimed_by = $3, \
                 claimed_until = clock_timestamp() + make_interval(secs => $4) \
                 WHERE conversation_id = $1 AND kind = $2 AND state = 'pending' \
                 AND (claimed_until IS NULL OR claimed_until < clock_timestamp() OR claimed_by = $3)",
                &[
                    &conversation.as_str(),
                    &kind.as_str(),
                    &&*self.worker,
                    &lease.as_secs_f64(),
                ],
            )
            .await
            .map_err(io_error)?;
        Ok(taken == 1)
    }

    async fn release(&self, conversation: &ConversationId, kind: &WebhookType) -> io::Result<()> {
        PgEventLog::release(self, conversation, kind, &self.worker)
            .await
            .map(drop)
    }

    fn quarantine_usage(&self) -> QuarantineUsage {
        *self.usage()
    }
}

fn conversation_ids(rows: &[tokio_postgres::Row]) -> io::Result<Vec<ConversationId>> {
    rows.iter()
        .map(|r| {
            ConversationId::parse(r.get::<_, &str>(0))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        })
        .collect()
}

type ChunkStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// The chunks of a conversation's audio, each read when the reader gets
/// to it (one short query each, on any pooled connection).
fn audio_chunks(db: Database, conversation: String, chunks: i32) -> ChunkStream {
    Box::pin(futures_util::stream::try_unfold(0i32, move |seq| {
        let (db, conversation) = (db.clone(), conversation.clone());
        async move {
            if seq >= chunks {
                return Ok(None);
            }
            let client = db.client().await.map_err(io_error)?;
            let params: [&(dyn ToSql + Sync); 2] = [&conversation, &seq];
            let row = client
                .query_opt(
                    "SELECT data FROM audio_chunks WHERE conversation_id = $1 AND seq = $2",
                    &params,
                )
                .await
                .map_err(io_error)?
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the audio was removed or replaced while it was read",
                    )
                })?;
            Ok(Some((Bytes::from(row.get::<_, Vec<u8>>(0)), seq + 1)))
        }
    }))
}

/// A body being received: kept in memory until appended.
struct Staged {
    log: PgEventLog,
    body: Vec<u8>,
}

#[async_trait]
impl StagedBody for Staged {
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    async fn append(self: Box<Self>) -> io::Result<Appended> {
        let Staged { log, body } = *self;
        let (checked, body) =
            recall_memory::spawn_blocking(move || (check_envelope(&body[..]), body))
                .await
                .map_err(join_error)?;
        match checked {
            Ok((conversation, kind)) => {
                if log
                    .store(&conversation, &kind, &body)
                    .await
                    .map_err(io_error)?
                {
                    Ok(Appended::Stored { conversation, kind })
                } else {
                    Ok(Appended::Duplicate { conversation, kind })
                }
            }
            Err(EnvelopeError::Io(e)) => Err(e),
            Err(e) => {
                let reason = e.to_string();
                let quarantined = log.quarantine(body, &reason).await.map_err(io_error);
                Ok(Appended::Refused {
                    reason,
                    quarantined,
                })
            }
        }
    }
}
