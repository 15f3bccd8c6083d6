//! Properties of the in-memory store's paging over arbitrary memories:
//! with times that collide, any page size, a filter and writes between
//! pages, following the cursors gives each memory exactly once, newest
//! first, with write order breaking time ties.

use proptest::prelude::*;
use recall_memory::{InMemoryStore, ListRequest, MemoryFilter, MemoryStore, NewMemory};
use recall_model::{MemorySector, PhoneNumber, Salience, UnixTimestamp};

/// One memory to write: seconds before a fixed base (few distinct values,
/// so times collide) and its salience in tenths.
#[derive(Clone, Debug)]
struct Spec {
    ago: i64,
    tenths: u8,
}

fn spec() -> impl Strategy<Value = Spec> {
    (0i64..4, 0u8..=10).prop_map(|(ago, tenths)| Spec { ago, tenths })
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cursors_visit_every_matching_memory_once_newest_first(
        specs in prop::collection::vec(spec(), 0..30),
        limit in 1usize..7,
        min_tenths in prop::option::of(0u8..=10),
        written_while_paging in prop::collection::vec(spec(), 0..4),
    ) {
        run(async {
            let store = InMemoryStore::new();
            let user = PhoneNumber::parse("+447700900123").unwrap();
            let base = UnixTimestamp::from_secs(1_800_000_000).unwrap();
            let filter = MemoryFilter {
                min_salience: min_tenths.map(|t| Salience::new(f64::from(t) / 10.0).unwrap()),
                ..MemoryFilter::default()
            };
            // (created_at, write index, id) of every memory written before paging.
            let mut written = Vec::new();
            for (n, s) in specs.iter().enumerate() {
                let new = NewMemory::new(format!("memory {n}"), MemorySector::Episodic)
                    .salience(Salience::new(f64::from(s.tenths) / 10.0).unwrap())
                    .occurred_at(base.plus_secs(-s.ago));
                let m = store.add(&user, new).await.unwrap().memory().clone();
                if filter.matches(&m) {
                    written.push((m.created_at, n, m.id));
                }
            }
            written.sort_by_key(|w| std::cmp::Reverse((w.0, w.1)));
            let expected: Vec<_> = written.into_iter().map(|(_, _, id)| id).collect();

            let mut request = ListRequest { filter: filter.clone(), limit, cursor: None };
            let mut listed = Vec::new();
            let mut extra = written_while_paging.iter();
            loop {
                let page = store.list(&user, &request).await.unwrap();
                prop_assert!(page.items.len() <= limit);
                prop_assert!(page.items.iter().all(|m| filter.matches(m)));
                listed.extend(page.items.into_iter().map(|m| m.id));
                let Some(cursor) = page.next_cursor else { break };
                request.cursor = Some(cursor);
                // A write between pages, newer than anything listed so far.
                if let Some(s) = extra.next() {
                    let new = NewMemory::new("written while paging", MemorySector::Episodic)
                        .salience(Salience::new(f64::from(s.tenths) / 10.0).unwrap())
                        .occurred_at(base.plus_secs(1 + s.ago));
                    store.add(&user, new).await.unwrap();
                }
            }
            prop_assert_eq!(listed, expected);
            Ok(())
        })?;
    }
}
