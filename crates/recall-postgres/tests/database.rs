//! Connecting, TLS modes, and migrations on a real server.

mod common;

use common::{drop_schema, fresh_schema, server, url, with_fresh_schema, with_schema};
use recall_postgres::{Database, DatabaseError, SCHEMA_VERSION, migration_versions};

#[tokio::test]
async fn replicas_migrating_at_once_both_succeed_and_record_each_version_once() {
    let Some(server) = server().await else {
        return;
    };
    let schema = fresh_schema();
    let connect = || async {
        Database::builder(url().0)
            .schema(&schema)
            .pool_size(1)
            .connect()
            .await
            .expect("a replica connects")
    };
    let (a, b) = (connect().await, connect().await);
    assert_eq!(a.schema_version().await.unwrap(), None);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let outcome = (ra.map_err(|e| e.to_string()), rb.map_err(|e| e.to_string()));
    let versions: Vec<(i32, i64)> = a
        .client()
        .await
        .unwrap()
        .query(
            "SELECT version, count(*) FROM schema_version GROUP BY version ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let again = a.migrate().await.map_err(|e| e.to_string());
    drop_schema(&server, &schema).await;

    assert_eq!(outcome, (Ok(SCHEMA_VERSION), Ok(SCHEMA_VERSION)));
    let expected: Vec<(i32, i64)> = migration_versions().into_iter().map(|v| (v, 1)).collect();
    assert_eq!(versions, expected);
    assert_eq!(again, Ok(SCHEMA_VERSION), "migrating again changes nothing");
}

#[tokio::test]
async fn a_replica_waiting_for_another_migration_is_not_cut_short_by_the_statement_timeout() {
    with_fresh_schema(|db| async move {
        let impatient = Database::builder(url().0)
            .schema(db.schema().unwrap())
            .statement_timeout(std::time::Duration::from_millis(50))
            .connect()
            .await
            .unwrap();
        // Another replica holds the migration lock for a while.
        let mut holder = db.client().await.unwrap();
        let tx = holder.transaction().await.unwrap();
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('recall.migrate'), hashtext($1))",
            &[&db.schema().unwrap()],
        )
        .await
        .unwrap();
        let waiting = tokio::spawn(async move { impatient.migrate().await });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the replica waits for the lock");
        tx.commit().await.unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), SCHEMA_VERSION);
    })
    .await;
}

