//! An in-memory [`MemoryStore`]: the real rules, kept in a map.
//!
//! [`InMemoryStore`] is not a mock. It keeps every rule of the port
//! (scoping per caller, supersession, idempotency, newest-first paging
//! with stable cursors, deterministic ranking) and passes the same
//! conformance suite as the production stores, so services and other
//! projects can test against it. It can also be told to fail or to be
//! slow, to test what a service does when its store misbehaves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use recall_model::{PhoneNumber, UnixTimestamp};

use crate::embed::{Embedding, ModelTag};
use crate::rank::{Candidate, rank};
use crate::store::{
    AddOutcome, EmbeddingBacklog, EmbeddingTask, IdempotencyKey, ListRequest, Memory, MemoryError,
    MemoryId, MemoryPage, MemoryStore, MemoryUpdate, NewMemory, ScoredMemory, SearchQuery,
    UserProfile,
};

/// A thread-safe [`MemoryStore`] held in memory.
///
/// Cheap to construct; clones share the same memories, so a test can keep
/// one clone to inspect or to inject failures while the code under test
/// holds another (for example as an `Arc<dyn MemoryStore>`).
///
/// Behaviour beyond the port's rules:
/// * Ids are `mem_` followed by a simple UUID v4.
/// * `created_at` is the memory's `occurred_at`, else the time of the write.
/// * Search offers all of the caller's memories to the shared ranking
///   ([`crate::rank`]), with their embeddings.
/// * Updating a memory's content drops its embedding (it described the
///   old content); [`embedding_backlog`](MemoryStore::embedding_backlog)
///   then lists it.
/// * An idempotency key stays written when its memory is later superseded
///   or deleted, so replaying an old event cannot bring back a fact that
///   has since changed; [`erase_user`](MemoryStore::erase_user) forgets
///   the caller's keys too.
///
/// For tests of what uses a store: [`set_unavailable`](Self::set_unavailable),
/// [`set_fail_writes`](Self::set_fail_writes),
/// [`fail_next_calls`](Self::fail_next_calls) and
/// [`set_latency`](Self::set_latency) make it misbehave;
/// [`calls`](Self::calls) and [`total_memories`](Self::total_memories)
/// show what was done to it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use recall_memory::{InMemoryStore, MemoryError, MemoryStore};
///
/// let store = InMemoryStore::new();
/// store.set_unavailable(true);
/// assert!(matches!(store.health().await, Err(MemoryError::Unavailable { .. })));
/// store.set_unavailable(false);
/// assert!(store.health().await.is_ok());
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: RwLock<State>,
    unavailable: AtomicBool,
    fail_writes: AtomicBool,
    latency: Mutex<Duration>,
    next_seq: AtomicU64,
    fail_next: AtomicU64,
    calls: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<PhoneNumber, UserMemories>,
}

#[derive(Debug, Default)]
struct UserMemories {
    /// In write order.
    entries: Vec<Entry>,
    /// Every idempotency key written for the user, with the memory as it
    /// was first written (returned as the duplicate once it is gone).
    keys: HashMap<IdempotencyKey, Memory>,
}

#[derive(Debug)]
struct Entry {
    memory: Memory,
    seq: u64,
    /// The stored form of its embedding.
    vector: Option<Vec<u8>>,
}

impl Entry {
    /// The list order key: larger is newer.
    fn order(&self) -> (UnixTimestamp, u64) {
        (self.memory.created_at, self.seq)
    }
}

/// The prefix of every cursor this store issues (a version, so a cursor
/// from a future format is rejected rather than misread).
const CURSOR_PREFIX: &str = "im1.";

fn encode_cursor((at, seq): (UnixTimestamp, u64)) -> String {
    format!("{CURSOR_PREFIX}{}.{seq}", at.as_secs())
}

