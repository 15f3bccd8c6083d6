//! A replica's cache of large callers' search data.
//!
//! A large caller's search compares the question with every stored
//! embedding of the caller, and matches its words against every memory of
//! the caller: read from PostgreSQL each time, that is most of the search
//! (and grows with the caller: a word found in most of a caller's
//! memories, such as "caller", makes PostgreSQL rank thousands of rows).
//! This keeps, per caller, what those two sources need: each memory's
//! embedding, its words and what the search filters on.
//!
//! Entries are tagged with the caller's version (`memory_versions`,
//! changed by a trigger on every statement that writes the caller's
//! memories, on any replica). A search reads the version in its first
//! statement and uses the entry only when it was read at that version.
//! Rows read after the version was read are at least as new as it (a
//! later statement sees at least what an earlier one saw), so an entry is
//! never older than its tag says; at worst it is newer, and is read again
//! at the next search.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use recall_memory::MemoryFilter;
use recall_memory::embed::Probe;
use recall_memory::text::terms;
use recall_model::MemorySector;

/// The default budget: the search data of about 100 callers of 1,000
/// memories, or 10 of 10,000.
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

/// One memory, as the cached sources read it.
#[derive(Debug)]
pub(crate) struct CachedMemory {
    pub(crate) seq: i64,
    pub(crate) created_at: i64,
    pub(crate) sector: MemorySector,
    pub(crate) salience: f64,
    pub(crate) agent_id: Option<String>,
    /// The stored embedding, if any (of whatever model).
    pub(crate) embedding: Option<Vec<u8>>,
    /// Its distinct words, as ids of the caller's dictionary, sorted.
    words: Vec<u32>,
}

impl CachedMemory {
    fn passes(&self, filter: &MemoryFilter) -> bool {
        filter.sector.is_none_or(|s| s == self.sector)
            && filter
                .min_salience
                .is_none_or(|min| self.salience >= min.get())
            && filter
                .agent_id
                .as_ref()
                .is_none_or(|a| self.agent_id.as_deref() == Some(a.as_str()))
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.embedding.as_ref().map_or(0, Vec::len)
            + self.agent_id.as_ref().map_or(0, String::len)
            + self.words.len() * 4
    }
}

/// What a memory's row gives the cache.
pub(crate) struct MemoryRow<'a> {
    pub(crate) seq: i64,
    pub(crate) created_at: i64,
    pub(crate) sector: MemorySector,
    pub(crate) salience: f64,
    pub(crate) agent_id: Option<String>,
    pub(crate) embedding: Option<Vec<u8>>,
    pub(crate) content: &'a str,
    pub(crate) fact_key: Option<&'a str>,
}

/// One caller's search data, read at one version.
#[derive(Debug, Default)]
pub(crate) struct CallerData {
    memories: Vec<CachedMemory>,
    /// Every word of the caller's memories, with its id.
    dictionary: HashMap<Box<str>, u32>,
}

/// Calls `each` with the words of a text as PostgreSQL's `simple`
/// configuration indexes them: lower case, split at what is not a letter
/// or digit.
fn for_each_word(text: &str, buffer: &mut String, mut each: impl FnMut(&str)) {
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        if word
            .bytes()
            .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
        {
            buffer.clear();
            buffer.extend(word.chars().flat_map(char::to_lowercase));
            each(buffer);
        } else {
            each(word);
        }
    }
}

