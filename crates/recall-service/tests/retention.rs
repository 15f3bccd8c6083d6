//! ElevenLabs' deletion settings and the retention windows, on the
//! filesystem event log and the in-memory call index, with a clock the
//! tests move.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{Call, MARGARET};
use recall_memory::{InMemoryStore, ListRequest, MemoryStore};
use recall_model::{ConversationId, PhoneNumber, UnixTimestamp, WebhookType};
use recall_service::{
    AnalyticsQuery, CallIndex, DeletionPolicy, InMemoryCallIndex, PayloadStore, RetentionReport,
    Service, ServiceConfig,
};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

const DAY: i64 = 24 * 3600;
const SAID: &str = "My daughter's wedding is on the ninth";

/// A service over a temporary folder, an in-memory store and index, and
/// a clock the test sets.
struct Setup {
    dir: tempfile::TempDir,
    store: InMemoryStore,
    index: Arc<InMemoryCallIndex>,
    clock: Arc<AtomicI64>,
    config: ServiceConfig,
    service: Service,
}

impl Setup {
    fn new(config: ServiceConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = InMemoryStore::new();
        let index = Arc::new(InMemoryCallIndex::new());
        let clock = Arc::new(AtomicI64::new(UnixTimestamp::now().as_secs()));
        let service = build(&dir, &store, &index, &clock, &config);
        Self {
            dir,
            store,
            index,
            clock,
            config,
            service,
        }
    }

    /// Another service over the same folder, store and index.
    fn restart(&mut self) {
        self.service = build(
            &self.dir,
            &self.store,
            &self.index,
            &self.clock,
            &self.config,
        );
    }

    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn set_now(&self, secs: i64) {
        self.clock.store(secs, Ordering::SeqCst);
    }

    async fn ingest(&self, body: &[u8]) {
        assert!(!self.service.ingest_bytes(body).await.unwrap().duplicate);
    }

    async fn sweep(&self) -> RetentionReport {
        self.service.sweep_retention().await
    }

    async fn body(&self, conversation: &str, kind: WebhookType) -> String {
        let mut raw = String::new();
        let c = id(conversation);
        let log = self.service.event_log();
        let mut body = log.open_event(&c, &kind).await.unwrap().expect("stored");
        body.read_to_string(&mut raw).await.unwrap();
        raw
    }

    async fn memories(&self) -> Vec<String> {
        let caller = PhoneNumber::parse(MARGARET).unwrap();
        let page = self
            .store
            .list(&caller, &ListRequest::first(100))
            .await
            .unwrap();
        page.items.into_iter().map(|m| m.content).collect()
    }
}

fn build(
    dir: &tempfile::TempDir,
    store: &InMemoryStore,
    index: &Arc<InMemoryCallIndex>,
    clock: &Arc<AtomicI64>,
    config: &ServiceConfig,
) -> Service {
    let clock = Arc::clone(clock);
    Service::builder(
        Arc::new(store.clone()),
        PayloadStore::open(dir.path()).unwrap(),
    )
    .config(config.clone())
    .call_index(index.clone())
    .clock(move || UnixTimestamp::from_secs(clock.load(Ordering::SeqCst)).unwrap())
    .build()
}

fn id(raw: &str) -> ConversationId {
    ConversationId::parse(raw).unwrap()
}

/// A call of Margaret's that taught her name, with a transcript and,
/// when `deletion` is given, ElevenLabs' deletion settings.
fn call(conversation: &str, deletion: Option<(i64, bool, bool)>) -> Vec<u8> {
    let call = Call::new(conversation, MARGARET)
        .fact("first_name", "Margaret")
        .summary("Margaret planned her daughter's wedding.", "Wedding plans")
        .transcript(json!([{"role": "user", "message": SAID, "time_in_call_secs": 3}]));
    with_deletion(&call, deletion)
}

