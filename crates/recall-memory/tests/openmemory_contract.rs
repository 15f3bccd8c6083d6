//! The OpenMemory adapter against HTTP mocks on loopback that serve the
//! answers recorded from a real OpenMemory v1.3.0 server
//! (`openmemory_support/recorded/v1.3.0`), matching the requests the
//! adapter sends against the recorded request shapes.

#![cfg(feature = "openmemory")]

mod openmemory_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openmemory_support::emulator::Emulator;
use openmemory_support::fixtures::load;
use recall_memory::openmemory::dedup::ContentHash;
use recall_memory::openmemory::{OpenMemoryConfig, OpenMemoryStore};
use recall_memory::{
    AddOutcome, ErrorChain, Fact, FactKey, IdempotencyKey, ListRequest, MemoryError, MemoryId,
    MemoryStore, MemoryUpdate, NewMemory, SearchQuery,
};
use recall_model::{ConversationId, DecayLambda, MemorySector, PhoneNumber, Salience};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "testkey123";
const USER1: &str = "+16125550101";
const USER2: &str = "+16125550102";

fn user(n: &str) -> PhoneNumber {
    PhoneNumber::parse(n).unwrap()
}

fn id(raw: &str) -> MemoryId {
    MemoryId::new(raw).unwrap()
}

/// A config for `server` with the recorded key, roomy timeouts (these
/// tests check behaviour, not speed) and quick retries.
fn config(server: &MockServer) -> OpenMemoryConfig {
    OpenMemoryConfig::from_port_or_url(&server.uri())
        .unwrap()
        .with_api_key(KEY)
        .unwrap()
        .read_timeout(Duration::from_secs(5))
        .write_timeout(Duration::from_secs(5))
        .retry_base_delay(Duration::from_millis(1))
}

fn store(server: &MockServer) -> OpenMemoryStore {
    OpenMemoryStore::new(config(server)).unwrap()
}

/// `GET /memory/all?user_id=<user>` (the matcher decodes the query, so a
/// raw `+`, which the server reads as a space, would not match).
fn list_of(user: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/memory/all"))
        .and(query_param("user_id", user))
        .and(header("x-api-key", KEY))
}

