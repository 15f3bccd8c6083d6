//! The memory store port on PostgreSQL: the conformance suite, and what
//! only a shared database or a large caller shows.

mod common;

use common::with_schema;
use recall_memory::{
    AddOutcome, Embedding, Fact, FactKey, IdempotencyKey, MemoryStore, ModelTag, NewMemory,
    SearchQuery,
};
use recall_model::{MemorySector, PhoneNumber, UnixTimestamp};
use recall_postgres::{ALL_CANDIDATES, PgMemoryStore};

#[tokio::test]
async fn the_postgres_memory_store_keeps_the_memory_store_rules() {
    with_schema(|db| async move {
        recall_memory::conformance::run_all(&PgMemoryStore::new(db)).await;
    })
    .await;
}

fn caller() -> PhoneNumber {
    PhoneNumber::parse("+16125550199").unwrap()
}

#[tokio::test]
async fn racing_writes_of_one_fact_and_one_key_keep_one_of_each() {
    with_schema(|db| async move {
        let store = PgMemoryStore::new(db);
        let user = caller();
        let name = |value: &str| {
            NewMemory::new(
                format!("Caller's first_name: {value}"),
                MemorySector::Semantic,
            )
            .fact(Fact {
                key: FactKey::new("first_name").unwrap(),
                value: value.into(),
                is_name: true,
            })
        };
        let summary = || {
            NewMemory::new("Caller asked about a refund", MemorySector::Episodic)
                .idempotency_key(IdempotencyKey::new("conv_1/summary").unwrap())
        };
        let (a, b, c, d) = tokio::join!(
            store.add(&user, name("Ada")),
            store.add(&user, name("Bea")),
            store.add(&user, summary()),
            store.add(&user, summary()),
        );
        a.unwrap();
        b.unwrap();
        let duplicates = [c.unwrap(), d.unwrap()]
            .iter()
            .filter(|o| o.is_duplicate())
            .count();
        assert_eq!(duplicates, 1);
        let profile = store.profile(&user).await.unwrap();
        assert_eq!(profile.memory_count, 2, "{profile:?}");
    })
    .await;
}

