//! The conformance suite of the [`EventLog`] port: its rules as
//! executable checks, for any implementation.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use recall_service::InMemoryEventLog;
//! use recall_service::conformance::events;
//!
//! events::run_all(&InMemoryEventLog::new()).await;
//! # }
//! ```
//!
//! Each check is also a public function. A check panics with a message
//! starting `conformance:` that names the rule broken. Checks invent their
//! own conversations and numbers, so they do not see each other's events
//! and can share one log, and any other events in it are left alone.

use std::io;

use base64::Engine as _;
use recall_model::{
    ConversationId, PhoneNumber, PostCallEvent, PostCallWebhookRequest, WebhookType,
};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use super::{
    Appended, AudioError, DeletionRecord, EventLog, EventState, RawPart, StoredEventError,
};
use recall_model::UnixTimestamp;

/// Runs every check against `log`, one after another.
///
/// # Panics
/// On the first rule the log breaks, with a message naming it.
pub async fn run_all<L: EventLog + ?Sized>(log: &L) {
    an_event_round_trips_typed(log).await;
    a_redelivery_is_a_duplicate_and_changes_nothing(log).await;
    racing_deliveries_store_one_event(log).await;
    a_dropped_body_leaves_nothing(log).await;
    refused_bodies_are_quarantined_with_the_reason(log).await;
    states_move_from_pending_to_failed_and_done(log).await;
    the_caller_is_recorded_per_conversation(log).await;
    audio_is_decoded_and_streamed_back(log).await;
    removing_a_conversation_removes_everything(log).await;
    forgetting_a_number_spares_longer_numbers_in_quarantine(log).await;
    unknown_types_are_kept_as_received(log).await;
    deletions_are_recorded_and_raw_copies_removed(log).await;
    old_quarantined_bodies_are_forgotten(log).await;
}

fn fail(rule: &str, detail: impl std::fmt::Debug) -> ! {
    panic!("conformance: {rule}: {detail:?}")
}

fn conv() -> ConversationId {
    ConversationId::parse(&format!("conv_{}", uuid::Uuid::new_v4().simple()))
        .expect("a valid invented conversation id")
}

fn invented_number() -> PhoneNumber {
    let digits = uuid::Uuid::new_v4().as_u128() % 10_000_000_000;
    PhoneNumber::parse(&format!("+1555{digits:010}")).expect("a valid invented number")
}

fn transcription(conversation: &ConversationId, agent: &str) -> Value {
    json!({"type": "post_call_transcription", "event_timestamp": 1_796_058_000,
        "data": {"agent_id": agent, "conversation_id": conversation.as_str(), "status": "done",
            "transcript": [{"role": "user", "message": "Hello", "time_in_call_secs": 1}],
            "metadata": {"start_time_unix_secs": 1_796_057_900, "call_duration_secs": 100}}})
}

fn audio_event(conversation: &ConversationId, audio: &str) -> Value {
    json!({"type": "post_call_audio", "event_timestamp": 1_796_058_000,
        "data": {"agent_id": "agent_conformance", "conversation_id": conversation.as_str(),
            "full_audio": audio}})
}

fn agent(request: &PostCallWebhookRequest) -> Option<&str> {
    match &request.data {
        PostCallEvent::Transcription(data) => Some(data.agent_id.as_str()),
        _ => None,
    }
}

async fn append<L: EventLog + ?Sized>(log: &L, body: &[u8]) -> Appended {
    let mut staged = match log.stage().await {
        Ok(staged) => staged,
        Err(e) => fail("a body can be staged", e),
    };
    // In two chunks: a body arrives in pieces.
    let (head, tail) = body.split_at(body.len() / 2);
    for chunk in [head, tail] {
        if let Err(e) = staged.write(chunk).await {
            fail("a staged body takes chunks", e);
        }
    }
    if staged.len() != body.len() as u64 {
        fail("a staged body counts its bytes", (staged.len(), body.len()));
    }
    match staged.append().await {
        Ok(appended) => appended,
        Err(e) => fail("a complete body is appended", e),
    }
}

async fn stored<L: EventLog + ?Sized>(log: &L, body: &Value) {
    match append(log, body.to_string().as_bytes()).await {
        Appended::Stored { .. } => {}
        other => fail("a valid new event is stored", other),
    }
}