fn decode_cursor(cursor: &str) -> Result<(UnixTimestamp, u64), MemoryError> {
    let bad = || MemoryError::InvalidCursor("not a cursor issued by this store".into());
    let rest = cursor.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    let (secs, seq) = rest.split_once('.').ok_or_else(bad)?;
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    let at = UnixTimestamp::from_secs(secs).map_err(|_| bad())?;
    Ok((at, seq))
}

impl InMemoryStore {
    /// An empty, healthy store without added latency.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call, `health` included, fail with
    /// [`MemoryError::Unavailable`] while `unavailable` is true (to test a
    /// store that is down, then recovers). Stored memories are kept.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.inner.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Makes every write (`add`, `add_batch`, `update`, `delete`,
    /// `erase_user`) fail with [`MemoryError::Unavailable`] and change
    /// nothing while `fail` is true; reads keep working.
    pub fn set_fail_writes(&self, fail: bool) {
        self.inner.fail_writes.store(fail, Ordering::SeqCst);
    }

    /// Delays every call by `latency` (a `tokio` sleep, so it follows a
    /// paused test clock) before it answers; `Duration::ZERO` removes the
    /// delay.
    pub fn set_latency(&self, latency: Duration) {
        *self
            .inner
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = latency;
    }

    /// Makes the next `n` calls fail with [`MemoryError::Unavailable`],
    /// after which the store recovers by itself (to test retries without
    /// switching the failure off by hand). Replaces any count still left.
    pub fn fail_next_calls(&self, n: u64) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// How many calls of the [`MemoryStore`] trait the store has answered
    /// or failed so far, `health` included (to test that something did
    /// not touch memory at all).
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// How many memories the store holds across all callers.
    pub fn total_memories(&self) -> usize {
        self.read(|state| state.users.values().map(|u| u.entries.len()).sum())
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// Applies injected latency and failures before a call.
    async fn enter(&self, is_write: bool) -> Result<(), MemoryError> {
        self.inner.calls.fetch_add(1, Ordering::SeqCst);
        let latency = *self
            .inner
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if self.inner.unavailable.load(Ordering::SeqCst) {
            return Err(MemoryError::unavailable("in-memory store set unavailable"));
        }
        let failing_now = self
            .inner
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing_now {
            return Err(MemoryError::unavailable(
                "in-memory store told to fail this call",
            ));
        }
        if is_write && self.inner.fail_writes.load(Ordering::SeqCst) {
            return Err(MemoryError::unavailable(
                "in-memory store set to fail writes",
            ));
        }
        Ok(())
    }

    fn add_locked(&self, state: &mut State, user: &PhoneNumber, new: NewMemory) -> AddOutcome {
        let memories = state.users.entry(user.clone()).or_default();
        if let Some(key) = &new.idempotency_key
            && let Some(first) = memories.keys.get(key)
        {
            // The memory as it is now, or as first written if it is gone.
            let current = memories.entries.iter().find(|e| e.memory.id == first.id);
            return AddOutcome::Duplicate(
                current.map_or_else(|| first.clone(), |e| e.memory.clone()),
            );
        }
        if let Some(current) = memories
            .entries
            .iter()
            .find(|e| new.is_outdated_by(&e.memory))
        {
            return AddOutcome::Outdated(current.memory.clone());
        }
        let now = UnixTimestamp::now();
        let vector = new.embedding.as_ref().map(Embedding::to_bytes);
        let key = new.idempotency_key.clone();
        let memory = new.into_memory(user, now);
        let mut replaced = Vec::new();
        if let Some(fact) = &memory.fact {
            memories.entries.retain(|e| {
                let same = e.memory.fact.as_ref().is_some_and(|f| f.key == fact.key);
                if same {
                    replaced.push(e.memory.id.clone());
                }
                !same
            });
        }
        if let Some(key) = key {
            memories.keys.insert(key, memory.clone());
        }
        let seq = self.inner.next_seq.fetch_add(1, Ordering::SeqCst);
        memories.entries.push(Entry {
            memory: memory.clone(),
            seq,
            vector,
        });
        if replaced.is_empty() {
            AddOutcome::Created(memory)
        } else {
            AddOutcome::Superseded { memory, replaced }
        }
    }
}

#[async_trait]
impl MemoryStore for InMemoryStore {
    async fn add(&self, user: &PhoneNumber, memory: NewMemory) -> Result<AddOutcome, MemoryError> {
        self.enter(true).await?;
        memory.validate()?;
        Ok(self.write(|state| self.add_locked(state, user, memory)))
    }

