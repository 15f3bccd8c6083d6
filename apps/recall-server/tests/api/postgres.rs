//! `RECALL_STORE=postgres`: the server keeps memories, events and the call
//! index in PostgreSQL, so two servers on one database answer for each
//! other. Each test uses a schema of its own, dropped at the end. Without
//! `DATABASE_URL` and without a local server, the tests say why they skip.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use recall_postgres::Database;
use serde_json::{Value, json};

use crate::helpers::{CALLER, Options, TestApp, spawn_with, transcription, try_spawn};

/// The local server CI and developers run.
const LOCAL: &str = "postgres://postgres@127.0.0.1:5432/test";
const TOKEN: &str = "postgres-test-admin-token";

fn url() -> (String, bool) {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, true),
        _ => (LOCAL.to_owned(), false),
    }
}

/// Runs `test` with a fresh schema name on a reachable server, then drops
/// the schema (also when the test fails).
async fn with_schema<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (url, asked) = url();
    let server = match Database::connect(&url).await {
        Ok(server) => server,
        Err(e) if !asked => {
            eprintln!("skipping: no PostgreSQL at {url} (set DATABASE_URL): {e}");
            return;
        }
        Err(e) => panic!("connecting to {url}: {e:?}"),
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let schema = format!("recall_server_{}_{}", std::process::id(), nanos.as_nanos());
    let outcome = tokio::spawn(test(schema.clone())).await;
    let client = server.client().await.expect("a connection");
    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    // A replica's background work (reading a caller into its cache) may
    // still hold locks in the schema: a deadlock with it is retried.
    for attempt in 1.. {
        match client.batch_execute(&drop).await {
            Ok(()) => break,
            Err(e) if attempt < 20 => {
                eprintln!("dropping {schema} again: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("schema {schema} not dropped: {e}"),
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// A replica on `schema`, with its own (unused) data directory.
async fn replica(schema: &str, dir: &tempfile::TempDir) -> TestApp {
    replica_at(&url().0, schema, dir).await
}

/// A replica reaching the database at `database_url`.
async fn replica_at(database_url: &str, schema: &str, dir: &tempfile::TempDir) -> TestApp {
    let options = Options::new(dir.path())
        .var("RECALL_STORE", "postgres")
        .var("DATABASE_URL", database_url)
        .var("RECALL_DATABASE_SCHEMA", schema)
        .var("RECALL_ADMIN_TOKEN", TOKEN);
    spawn_with(options).await
}

#[tokio::test]
async fn two_servers_on_one_database_answer_for_each_other() {
    with_schema(|schema| async move {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = replica(&schema, &dir_a).await;
        let b = replica(&schema, &dir_b).await;

        let event = transcription("conv_pg_1", CALLER, "Margaret");
        assert_eq!(a.post_call(&event).await.status(), 200);
        a.settle().await;

        // B never saw the event, yet greets and answers for the caller.
        let greeting = b.greet(CALLER).await;
        let variables = &greeting["dynamic_variables"];
        assert_eq!(variables["user_name"], "Margaret", "{greeting}");
        let response = b
            .search(&json!({"query": "roses black spot", "user_id": CALLER, "agent_id": "agent_1"}))
            .await;
        assert_eq!(response.status(), 200);
        let found: Value = response.json().await.unwrap();
        let memories = found["memories"].as_array().unwrap();
        assert!(
            memories
                .iter()
                .any(|m| m.to_string().contains("black spot")),
            "{found}"
        );

        // Its operator API lists the call A stored.
        let calls: Value = (b.client.get(b.url("/api/calls")).bearer_auth(TOKEN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(calls.to_string().contains("conv_pg_1"), "{calls}");

        // ElevenLabs delivering the same event again, to the other replica,
        // stores nothing new.
        assert_eq!(b.post_call(&event).await.status(), 200);
        b.settle().await;
        assert_eq!(b.stored_conversations().await, 1);
        let again = b
            .search(&json!({"query": "roses", "user_id": CALLER, "agent_id": "agent_1"}))
            .await;
        let again: Value = again.json().await.unwrap();
        assert_eq!(
            again["memories"].as_array().map(Vec::len),
            Some(memories.len()),
            "no duplicate memories: {again}"
        );

        // Another caller learns nothing of Margaret.
        let stranger = a.greet("+14155550100").await;
        assert_eq!(stranger["dynamic_variables"]["user_name"], "", "{stranger}");

        // Nothing was written to the data directories.
        for dir in [&dir_a, &dir_b] {
            let payloads = dir.path().join("payloads");
            assert!(!payloads.exists(), "{} exists", payloads.display());
        }
        a.stop().await;
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn postgres_needs_a_url_and_configured_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let error = try_spawn(Options::new(dir.path()).var("RECALL_STORE", "postgres"))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("DATABASE_URL"), "{error}");

    // Replicas must agree on the webhook secrets: none is generated.
    let mut options = Options::new(dir.path())
        .var("RECALL_STORE", "postgres")
        .var(
            "DATABASE_URL",
            "postgres://recall:hunter2@127.0.0.1:1/recall",
        );
    options.with_keys = false;
    let error = try_spawn(options).await.err().expect("refused").to_string();
    assert!(
        error.contains("replicas") && error.contains("ELEVENLABS_POST_CALL_KEY"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
    assert!(!dir.path().join("webhook-secrets.toml").exists());
}

/// A TCP proxy on loopback in front of PostgreSQL that can be cut (every
/// connection dropped, new ones closed at once) and mended: a database
/// outage as the server sees it.
struct Proxy {
    address: SocketAddr,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (is_cut, all) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                all.lock().unwrap().push(link.abort_handle());
            }
        });
        Self {
            address,
            cut,
            links,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.links.lock().unwrap().drain(..).for_each(|l| l.abort());
    }

    fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_database_outage_delays_nothing_and_loses_nothing() {
    with_schema(|schema| async move {
        let mut database = url::Url::parse(&url().0).unwrap();
        let upstream = format!(
            "{}:{}",
            database.host_str().unwrap(),
            database.port().unwrap_or(5432)
        );
        let proxy = Proxy::start(upstream).await;
        database.set_host(Some("127.0.0.1")).unwrap();
        database.set_port(Some(proxy.address.port())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let app = replica_at(database.as_str(), &schema, &dir).await;

        let first = transcription("conv_pg_before", CALLER, "Margaret");
        assert_eq!(app.post_call(&first).await.status(), 200);

        proxy.cut();
        // The phone rings: the greeting comes back, empty, within its
        // budget rather than after the pool's timeout.
        let asked = Instant::now();
        let greeting = app.greet("+14155550101").await;
        assert_eq!(greeting["dynamic_variables"]["user_name"], "", "{greeting}");
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "{:?}",
            asked.elapsed()
        );
        // A post-call event cannot be stored: 503 and Retry-After, so
        // ElevenLabs delivers it again.
        let second = transcription("conv_pg_during", "+14155550101", "Rosa");
        let refused = app.post_call(&second).await;
        assert_eq!(refused.status(), 503);
        assert!(refused.headers().contains_key("retry-after"));
        app.settle().await; // the worker fails and keeps the event

        proxy.mend();
        assert_eq!(app.post_call(&second).await.status(), 200);
        // Everything acknowledged is processed once the database is back.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            app.settle().await;
            let (a, b) = (app.greet(CALLER).await, app.greet("+14155550101").await);
            let names = (
                a["dynamic_variables"]["user_name"].clone(),
                b["dynamic_variables"]["user_name"].clone(),
            );
            if names == (json!("Margaret"), json!("Rosa")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not processed after the outage: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The refused delivery left nothing behind.
        assert_eq!(app.stored_conversations().await, 2);
        app.stop().await;
    })
    .await;
}

/// Runs `recall migrate-store --from embedded --to postgres` on `dir`.
fn migrate_store(dir: &std::path::Path, schema: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_recall"))
        .env_clear()
        .current_dir(dir)
        .env("RECALL_DATA_DIR", dir)
        .env("DATABASE_URL", url().0)
        .env("RECALL_DATABASE_SCHEMA", schema)
        .args(["migrate-store", "--from", "embedded", "--to", "postgres"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

#[tokio::test]
async fn an_embedded_deployment_moves_to_postgres_whole_and_once() {
    use base64::Engine as _;
    with_schema(|schema| async move {
        let dir = tempfile::tempdir().unwrap();
        let embedded = spawn_with(Options::new(dir.path()).var("RECALL_STORE", "embedded")).await;
        let other = "+14155550102";
        for event in [
            transcription("conv_move_1", CALLER, "Margaret"),
            transcription("conv_move_2", other, "Rosa"),
        ] {
            assert_eq!(embedded.post_call(&event).await.status(), 200);
        }
        let mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00moved mp3 frames".repeat(300);
        let audio = json!({
            "type": "post_call_audio",
            "event_timestamp": 1_739_537_400,
            "data": {"agent_id": "agent_1", "conversation_id": "conv_move_1",
                     "full_audio": base64::engine::general_purpose::STANDARD.encode(&mp3),
                     "unknown_field_kept": {"as": "sent"}}
        });
        let audio = serde_json::to_vec(&audio).unwrap();
        assert_eq!(embedded.post_call(&audio).await.status(), 200);
        embedded.settle().await;
        let found = embedded
            .search(&json!({"query": "roses", "user_id": CALLER, "agent_id": "agent_1"}))
            .await;
        let before: Value = found.json().await.unwrap();
        embedded.stop().await;
        drop(embedded);

        let first = migrate_store(dir.path(), &schema);
        assert!(
            first.contains("copied 3 events (0 already there) of 2 conversations, 1 with audio"),
            "{first}"
        );
        assert!(first.contains("2 calls indexed"), "{first}");
        // Interrupted or not, a second run copies nothing twice.
        let again = migrate_store(dir.path(), &schema);
        assert!(
            again.contains("copied 0 events (3 already there)"),
            "{again}"
        );
        assert!(again.contains(" 0 memories ("), "{again}");

        // A server on PostgreSQL alone now knows everything.
        let pg_dir = tempfile::tempdir().unwrap();
        let pg = replica(&schema, &pg_dir).await;
        assert_eq!(
            pg.greet(CALLER).await["dynamic_variables"]["user_name"],
            "Margaret"
        );
        assert_eq!(
            pg.greet(other).await["dynamic_variables"]["user_name"],
            "Rosa"
        );
        let found = pg
            .search(&json!({"query": "roses", "user_id": CALLER, "agent_id": "agent_1"}))
            .await;
        let after: Value = found.json().await.unwrap();
        assert_eq!(
            after["memories"].as_array().map(Vec::len),
            before["memories"].as_array().map(Vec::len),
            "{before}\n{after}"
        );
        let served = (pg
            .client
            .get(pg.url("/api/calls/conv_move_1/audio"))
            .bearer_auth(TOKEN))
        .send()
        .await
        .unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.bytes().await.unwrap().as_ref(), mp3.as_slice());
        // The event itself moved byte for byte, unknown fields and all.
        let log = pg.service.event_log();
        let conversation = recall_model::ConversationId::parse("conv_move_1").unwrap();
        let kind = recall_model::WebhookType::PostCallAudio;
        let mut body = log.open_event(&conversation, &kind).await.unwrap().unwrap();
        let mut moved = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut body, &mut moved)
            .await
            .unwrap();
        assert_eq!(moved, audio);
        pg.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_event_acknowledged_by_a_replica_that_died_is_taken_over() {
    with_schema(|schema| async move {
        let (dir_a, dir_b, dir_dead) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let a = replica(&schema, &dir_a).await;
        let b = replica(&schema, &dir_b).await;
        // A third replica acknowledges an event, then dies before its
        // worker ran: it only ever stored the event.
        let options = Options::new(dir_dead.path())
            .var("RECALL_STORE", "postgres")
            .var("DATABASE_URL", &url().0)
            .var("RECALL_DATABASE_SCHEMA", &schema);
        let dead = recall_server::open_service(&options.config().unwrap(), None)
            .await
            .unwrap();
        let caller = "+14155550103";
        let ack = dead
            .ingest_bytes(&transcription("conv_orphan", caller, "Ingrid"))
            .await
            .unwrap();
        assert!(!ack.duplicate);
        drop(dead);

        // A and B look for such events on their own; one of them takes it.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let greeting = b.greet(caller).await;
            if greeting["dynamic_variables"]["user_name"] == "Ingrid" {
                break;
            }
            assert!(Instant::now() < deadline, "never taken over: {greeting}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Exactly once: as many memories as one processing writes.
        let found = a
            .search(&json!({"query": "roses", "user_id": caller, "agent_id": "agent_1"}))
            .await;
        let found: Value = found.json().await.unwrap();
        let once = found["memories"].as_array().map(Vec::len).unwrap_or(0);
        assert!(once > 0, "{found}");
        a.settle().await;
        b.settle().await;
        let again: Value = (b
            .search(&json!({"query": "roses", "user_id": caller, "agent_id": "agent_1"})))
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(
            again["memories"].as_array().map(Vec::len),
            Some(once),
            "{again}"
        );
        a.stop().await;
        b.stop().await;
    })
    .await;
}

/// A `recall serve` process on PostgreSQL, on a free port.
struct Serve {
    child: std::process::Child,
    address: String,
}

impl Serve {
    /// Starts one and waits for its "recall is listening" line.
    fn start(schema: &str, dir: &std::path::Path) -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_recall"))
            .arg("serve")
            .env_clear()
            .env("RECALL_BIND", "127.0.0.1:0")
            .env("RECALL_STORE", "postgres")
            .env("DATABASE_URL", url().0)
            .env("RECALL_DATABASE_SCHEMA", schema)
            .env("RECALL_DATA_DIR", dir)
            .env("RECALL_LOG_FORMAT", "json")
            // A dead replica's events are taken over after 3 s, not 60.
            .env("RECALL_CLAIM_LEASE_SECS", "3")
            .env("ELEVENLABS_POST_CALL_KEY", crate::helpers::POST_CALL_KEY)
            .env(
                "ELEVENLABS_CLIENT_DATA_KEY",
                crate::helpers::CLIENT_DATA_KEY,
            )
            .env(
                "ELEVENLABS_SEARCH_DATA_KEY",
                crate::helpers::SEARCH_DATA_KEY,
            )
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("recall exits before listening")
                .unwrap();
            if line.contains("recall is listening") {
                let log: Value = serde_json::from_str(&line).unwrap();
                let port = log["fields"]["port"]
                    .as_u64()
                    .or_else(|| log["port"].as_u64());
                break port.unwrap_or_else(|| panic!("no port in {line}"));
            }
        };
        // Keep reading, so that the process never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        }
    }

    /// `kill -9`.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn three_processes_share_the_stream_and_survive_a_kill() {
    use recall_signature::{Secret, sign};
    with_schema(|schema| async move {
        let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut replicas: Vec<Option<Serve>> = (0..3)
            .map(|i| Some(Serve::start(&schema, dirs[i].path())))
            .collect();
        let client = reqwest::Client::new();
        let secret = Secret::new(crate::helpers::POST_CALL_KEY).unwrap();
        let callers: Vec<String> = (0..30).map(|i| format!("+1415555{i:04}")).collect();
        let mut stored_by = Vec::new();
        for (i, caller) in callers.iter().enumerate() {
            if i == 12 {
                // A replica dies mid-stream, with whatever it had in hand.
                replicas[1].take().unwrap().kill();
            }
            if i == 20 {
                replicas[1] = Some(Serve::start(&schema, dirs[3].path()));
            }
            // The load balancer skips a dead replica.
            let target = (i % 3..i % 3 + 3)
                .map(|r| r % 3)
                .find(|r| replicas[*r].is_some())
                .unwrap();
            let body = transcription(&format!("conv_rr_{i}"), caller, &format!("Caller{i}"));
            let signature = sign(&body, &secret, crate::helpers::now());
            let address = &replicas[target].as_ref().unwrap().address;
            let response = client
                .post(format!("{address}/webhook/post-call"))
                .header("ElevenLabs-Signature", signature)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "event {i}");
            stored_by.push(target);
        }

        // Every caller is greeted by name by a replica that did not store
        // their call, and by no other name.
        let deadline = Instant::now() + Duration::from_secs(90);
        for (i, caller) in callers.iter().enumerate() {
            let other = (stored_by[i] + 1) % 3;
            let address = replicas[other].as_ref().unwrap().address.clone();
            loop {
                let greeting: Value = client
                    .post(format!("{address}/webhook/client-data"))
                    .header("X-Api-Key", crate::helpers::CLIENT_DATA_KEY)
                    .json(&json!({"caller_id": caller, "agent_id": "agent_1",
                                  "called_number": "+15550001111", "call_sid": "CA1"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let name = greeting["dynamic_variables"]["user_name"].clone();
                if name == json!(format!("Caller{i}")) {
                    break;
                }
                assert_eq!(name, json!(""), "caller {i} is greeted as someone else");
                assert!(Instant::now() < deadline, "caller {i} never processed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }

        // Exactly once: every event done, and each caller holds what one
        // processing writes (the calls are alike).
        let db = Database::builder(url().0)
            .schema(&schema)
            .connect()
            .await
            .unwrap();
        let client_db = db.client().await.unwrap();
        // A greeting by name shows the memories are written; the event is
        // marked done a moment later (and an event the killed replica
        // held is taken over after its lease): wait for all of them.
        loop {
            let states = client_db
                .query("SELECT state, count(*) FROM events GROUP BY state", &[])
                .await
                .unwrap();
            let states: Vec<(String, i64)> = states.iter().map(|r| (r.get(0), r.get(1))).collect();
            if states == [("done".to_owned(), 30)] {
                break;
            }
            assert!(Instant::now() < deadline, "events not all done: {states:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let per_caller = client_db
            .query(
                "SELECT user_id, count(*) FROM memories GROUP BY user_id",
                &[],
            )
            .await
            .unwrap();
        let counts: Vec<i64> = per_caller.iter().map(|r| r.get(1)).collect();
        assert_eq!(counts.len(), 30);
        assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    })
    .await;
}

/// ElevenLabs' deletion settings on PostgreSQL: a deletion already due is
/// carried out when the event is processed; one not due yet is recorded in
/// the database and carried out by another replica started after the
/// first stopped. Deleted calls still answer with their figures.
#[tokio::test]
async fn deletion_settings_are_honoured_and_survive_a_restart_on_postgres() {
    use crate::helpers::now;
    use crate::retention::{assert_deleted, audio, deleted_call, options, scheduled};
    use tokio::io::AsyncReadExt as _;

    with_schema(|schema| async move {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let database_url = url().0;
        let on_postgres = |dir: &tempfile::TempDir, sweep_secs: &str| {
            let vars = [
                ("RECALL_STORE", "postgres"),
                ("DATABASE_URL", database_url.as_str()),
                ("RECALL_DATABASE_SCHEMA", schema.as_str()),
                ("RECALL_RETENTION_SWEEP_SECS", sweep_secs),
            ];
            options(dir.path(), &vars)
        };
        let a = spawn_with(on_postgres(&dir_a, "3600")).await;
        let due = now() + 4;
        for body in [
            scheduled("conv_pg_past", Some(now() - 60)),
            audio("conv_pg_past"),
            scheduled("conv_pg_later", Some(due)),
            audio("conv_pg_later"),
        ] {
            assert_eq!(a.post_call(&body).await.status(), 200);
        }
        a.settle().await;
        let past = deleted_call(&a, "conv_pg_past", 10).await;
        assert_deleted(&a, &past, "conv_pg_past").await;
        let later = "conv_pg_later".parse().unwrap();
        let record = a.service.event_log().deletion(&later).await.unwrap();
        assert_eq!(
            record.and_then(|r| r.due).map(|t| t.as_secs()),
            Some(due as i64)
        );
        a.stop().await;

        let b = spawn_with(on_postgres(&dir_b, "1")).await;
        let call = deleted_call(&b, "conv_pg_later", 20).await;
        assert_deleted(&b, &call, "conv_pg_later").await;
        let log = b.service.event_log();
        let kind = recall_model::WebhookType::PostCallTranscription;
        let mut stored = String::new();
        let mut body = log.open_event(&later, &kind).await.unwrap().unwrap();
        body.read_to_string(&mut stored).await.unwrap();
        assert!(!stored.contains("black spots"), "{stored}");
        assert!(!log.has_audio(&later).await.unwrap());
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn on_postgres_the_audit_log_is_a_table_shared_by_the_replicas() {
    with_schema(|schema| async move {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = replica(&schema, &dir_a).await;
        let b = replica(&schema, &dir_b).await;
        let event = transcription("conv_pg_audit", CALLER, "Margaret");
        assert_eq!(a.post_call(&event).await.status(), 200);
        a.settle().await;

        let user = format!("/api/users/%2B{}", &CALLER[1..]);
        let read = a
            .client
            .get(a.url(&user))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
        let call = b
            .client
            .get(b.url("/api/calls/conv_pg_audit"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(call.status(), 200);
        let erase = b
            .client
            .delete(b.url(&user))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(erase.status(), 200);

        let db = Database::builder(url().0)
            .schema(schema.as_str())
            .connect()
            .await
            .unwrap();
        let rows = db
            .client()
            .await
            .unwrap()
            .query(
                "SELECT route, status, token, conversation_id FROM audit_log \
                 WHERE caller = $1 ORDER BY id",
                &[&CALLER],
            )
            .await
            .unwrap();
        let seen: Vec<(String, i16)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            seen,
            [
                ("GET /api/users/{phone}".to_owned(), 200),
                ("GET /api/calls/{conversation_id}".to_owned(), 200),
                ("DELETE /api/users/{phone}".to_owned(), 200),
            ]
        );
        for row in &rows {
            let token: String = row.get(2);
            assert_eq!(token.len(), 16);
            assert_ne!(token, TOKEN);
        }
        assert_eq!(
            rows[1].get::<_, Option<String>>(3).as_deref(),
            Some("conv_pg_audit")
        );
        // No file beside the table.
        assert!(!dir_a.path().join("audit.jsonl").exists());
        assert!(!dir_b.path().join("audit.jsonl").exists());
    })
    .await;
}