async fn events<L: EventLog + ?Sized>(
    log: &L,
    conversation: &ConversationId,
) -> Vec<(WebhookType, EventState)> {
    match log.events(conversation).await {
        Ok(events) => events.into_iter().map(|e| (e.kind, e.state)).collect(),
        Err(e) => fail("events are listed", e),
    }
}

async fn conversations<L: EventLog + ?Sized>(log: &L) -> Vec<ConversationId> {
    match log.conversations().await {
        Ok(c) => c,
        Err(e) => fail("conversations are listed", e),
    }
}

/// An appended event is listed pending under its conversation and read
/// back typed; conversations are listed in id order.
pub async fn an_event_round_trips_typed<L: EventLog + ?Sized>(log: &L) {
    let c = conv();
    match append(log, transcription(&c, "agent_a").to_string().as_bytes()).await {
        Appended::Stored { conversation, kind }
            if conversation == c && kind == WebhookType::PostCallTranscription => {}
        other => fail("an append names the event's conversation and type", other),
    }
    let listed = conversations(log).await;
    if !listed.contains(&c) {
        fail("a stored conversation is listed", &c);
    }
    if !listed.is_sorted() {
        fail("conversations are listed in id order", listed);
    }
    let seen = events(log, &c).await;
    if seen != [(WebhookType::PostCallTranscription, EventState::Pending)] {
        fail("a new event is pending", seen);
    }
    match log
        .read_event(&c, &WebhookType::PostCallTranscription)
        .await
    {
        Ok(Some((request, _))) => {
            if agent(&request) != Some("agent_a") {
                fail("an event reads back as stored", request);
            }
        }
        other => fail("a stored event reads back", other),
    }
    let kind = WebhookType::PostCallTranscription;
    let mut raw = Vec::new();
    match log.open_event(&c, &kind).await {
        Ok(Some(mut body)) => {
            if let Err(e) = body.read_to_end(&mut raw).await {
                fail("a stored body can be read", e);
            }
        }
        Ok(None) => fail("a stored body can be opened", &c),
        Err(e) => fail("a stored body can be opened", e),
    }
    if raw != transcription(&c, "agent_a").to_string().as_bytes() {
        fail(
            "a stored body is kept byte for byte",
            String::from_utf8_lossy(&raw),
        );
    }
    match log.read_event(&c, &WebhookType::PostCallAudio).await {
        Ok(None) => {}
        other => fail("an event never stored reads as none", other),
    }
    match log.open_event(&c, &WebhookType::PostCallAudio).await {
        Ok(None) => {}
        Ok(Some(_)) => fail("an event never stored opens as none", &c),
        Err(e) => fail("an event never stored opens as none", e),
    }
    match log.events(&conv()).await {
        Ok(events) if events.is_empty() => {}
        other => fail("an unknown conversation has no events", other),
    }
}

/// The same conversation and type again is a duplicate: the first body
/// stays, and the event's state is untouched.
pub async fn a_redelivery_is_a_duplicate_and_changes_nothing<L: EventLog + ?Sized>(log: &L) {
    let c = conv();
    let kind = WebhookType::PostCallTranscription;
    stored(log, &transcription(&c, "agent_first")).await;
    if let Err(e) = log.mark_done(&c, &kind, "{}").await {
        fail("a stored event can be marked done", e);
    }
    match append(
        log,
        transcription(&c, "agent_second").to_string().as_bytes(),
    )
    .await
    {
        Appended::Duplicate {
            conversation,
            kind: k,
        } if conversation == c && k == kind => {}
        other => fail("a redelivery is a duplicate", other),
    }
    match log.read_event(&c, &kind).await {
        Ok(Some((request, _))) if agent(&request) == Some("agent_first") => {}
        other => fail("a duplicate leaves the first body", other),
    }
    let seen = events(log, &c).await;
    if seen != [(kind, EventState::Done)] {
        fail("a duplicate leaves the event's state", seen);
    }
}

/// Two deliveries of one event at once store it once.
pub async fn racing_deliveries_store_one_event<L: EventLog + ?Sized>(log: &L) {
    let c = conv();
    let body = transcription(&c, "agent_race").to_string();
    let (a, b) = tokio::join!(append(log, body.as_bytes()), append(log, body.as_bytes()));
    let stored = [&a, &b]
        .iter()
        .filter(|x| matches!(x, Appended::Stored { .. }))
        .count();
    let duplicates = [&a, &b]
        .iter()
        .filter(|x| matches!(x, Appended::Duplicate { .. }))
        .count();
    if (stored, duplicates) != (1, 1) {
        fail("racing deliveries: one stored, one duplicate", (a, b));
    }
}