/// `call`'s body with ElevenLabs' deletion settings, when given.
fn with_deletion(call: &Call<'_>, deletion: Option<(i64, bool, bool)>) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&call.body()).unwrap();
    if let Some((time, transcript, audio)) = deletion {
        body["data"]["metadata"]["deletion_settings"] = json!({
            "deletion_time_unix_secs": time,
            "deleted_logs_at_time_unix_secs": null,
            "deleted_audio_at_time_unix_secs": null,
            "deleted_transcript_at_time_unix_secs": null,
            "delete_transcript_and_pii": transcript,
            "delete_audio": audio,
        });
    }
    serde_json::to_vec(&body).unwrap()
}

fn audio(conversation: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"type": "post_call_audio", "event_timestamp": 1_739_537_400,
        "data": {"agent_id": "agent_front_desk", "conversation_id": conversation,
            "full_audio": "SUQzBAAAAAAA"}}),
    )
    .unwrap()
}

/// Everything of the call that is Recall's raw copy is gone: the bodies
/// hold neither the transcript, nor the summary, nor the audio; the index
/// has the figures without the transcript.
async fn assert_raw_copies_deleted(setup: &Setup, conversation: &str) {
    let c = id(conversation);
    let transcription = setup
        .body(conversation, WebhookType::PostCallTranscription)
        .await;
    for gone in [SAID, "wedding", "Wedding", "first_name"] {
        assert!(!transcription.contains(gone), "{gone} in {transcription}");
    }
    let audio_body = setup.body(conversation, WebhookType::PostCallAudio).await;
    assert!(!audio_body.contains("SUQz"), "{audio_body}");
    assert!(!setup.service.event_log().has_audio(&c).await.unwrap());
    let detail = setup.service.call_detail(&c).await.unwrap().unwrap();
    assert!(detail.transcript.is_empty());
    assert!(!detail.has_audio);
    assert_eq!(detail.call.duration, Some(42.0));
    assert_eq!(detail.call.successful, Some(true));
    assert_eq!(detail.call.summary, None);
    assert_eq!(detail.caller_phone.unwrap().as_str(), MARGARET);
    assert_eq!(
        detail.transcript_deleted_at.map(|t| t.as_secs()),
        Some(setup.now())
    );
    assert_eq!(
        detail.audio_deleted_at.map(|t| t.as_secs()),
        Some(setup.now())
    );
    let analytics = setup
        .index
        .analytics(AnalyticsQuery::default())
        .await
        .unwrap();
    assert_eq!(
        (
            analytics.total_calls,
            analytics.avg_duration,
            analytics.success_rate
        ),
        (1, 42.0, 1.0)
    );
    assert!(analytics.data_collected.is_empty(), "{analytics:?}");
}

#[tokio::test]
async fn a_deletion_time_already_past_deletes_the_raw_copies_when_processed() {
    let setup = Setup::new(ServiceConfig::default());
    let past = setup.now() - 60;
    setup
        .ingest(&call("conv_past", Some((past, true, true))))
        .await;
    // The audio comes after the transcription: its copy goes as soon as
    // it is decoded.
    setup.ingest(&audio("conv_past")).await;
    let report = setup.service.process_pending().await;
    assert_eq!((report.processed, report.failed), (2, 0), "{report:?}");

    assert_raw_copies_deleted(&setup, "conv_past").await;
    // Policy `raw`: the memories learnt from the call stay.
    let memories = setup.memories().await;
    assert!(
        memories.iter().any(|m| m.contains("Margaret")),
        "{memories:?}"
    );
    let stats = setup.service.stats();
    assert_eq!(stats.transcripts_deleted_by_settings(), 1);
    assert!(stats.audio_deleted_by_settings() >= 1);
    assert_eq!(stats.memories_deleted(), 0);
    // Nothing is left to do.
    assert_eq!(setup.sweep().await, RetentionReport::default());

    // A reindex rebuilds the same call, figures without the transcript.
    setup.service.reindex().await.unwrap();
    let detail = setup
        .service
        .call_detail(&id("conv_past"))
        .await
        .unwrap()
        .unwrap();
    assert!(detail.transcript.is_empty());
    assert_eq!(detail.call.duration, Some(42.0));
    assert_eq!(detail.caller_phone.unwrap().as_str(), MARGARET);
}