fn items(fixture: &str) -> Vec<Value> {
    load(fixture).body()["items"].as_array().unwrap().clone()
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// The JSON bodies of the requests `server` received for `method path`.
async fn bodies(server: &MockServer, m: &str, p: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// Records the body of every add and answers with the next of `answers`
/// (the last one repeats).
fn recording_add(
    seen: Arc<Mutex<Vec<Value>>>,
    answers: Vec<Value>,
) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync {
    move |req: &Request| {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let mut seen = seen.lock().unwrap();
        seen.push(body);
        let n = (seen.len() - 1).min(answers.len() - 1);
        answer(answers[n].clone())
    }
}

/// Answers a get with `row`, its `content` (unless the row overrides it),
/// `tags`, `metadata` and `user_id` taken from the last add recorded: the
/// row as the server would store it.
fn row_from_last_add(
    seen: Arc<Mutex<Vec<Value>>>,
    row: Value,
    keep_content: bool,
) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync {
    move |req: &Request| {
        let last = seen.lock().unwrap().last().cloned().unwrap();
        let mut row = row.clone();
        row["id"] = json!(req.url.path().trim_start_matches("/memory/"));
        if !keep_content {
            row["content"] = last["content"].clone();
        }
        for field in ["tags", "metadata", "user_id"] {
            row[field] = last[field].clone();
        }
        answer(row)
    }
}

fn fact(key: &str, value: &str, is_name: bool) -> Fact {
    Fact {
        key: FactKey::new(key).unwrap(),
        value: value.into(),
        is_name,
    }
}

// ------------------------------------------------------------ start-up

#[tokio::test]
async fn connect_checks_health_and_a_scoped_read() {
    let server = MockServer::start().await;
    let health = load("01-health");
    Mock::given(method("GET"))
        .and(path(health.path()))
        .respond_with(health.answer())
        .expect(2)
        .mount(&server)
        .await;
    list_of("+10000000000")
        .and(query_param("l", "1"))
        .respond_with(answer(load("47-user-memories-unknown-user").body().clone()))
        .expect(2)
        .mount(&server)
        .await;
    let store = OpenMemoryStore::connect(config(&server)).await.unwrap();
    assert!(store.health().await.is_ok());
    let raw_queries: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| r.url.query().map(str::to_owned))
        .collect();
    assert!(
        raw_queries.iter().all(|q| q.contains("user_id=%2B")),
        "a + in a query string must be sent as %2B (fixture 27), sent {raw_queries:?}"
    );
}

#[tokio::test]
async fn connect_reports_a_tenant_bound_release_as_incompatible() {
    let (server, _emulator) = Emulator::new(Some(KEY)).tenant_bound().start().await;
    let err = OpenMemoryStore::connect(config(&server)).await.unwrap_err();
    let MemoryError::Incompatible {
        reason: message, ..
    } = err
    else {
        panic!("expected Incompatible, got {err:?}");
    };
    assert!(message.contains("tenant_mismatch"), "{message}");
    assert!(message.contains("v1.2 or v1.3"), "{message}");
    assert!(message.contains("RECALL_STORE=embedded"), "{message}");
}

#[tokio::test]
async fn a_tenant_mismatch_on_any_request_is_incompatible_never_empty() {
    let (server, _emulator) = Emulator::new(Some(KEY)).tenant_bound().start().await;
    let store = store(&server);
    let me = user(USER1);
    let incompatible = |r: Result<(), MemoryError>| {
        assert!(
            matches!(r, Err(MemoryError::Incompatible { reason: ref m, .. }) if m.contains("tenant_mismatch")),
            "expected Incompatible, got {r:?}"
        );
    };
    incompatible(
        store
            .search(&me, &SearchQuery::new("name", 5))
            .await
            .map(drop),
    );
    incompatible(store.list(&me, &ListRequest::first(5)).await.map(drop));
    incompatible(store.profile(&me).await.map(drop));
    incompatible(
        store
            .get(&me, &id("e707d1c8-d533-4d64-b248-a2ef6b05c285"))
            .await
            .map(drop),
    );
    incompatible(
        store
            .delete(&me, &id("e707d1c8-d533-4d64-b248-a2ef6b05c285"))
            .await,
    );
    incompatible(
        store
            .add(
                &me,
                NewMemory::new("Caller likes tea", MemorySector::Semantic),
            )
            .await
            .map(drop),
    );
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_rejected_naming_the_key() {
    for (fixture, with_key) in [
        ("51-auth-no-key", false),
        ("52-auth-wrong-key", true),
        ("53-auth-wrong-key-other-length", true),
    ] {
        let server = MockServer::start().await;
        let recorded = load(fixture);
        Mock::given(method("GET"))
            .and(path("/memory/all"))
            .respond_with(recorded.answer())
            .expect(1)
            .mount(&server)
            .await;
        let mut c = OpenMemoryConfig::from_port_or_url(&server.uri()).unwrap();
        if with_key {
            c = c.with_api_key("testkey999").unwrap();
        }
        let err = OpenMemoryStore::new(c)
            .unwrap()
            .list(&user(USER1), &ListRequest::first(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, MemoryError::Rejected { reason: m, .. } if m.contains("API key")),
            "{fixture}: expected Rejected naming the API key, got {err:?}"
        );
        assert!(
            !err.to_string().contains("testkey999"),
            "the key must not leak"
        );
    }
}

#[tokio::test]
async fn an_unknown_route_means_an_incompatible_server() {
    for fixture in [
        "61-unknown-route-with-key",
        "63-unknown-method-on-known-path",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/memory/all"))
            .respond_with(load(fixture).answer())
            .mount(&server)
            .await;
        let err = store(&server)
            .list(&user(USER1), &ListRequest::first(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, MemoryError::Incompatible { reason: m, .. } if m.contains("GET /memory/all")),
            "{fixture}: got {err:?}"
        );
    }
}

#[tokio::test]
async fn an_answer_of_another_shape_is_incompatible_and_keeps_the_parse_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/memory/all"))
        .respond_with(answer(json!({"items": "not a list"})))
        .mount(&server)
        .await;
    let err = store(&server)
        .list(&user(USER1), &ListRequest::first(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MemoryError::Incompatible { reason: m, .. } if m.contains("GET /memory/all")),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).expect("the parse error is the source");
    assert!(source.is::<serde_json::Error>(), "{source:?}");
    assert!(err.to_string().ends_with(&source.to_string()), "{err}");
}

// ----------------------------------------------------------------- add

#[tokio::test]
async fn add_sends_the_recorded_shape_and_returns_the_stored_row() {
    let server = MockServer::start().await;
    let add = load("03-add-user1-first-name");
    let seen = Arc::new(Mutex::new(Vec::new()));
    list_of(USER1)
        .respond_with(answer(json!({"items": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(add.path()))
        .and(header("x-api-key", KEY))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(&add.request.body))
        .respond_with(recording_add(seen.clone(), vec![add.body().clone()]))
        .expect(1)
        .mount(&server)
        .await;
    let stored_id = add.body()["id"].as_str().unwrap();
    Mock::given(method("GET"))
        .and(path(format!("/memory/{stored_id}")))
        .and(query_param("user_id", USER1))
        .respond_with(row_from_last_add(
            seen.clone(),
            load("17-get-by-id-with-owner").body().clone(),
            false,
        ))
        .expect(1)
        .mount(&server)
        .await;

    let new = NewMemory::new("The caller's name is Maria", MemorySector::Semantic)
        .salience(Salience::HIGH)
        .decay(DecayLambda::PERMANENT)
        .tag("profile")
        .tag("first_name")
        .conversation(ConversationId::parse("conv_1").unwrap())
        .fact(fact("first_name", "Maria", true));
    let outcome = store(&server).add(&user(USER1), new).await.unwrap();
    let AddOutcome::Created(memory) = outcome else {
        panic!("expected Created, got {outcome:?}");
    };
    assert_eq!(memory.id.as_str(), stored_id);
    assert_eq!(memory.user_id, user(USER1));
    // The server stored salience 0.4 and decay 0.005 (fixture 17); the
    // adapter restores what was written.
    assert_eq!(memory.salience, Salience::HIGH);
    assert!(memory.decay_lambda.is_permanent());
    assert_eq!(memory.fact, Some(fact("first_name", "Maria", true)));
    let sent = &seen.lock().unwrap()[0];
    assert_eq!(sent["metadata"]["sector"], "semantic");
    assert_eq!(sent["metadata"]["recall"]["salience"], 0.9);
    assert_eq!(sent["metadata"]["recall"]["fact"]["key"], "first_name");
}

#[tokio::test]
async fn what_the_server_ignores_on_add_is_restored_on_read() {
    // Fixtures 04–07: salience, decay_lambda and a top-level sector are
    // ignored; metadata.sector is honoured.
    let server = MockServer::start().await;
    let add = load("04-add-user1-salience-decay-sector-ignored");
    let seen = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/memory/add"))
        .and(body_partial_json(
            json!({"metadata": {"sector": "reflective"}}),
        ))
        .respond_with(recording_add(seen.clone(), vec![add.body().clone()]))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/memory/b7a582d8-272c-4fb7-9be5-f1f53b5dd4bc"))
        .respond_with(row_from_last_add(
            seen.clone(),
            load("05-get-user1-salience-decay-check").body().clone(),
            false,
        ))
        .mount(&server)
        .await;
    let new = NewMemory::new(
        "Maria prefers to be called back in the evening",
        MemorySector::Reflective,
    )
    .salience(Salience::new(0.95).unwrap())
    .decay(DecayLambda::new(0.001).unwrap())
    .meta("field", "callback_time");
    let memory = store(&server)
        .add(&user(USER1), new)
        .await
        .unwrap()
        .memory()
        .clone();
    assert_eq!(memory.sector, MemorySector::Reflective);
    assert_eq!(memory.salience, Salience::new(0.95).unwrap());
    assert_eq!(memory.decay_lambda, DecayLambda::new(0.001).unwrap());
    assert_eq!(memory.metadata.get("field"), Some(&json!("callback_time")));
}

#[tokio::test]
async fn summarised_content_is_restored_from_the_envelope() {
    // Fixtures 71–72: with OM_USE_SUMMARY_ONLY the server keeps an extract.
    let server = MockServer::start().await;
    let add = load("71-default-summary-only-truncates-content");
    let long = add.request.body["content"].as_str().unwrap().to_owned();
    let seen = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/memory/add"))
        .respond_with(recording_add(seen.clone(), vec![add.body().clone()]))
        .mount(&server)
        .await;
    let stored = load("72-default-summary-only-stored-content");
    Mock::given(method("GET"))
        .and(path(stored.path()))
        .respond_with(row_from_last_add(seen, stored.body().clone(), true))
        .mount(&server)
        .await;
    let memory = store(&server)
        .add(
            &user(USER1),
            NewMemory::new(long.clone(), MemorySector::Episodic),
        )
        .await
        .unwrap()
        .memory()
        .clone();
    assert_eq!(memory.content, long);
}

#[tokio::test]
async fn a_deduplicated_add_is_stored_for_the_caller_and_never_reports_the_merged_row() {
    // 09: exact duplicate of the caller's own row; 13: a different fact
    // whose hash collides; 14: another caller's row.
    for (fixture, caller) in [
        ("09-add-user1-exact-duplicate", USER1),
        ("13-add-user1-different-fact-simhash-collision", USER1),
        ("14-add-user2-same-text-as-user1", USER2),
    ] {
        let server = MockServer::start().await;
        let merged = load(fixture);
        let merged_id = merged.body()["id"].as_str().unwrap().to_owned();
        let fresh = json!({"id": "597d175e-9ac2-4b59-b258-a4e6f0b64880", "primary_sector": "semantic", "sectors": ["semantic"], "chunks": 1});
        let seen = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("POST"))
            .and(path("/memory/add"))
            .and(body_partial_json(json!({"user_id": caller})))
            .respond_with(recording_add(
                seen.clone(),
                vec![merged.body().clone(), fresh],
            ))
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/memory/597d175e-9ac2-4b59-b258-a4e6f0b64880"))
            .and(query_param("user_id", caller))
            .respond_with(row_from_last_add(
                seen.clone(),
                load("16-get-by-id").body().clone(),
                false,
            ))
            .mount(&server)
            .await;
        let content = merged.request.body["content"].as_str().unwrap().to_owned();
        let outcome = store(&server)
            .add(
                &user(caller),
                NewMemory::new(content.clone(), MemorySector::Semantic),
            )
            .await
            .unwrap();
        let AddOutcome::Created(memory) = outcome else {
            panic!("{fixture}: expected Created, got {outcome:?}");
        };
        assert_ne!(memory.id.as_str(), merged_id, "{fixture}");
        assert_eq!(memory.user_id, user(caller), "{fixture}");
        assert_eq!(
            memory.content, content,
            "{fixture}: the marker must not show"
        );
        let sent = seen.lock().unwrap().clone();
        let resent = sent[1]["content"].as_str().unwrap();
        assert!(
            resent.starts_with(&content) && resent.contains("(ref "),
            "{fixture}: the re-sent content must carry a marker, sent {resent:?}"
        );
        // The marker moves the server's hash away from the merged text's.
        let (plain, marked) = (ContentHash::of(&content), ContentHash::of(resent));
        assert!(
            !marked.merges_into(plain) && marked.distance(plain) > 3,
            "{fixture}: {plain} vs {marked}"
        );
    }
}

#[tokio::test]
async fn an_add_merged_on_every_attempt_is_not_kept_and_retryable() {
    // Fixture 14 answered to every send: nothing is ever stored.
    let server = MockServer::start().await;
    let merged = load("14-add-user2-same-text-as-user1");
    let seen = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/memory/add"))
        .respond_with(recording_add(seen.clone(), vec![merged.body().clone()]))
        .expect(4)
        .mount(&server)
        .await;
    let store = store(&server);
    let content = merged.request.body["content"].as_str().unwrap();
    let err = store
        .add(
            &user(USER2),
            NewMemory::new(content, MemorySector::Semantic),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::NotKept(_)), "{err:?}");
    assert!(err.is_retryable(), "the event must stay pending");
    let stats = store.dedup_stats();
    assert_eq!((stats.merged, stats.not_kept), (4, 1), "{stats:?}");
    // Each re-send's hash is apart from the text's and every earlier one.
    let sent: Vec<ContentHash> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|b| ContentHash::of(b["content"].as_str().unwrap()))
        .collect();
    for (i, later) in sent.iter().enumerate() {
        for earlier in &sent[..i] {
            assert!(later.distance(*earlier) > 3, "{sent:?}");
        }
    }
}

