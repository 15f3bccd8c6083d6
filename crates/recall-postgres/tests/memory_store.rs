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
        let store = PgMemoryStore::new(db);
        let user = caller();
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