    /// Adds all or nothing: every memory is validated before any is
    /// written, and the batch is written under one lock.
    async fn add_batch(
        &self,
        user: &PhoneNumber,
        memories: Vec<NewMemory>,
    ) -> Result<Vec<AddOutcome>, MemoryError> {
        self.enter(true).await?;
        NewMemory::validate_batch(&memories)?;
        Ok(self.write(|state| {
            memories
                .into_iter()
                .map(|m| self.add_locked(state, user, m))
                .collect()
        }))
    }

    async fn search(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<Vec<ScoredMemory>, MemoryError> {
        self.enter(false).await?;
        let candidates: Vec<Candidate> = self.read(|state| {
            state.users.get(user).map_or_else(Vec::new, |u| {
                u.entries
                    .iter()
                    .filter(|e| query.filter.matches(&e.memory))
                    .map(|e| Candidate::with_vector(e.memory.clone(), e.vector.as_deref()))
                    .collect()
            })
        });
        Ok(rank(query, candidates))
    }

    async fn list(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<MemoryPage, MemoryError> {
        self.enter(false).await?;
        let after = request.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = request.effective_limit();
        Ok(self.read(|state| {
            let Some(u) = state.users.get(user) else {
                return MemoryPage {
                    items: Vec::new(),
                    next_cursor: None,
                };
            };
            let mut page: Vec<&Entry> = u
                .entries
                .iter()
                .filter(|e| after.is_none_or(|c| e.order() < c))
                .filter(|e| request.filter.matches(&e.memory))
                .collect();
            page.sort_by_key(|e| std::cmp::Reverse(e.order()));
            let more = page.len() > limit;
            page.truncate(limit);
            MemoryPage {
                next_cursor: more
                    .then(|| page.last().map(|e| encode_cursor(e.order())))
                    .flatten(),
                items: page.into_iter().map(|e| e.memory.clone()).collect(),
            }
        }))
    }

    async fn get(&self, user: &PhoneNumber, id: &MemoryId) -> Result<Memory, MemoryError> {
        self.enter(false).await?;
        self.read(|state| {
            state
                .users
                .get(user)
                .and_then(|u| u.entries.iter().find(|e| e.memory.id == *id))
                .map(|e| e.memory.clone())
                .ok_or_else(|| MemoryError::NotFound(id.clone()))
        })
    }

    async fn update(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        update: MemoryUpdate,
    ) -> Result<Memory, MemoryError> {
        self.enter(true).await?;
        update.validate()?;
        self.write(|state| {
            let entry = state
                .users
                .get_mut(user)
                .and_then(|u| u.entries.iter_mut().find(|e| e.memory.id == *id))
                .ok_or_else(|| MemoryError::NotFound(id.clone()))?;
            if update.content.is_some() {
                entry.vector = None;
            }
            update.apply_to(&mut entry.memory);
            Ok(entry.memory.clone())
        })
    }

    async fn delete(&self, user: &PhoneNumber, id: &MemoryId) -> Result<(), MemoryError> {
        self.enter(true).await?;
        self.write(|state| {
            let u = state
                .users
                .get_mut(user)
                .ok_or_else(|| MemoryError::NotFound(id.clone()))?;
            let at = u
                .entries
                .iter()
                .position(|e| e.memory.id == *id)
                .ok_or_else(|| MemoryError::NotFound(id.clone()))?;
            u.entries.remove(at);
            Ok(())
        })
    }

    async fn erase_user(&self, user: &PhoneNumber) -> Result<u64, MemoryError> {
        self.enter(true).await?;
        Ok(self.write(|state| {
            state
                .users
                .remove(user)
                .map_or(0, |u| u.entries.len() as u64)
        }))
    }

    async fn profile(&self, user: &PhoneNumber) -> Result<UserProfile, MemoryError> {
        self.enter(false).await?;
        Ok(self.read(|state| match state.users.get(user) {
            None => UserProfile::from_facts(user.clone(), [], 0),
            Some(u) => UserProfile::from_facts(
                user.clone(),
                u.entries
                    .iter()
                    .filter_map(|e| e.memory.fact.as_ref().map(|f| (f, e.memory.created_at))),
                u.entries.len() as u64,
            ),
        }))
    }

    async fn health(&self) -> Result<(), MemoryError> {
        self.enter(false).await
    }

    async fn embedding_backlog(
        &self,
        model: ModelTag,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<EmbeddingBacklog, MemoryError> {
        self.enter(false).await?;
        let after: u64 = match cursor {
            None => 0,
            Some(c) => c.parse::<u64>().map_err(|_| {
                MemoryError::InvalidCursor("not a backlog cursor this store issued".into())
            })?,
        };
        let limit = limit.max(1);
        Ok(self.read(|state| {
            let mut stale: Vec<(&PhoneNumber, &Entry)> = state
                .users
                .iter()
                .flat_map(|(user, u)| u.entries.iter().map(move |e| (user, e)))
                .filter(|(_, e)| e.seq >= after)
                .filter(|(_, e)| {
                    e.vector
                        .as_deref()
                        .is_none_or(|v| Embedding::model_of_bytes(v).ok() != Some(model))
                })
                .collect();
            stale.sort_by_key(|(_, e)| e.seq);
            let more = stale.len() > limit;
            stale.truncate(limit);
            EmbeddingBacklog {
                next_cursor: more
                    .then(|| stale.last().map(|(_, e)| (e.seq + 1).to_string()))
                    .flatten(),
                tasks: stale
                    .into_iter()
                    .map(|(user, e)| EmbeddingTask {
                        user: user.clone(),
                        id: e.memory.id.clone(),
                        content: e.memory.content.clone(),
                    })
                    .collect(),
            }
        }))
    }

    async fn set_embedding(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        embedding: Embedding,
    ) -> Result<(), MemoryError> {
        self.enter(true).await?;
        self.write(|state| {
            let entry = state
                .users
                .get_mut(user)
                .and_then(|u| u.entries.iter_mut().find(|e| e.memory.id == *id))
                .ok_or_else(|| MemoryError::NotFound(id.clone()))?;
            entry.vector = Some(embedding.to_bytes());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_foreign_text() {
        let at = UnixTimestamp::from_secs(1_700_000_000).unwrap();
        assert_eq!(decode_cursor(&encode_cursor((at, 42))).unwrap(), (at, 42));
        for bad in [
            "", "im1.", "im1.x.1", "im1.5", "im2.5.1", "im1.-5.1", "im1.5.-1",
        ] {
            let err = decode_cursor(bad).unwrap_err();
            assert!(
                matches!(&err, MemoryError::InvalidCursor(_)),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn ids_are_prefixed_and_unique() {
        let user = PhoneNumber::parse("+16129782029").unwrap();
        let new = || NewMemory::new("x", recall_model::MemorySector::Semantic);
        let a = new().into_memory(&user, UnixTimestamp::now()).id;
        let b = new().into_memory(&user, UnixTimestamp::now()).id;
        assert!(a.as_str().starts_with("mem_"));
        assert_eq!(a.as_str().len(), 36);
        assert_ne!(a, b);
    }
}