#[tokio::test]
async fn a_text_whose_hash_the_adapter_stored_is_marked_on_the_first_send() {
    // Fixture 03 stores Maria's row; John's identical text (fixture 14's
    // request) then goes out marked at once and is never merged.
    let server = MockServer::start().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/memory/add"))
        .respond_with(recording_add(
            seen.clone(),
            vec![
                load("03-add-user1-first-name").body().clone(),
                load("65-add-user2-after-load").body().clone(),
            ],
        ))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/memory/[0-9a-f-]+$"))
        .respond_with(row_from_last_add(
            seen.clone(),
            load("16-get-by-id").body().clone(),
            false,
        ))
        .mount(&server)
        .await;
    let store = store(&server);
    let text = "The caller's name is Maria";
    for caller in [USER1, USER2] {
        let outcome = store
            .add(&user(caller), NewMemory::new(text, MemorySector::Semantic))
            .await
            .unwrap();
        assert!(matches!(outcome, AddOutcome::Created(_)), "{outcome:?}");
        assert_eq!(outcome.memory().content, text);
    }
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent[0]["content"], text);
    let marked = sent[1]["content"].as_str().unwrap();
    assert!(
        marked.starts_with(text) && marked.contains(" (ref "),
        "{marked}"
    );
    assert!(ContentHash::of(marked).distance(ContentHash::of(text)) > 3);
    assert_eq!(store.dedup_stats().marked_first, 1);
    assert_eq!(store.dedup_stats().merged, 0);
}

