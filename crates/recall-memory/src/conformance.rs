//! The conformance suite: the port's rules as executable checks, for any
//! [`MemoryStore`].
//!
//! Every store of this workspace runs it, and so can any other
//! implementation, with one call:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use recall_memory::{InMemoryStore, conformance};
//!
//! conformance::run_all(&InMemoryStore::new()).await;
//! # }
//! ```
//!
//! Each check is also a public function, so a store can run them one per
//! test. A check panics with a message starting `conformance:` that names
//! the rule broken.
//!
//! Every check writes only to callers it invents (`+1555` followed by ten
//! random digits) and erases them when it passes, so one store instance,
//! even a persistent or remote one shared with other data, can run the
//! whole suite, repeatedly and from several tests at once.
//!
//! The checks are strict on the rules (scoping, supersession, idempotency,
//! ordering, paging, filters, errors) and tolerant where stores may
//! legitimately differ: score values, how words are matched, extra
//! metadata entries a store adds, tag order.

use std::collections::HashSet;

use recall_model::{
    AgentId, ConversationId, DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp,
};
use serde_json::json;

use crate::embed::{Embedding, ModelTag};
use crate::rank::{Candidate, rank};
use crate::store::{
    AddOutcome, Fact, FactKey, IdempotencyKey, ListRequest, MAX_CONTENT_LEN, Memory, MemoryError,
    MemoryFilter, MemoryId, MemoryStore, MemoryUpdate, Metadata, NewMemory, SearchQuery,
};

/// Runs every check of the suite against `store`, one after another.
///
/// # Panics
/// On the first rule the store breaks, with a message naming it.
pub async fn run_all<S: MemoryStore + ?Sized>(store: &S) {
    health_is_ok(store).await;
    unknown_user_is_empty(store).await;
    add_and_get_round_trip(store).await;
    ids_are_unique(store).await;
    unknown_id_is_not_found(store).await;
    search_finds_relevant_best_first(store).await;
    search_respects_k(store).await;
    search_applies_filters(store).await;
    search_with_profile_agrees_with_its_parts(store).await;
    list_is_newest_first_and_pages_cover_all_once(store).await;
    list_breaks_time_ties_by_write_order(store).await;
    list_cursors_are_stable_under_writes(store).await;
    list_applies_filters(store).await;
    list_rejects_foreign_cursor(store).await;
    update_changes_only_what_is_given(store).await;
    update_rejects_blank_content(store).await;
    delete_removes_only_that_memory(store).await;
    erase_user_counts_and_spares_others(store).await;
    users_are_isolated(store).await;
    facts_supersede_by_key(store).await;
    profile_reports_newest_name_and_facts(store).await;
    idempotent_writes_change_nothing(store).await;
    idempotency_survives_supersession(store).await;
    add_batch_applies_rules_in_order(store).await;
    rejected_input_changes_nothing(store).await;
    search_ranks_as_the_shared_ranking(store).await;
    search_answers_by_intent(store).await;
    embeddings_are_kept_and_backfilled(store).await;
    list_with_profile_agrees_with_its_parts(store).await;
    an_older_fact_never_replaces_a_newer_one(store).await;
}

// ---------------------------------------------------------------- helpers

/// Panics with the suite's message format.
macro_rules! rule {
    ($cond:expr, $($msg:tt)+) => {{
        let holds: bool = $cond;
        if !holds {
            panic!("conformance: {}", format!($($msg)+));
        }
    }};
}

/// Unwraps a store call that must succeed.
fn ok<T>(what: &str, result: Result<T, MemoryError>) -> T {
    result.unwrap_or_else(|e| panic!("conformance: {what} must succeed, failed: {e} ({e:?})"))
}

/// Asserts that a store call failed with `NotFound`.
fn not_found<T: std::fmt::Debug>(what: &str, result: Result<T, MemoryError>) {
    match result {
        Err(MemoryError::NotFound(_)) => {}
        other => panic!("conformance: {what} must be NotFound, got {other:?}"),
    }
}

/// Asserts that a store call was rejected with a reason naming `field`.
fn rejected<T: std::fmt::Debug>(what: &str, field: &str, result: Result<T, MemoryError>) {
    match result {
        Err(MemoryError::Rejected { reason, .. }) => rule!(
            reason.contains(field),
            "{what} must be rejected with a reason naming `{field}`, got {reason:?}"
        ),
        other => panic!("conformance: {what} must be Rejected naming `{field}`, got {other:?}"),
    }
}

/// A caller no other check (or run) uses.
fn fresh_user() -> PhoneNumber {
    let digits = uuid::Uuid::new_v4().as_u128() % 10_000_000_000;
    PhoneNumber::parse(&format!("+1555{digits:010}")).expect("+1555 and ten digits is E.164")
}

fn fact(key: &str, value: &str, is_name: bool) -> Fact {
    Fact {
        key: FactKey::new(key).expect("suite fact keys are valid"),
        value: value.into(),
        is_name,
    }
}

fn idem(key: &str) -> IdempotencyKey {
    IdempotencyKey::new(key).expect("suite idempotency keys are valid")
}

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).expect("suite agent ids are valid")
}

fn salience(v: f64) -> Salience {
    Salience::new(v).expect("suite saliences are valid")
}

/// A unique text token, so a key or content is unique to one run.
fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `secs` seconds before `base`.
fn before(base: UnixTimestamp, secs: i64) -> UnixTimestamp {
    base.plus_secs(-secs)
}

/// Adds a memory that must be created (not a duplicate, not superseding).
async fn create<S: MemoryStore + ?Sized>(store: &S, user: &PhoneNumber, new: NewMemory) -> Memory {
    let what = format!("add of {:?}", new.content);
    match ok(&what, store.add(user, new).await) {
        AddOutcome::Created(m) => m,
        other => panic!("conformance: {what} must be Created, got {other:?}"),
    }
}

/// Adds a fact whose key another caller already holds: it must be created,
/// since supersession is per caller.
async fn create_for_other_caller<S: MemoryStore + ?Sized>(
    store: &S,
    user: &PhoneNumber,
    new: NewMemory,
) -> Memory {
    match ok("add of a fact", store.add(user, new).await) {
        AddOutcome::Created(m) => m,
        other => panic!(
            "conformance: supersession is per caller: a fact key only another caller holds must be Created, got {other:?}"
        ),
    }
}

/// Every memory of `user` passing `filter`, by paging through `list`.
async fn list_all<S: MemoryStore + ?Sized>(
    store: &S,
    user: &PhoneNumber,
    filter: &MemoryFilter,
    limit: usize,
) -> Vec<Memory> {
    let mut request = ListRequest {
        filter: filter.clone(),
        limit,
        cursor: None,
    };
    let mut all = Vec::new();
    for _ in 0..1000 {
        let page = ok("list", store.list(user, &request).await);
        rule!(
            page.items.len() <= request.effective_limit(),
            "list must return at most `limit` ({}) memories, got {}",
            request.effective_limit(),
            page.items.len()
        );
        all.extend(page.items);
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return all,
        }
    }
    panic!("conformance: list paging must end (1000 pages without a last page)");
}

fn ids(memories: &[Memory]) -> Vec<MemoryId> {
    memories.iter().map(|m| m.id.clone()).collect()
}

async fn search_ids<S: MemoryStore + ?Sized>(
    store: &S,
    user: &PhoneNumber,
    query: &SearchQuery,
) -> Vec<MemoryId> {
    let results = ok("search", store.search(user, query).await);
    rule!(
        results.len() <= query.effective_k(),
        "search must return at most k ({}) memories, got {}",
        query.effective_k(),
        results.len()
    );
    rule!(
        results.windows(2).all(|w| w[0].score >= w[1].score),
        "search results must be best first (scores not increasing), got scores {:?}",
        results.iter().map(|r| r.score).collect::<Vec<_>>()
    );
    for r in &results {
        rule!(
            r.memory.user_id == *user,
            "search must return only the caller's memories, got one of {:?}",
            r.memory.user_id
        );
        rule!(
            query.filter.matches(&r.memory),
            "search must apply its filter {:?}; {} does not pass it",
            query.filter,
            r.memory.id
        );
    }
    results.into_iter().map(|r| r.memory.id).collect()
}

async fn count<S: MemoryStore + ?Sized>(store: &S, user: &PhoneNumber) -> u64 {
    ok("profile", store.profile(user).await).memory_count
}

async fn erase<S: MemoryStore + ?Sized>(store: &S, users: &[&PhoneNumber]) {
    for user in users {
        ok("erase_user (cleanup)", store.erase_user(user).await);
    }
}

