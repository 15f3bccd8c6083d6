//! The in-memory store: the whole conformance suite, then what only the
//! fake does (failure injection, latency, concurrent use, its ranking).

use std::sync::Arc;
use std::time::Duration;

use recall_memory::{
    AddOutcome, Fact, FactKey, IdempotencyKey, InMemoryStore, ListRequest, MemoryError,
    MemoryStore, MemoryUpdate, NewMemory, SearchQuery, conformance,
};
use recall_model::{DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp};

fn caller(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1612555{n:04}")).unwrap()
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    conformance::run_all(&InMemoryStore::new()).await;
}

#[tokio::test]
async fn passes_the_conformance_suite_behind_a_trait_object_alongside_other_data() {
    let store: Arc<dyn MemoryStore> = Arc::new(InMemoryStore::new());
    store
        .add(
            &caller(1),
            NewMemory::new("Someone else's memory", MemorySector::Semantic),
        )
        .await
        .unwrap();
    conformance::run_all(store.as_ref()).await;
    let left = store
        .list(&caller(1), &ListRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        left.items.len(),
        1,
        "the suite must only touch its own callers"
    );
}

#[tokio::test]
async fn clones_share_the_same_memories() {
    let store = InMemoryStore::new();
    let clone = store.clone();
    clone
        .add(&caller(1), NewMemory::new("Shared", MemorySector::Semantic))
        .await
        .unwrap();
    assert_eq!(store.total_memories(), 1);
    assert_eq!(InMemoryStore::new().total_memories(), 0);
}

#[tokio::test]
async fn unavailable_store_fails_every_call_then_recovers_with_data_intact() {
    let store = InMemoryStore::new();
    let user = caller(1);
    let kept = store
        .add(
            &user,
            NewMemory::new("Caller likes tea", MemorySector::Semantic),
        )
        .await
        .unwrap()
        .memory()
        .clone();

    store.set_unavailable(true);
    let new = || NewMemory::new("Caller likes coffee", MemorySector::Semantic);
    let results = [
        store.health().await.err(),
        store.add(&user, new()).await.err(),
        store.add_batch(&user, vec![new()]).await.err(),
        store.search(&user, &SearchQuery::new("tea", 5)).await.err(),
        store.list(&user, &ListRequest::first(5)).await.err(),
        store.get(&user, &kept.id).await.err(),
        store
            .update(&user, &kept.id, MemoryUpdate::default())
            .await
            .err(),
        store.delete(&user, &kept.id).await.err(),
        store.erase_user(&user).await.err(),
        store.profile(&user).await.err(),
    ];
    for (n, err) in results.into_iter().enumerate() {
        let err = err.unwrap_or_else(|| panic!("call {n} must fail while unavailable"));
        assert!(
            matches!(err, MemoryError::Unavailable { .. }),
            "call {n}: {err:?}"
        );
        assert!(err.is_retryable());
    }

    store.set_unavailable(false);
    store.health().await.unwrap();
    assert_eq!(store.get(&user, &kept.id).await.unwrap(), kept);
    assert_eq!(store.total_memories(), 1);
}

