//! Behaviour of the OpenMemory adapter beyond the conformance suite,
//! against the stateful emulator of OpenMemory v1.3.0 and its quirks
//! (global dedup, a query cache that ignores writes, patches that keep the
//! old dedup hash).

#![cfg(feature = "openmemory")]

mod openmemory_support;

use std::time::Duration;

use openmemory_support::emulator::Emulator;
use recall_memory::openmemory::{OpenMemoryConfig, OpenMemoryStore};
use recall_memory::{
    AddOutcome, IdempotencyKey, ListRequest, MemoryStore, MemoryUpdate, NewMemory, SearchQuery,
};
use recall_model::{MemorySector, PhoneNumber};

const KEY: &str = "testkey123";

async fn setup() -> (wiremock::MockServer, Emulator, OpenMemoryStore) {
    let (server, emulator) = Emulator::new(Some(KEY)).start().await;
    let config = OpenMemoryConfig::from_port_or_url(&server.uri())
        .unwrap()
        .with_api_key(KEY)
        .unwrap()
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10));
    (server, emulator, OpenMemoryStore::new(config).unwrap())
}

fn user(n: &str) -> PhoneNumber {
    PhoneNumber::parse(n).unwrap()
}

fn summary(key: &str) -> NewMemory {
    NewMemory::new(
        "Caller asked to move the delivery to Friday",
        MemorySector::Episodic,
    )
    .idempotency_key(IdempotencyKey::new(key).unwrap())
}

#[tokio::test]
async fn the_same_text_for_two_callers_is_stored_for_each_and_never_crosses() {
    let (_server, emulator, store) = setup().await;
    let (maria, john) = (user("+16125550101"), user("+16125550102"));
    let text = "The caller's name is Maria";
    let hers = store
        .add(&maria, NewMemory::new(text, MemorySector::Semantic))
        .await
        .unwrap();
    // OpenMemory merges this into Maria's row and answers her id.
    let his = store
        .add(&john, NewMemory::new(text, MemorySector::Semantic))
        .await
        .unwrap();
    assert!(matches!(his, AddOutcome::Created(_)), "{his:?}");
    assert_ne!(his.memory().id, hers.memory().id);
    assert_eq!(his.memory().user_id, john);
    assert_eq!(his.memory().content, text);
    for (caller, own) in [(&maria, hers.memory()), (&john, his.memory())] {
        let found = store
            .search(caller, &SearchQuery::new("caller's name", 5))
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(&found[0].memory, own);
        let page = store.list(caller, &ListRequest::first(10)).await.unwrap();
        assert_eq!(page.items, std::slice::from_ref(own));
    }
    assert_eq!(emulator.rows_of("+16125550102").len(), 1);
}

#[tokio::test]
async fn a_near_duplicate_of_an_own_memory_is_a_memory_of_its_own() {
    // Fixtures 10 and 11: case, punctuation, order and synonyms dedup.
    let (_server, _emulator, store) = setup().await;
    let maria = user("+16125550101");
    let first = NewMemory::new(
        "Maria prefers to be called back in the evening",
        MemorySector::Semantic,
    );
    let second = NewMemory::new(
        "In the evening Maria likes to be called back",
        MemorySector::Semantic,
    );
    store.add(&maria, first).await.unwrap();
    let outcome = store.add(&maria, second).await.unwrap();
    assert!(matches!(outcome, AddOutcome::Created(_)), "{outcome:?}");
    let profile = store.profile(&maria).await.unwrap();
    assert_eq!(profile.memory_count, 2);
}

#[tokio::test]
async fn a_patched_memorys_old_text_can_be_written_again() {
    // Fixture 32: a patch keeps the old dedup hash.
    let (_server, _emulator, store) = setup().await;
    let maria = user("+16125550101");
    let old = "Maria prefers to be called back in the evening";
    let m = store
        .add(&maria, NewMemory::new(old, MemorySector::Semantic))
        .await
        .unwrap()
        .memory()
        .clone();
    let update = MemoryUpdate {
        content: Some("Maria prefers to be called back after 6pm".into()),
        ..MemoryUpdate::default()
    };
    store.update(&maria, &m.id, update).await.unwrap();
    let again = store
        .add(&maria, NewMemory::new(old, MemorySector::Semantic))
        .await
        .unwrap();
    assert!(matches!(again, AddOutcome::Created(_)), "{again:?}");
    let patched = store.get(&maria, &m.id).await.unwrap();
    assert_eq!(patched.content, "Maria prefers to be called back after 6pm");
}