/// Checks that `m` holds what `new` asked for.
fn assert_written(what: &str, m: &Memory, new: &NewMemory, user: &PhoneNumber) {
    rule!(m.user_id == *user, "{what}: user_id must be the caller");
    rule!(
        m.content == new.content,
        "{what}: content must round-trip, wrote {:?}, read {:?}",
        new.content,
        m.content
    );
    rule!(
        m.sector == new.sector,
        "{what}: sector must round-trip, wrote {}, read {}",
        new.sector,
        m.sector
    );
    rule!(
        (m.salience.get() - new.salience.get()).abs() < 1e-9,
        "{what}: salience must round-trip, wrote {}, read {}",
        new.salience,
        m.salience
    );
    rule!(
        (m.decay_lambda.per_day() - new.effective_decay().per_day()).abs() < 1e-9,
        "{what}: decay_lambda must be the one written or the sector's default, expected {}, read {}",
        new.effective_decay().per_day(),
        m.decay_lambda.per_day()
    );
    let mut wrote = new.tags.clone();
    let mut read = m.tags.clone();
    wrote.sort();
    read.sort();
    rule!(
        wrote == read,
        "{what}: tags must round-trip, wrote {wrote:?}, read {read:?}"
    );
    for (key, value) in &new.metadata {
        rule!(
            m.metadata.get(key) == Some(value),
            "{what}: metadata entry {key:?} must round-trip, wrote {value}, read {:?}",
            m.metadata.get(key)
        );
    }
    rule!(
        m.agent_id == new.agent_id,
        "{what}: agent_id must round-trip, wrote {:?}, read {:?}",
        new.agent_id,
        m.agent_id
    );
    rule!(
        m.conversation_id == new.conversation_id,
        "{what}: conversation_id must round-trip, wrote {:?}, read {:?}",
        new.conversation_id,
        m.conversation_id
    );
    rule!(
        m.fact == new.fact,
        "{what}: fact must round-trip, wrote {:?}, read {:?}",
        new.fact,
        m.fact
    );
    if let Some(at) = new.occurred_at {
        rule!(
            m.created_at == at,
            "{what}: created_at must be occurred_at ({at}), read {}",
            m.created_at
        );
    }
}

// ----------------------------------------------------------------- checks

/// `health` answers `Ok` for a working store.
pub async fn health_is_ok<S: MemoryStore + ?Sized>(store: &S) {
    ok("health", store.health().await);
}

/// A caller never written has an empty profile, list and search, and
/// erasing them counts 0.
pub async fn unknown_user_is_empty<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let profile = ok("profile of an unknown caller", store.profile(&user).await);
    rule!(
        profile.user_id == user,
        "profile must be of the caller asked for"
    );
    rule!(
        profile.name.is_none() && profile.summary.is_none() && profile.memory_count == 0,
        "profile of an unknown caller must be empty, got {profile:?}"
    );
    let page = ok("list", store.list(&user, &ListRequest::first(10)).await);
    rule!(
        page.items.is_empty() && page.next_cursor.is_none(),
        "list of an unknown caller must be one empty last page, got {page:?}"
    );
    let found = ok(
        "search",
        store.search(&user, &SearchQuery::new("anything", 5)).await,
    );
    rule!(
        found.is_empty(),
        "search of an unknown caller must be empty, got {found:?}"
    );
    let erased = ok("erase_user", store.erase_user(&user).await);
    rule!(
        erased == 0,
        "erase_user of an unknown caller must count 0, got {erased}"
    );
}

/// `add` stores every field and `get` reads them back; `created_at` is
/// `occurred_at`, else the time of the write; the decay defaults to the
/// sector's.
pub async fn add_and_get_round_trip<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let conversation = ConversationId::parse(&format!("conv_{}", nonce())).expect("valid id");
    let occurred = before(UnixTimestamp::now(), 3_600);
    let full = NewMemory::new("Caller's favourite_colour: teal", MemorySector::Procedural)
        .salience(salience(0.42))
        .decay(DecayLambda::new(0.1).expect("valid decay"))
        .tag("favourite_colour")
        .tag("profile")
        .meta("source", "conformance")
        .meta("turn", 3)
        .meta("nested", json!({"a": [1, 2], "b": null}))
        .agent(agent("agent_conformance"))
        .conversation(conversation.clone())
        .occurred_at(occurred)
        .fact(fact("favourite_colour", "teal", false))
        .idempotency_key(idem(&format!("{conversation}/favourite_colour")));
    let added = create(store, &user, full.clone()).await;
    assert_written("add's returned memory", &added, &full, &user);
    let got = ok(
        "get of a memory just added",
        store.get(&user, &added.id).await,
    );
    rule!(got.id == added.id, "get must return the memory asked for");
    assert_written("get after add", &got, &full, &user);
    rule!(
        got.created_at == added.created_at,
        "get must report the created_at add returned"
    );

    let written_from = UnixTimestamp::now();
    let plain = NewMemory::new("Caller asked for a callback", MemorySector::Episodic);
    let added = create(store, &user, plain.clone()).await;
    let written_to = UnixTimestamp::now();
    assert_written("add's returned memory", &added, &plain, &user);
    let got = ok(
        "get of a memory just added",
        store.get(&user, &added.id).await,
    );
    assert_written("get after add", &got, &plain, &user);
    // Slack for a remote store's clock; the rule is "the time of the write".
    rule!(
        got.created_at >= before(written_from, 60) && got.created_at <= written_to.plus_secs(60),
        "created_at without occurred_at must be the time of the write ({written_from}..={written_to}), got {}",
        got.created_at
    );
    rule!(
        got.decay_lambda == MemorySector::Episodic.default_decay_lambda(),
        "decay_lambda must default to the sector's, got {:?}",
        got.decay_lambda
    );
    erase(store, &[&user]).await;
}

/// Every memory gets its own id, and each id reads back its own memory.
pub async fn ids_are_unique<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let mut seen = HashSet::new();
    let mut added = Vec::new();
    for topic in ["kayaking", "pottery", "chess", "astronomy", "baking"] {
        let m = create(
            store,
            &user,
            NewMemory::new(format!("Caller enjoys {topic}"), MemorySector::Semantic),
        )
        .await;
        rule!(
            seen.insert(m.id.clone()),
            "every memory must get a new id; {} was given twice",
            m.id
        );
        added.push(m);
    }
    for m in &added {
        let got = ok("get", store.get(&user, &m.id).await);
        rule!(
            got.content == m.content,
            "get({}) must return that memory, got {:?}",
            m.id,
            got.content
        );
    }
    erase(store, &[&user]).await;
}

/// `get`, `update` and `delete` of an id the store never issued are
/// `NotFound`.
pub async fn unknown_id_is_not_found<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    create(
        store,
        &user,
        NewMemory::new("Caller lives in Duluth", MemorySector::Semantic),
    )
    .await;
    let unknown = MemoryId::new(format!("mem_{}", nonce())).expect("valid id");
    not_found("get of an unknown id", store.get(&user, &unknown).await);
    not_found(
        "update of an unknown id",
        store
            .update(
                &user,
                &unknown,
                MemoryUpdate {
                    salience: Some(Salience::HIGH),
                    ..MemoryUpdate::default()
                },
            )
            .await,
    );
    not_found(
        "delete of an unknown id",
        store.delete(&user, &unknown).await,
    );
    rule!(
        count(store, &user).await == 1,
        "operations on an unknown id must change nothing"
    );
    erase(store, &[&user]).await;
}

/// `search` returns the caller's relevant memories best first: the memory
/// matching every query word first, matching memories before unrelated
/// ones, the same order for the same query.
pub async fn search_finds_relevant_best_first<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let both = create(
        store,
        &user,
        NewMemory::new(
            "Caller is refinancing the mortgage on their house and asked about mortgage rates",
            MemorySector::Episodic,
        ),
    )
    .await;
    let one = create(
        store,
        &user,
        NewMemory::new(
            "Caller asked when the next mortgage payment is due",
            MemorySector::Episodic,
        ),
    )
    .await;
    let dog = create(
        store,
        &user,
        NewMemory::new(
            "Caller's dog is called Biscuit and barks at the postman",
            MemorySector::Semantic,
        ),
    )
    .await;
    let football = create(
        store,
        &user,
        NewMemory::new(
            "Caller supports Leeds United football club",
            MemorySector::Semantic,
        ),
    )
    .await;

    let query = SearchQuery::new("mortgage refinance", 10);
    let found = search_ids(store, &user, &query).await;
    rule!(
        found.first() == Some(&both.id),
        "search must rank the memory matching every query word first; for {:?} expected {} first, got {found:?}",
        query.text,
        both.id
    );
    let pos = |id: &MemoryId| found.iter().position(|f| f == id);
    let Some(one_at) = pos(&one.id) else {
        panic!(
            "conformance: search must find every relevant memory; {:?} missed {}",
            query.text, one.id
        );
    };
    for unrelated in [&dog.id, &football.id] {
        if let Some(at) = pos(unrelated) {
            rule!(
                at > one_at,
                "search must rank relevant memories before unrelated ones; {unrelated} came before {}",
                one.id
            );
        }
    }
    let again = search_ids(store, &user, &query).await;
    rule!(
        again == found,
        "search must be deterministic: the same query gave {found:?} then {again:?}"
    );

    let found = search_ids(store, &user, &SearchQuery::new("Biscuit", 10)).await;
    rule!(
        found.first() == Some(&dog.id),
        "search for \"Biscuit\" must return the memory naming Biscuit first, got {found:?}"
    );
    erase(store, &[&user]).await;
}