#[tokio::test]
async fn a_rejected_add_reports_the_servers_reason_and_is_not_retried() {
    for fixture in ["57-invalid-missing-content", "58-invalid-empty-content"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/memory/add"))
            .respond_with(load(fixture).answer())
            .expect(1)
            .mount(&server)
            .await;
        let err = store(&server)
            .add(&user(USER1), NewMemory::new("x", MemorySector::Semantic))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, MemoryError::Rejected { reason: m, .. } if m.contains("400") && m.contains("content")),
            "{fixture}: got {err:?}"
        );
    }
}

#[tokio::test]
async fn blank_content_is_rejected_without_a_request() {
    let (server, emulator) = Emulator::new(Some(KEY)).start().await;
    let err = store(&server)
        .add(&user(USER1), NewMemory::new("  ", MemorySector::Semantic))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MemoryError::Rejected { reason: m, .. } if m.contains("content")),
        "{err:?}"
    );
    assert_eq!(emulator.requests(), 0);
}

// ---------------------------------------------------------------- reads

#[tokio::test]
async fn search_keeps_only_the_callers_live_rows_and_ranks_them() {
    // The server's query answer of 20 carries another caller's row (John)
    // and the cached answer of 40 a deleted one (1a06…). Search never asks
    // it: it ranks the caller's own live rows with the shared ranking.
    for query_fixture in ["20-query-no-user-filter", "40-query-cache-returns-deleted"] {
        let server = MockServer::start().await;
        let recorded = load(query_fixture);
        Mock::given(method("POST"))
            .and(path("/memory/query"))
            .respond_with(recorded.answer())
            .expect(0)
            .mount(&server)
            .await;
        let live: Vec<Value> = items("26-list-all-user1")
            .into_iter()
            .filter(|i| i["id"] != "1a06e01d-e598-4b92-87b8-c87f1aebe319")
            .collect();
        list_of(USER1)
            .and(query_param("l", "100"))
            .and(query_param("u", "0"))
            .respond_with(answer(json!({"items": live})))
            .expect(1)
            .mount(&server)
            .await;
        let text = recorded.request.body["query"].as_str().unwrap();
        let found = store(&server)
            .search(&user(USER1), &SearchQuery::new(text, 8))
            .await
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|f| f.memory.id.as_str()).collect();
        assert!(!ids.is_empty(), "{query_fixture}");
        for f in &found {
            assert_eq!(f.memory.user_id, user(USER1));
            assert!(
                live.iter().any(|i| i["id"] == f.memory.id.as_str()),
                "{query_fixture}: {ids:?}"
            );
        }
        assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
        if query_fixture.starts_with("20") {
            assert_eq!(ids[0], "e707d1c8-d533-4d64-b248-a2ef6b05c285", "{ids:?}");
        } else {
            assert!(!ids.contains(&"1a06e01d-e598-4b92-87b8-c87f1aebe319"));
        }
    }
}

