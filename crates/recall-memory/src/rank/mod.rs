//! The one ranking every store answers with.
//!
//! A store finds a caller's candidate memories (all of them, or for a
//! caller with very many, every memory that shares a word with the
//! question, the nearest by meaning, the newest, the oldest and the
//! profile facts) and hands them to [`rank`], which orders them the same
//! way whatever the store:
//!
//! ```text
//! relevance = W_LEX × lexical + W_SEM × semantic        (0–1)
//!             then the question's intent:
//!               time      → calls ordered by call time (latest, first,
//!                           two calls ago, a month, last week), by topic
//!                           when the question has one
//!               profile   → facts whose key holds what is asked
//!                           ("where does he live" → city, address …)
//!               name      → the caller's own name in the question
//!                           counts for nothing
//! score     = relevance × (FLOOR + (1 − FLOOR) × salience × decay)
//! ```
//!
//! * `lexical`: BM25 over the candidates (light stemming, word prefixes),
//!   divided by the best score the question's words could reach.
//! * `semantic`: the cosine of the question's and the memory's
//!   embeddings, scaled between the candidates' median and best.
//! * Every candidate is returned (best `k`): a question that matches
//!   nothing well still gets the caller's most important memories, with
//!   low scores.
//!
//! ```
//! use recall_memory::rank::{Candidate, rank};
//! use recall_memory::{Memory, MemoryId, SearchQuery};
//! use recall_model::{DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp};
//!
//! let caller = PhoneNumber::parse("+16125550101").unwrap();
//! let at = |days: i64| UnixTimestamp::from_secs(1_780_000_000 - days * 86_400).unwrap();
//! let memory = |id: &str, content: &str, days: i64| Memory {
//!     id: MemoryId::new(id).unwrap(),
//!     user_id: caller.clone(),
//!     content: content.into(),
//!     sector: MemorySector::Episodic,
//!     salience: Salience::MEDIUM,
//!     decay_lambda: DecayLambda::PERMANENT,
//!     tags: vec![],
//!     metadata: Default::default(),
//!     agent_id: None,
//!     conversation_id: None,
//!     fact: None,
//!     created_at: at(days),
//!     updated_at: at(days),
//! };
//! let candidates = vec![
//!     Candidate::new(memory("a", "Caller booked a boiler service for Friday", 40)),
//!     Candidate::new(memory("b", "Caller asked about the gas bill", 3)),
//! ];
//! let query = SearchQuery::new("what did she call about last time", 5).at(at(0));
//! let ranked = rank(&query, candidates);
//! assert_eq!(ranked[0].memory.id.as_str(), "b"); // the latest call
//! assert!(ranked.iter().all(|r| (0.0..=1.0).contains(&r.score)));
//! ```

mod intent;
mod lexical;

use recall_model::{MemorySector, UnixTimestamp};

use crate::store::{Memory, ScoredMemory, SearchQuery};

pub use intent::{Concept, QueryIntent, TimeIntent, parse as understand};

/// Weight of word overlap in relevance.
const W_LEX: f64 = 0.6;
/// Weight of meaning (embeddings) in relevance.
const W_SEM: f64 = 0.4;
/// The share of the score salience and decay cannot take away.
const FLOOR: f64 = 0.85;
/// What a fact keeps of its relevance when the question asks about an
/// event ("what did she call about").
const EVENT_FACT: f64 = 0.85;
/// What a fact keeps of its meaning score when the question only
/// mentions the name it holds.
const NAME_FACT_SEMANTIC: f64 = 0.2;

/// A memory a store offers for ranking, with its stored embedding (the
/// form of [`Embedding::to_bytes`](crate::embed::Embedding::to_bytes)),
/// if it has one.
#[derive(Clone, PartialEq, Debug)]
pub struct Candidate {
    /// The memory.
    pub memory: Memory,
    /// Its stored embedding.
    pub vector: Option<Vec<u8>>,
}

impl Candidate {
    /// A candidate without an embedding.
    pub fn new(memory: Memory) -> Self {
        Self {
            memory,
            vector: None,
        }
    }