/// `search` returns at most `k` memories, `k` clamped to 1..=MAX_RESULTS,
/// and `k` of them when at least `k` are relevant.
pub async fn search_respects_k<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    for plant in ["roses", "tomatoes", "tulips", "basil", "ferns", "orchids"] {
        create(
            store,
            &user,
            NewMemory::new(
                format!("Caller is gardening {plant}"),
                MemorySector::Semantic,
            ),
        )
        .await;
    }
    for (k, expected) in [(3, 3), (0, 1), (1, 1), (1000, 6)] {
        let found = search_ids(store, &user, &SearchQuery::new("gardening", k)).await;
        rule!(
            found.len() == expected,
            "search with k = {k} over 6 relevant memories must return {expected}, got {}",
            found.len()
        );
        let distinct: HashSet<_> = found.iter().collect();
        rule!(
            distinct.len() == found.len(),
            "search must not return a memory twice, got {found:?}"
        );
    }
    erase(store, &[&user]).await;
}

/// `search_with_profile` answers exactly what `profile` and `search` answer
/// for the same caller and query, and only that caller's memories.
pub async fn search_with_profile_agrees_with_its_parts<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let other = fresh_user();
    create(
        store,
        &user,
        NewMemory::new("Caller's first_name: Rosa", MemorySector::Semantic)
            .salience(Salience::HIGH)
            .fact(fact("first_name", "Rosa", true)),
    )
    .await;
    for plant in ["roses", "tomatoes", "basil"] {
        create(
            store,
            &user,
            NewMemory::new(
                format!("Caller asked about watering {plant}"),
                MemorySector::Episodic,
            ),
        )
        .await;
    }
    create(
        store,
        &other,
        NewMemory::new(
            "Other caller asked about watering roses",
            MemorySector::Episodic,
        ),
    )
    .await;
    let query = SearchQuery::new("watering roses", 5);
    let (profile, found) = ok(
        "search_with_profile",
        store.search_with_profile(&user, &query).await,
    );
    rule!(
        profile.name.as_deref() == Some("Rosa"),
        "search_with_profile must return the caller's name fact, got {:?}",
        profile.name
    );
    rule!(
        !found.is_empty(),
        "search_with_profile must find the caller's memories about watering roses"
    );
    let alone = ok("profile", store.profile(&user).await);
    rule!(
        profile == alone,
        "search_with_profile must return the caller's profile: got {profile:?}, profile() says {alone:?}"
    );
    let together: Vec<_> = found.iter().map(|s| s.memory.id.clone()).collect();
    let apart = search_ids(store, &user, &query).await;
    rule!(
        together == apart,
        "search_with_profile must return what search returns, in its order: got {together:?}, search() says {apart:?}"
    );
    rule!(
        found.iter().all(|s| s.memory.user_id == user),
        "search_with_profile must only return the caller's own memories"
    );
    erase(store, &[&user, &other]).await;
}

/// `list_with_profile` answers exactly what `profile` and `list` answer
/// for the same caller and request (filters and cursors included), and
/// only that caller's memories; an unknown caller gets an empty profile
/// and page.
pub async fn list_with_profile_agrees_with_its_parts<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let other = fresh_user();
    let base = UnixTimestamp::now();
    let (x, y) = (agent("agent_x"), agent("agent_y"));
    create(
        store,
        &user,
        NewMemory::new("Caller's first_name: Rosa", MemorySector::Semantic)
            .salience(Salience::HIGH)
            .fact(fact("first_name", "Rosa", true))
            .occurred_at(before(base, 900)),
    )
    .await;
    for (n, (sector, a)) in [
        (MemorySector::Episodic, &x),
        (MemorySector::Episodic, &y),
        (MemorySector::Semantic, &x),
        (MemorySector::Episodic, &x),
        (MemorySector::Episodic, &y),
    ]
    .into_iter()
    .enumerate()
    {
        create(
            store,
            &user,
            NewMemory::new(format!("Call {n} about the garden"), sector)
                .agent(a.clone())
                .occurred_at(before(base, 600 - 100 * n as i64)),
        )
        .await;
    }
    create(
        store,
        &other,
        NewMemory::new("Other caller's call", MemorySector::Episodic).agent(x.clone()),
    )
    .await;
    let episodic = |agent: Option<&AgentId>, limit| {
        let mut request = ListRequest::first(limit);
        request.filter = MemoryFilter {
            sector: Some(MemorySector::Episodic),
            agent_id: agent.cloned(),
            ..MemoryFilter::default()
        };
        request
    };
    let mut requests = vec![
        episodic(None, 1),
        episodic(Some(&x), 1),
        episodic(Some(&y), 3),
        ListRequest::first(2),
        ListRequest::first(100),
        episodic(Some(&agent("agent_never_called")), 1),
    ];
    let second = ok("list", store.list(&user, &ListRequest::first(2)).await);
    let mut after = ListRequest::first(2);
    after.cursor = second.next_cursor.clone();
    rule!(
        after.cursor.is_some(),
        "a first page of 2 of 6 memories must have a cursor"
    );
    requests.push(after);
    let alone = ok("profile", store.profile(&user).await);
    for request in &requests {
        let (profile, page) = ok(
            "list_with_profile",
            store.list_with_profile(&user, request).await,
        );
        rule!(
            profile == alone,
            "list_with_profile must return the caller's profile: got {profile:?}, profile() says {alone:?}"
        );
        let apart = ok("list", store.list(&user, request).await);
        rule!(
            ids(&page.items) == ids(&apart.items) && page.next_cursor == apart.next_cursor,
            "list_with_profile must return the page list returns for {request:?}: got {:?} (next {:?}), list() says {:?} (next {:?})",
            ids(&page.items),
            page.next_cursor,
            ids(&apart.items),
            apart.next_cursor
        );
        rule!(
            page.items.iter().all(|m| m.user_id == user),
            "list_with_profile must only return the caller's own memories"
        );
    }
    let stranger = fresh_user();
    let (profile, page) = ok(
        "list_with_profile",
        store
            .list_with_profile(&stranger, &ListRequest::first(5))
            .await,
    );
    rule!(
        profile.name.is_none() && profile.memory_count == 0 && page.items.is_empty(),
        "list_with_profile of an unknown caller must be empty, got {profile:?} and {} memories",
        page.items.len()
    );
    erase(store, &[&user, &other]).await;
}