#[tokio::test]
async fn a_large_caller_still_finds_an_old_memory_by_its_words() {
    with_schema(|db| async move {
        // With the cache (words weighed in memory) and without (PostgreSQL's
        // full-text ranking).
        for (store, user) in [
            (PgMemoryStore::new(db.clone()), caller()),
            (
                PgMemoryStore::with_cache(db.clone(), 0),
                PhoneNumber::parse("+16125550111").unwrap(),
            ),
        ] {
            let start = UnixTimestamp::from_secs(1_700_000_000).unwrap();
            let mut batch = vec![
                NewMemory::new(
                    "Caller is refinancing the mortgage on the lake cottage",
                    MemorySector::Episodic,
                )
                .occurred_at(start),
            ];
            for i in 0..(ALL_CANDIDATES + 60) {
                batch.push(
                    NewMemory::new(
                        format!("Caller asked about parcel delivery number {i}"),
                        MemorySector::Episodic,
                    )
                    .occurred_at(start.plus_secs(86_400 + i * 60)),
                );
            }
            let outcomes = store.add_batch(&user, batch).await.unwrap();
            assert!(outcomes.iter().all(|o| matches!(o, AddOutcome::Created(_))));
            // The cached store answers from its cache (a no-op for the other).
            store.cache_caller(&user).await.unwrap();
            let found = store
                .search(
                    &user,
                    &SearchQuery::new("refinance mortgage", 3).at(start.plus_secs(200 * 86_400)),
                )
                .await
                .unwrap();
            assert_eq!(
                found[0].memory.content,
                "Caller is refinancing the mortgage on the lake cottage"
            );
            // The newest calls are offered too: the latest call is found.
            let found = store
                .search(
                    &user,
                    &SearchQuery::new("what did she call about last time", 1)
                        .at(start.plus_secs(200 * 86_400)),
                )
                .await
                .unwrap();
            let last = ALL_CANDIDATES + 59;
            assert_eq!(
                found[0].memory.content,
                format!("Caller asked about parcel delivery number {last}")
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_large_caller_still_finds_an_old_memory_by_its_meaning() {
    with_schema(|db| async move {
        let store = PgMemoryStore::new(db);
        let user = caller();
        let model = ModelTag::of("recall-postgres/test-topics");
        let topic = |hot: usize| {
            let mut values = vec![0.05_f32; 8];
            values[hot] = 1.0;
            Embedding::new(model, values).unwrap()
        };
        let start = UnixTimestamp::from_secs(1_700_000_000).unwrap();
        let mut batch = vec![
            NewMemory::new(
                "Caller's dog Biscuit is recovering from surgery",
                MemorySector::Episodic,
            )
            .occurred_at(start)
            .embedding(topic(0)),
        ];
        for i in 0..(ALL_CANDIDATES + 60) {
            batch.push(
                NewMemory::new(
                    format!("Caller asked about parcel delivery number {i}"),
                    MemorySector::Episodic,
                )
                .occurred_at(start.plus_secs(86_400 + i * 60))
                .embedding(topic(1 + (i as usize) % 7)),
            );
        }
        store.add_batch(&user, batch).await.unwrap();
        // No word of the question is in the memory: only its meaning is.
        let found = store
            .search(
                &user,
                &SearchQuery::new("how is the poorly pooch", 3)
                    .vector(topic(0))
                    .at(start.plus_secs(200 * 86_400)),
            )
            .await
            .unwrap();
        assert_eq!(
            found[0].memory.content,
            "Caller's dog Biscuit is recovering from surgery"
        );
    })
    .await;
}

/// A replica caches a large caller's vectors; every write on another
/// replica (a new memory, a new embedding, an update, a deletion, an
/// erasure) is seen by its next search, and an erased caller leaves no
/// version row behind.
#[tokio::test]
async fn cached_vectors_follow_writes_made_on_another_replica() {
    with_schema(|db| async move {
        let (a, b) = (
            PgMemoryStore::new(db.clone()),
            PgMemoryStore::new(db.clone()),
        );
        let user = caller();
        let model = ModelTag::of("recall-postgres/test-cache");
        let topic = |hot: usize| {
            let mut values = vec![0.05_f32; 12];
            values[hot] = 1.0;
            Embedding::new(model, values).unwrap()
        };
        let start = UnixTimestamp::from_secs(1_700_000_000).unwrap();
        let batch = (0..(ALL_CANDIDATES + 40))
            .map(|i| {
                NewMemory::new(
                    format!("Caller asked about parcel delivery number {i}"),
                    MemorySector::Episodic,
                )
                .occurred_at(start.plus_secs(i * 60))
                .embedding(topic(1 + (i as usize) % 6))
            })
            .collect();
        b.add_batch(&user, batch).await.unwrap();
        let at = start.plus_secs(100 * 86_400);
        // Each question is asked twice: with what A cached before the
        // write (which must not be used), then with A's cache read again.
        let ask = |store: &PgMemoryStore, hot: usize| {
            let store = store.clone();
            let user = user.clone();
            async move {
                let query = SearchQuery::new("zzzz", 1).vector(topic(hot)).at(at);
                let first = |found: Vec<recall_memory::ScoredMemory>| {
                    found
                        .into_iter()
                        .map(|m| (m.memory.content, m.memory.id))
                        .next()
                };
                let stale = first(store.search(&user, &query).await.unwrap());
                store.cache_caller(&user).await.unwrap();
                let fresh = first(store.search(&user, &query).await.unwrap());
                assert_eq!(stale, fresh);
                fresh
            }
        };
        // Topic 9 is nobody's yet; the search fills A's cache.
        let before = ask(&a, 9).await.unwrap();
        assert!(before.0.starts_with("Caller asked about parcel"));

        // A new memory of topic 9, written on B: A finds it.
        b.add(
            &user,
            NewMemory::new(
                "Caller's greenhouse glass cracked in the storm",
                MemorySector::Episodic,
            )
            .occurred_at(start)
            .embedding(topic(9)),
        )
        .await
        .unwrap();
        let (content, id) = ask(&a, 9).await.unwrap();
        assert_eq!(content, "Caller's greenhouse glass cracked in the storm");

        // Its embedding changed on B (a backfill with another topic).
        b.set_embedding(&user, &id, topic(10)).await.unwrap();
        assert_ne!(ask(&a, 9).await.unwrap().1, id);
        assert_eq!(ask(&a, 10).await.unwrap().1, id);

        // Deleted on B: A no longer offers it.
        b.delete(&user, &id).await.unwrap();
        assert_ne!(ask(&a, 10).await.unwrap().1, id);

        // Erased on B: A finds nothing, and the number is gone from the
        // version table.
        b.erase_user(&user).await.unwrap();
        assert!(ask(&a, 1).await.is_none());
        let client = db.client().await.unwrap();
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM memory_versions WHERE user_id = $1",
                &[&user.as_str()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0);

        // Heard from again: versions never repeat, so A's old entry (if it
        // were still there) could not pass for the new memories.
        b.add_batch(
            &user,
            (0..(ALL_CANDIDATES + 5))
                .map(|i| {
                    NewMemory::new(format!("Fresh start {i}"), MemorySector::Episodic)
                        .occurred_at(start.plus_secs(i))
                        .embedding(topic(2))
                })
                .collect(),
        )
        .await
        .unwrap();
        assert!(ask(&a, 2).await.unwrap().0.starts_with("Fresh start"));
    })
    .await;
}

/// With the cache off, searches read the vectors every time and give the
/// same answers.
#[tokio::test]
async fn the_cache_changes_no_answer() {
    with_schema(|db| async move {
        let cached = PgMemoryStore::new(db.clone());
        let uncached = PgMemoryStore::with_cache(db.clone(), 0);
        let user = caller();
        let model = ModelTag::of("recall-postgres/test-same");
        let embed = |i: u64| {
            let values: Vec<f32> = (0..16)
                .map(|d| ((i * 7 + d * 13) % 17) as f32 - 8.0)
                .collect();
            Embedding::new(model, values).unwrap()
        };
        let start = UnixTimestamp::from_secs(1_700_000_000).unwrap();
        let batch = (0..(ALL_CANDIDATES as u64 + 100))
            .map(|i| {
                NewMemory::new(format!("Memory number {i}"), MemorySector::Episodic)
                    .occurred_at(start.plus_secs(i as i64 * 60))
                    .embedding(embed(i))
            })
            .collect();
        cached.add_batch(&user, batch).await.unwrap();
        cached.cache_caller(&user).await.unwrap();
        for probe in [3_u64, 50, 401, 999] {
            let query = SearchQuery::new("anything at all", 5)
                .vector(embed(probe))
                .at(start.plus_secs(400 * 86_400));
            for _ in 0..2 {
                let ids = |found: Vec<recall_memory::ScoredMemory>| {
                    found.into_iter().map(|m| m.memory.id).collect::<Vec<_>>()
                };
                assert_eq!(
                    ids(cached.search(&user, &query).await.unwrap()),
                    ids(uncached.search(&user, &query).await.unwrap())
                );
            }
        }
    })
    .await;
}

/// For a caller past the all-candidates size, the one-statement reads of
/// the memory tool and the greeting answer what their parts answer.
#[tokio::test]
async fn a_large_callers_combined_reads_agree_with_their_parts() {
    with_schema(|db| async move {
        let store = PgMemoryStore::new(db.clone());
        let user = caller();
        let start = UnixTimestamp::from_secs(1_700_000_000).unwrap();
        let mut batch: Vec<NewMemory> = (0..(ALL_CANDIDATES as u64 + 50))
            .map(|i| {
                NewMemory::new(
                    format!(
                        "Call {i} about the {} order",
                        ["rose", "tulip"][i as usize % 2]
                    ),
                    MemorySector::Episodic,
                )
                .occurred_at(start.plus_secs(i as i64 * 60))
            })
            .collect();
        batch.push(
            NewMemory::new("Caller's first_name: Ada", MemorySector::Semantic).fact(
                recall_memory::Fact {
                    key: recall_memory::FactKey::new("first_name").unwrap(),
                    value: "Ada".into(),
                    is_name: true,
                },
            ),
        );
        store.add_batch(&user, batch).await.unwrap();
        let profile = store.profile(&user).await.unwrap();
        assert_eq!(profile.name.as_deref(), Some("Ada"));
        assert_eq!(profile.memory_count, ALL_CANDIDATES as u64 + 51);
        let ids = |found: &[recall_memory::ScoredMemory]| {
            found
                .iter()
                .map(|m| m.memory.id.clone())
                .collect::<Vec<_>>()
        };
        for question in ["the tulip order", "what was the first call", "Ada"] {
            let query = SearchQuery::new(question, 5).at(start.plus_secs(86_400));
            let (together, found) = store.search_with_profile(&user, &query).await.unwrap();
            assert_eq!(together, profile);
            assert!(!found.is_empty(), "{question}: nothing found");
            assert_eq!(
                ids(&found),
                ids(&store.search(&user, &query).await.unwrap())
            );
        }
        let mut request = recall_memory::ListRequest::first(3);
        for _ in 0..2 {
            let (together, page) = store.list_with_profile(&user, &request).await.unwrap();
            let apart = store.list(&user, &request).await.unwrap();
            assert_eq!(together, profile);
            assert_eq!(
                page.items.iter().map(|m| &m.id).collect::<Vec<_>>(),
                apart.items.iter().map(|m| &m.id).collect::<Vec<_>>()
            );
            assert_eq!(page.next_cursor, apart.next_cursor);
            request.cursor = page.next_cursor;
        }
    })
    .await;
}

/// The count kept per caller (for greetings and searches) matches the
/// rows, whatever wrote them: the store, supersession, deletion, erasure,
/// or SQL by hand.
#[tokio::test]
async fn the_kept_count_matches_the_rows() {
    with_schema(|db| async move {
        let store = PgMemoryStore::new(db.clone());
        let (ada, bob) = (caller(), PhoneNumber::parse("+16125550100").unwrap());
        let name = |value: &str| {
            NewMemory::new(format!("Caller's first_name: {value}"), MemorySector::Semantic).fact(
                Fact {
                    key: FactKey::new("first_name").unwrap(),
                    value: value.into(),
                    is_name: true,
                },
            )
        };
        let client = db.client().await.unwrap();
        let check = async |when: &str| {
            let rows = client
                .query(
                    "SELECT u, (SELECT count(*) FROM memories WHERE user_id = u), \
                            (SELECT memories FROM memory_versions WHERE user_id = u) \
                     FROM unnest($1::text[]) u",
                    &[&vec![ada.as_str(), bob.as_str()]],
                )
                .await
                .unwrap();
            for row in rows {
                let (real, kept): (i64, Option<i64>) = (row.get(1), row.get(2));
                assert_eq!(kept.unwrap_or(0), real, "{when}: {}", row.get::<_, &str>(0));
                assert!(kept != Some(0), "{when}: a caller without memories keeps no row");
            }
        };
        let batch = (0..5)
            .map(|i| NewMemory::new(format!("Memory {i}"), MemorySector::Episodic))
            .collect();
        let ids: Vec<_> = store
            .add_batch(&ada, batch)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.memory().id.clone())
            .collect();
        store.add(&bob, name("Bob")).await.unwrap();
        check("after adds").await;
        store.add(&bob, name("Robert")).await.unwrap(); // supersedes
        check("after a superseded fact").await;
        store.delete(&ada, &ids[0]).await.unwrap();
        check("after a deletion").await;
        assert_eq!(store.profile(&ada).await.unwrap().memory_count, 4);
        client
            .execute(
                "INSERT INTO memories (id, user_id, content, sector, salience, decay_lambda, \
                 tags, metadata, created_at, updated_at) \
                 VALUES ('by_hand', $1, 'Written by hand', 'episodic', 0.5, 0.01, '[]', '{}', 1, 1)",
                &[&ada.as_str()],
            )
            .await
            .unwrap();
        check("after SQL by hand").await;
        assert_eq!(store.profile(&ada).await.unwrap().memory_count, 5);
        store.erase_user(&bob).await.unwrap();
        check("after an erasure").await;
        client.execute("TRUNCATE memories", &[]).await.unwrap();
        check("after TRUNCATE").await;
        assert_eq!(store.profile(&ada).await.unwrap().memory_count, 0);
    })
    .await;
}

/// Two replicas (each its own pool) processing one caller's calls side by
/// side, in any order: the fact learnt in the latest call is the one kept,
/// every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_writing_a_callers_facts_out_of_order_keep_the_newest() {
    with_schema(|db| async move {
        let other = recall_postgres::Database::builder(common::url().0)
            .schema(db.schema().expect("a test schema"))
            .pool_size(4)
            .connect()
            .await
            .expect("a second replica's pool");
        let replicas = [PgMemoryStore::new(db), PgMemoryStore::new(other)];
        let base = UnixTimestamp::from_secs(1_700_000_000).unwrap();
        let city = |call: i64| {
            NewMemory::new(
                format!("Caller's city: town {call}"),
                MemorySector::Semantic,
            )
            .fact(Fact {
                key: FactKey::new("city").unwrap(),
                value: format!("town {call}"),
                is_name: false,
            })
            .occurred_at(base.plus_secs(call * 3_600))
        };
        for round in 0..20_i64 {
            let user = PhoneNumber::parse(&format!("+1612555{:04}", 2000 + round)).unwrap();
            // Eight calls, written newest first on one replica and oldest
            // first on the other, all at once.
            let (newest_first, oldest_first) = tokio::join!(
                async {
                    for call in (0..8).rev().filter(|c| c % 2 == 0) {
                        replicas[0].add(&user, city(call)).await.unwrap();
                    }
                },
                async {
                    for call in (0..8).filter(|c| c % 2 == 1) {
                        replicas[1].add(&user, city(call)).await.unwrap();
                    }
                },
            );
            let ((), ()) = (newest_first, oldest_first);
            for replica in &replicas {
                let profile = replica.profile(&user).await.unwrap();
                assert_eq!(
                    profile.summary.as_deref(),
                    Some("city: town 7"),
                    "round {round}: {profile:?}"
                );
                assert_eq!(profile.memory_count, 1, "round {round}: {profile:?}");
            }
        }
    })
    .await;
}