    /// A candidate with its stored embedding, if any.
    pub fn with_vector(memory: Memory, stored: Option<&[u8]>) -> Self {
        Self {
            memory,
            vector: stored.map(<[u8]>::to_vec),
        }
    }
}

/// What a store must include among the candidates of a large caller so
/// that [`rank`] can answer the question: beyond those sharing its words
/// and those nearest in meaning, the newest or oldest calls, the calls of
/// a span of time, and every fact.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct CandidateNeeds {
    /// The newest episodic memories.
    pub newest: bool,
    /// The oldest episodic memories.
    pub oldest: bool,
    /// The memories within this span of unix seconds (end exclusive).
    pub window: Option<(i64, i64)>,
}

impl CandidateNeeds {
    /// What answering `query` at its time needs.
    pub fn of(query: &SearchQuery) -> Self {
        let now = query.now.unwrap_or_else(UnixTimestamp::now);
        let intent = intent::parse(&query.text, now);
        match intent.time {
            Some(TimeIntent::Latest { .. }) => Self {
                newest: true,
                oldest: false,
                window: None,
            },
            Some(TimeIntent::Earliest { .. }) => Self {
                newest: false,
                oldest: true,
                window: None,
            },
            Some(TimeIntent::Window { start, end }) => Self {
                newest: false,
                oldest: false,
                window: Some((start, end)),
            },
            None => Self {
                newest: true,
                oldest: false,
                window: None,
            },
        }
    }
}

/// Keys of facts that hold the caller's own name, beyond those written
/// as names ([`Fact::is_name`](crate::Fact::is_name)).
const PERSON_NAME_KEYS: &[&str] = &[
    "name",
    "first_name",
    "last_name",
    "surname",
    "full_name",
    "given_name",
    "family_name",
    "caller_name",
    "customer_name",
    "client_name",
    "owner_name",
    "patient_name",
    "member_name",
    "guest_name",
    "tenant_name",
    "policyholder_name",
    "account_holder",
    "account_holder_name",
    "contact_name",
    "user_name",
    "preferred_name",
    "nickname",
];

/// Whether a fact holds the caller's own name.
fn is_person_name(fact: &crate::Fact) -> bool {
    fact.is_name || PERSON_NAME_KEYS.contains(&fact.key.as_str().to_ascii_lowercase().as_str())
}

/// The text a memory is matched on: its content and its fact's key.
fn document(memory: &Memory) -> lexical::Document {
    match &memory.fact {
        Some(fact) => lexical::Document::new(&format!(
            "{} {}",
            memory.content,
            fact.key.as_str().replace('_', " ")
        )),
        None => lexical::Document::new(&memory.content),
    }
}