/// `search` applies each filter (sector, minimum salience, agent) and
/// their combination.
pub async fn search_applies_filters<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let (x, y) = (agent("agent_x"), agent("agent_y"));
    let s1 = create(
        store,
        &user,
        NewMemory::new(
            "Caller owns a sailing boat called Wanderer",
            MemorySector::Semantic,
        )
        .salience(salience(0.9))
        .agent(x.clone()),
    )
    .await;
    let s2 = create(
        store,
        &user,
        NewMemory::new(
            "Caller talked about sailing the boat to France",
            MemorySector::Episodic,
        )
        .salience(salience(0.3))
        .agent(y.clone()),
    )
    .await;
    let s3 = create(
        store,
        &user,
        NewMemory::new(
            "To book sailing lessons the caller phones the marina",
            MemorySector::Procedural,
        )
        .salience(salience(0.6)),
    )
    .await;
    let cases = [
        (MemoryFilter::default(), vec![&s1, &s2, &s3]),
        (
            MemoryFilter {
                sector: Some(MemorySector::Episodic),
                ..MemoryFilter::default()
            },
            vec![&s2],
        ),
        (
            MemoryFilter {
                min_salience: Some(salience(0.5)),
                ..MemoryFilter::default()
            },
            vec![&s1, &s3],
        ),
        (
            MemoryFilter {
                min_salience: Some(salience(0.9)),
                ..MemoryFilter::default()
            },
            vec![&s1],
        ),
        (
            MemoryFilter {
                agent_id: Some(x.clone()),
                ..MemoryFilter::default()
            },
            vec![&s1],
        ),
        (
            MemoryFilter {
                sector: Some(MemorySector::Semantic),
                agent_id: Some(y.clone()),
                ..MemoryFilter::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        let query = SearchQuery::new("sailing boat", 10).filter(filter.clone());
        let found: HashSet<MemoryId> = search_ids(store, &user, &query).await.into_iter().collect();
        let expected: HashSet<MemoryId> = expected.iter().map(|m| m.id.clone()).collect();
        rule!(
            found == expected,
            "search with filter {filter:?} must find exactly {expected:?}, got {found:?}"
        );
    }
    erase(store, &[&user]).await;
}

/// The model tag of the suite's hand-made embeddings.
fn suite_model() -> ModelTag {
    ModelTag::of("recall-conformance/topics-v1")
}

/// A hand-made embedding over eight topics: mortgage, garden, dog,
/// travel, health, billing, booking, name.
fn topics(weights: [f32; 8]) -> Embedding {
    Embedding::new(suite_model(), weights.to_vec()).expect("suite vectors are not zero")
}

/// One caller's history, with hand-made embeddings: two facts and six
/// calls spread over a year, the newest a month before the suite's "now".
struct History {
    user: PhoneNumber,
    now: UnixTimestamp,
    /// Each memory written, with the embedding it was given.
    written: Vec<(Memory, Embedding)>,
}

impl History {
    fn id(&self, needle: &str) -> MemoryId {
        self.written
            .iter()
            .find(|(m, _)| m.content.contains(needle))
            .map(|(m, _)| m.id.clone())
            .unwrap_or_else(|| panic!("suite memory {needle:?} exists"))
    }

    /// The shared ranking's answer for `query` over the whole history.
    fn expected(&self, query: &SearchQuery) -> Vec<MemoryId> {
        let candidates = self
            .written
            .iter()
            .map(|(m, e)| Candidate::with_vector(m.clone(), Some(&e.to_bytes())))
            .collect();
        rank(query, candidates)
            .into_iter()
            .map(|r| r.memory.id)
            .collect()
    }
}

async fn write_history<S: MemoryStore + ?Sized>(store: &S) -> History {
    const DAY: i64 = 86_400;
    let user = fresh_user();
    let now = UnixTimestamp::from_secs(1_796_058_000).expect("a valid time");
    let at = |days: i64| before(now, days * DAY);
    let fact_memory = |key: &str, value: &str, is_name: bool, days: i64| {
        NewMemory::new(format!("Caller's {key}: {value}"), MemorySector::Semantic)
            .salience(Salience::HIGH)
            .decay(DecayLambda::PERMANENT)
            .fact(fact(key, value, is_name))
            .occurred_at(at(days))
    };
    let call = |content: &str, days: i64| {
        NewMemory::new(content, MemorySector::Episodic)
            .salience(Salience::MEDIUM)
            .occurred_at(at(days))
    };
    let memories = [
        (
            fact_memory("first_name", "Rosa", true, 360),
            topics([0., 0., 0., 0., 0., 0., 0., 1.]),
        ),
        (
            fact_memory("home_city", "Leeds", false, 200),
            topics([0.1, 0., 0., 0.2, 0., 0., 0., 0.]),
        ),
        (
            call("Rosa asked how to treat black spot on her roses", 30),
            topics([0., 1., 0., 0., 0.1, 0., 0., 0.1]),
        ),
        (
            call("Rosa booked a table for four at the harbour restaurant", 60),
            topics([0., 0., 0., 0.2, 0., 0.1, 1., 0.1]),
        ),
        (
            call(
                "Rosa asked about refinancing the mortgage on the house",
                120,
            ),
            topics([1., 0., 0., 0., 0., 0.3, 0., 0.1]),
        ),
        (
            call("Rosa said the dog Biscuit needs his vaccinations", 200),
            topics([0., 0., 1., 0., 0.5, 0., 0.1, 0.1]),
        ),
        (
            call("Rosa disputed a late fee on the March statement", 250),
            topics([0.2, 0., 0., 0., 0., 1., 0., 0.1]),
        ),
        (
            call("Rosa first called to open an account", 350),
            topics([0.3, 0., 0., 0., 0., 0.5, 0.2, 0.1]),
        ),
    ];
    let mut written = Vec::new();
    for (new, embedding) in memories {
        let m = create(store, &user, new.embedding(embedding.clone())).await;
        written.push((m, embedding));
    }
    History { user, now, written }
}

/// `search` answers exactly what the shared ranking ([`crate::rank`])
/// answers over the caller's memories and their embeddings: same
/// memories, same order. No store ranks better or worse than another.
pub async fn search_ranks_as_the_shared_ranking<S: MemoryStore + ?Sized>(store: &S) {
    let h = write_history(store).await;
    let questions: [(&str, Option<[f32; 8]>); 7] = [
        ("refinance", None),
        (
            "what was wrong with her flowers",
            Some([0., 1., 0., 0., 0., 0., 0., 0.]),
        ),
        (
            "what was her most recent call about",
            Some([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]),
        ),
        ("the first time she called", None),
        (
            "where does she live",
            Some([0., 0., 0., 0.1, 0., 0., 0., 0.]),
        ),
        (
            "what did Rosa book",
            Some([0., 0., 0., 0., 0., 0., 1., 0.8]),
        ),
        ("🌹🌹", None),
    ];
    for (text, vector) in questions {
        let mut query = SearchQuery::new(text, 5).at(h.now);
        if let Some(v) = vector {
            query = query.vector(topics(v));
        }
        let expected = h.expected(&query);
        let found = search_ids(store, &h.user, &query).await;
        rule!(
            found == expected,
            "search must answer as the shared ranking does: for {text:?} expected {expected:?}, got {found:?}"
        );
    }
    erase(store, &[&h.user]).await;
}

/// `search` answers what the question asks: by meaning without shared
/// words, by call time for "the last call" and "the first time", by the
/// profile fact for "where does she live", never with the name fact for
/// a question that only mentions the name, and never an empty list while
/// the caller has memories.
pub async fn search_answers_by_intent<S: MemoryStore + ?Sized>(store: &S) {
    let h = write_history(store).await;
    let first = |text: &str, vector: Option<[f32; 8]>| {
        let mut query = SearchQuery::new(text, 5).at(h.now);
        if let Some(v) = vector {
            query = query.vector(topics(v));
        }
        query
    };
    let cases = [
        (
            first(
                "what was wrong with her flowers",
                Some([0., 1., 0., 0., 0., 0., 0., 0.]),
            ),
            "black spot",
        ),
        (
            first("what was her most recent call about", None),
            "black spot",
        ),
        (first("two calls ago", None), "harbour"),
        (first("the first time she called", None), "open an account"),
        (first("where does she live", None), "home_city"),
        (
            first(
                "what did Rosa book",
                Some([0., 0., 0., 0., 0., 0., 1., 0.8]),
            ),
            "harbour",
        ),
        (first("refinance", None), "mortgage"),
    ];
    for (query, answer) in cases {
        let found = search_ids(store, &h.user, &query).await;
        rule!(
            found.first() == Some(&h.id(answer)),
            "search for {:?} must answer the memory with {answer:?} first, got {found:?}",
            query.text
        );
    }
    let found = ok(
        "search",
        store
            .search(&h.user, &SearchQuery::new("🌹🌹", 3).at(h.now))
            .await,
    );
    rule!(
        found.len() == 3,
        "search must answer the best k even when nothing matches well, got {}",
        found.len()
    );
    rule!(
        found.iter().all(|r| (0.0..=1.0).contains(&r.score)),
        "search scores must be from 0 to 1, got {:?}",
        found.iter().map(|r| r.score).collect::<Vec<_>>()
    );
    erase(store, &[&h.user]).await;
}

/// The caller's memories on the embedding backlog of `model`.
async fn backlog_of<S: MemoryStore + ?Sized>(
    store: &S,
    user: &PhoneNumber,
    model: ModelTag,
) -> Vec<(MemoryId, String)> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let page = ok(
            "embedding_backlog",
            store.embedding_backlog(model, cursor.as_deref(), 100).await,
        );
        ids.extend(
            page.tasks
                .into_iter()
                .filter(|t| t.user == *user)
                .map(|t| (t.id, t.content)),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
    panic!("conformance: embedding_backlog paging must end");
}

/// A memory's embedding is kept; `embedding_backlog` lists the memories
/// without one of the model asked (and not those with one), and
/// `set_embedding` takes a memory off it.
pub async fn embeddings_are_kept_and_backfilled<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let with = create(
        store,
        &user,
        NewMemory::new(
            format!("Caller likes tulips {}", nonce()),
            MemorySector::Semantic,
        )
        .embedding(topics([0., 1., 0., 0., 0., 0., 0., 0.])),
    )
    .await;
    let without = create(
        store,
        &user,
        NewMemory::new(
            format!("Caller likes daisies {}", nonce()),
            MemorySector::Semantic,
        ),
    )
    .await;
    let listed = backlog_of(store, &user, suite_model()).await;
    rule!(
        listed == [(without.id.clone(), without.content.clone())],
        "embedding_backlog must list exactly the caller's memory without an embedding ({}), got {listed:?}",
        without.id
    );
    let other_model = ModelTag::of("recall-conformance/another-model");
    let listed = backlog_of(store, &user, other_model).await;
    rule!(
        listed.len() == 2,
        "embedding_backlog must list memories whose embedding is of another model, got {listed:?}"
    );
    ok(
        "set_embedding",
        store
            .set_embedding(
                &user,
                &without.id,
                topics([0., 0.9, 0., 0., 0., 0., 0., 0.1]),
            )
            .await,
    );
    let listed = backlog_of(store, &user, suite_model()).await;
    rule!(
        listed.is_empty(),
        "a memory given an embedding must leave the backlog, got {listed:?}"
    );
    // Both now rank by meaning.
    let query =
        SearchQuery::new("spring flowers", 2).vector(topics([0., 1., 0., 0., 0., 0., 0., 0.]));
    let found = ok("search", store.search(&user, &query).await);
    rule!(
        found.len() == 2 && found.iter().all(|r| r.score > 0.0),
        "memories with embeddings must score by meaning, got {found:?}"
    );
    not_found(
        "set_embedding of another caller's memory",
        store
            .set_embedding(
                &fresh_user(),
                &with.id,
                topics([1., 0., 0., 0., 0., 0., 0., 0.]),
            )
            .await,
    );
    erase(store, &[&user]).await;
}