/// A staged body that is never appended leaves nothing behind.
pub async fn a_dropped_body_leaves_nothing<L: EventLog + ?Sized>(log: &L) {
    let c = conv();
    let mut staged = match log.stage().await {
        Ok(staged) => staged,
        Err(e) => fail("a body can be staged", e),
    };
    if let Err(e) = staged
        .write(transcription(&c, "agent_dropped").to_string().as_bytes())
        .await
    {
        fail("a staged body takes chunks", e);
    }
    drop(staged);
    if conversations(log).await.contains(&c) {
        fail("a dropped body is not stored", &c);
    }
}

/// A body that is not an event is refused naming why, kept in the
/// quarantine (listed in arrival order with its reason and size), and
/// stores nothing.
pub async fn refused_bodies_are_quarantined_with_the_reason<L: EventLog + ?Sized>(log: &L) {
    let before = log.quarantine_usage();
    let c = conv();
    let cases: [(Vec<u8>, &str); 4] = [
        (b"not json".to_vec(), "JSON"),
        (Vec::new(), "empty"),
        (
            json!({"type": "post_call_transcription", "data": {}})
                .to_string()
                .into_bytes(),
            "conversation_id",
        ),
        (
            json!({"type": "../x", "data": {"conversation_id": c.as_str()}})
                .to_string()
                .into_bytes(),
            "type",
        ),
    ];
    let mut ids = Vec::new();
    for (body, named) in &cases {
        match append(log, body).await {
            Appended::Refused {
                reason,
                quarantined: Ok(id),
            } if reason.contains(named) => ids.push((id, reason, body.len() as u64)),
            other => fail("a refusal names the field or rule", (named, other)),
        }
    }
    if conversations(log).await.contains(&c) {
        fail("a refused body stores nothing", &c);
    }
    let after_first = ids[0].0.clone();
    let listed = match log.quarantined(None, usize::MAX).await {
        Ok(listed) => listed,
        Err(e) => fail("the quarantine is listed", e),
    };
    let ours: Vec<_> = listed
        .iter()
        .filter(|q| ids.iter().any(|(id, ..)| *id == q.id))
        .map(|q| (q.id.clone(), q.reason.clone(), q.bytes))
        .collect();
    if ours != ids {
        fail(
            "quarantined bodies are listed in arrival order with reason and size",
            (ours, ids),
        );
    }
    match log.quarantined(Some(&after_first), 1).await {
        Ok(page) if page.len() == 1 && page[0].id == ids[1].0 => {}
        other => fail("the quarantine pages after an id", other),
    }
    let usage = log.quarantine_usage();
    let grew = usage.files + usage.evicted - before.files - before.evicted;
    if grew != 4 {
        fail("the quarantine counts what it takes", (before, usage));
    }
}

/// Pending, then failed with its reason, then done (which clears the
/// failure). Marking an event never stored is an error.
pub async fn states_move_from_pending_to_failed_and_done<L: EventLog + ?Sized>(log: &L) {
    let c = conv();
    let kind = WebhookType::PostCallTranscription;
    stored(log, &transcription(&c, "agent_states")).await;
    if let Err(e) = log.mark_failed(&c, &kind, "bad data").await {
        fail("a stored event can be marked failed", e);
    }
    if events(log, &c).await != [(kind.clone(), EventState::Failed)] {
        fail("a failed event is listed failed", events(log, &c).await);
    }
    match log.failure_reason(&c, &kind).await {
        Ok(Some(reason)) if reason == "bad data" => {}
        other => fail("a failure keeps its reason", other),
    }
    if let Err(e) = log.mark_done(&c, &kind, r#"{"outcome":"ok"}"#).await {
        fail("a failed event can be marked done", e);
    }
    if events(log, &c).await != [(kind.clone(), EventState::Done)] {
        fail("a done event is listed done", events(log, &c).await);
    }
    match log.failure_reason(&c, &kind).await {
        Ok(None) => {}
        other => fail("done clears the failure", other),
    }
    let other = conv();
    for result in [
        log.mark_done(&other, &kind, "{}").await,
        log.mark_failed(&other, &kind, "x").await,
    ] {
        if result.is_ok() {
            fail("marking an event never stored is an error", &other);
        }
    }
    if conversations(log).await.contains(&other) {
        fail("marking an event never stored stores nothing", other);
    }
}