/// Orders `candidates` (one caller's memories) for `query`, best first,
/// at most `query.effective_k()`, each with a score from 0 to 1. Memories
/// the query's filter excludes are dropped; every other candidate may be
/// returned, however weak its match.
pub fn rank(query: &SearchQuery, candidates: Vec<Candidate>) -> Vec<ScoredMemory> {
    let now = query.now.unwrap_or_else(UnixTimestamp::now);
    let candidates: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| query.filter.matches(&c.memory))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    // The caller's name says nothing in a question that is not about it.
    let caller_names: Vec<String> = candidates
        .iter()
        .filter_map(|c| c.memory.fact.as_ref())
        .filter(|f| is_person_name(f))
        .flat_map(|f| lexical::name_stems(&f.value))
        .collect();
    let intent = intent::parse_with_names(&query.text, now, &|w| {
        caller_names.iter().any(|n| n == crate::text::stem(w))
    });
    let name_stems: Vec<String> = if intent.asks_name {
        Vec::new()
    } else {
        caller_names
    };
    let mentions_name = !name_stems.is_empty()
        && intent
            .words
            .iter()
            .any(|w| name_stems.iter().any(|n| n == crate::text::stem(w)));
    let mut query_terms = lexical::query_terms(intent.topic_words());
    query_terms.retain(|t| !name_stems.contains(t));

    let docs: Vec<lexical::Document> = candidates.iter().map(|c| document(&c.memory)).collect();
    let lex = lexical::relevance(&query_terms, &docs);
    // A question that mentions the caller's name is compared by meaning
    // without it, when the query says how to embed it again.
    let reembedded = match (&query.embedder, mentions_name) {
        (Some(embedder), true) => {
            let without: Vec<&str> = intent
                .words
                .iter()
                .filter(|w| !name_stems.iter().any(|n| n == crate::text::stem(w)))
                .map(String::as_str)
                .collect();
            embedder.get().embed(&without.join(" ")).ok()
        }
        _ => None,
    };
    let query_vector = reembedded.as_ref().or(query.vector.as_ref());
    let similarities: Vec<Option<f32>> = candidates
        .iter()
        .map(|c| {
            let stored = c.vector.as_deref()?;
            query_vector?.cosine_bytes(stored)
        })
        .collect();
    let sem = semantic(&similarities);

    let mut topic: Vec<f64> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut s = sem[i];
            if mentions_name && c.memory.fact.as_ref().is_some_and(is_person_name) {
                s *= NAME_FACT_SEMANTIC;
            }
            W_LEX * lex[i] + W_SEM * s
        })
        .collect();
    if query_terms.is_empty() && !intent.has_topic() && intent.time.is_some() {
        topic.iter_mut().for_each(|t| *t = 0.0);
    }

    let relevance: Vec<f64> = match intent.time {
        Some(time) => by_time(time, intent.within, &candidates, &topic, &lex),
        None => {
            // How many of the asked-for concepts a fact's key holds.
            let holds = |c: &Candidate| -> usize {
                c.memory.fact.as_ref().map_or(0, |f| {
                    intent
                        .concepts
                        .iter()
                        .filter(|k| k.matches_key(f.key.as_str()))
                        .count()
                        + usize::from(intent.asks_name && is_person_name(f))
                })
            };
            // A profile question answered by a fact that holds what it asks
            // for: that fact first (the more it holds, the better), the
            // calls after the facts. A question about an event leans the
            // other way.
            let answered = intent.profile && candidates.iter().any(|c| holds(c) > 0);
            candidates
                .iter()
                .zip(&topic)
                .map(|(c, t)| {
                    let is_fact = c.memory.fact.is_some();
                    let held = holds(c);
                    if answered && is_fact && held > 0 {
                        (0.5 + 0.1 * held.min(3) as f64 + 0.4 * t).min(1.0)
                    } else if answered && !is_fact {
                        0.7 * t
                    } else if intent.event && !intent.profile && is_fact {
                        EVENT_FACT * t
                    } else {
                        *t
                    }
                })
                .collect()
        }
    };

    let mut scored: Vec<ScoredMemory> = candidates
        .into_iter()
        .zip(relevance)
        .map(|(c, r)| {
            let importance = if intent.time.is_some() {
                1.0
            } else {
                FLOOR + (1.0 - FLOOR) * c.memory.weight_at(now)
            };
            ScoredMemory {
                score: (r * importance).clamp(0.0, 1.0),
                memory: c.memory,
            }
        })
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| b.memory.created_at.cmp(&a.memory.created_at))
            .then_with(|| b.memory.salience.get().total_cmp(&a.memory.salience.get()))
            .then_with(|| a.memory.id.cmp(&b.memory.id))
    });
    scored.truncate(query.effective_k());
    scored
}

/// Each candidate's meaning score: its cosine scaled from the candidates'
/// median (0) to their best (1); 0 without an embedding.
fn semantic(similarities: &[Option<f32>]) -> Vec<f64> {
    let mut known: Vec<f64> = similarities
        .iter()
        .flatten()
        .map(|s| f64::from(*s))
        .collect();
    if known.is_empty() {
        return vec![0.0; similarities.len()];
    }
    known.sort_by(f64::total_cmp);
    let median = known[known.len() / 2];
    let best = known[known.len() - 1];
    // With one or two candidates there is no spread to scale by: use the
    // cosine itself.
    let (low, span) = if known.len() < 3 {
        (0.0, 1.0)
    } else {
        (median, (best - median).max(0.05))
    };
    similarities
        .iter()
        .map(|s| s.map_or(0.0, |s| ((f64::from(s) - low) / span).clamp(0.0, 1.0)))
        .collect()
}