#[tokio::test]
async fn search_finds_a_memory_the_global_vector_search_crowded_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/memory/query"))
        .respond_with(load("67-query-user2-crowded-out").answer())
        .mount(&server)
        .await;
    let johns: Vec<Value> = items("68-list-all-no-filter-limit")
        .into_iter()
        .filter(|i| i["user_id"] == USER2)
        .collect();
    list_of(USER2)
        .respond_with(answer(json!({"items": johns})))
        .mount(&server)
        .await;
    let found = store(&server)
        .search(&user(USER2), &SearchQuery::new("Minneapolis branch", 3))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].memory.id.as_str(),
        "597d175e-9ac2-4b59-b258-a4e6f0b64880"
    );
}

#[tokio::test]
async fn list_pages_the_recorded_rows_newest_first() {
    let server = MockServer::start().await;
    list_of(USER1)
        .respond_with(load("26-list-all-user1").answer())
        .mount(&server)
        .await;
    let store = store(&server);
    let me = user(USER1);
    let mut request = ListRequest::first(2);
    let mut seen = Vec::new();
    loop {
        let page = store.list(&me, &request).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|m| m.id.as_str().to_owned()));
        match page.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => break,
        }
    }
    let recorded: Vec<String> = items("26-list-all-user1")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, recorded);
}

