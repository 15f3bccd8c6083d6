//! Retrieval quality: recall@5 on a labelled set of callers' memories
//! and the questions asked about them (`tests/data/quality.json`).

use recall_embedded::EmbeddedStore;
use recall_memory::{Fact, FactKey, InMemoryStore, MemoryId, MemoryStore, NewMemory, SearchQuery};
use recall_model::{DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp};
use serde::Deserialize;

/// recall@5 the embedded store must reach on the set. Measured 0.979
/// (95 of 97; the two misses need synonyms: "unhappy" for "upset", "eat"
/// for "food"); set one miss below, so that a ranking change that loses
/// answers fails.
const MIN_RECALL_AT_5: f64 = 0.96;

#[derive(Deserialize)]
struct DataSet {
    now: i64,
    callers: Vec<Caller>,
}

#[derive(Deserialize)]
struct Caller {
    phone: String,
    memories: Vec<Item>,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Item {
    content: String,
    sector: String,
    salience: f64,
    #[serde(default)]
    permanent: bool,
    fact: Option<Fact>,
    days_ago: i64,
}

#[derive(Deserialize)]
struct Question {
    q: String,
    answer: usize,
}

fn data() -> DataSet {
    let raw = include_str!("data/quality.json");
    serde_json::from_str(raw).expect("quality.json parses")
}

/// Loads the set into `store` and returns recall@5 and the misses.
async fn recall_at_5(store: &dyn MemoryStore, data: &DataSet) -> (f64, Vec<String>) {
    let now = UnixTimestamp::from_secs(data.now).unwrap();
    let mut asked = 0usize;
    let mut found = 0usize;
    let mut misses = Vec::new();
    for caller in &data.callers {
        let user = PhoneNumber::parse(&caller.phone).unwrap();
        let mut ids: Vec<MemoryId> = Vec::new();
        for item in &caller.memories {
            let mut new = NewMemory::new(&item.content, MemorySector::parse(&item.sector).unwrap())
                .salience(Salience::new(item.salience).unwrap())
                .occurred_at(now.plus_secs(-item.days_ago * 86_400));
            if item.permanent {
                new = new.decay(DecayLambda::PERMANENT);
            }
            if let Some(fact) = &item.fact {
                new = new.fact(fact.clone()).tag(fact.key.as_str());
            }
            ids.push(store.add(&user, new).await.unwrap().memory().id.clone());
        }
        for question in &caller.questions {
            asked += 1;
            let results = store
                .search(&user, &SearchQuery::new(&question.q, 5).at(now))
                .await
                .unwrap();
            let want = &ids[question.answer];
            if results.iter().any(|r| &r.memory.id == want) {
                found += 1;
            } else {
                misses.push(format!(
                    "{}: {:?} wanted {:?}, got {:?}",
                    caller.phone,
                    question.q,
                    caller.memories[question.answer].content,
                    results
                        .iter()
                        .map(|r| &r.memory.content)
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    (found as f64 / asked as f64, misses)
}

#[test]
fn the_data_set_is_well_formed() {
    let data = data();
    let memories: usize = data.callers.iter().map(|c| c.memories.len()).sum();
    let questions: usize = data.callers.iter().map(|c| c.questions.len()).sum();
    assert!(data.callers.len() >= 15 && memories >= 140 && questions >= 60);
    for caller in &data.callers {
        for q in &caller.questions {
            assert!(
                q.answer < caller.memories.len(),
                "{}: {:?}",
                caller.phone,
                q.q
            );
        }
        for m in &caller.memories {
            assert_eq!(
                m.fact.is_some(),
                m.permanent,
                "facts are the permanent memories"
            );
            if let Some(f) = &m.fact {
                assert_eq!(m.content, format!("Caller's {}: {}", f.key, f.value));
                FactKey::new(f.key.as_str()).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_at_5_meets_the_measured_threshold() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("memory.db")).unwrap();
    let (recall, misses) = recall_at_5(&store, &data).await;
    println!("embedded store recall@5 = {recall:.3}");
    for miss in &misses {
        println!("  miss {miss}");
    }
    // For comparison only (not a requirement of this crate): the
    // in-memory store of recall-memory on the same set.
    let (fake, _) = recall_at_5(&InMemoryStore::new(), &data).await;
    println!("in-memory store recall@5 = {fake:.3}");
    assert!(
        recall >= MIN_RECALL_AT_5,
        "recall@5 {recall:.3} is below {MIN_RECALL_AT_5}; misses:\n{}",
        misses.join("\n")
    );
}