/// A conversation's caller is none until recorded, then the last one
/// recorded; recording for a conversation never stored is an error.
pub async fn the_caller_is_recorded_per_conversation<L: EventLog + ?Sized>(log: &L) {
    let (c, first, second) = (conv(), invented_number(), invented_number());
    stored(log, &transcription(&c, "agent_caller")).await;
    match log.caller(&c).await {
        Ok(None) => {}
        other => fail("no caller before one is recorded", other),
    }
    for number in [&first, &second] {
        if let Err(e) = log.record_caller(&c, number).await {
            fail("a caller can be recorded", e);
        }
    }
    match log.caller(&c).await {
        Ok(Some(n)) if n == second => {}
        other => fail("the last caller recorded is the caller", other),
    }
    if log.record_caller(&conv(), &first).await.is_ok() {
        fail("a caller of a conversation never stored is refused", first);
    }
}

/// The audio event's `data.full_audio` is decoded and streamed back byte
/// for byte; audio that is not base64 fails for good.
pub async fn audio_is_decoded_and_streamed_back<L: EventLog + ?Sized>(log: &L) {
    let c = conv();
    // Bigger than one 64 KiB chunk, every byte value.
    let audio: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&audio);
    stored(log, &audio_event(&c, &encoded)).await;
    match log.has_audio(&c).await {
        Ok(false) => {}
        other => fail("no audio before it is decoded", other),
    }
    match log.decode_audio(&c).await {
        Ok(n) if n == audio.len() as u64 => {}
        other => fail("the audio decodes to its length", other),
    }
    match log.has_audio(&c).await {
        Ok(true) => {}
        other => fail("decoded audio is stored", other),
    }
    let mut read = Vec::new();
    match log.open_audio(&c).await {
        Ok(Some(mut stored)) => {
            if stored.len != audio.len() as u64 {
                fail("the audio's length is its decoded length", stored.len);
            }
            if let Err(e) = stored.reader.read_to_end(&mut read).await {
                fail("the audio streams", e);
            }
        }
        other => fail("decoded audio opens", other.map(|r| r.is_some())),
    }
    if read != audio {
        fail("the audio streams back byte for byte", read.len());
    }
    let bad = conv();
    stored(log, &audio_event(&bad, "not base64 at all!")).await;
    match log.decode_audio(&bad).await {
        Err(AudioError::Invalid(reason)) if reason.contains("full_audio") => {}
        other => fail(
            "audio that is not base64 is invalid, naming the field",
            other,
        ),
    }
    match log.open_audio(&conv()).await {
        Ok(None) => {}
        other => fail("no audio opens for a conversation without", other.is_ok()),
    }
}