#[tokio::test]
async fn list_drops_rows_of_other_callers_even_if_the_server_returns_them() {
    // 28: without a working user filter the server returns everyone's rows.
    let server = MockServer::start().await;
    list_of(USER1)
        .respond_with(load("28-list-all-no-filter").answer())
        .mount(&server)
        .await;
    let page = store(&server)
        .list(&user(USER1), &ListRequest::first(100))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 5);
    assert!(page.items.iter().all(|m| m.user_id == user(USER1)));
}

#[tokio::test]
async fn get_maps_the_recorded_answers() {
    let server = MockServer::start().await;
    let ok = load("17-get-by-id-with-owner");
    Mock::given(method("GET"))
        .and(path(ok.path()))
        .and(query_param("user_id", USER1))
        .respond_with(ok.answer())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ok.path()))
        .and(query_param("user_id", USER2))
        .respond_with(load("15-get-dedup-target-as-user2").answer())
        .mount(&server)
        .await;
    let missing = load("18-get-by-id-not-found");
    Mock::given(method("GET"))
        .and(path(missing.path()))
        .respond_with(missing.answer())
        .mount(&server)
        .await;
    let store = store(&server);
    let e707 = id("e707d1c8-d533-4d64-b248-a2ef6b05c285");
    let memory = store.get(&user(USER1), &e707).await.unwrap();
    assert_eq!(memory.content, "The caller's name is Maria");
    assert_eq!(memory.tags, ["profile", "first_name"]);
    assert_eq!(memory.created_at.as_secs(), 1_795_672_584);
    let forbidden = store.get(&user(USER2), &e707).await;
    assert!(
        matches!(forbidden, Err(MemoryError::NotFound(_))),
        "{forbidden:?}"
    );
    let unknown = store
        .get(&user(USER1), &id("00000000-0000-0000-0000-000000000000"))
        .await;
    assert!(
        matches!(unknown, Err(MemoryError::NotFound(_))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn profile_is_built_from_the_callers_rows_not_the_placeholder_summary() {
    let server = MockServer::start().await;
    list_of(USER1)
        .respond_with(load("26-list-all-user1").answer())
        .mount(&server)
        .await;
    let profile = store(&server).profile(&user(USER1)).await.unwrap();
    assert_eq!(profile.memory_count, 5);
    assert_eq!(profile.summary, None);
    assert_eq!(profile.name, None);
}

// -------------------------------------------------------------- changes

#[tokio::test]
async fn update_patches_the_recorded_shape_and_reads_the_row_back() {
    let server = MockServer::start().await;
    let before = load("05-get-user1-salience-decay-check");
    let after = load("31-get-after-patch");
    let patch = load("30-patch-memory");
    Mock::given(method("GET"))
        .and(path(before.path()))
        .and(query_param("user_id", USER1))
        .respond_with(before.answer())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(after.path()))
        .respond_with(after.answer())
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(patch.path()))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({
            "content": patch.request.body["content"],
            "tags": patch.request.body["tags"],
            "user_id": USER1,
        })))
        .respond_with(patch.answer())
        .expect(1)
        .mount(&server)
        .await;
    let update = MemoryUpdate {
        content: Some("Maria prefers to be called back after 6pm".into()),
        tags: Some(vec![
            "preference".into(),
            "callback_time".into(),
            "updated".into(),
        ]),
        ..MemoryUpdate::default()
    };
    let memory = store(&server)
        .update(
            &user(USER1),
            &id("b7a582d8-272c-4fb7-9be5-f1f53b5dd4bc"),
            update,
        )
        .await
        .unwrap();
    assert_eq!(memory.content, "Maria prefers to be called back after 6pm");
}