#[tokio::test]
async fn failing_writes_change_nothing_while_reads_keep_working() {
    let store = InMemoryStore::new();
    let user = caller(2);
    let kept = store
        .add(
            &user,
            NewMemory::new("Caller likes tea", MemorySector::Semantic),
        )
        .await
        .unwrap()
        .memory()
        .clone();
    store.set_fail_writes(true);
    let update = MemoryUpdate {
        content: Some("changed".into()),
        ..MemoryUpdate::default()
    };
    assert!(matches!(
        store
            .add(&user, NewMemory::new("x", MemorySector::Semantic))
            .await,
        Err(MemoryError::Unavailable { .. })
    ));
    assert!(matches!(
        store.update(&user, &kept.id, update).await,
        Err(MemoryError::Unavailable { .. })
    ));
    assert!(matches!(
        store.delete(&user, &kept.id).await,
        Err(MemoryError::Unavailable { .. })
    ));
    assert!(matches!(
        store.erase_user(&user).await,
        Err(MemoryError::Unavailable { .. })
    ));
    assert_eq!(store.get(&user, &kept.id).await.unwrap(), kept);
    assert_eq!(
        store
            .search(&user, &SearchQuery::new("tea", 5))
            .await
            .unwrap()
            .len(),
        1
    );
    store.health().await.unwrap();

    store.set_fail_writes(false);
    store.delete(&user, &kept.id).await.unwrap();
    assert_eq!(store.total_memories(), 0);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_answers_on_the_tokio_clock() {
    let store = InMemoryStore::new();
    store.set_latency(Duration::from_millis(250));
    let slow = tokio::time::timeout(Duration::from_millis(100), store.health()).await;
    assert!(
        slow.is_err(),
        "an answer delayed 250 ms must miss a 100 ms budget"
    );
    let in_time = tokio::time::timeout(Duration::from_millis(400), store.health()).await;
    assert!(matches!(in_time, Ok(Ok(()))));

    store.set_latency(Duration::ZERO);
    let fast = tokio::time::timeout(Duration::from_millis(1), store.profile(&caller(1))).await;
    assert!(fast.is_ok(), "without latency the store answers at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_unique_ids_and_one_winner_per_idempotency_key() {
    let store = InMemoryStore::new();
    let user = caller(3);
    let key = IdempotencyKey::new("conv_1/summary").unwrap();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        let user = user.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let plain = store
                .add(
                    &user,
                    NewMemory::new(format!("Note {n}"), MemorySector::Episodic),
                )
                .await
                .unwrap();
            let keyed = store
                .add(
                    &user,
                    NewMemory::new(format!("Summary from task {n}"), MemorySector::Episodic)
                        .idempotency_key(key),
                )
                .await
                .unwrap();
            (plain.memory().id.clone(), keyed)
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    let mut summary_ids = std::collections::HashSet::new();
    for task in tasks {
        let (id, keyed) = task.await.unwrap();
        assert!(ids.insert(id), "ids must be unique under concurrency");
        if matches!(keyed, AddOutcome::Created(_)) {
            created += 1;
        }
        summary_ids.insert(keyed.memory().id.clone());
    }
    assert_eq!(created, 1, "exactly one concurrent write of a key creates");
    assert_eq!(
        summary_ids.len(),
        1,
        "every duplicate reports the same memory"
    );
    assert_eq!(store.total_memories(), 17);
}

#[tokio::test]
async fn ranking_weighs_salience_and_decay_between_equally_relevant_memories() {
    let store = InMemoryStore::new();
    let user = caller(4);
    let now = UnixTimestamp::now();
    let low = store
        .add(
            &user,
            NewMemory::new("Caller mentioned the boiler", MemorySector::Semantic)
                .salience(Salience::LOW)
                .decay(DecayLambda::PERMANENT),
        )
        .await
        .unwrap();
    let high = store
        .add(
            &user,
            NewMemory::new("Caller mentioned the boiler", MemorySector::Semantic)
                .salience(Salience::HIGH)
                .decay(DecayLambda::PERMANENT),
        )
        .await
        .unwrap();
    let faded = store
        .add(
            &user,
            NewMemory::new("Caller mentioned the boiler", MemorySector::Semantic)
                .salience(Salience::MAX)
                .decay(DecayLambda::new(0.5).unwrap())
                .occurred_at(now.plus_secs(-30 * 86_400)),
        )
        .await
        .unwrap();
    let found = store
        .search(&user, &SearchQuery::new("boiler", 10).at(now))
        .await
        .unwrap();
    let order: Vec<_> = found.iter().map(|r| r.memory.id.clone()).collect();
    assert_eq!(
        order,
        [
            high.memory().id.clone(),
            low.memory().id.clone(),
            faded.memory().id.clone()
        ],
        "higher salience first; a month of fast decay sinks even full salience"
    );
}

#[tokio::test]
async fn search_matches_word_forms_and_phone_numbers_first_and_scores_unrelated_at_zero() {
    let store = InMemoryStore::new();
    let user = caller(5);
    let loan = store
        .add(
            &user,
            NewMemory::new("Caller is refinancing the house", MemorySector::Episodic),
        )
        .await
        .unwrap();
    let phone = store
        .add(
            &user,
            NewMemory::new(
                "Call back on +1 (612) 978-2029 after five",
                MemorySector::Semantic,
            ),
        )
        .await
        .unwrap();
    store
        .add(
            &user,
            NewMemory::new("Caller's dog is called Rex", MemorySector::Semantic),
        )
        .await
        .unwrap();
    let found = store
        .search(&user, &SearchQuery::new("refinance", 10))
        .await
        .unwrap();
    assert_eq!(found[0].memory.id, loan.memory().id);
    assert!(found[1..].iter().all(|r| r.score == 0.0), "{found:?}");
    let found = store
        .search(&user, &SearchQuery::new("16129782029", 10))
        .await
        .unwrap();
    assert_eq!(found[0].memory.id, phone.memory().id);
    let found = store
        .search(&user, &SearchQuery::new("pizza", 10))
        .await
        .unwrap();
    assert_eq!(found.len(), 3, "the best k are returned, however weak");
    assert!(
        found.iter().all(|r| r.score == 0.0),
        "a memory matching no query word scores 0: {found:?}"
    );
}

#[tokio::test]
async fn a_query_without_terms_returns_the_most_salient_memories() {
    let store = InMemoryStore::new();
    let user = caller(6);
    let mut ids = Vec::new();
    for s in [0.2, 0.9, 0.5] {
        let m = store
            .add(
                &user,
                NewMemory::new(format!("Memory of salience {s}"), MemorySector::Semantic)
                    .salience(Salience::new(s).unwrap())
                    .decay(DecayLambda::PERMANENT),
            )
            .await
            .unwrap();
        ids.push(m.memory().id.clone());
    }
    for text in ["", "  ", "what is the"] {
        let found = store
            .search(&user, &SearchQuery::new(text, 2))
            .await
            .unwrap();
        let got: Vec<_> = found.iter().map(|r| r.memory.id.clone()).collect();
        assert_eq!(got, [ids[1].clone(), ids[2].clone()], "query {text:?}");
    }
}

#[tokio::test]
async fn a_rejected_batch_writes_nothing() {
    let store = InMemoryStore::new();
    let user = caller(7);
    let batch = vec![
        NewMemory::new("Caller's first_name: Ivy", MemorySector::Semantic).fact(Fact {
            key: FactKey::new("first_name").unwrap(),
            value: "Ivy".into(),
            is_name: true,
        }),
        NewMemory::new("", MemorySector::Episodic),
    ];
    let err = store.add_batch(&user, batch).await.unwrap_err();
    assert!(
        matches!(&err, MemoryError::Rejected { reason: m, .. } if m.starts_with("memories[1].content")),
        "{err:?}"
    );
    assert_eq!(store.total_memories(), 0);
}

#[tokio::test]
async fn failing_the_next_calls_recovers_by_itself() {
    let store = InMemoryStore::new();
    let user = caller(8);
    store.fail_next_calls(2);
    let note = || NewMemory::new("Caller asked for a brochure", MemorySector::Episodic);
    assert!(matches!(
        store.add(&user, note()).await,
        Err(MemoryError::Unavailable { .. })
    ));
    assert!(matches!(
        store.health().await,
        Err(MemoryError::Unavailable { .. })
    ));
    assert_eq!(store.total_memories(), 0, "a failed call changes nothing");
    store.add(&user, note()).await.unwrap();
    store.health().await.unwrap();
    assert_eq!(store.total_memories(), 1);
}

#[tokio::test]
async fn calls_counts_every_call_including_failed_ones() {
    let store = InMemoryStore::new();
    assert_eq!(store.calls(), 0);
    let user = caller(9);
    store.profile(&user).await.unwrap();
    store.set_unavailable(true);
    store.health().await.unwrap_err();
    store.set_unavailable(false);
    store
        .add_batch(&user, vec![NewMemory::new("a", MemorySector::Semantic)])
        .await
        .unwrap();
    assert_eq!(store.calls(), 3, "profile, failed health, one batch");
    assert_eq!(store.clone().calls(), 3, "clones share the count");
}

#[tokio::test]
async fn a_duplicate_reports_the_memory_as_it_is_now() {
    let store = InMemoryStore::new();
    let user = caller(10);
    let key = IdempotencyKey::new("conv_9/summary").unwrap();
    let note = || {
        NewMemory::new("Caller wants a quote", MemorySector::Episodic).idempotency_key(key.clone())
    };
    let first = store.add(&user, note()).await.unwrap().memory().clone();
    let update = MemoryUpdate {
        salience: Some(Salience::HIGH),
        ..MemoryUpdate::default()
    };
    let updated = store.update(&user, &first.id, update).await.unwrap();
    assert_eq!(
        store.add(&user, note()).await.unwrap(),
        AddOutcome::Duplicate(updated)
    );

    // Once deleted, a replay still changes nothing and reports the first write.
    store.delete(&user, &first.id).await.unwrap();
    assert_eq!(
        store.add(&user, note()).await.unwrap(),
        AddOutcome::Duplicate(first)
    );
    assert_eq!(store.total_memories(), 0);
}