/// Removing a conversation removes its events, states, caller and audio,
/// and counts them; removing again finds nothing.
pub async fn removing_a_conversation_removes_everything<L: EventLog + ?Sized>(log: &L) {
    let (c, number) = (conv(), invented_number());
    stored(log, &transcription(&c, "agent_removed")).await;
    stored(log, &audio_event(&c, "AAEC")).await;
    let keep = conv();
    stored(log, &transcription(&keep, "agent_kept")).await;
    if let Err(e) = log.record_caller(&c, &number).await {
        fail("a caller can be recorded", e);
    }
    if let Err(e) = log.decode_audio(&c).await {
        fail("audio decodes", e);
    }
    match log.remove_conversation(&c).await {
        Ok(Some(removed)) if removed.events == 2 && removed.audio => {}
        other => fail("removal counts the events and the audio", other),
    }
    let gone = (
        events(log, &c).await.is_empty(),
        conversations(log).await.contains(&c),
        log.caller(&c).await.ok().flatten(),
        log.has_audio(&c).await.ok(),
    );
    if gone != (true, false, None, Some(false)) {
        fail("nothing of a removed conversation remains", gone);
    }
    match log.remove_conversation(&c).await {
        Ok(None) => {}
        other => fail("removing again finds nothing", other),
    }
    if events(log, &keep).await.len() != 1 {
        fail("removal spares other conversations", keep);
    }
    match log
        .read_event(&c, &WebhookType::PostCallTranscription)
        .await
    {
        Ok(None) => {}
        Err(StoredEventError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
        other => fail("a removed event reads as none", other),
    }
}

/// Forgetting a number removes the quarantined bodies that mention it,
/// not those that mention a longer number starting with it.
pub async fn forgetting_a_number_spares_longer_numbers_in_quarantine<L: EventLog + ?Sized>(
    log: &L,
) {
    let number = invented_number();
    let theirs = format!("not json, caller {} called", number.as_str());
    let longer = format!("not json, caller {}7 called", number.as_str());
    let mut ids = Vec::new();
    for body in [&theirs, &longer] {
        match append(log, body.as_bytes()).await {
            Appended::Refused {
                quarantined: Ok(id),
                ..
            } => ids.push(id),
            other => fail("a body that is not JSON is quarantined", other),
        }
    }
    let before = log.quarantine_usage();
    match log.forget_quarantined(&number).await {
        Ok(1) => {}
        other => fail(
            "forgetting removes exactly the bodies naming the number",
            other,
        ),
    }
    let listed: Vec<String> = match log.quarantined(None, usize::MAX).await {
        Ok(listed) => listed.into_iter().map(|q| q.id).collect(),
        Err(e) => fail("the quarantine is listed", e),
    };
    if listed.contains(&ids[0]) || !listed.contains(&ids[1]) {
        fail(
            "the body naming the number goes, the longer number stays",
            ids,
        );
    }
    let after = log.quarantine_usage();
    if after.files + 1 != before.files || after.bytes + theirs.len() as u64 != before.bytes {
        fail("the quarantine's usage follows a forget", (before, after));
    }
    match log.forget_quarantined(&number).await {
        Ok(0) => {}
        other => fail("forgetting again removes nothing", other),
    }
}

/// A type this version does not know is stored as received and listed
/// under its own name.
pub async fn unknown_types_are_kept_as_received<L: EventLog + ?Sized>(log: &L) {
    let c = conv();
    let body = json!({"type": "post_call_video", "data": {"conversation_id": c.as_str()}});
    match append(log, body.to_string().as_bytes()).await {
        Appended::Stored { kind, .. }
            if kind.as_str() == "post_call_video" && kind.is_unknown() => {}
        other => fail("an unknown type is stored under its name", other),
    }
    let seen = events(log, &c).await;
    if seen.len() != 1 || seen[0].0.as_str() != "post_call_video" {
        fail("an unknown type is listed under its name", seen);
    }
}

fn at(secs: i64) -> UnixTimestamp {
    UnixTimestamp::from_secs(secs).expect("a valid time")
}

async fn body_of<L: EventLog + ?Sized>(
    log: &L,
    conversation: &ConversationId,
    kind: &WebhookType,
) -> Vec<u8> {
    let mut raw = Vec::new();
    match log.open_event(conversation, kind).await {
        Ok(Some(mut body)) => {
            if let Err(e) = body.read_to_end(&mut raw).await {
                fail("a stored body can be read", e);
            }
        }
        other => fail("a stored body can be opened", other.map(|b| b.is_some())),
    }
    raw
}

/// A deletion record is kept per conversation and found once due until
/// carried out; a body is redacted in place (state and arrival kept); the
/// audio is removed on its own; old events are found for retention until
/// their part is deleted; removing the conversation removes the record.
pub async fn deletions_are_recorded_and_raw_copies_removed<L: EventLog + ?Sized>(log: &L) {
    let c = conv();
    let transcription_kind = WebhookType::PostCallTranscription;
    stored(log, &transcription(&c, "agent_deleted")).await;
    stored(log, &audio_event(&c, "AAEC")).await;
    if let Err(e) = log.decode_audio(&c).await {
        fail("audio decodes", e);
    }
    if let Err(e) = log.mark_done(&c, &transcription_kind, "{}").await {
        fail("a stored event can be marked done", e);
    }
    match log.deletion(&c).await {
        Ok(None) => {}
        other => fail("no deletion record before one is recorded", other),
    }
    let schedule = DeletionRecord {
        due: Some(at(1_000)),
        transcript: true,
        audio: true,
        ..DeletionRecord::default()
    };
    if log.record_deletion(&conv(), &schedule).await.is_ok() {
        fail("a deletion of a conversation never stored is refused", &c);
    }
    if let Err(e) = log.record_deletion(&c, &schedule).await {
        fail("a deletion can be recorded", e);
    }
    match log.deletion(&c).await {
        Ok(Some(r)) if r == schedule => {}
        other => fail("a deletion record reads back as recorded", other),
    }
    let c_ref = &c;
    let due_at = |now| async move {
        match log.deletions_due(at(now)).await {
            Ok(due) => due.contains(c_ref),
            Err(e) => fail("due deletions are listed", e),
        }
    };
    if due_at(999).await || !due_at(1_000).await {
        fail("a scheduled deletion is due from its time on", &c);
    }

    let before = match log.events(&c).await {
        Ok(events) => events,
        Err(e) => fail("events are listed", e),
    };
    let redacted = br#"{"type":"post_call_transcription","data":{"conversation_id":"redacted"}}"#;
    if let Err(e) = log.redact_event(&c, &transcription_kind, redacted).await {
        fail("a stored body can be redacted", e);
    }
    if body_of(log, &c, &transcription_kind).await != redacted {
        fail("a redacted body reads back redacted", &c);
    }
    match log.events(&c).await {
        Ok(after) if after == before => {}
        other => fail("redacting keeps the event's state and arrival", other),
    }
    if log
        .redact_event(&c, &WebhookType::CallInitiationFailure, redacted)
        .await
        .is_ok()
    {
        fail("redacting an event never stored is an error", &c);
    }
    match log.remove_audio(&c).await {
        Ok(true) => {}
        other => fail("removing stored audio says so", other),
    }
    match (log.has_audio(&c).await, log.remove_audio(&c).await) {
        (Ok(false), Ok(false)) => {}
        other => fail(
            "removed audio is gone, and removing again finds none",
            other,
        ),
    }
    if events(log, &c).await.len() != 2 {
        fail("removing the audio keeps the events", &c);
    }

    let retention = |part, before| async move {
        match log.retention_due(part, at(before)).await {
            Ok(due) => due.contains(c_ref),
            Err(e) => fail("events due for retention are listed", e),
        }
    };
    let future = 4_000_000_000;
    if retention(RawPart::Transcript, 0).await || retention(RawPart::Audio, 0).await {
        fail(
            "events received after the cutoff are not due for retention",
            &c,
        );
    }
    if !retention(RawPart::Transcript, future).await || !retention(RawPart::Audio, future).await {
        fail(
            "events received before the cutoff are due for retention",
            &c,
        );
    }
    let carried_out = DeletionRecord {
        transcript_deleted_at: Some(at(1_001)),
        audio_deleted_at: Some(at(1_002)),
        ..schedule
    };
    if let Err(e) = log.record_deletion(&c, &carried_out).await {
        fail("a deletion can be recorded again", e);
    }
    if due_at(5_000).await {
        fail("a deletion carried out is no longer due", &c);
    }
    if retention(RawPart::Transcript, future).await || retention(RawPart::Audio, future).await {
        fail("a part already deleted is not due for retention", &c);
    }
    if let Err(e) = log.remove_conversation(&c).await {
        fail("a conversation can be removed", e);
    }
    match log.deletion(&c).await {
        Ok(None) => {}
        other => fail("removing a conversation removes its deletion record", other),
    }
}

/// Forgetting the quarantined bodies refused before a time removes them
/// all, and only them, and the usage follows. Run it last: it empties the
/// quarantine of every body refused before now.
pub async fn old_quarantined_bodies_are_forgotten<L: EventLog + ?Sized>(log: &L) {
    let body = b"not json, refused before the cutoff";
    let id = match append(log, body).await {
        Appended::Refused {
            quarantined: Ok(id),
            ..
        } => id,
        other => fail("a body that is not JSON is quarantined", other),
    };
    let Some(received) = super::quarantine_received(&id) else {
        fail("a quarantine id tells when it arrived", id)
    };
    match log.forget_quarantined_before(received).await {
        Ok(_) => {}
        Err(e) => fail("old quarantined bodies can be forgotten", e),
    }
    let listed = || async move {
        match log.quarantined(None, usize::MAX).await {
            Ok(listed) => listed.into_iter().map(|q| q.id).collect::<Vec<_>>(),
            Err(e) => fail("the quarantine is listed", e),
        }
    };
    if !listed().await.contains(&id) {
        fail("a body refused at the cutoff is kept", &id);
    }
    let later = at(received.as_secs() + 1);
    match log.forget_quarantined_before(later).await {
        Ok(n) if n >= 1 => {}
        other => fail("bodies refused before the cutoff are forgotten", other),
    }
    let left = listed().await;
    if !left.is_empty() {
        fail("no body refused before the cutoff is left", left);
    }
    let usage = log.quarantine_usage();
    if (usage.files, usage.bytes) != (0, 0) {
        fail("the quarantine's usage follows", usage);
    }
}