/// `list` is newest first by `created_at`, and following `next_cursor`
/// visits every memory exactly once, in pages of at most `limit`.
pub async fn list_is_newest_first_and_pages_cover_all_once<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    let mut added = Vec::new();
    for ago in [300, 100, 700, 200, 600, 400, 500] {
        let m = create(
            store,
            &user,
            NewMemory::new(
                format!("Note written {ago} seconds ago"),
                MemorySector::Episodic,
            )
            .occurred_at(before(base, ago)),
        )
        .await;
        added.push((ago, m.id));
    }
    added.sort_by_key(|(ago, _)| *ago);
    let expected: Vec<MemoryId> = added.into_iter().map(|(_, id)| id).collect();

    let mut request = ListRequest::first(3);
    let mut sizes = Vec::new();
    let mut listed = Vec::new();
    loop {
        let page = ok("list", store.list(&user, &request).await);
        sizes.push(page.items.len());
        listed.extend(ids(&page.items));
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
        rule!(sizes.len() <= 10, "list paging must end");
    }
    rule!(
        listed == expected,
        "paging through list must give every memory once, newest first: expected {expected:?}, got {listed:?}"
    );
    rule!(
        sizes[..sizes.len() - 1].iter().all(|s| *s == 3) && sizes.iter().all(|s| *s <= 3),
        "every page but the last must be full (limit 3), got page sizes {sizes:?}"
    );

    let whole = ok("list", store.list(&user, &ListRequest::first(100)).await);
    rule!(
        ids(&whole.items) == expected && whole.next_cursor.is_none(),
        "a page larger than the caller's memories must hold them all and be the last"
    );
    erase(store, &[&user]).await;
}

/// Memories with the same `created_at` list in reverse write order, as do
/// memories written one after another without `occurred_at`.
pub async fn list_breaks_time_ties_by_write_order<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let at = before(UnixTimestamp::now(), 86_400);
    let mut same_time = Vec::new();
    for n in 1..=4 {
        let m = create(
            store,
            &user,
            NewMemory::new(format!("Same-time note {n}"), MemorySector::Episodic).occurred_at(at),
        )
        .await;
        same_time.push(m.id);
    }
    let mut now = Vec::new();
    for n in 1..=3 {
        let m = create(
            store,
            &user,
            NewMemory::new(format!("Fresh note {n}"), MemorySector::Episodic),
        )
        .await;
        now.push(m.id);
    }
    let expected: Vec<MemoryId> = now
        .into_iter()
        .rev()
        .chain(same_time.into_iter().rev())
        .collect();
    let listed = ids(&list_all(store, &user, &MemoryFilter::default(), 2).await);
    rule!(
        listed == expected,
        "list must order equal created_at by write order, newest first: expected {expected:?}, got {listed:?}"
    );
    erase(store, &[&user]).await;
}

/// A cursor stays valid while memories are written: continuing after a
/// write neither repeats nor skips the older memories.
pub async fn list_cursors_are_stable_under_writes<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    let mut expected = Vec::new();
    for ago in [100, 200, 300, 400, 500, 600] {
        let m = create(
            store,
            &user,
            NewMemory::new(format!("Older note {ago}"), MemorySector::Episodic)
                .occurred_at(before(base, ago)),
        )
        .await;
        expected.push(m.id);
    }
    let first = ok("list", store.list(&user, &ListRequest::first(2)).await);
    let Some(cursor) = first.next_cursor.clone() else {
        panic!("conformance: list of 6 memories with limit 2 must give a next_cursor");
    };
    let newest = create(
        store,
        &user,
        NewMemory::new("A note written while paging", MemorySector::Episodic),
    )
    .await;
    let mut listed = ids(&first.items);
    let mut request = ListRequest {
        cursor: Some(cursor),
        ..ListRequest::first(2)
    };
    for _ in 0..10 {
        let page = ok("list", store.list(&user, &request).await);
        listed.extend(ids(&page.items));
        match page.next_cursor {
            Some(c) => request.cursor = Some(c),
            None => break,
        }
    }
    rule!(
        listed == expected,
        "a cursor must stay stable under writes (no repeat, no skip): expected {expected:?}, got {listed:?}"
    );
    let fresh = ok("list", store.list(&user, &ListRequest::first(2)).await);
    rule!(
        fresh.items.first().map(|m| &m.id) == Some(&newest.id),
        "a new first page must start with the memory written last"
    );
    erase(store, &[&user]).await;
}

/// `list` applies each filter, across pages.
pub async fn list_applies_filters<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    let (x, y) = (agent("agent_x"), agent("agent_y"));
    let specs = [
        (MemorySector::Semantic, 0.9, Some(&x)),
        (MemorySector::Episodic, 0.7, Some(&x)),
        (MemorySector::Semantic, 0.3, None),
        (MemorySector::Episodic, 0.9, Some(&y)),
        (MemorySector::Semantic, 0.5, Some(&y)),
        (MemorySector::Emotional, 0.8, Some(&x)),
    ];
    let mut added = Vec::new();
    for (n, (sector, s, a)) in specs.into_iter().enumerate() {
        let mut new = NewMemory::new(format!("Filtered note {n}"), sector)
            .salience(salience(s))
            .occurred_at(before(base, 60 * (n as i64 + 1)));
        if let Some(a) = a {
            new = new.agent(a.clone());
        }
        added.push(create(store, &user, new).await);
    }
    let filters = [
        MemoryFilter {
            sector: Some(MemorySector::Semantic),
            ..MemoryFilter::default()
        },
        MemoryFilter {
            min_salience: Some(salience(0.75)),
            ..MemoryFilter::default()
        },
        MemoryFilter {
            agent_id: Some(x.clone()),
            ..MemoryFilter::default()
        },
        MemoryFilter {
            sector: Some(MemorySector::Episodic),
            min_salience: Some(salience(0.8)),
            agent_id: Some(y.clone()),
        },
        MemoryFilter {
            sector: Some(MemorySector::Reflective),
            ..MemoryFilter::default()
        },
    ];
    for filter in filters {
        let expected: Vec<MemoryId> = added
            .iter()
            .filter(|m| filter.matches(m))
            .map(|m| m.id.clone())
            .collect();
        let listed = ids(&list_all(store, &user, &filter, 2).await);
        rule!(
            listed == expected,
            "list with filter {filter:?} must give exactly the matching memories, newest first: expected {expected:?}, got {listed:?}"
        );
    }
    erase(store, &[&user]).await;
}

/// A cursor the store did not issue is `InvalidCursor`, not read as
/// "start over".
pub async fn list_rejects_foreign_cursor<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    create(
        store,
        &user,
        NewMemory::new("Caller collects stamps", MemorySector::Semantic),
    )
    .await;
    let request = ListRequest {
        cursor: Some("not a cursor \u{1F600}".into()),
        ..ListRequest::first(10)
    };
    match store.list(&user, &request).await {
        Err(MemoryError::InvalidCursor(_)) => {}
        other => panic!(
            "conformance: list with a cursor the store never issued must be InvalidCursor, got {other:?}"
        ),
    }
    erase(store, &[&user]).await;
}

