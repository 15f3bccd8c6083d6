//! The conformance suite itself: it passes a faithful store, leaves no
//! data behind, can share a store between concurrent runs, and catches a
//! store that breaks any one rule, naming the rule.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use recall_memory::{
    AddOutcome, InMemoryStore, ListRequest, Memory, MemoryError, MemoryFilter, MemoryId,
    MemoryPage, MemoryStore, MemoryUpdate, NewMemory, ScoredMemory, SearchQuery, UserProfile,
    conformance,
};
use recall_model::PhoneNumber;

/// One broken rule.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flaw {
    None,
    IgnoresIdempotency,
    SharesOneCaller,
    GetsAnyCallersMemory,
    ListsOldestFirst,
    HidesSupersession,
    IgnoresSearchFilters,
    ExceedsK,
    RanksWorstFirst,
    MiscountsErase,
    DeleteDoesNothing,
    RestartsOnForeignCursor,
    StoresBlankContent,
    IgnoresOccurredAt,
    DropsEmbeddings,
    RanksNewestFirst,
    ReplacesNewerFacts,
}

/// The in-memory store with one rule broken.
struct Flawed {
    inner: InMemoryStore,
    flaw: Flaw,
    shared: PhoneNumber,
    owners: Mutex<HashMap<MemoryId, PhoneNumber>>,
}

