//! `recall import` against a local emulator of the ElevenLabs API:
//! memories created, duplicates with the webhook, idempotency, resume,
//! dry run, withheld callers, retries and a refused key.

mod emulator;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use emulator::{Caller, Conversation, Emulator, Faults, KEY};
use recall_memory::{InMemoryStore, ListRequest, MemoryStore};
use recall_model::{ConversationId, PhoneNumber};
use recall_server::config::{Config, EnvVars};
use recall_server::import::{
    CHECKPOINT_FILE, Counts, ElevenLabsClient, ImportOptions, Importer, Progress, RetryPolicy,
    Summary, parse_when,
};
use recall_service::Service;

/// A day in January 2026.
const T0: i64 = 1_768_000_000;

struct Env {
    dir: tempfile::TempDir,
    store: Arc<InMemoryStore>,
    service: Service,
}

fn config(dir: &Path, store: &str) -> Config {
    Config::load(
        None,
        &EnvVars::from_pairs([
            ("RECALL_STORE", store),
            ("RECALL_DATA_DIR", &dir.display().to_string()),
        ]),
    )
    .unwrap()
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(InMemoryStore::new());
    let service = recall_server::open_service(&config(dir.path(), "memory"), Some(store.clone()))
        .await
        .unwrap();
    Env {
        dir,
        store,
        service,
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(3),
    }
}

impl Env {
    fn options(&self) -> ImportOptions {
        ImportOptions {
            page_size: 2,
            checkpoint: Some(self.dir.path().join(CHECKPOINT_FILE)),
            ..ImportOptions::default()
        }
    }

    async fn import(&self, emu: &Emulator, options: &ImportOptions) -> anyhow::Result<Summary> {
        self.import_with_key(emu, options, KEY).await
    }

    async fn import_with_key(
        &self,
        emu: &Emulator,
        options: &ImportOptions,
        key: &str,
    ) -> anyhow::Result<Summary> {
        let client = ElevenLabsClient::new(&emu.url, key, fast_retries()).unwrap();
        let progress = Progress::silent();
        let counts = Counts::default();
        Importer::new(&self.service, &client, options, &progress, &counts)
            .run()
            .await
    }

    async fn stored_conversations(&self) -> Vec<String> {
        let ids = self.service.event_log().conversations().await.unwrap();
        ids.iter().map(ToString::to_string).collect()
    }
}

async fn memories(store: &dyn MemoryStore, number: &str) -> Vec<String> {
    let user = PhoneNumber::parse(number).unwrap();
    let page = store.list(&user, &ListRequest::first(100)).await.unwrap();
    page.items.into_iter().map(|m| m.content).collect()
}

fn number(n: usize) -> String {
    format!("+1612978{n:04}")
}

/// Three finished calls from three callers, a web call, a withheld caller,
/// a call still in progress and one deleted between list and details.
fn workspace() -> Vec<Conversation> {
    let mut all: Vec<Conversation> = (0..3)
        .map(|i| {
            Conversation::call(
                &format!("conv_ok{i}"),
                "agent_a",
                T0 + i as i64 * 60,
                &number(i),
            )
        })
        .collect();
    all.push(Conversation {
        caller: Caller::Web,
        ..Conversation::call("conv_web", "agent_a", T0 + 500, "")
    });
    all.push(Conversation {
        caller: Caller::Withheld,
        ..Conversation::call("conv_withheld", "agent_a", T0 + 600, "")
    });
    all.push(Conversation {
        status: "in-progress",
        ..Conversation::call("conv_live", "agent_a", T0 + 700, &number(7))
    });
    all.push(Conversation::call(
        "conv_gone",
        "agent_a",
        T0 + 800,
        &number(8),
    ));
    all
}