/// `update` changes the fields given (metadata merged), keeps the others,
/// bumps `updated_at`, and the change is what `get` and `search` see.
pub async fn update_changes_only_what_is_given<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let mut metadata = Metadata::new();
    metadata.insert("a".into(), json!(1));
    metadata.insert("b".into(), json!(2));
    let mut new = NewMemory::new("Caller likes jazz", MemorySector::Semantic)
        .salience(salience(0.5))
        .tag("music")
        .agent(agent("agent_x"))
        .occurred_at(before(UnixTimestamp::now(), 1_000));
    new.metadata = metadata;
    let original = create(store, &user, new).await;

    let mut changes = Metadata::new();
    changes.insert("b".into(), json!(3));
    changes.insert("c".into(), json!("four"));
    let update = MemoryUpdate {
        content: Some("Caller likes bebop jazz".into()),
        salience: Some(salience(0.8)),
        tags: Some(vec!["music".into(), "jazz".into()]),
        metadata: Some(changes),
    };
    let updated = ok("update", store.update(&user, &original.id, update).await);
    for (what, m) in [
        ("update's returned memory", updated.clone()),
        (
            "get after update",
            ok("get", store.get(&user, &original.id).await),
        ),
    ] {
        rule!(m.id == original.id, "{what}: the id must not change");
        rule!(
            m.content == "Caller likes bebop jazz",
            "{what}: content must be the new one, got {:?}",
            m.content
        );
        rule!(
            (m.salience.get() - 0.8).abs() < 1e-9,
            "{what}: salience must be the new one, got {}",
            m.salience
        );
        let mut tags = m.tags.clone();
        tags.sort();
        rule!(
            tags == ["jazz", "music"],
            "{what}: tags must be replaced, got {tags:?}"
        );
        for (key, value) in [("a", json!(1)), ("b", json!(3)), ("c", json!("four"))] {
            rule!(
                m.metadata.get(key) == Some(&value),
                "{what}: metadata must be merged ({key} = {value}), got {:?}",
                m.metadata.get(key)
            );
        }
        rule!(
            m.sector == original.sector
                && m.agent_id == original.agent_id
                && m.created_at == original.created_at
                && m.decay_lambda == original.decay_lambda,
            "{what}: fields not in the update must not change"
        );
        rule!(
            m.updated_at >= original.updated_at,
            "{what}: updated_at must not go back ({} -> {})",
            original.updated_at,
            m.updated_at
        );
    }
    let found = search_ids(store, &user, &SearchQuery::new("bebop", 5)).await;
    rule!(
        found.first() == Some(&original.id),
        "search must see updated content, got {found:?}"
    );

    let salience_only = MemoryUpdate {
        salience: Some(salience(0.2)),
        ..MemoryUpdate::default()
    };
    let m = ok(
        "update",
        store.update(&user, &original.id, salience_only).await,
    );
    rule!(
        m.content == "Caller likes bebop jazz" && (m.salience.get() - 0.2).abs() < 1e-9,
        "an update of salience only must keep the content, got {m:?}"
    );
    let unchanged = ok(
        "an update changing nothing",
        store
            .update(&user, &original.id, MemoryUpdate::default())
            .await,
    );
    rule!(
        unchanged.content == m.content
            && unchanged.salience == m.salience
            && unchanged.tags == m.tags
            && unchanged.metadata == m.metadata,
        "an update changing nothing must leave the memory as it was, got {unchanged:?}"
    );
    erase(store, &[&user]).await;
}

/// `update` to blank or oversized content is `Rejected` naming `content`
/// and changes nothing.
pub async fn update_rejects_blank_content<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let original = create(
        store,
        &user,
        NewMemory::new("Caller's cat is named Mochi", MemorySector::Semantic),
    )
    .await;
    for content in [" \t\n ".to_owned(), "x".repeat(MAX_CONTENT_LEN + 1)] {
        let update = MemoryUpdate {
            content: Some(content),
            salience: Some(Salience::MIN),
            ..MemoryUpdate::default()
        };
        rejected(
            "update to blank or oversized content",
            "content",
            store.update(&user, &original.id, update).await,
        );
        let m = ok("get", store.get(&user, &original.id).await);
        rule!(
            m.content == original.content && m.salience == original.salience,
            "a rejected update must change nothing, got {m:?}"
        );
    }
    erase(store, &[&user]).await;
}

/// `delete` removes exactly one memory: `get` and a second `delete` are
/// then `NotFound`; list, search and the count no longer see it.
pub async fn delete_removes_only_that_memory<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    let keep1 = create(
        store,
        &user,
        NewMemory::new("Caller plays the cello", MemorySector::Semantic)
            .occurred_at(before(base, 30)),
    )
    .await;
    let gone = create(
        store,
        &user,
        NewMemory::new("Caller is allergic to peanuts", MemorySector::Semantic)
            .occurred_at(before(base, 20)),
    )
    .await;
    let keep2 = create(
        store,
        &user,
        NewMemory::new("Caller drives a red tractor", MemorySector::Semantic)
            .occurred_at(before(base, 10)),
    )
    .await;
    ok("delete", store.delete(&user, &gone.id).await);
    not_found("get of a deleted memory", store.get(&user, &gone.id).await);
    not_found(
        "delete of a deleted memory",
        store.delete(&user, &gone.id).await,
    );
    let listed = ids(&list_all(store, &user, &MemoryFilter::default(), 10).await);
    rule!(
        listed == [keep2.id.clone(), keep1.id.clone()],
        "list after delete must hold the other memories only, got {listed:?}"
    );
    let found = search_ids(store, &user, &SearchQuery::new("peanuts allergic", 5)).await;
    rule!(
        !found.contains(&gone.id),
        "search must not return a deleted memory"
    );
    rule!(
        count(store, &user).await == 2,
        "the profile's memory_count must drop after delete"
    );
    erase(store, &[&user]).await;
}

/// `erase_user` deletes every memory of the caller, returns how many, and
/// leaves other callers untouched.
pub async fn erase_user_counts_and_spares_others<S: MemoryStore + ?Sized>(store: &S) {
    let (a, b) = (fresh_user(), fresh_user());
    let mut a_ids = Vec::new();
    for n in 0..3 {
        let m = create(
            store,
            &a,
            NewMemory::new(format!("Erasable note {n}"), MemorySector::Episodic),
        )
        .await;
        a_ids.push(m.id);
    }
    create(
        store,
        &a,
        NewMemory::new("Caller's first_name: Erin", MemorySector::Semantic).fact(fact(
            "first_name",
            "Erin",
            true,
        )),
    )
    .await;
    create(
        store,
        &b,
        NewMemory::new("Erasable note 0", MemorySector::Episodic),
    )
    .await;
    create_for_other_caller(
        store,
        &b,
        NewMemory::new("Caller's first_name: Blake", MemorySector::Semantic).fact(fact(
            "first_name",
            "Blake",
            true,
        )),
    )
    .await;

    let erased = ok("erase_user", store.erase_user(&a).await);
    rule!(
        erased == 4,
        "erase_user must return how many memories it deleted (4), got {erased}"
    );
    let profile = ok("profile", store.profile(&a).await);
    rule!(
        profile.memory_count == 0 && profile.name.is_none() && profile.summary.is_none(),
        "an erased caller's profile must be empty, got {profile:?}"
    );
    rule!(
        list_all(store, &a, &MemoryFilter::default(), 10)
            .await
            .is_empty(),
        "an erased caller must have nothing to list"
    );
    rule!(
        search_ids(store, &a, &SearchQuery::new("erasable note", 10))
            .await
            .is_empty(),
        "an erased caller must have nothing to find"
    );
    not_found("get of an erased memory", store.get(&a, &a_ids[0]).await);
    let other = ok("profile", store.profile(&b).await);
    rule!(
        other.memory_count == 2 && other.name.as_deref() == Some("Blake"),
        "erase_user must leave other callers untouched, got {other:?}"
    );
    let again = ok("erase_user", store.erase_user(&a).await);
    rule!(
        again == 0,
        "erase_user of an erased caller must count 0, got {again}"
    );
    erase(store, &[&b]).await;
}

/// One caller's operations never see or touch another caller's memories:
/// another caller's id is `NotFound` for get, update and delete.
pub async fn users_are_isolated<S: MemoryStore + ?Sized>(store: &S) {
    let (a, b) = (fresh_user(), fresh_user());
    let a_note = create(
        store,
        &a,
        NewMemory::new(
            "Caller grows tulips in the greenhouse",
            MemorySector::Semantic,
        ),
    )
    .await;
    create(
        store,
        &a,
        NewMemory::new("Caller's first_name: Alice", MemorySector::Semantic).fact(fact(
            "first_name",
            "Alice",
            true,
        )),
    )
    .await;
    let b_note = create(
        store,
        &b,
        NewMemory::new("Caller sells tulips at the market", MemorySector::Semantic),
    )
    .await;
    create_for_other_caller(
        store,
        &b,
        NewMemory::new("Caller's first_name: Bob", MemorySector::Semantic).fact(fact(
            "first_name",
            "Bob",
            true,
        )),
    )
    .await;

    let found = search_ids(store, &b, &SearchQuery::new("tulips", 10)).await;
    rule!(
        found.first() == Some(&b_note.id) && !found.contains(&a_note.id),
        "search must see only the caller's memories: expected {} first and never {}, got {found:?}",
        b_note.id,
        a_note.id
    );
    let listed = list_all(store, &b, &MemoryFilter::default(), 10).await;
    rule!(
        listed.len() == 2 && listed.iter().all(|m| m.user_id == b),
        "list must see only the caller's memories, got {:?}",
        ids(&listed)
    );
    not_found(
        "get of another caller's memory",
        store.get(&b, &a_note.id).await,
    );
    not_found(
        "update of another caller's memory",
        store
            .update(
                &b,
                &a_note.id,
                MemoryUpdate {
                    content: Some("hijacked".into()),
                    ..MemoryUpdate::default()
                },
            )
            .await,
    );
    not_found(
        "delete of another caller's memory",
        store.delete(&b, &a_note.id).await,
    );
    let still = ok("get", store.get(&a, &a_note.id).await);
    rule!(
        still.content == a_note.content,
        "another caller's update or delete must not touch the memory, got {:?}",
        still.content
    );
    for (user, name) in [(&a, "Alice"), (&b, "Bob")] {
        let profile = ok("profile", store.profile(user).await);
        rule!(
            profile.name.as_deref() == Some(name) && profile.memory_count == 2,
            "profile must be built from the caller's memories only: expected {name} with 2, got {profile:?}"
        );
    }
    erase(store, &[&a, &b]).await;
}