/// Relevance when the question is about a time: calls ordered by time,
/// those on the question's topic first when it has one.
fn by_time(
    time: TimeIntent,
    within: Option<(i64, i64)>,
    candidates: &[Candidate],
    topic: &[f64],
    lex: &[f64],
) -> Vec<f64> {
    let is_call =
        |c: &Candidate| c.memory.sector != MemorySector::Semantic || c.memory.fact.is_none();
    let best_topic = candidates
        .iter()
        .zip(topic)
        .filter(|(c, _)| is_call(c))
        .map(|(_, t)| *t)
        .fold(0.0_f64, f64::max);
    // On topic: within reach of the best match, by words or overall.
    let best_lex = candidates
        .iter()
        .zip(lex)
        .filter(|(c, _)| is_call(c))
        .map(|(_, l)| *l)
        .fold(0.0_f64, f64::max);
    let on_topic = |i: usize| {
        best_topic <= 0.0
            || topic[i] >= 0.6 * best_topic
            || (best_lex > 0.0 && lex[i] >= 0.6 * best_lex)
    };
    let topic_share = if best_topic > 0.0 { 0.3 } else { 0.0 };
    let normalized = |t: f64| {
        if best_topic > 0.0 {
            t / best_topic
        } else {
            0.0
        }
    };

    match time {
        TimeIntent::Latest { skip } | TimeIntent::Earliest { skip } => {
            let newest_first = matches!(time, TimeIntent::Latest { .. });
            let inside = |i: usize| {
                within.is_none_or(|(start, end)| {
                    let at = candidates[i].memory.created_at.as_secs();
                    at >= start && at < end
                })
            };
            // The calls sought among: on topic and within the span named,
            // if any call is.
            let mut order: Vec<usize> = (0..candidates.len())
                .filter(|i| is_call(&candidates[*i]) && on_topic(*i) && inside(*i))
                .collect();
            if order.is_empty() {
                order = (0..candidates.len())
                    .filter(|i| is_call(&candidates[*i]) && on_topic(*i))
                    .collect();
            }
            order.sort_by(|a, b| {
                let (ta, tb) = (
                    candidates[*a].memory.created_at,
                    candidates[*b].memory.created_at,
                );
                if newest_first {
                    tb.cmp(&ta)
                } else {
                    ta.cmp(&tb)
                }
            });
            let mut out: Vec<f64> = candidates
                .iter()
                .zip(topic)
                .map(|(c, t)| {
                    if is_call(c) {
                        0.15 * normalized(*t)
                    } else {
                        0.1 * t
                    }
                })
                .collect();
            for (position, i) in order.iter().enumerate() {
                let distance = position.abs_diff(skip) as i32;
                let time_score = 0.5_f64.powi(distance);
                out[*i] = (1.0 - topic_share) * time_score + topic_share * normalized(topic[*i]);
            }
            out
        }
        TimeIntent::Window { start, end } => candidates
            .iter()
            .zip(topic)
            .map(|(c, t)| {
                let at = c.memory.created_at.as_secs();
                let inside = if at >= start && at < end {
                    1.0
                } else {
                    let gap = if at < start { start - at } else { at - end } as f64;
                    let scale = ((end - start) as f64 / 2.0).max(7.0 * 86_400.0);
                    (-gap / scale).exp() * 0.6
                };
                if is_call(c) {
                    let topic_part = if best_topic > 0.0 {
                        normalized(*t)
                    } else {
                        1.0
                    };
                    (0.65 * inside + 0.35 * topic_part).min(1.0)
                } else {
                    0.3 * inside * t
                }
            })
            .collect(),
    }
}