#[tokio::test]
async fn the_servers_query_cache_never_returns_a_deleted_or_stale_memory() {
    let (_server, _emulator, store) = setup().await;
    let maria = user("+16125550101");
    let gone = store
        .add(
            &maria,
            NewMemory::new(
                "Maria asked about refinancing her mortgage",
                MemorySector::Episodic,
            ),
        )
        .await
        .unwrap()
        .memory()
        .clone();
    let kept = store
        .add(
            &maria,
            NewMemory::new("Maria has a savings account", MemorySector::Semantic),
        )
        .await
        .unwrap()
        .memory()
        .clone();
    let query = SearchQuery::new("Maria mortgage", 5);
    let before = store.search(&maria, &query).await.unwrap();
    assert_eq!(before[0].memory.id, gone.id);
    store.delete(&maria, &gone.id).await.unwrap();
    let update = MemoryUpdate {
        content: Some("Maria has a savings account and a mortgage".into()),
        ..MemoryUpdate::default()
    };
    store.update(&maria, &kept.id, update).await.unwrap();
    // The byte-identical query is answered from the server's cache.
    let after = store.search(&maria, &query).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].memory.id, kept.id);
    assert_eq!(
        after[0].memory.content,
        "Maria has a savings account and a mortgage"
    );
}

#[tokio::test]
async fn a_deleted_memorys_key_stays_written_until_the_caller_is_erased() {
    let (_server, _emulator, store) = setup().await;
    let maria = user("+16125550101");
    let first = store.add(&maria, summary("conv_1/summary")).await.unwrap();
    store.delete(&maria, &first.memory().id).await.unwrap();
    // Replaying the event must not bring the deleted memory back.
    let replay = store.add(&maria, summary("conv_1/summary")).await.unwrap();
    assert!(replay.is_duplicate(), "{replay:?}");
    assert_eq!(replay.memory().id, first.memory().id);
    let page = store.list(&maria, &ListRequest::first(10)).await.unwrap();
    assert!(
        page.items.is_empty(),
        "the key's tombstone is not a memory: {page:?}"
    );
    assert_eq!(store.profile(&maria).await.unwrap().memory_count, 0);
    assert!(
        store
            .search(&maria, &SearchQuery::new("idempotency keys deleted", 5))
            .await
            .unwrap()
            .is_empty()
    );

    let other = store
        .add(
            &maria,
            NewMemory::new("Maria has a dog", MemorySector::Semantic),
        )
        .await
        .unwrap();
    // Erasing counts memories only, and forgets the keys too.
    assert_eq!(store.erase_user(&maria).await.unwrap(), 1);
    assert!(store.get(&maria, &other.memory().id).await.is_err());
    let after_erase = store.add(&maria, summary("conv_1/summary")).await.unwrap();
    assert!(
        matches!(after_erase, AddOutcome::Created(_)),
        "{after_erase:?}"
    );
}

#[tokio::test]
async fn a_retried_fact_write_finishes_a_supersession_cut_short() {
    let (_server, emulator, store) = setup().await;
    let maria = user("+16125550101");
    let fact = |value: &str| recall_memory::Fact {
        key: recall_memory::FactKey::new("first_name").unwrap(),
        value: value.into(),
        is_name: true,
    };
    let old = store
        .add(
            &maria,
            NewMemory::new("Caller's first_name: Ann", MemorySector::Semantic).fact(fact("Ann")),
        )
        .await
        .unwrap();
    // The new fact is stored, then deleting the old one fails (the first
    // try and both retries of the DELETE); the keyed add is retried.
    emulator.fail_next("DELETE", 3);
    let newer = NewMemory::new("Caller's first_name: Anne", MemorySector::Semantic)
        .fact(fact("Anne"))
        .idempotency_key(IdempotencyKey::new("conv_2/first_name").unwrap());
    let outcome = store.add(&maria, newer).await.unwrap();
    assert!(outcome.is_duplicate(), "{outcome:?}");
    assert_eq!(outcome.memory().content, "Caller's first_name: Anne");
    let page = store.list(&maria, &ListRequest::first(10)).await.unwrap();
    assert_eq!(page.items.len(), 1, "{page:?}");
    assert_eq!(page.items[0].id, outcome.memory().id);
    assert!(store.get(&maria, &old.memory().id).await.is_err());
}