impl Flawed {
    fn new(flaw: Flaw) -> Self {
        Self {
            inner: InMemoryStore::new(),
            flaw,
            shared: PhoneNumber::parse("+15550000000").unwrap(),
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// The caller the inner store is asked about.
    fn scope(&self, user: &PhoneNumber) -> PhoneNumber {
        if self.flaw == Flaw::SharesOneCaller {
            self.shared.clone()
        } else {
            user.clone()
        }
    }

    /// Makes a memory look like the caller's, hiding a shared scope.
    fn disguise(&self, mut memory: Memory, user: &PhoneNumber) -> Memory {
        memory.user_id = user.clone();
        memory
    }
}

#[async_trait]
impl MemoryStore for Flawed {
    async fn add(
        &self,
        user: &PhoneNumber,
        mut memory: NewMemory,
    ) -> Result<AddOutcome, MemoryError> {
        match self.flaw {
            Flaw::IgnoresIdempotency => memory.idempotency_key = None,
            Flaw::StoresBlankContent if memory.content.trim().is_empty() => {
                memory.content = "(blank)".into();
            }
            Flaw::IgnoresOccurredAt => memory.occurred_at = None,
            Flaw::DropsEmbeddings => memory.embedding = None,
            _ => {}
        }
        let mut replaced_newer = Vec::new();
        if self.flaw == Flaw::ReplacesNewerFacts
            && memory.idempotency_key.is_none()
            && memory.fact.is_some()
        {
            // The last writer wins, whenever its fact was learnt (writes
            // with a key are left to the inner store, which keeps
            // replays Duplicate).
            let held = self
                .inner
                .list(&self.scope(user), &ListRequest::first(100))
                .await?;
            for m in held.items {
                if memory.is_outdated_by(&m) {
                    self.inner.delete(&self.scope(user), &m.id).await?;
                    replaced_newer.push(m.id);
                }
            }
        }
        let outcome = self.inner.add(&self.scope(user), memory).await?;
        let outcome = match outcome {
            AddOutcome::Created(memory) if !replaced_newer.is_empty() => AddOutcome::Superseded {
                memory,
                replaced: replaced_newer,
            },
            other => other,
        };
        self.owners
            .lock()
            .unwrap()
            .insert(outcome.memory().id.clone(), user.clone());
        Ok(match outcome {
            AddOutcome::Created(m) => AddOutcome::Created(self.disguise(m, user)),
            AddOutcome::Duplicate(m) => AddOutcome::Duplicate(self.disguise(m, user)),
            AddOutcome::Superseded { memory, .. } if self.flaw == Flaw::HidesSupersession => {
                AddOutcome::Created(self.disguise(memory, user))
            }
            AddOutcome::Superseded { memory, replaced } => AddOutcome::Superseded {
                memory: self.disguise(memory, user),
                replaced,
            },
            AddOutcome::Outdated(m) => AddOutcome::Outdated(self.disguise(m, user)),
            other => other,
        })
    }

    async fn search(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<Vec<ScoredMemory>, MemoryError> {
        let mut query = query.clone();
        match self.flaw {
            Flaw::IgnoresSearchFilters => query.filter = MemoryFilter::default(),
            Flaw::ExceedsK => query.k = query.effective_k() + 1,
            _ => {}
        }
        let mut found = self.inner.search(&self.scope(user), &query).await?;
        if self.flaw == Flaw::RanksWorstFirst {
            found.reverse();
        }
        if self.flaw == Flaw::RanksNewestFirst {
            // Its own rule: the newest memories, whatever the question.
            let scores: Vec<f64> = found.iter().map(|r| r.score).collect();
            found.sort_by_key(|r| std::cmp::Reverse(r.memory.created_at));
            for (r, s) in found.iter_mut().zip(scores) {
                r.score = s;
            }
        }
        for r in &mut found {
            r.memory.user_id = user.clone();
        }
        Ok(found)
    }

    async fn list(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<MemoryPage, MemoryError> {
        let scope = self.scope(user);
        let mut page = match self.inner.list(&scope, request).await {
            Err(MemoryError::InvalidCursor(_)) if self.flaw == Flaw::RestartsOnForeignCursor => {
                let restart = ListRequest {
                    cursor: None,
                    ..request.clone()
                };
                self.inner.list(&scope, &restart).await?
            }
            other => other?,
        };
        if self.flaw == Flaw::ListsOldestFirst {
            page.items.reverse();
        }
        for m in &mut page.items {
            m.user_id = user.clone();
        }
        Ok(page)
    }

    async fn get(&self, user: &PhoneNumber, id: &MemoryId) -> Result<Memory, MemoryError> {
        let owner = match self.flaw {
            Flaw::GetsAnyCallersMemory => self.owners.lock().unwrap().get(id).cloned(),
            _ => None,
        };
        let scope = owner.unwrap_or_else(|| self.scope(user));
        Ok(self.disguise(self.inner.get(&scope, id).await?, user))
    }

    async fn update(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        update: MemoryUpdate,
    ) -> Result<Memory, MemoryError> {
        let m = self.inner.update(&self.scope(user), id, update).await?;
        Ok(self.disguise(m, user))
    }

    async fn delete(&self, user: &PhoneNumber, id: &MemoryId) -> Result<(), MemoryError> {
        if self.flaw == Flaw::DeleteDoesNothing {
            return self.inner.get(&self.scope(user), id).await.map(drop);
        }
        self.inner.delete(&self.scope(user), id).await
    }

    async fn erase_user(&self, user: &PhoneNumber) -> Result<u64, MemoryError> {
        let n = self.inner.erase_user(&self.scope(user)).await?;
        Ok(if self.flaw == Flaw::MiscountsErase {
            0
        } else {
            n
        })
    }

    async fn profile(&self, user: &PhoneNumber) -> Result<UserProfile, MemoryError> {
        let mut profile = self.inner.profile(&self.scope(user)).await?;
        profile.user_id = user.clone();
        Ok(profile)
    }

    async fn health(&self) -> Result<(), MemoryError> {
        self.inner.health().await
    }

    async fn embedding_backlog(
        &self,
        model: recall_memory::ModelTag,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<recall_memory::EmbeddingBacklog, MemoryError> {
        self.inner.embedding_backlog(model, cursor, limit).await
    }

    async fn set_embedding(
        &self,
        user: &PhoneNumber,
        id: &recall_memory::MemoryId,
        embedding: recall_memory::Embedding,
    ) -> Result<(), MemoryError> {
        self.inner.set_embedding(user, id, embedding).await
    }
}

/// Runs `check` on a store with `flaw` and returns its panic message.
async fn violation<F, Fut>(flaw: Flaw, check: F) -> String
where
    F: FnOnce(Arc<Flawed>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let store = Arc::new(Flawed::new(flaw));
    let err = tokio::spawn(check(store))
        .await
        .expect_err("the suite must fail a store that breaks a rule");
    let payload = err.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .expect("a panic message")
}

/// Asserts that the whole suite fails a store with `flaw`, naming the rule
/// with `expected`.
async fn caught(flaw: Flaw, expected: &str) {
    let message = violation(flaw, |s| async move { conformance::run_all(&*s).await }).await;
    assert!(
        message.starts_with("conformance: ") && message.contains(expected),
        "{flaw:?}: expected a message naming {expected:?}, got {message:?}"
    );
}

#[tokio::test]
async fn a_faithful_store_passes_and_the_suite_leaves_no_data_behind() {
    let store = Flawed::new(Flaw::None);
    conformance::run_all(&store).await;
    assert_eq!(
        store.inner.total_memories(),
        0,
        "every check erases its callers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_can_share_one_store() {
    let store = InMemoryStore::new();
    let (a, b) = (store.clone(), store.clone());
    let first = tokio::spawn(async move { conformance::run_all(&a).await });
    let second = tokio::spawn(async move { conformance::run_all(&b).await });
    first.await.unwrap();
    second.await.unwrap();
    assert_eq!(store.total_memories(), 0);
}

#[tokio::test]
async fn catches_ignored_idempotency_keys() {
    caught(Flaw::IgnoresIdempotency, "must be Duplicate").await;
}

#[tokio::test]
async fn catches_callers_sharing_memories() {
    let message = violation(Flaw::SharesOneCaller, |s| async move {
        conformance::users_are_isolated(&*s).await;
    })
    .await;
    assert!(message.contains("supersession is per caller"), "{message}");
    caught(Flaw::SharesOneCaller, "supersession is per caller").await;
}

#[tokio::test]
async fn catches_a_get_that_reads_another_callers_memory() {
    caught(
        Flaw::GetsAnyCallersMemory,
        "get of another caller's memory must be NotFound",
    )
    .await;
}

#[tokio::test]
async fn catches_lists_in_the_wrong_order() {
    caught(Flaw::ListsOldestFirst, "newest first").await;
}

#[tokio::test]
async fn catches_unreported_supersession() {
    caught(Flaw::HidesSupersession, "must be Superseded").await;
}

#[tokio::test]
async fn catches_ignored_search_filters() {
    caught(Flaw::IgnoresSearchFilters, "search must apply its filter").await;
}

#[tokio::test]
async fn catches_more_results_than_k() {
    caught(Flaw::ExceedsK, "at most k").await;
}

#[tokio::test]
async fn catches_results_worst_first() {
    caught(Flaw::RanksWorstFirst, "best first").await;
}

#[tokio::test]
async fn catches_embeddings_dropped() {
    caught(Flaw::DropsEmbeddings, "shared ranking").await;
}

#[tokio::test]
async fn catches_a_ranking_of_its_own() {
    caught(Flaw::RanksNewestFirst, "shared ranking").await;
}

#[tokio::test]
async fn catches_a_wrong_erase_count() {
    caught(Flaw::MiscountsErase, "erase_user must").await;
}

#[tokio::test]
async fn catches_a_delete_that_deletes_nothing() {
    caught(
        Flaw::DeleteDoesNothing,
        "get of a deleted memory must be NotFound",
    )
    .await;
}

#[tokio::test]
async fn catches_a_foreign_cursor_read_as_the_first_page() {
    caught(Flaw::RestartsOnForeignCursor, "must be InvalidCursor").await;
}

#[tokio::test]
async fn catches_blank_content_accepted() {
    caught(Flaw::StoresBlankContent, "Rejected naming `content`").await;
}

#[tokio::test]
async fn catches_occurred_at_ignored() {
    caught(Flaw::IgnoresOccurredAt, "created_at must be occurred_at").await;
}

#[tokio::test]
async fn catches_an_older_fact_replacing_a_newer_one() {
    caught(Flaw::ReplacesNewerFacts, "must be Outdated").await;
}