#[tokio::test]
async fn a_deletion_time_in_the_future_waits_for_the_sweep_and_survives_a_restart() {
    let mut setup = Setup::new(ServiceConfig::default());
    let due = setup.now() + 3600;
    setup
        .ingest(&call("conv_later", Some((due, true, true))))
        .await;
    setup.ingest(&audio("conv_later")).await;
    setup.service.process_pending().await;

    // Not due yet: everything is kept.
    assert_eq!(setup.sweep().await, RetentionReport::default());
    let kept = setup
        .body("conv_later", WebhookType::PostCallTranscription)
        .await;
    assert!(kept.contains(SAID));
    let c = id("conv_later");
    assert!(setup.service.event_log().has_audio(&c).await.unwrap());
    let detail = setup.service.call_detail(&c).await.unwrap().unwrap();
    assert_eq!(detail.transcript.len(), 1);
    assert_eq!(
        (detail.transcript_deleted_at, detail.audio_deleted_at),
        (None, None)
    );

    // The schedule is in the event log: a restarted service carries it out.
    setup.restart();
    setup.set_now(due);
    let report = setup.sweep().await;
    assert_eq!((report.transcripts, report.audio), (1, 1), "{report:?}");
    assert_raw_copies_deleted(&setup, "conv_later").await;
    assert_eq!(setup.sweep().await, RetentionReport::default());
}

#[tokio::test]
async fn a_call_without_deletion_settings_is_kept() {
    let setup = Setup::new(ServiceConfig::default());
    setup.ingest(&call("conv_kept", None)).await;
    setup.service.process_pending().await;
    setup.set_now(setup.now() + 3650 * DAY);
    assert_eq!(setup.sweep().await, RetentionReport::default());
    let c = id("conv_kept");
    assert_eq!(setup.service.event_log().deletion(&c).await.unwrap(), None);
    let kept = setup
        .body("conv_kept", WebhookType::PostCallTranscription)
        .await;
    assert!(kept.contains(SAID));
    let detail = setup.service.call_detail(&c).await.unwrap().unwrap();
    assert_eq!(detail.transcript.len(), 1);
    assert_eq!(detail.transcript_deleted_at, None);
}

#[tokio::test]
async fn only_what_the_settings_name_is_deleted() {
    let setup = Setup::new(ServiceConfig::default());
    let past = setup.now() - 1;
    setup
        .ingest(&call("conv_audio_only", Some((past, false, true))))
        .await;
    setup.ingest(&audio("conv_audio_only")).await;
    setup.service.process_pending().await;
    let c = id("conv_audio_only");
    assert!(!setup.service.event_log().has_audio(&c).await.unwrap());
    let detail = setup.service.call_detail(&c).await.unwrap().unwrap();
    assert_eq!(detail.transcript.len(), 1, "the transcript stays");
    assert_eq!(detail.transcript_deleted_at, None);
    assert!(detail.audio_deleted_at.is_some());
}

#[tokio::test]
async fn policy_all_also_deletes_the_memories_learnt_from_the_call() {
    let setup = Setup::new(ServiceConfig {
        deletion_policy: DeletionPolicy::All,
        ..ServiceConfig::default()
    });
    // Another call's memories are not touched.
    setup.ingest(&call("conv_other", None)).await;
    setup.service.process_pending().await;
    let before = setup.memories().await.len();
    assert!(before > 0);
    let past = setup.now() - 1;
    let roses = Call::new("conv_all", MARGARET).summary("Margaret asked about roses.", "Roses");
    setup
        .ingest(&with_deletion(&roses, Some((past, true, false))))
        .await;
    setup.service.process_pending().await;
    let after = setup.memories().await;
    assert!(!after.iter().any(|m| m.contains("roses")), "{after:?}");
    assert_eq!(after.len(), before, "{after:?}");
    assert!(setup.service.stats().memories_deleted() >= 1);
}