impl CallerData {
    /// The caller's data from their memories' rows.
    pub(crate) fn build<'a>(rows: impl IntoIterator<Item = MemoryRow<'a>>) -> Self {
        let mut data = Self::default();
        let mut buffer = String::new();
        let mut ids: Vec<u32> = Vec::new();
        for row in rows {
            ids.clear();
            let dictionary = &mut data.dictionary;
            let mut add = |word: &str| {
                let id = match dictionary.get(word) {
                    Some(id) => *id,
                    None => {
                        let id = u32::try_from(dictionary.len()).unwrap_or(u32::MAX);
                        dictionary.insert(word.into(), id);
                        id
                    }
                };
                ids.push(id);
            };
            for_each_word(row.content, &mut buffer, &mut add);
            if let Some(key) = row.fact_key {
                // Indexed with its underscores as spaces.
                for_each_word(key, &mut buffer, &mut add);
            }
            ids.sort_unstable();
            ids.dedup();
            data.memories.push(CachedMemory {
                seq: row.seq,
                created_at: row.created_at,
                sector: row.sector,
                salience: row.salience,
                agent_id: row.agent_id,
                embedding: row.embedding,
                words: ids.clone(),
            });
        }
        data
    }

    fn bytes(&self) -> usize {
        self.memories.iter().map(CachedMemory::bytes).sum::<usize>()
            + self.dictionary.keys().map(|k| k.len() + 24).sum::<usize>()
    }

    /// The `limit` memories passing `filter` nearest in meaning to
    /// `probe`, best first, ties to the newest (highest `seq`). Memories
    /// of another model are not compared.
    pub(crate) fn nearest(&self, probe: &Probe, filter: &MemoryFilter, limit: usize) -> Vec<i64> {
        let scored = self
            .memories
            .iter()
            .filter(|m| m.passes(filter))
            .filter_map(|m| Some((probe.cosine(m.embedding.as_deref()?)?, m.created_at, m.seq)))
            .collect();
        best(scored, limit)
    }

    /// The `limit` memories passing `filter` that share the most of the
    /// question's words, each word weighted by how rare it is among the
    /// caller's memories (a word in most of them, such as "caller", counts
    /// for little); ties to the newest. A question's word matches the
    /// words it begins, as the full-text query's prefixes do
    /// (`refinanc` matches `refinancing`).
    pub(crate) fn matching(&self, question: &str, filter: &MemoryFilter, limit: usize) -> Vec<i64> {
        let mut stems = terms(question);
        stems.sort();
        stems.dedup();
        stems.truncate(64);
        if stems.is_empty() {
            return Vec::new();
        }
        // For each word id, the question's words it matches (a bit each).
        let mut matches = vec![0_u64; self.dictionary.len()];
        let mut any = false;
        for (word, id) in &self.dictionary {
            let bits = stems
                .iter()
                .enumerate()
                .filter(|(_, stem)| word.starts_with(stem.as_str()))
                .fold(0_u64, |acc, (bit, _)| acc | 1 << bit);
            if let Some(slot) = matches.get_mut(*id as usize) {
                *slot = bits;
            }
            any |= bits != 0;
        }
        if !any {
            return Vec::new();
        }
        let mut found: Vec<(u64, &CachedMemory)> = Vec::new();
        let mut counts = [0_u32; 64];
        for memory in self.memories.iter().filter(|m| m.passes(filter)) {
            let bits = memory
                .words
                .iter()
                .filter_map(|w| matches.get(*w as usize))
                .fold(0_u64, |acc, b| acc | b);
            if bits != 0 {
                for (bit, count) in counts.iter_mut().enumerate() {
                    *count += u32::from(bits & (1 << bit) != 0);
                }
                found.push((bits, memory));
            }
        }
        let total = self.memories.len() as f32;
        let weight: Vec<f32> = counts
            .iter()
            .map(|&n| (1.0 + total / n.max(1) as f32).ln())
            .collect();
        let scored = found
            .into_iter()
            .map(|(bits, m)| {
                let score = (0..stems.len())
                    .filter(|bit| bits & (1 << bit) != 0)
                    .map(|bit| weight[bit])
                    .sum::<f32>();
                (score, m.created_at, m.seq)
            })
            .collect();
        best(scored, limit)
    }
}

/// The `limit` best of `(score, created_at, seq)`, best first, ties to the
/// newest.
fn best(mut scored: Vec<(f32, i64, i64)>, limit: usize) -> Vec<i64> {
    let order = |a: &(f32, i64, i64), b: &(f32, i64, i64)| {
        b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2))
    };
    if scored.len() > limit {
        scored.select_nth_unstable_by(limit, order);
        scored.truncate(limit);
    }
    scored.sort_by(order);
    scored.into_iter().map(|(_, _, seq)| seq).collect()
}