/// Deterministic, varied call summaries: names, numbers, punctuation,
/// case and whitespace over templates that collide often on the server.
fn summaries(n: usize, seed: u64) -> Vec<String> {
    const NAMES: &[&str] = &["Maria", "John", "Ann", "Mr. O'Neil", "Li", "Anne-Marie"];
    const TEMPLATES: &[&str] = &[
        "The caller's name is {n}.",
        "{n} asked to move the delivery to Friday at {d} pm.",
        "Account note {d}: the caller confirmed reference code {d} for the claim.",
        "{n} has a savings account with us.",
        "{n} has a mortgage account with us!",
        "Caller {n} reported that order #{d} arrived damaged and wants a refund.",
        "The agent explained the late fee policy and offered a one-time waiver.",
        "{n} will call back next week to confirm the new address.",
        "The customer was frustrated about waiting on hold for {d} minutes.",
    ];
    let mut state = seed;
    let mut next = |m: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % m as u64) as usize
    };
    let mut out = Vec::new();
    while out.len() < n {
        let sentences = 1 + next(5);
        let mut s = String::new();
        for _ in 0..sentences {
            let mut t = TEMPLATES[next(TEMPLATES.len())].replace("{n}", NAMES[next(NAMES.len())]);
            while t.contains("{d}") {
                t = t.replacen("{d}", &next(1_000_000).to_string(), 1);
            }
            match next(4) {
                0 => t = t.to_uppercase(),
                1 => t = t.replace(' ', "  "),
                _ => {}
            }
            s.push_str(&t);
            s.push_str([" ", "\n", "  "][next(3)]);
        }
        let s = s.trim().to_owned();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[tokio::test]
async fn the_emulators_hash_is_the_adapters() {
    use recall_memory::openmemory::dedup::ContentHash;
    // Two ports written apart: the adapter's and the emulator's.
    for text in summaries(2_000, 5).iter().map(String::as_str).chain([
        "",
        "Café ſ \u{212a}",
        "ties kings hers users studies",
    ]) {
        assert_eq!(
            openmemory_support::emulator::simhash(text),
            ContentHash::of(text).to_string(),
            "{text:?}"
        );
    }
}

#[tokio::test]
async fn two_callers_with_identical_summaries_both_keep_them_on_every_run() {
    let (maria, john, ann) = (
        user("+16125550101"),
        user("+16125550102"),
        user("+16125550103"),
    );
    for (run, text) in summaries(150, 11).into_iter().enumerate() {
        let (_server, emulator, store) = setup().await;
        // Another process: it has not seen Maria's row being stored.
        let other = OpenMemoryStore::new(store.config().clone()).unwrap();
        let summary = |key: &str| {
            NewMemory::new(text.clone(), MemorySector::Episodic)
                .idempotency_key(IdempotencyKey::new(key).unwrap())
        };
        store.add(&maria, summary("conv_1/summary")).await.unwrap();
        assert_eq!(emulator.adds(), (1, 0), "run {run}");
        // Merged into Maria's row once, then kept on the first re-send:
        // its marker's hash is checked to be apart from the text's.
        let his = other.add(&john, summary("conv_2/summary")).await.unwrap();
        assert!(matches!(his, AddOutcome::Created(_)), "run {run}: {his:?}");
        assert_eq!(emulator.adds(), (2, 1), "run {run}: {text:?}");
        // That process now knows both hashes: marked at once, apart from
        // both, never merged.
        let hers = other.add(&ann, summary("conv_3/summary")).await.unwrap();
        assert!(
            matches!(hers, AddOutcome::Created(_)),
            "run {run}: {hers:?}"
        );
        assert_eq!(emulator.adds(), (3, 1), "run {run}: {text:?}");
        for caller in [&maria, &john, &ann] {
            let page = store.list(caller, &ListRequest::first(10)).await.unwrap();
            assert_eq!(page.items.len(), 1, "run {run}");
            assert_eq!(page.items[0].content, text, "run {run}");
        }
        let stats = other.dedup_stats();
        assert_eq!((stats.merged, stats.marked_first), (1, 1), "run {run}");
    }
}

#[tokio::test]
async fn many_summaries_shared_by_three_callers_are_all_kept() {
    let (_server, emulator, store) = setup().await;
    let callers = [
        user("+16125550101"),
        user("+16125550102"),
        user("+16125550103"),
    ];
    let texts = summaries(300, 23);
    for text in &texts {
        for caller in &callers {
            // Without idempotency keys: no read of the caller's rows per add.
            let memory = NewMemory::new(text.clone(), MemorySector::Episodic);
            let outcome = store.add(caller, memory).await.unwrap();
            assert!(matches!(outcome, AddOutcome::Created(_)), "{outcome:?}");
        }
    }
    for caller in &callers {
        let mut kept: Vec<String> = Vec::new();
        let mut request = ListRequest::first(100);
        loop {
            let page = store.list(caller, &request).await.unwrap();
            kept.extend(page.items.into_iter().map(|m| m.content));
            match page.next_cursor {
                Some(c) => request.cursor = Some(c),
                None => break,
            }
        }
        kept.sort();
        let mut want = texts.clone();
        want.sort();
        let missing: Vec<&String> = want.iter().filter(|w| !kept.contains(w)).collect();
        let extra: Vec<&String> = kept.iter().filter(|k| !want.contains(k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty() && kept.len() == want.len(),
            "nothing acknowledged is lost: {} kept, missing {missing:?}, extra {extra:?}",
            kept.len()
        );
    }
    let stats = store.dedup_stats();
    assert_eq!(stats.not_kept, 0, "{stats:?}");
    // The templates collide on the server: the adapter saw it coming.
    assert!(stats.marked_first >= 600, "{stats:?}");
    assert_eq!(emulator.adds().0, 900);
    eprintln!("{stats:?}, server merges: {}", emulator.adds().1);
}