#[tokio::test]
async fn update_maps_the_recorded_errors() {
    let b7a5 = id("b7a582d8-272c-4fb7-9be5-f1f53b5dd4bc");
    let change = || MemoryUpdate {
        content: Some("hijack".into()),
        ..MemoryUpdate::default()
    };
    for (fixture, expect_not_found) in [
        ("33-patch-wrong-user", true),
        ("34-patch-not-found", true),
        ("35-patch-no-body", false),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/memory/{b7a5}")))
            .respond_with(load("05-get-user1-salience-decay-check").answer())
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .respond_with(load(fixture).answer())
            .mount(&server)
            .await;
        let result = store(&server).update(&user(USER1), &b7a5, change()).await;
        if expect_not_found {
            assert!(
                matches!(result, Err(MemoryError::NotFound(_))),
                "{fixture}: {result:?}"
            );
        } else {
            assert!(
                matches!(&result, Err(MemoryError::Unavailable { reason: m, .. }) if m.contains("500")),
                "{fixture}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn delete_maps_the_recorded_answers() {
    let row_1a06 = items("26-list-all-user1")
        .into_iter()
        .find(|i| i["id"] == "1a06e01d-e598-4b92-87b8-c87f1aebe319")
        .unwrap();
    // (delete fixture, the get's answer, deleted?, DELETE requests sent)
    let cases = [
        ("38-delete-memory", answer(row_1a06.clone()), true, 1),
        // Found, then gone before the DELETE: not found.
        ("39-delete-again-404", answer(row_1a06.clone()), false, 1),
        // Another caller's memory or a deleted one: no DELETE is sent.
        (
            "37-delete-wrong-user",
            load("15-get-dedup-target-as-user2").answer(),
            false,
            0,
        ),
        (
            "39-delete-again-404",
            load("41-get-deleted-404").answer(),
            false,
            0,
        ),
    ];
    for (fixture, get_answer, deleted, deletes) in cases {
        let server = MockServer::start().await;
        let recorded = load(fixture);
        let owner = if fixture.starts_with("37") {
            USER2
        } else {
            USER1
        };
        Mock::given(method("GET"))
            .and(path(recorded.path()))
            .and(query_param("user_id", owner))
            .respond_with(get_answer)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(recorded.path()))
            .and(query_param("user_id", owner))
            .and(header("x-api-key", KEY))
            .respond_with(recorded.answer())
            .expect(deletes)
            .mount(&server)
            .await;
        let result = store(&server)
            .delete(&user(owner), &id("1a06e01d-e598-4b92-87b8-c87f1aebe319"))
            .await;
        if deleted {
            assert!(result.is_ok(), "{fixture}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(MemoryError::NotFound(_))),
                "{fixture}: {result:?}"
            );
        }
        server.verify().await;
    }
}

#[tokio::test]
async fn erase_user_returns_the_recorded_counts() {
    let server = MockServer::start().await;
    list_of(USER2)
        .respond_with(answer(json!({"items": []})))
        .mount(&server)
        .await;
    let first = load("48-delete-user-memories");
    Mock::given(method("DELETE"))
        .and(path(first.path()))
        .respond_with(first.answer())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(first.path()))
        .respond_with(load("49-delete-user-memories-again").answer())
        .mount(&server)
        .await;
    let store = store(&server);
    assert_eq!(store.erase_user(&user(USER2)).await.unwrap(), 1);
    assert_eq!(store.erase_user(&user(USER2)).await.unwrap(), 0);
}

// ------------------------------------------------ failures and retries

#[tokio::test]
async fn a_slow_read_times_out_and_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/memory/all"))
        .respond_with(answer(json!({"items": []})).set_delay(Duration::from_secs(5)))
        .expect(3)
        .mount(&server)
        .await;
    let store =
        OpenMemoryStore::new(config(&server).read_timeout(Duration::from_millis(50))).unwrap();
    let err = store
        .list(&user(USER1), &ListRequest::first(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, MemoryError::Timeout(d) if d == Duration::from_millis(50)),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_slow_add_times_out_and_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/memory/add"))
        .respond_with(
            answer(load("03-add-user1-first-name").body().clone())
                .set_delay(Duration::from_secs(5)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let store =
        OpenMemoryStore::new(config(&server).write_timeout(Duration::from_millis(50))).unwrap();
    let err = store
        .add(
            &user(USER1),
            NewMemory::new("Caller likes tea", MemorySector::Semantic),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn a_failing_server_is_retried_then_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/memory/all"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"err": "internal"})))
        .expect(3)
        .mount(&server)
        .await;
    let err = store(&server)
        .list(&user(USER1), &ListRequest::first(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MemoryError::Unavailable { reason: m, .. } if m.contains("500") && m.contains("internal")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_add_without_a_key_is_sent_once_even_when_the_server_fails() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/memory/add"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"err": "boom"})))
        .expect(1)
        .mount(&server)
        .await;
    let err = store(&server)
        .add(
            &user(USER1),
            NewMemory::new("Caller likes tea", MemorySector::Semantic),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn an_add_with_a_key_is_retried_and_checks_the_key_again_each_time() {
    let server = MockServer::start().await;
    list_of(USER1)
        .respond_with(answer(json!({"items": []})))
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/memory/add"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"err": "busy"})))
        .expect(3)
        .mount(&server)
        .await;
    let new = NewMemory::new("Summary of the call", MemorySector::Episodic)
        .idempotency_key(IdempotencyKey::new("conv_1/summary").unwrap());
    let err = store(&server).add(&user(USER1), new).await.unwrap_err();
    assert!(matches!(err, MemoryError::Unavailable { .. }), "{err:?}");
    assert_eq!(bodies(&server, "POST", "/memory/add").await.len(), 3);
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = OpenMemoryConfig::from_port_or_url(&port.to_string())
        .unwrap()
        .retry_base_delay(Duration::from_millis(1));
    let err = OpenMemoryStore::new(config)
        .unwrap()
        .get(&user(USER1), &id("e707d1c8-d533-4d64-b248-a2ef6b05c285"))
        .await
        .unwrap_err();
    assert!(matches!(&err, MemoryError::Unavailable { .. }), "{err:?}");
    // The transport error is kept as the source, so a log can show the
    // root cause; no part of the chain names the caller.
    let source = std::error::Error::source(&err).expect("the transport error is the source");
    assert!(
        source
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_connect),
        "{source:?}"
    );
    let chain = ErrorChain(&err).to_string();
    assert!(chain.contains("refused"), "{chain}");
    assert!(!chain.contains("16125550101"), "{chain}");
}

#[tokio::test]
async fn an_empty_reply_from_a_crashing_server_is_unavailable() {
    // Fixtures 69–70: the server dies and the client sees an empty reply.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Mutex::new(0usize));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            *counter.lock().unwrap() += 1;
            drop(socket);
        }
    });
    let config = OpenMemoryConfig::from_port_or_url(&port.to_string())
        .unwrap()
        .retry_base_delay(Duration::from_millis(1));
    let err = OpenMemoryStore::new(config)
        .unwrap()
        .list(&user(USER1), &ListRequest::first(5))
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::Unavailable { .. }), "{err:?}");
    assert_eq!(*accepted.lock().unwrap(), 3, "a read is tried three times");
}

#[tokio::test]
async fn the_key_never_shows_in_debug_output() {
    let server = MockServer::start().await;
    let store = store(&server);
    assert!(!format!("{store:?}").contains(KEY));
}

#[tokio::test]
async fn search_never_waits_on_the_servers_vector_search() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/memory/query"))
        .respond_with(
            load("19-query-user1-filters-user_id")
                .answer()
                .set_delay(Duration::from_secs(10)),
        )
        .expect(0)
        .mount(&server)
        .await;
    list_of(USER1)
        .respond_with(load("26-list-all-user1").answer())
        .mount(&server)
        .await;
    let store =
        OpenMemoryStore::new(config(&server).read_timeout(Duration::from_millis(500))).unwrap();
    let found = store
        .search(&user(USER1), &SearchQuery::new("Biscuit the dog", 3))
        .await
        .unwrap();
    assert_eq!(
        found[0].memory.id.as_str(),
        "767d57ed-e703-4349-a277-1bebe043d17b"
    );
}

#[tokio::test]
async fn a_sector_filter_is_applied_to_the_callers_rows() {
    let server = MockServer::start().await;
    let recorded = load("24-query-user1-sector-filter");
    Mock::given(method("POST"))
        .and(path("/memory/query"))
        .respond_with(recorded.answer())
        .expect(0)
        .mount(&server)
        .await;
    list_of(USER1)
        .respond_with(load("26-list-all-user1").answer())
        .mount(&server)
        .await;
    let query = SearchQuery::new("Maria's pet", 8).filter(recall_memory::MemoryFilter {
        sector: Some(MemorySector::Emotional),
        ..Default::default()
    });
    let found = store(&server).search(&user(USER1), &query).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|f| f.memory.id.as_str()).collect();
    assert_eq!(ids, ["767d57ed-e703-4349-a277-1bebe043d17b"]);
}

#[tokio::test]
async fn a_caller_with_more_rows_than_one_server_page_is_read_in_full() {
    // Fixture 29: `l` is the page size and `u` the offset.
    let server = MockServer::start().await;
    let template = items("26-list-all-user1")[0].clone();
    let row = |n: i64| {
        let mut r = template.clone();
        r["id"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
        r["content"] = json!(format!("Call note number {n}"));
        r["created_at"] = json!(1_795_672_584_000_i64 - n * 1000);
        r
    };
    let first: Vec<Value> = (0..100).map(row).collect();
    let second: Vec<Value> = (100..105).map(row).collect();
    list_of(USER1)
        .and(query_param("l", "100"))
        .and(query_param("u", "0"))
        .respond_with(answer(json!({ "items": first })))
        .expect(1)
        .mount(&server)
        .await;
    list_of(USER1)
        .and(query_param("l", "100"))
        .and(query_param("u", "100"))
        .respond_with(answer(json!({ "items": second })))
        .expect(1)
        .mount(&server)
        .await;
    let profile = store(&server).profile(&user(USER1)).await.unwrap();
    assert_eq!(profile.memory_count, 105);
}
