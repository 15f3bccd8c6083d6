//! What the embedded store adds to the port's rules: word matching,
//! ranking, safety of user text, atomic batches, and readers that a
//! writer does not block.

use std::time::Duration;

use recall_embedded::{EmbeddedOptions, EmbeddedStore};
use recall_memory::{
    Fact, FactKey, IdempotencyKey, ListRequest, MemoryError, MemoryStore, NewMemory, SearchQuery,
};
use recall_model::{DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp};

const DAY: i64 = 86_400;

fn caller(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1612555{n:04}")).unwrap()
}

fn now() -> UnixTimestamp {
    UnixTimestamp::from_secs(1_780_000_000).unwrap()
}

fn store() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("memory.db")).unwrap();
    (dir, store)
}

fn summary(content: &str, days_ago: i64) -> NewMemory {
    NewMemory::new(content, MemorySector::Episodic)
        .salience(Salience::MEDIUM)
        .occurred_at(now().plus_secs(-days_ago * DAY))
}

async fn search(store: &EmbeddedStore, user: &PhoneNumber, text: &str) -> Vec<String> {
    store
        .search(user, &SearchQuery::new(text, 5).at(now()))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.memory.content)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stems_and_prefixes_match_other_forms_of_a_word() {
    let (_dir, store) = store();
    let me = caller(1);
    for m in [
        summary(
            "Caller asked about refinancing the mortgage on the Elm Street house",
            3,
        ),
        summary("Caller talked through the late payment penalty", 4),
        summary("Caller ordered new checks", 5),
    ] {
        store.add(&me, m).await.unwrap();
    }
    // Every memory comes back (the best k), those sharing a word first.
    let hits = search(&store, &me, "did we talk about refinance").await;
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert!(hits[0].contains("refinancing"), "{hits:?}");
    assert!(hits[1].contains("talked"), "{hits:?}");
    assert!(search(&store, &me, "penalties").await[0].contains("penalty"));
    // Nothing in common: still answered, with scores that say so.
    let unrelated = store
        .search(&me, &SearchQuery::new("savings", 5).at(now()))
        .await
        .unwrap();
    assert_eq!(unrelated.len(), 3);
    assert!(unrelated.iter().all(|r| r.score < 0.05), "{unrelated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_fragments_find_the_number() {
    let (_dir, store) = store();
    let me = caller(2);
    store
        .add(
            &me,
            NewMemory::new(
                "Caller's mobile_number: +1 (612) 978-2029",
                MemorySector::Semantic,
            ),
        )
        .await
        .unwrap();
    store
        .add(
            &me,
            summary("Caller paid 2,030 dollars on account 55512", 1),
        )
        .await
        .unwrap();
    for query in [
        "2029",
        "978-2029",
        "978 2029",
        "6129782029",
        "+16129782029",
        "(612) 978",
    ] {
        let hits = search(&store, &me, query).await;
        assert_eq!(
            hits.first().map(String::as_str),
            Some("Caller's mobile_number: +1 (612) 978-2029"),
            "query {query:?}: {hits:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fts_syntax_in_user_text_is_searched_as_words_never_run() {
    let (_dir, store) = store();
    let me = caller(3);
    let tricky =
        r#"Caller said "NEAR(deal OR NOT) AND * col:body ^start" -- '); DROP TABLE memories; --"#;
    store.add(&me, summary(tricky, 1)).await.unwrap();
    store
        .add(&me, summary("Caller asked about a car loan", 2))
        .await
        .unwrap();
    for query in [
        r#"""#,
        r#"" OR "" AND NOT"#,
        "NEAR(a b, 3)",
        "body:deal*",
        "^start",
        "* * *",
        "'); DROP TABLE memories; --",
        r#"deal" OR "loan"#,
        "(((",
        "\u{0}\u{1}",
    ] {
        let result = store
            .search(&me, &SearchQuery::new(query, 5).at(now()))
            .await;
        assert!(result.is_ok(), "query {query:?} failed: {result:?}");
    }
    assert_eq!(search(&store, &me, "NEAR(deal)").await[0], tricky);
    assert_eq!(search(&store, &me, "DROP TABLE").await[0], tricky);
    // The table is still there and whole.
    assert_eq!(store.profile(&me).await.unwrap().memory_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_and_salient_memories_rank_first_among_equal_matches() {
    let (_dir, store) = store();
    let me = caller(4);
    store
        .add(&me, summary("Caller asked about the branch hours", 200))
        .await
        .unwrap();
    store
        .add(&me, summary("Caller asked about the branch hours", 2))
        .await
        .unwrap();
    store
        .add(
            &me,
            NewMemory::new(
                "Caller asked about the branch hours",
                MemorySector::Episodic,
            )
            .salience(Salience::LOW)
            .occurred_at(now().plus_secs(-2 * DAY)),
        )
        .await
        .unwrap();
    let results = store
        .search(&me, &SearchQuery::new("branch hours", 5).at(now()))
        .await
        .unwrap();
    let ages: Vec<(i64, f64)> = results
        .iter()
        .map(|r| {
            (
                (now().as_secs() - r.memory.created_at.as_secs()) / DAY,
                r.memory.salience.get(),
            )
        })
        .collect();
    assert_eq!(ages, vec![(2, 0.7), (2, 0.3), (200, 0.7)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_facts_do_not_fade() {
    let (_dir, store) = store();
    let me = caller(5);
    store
        .add(
            &me,
            NewMemory::new(
                "Caller's preferred_branch: Riverside",
                MemorySector::Semantic,
            )
            .salience(Salience::HIGH)
            .decay(DecayLambda::PERMANENT)
            .occurred_at(now().plus_secs(-3 * 365 * DAY))
            .fact(Fact {
                key: FactKey::new("preferred_branch").unwrap(),
                value: "Riverside".into(),
                is_name: false,
            }),
        )
        .await
        .unwrap();
    store
        .add(
            &me,
            summary(
                "Caller walked past the Riverside branch on the way to work",
                300,
            ),
        )
        .await
        .unwrap();
    let hits = search(&store, &me, "which branch does she use").await;
    assert_eq!(hits[0], "Caller's preferred_branch: Riverside", "{hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_inputs_give_equal_results_newest_write_first_on_ties() {
    let (_dir, store) = store();
    let me = caller(6);
    let mut ids = Vec::new();
    for _ in 0..4 {
        let m = store
            .add(&me, summary("Caller asked about a wire transfer", 1))
            .await
            .unwrap();
        ids.push(m.memory().id.clone());
    }
    let query = SearchQuery::new("wire transfer", 10).at(now());
    let first = store.search(&me, &query).await.unwrap();
    let second = store.search(&me, &query).await.unwrap();
    assert_eq!(first, second);
    let got: Vec<_> = first.iter().map(|r| r.memory.id.clone()).collect();
    ids.reverse();
    assert_eq!(got, ids, "equal scores and times: the later write first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_bad_memory_writes_nothing_and_names_it() {
    let (_dir, store) = store();
    let me = caller(7);
    let batch = vec![
        summary("Caller asked about savings", 1),
        NewMemory::new("   ", MemorySector::Episodic),
    ];
    match store.add_batch(&me, batch).await {
        Err(MemoryError::Rejected { reason: why, .. }) => {
            assert!(why.contains("memories[1].content"), "{why}")
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(store.profile(&me).await.unwrap().memory_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_survive_a_restart_and_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let me = caller(8);
    let write = || {
        summary("Caller asked about a travel notice", 1)
            .idempotency_key(IdempotencyKey::new("conv_1/summary").unwrap())
    };
    let store = EmbeddedStore::open(&path).unwrap();
    let first = store.add(&me, write()).await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(&path).unwrap();
    let again = store.add(&me, write()).await.unwrap();
    assert!(again.is_duplicate());
    assert_eq!(again.memory(), first.memory());

    // Deleted by the caller's request: replaying the event must not bring it back.
    store.delete(&me, &first.memory().id).await.unwrap();
    let replay = store.add(&me, write()).await.unwrap();
    assert!(replay.is_duplicate());
    assert_eq!(store.profile(&me).await.unwrap().memory_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_are_not_blocked_while_another_connection_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let options = EmbeddedOptions {
        busy_timeout: Duration::from_millis(100),
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open_with(&path, options).unwrap();
    let me = caller(9);
    store
        .add(&me, summary("Caller asked about overdraft fees", 1))
        .await
        .unwrap();

    let holder = rusqlite::Connection::open(&path).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM users;")
        .unwrap();

    // Reads see the last committed state, not the other writer's.
    assert_eq!(search(&store, &me, "overdraft").await.len(), 1);
    assert_eq!(
        store
            .list(&me, &ListRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(store.profile(&me).await.unwrap().memory_count, 1);
    store.health().await.unwrap();
    // A write cannot get the lock: a retryable error, not a hang.
    let err = store
        .add(&me, summary("Caller called again", 0))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");

    holder.execute_batch("ROLLBACK;").unwrap();
    store
        .add(&me, summary("Caller called again", 0))
        .await
        .unwrap();
    assert_eq!(store.profile(&me).await.unwrap().memory_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_callers_words_do_not_change_anothers_results() {
    let (_dir, store) = store();
    let (a, b) = (caller(10), caller(11));
    store
        .add(&a, summary("Caller asked about the Elm Street mortgage", 1))
        .await
        .unwrap();
    for i in 0..30 {
        store
            .add(
                &b,
                summary(&format!("Caller asked about mortgage number {i}"), 1),
            )
            .await
            .unwrap();
    }
    let hits = store
        .search(&a, &SearchQuery::new("mortgage", 5).at(now()))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].memory.user_id, a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_keeps_every_memory_findable_and_the_ranking_unchanged() {
    let (_dir, store) = store();
    let me = caller(12);
    for i in 0..50 {
        store
            .add(
                &me,
                summary(&format!("Caller asked about invoice {i} and the refund"), i),
            )
            .await
            .unwrap();
    }
    let query = SearchQuery::new("refund invoice 7", 10).at(now());
    let before = store.search(&me, &query).await.unwrap();
    store.optimize().await.unwrap();
    let after = store.search(&me, &query).await.unwrap();
    assert_eq!(before, after);
    assert_eq!(
        after[0].memory.content,
        "Caller asked about invoice 7 and the refund"
    );
    store
        .add(&me, summary("Caller asked about a refund again", 0))
        .await
        .unwrap();
    assert_eq!(store.profile(&me).await.unwrap().memory_count, 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_lose_nothing() {
    let (_dir, store) = store();
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let me = caller(100 + t % 4);
            for i in 0..25 {
                let batch = vec![
                    summary(&format!("Caller asked about parcel {t}-{i}"), 1),
                    summary(&format!("Caller asked about invoice {t}-{i}"), 1),
                ];
                store.add_batch(&me, batch).await.unwrap();
                let hits = store
                    .search(&me, &SearchQuery::new("parcel", 5).at(now()))
                    .await
                    .unwrap();
                assert!(!hits.is_empty());
                assert!(hits.iter().all(|h| h.memory.user_id == me));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for c in 0..4 {
        // Two tasks per caller, 25 batches of 2 each.
        assert_eq!(
            store.profile(&caller(100 + c)).await.unwrap().memory_count,
            100
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_finds_older_matches_behind_many_newer_ones() {
    let (_dir, store) = store();
    let me = caller(13);
    let agent = |id: &str| recall_model::AgentId::parse(id).unwrap();
    let old: Vec<NewMemory> = (0..5)
        .map(|i| summary(&format!("Caller asked about parcel {i}"), 30).agent(agent("agent_b")))
        .collect();
    store.add_batch(&me, old).await.unwrap();
    let newer: Vec<NewMemory> = (0..400)
        .map(|i| summary(&format!("Caller asked about parcel {i}"), 1).agent(agent("agent_a")))
        .collect();
    store.add_batch(&me, newer).await.unwrap();

    let filter = recall_memory::MemoryFilter {
        agent_id: Some(agent("agent_b")),
        ..Default::default()
    };
    let hits = store
        .search(
            &me,
            &SearchQuery::new("parcel", 10).filter(filter).at(now()),
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 5);
    assert!(
        hits.iter()
            .all(|h| h.memory.agent_id == Some(agent("agent_b")))
    );
}

/// A caller with thousands of memories: the nearest by meaning are found
/// among all of them, and a change to the caller's memories is seen at
/// once (their vectors are kept in memory between searches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_caller_is_searched_by_meaning_and_changes_are_seen_at_once() {
    use recall_memory::embed::{Embedding, ModelTag};
    let model = ModelTag::of("test/axes-8");
    let axis = |i: usize, strength: f32| {
        let mut v = vec![0.05_f32; 8];
        v[i] = strength;
        Embedding::new(model, v).unwrap()
    };
    let (_dir, store) = store();
    let me = caller(40);
    // 1,500 unremarkable calls, then one about the garden, long ago.
    let mut batch: Vec<NewMemory> = (0..1_500)
        .map(|i| {
            summary(&format!("Routine account review number {i}"), 1 + i % 300)
                .embedding(axis(0, 1.0))
        })
        .collect();
    batch.push(summary("Caller planted tulips and daffodils", 400).embedding(axis(3, 1.0)));
    store.bulk_add_blocking(vec![(me.clone(), batch)]).unwrap();

    let ask = |v: Embedding| SearchQuery::new("spring flowers", 3).at(now()).vector(v);
    let found = store.search(&me, &ask(axis(3, 1.0))).await.unwrap();
    assert_eq!(
        found[0].memory.content,
        "Caller planted tulips and daffodils"
    );

    // A new memory nearer still: the next search sees it.
    store
        .add(
            &me,
            summary("Caller asked about pruning roses", 1).embedding(axis(5, 1.0)),
        )
        .await
        .unwrap();
    let found = store.search(&me, &ask(axis(5, 1.0))).await.unwrap();
    assert_eq!(found[0].memory.content, "Caller asked about pruning roses");

    // A memory given a new embedding: seen at once too.
    let roses = found[0].memory.id.clone();
    store
        .set_embedding(&me, &roses, axis(6, 1.0))
        .await
        .unwrap();
    let found = store.search(&me, &ask(axis(6, 1.0))).await.unwrap();
    assert_eq!(found[0].memory.id, roses);
    // A deleted one never comes back.
    store.delete(&me, &roses).await.unwrap();
    let found = store.search(&me, &ask(axis(6, 1.0))).await.unwrap();
    assert!(found.iter().all(|r| r.memory.id != roses));
}