#[tokio::test]
async fn policy_off_ignores_the_deletion_settings() {
    let setup = Setup::new(ServiceConfig {
        deletion_policy: DeletionPolicy::Off,
        ..ServiceConfig::default()
    });
    let past = setup.now() - 1;
    setup
        .ingest(&call("conv_off", Some((past, true, true))))
        .await;
    setup.service.process_pending().await;
    assert_eq!(setup.sweep().await, RetentionReport::default());
    let kept = setup
        .body("conv_off", WebhookType::PostCallTranscription)
        .await;
    assert!(kept.contains(SAID));
    let c = id("conv_off");
    assert_eq!(setup.service.event_log().deletion(&c).await.unwrap(), None);
}

#[tokio::test]
async fn the_events_window_deletes_old_transcripts_and_keeps_recent_ones() {
    let setup = Setup::new(ServiceConfig {
        retain_events: Some(Duration::from_secs(30 * DAY as u64)),
        ..ServiceConfig::default()
    });
    setup.ingest(&call("conv_old", None)).await;
    setup.ingest(&audio("conv_old")).await;
    setup.service.process_pending().await;
    let start = setup.now();
    setup.set_now(start + 29 * DAY);
    assert_eq!(setup.sweep().await, RetentionReport::default());
    setup.set_now(start + 31 * DAY);
    let report = setup.sweep().await;
    assert_eq!((report.transcripts, report.audio), (1, 0), "{report:?}");
    let c = id("conv_old");
    let detail = setup.service.call_detail(&c).await.unwrap().unwrap();
    assert!(detail.transcript.is_empty());
    assert_eq!(detail.call.duration, Some(42.0));
    assert!(detail.transcript_deleted_at.is_some());
    // Audio has its own window (unset): it stays.
    assert!(detail.has_audio && detail.audio_deleted_at.is_none());
    assert!(setup.service.event_log().has_audio(&c).await.unwrap());
    assert_eq!(setup.service.stats().transcripts_deleted_by_retention(), 1);
    assert!(!setup.memories().await.is_empty(), "memories stay");
    assert_eq!(setup.sweep().await, RetentionReport::default());
}

#[tokio::test]
async fn the_audio_window_deletes_old_audio_only() {
    let setup = Setup::new(ServiceConfig {
        retain_audio: Some(Duration::from_secs(7 * DAY as u64)),
        ..ServiceConfig::default()
    });
    setup.ingest(&call("conv_loud", None)).await;
    setup.ingest(&audio("conv_loud")).await;
    setup.service.process_pending().await;
    setup.set_now(setup.now() + 8 * DAY);
    let report = setup.sweep().await;
    assert_eq!((report.transcripts, report.audio), (0, 1), "{report:?}");
    let c = id("conv_loud");
    assert!(!setup.service.event_log().has_audio(&c).await.unwrap());
    let audio_body = setup.body("conv_loud", WebhookType::PostCallAudio).await;
    assert!(!audio_body.contains("SUQz"));
    let detail = setup.service.call_detail(&c).await.unwrap().unwrap();
    assert!(!detail.has_audio && detail.audio_deleted_at.is_some());
    assert_eq!(detail.transcript.len(), 1, "the transcript stays");
    assert_eq!(setup.service.stats().audio_deleted_by_retention(), 1);
}

#[tokio::test]
async fn the_callers_window_erases_callers_not_heard_from() {
    let setup = Setup::new(ServiceConfig {
        retain_callers: Some(Duration::from_secs(365 * DAY as u64)),
        ..ServiceConfig::default()
    });
    let now = setup.now();
    let old = Call::new("conv_margaret", MARGARET)
        .fact("first_name", "Margaret")
        .start(now - 400 * DAY);
    let recent = Call::new("conv_bob", common::BOB)
        .fact("first_name", "Bob")
        .start(now - 10 * DAY);
    for c in [&old, &recent] {
        setup.ingest(&c.body()).await;
    }
    setup.service.process_pending().await;
    let report = setup.sweep().await;
    assert_eq!(report.callers, 1, "{report:?}");
    assert!(setup.memories().await.is_empty(), "Margaret is erased");
    let log = setup.service.event_log();
    assert!(log.events(&id("conv_margaret")).await.unwrap().is_empty());
    assert!(!log.events(&id("conv_bob")).await.unwrap().is_empty());
    let bob = PhoneNumber::parse(common::BOB).unwrap();
    let bobs = setup
        .store
        .list(&bob, &ListRequest::first(10))
        .await
        .unwrap();
    assert!(!bobs.items.is_empty(), "Bob is kept");
    assert_eq!(setup.service.stats().callers_erased_by_retention(), 1);
    assert_eq!(setup.sweep().await, RetentionReport::default());
}