/// A caller's data, read at one version.
#[derive(Debug)]
struct Entry {
    version: i64,
    data: Arc<CallerData>,
    bytes: usize,
    last_used: AtomicU64,
}

/// The cache: callers' search data within a byte budget, the least
/// recently used caller evicted first.
#[derive(Debug)]
pub(crate) struct CallerCache {
    budget: usize,
    entries: Mutex<HashMap<String, Entry>>,
    clock: AtomicU64,
    /// Callers whose data is being read in the background.
    filling: Mutex<HashSet<String>>,
}

impl CallerCache {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            entries: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
            filling: Mutex::new(HashSet::new()),
        }
    }

    /// Claims the reading of a caller's data; `false` when it is already
    /// being read.
    pub(crate) fn begin_fill(&self, user: &str) -> bool {
        self.filling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user.to_owned())
    }

    /// Releases the claim of [`begin_fill`](Self::begin_fill).
    pub(crate) fn end_fill(&self, user: &str) {
        self.filling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
    }

    /// Whether the cache keeps anything.
    pub(crate) fn enabled(&self) -> bool {
        self.budget > 0
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// The caller's data, if read at `version`.
    pub(crate) fn get(&self, user: &str, version: i64) -> Option<Arc<CallerData>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(user).filter(|e| e.version == version)?;
        entry.last_used.store(self.tick(), Ordering::Relaxed);
        Some(entry.data.clone())
    }

    /// Keeps the caller's data read at `version`, evicting the least
    /// recently used callers to stay within the budget. Returns it, kept
    /// or not (larger than the whole budget).
    pub(crate) fn put(&self, user: &str, version: i64, data: CallerData) -> Arc<CallerData> {
        let bytes = data.bytes() + user.len();
        let data = Arc::new(data);
        if bytes > self.budget {
            return data;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(user);
        let mut used: usize = entries.values().map(|e| e.bytes).sum();
        while used + bytes > self.budget {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(evicted) = entries.remove(&oldest) {
                used -= evicted.bytes;
            }
        }
        entries.insert(
            user.to_owned(),
            Entry {
                version,
                data: data.clone(),
                bytes,
                last_used: AtomicU64::new(self.tick()),
            },
        );
        data
    }

    /// Forgets a caller (erased: nothing of theirs stays in memory).
    pub(crate) fn forget(&self, user: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
    }

    /// Bytes held, for tests.
    #[cfg(test)]
    fn used(&self) -> usize {
        let entries = self.entries.lock().unwrap();
        entries.values().map(|e| e.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recall_memory::{Embedding, ModelTag};
    use recall_model::{AgentId, Salience};

    struct Row {
        seq: i64,
        content: &'static str,
        values: Option<[f32; 3]>,
        sector: MemorySector,
        agent: Option<&'static str>,
    }

    fn data(rows: &[Row]) -> CallerData {
        CallerData::build(rows.iter().map(|r| MemoryRow {
            seq: r.seq,
            created_at: 1_000 + r.seq,
            sector: r.sector,
            salience: 0.5 + r.seq as f64 / 100.0,
            agent_id: r.agent.map(str::to_owned),
            embedding: r.values.map(|v| {
                Embedding::new(ModelTag::from_raw(7), v.to_vec())
                    .unwrap()
                    .to_bytes()
            }),
            content: r.content,
            fact_key: None,
        }))
    }

    fn rows() -> Vec<Row> {
        let e = MemorySector::Episodic;
        vec![
            Row {
                seq: 1,
                content: "Caller asked about roses",
                values: Some([1.0, 0.0, 0.0]),
                sector: e,
                agent: Some("a"),
            },
            Row {
                seq: 2,
                content: "Caller's boiler is refinanced",
                values: Some([0.9, 0.1, 0.0]),
                sector: MemorySector::Semantic,
                agent: Some("b"),
            },
            Row {
                seq: 3,
                content: "Caller moved to Leeds",
                values: Some([0.0, 1.0, 0.0]),
                sector: e,
                agent: None,
            },
            Row {
                seq: 4,
                content: "Caller asked about the roses again, and the boiler",
                values: Some([0.7, 0.7, 0.0]),
                sector: e,
                agent: Some("a"),
            },
            Row {
                seq: 5,
                content: "Caller called",
                values: None,
                sector: e,
                agent: None,
            },
        ]
    }

    #[test]
    fn nearest_ranks_by_cosine_and_honours_the_filter() {
        let data = data(&rows());
        let probe = Embedding::new(ModelTag::from_raw(7), vec![1.0, 0.0, 0.0])
            .unwrap()
            .probe();
        let all = MemoryFilter::default();
        assert_eq!(data.nearest(&probe, &all, 2), vec![1, 2]);
        assert_eq!(data.nearest(&probe, &all, 10), vec![1, 2, 4, 3]);
        let episodic = MemoryFilter {
            sector: Some(MemorySector::Episodic),
            ..MemoryFilter::default()
        };
        assert_eq!(data.nearest(&probe, &episodic, 10), vec![1, 4, 3]);
        let agent_a = MemoryFilter {
            agent_id: Some(AgentId::parse("a").unwrap()),
            ..MemoryFilter::default()
        };
        assert_eq!(data.nearest(&probe, &agent_a, 10), vec![1, 4]);
        let salient = MemoryFilter {
            min_salience: Some(Salience::new(0.53).unwrap()),
            ..MemoryFilter::default()
        };
        assert_eq!(data.nearest(&probe, &salient, 10), vec![4, 3]);
        // Another model's question is compared with nothing.
        let other = Embedding::new(ModelTag::from_raw(8), vec![1.0, 0.0, 0.0])
            .unwrap()
            .probe();
        assert!(data.nearest(&other, &all, 10).is_empty());
    }

    #[test]
    fn matching_weighs_rare_words_and_matches_prefixes() {
        let data = data(&rows());
        let all = MemoryFilter::default();
        // "caller" is in every memory: it counts for little; "roses" and
        // "boiler" decide. Both words: seq 4 first.
        assert_eq!(
            data.matching("the caller's roses and boiler", &all, 10)[..3],
            [4, 2, 1]
        );
        // A stem matches the words it begins: "refinancing" → refinanc.
        assert_eq!(data.matching("refinancing", &all, 10), vec![2]);
        // Only whole-word prefixes: "eds" is not in "Leeds".
        assert!(data.matching("eds", &all, 10).is_empty());
        assert!(data.matching("the and of", &all, 10).is_empty());
        let episodic = MemoryFilter {
            sector: Some(MemorySector::Episodic),
            ..MemoryFilter::default()
        };
        assert_eq!(data.matching("boiler", &episodic, 10), vec![4]);
        // The limit keeps the best, ties to the newest.
        assert_eq!(data.matching("caller", &all, 2), vec![5, 4]);
    }

    #[test]
    fn entries_are_found_only_at_their_version() {
        let cache = CallerCache::new(1 << 20);
        cache.put("+1", 5, data(&rows()));
        assert!(cache.get("+1", 5).is_some());
        assert!(cache.get("+1", 6).is_none());
        assert!(cache.get("+2", 5).is_none());
        cache.forget("+1");
        assert!(cache.get("+1", 5).is_none());
        assert_eq!(cache.used(), 0);
    }

    #[test]
    fn the_budget_evicts_the_least_recently_used_caller() {
        let size = data(&rows()).bytes() + 2;
        let cache = CallerCache::new(size * 2 + size / 2);
        cache.put("+1", 1, data(&rows()));
        cache.put("+2", 1, data(&rows()));
        assert!(cache.get("+1", 1).is_some()); // +2 is now the oldest
        cache.put("+3", 1, data(&rows()));
        assert!(cache.get("+1", 1).is_some());
        assert!(cache.get("+2", 1).is_none());
        assert!(cache.get("+3", 1).is_some());
        assert!(cache.used() <= size * 2 + size / 2);
        // Larger than the whole budget: returned, not kept.
        let small = CallerCache::new(size / 2);
        assert_eq!(small.put("+1", 1, data(&rows())).memories.len(), 5);
        assert!(small.get("+1", 1).is_none());
    }
}