fn faults_gone() -> Faults {
    Faults {
        gone: ["conv_gone".to_owned()].into(),
        trailing_empty_page: true,
        ..Faults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_calls_become_memories_and_the_rest_is_counted_and_skipped() {
    let env = env().await;
    let emu = Emulator::start(workspace(), faults_gone());
    let summary = env.import(&emu, &env.options()).await.unwrap();

    assert_eq!(summary.listed, 7, "{summary:?}");
    assert_eq!(summary.imported, 3, "{summary:?}");
    assert_eq!(summary.skipped_withheld_caller, 2, "{summary:?}");
    assert_eq!(summary.skipped_not_done, 1, "{summary:?}");
    assert_eq!(summary.failed, 1, "the 404 is counted: {summary:?}");
    assert_eq!(summary.skipped_duplicate, 0);
    let processed = summary.processed.expect("processed at the end");
    assert_eq!(processed.processed, 3, "{processed:?}");
    assert_eq!(processed.failed + processed.retrying, 0, "{processed:?}");

    for i in 0..3 {
        let found = memories(env.store.as_ref(), &number(i)).await;
        let expected = format!("order conv_ok{i}");
        assert!(
            found.iter().any(|m| m.contains(&expected)),
            "caller {i} remembers their call: {found:?}"
        );
    }
    // Withheld and web callers are never keyed nor stored; neither is the
    // unfinished call.
    let mut stored = env.stored_conversations().await;
    stored.sort();
    assert_eq!(stored, ["conv_ok0", "conv_ok1", "conv_ok2"]);
    assert!(memories(env.store.as_ref(), &number(7)).await.is_empty());
    assert!(memories(env.store.as_ref(), "+266696687").await.is_empty());
    // Done: no checkpoint is left; every request carried the key.
    assert!(!env.dir.path().join(CHECKPOINT_FILE).exists());
    let hits = emu.hits();
    assert_eq!(hits.without_key, 0);
    // 7 conversations, 2 a page, then the trailing empty page.
    assert_eq!(hits.list, 5, "{:?}", hits.list_queries);
    assert!(
        !hits.details.contains_key("conv_live"),
        "unfinished calls are not fetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_again_adds_nothing_and_fetches_nothing_again() {
    let env = env().await;
    let emu = Emulator::start(workspace(), faults_gone());
    env.import(&emu, &env.options()).await.unwrap();
    let before: Vec<Vec<String>> = all_memories(&env, 3).await;
    let details_before = emu.hits().details_total();

    let again = env.import(&emu, &env.options()).await.unwrap();
    assert_eq!(again.imported, 0, "{again:?}");
    assert_eq!(again.skipped_duplicate, 3, "{again:?}");
    assert_eq!(again.processed.unwrap().memories_written, 0);
    assert_eq!(
        all_memories(&env, 3).await,
        before,
        "no memory added or changed"
    );
    // Already stored conversations are not fetched again (only the ones
    // that were skipped are: withheld, web, gone).
    assert_eq!(emu.hits().details_total() - details_before, 3);
}

async fn all_memories(env: &Env, callers: usize) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for i in 0..callers {
        let mut found = memories(env.store.as_ref(), &number(i)).await;
        found.sort();
        all.push(found);
    }
    all
}

/// The webhook body ElevenLabs would send for the same conversation.
fn webhook_body(emu: &Emulator, conversation: &Conversation) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "post_call_transcription",
        "event_timestamp": conversation.start + 30,
        "data": emu.details_of(conversation),
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_and_a_webhook_of_the_same_conversation_are_one_event() {
    let env = env().await;
    let all = workspace();
    let emu = Emulator::start(all.clone(), faults_gone());

    // A webhook first: the import counts it as a duplicate.
    let ack = env
        .service
        .ingest_bytes(&webhook_body(&emu, &all[0]))
        .await
        .unwrap();
    assert!(!ack.duplicate);
    let summary = env.import(&emu, &env.options()).await.unwrap();
    assert_eq!(summary.imported, 2, "{summary:?}");
    assert_eq!(summary.skipped_duplicate, 1, "{summary:?}");

    // A webhook after the import: the service sees a duplicate.
    let ack = env
        .service
        .ingest_bytes(&webhook_body(&emu, &all[1]))
        .await
        .unwrap();
    assert!(ack.duplicate, "the imported conversation is the same event");
    assert_eq!(
        ack.conversation_id,
        ConversationId::parse("conv_ok1").unwrap()
    );
    let events = env
        .service
        .event_log()
        .events(&ConversationId::parse("conv_ok1").unwrap())
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_and_writes_nothing() {
    let env = env().await;
    let emu = Emulator::start(workspace(), faults_gone());
    let options = ImportOptions {
        dry_run: true,
        ..env.options()
    };
    let summary = env.import(&emu, &options).await.unwrap();
    assert!(summary.dry_run);
    assert_eq!(summary.listed, 7);
    assert_eq!(summary.imported, 3, "would import: {summary:?}");
    assert_eq!(summary.skipped_withheld_caller, 2);
    assert_eq!(summary.skipped_not_done, 1);
    assert_eq!(summary.failed, 1);
    assert!(summary.processed.is_none());
    assert!(env.stored_conversations().await.is_empty());
    assert!(memories(env.store.as_ref(), &number(0)).await.is_empty());
    assert!(!env.dir.path().join(CHECKPOINT_FILE).exists());
    assert!(
        summary.line().contains("would import 3"),
        "{}",
        summary.line()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out_and_server_errors_retried() {
    let env = env().await;
    let emu = Emulator::start(
        workspace(),
        Faults {
            list_429: 1,
            retry_after: "1",
            detail_500: [("conv_ok1".to_owned(), 2)].into(),
            ..faults_gone()
        },
    );
    let started = std::time::Instant::now();
    let summary = env.import(&emu, &env.options()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(summary.imported, 3, "{summary:?}");
    assert_eq!(summary.failed, 1, "only the deleted one: {summary:?}");
    let hits = emu.hits();
    assert_eq!(hits.too_many, 1);
    assert_eq!(hits.server_errors, 2);
    assert_eq!(hits.details["conv_ok1"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let env = env().await;
    let emu = Emulator::start(
        workspace(),
        Faults {
            detail_500: [("conv_ok2".to_owned(), 1000)].into(),
            ..faults_gone()
        },
    );
    let summary = env.import(&emu, &env.options()).await.unwrap();
    assert_eq!(summary.imported, 2, "{summary:?}");
    assert_eq!(summary.failed, 2, "{summary:?}");
    assert_eq!(emu.hits().details["conv_ok2"], fast_retries().max_attempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_stops_at_once_and_says_what_to_check() {
    let env = env().await;
    let emu = Emulator::start(workspace(), faults_gone());
    let wrong = "sk_wrong_key_do_not_print";
    let error = env
        .import_with_key(&emu, &env.options(), wrong)
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    for needle in [
        "401",
        "ELEVENLABS_API_KEY",
        "ELEVENLABS_API_URL",
        "workspace",
        &emu.url,
    ] {
        assert!(message.contains(needle), "{needle} in {message}");
    }
    assert!(
        !message.contains(wrong),
        "the key is never shown: {message}"
    );
    assert_eq!(emu.hits().list, 1, "no retry of a 401");
    assert!(env.stored_conversations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_the_time_window_filter_the_listing() {
    let env = env().await;
    let day = 86_400;
    let all = vec![
        Conversation::call("conv_a_old", "agent_a", T0 - 10 * day, &number(1)),
        Conversation::call("conv_a_in", "agent_a", T0, &number(2)),
        Conversation::call("conv_b_in", "agent_b", T0 + 60, &number(3)),
        Conversation::call("conv_c_in", "agent_c", T0 + 120, &number(4)),
        Conversation::call("conv_a_new", "agent_a", T0 + 10 * day, &number(5)),
    ];
    let emu = Emulator::start(all, Faults::default());
    let options = ImportOptions {
        agents: vec!["agent_a".into(), "agent_b".into()],
        since: Some((T0 - day).to_string()),
        until: Some((T0 + day).to_string()),
        ..env.options()
    };
    let summary = env.import(&emu, &options).await.unwrap();
    assert_eq!(summary.imported, 2, "{summary:?}");
    let mut stored = env.stored_conversations().await;
    stored.sort();
    assert_eq!(stored, ["conv_a_in", "conv_b_in"]);
    let queries = emu.hits().list_queries;
    assert!(queries.iter().all(|q| {
        q.get("call_start_after_unix") == Some(&(T0 - day).to_string())
            && q.get("call_start_before_unix") == Some(&(T0 + day).to_string())
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_stored_as_the_audio_webhook_would() {
    let env = env().await;
    let emu = Emulator::start(workspace(), faults_gone());
    let options = ImportOptions {
        audio: true,
        ..env.options()
    };
    let summary = env.import(&emu, &options).await.unwrap();
    assert_eq!(summary.audio, 3, "{summary:?}");
    for i in 0..3 {
        let id = ConversationId::parse(&format!("conv_ok{i}")).unwrap();
        let audio = env.service.event_log().open_audio(&id).await.unwrap();
        let mut audio = audio.expect("the recording is decoded and stored");
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut audio.reader, &mut bytes)
            .await
            .unwrap();
        assert_eq!(bytes, emulator::audio_bytes(id.as_str()));
    }
    // Again: nothing more is fetched.
    let audio_hits = emu.hits().audio;
    let again = env.import(&emu, &options).await.unwrap();
    assert_eq!((again.imported, again.audio), (0, 0), "{again:?}");
    assert_eq!(emu.hits().audio, audio_hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_resumes_from_its_checkpoint() {
    let env = env().await;
    let all: Vec<Conversation> = (0..12)
        .map(|i| {
            Conversation::call(
                &format!("conv_{i:02}"),
                "agent_a",
                T0 + i as i64,
                &number(i),
            )
        })
        .collect();
    let emu = Emulator::start(all, Faults::default());
    let options = ImportOptions {
        concurrency: 1,
        ..env.options()
    };
    // Interrupted (dropped, as Ctrl-C does) once 3 pages are imported.
    let client = ElevenLabsClient::new(&emu.url, KEY, fast_retries()).unwrap();
    let (progress, counts) = (Progress::silent(), Counts::default());
    let importer = Importer::new(&env.service, &client, &options, &progress, &counts);
    let checkpoint = env.dir.path().join(CHECKPOINT_FILE);
    tokio::select! {
        _ = importer.run() => panic!("the import should have been interrupted"),
        () = async {
            while counts.snapshot().imported < 7 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } => {}
    }
    assert!(checkpoint.exists(), "a checkpoint after each page");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert!(saved["pages"].as_u64().unwrap() >= 3, "{saved}");

    let resumed = env.import(&emu, &options).await.unwrap();
    assert!(resumed.resumed);
    assert!(
        resumed.listed < 12,
        "listing resumed, not restarted: {resumed:?}"
    );
    assert_eq!(env.stored_conversations().await.len(), 12);
    for i in 0..12 {
        assert!(!memories(env.store.as_ref(), &number(i)).await.is_empty());
    }
    assert!(!checkpoint.exists());
}

#[test]
fn the_binary_resumes_after_being_killed_and_never_prints_the_key() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let all: Vec<Conversation> = (0..30)
        .map(|i| {
            Conversation::call(
                &format!("conv_{i:02}"),
                "agent_a",
                T0 + i as i64,
                &number(i),
            )
        })
        .collect();
    let emu = runtime.block_on(async {
        Emulator::start(
            all,
            Faults {
                detail_delay: Duration::from_millis(40),
                ..Faults::default()
            },
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let recall = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_recall"));
        command
            .current_dir(dir.path())
            .env_clear()
            .env("RECALL_DATA_DIR", dir.path().join("data"))
            .env("ELEVENLABS_API_KEY", KEY)
            .env("ELEVENLABS_API_URL", &emu.url)
            .args(["import", "--page-size", "3", "--concurrency", "1"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let mut child = recall(&[]).spawn().unwrap();
    let checkpoint = dir.path().join("data").join(CHECKPOINT_FILE);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(checkpoint.exists() && emu.hits().details_total() >= 10) {
        assert!(std::time::Instant::now() < deadline, "no progress");
        assert!(child.try_wait().unwrap().is_none(), "exited too early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let fetched_before = emu.hits().details_total();
    assert!(fetched_before < 30);

    let out = recall(&[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("import (resumed): listed "), "{stdout}");
    assert!(
        stderr.contains("resuming from"),
        "plain lines off a terminal: {stderr}"
    );
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
    // Each conversation's details fetched at most once more than needed:
    // the pages done before the kill are not listed again.
    let again = emu.hits().details_total() - fetched_before;
    assert!(again < 30, "{again} details fetched after resuming");
    assert!(!checkpoint.exists());

    // Every caller has their memory, in the embedded store on disk.
    let config = config(&dir.path().join("data"), "embedded");
    runtime.block_on(async {
        let store = recall_server::startup::open_store(&config).await.unwrap();
        for i in 0..30 {
            assert!(
                !memories(store.as_ref(), &number(i)).await.is_empty(),
                "caller {i}"
            );
        }
    });
}

fn recall_command(dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_recall"));
    command
        .current_dir(dir)
        .env_clear()
        .env("RECALL_DATA_DIR", dir.join("data"));
    command
}

#[test]
fn the_command_names_the_missing_key_and_a_bad_base_url() {
    let dir = tempfile::tempdir().unwrap();
    let out = recall_command(dir.path()).arg("import").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ELEVENLABS_API_KEY"), "{stderr}");

    let out = recall_command(dir.path())
        .arg("import")
        .env("ELEVENLABS_API_KEY", KEY)
        .env("ELEVENLABS_API_URL", "api.elevenlabs.io")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ELEVENLABS_API_URL"), "{stderr}");
    assert!(
        stderr.contains("residency"),
        "says what is allowed: {stderr}"
    );
    assert!(!stderr.contains(KEY));

    let out = recall_command(dir.path())
        .args(["import", "--since", "last tuesday"])
        .env("ELEVENLABS_API_KEY", KEY)
        .env("ELEVENLABS_API_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--since") && stderr.contains("90d"),
        "{stderr}"
    );
}

#[test]
fn since_and_until_take_dates_times_and_durations() {
    let now = 1_769_904_000; // 2026-02-01T00:00:00Z
    assert_eq!(parse_when("90d", now, false), Ok(now - 90 * 86_400));
    assert_eq!(parse_when("12h", now, false), Ok(now - 12 * 3_600));
    assert_eq!(parse_when("30m", now, false), Ok(now - 1_800));
    assert_eq!(parse_when("2w", now, false), Ok(now - 14 * 86_400));
    assert_eq!(parse_when("2026-01-31", now, false), Ok(now - 86_400));
    assert_eq!(parse_when("2026-01-31", now, true), Ok(now));
    assert_eq!(
        parse_when("2026-01-31T12:00:00Z", now, false),
        Ok(now - 43_200)
    );
    assert_eq!(parse_when("1769904000", now, false), Ok(now));
    for bad in [
        "",
        "9 0",
        "d",
        "90y",
        "2026-13-01",
        "-5d",
        "99999999999999999999d",
    ] {
        let error = parse_when(bad, now, false).unwrap_err();
        assert!(error.contains("allowed"), "{bad}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_must_not_be_empty() {
    let env = env().await;
    let emu = Emulator::start(workspace(), Faults::default());
    let options = ImportOptions {
        since: Some("2026-02-01".into()),
        until: Some("2026-01-01".into()),
        ..env.options()
    };
    let error = env.import(&emu, &options).await.unwrap_err().to_string();
    assert!(
        error.contains("--since") && error.contains("--until"),
        "{error}"
    );
    assert_eq!(emu.hits().list, 0);
}

#[test]
fn ctrl_c_stops_the_binary_with_a_summary_and_the_checkpoint_to_resume() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let all: Vec<Conversation> = (0..30)
        .map(|i| {
            Conversation::call(
                &format!("conv_{i:02}"),
                "agent_a",
                T0 + i as i64,
                &number(i),
            )
        })
        .collect();
    let emu = runtime.block_on(async {
        Emulator::start(
            all,
            Faults {
                detail_delay: Duration::from_millis(40),
                ..Faults::default()
            },
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let child = recall_command(dir.path())
        .env("ELEVENLABS_API_KEY", KEY)
        .env("ELEVENLABS_API_URL", &emu.url)
        .args(["import", "--page-size", "3", "--concurrency", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("data").join(CHECKPOINT_FILE);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(checkpoint.exists() && emu.hits().details_total() >= 7) {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("import interrupted: listed "), "{stderr}");
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    assert!(checkpoint.exists(), "kept for the next run");
    assert!(emu.hits().details_total() < 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_process_the_server_turns_the_import_into_memories_at_its_next_start() {
    let env = env().await;
    let emu = Emulator::start(workspace(), faults_gone());
    let options = ImportOptions {
        process: false,
        ..env.options()
    };
    let summary = env.import(&emu, &options).await.unwrap();
    assert_eq!(summary.imported, 3);
    assert!(summary.processed.is_none());
    assert!(memories(env.store.as_ref(), &number(0)).await.is_empty());

    // The server starts on the same data directory and store.
    let mut config = config(env.dir.path(), "memory");
    config.bind = "127.0.0.1:0".parse().unwrap();
    let app = recall_server::Application::build_with_store(config, Some(env.store.clone()))
        .await
        .unwrap();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for i in 0..3 {
        while memories(env.store.as_ref(), &number(i)).await.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "caller {i} never remembered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    handle.stop(true).await;
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_of_another_import_is_not_resumed() {
    let env = env().await;
    let emu = Emulator::start(workspace(), faults_gone());
    let checkpoint = env.dir.path().join(CHECKPOINT_FILE);
    // An import of agent_b was interrupted after its first page.
    std::fs::write(
        &checkpoint,
        serde_json::json!({
            "base_url": emu.url, "agents": ["agent_b"], "since": null, "until": null,
            "after_unix": null, "before_unix": T0 + 1_000_000, "agent_index": 0,
            "cursor": "cur_2", "pages": 1
        })
        .to_string(),
    )
    .unwrap();
    let summary = env.import(&emu, &env.options()).await.unwrap();
    assert!(!summary.resumed);
    assert_eq!(summary.listed, 7, "from the first page: {summary:?}");
    assert_eq!(summary.imported, 3);
    assert!(!checkpoint.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cursor_resumes_by_time_from_the_oldest_call_imported() {
    let env = env().await;
    let emu = Emulator::start(workspace(), faults_gone());
    let checkpoint = env.dir.path().join(CHECKPOINT_FILE);
    // Interrupted after the calls started at T0 + 500 and later (newest
    // first: gone, live, withheld, web), with a cursor the API no longer
    // accepts.
    std::fs::write(
        &checkpoint,
        serde_json::json!({
            "base_url": emu.url, "agents": [], "since": null, "until": null,
            "after_unix": null, "before_unix": T0 + 1_000_000, "agent_index": 0,
            "cursor": "expired", "pages": 2, "reached_unix": T0 + 500
        })
        .to_string(),
    )
    .unwrap();
    let summary = env.import(&emu, &env.options()).await.unwrap();
    assert!(summary.resumed);
    // The web call (T0 + 500) again, then the three calls before it.
    assert_eq!(summary.listed, 4, "{summary:?}");
    assert_eq!(summary.imported, 3, "{summary:?}");
    assert_eq!(summary.skipped_withheld_caller, 1, "{summary:?}");
    let queries = emu.hits().list_queries;
    assert_eq!(
        queries[0].get("cursor").map(String::as_str),
        Some("expired")
    );
    assert_eq!(queries[1].get("cursor"), None);
    assert_eq!(
        queries[1].get("call_start_before_unix"),
        Some(&(T0 + 501).to_string())
    );
    assert!(!checkpoint.exists());
}