/// A fact replaces the caller's earlier facts with the same key and
/// reports their ids; a fact with another key, or a memory without a fact,
/// replaces nothing.
pub async fn facts_supersede_by_key<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    let first = create(
        store,
        &user,
        NewMemory::new("Caller's first_name: Margaret", MemorySector::Semantic)
            .fact(fact("first_name", "Margaret", true))
            .occurred_at(before(base, 300)),
    )
    .await;
    let second = NewMemory::new("Caller's first_name: Maggie", MemorySector::Semantic)
        .fact(fact("first_name", "Maggie", true))
        .occurred_at(before(base, 200));
    let second = match ok(
        "add of a fact with a key already held",
        store.add(&user, second).await,
    ) {
        AddOutcome::Superseded { memory, replaced } => {
            rule!(
                replaced == [first.id.clone()],
                "Superseded must list the replaced memory {}, got {replaced:?}",
                first.id
            );
            memory
        }
        other => {
            panic!("conformance: a fact with a key already held must be Superseded, got {other:?}")
        }
    };
    not_found(
        "get of a superseded fact",
        store.get(&user, &first.id).await,
    );
    let city = create(
        store,
        &user,
        NewMemory::new("Caller's city: Leeds", MemorySector::Semantic)
            .fact(fact("city", "Leeds", false))
            .occurred_at(before(base, 100)),
    )
    .await;
    let note = create(
        store,
        &user,
        NewMemory::new(
            "Caller's first_name was asked again",
            MemorySector::Episodic,
        )
        .occurred_at(before(base, 50)),
    )
    .await;
    let listed = ids(&list_all(store, &user, &MemoryFilter::default(), 10).await);
    rule!(
        listed == [note.id.clone(), city.id.clone(), second.id.clone()],
        "after supersession the caller must hold one memory per fact key plus other memories, got {listed:?}"
    );
    let found = search_ids(store, &user, &SearchQuery::new("Margaret", 10)).await;
    rule!(
        !found.contains(&first.id),
        "search must not return a superseded fact, got {found:?}"
    );
    let profile = ok("profile", store.profile(&user).await);
    rule!(
        profile.name.as_deref() == Some("Maggie"),
        "the profile name must be the superseding fact's value, got {:?}",
        profile.name
    );
    // Changing a fact's memory keeps it the holder of its key.
    let touched = MemoryUpdate {
        salience: Some(Salience::MAX),
        ..MemoryUpdate::default()
    };
    let touched = ok(
        "update of a fact",
        store.update(&user, &second.id, touched).await,
    );
    rule!(
        touched.fact == second.fact,
        "update must keep the memory's fact, got {:?}",
        touched.fact
    );
    let third = NewMemory::new("Caller's first_name: Meg", MemorySector::Semantic)
        .fact(fact("first_name", "Meg", true))
        .occurred_at(before(base, 10));
    match ok(
        "add of a fact replacing an updated one",
        store.add(&user, third).await,
    ) {
        AddOutcome::Superseded { replaced, .. } => rule!(
            replaced == [second.id.clone()],
            "a fact must supersede the updated holder of its key {}, got {replaced:?}",
            second.id
        ),
        other => panic!(
            "conformance: a fact must supersede the updated holder of its key, got {other:?}"
        ),
    }
    erase(store, &[&user]).await;
}

/// The profile's name is the newest name fact's value, its summary lists
/// the current facts as `key: value` in key order, and its count is the
/// caller's number of memories.
pub async fn profile_reports_newest_name_and_facts<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    for (key, value, is_name, ago) in [
        ("first_name", "Margaret", true, 400),
        ("city", "Leeds", false, 300),
        ("first_name", "Maggie", true, 200),
        ("preferred_name", "Mags", true, 100),
    ] {
        ok(
            "add of a fact",
            store
                .add(
                    &user,
                    NewMemory::new(format!("Caller's {key}: {value}"), MemorySector::Semantic)
                        .fact(fact(key, value, is_name))
                        .occurred_at(before(base, ago)),
                )
                .await,
        );
    }
    create(
        store,
        &user,
        NewMemory::new("Caller rang about a delivery", MemorySector::Episodic),
    )
    .await;
    let profile = ok("profile", store.profile(&user).await);
    rule!(
        profile.user_id == user,
        "profile must be of the caller asked for"
    );
    rule!(
        profile.name.as_deref() == Some("Mags"),
        "the profile name must be the newest name fact's value (Mags), got {:?}",
        profile.name
    );
    rule!(
        profile.summary.as_deref() == Some("city: Leeds; first_name: Maggie; preferred_name: Mags"),
        "the profile summary must list the current facts in key order, got {:?}",
        profile.summary
    );
    rule!(
        profile.memory_count == 4,
        "the profile memory_count must count every current memory (4), got {}",
        profile.memory_count
    );
    erase(store, &[&user]).await;
}

/// A write whose idempotency key the caller already wrote changes nothing
/// and returns the first memory as `Duplicate`; the same key for another
/// caller is independent.
pub async fn idempotent_writes_change_nothing<S: MemoryStore + ?Sized>(store: &S) {
    let (a, b) = (fresh_user(), fresh_user());
    let key = idem(&format!("conv_{}/summary", nonce()));
    let first = create(
        store,
        &a,
        NewMemory::new("Summary of the call", MemorySector::Episodic).idempotency_key(key.clone()),
    )
    .await;
    let retry = NewMemory::new("Summary of the call, retried", MemorySector::Episodic)
        .idempotency_key(key.clone());
    match ok("add with a key already written", store.add(&a, retry).await) {
        AddOutcome::Duplicate(m) => rule!(
            m.id == first.id && m.content == first.content,
            "Duplicate must carry the memory written first ({}), got {m:?}",
            first.id
        ),
        other => panic!(
            "conformance: a write with a key already written must be Duplicate, got {other:?}"
        ),
    }
    rule!(
        count(store, &a).await == 1,
        "a duplicate write must not add a memory"
    );
    let got = ok("get", store.get(&a, &first.id).await);
    rule!(
        got.content == "Summary of the call",
        "a duplicate write must not change the first memory, got {:?}",
        got.content
    );

    create(
        store,
        &b,
        NewMemory::new("Summary of another call", MemorySector::Episodic)
            .idempotency_key(key.clone()),
    )
    .await;
    rule!(
        count(store, &a).await == 1 && count(store, &b).await == 1,
        "idempotency keys must be per caller"
    );

    let fact_key = idem(&format!("conv_{}/first_name", nonce()));
    let name = NewMemory::new("Caller's first_name: Ann", MemorySector::Semantic)
        .fact(fact("first_name", "Ann", true))
        .idempotency_key(fact_key);
    let named = create(store, &a, name.clone()).await;
    match ok("replay of a fact", store.add(&a, name).await) {
        AddOutcome::Duplicate(m) => rule!(
            m.id == named.id,
            "a replayed fact must be Duplicate of the first write"
        ),
        other => {
            panic!("conformance: a replayed fact must be Duplicate, not supersede, got {other:?}")
        }
    }
    ok("get", store.get(&a, &named.id).await);
    rule!(
        count(store, &a).await == 2,
        "a replayed fact must not add a memory"
    );
    erase(store, &[&a, &b]).await;
}

/// Replaying an old write whose fact has since been superseded changes
/// nothing: the newer fact stays.
pub async fn idempotency_survives_supersession<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    let old = NewMemory::new("Caller's first_name: Ann", MemorySector::Semantic)
        .fact(fact("first_name", "Ann", true))
        .occurred_at(before(base, 200))
        .idempotency_key(idem(&format!("conv_{}/first_name", nonce())));
    create(store, &user, old.clone()).await;
    let newer = NewMemory::new("Caller's first_name: Anne", MemorySector::Semantic)
        .fact(fact("first_name", "Anne", true))
        .occurred_at(before(base, 100))
        .idempotency_key(idem(&format!("conv_{}/first_name", nonce())));
    let newer = ok("add of a newer fact", store.add(&user, newer).await);
    rule!(
        matches!(newer, AddOutcome::Superseded { .. }),
        "a newer fact with the same key must be Superseded, got {newer:?}"
    );
    let replay = ok(
        "replay of the superseded write",
        store.add(&user, old).await,
    );
    rule!(
        replay.is_duplicate(),
        "replaying a write whose key was already written must be Duplicate even after its fact was superseded, got {replay:?}"
    );
    let profile = ok("profile", store.profile(&user).await);
    rule!(
        profile.name.as_deref() == Some("Anne") && profile.memory_count == 1,
        "a replayed old fact must not bring back the old value, got {profile:?}"
    );
    erase(store, &[&user]).await;
}