#[tokio::test]
async fn the_sweep_runs_at_start_and_then_every_interval() {
    let setup = Setup::new(ServiceConfig {
        retention_sweep: Duration::from_millis(50),
        ..ServiceConfig::default()
    });
    let due = setup.now() + 3600;
    setup
        .ingest(&call("conv_swept", Some((due, true, false))))
        .await;
    setup.service.process_pending().await;
    let sweeper = setup.service.spawn_retention();
    setup.set_now(due + 1);
    let c = id("conv_swept");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let detail = setup.service.call_detail(&c).await.unwrap().unwrap();
        if detail.transcript_deleted_at.is_some() {
            assert!(detail.transcript.is_empty());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweep never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sweeper.shutdown().await;
}

#[tokio::test]
async fn a_pending_deletion_moves_with_its_call_to_another_store() {
    let setup = Setup::new(ServiceConfig::default());
    let due = setup.now() + 3600;
    setup
        .ingest(&call("conv_moved", Some((due, true, true))))
        .await;
    setup.service.process_pending().await;
    let target_log = recall_service::InMemoryEventLog::new();
    let target = Service::builder(Arc::new(InMemoryStore::new()), target_log.clone())
        .call_index(Arc::new(InMemoryCallIndex::new()))
        .build();
    setup.service.copy_to(&target, |_| {}).await.unwrap();
    let c = id("conv_moved");
    let moved = target.event_log().deletion(&c).await.unwrap();
    assert_eq!(moved, setup.service.event_log().deletion(&c).await.unwrap());
    assert_eq!(moved.and_then(|r| r.due).map(|t| t.as_secs()), Some(due));
}

#[tokio::test]
async fn the_events_window_deletes_old_quarantined_bodies_too() {
    let setup = Setup::new(ServiceConfig {
        retain_events: Some(Duration::from_secs(30 * DAY as u64)),
        ..ServiceConfig::default()
    });
    let refused = format!("not json, but it names {MARGARET}");
    assert!(
        setup
            .service
            .ingest_bytes(refused.as_bytes())
            .await
            .is_err()
    );
    let log = setup.service.event_log();
    assert_eq!(log.quarantined(None, 10).await.unwrap().len(), 1);
    assert_eq!(setup.sweep().await, RetentionReport::default());
    setup.set_now(setup.now() + 31 * DAY);
    let report = setup.sweep().await;
    assert_eq!(report.quarantined, 1, "{report:?}");
    assert!(log.quarantined(None, 10).await.unwrap().is_empty());
    assert_eq!(log.quarantine_usage().files, 0);
    assert_eq!(setup.service.stats().quarantined_deleted_by_retention(), 1);
}

#[tokio::test]
async fn a_call_the_index_never_took_is_still_deleted() {
    let setup = Setup::new(ServiceConfig::default());
    let past = setup.now() - 1;
    let mut body: Value =
        serde_json::from_slice(&call("conv_no_agent", Some((past, true, false)))).unwrap();
    // Not a usable agent id: the call index refuses the call.
    body["data"]["agent_id"] = json!("agents/front desk");
    setup.ingest(&serde_json::to_vec(&body).unwrap()).await;
    setup.service.process_pending().await;
    let c = id("conv_no_agent");
    let record = setup
        .service
        .event_log()
        .deletion(&c)
        .await
        .unwrap()
        .unwrap();
    assert!(record.transcript_deleted_at.is_some(), "{record:?}");
    let stored = setup
        .body("conv_no_agent", WebhookType::PostCallTranscription)
        .await;
    assert!(!stored.contains(SAID), "{stored}");
    assert_eq!(setup.service.stats().deletion_failures(), 0);
    assert_eq!(setup.sweep().await, RetentionReport::default());
}