#[tokio::test]
async fn a_schema_at_an_older_version_gets_only_the_migrations_it_lacks() {
    with_fresh_schema(|db| async move {
        // The schema as the first release left it: version 3, with data.
        let schema = db.schema().unwrap().to_owned();
        let client = db.client().await.unwrap();
        client
            .batch_execute(&format!(
                "CREATE SCHEMA \"{schema}\";
                 CREATE TABLE schema_version (version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now());
                 INSERT INTO schema_version (version) VALUES (1), (2), (3);"
            ))
            .await
            .unwrap();
        for sql in [
            include_str!("../migrations/0001_event_log.sql"),
            include_str!("../migrations/0002_calls.sql"),
            include_str!("../migrations/0003_memories.sql"),
        ] {
            client.batch_execute(sql).await.unwrap();
        }
        client
            .batch_execute(
                "INSERT INTO conversations (conversation_id) VALUES ('conv_old');
                 INSERT INTO events (conversation_id, kind, body, received_nanos)
                 VALUES ('conv_old', 'post_call_transcription', '\\x7b7d', 1)",
            )
            .await
            .unwrap();
        assert_eq!(db.migrate().await.unwrap(), SCHEMA_VERSION);
        let kept: i64 = client
            .query_one("SELECT count(*) FROM events WHERE claimed_by IS NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(kept, 1, "the old event is kept, unclaimed");
    })
    .await;
}

#[tokio::test]
async fn a_schema_migrated_by_a_newer_build_is_refused() {
    with_schema(|db| async move {
        assert_eq!(db.schema_version().await.unwrap(), Some(SCHEMA_VERSION));
        db.client()
            .await
            .unwrap()
            .execute("INSERT INTO schema_version (version) VALUES (999)", &[])
            .await
            .unwrap();
        match db.migrate().await {
            Err(DatabaseError::NewerSchema { found: 999, known }) => {
                assert_eq!(known, SCHEMA_VERSION);
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn the_schema_option_keeps_tables_in_that_schema() {
    with_fresh_schema(|db| async move {
        db.migrate().await.unwrap();
        let schema = db.schema().unwrap().to_owned();
        let row = db
            .client()
            .await
            .unwrap()
            .query_one(
                "SELECT current_schema(), to_regclass($1 || '.events') IS NOT NULL",
                &[&schema],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some(&*schema));
        assert!(row.get::<_, bool>(1), "the events table is in {schema}");
    })
    .await;
}

#[tokio::test]
async fn the_statement_timeout_cancels_long_statements() {
    let Some(_server) = server().await else {
        return;
    };
    let db = Database::builder(url().0)
        .statement_timeout(std::time::Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let err = db
        .client()
        .await
        .unwrap()
        .execute("SELECT pg_sleep(5)", &[])
        .await
        .map_err(DatabaseError::Postgres)
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

/// Whether the session of a connection is encrypted.
async fn encrypted(db: &Database) -> bool {
    db.client()
        .await
        .unwrap()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

fn with_sslmode(url: &str, mode: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode={mode}")
}

#[tokio::test]
async fn sslmodes_are_honoured_and_require_verifies_the_certificate() {
    let Some(server) = server().await else {
        return;
    };
    let base = url().0;
    if base.contains("sslmode=") {
        eprintln!("skipping: DATABASE_URL sets its own sslmode");
        return;
    }
    let server_tls: String = server
        .client()
        .await
        .unwrap()
        .query_one("SHOW ssl", &[])
        .await
        .unwrap()
        .get(0);
    let plain = Database::connect(with_sslmode(&base, "disable"))
        .await
        .unwrap();
    assert!(!encrypted(&plain).await, "sslmode=disable never encrypts");
    if server_tls != "on" {
        eprintln!("skipping the TLS half: the server does not offer TLS");
        return;
    }
    let preferred = Database::connect(with_sslmode(&base, "prefer"))
        .await
        .unwrap();
    assert!(
        encrypted(&preferred).await,
        "sslmode=prefer encrypts when the server offers TLS"
    );
    // The local test server's certificate is self-signed: verified TLS must
    // refuse it. (A server whose certificate the system trusts connects,
    // encrypted.)
    // libpq's verify-full is read as require: verified too.
    for mode in ["require", "verify-full"] {
        match Database::connect(with_sslmode(&base, mode)).await {
            Err(e) => {
                let chain = recall_memory::ErrorChain(&e).to_string();
                assert!(chain.contains("certificate"), "{mode}: {chain}");
            }
            Ok(db) => assert!(encrypted(&db).await, "sslmode={mode} encrypts"),
        }
    }
}

#[tokio::test]
async fn a_root_certificate_file_replaces_the_system_roots() {
    let file = std::env::temp_dir().join(format!("recall-roots-{}.pem", std::process::id()));
    std::fs::write(&file, "not a certificate\n").unwrap();
    let refused = Database::builder(with_sslmode(&url().0, "require"))
        .root_certificates(&file)
        .connect()
        .await;
    std::fs::remove_file(&file).unwrap();
    match refused {
        Err(DatabaseError::RootCertificates { path, reason }) => {
            assert_eq!(path, file);
            assert!(reason.contains("no usable PEM certificate"), "{reason}");
        }
        other => panic!("a file without certificates is refused: {other:?}"),
    }

    // The local server's own (self-signed) certificate as the root: the
    // server is verified, by its name (`localhost`), where the system's
    // roots refuse it.
    let snakeoil = std::path::Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    let Some(server) = server().await else {
        return;
    };
    let base = url().0;
    let tls: String = (server
        .client()
        .await
        .unwrap()
        .query_one("SHOW ssl", &[])
        .await)
        .unwrap()
        .get(0);
    if tls != "on" || !snakeoil.exists() || base.contains("sslmode=") || !base.contains("127.0.0.1")
    {
        eprintln!("skipping the TLS half: no local TLS server with the snakeoil certificate");
        return;
    }
    let by_name = with_sslmode(&base.replace("127.0.0.1", "localhost"), "require");
    // Another authority as the only root: the same server is refused, so
    // the file replaces the system's roots rather than adding to them.
    let other = std::fs::read_dir("/etc/ssl/certs")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "pem") && !p.ends_with("ssl-cert-snakeoil.pem")
        });
    if let Some(other) = other {
        let refused = Database::builder(&by_name)
            .root_certificates(&other)
            .connect()
            .await;
        let refused = refused
            .err()
            .map(|e| recall_memory::ErrorChain(&e).to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("certificate")),
            "{other:?}: {refused:?}"
        );
    }
    let own = Database::builder(&by_name)
        .root_certificates(snakeoil)
        .connect()
        .await
        .expect("the server's certificate verifies against the given root");
    assert!(encrypted(&own).await);
    // The name is still checked.
    let by_address = Database::builder(with_sslmode(&base, "require"))
        .root_certificates(snakeoil)
        .connect()
        .await;
    let refused = by_address
        .err()
        .map(|e| recall_memory::ErrorChain(&e).to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("not valid for name")),
        "{refused:?}"
    );
}

/// How many connections the calling thread can hold at once (each
/// checkout waits at most 100 ms), up to `limit`.
fn connections_this_thread_gets(db: &Database, pin: bool, limit: usize) -> (bool, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pinned = pin && db.pin_this_thread();
        let mut held = Vec::new();
        while held.len() < limit {
            match db.client().await {
                Ok(client) => held.push(client),
                Err(e) => {
                    assert!(e.is_timeout(), "only the wait runs out: {e}");
                    break;
                }
            }
        }
        (pinned, held.len())
    })
}

#[test]
fn pinned_threads_get_their_share_and_the_pool_size_stays_the_total() {
    // The connections opened by `connect` run on this runtime's threads,
    // which stay free while the test's threads block.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if runtime.block_on(server()).is_none() {
        return;
    }
    let connect = |pinned: usize| {
        runtime.block_on(
            Database::builder(url().0)
                .pool_size(7)
                .pinned_threads(pinned)
                .acquire_timeout(std::time::Duration::from_millis(100))
                .connect(),
        )
    };
    let on_a_thread = |db: &Database, pin: bool| {
        let db = db.clone();
        std::thread::spawn(move || connections_this_thread_gets(&db, pin, 10))
            .join()
            .unwrap()
    };
    let db = connect(2).unwrap();
    // One thread after another, each holding what it can get.
    let shares: Vec<(bool, usize)> = [true, true, true, false]
        .into_iter()
        .map(|pin| on_a_thread(&db, pin))
        .collect();
    // 7 / 3 = 2 for each of the two pinned threads, 3 shared; a third
    // thread asking to be pinned shares, as does any other.
    assert_eq!(shares, vec![(true, 2), (true, 2), (false, 3), (false, 3)]);
    let unpinned = connect(0).unwrap();
    assert_eq!(
        on_a_thread(&unpinned, true),
        (false, 7),
        "without pinned threads every connection is shared"
    );
}