/// `add_batch` applies the rules to each memory in order and returns one
/// outcome per memory, in order.
pub async fn add_batch_applies_rules_in_order<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    let key = idem(&format!("conv_{}/summary", nonce()));
    let batch = vec![
        NewMemory::new("Caller booked a table for two", MemorySector::Episodic)
            .occurred_at(before(base, 50)),
        NewMemory::new("Caller's favourite_colour: red", MemorySector::Semantic)
            .fact(fact("favourite_colour", "red", false))
            .occurred_at(before(base, 40)),
        NewMemory::new("Caller's favourite_colour: blue", MemorySector::Semantic)
            .fact(fact("favourite_colour", "blue", false))
            .occurred_at(before(base, 30)),
        NewMemory::new("Summary: booked a table", MemorySector::Episodic)
            .idempotency_key(key.clone())
            .occurred_at(before(base, 20)),
        NewMemory::new("Summary: booked a table (again)", MemorySector::Episodic)
            .idempotency_key(key)
            .occurred_at(before(base, 10)),
    ];
    let none = ok(
        "add_batch of nothing",
        store.add_batch(&user, Vec::new()).await,
    );
    rule!(
        none.is_empty(),
        "add_batch of nothing must return no outcomes, got {none:?}"
    );
    let outcomes = ok("add_batch", store.add_batch(&user, batch.clone()).await);
    rule!(
        outcomes.len() == batch.len(),
        "add_batch must return one outcome per memory ({}), got {}",
        batch.len(),
        outcomes.len()
    );
    for (n, (outcome, new)) in outcomes.iter().zip(&batch).take(4).enumerate() {
        assert_written(
            &format!("add_batch outcome {n}"),
            outcome.memory(),
            new,
            &user,
        );
    }
    rule!(
        matches!(outcomes[0], AddOutcome::Created(_))
            && matches!(outcomes[1], AddOutcome::Created(_)),
        "add_batch: memories replacing nothing must be Created, got {:?} and {:?}",
        outcomes[0],
        outcomes[1]
    );
    match &outcomes[2] {
        AddOutcome::Superseded { replaced, .. } => rule!(
            replaced == &[outcomes[1].memory().id.clone()],
            "add_batch: a later fact must supersede an earlier one of the same batch, got {replaced:?}"
        ),
        other => panic!(
            "conformance: add_batch: a later fact with the same key must be Superseded, got {other:?}"
        ),
    }
    match &outcomes[4] {
        AddOutcome::Duplicate(m) => rule!(
            m.id == outcomes[3].memory().id,
            "add_batch: a repeated idempotency key must be Duplicate of the first"
        ),
        other => panic!(
            "conformance: add_batch: a repeated idempotency key must be Duplicate, got {other:?}"
        ),
    }
    let listed = ids(&list_all(store, &user, &MemoryFilter::default(), 10).await);
    let expected = [3, 2, 0].map(|i| outcomes[i].memory().id.clone());
    rule!(
        listed == expected,
        "after add_batch the caller must hold exactly the surviving memories {expected:?}, got {listed:?}"
    );
    erase(store, &[&user]).await;
}

/// Blank or oversized content is `Rejected` naming `content`, and changes
/// nothing: no memory, no supersession, no idempotency key used up.
pub async fn rejected_input_changes_nothing<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    create(
        store,
        &user,
        NewMemory::new("Caller's first_name: Zoe", MemorySector::Semantic).fact(fact(
            "first_name",
            "Zoe",
            true,
        )),
    )
    .await;
    let key = idem(&format!("conv_{}/summary", nonce()));
    let bad = [
        NewMemory::new("", MemorySector::Semantic),
        NewMemory::new("   \n\t", MemorySector::Semantic).fact(fact("first_name", "Zed", true)),
        NewMemory::new("x".repeat(MAX_CONTENT_LEN + 1), MemorySector::Episodic),
        NewMemory::new(" ", MemorySector::Episodic).idempotency_key(key.clone()),
    ];
    for new in bad {
        rejected(
            "add of blank or oversized content",
            "content",
            store.add(&user, new).await,
        );
    }
    let batch = vec![
        NewMemory::new(" ", MemorySector::Episodic),
        NewMemory::new("A fine memory", MemorySector::Episodic),
    ];
    rejected(
        "add_batch starting with blank content",
        "content",
        store.add_batch(&user, batch).await,
    );
    let profile = ok("profile", store.profile(&user).await);
    rule!(
        profile.memory_count == 1 && profile.name.as_deref() == Some("Zoe"),
        "rejected writes must change nothing, got {profile:?}"
    );
    let outcome = ok(
        "add with a key only a rejected write used",
        store
            .add(
                &user,
                NewMemory::new("The real summary", MemorySector::Episodic).idempotency_key(key),
            )
            .await,
    );
    rule!(
        matches!(outcome, AddOutcome::Created(_)),
        "a rejected write must not use up its idempotency key, got {outcome:?}"
    );
    erase(store, &[&user]).await;
}

/// A fact learnt before the caller's current fact with the same key (a
/// call processed late) writes nothing and is [`AddOutcome::Outdated`],
/// alone or in a batch, and its idempotency key is not spent; a fact
/// learnt at the same time or later, or without a time, replaces it.
pub async fn an_older_fact_never_replaces_a_newer_one<S: MemoryStore + ?Sized>(store: &S) {
    let user = fresh_user();
    let base = UnixTimestamp::now();
    let city = |value: &str, at: Option<UnixTimestamp>| {
        let new = NewMemory::new(format!("Caller's city: {value}"), MemorySector::Semantic)
            .fact(fact("city", value, false));
        match at {
            Some(at) => new.occurred_at(at),
            None => new,
        }
    };
    let newer = create(store, &user, city("Leeds", Some(before(base, 100)))).await;
    let late_key = idem(&format!("conv_{}/city", nonce()));
    let late = city("York", Some(before(base, 200))).idempotency_key(late_key.clone());
    match ok("add of an older fact", store.add(&user, late.clone()).await) {
        AddOutcome::Outdated(current) => rule!(
            current.id == newer.id,
            "Outdated must carry the newer fact {}, got {current:?}",
            newer.id
        ),
        other => panic!(
            "conformance: a fact learnt before the current one of its key must be Outdated, got {other:?}"
        ),
    }
    rule!(
        ok("get of the newer fact", store.get(&user, &newer.id).await) == newer,
        "an outdated fact must leave the newer one as it was"
    );
    let episode =
        NewMemory::new("Caller moved house", MemorySector::Episodic).occurred_at(before(base, 200));
    let outcomes = ok(
        "add_batch with an older fact",
        store
            .add_batch(&user, vec![city("Hull", Some(before(base, 300))), episode])
            .await,
    );
    rule!(
        matches!(outcomes[0], AddOutcome::Outdated(_))
            && matches!(outcomes[1], AddOutcome::Created(_)),
        "add_batch: an older fact must be Outdated and the rest of the batch written, got {outcomes:?}"
    );
    let listed = list_all(store, &user, &MemoryFilter::default(), 10).await;
    rule!(
        listed
            .iter()
            .filter(|m| m.fact.is_some())
            .map(|m| &m.id)
            .eq([&newer.id]),
        "an outdated fact must write nothing, got {listed:?}"
    );
    let profile = ok("profile", store.profile(&user).await);
    rule!(
        profile
            .summary
            .as_deref()
            .is_some_and(|s| s.contains("city: Leeds") && !s.contains("York")),
        "the profile must keep the newer fact, got {:?}",
        profile.summary
    );
    // Nothing was written under the outdated write's key: once its call is
    // the newest, the same write is made.
    let same_time = city("Leeds (centre)", Some(before(base, 100)));
    let replaced_newer = match ok(
        "add of a fact learnt at the same time",
        store.add(&user, same_time).await,
    ) {
        AddOutcome::Superseded { memory, replaced } => {
            rule!(
                replaced == [newer.id.clone()],
                "a fact learnt at the same time must supersede, got {replaced:?}"
            );
            memory
        }
        other => panic!(
            "conformance: a fact learnt at the same time as the current one must be Superseded, got {other:?}"
        ),
    };
    let now = match ok(
        "add of a fact without a time",
        store.add(&user, city("Bath", None)).await,
    ) {
        AddOutcome::Superseded { memory, replaced } => {
            rule!(
                replaced == [replaced_newer.id.clone()],
                "a fact without a time is learnt now and must supersede, got {replaced:?}"
            );
            memory
        }
        other => panic!("conformance: a fact without a time must be Superseded, got {other:?}"),
    };
    let mut still_late = late;
    still_late.occurred_at = Some(now.created_at.plus_secs(1));
    match ok(
        "the outdated write once newest",
        store.add(&user, still_late).await,
    ) {
        AddOutcome::Superseded { replaced, .. } => rule!(
            replaced == [now.id.clone()],
            "an outdated write's idempotency key must not be spent, got {replaced:?}"
        ),
        other => panic!(
            "conformance: an outdated write's idempotency key must not be spent, got {other:?}"
        ),
    }
    erase(store, &[&user]).await;
}
