//! Recall's labelled retrieval evaluation.
//!
//! `data/*.json` holds invented callers of ten kinds of business (clinic,
//! bank, insurer, utility, retailer, vet, garage, telecom, restaurant,
//! estate agency), written by hand for this project: each caller's calls
//! (time, summary, collected fields) and questions an agent's memory tool
//! asks about them, each labelled with its kind and the one memory that
//! answers it.
//!
//! [`evaluate`] plays the calls through a real [`Service`] as ElevenLabs
//! would post them (signed bodies aside), lets the worker turn them into
//! memories, asks every question through the memory tool, and scores
//! where the answer came: recall@5, MRR@5 and hit@1 per kind.
//!
//! ```no_run
//! # async fn run() -> Result<(), recall_eval::EvalError> {
//! use recall_eval::{DataSet, StoreKind, evaluate_on};
//!
//! let data = DataSet::load()?;
//! let report = evaluate_on(StoreKind::Embedded, &data, recall_embed::load(None)?).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use recall_memory::{Embedder, InMemoryStore, MemoryStore};
use recall_model::{SearchDataRequest, UnixTimestamp};
use recall_service::{PayloadStore, Service, ServiceConfig};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// When every question is asked: Monday 30 November 2026, 17:00 UTC.
pub const ASKED_AT: &str = "2026-11-30T17:00:00Z";

/// How many memories the tool returns per question (the cut-off of
/// recall@5 and MRR@5).
pub const K: usize = 5;

/// The labelled set.
#[derive(Clone, Debug, Deserialize)]
pub struct DataSet {
    /// The callers of every file.
    pub callers: Vec<Caller>,
}

#[derive(Deserialize)]
struct File {
    callers: Vec<Caller>,
}

/// One invented caller.
#[derive(Clone, Debug, Deserialize)]
pub struct Caller {
    /// Their E.164 number.
    pub phone: String,
    /// The kind of business they call.
    pub business: String,
    /// The agent they call.
    pub agent_id: String,
    /// Their calls, in no particular order.
    pub calls: Vec<Call>,
    /// Questions about them.
    pub questions: Vec<Question>,
}

/// One call, as ElevenLabs reports it after the call.
#[derive(Clone, Debug, Deserialize)]
pub struct Call {
    /// When it started (RFC 3339).
    pub at: String,
    /// How long it lasted.
    #[serde(default)]
    pub duration_secs: u64,
    /// `call_summary_title`.
    #[serde(default)]
    pub title: String,
    /// `transcript_summary`.
    pub summary: String,
    /// `data_collection_results`, field id → value.
    #[serde(default)]
    pub data: Map<String, Value>,
}

/// One labelled question.
#[derive(Clone, Debug, Deserialize)]
pub struct Question {
    /// What the memory tool is asked.
    pub q: String,
    /// Its kind: lexical, paraphrase, temporal, profile, distractor, name.
    pub kind: String,
    /// The memory that answers it.
    pub answer: Answer,
}

/// The memory that answers a question.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// The summary of the caller's call at this index.
    Call(usize),
    /// The caller's current value of this collected field.
    Fact(String),
}

/// Why the set could not be used.
#[derive(Debug)]
pub struct DataError(String);

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

impl DataSet {
    /// The directory of the set's files.
    pub fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
    }

    /// Reads and checks every file of [`DataSet::dir`].
    pub fn load() -> Result<Self, DataError> {
        Self::load_from(&Self::dir())
    }

    /// Reads and checks every `*.json` file of `dir`.
    pub fn load_from(dir: &std::path::Path) -> Result<Self, DataError> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| DataError(format!("{}: {e}", dir.display())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut callers = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| DataError(format!("{}: {e}", path.display())))?;
            let file: File = serde_json::from_str(&text)
                .map_err(|e| DataError(format!("{}: {e}", path.display())))?;
            callers.extend(file.callers);
        }
        let set = Self { callers };
        set.check()?;
        Ok(set)
    }

    /// Every label points at a memory that exists, and each caller's
    /// memories are distinct texts.
    pub fn check(&self) -> Result<(), DataError> {
        for caller in &self.callers {
            let bad = |why: String| DataError(format!("{}: {why}", caller.phone));
            recall_model::PhoneNumber::parse(&caller.phone).map_err(|e| bad(e.to_string()))?;
            for call in &caller.calls {
                UnixTimestamp::parse_rfc3339(&call.at).map_err(|e| bad(e.to_string()))?;
            }
            let mut texts: Vec<String> = caller
                .calls
                .iter()
                .map(|c| c.summary.trim().to_owned())
                .collect();
            texts.extend(
                caller
                    .current_facts()
                    .into_iter()
                    .map(|(k, v)| fact_content(&k, &v)),
            );
            let mut unique = texts.clone();
            unique.sort();
            unique.dedup();
            if unique.len() != texts.len() {
                return Err(bad("two memories have the same text".into()));
            }
            for q in &caller.questions {
                caller
                    .expected(&q.answer)
                    .ok_or_else(|| bad(format!("{:?} has no answer among the memories", q.q)))?;
            }
        }
        Ok(())
    }

    /// How many memories the set makes (call summaries and current facts).
    pub fn memories(&self) -> usize {
        self.callers
            .iter()
            .map(|c| c.calls.len() + c.current_facts().len())
            .sum()
    }

    /// How many questions of each kind.
    pub fn kinds(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for q in self.callers.iter().flat_map(|c| &c.questions) {
            *kinds.entry(q.kind.clone()).or_insert(0) += 1;
        }
        kinds
    }
}

/// A data-collection value as the service writes it in a fact.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

fn fact_content(field: &str, value: &str) -> String {
    format!("Caller's {field}: {value}")
}

impl Caller {
    fn time(call: &Call) -> i64 {
        UnixTimestamp::parse_rfc3339(&call.at).map_or(0, UnixTimestamp::as_secs)
    }

    /// Each field's latest value (by call time).
    pub fn current_facts(&self) -> BTreeMap<String, String> {
        let mut calls: Vec<&Call> = self.calls.iter().collect();
        calls.sort_by_key(|c| Self::time(c));
        let mut facts = BTreeMap::new();
        for call in calls {
            for (field, value) in &call.data {
                if !value.is_null() && !value_text(value).is_empty() {
                    facts.insert(field.clone(), value_text(value));
                }
            }
        }
        facts
    }

    /// The text of the memory that answers.
    pub fn expected(&self, answer: &Answer) -> Option<String> {
        match answer {
            Answer::Call(i) => self.calls.get(*i).map(|c| c.summary.trim().to_owned()),
            Answer::Fact(field) => self
                .current_facts()
                .get(field)
                .map(|v| fact_content(field, v)),
        }
    }

    /// The post-call event ElevenLabs would send for call `i`.
    fn event(&self, i: usize) -> Value {
        let call = &self.calls[i];
        let start = Self::time(call);
        let digits: String = self.phone.chars().filter(char::is_ascii_digit).collect();
        let results: Map<String, Value> = call
            .data
            .iter()
            .map(|(k, v)| (k.clone(), json!({"data_collection_id": k, "value": v})))
            .collect();
        json!({
            "type": "post_call_transcription",
            "event_timestamp": start + call.duration_secs as i64 + 30,
            "data": {
                "agent_id": self.agent_id,
                "conversation_id": format!("conv_eval_{digits}_{i}"),
                "status": "done",
                "transcript": [
                    {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
                    {"role": "user", "message": "Hi, it's me again.", "time_in_call_secs": 2}
                ],
                "metadata": {
                    "start_time_unix_secs": start,
                    "call_duration_secs": call.duration_secs,
                    "phone_call": {"type": "twilio", "direction": "inbound",
                        "external_number": self.phone, "agent_number": "+15550000000"}
                },
                "analysis": {
                    "call_successful": "success",
                    "call_summary_title": call.title,
                    "transcript_summary": call.summary,
                    "data_collection_results": results
                },
                "conversation_initiation_client_data": {
                    "dynamic_variables": {"system__caller_id": self.phone}
                }
            }
        })
    }
}

/// Scores of one kind of question (or of all).
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct Scores {
    /// Questions asked.
    pub questions: usize,
    /// Share whose answer was among the first [`K`].
    pub recall_at_5: f64,
    /// Mean reciprocal rank of the answer within the first [`K`].
    pub mrr_at_5: f64,
    /// Share whose answer came first.
    pub hit_at_1: f64,
}

/// One question whose answer did not come first.
#[derive(Clone, Debug)]
pub struct Miss {
    /// The caller.
    pub phone: String,
    /// The question's kind.
    pub kind: String,
    /// The question.
    pub question: String,
    /// The answer's rank (1-based) among the returned memories, if there.
    pub rank: Option<usize>,
    /// The expected memory.
    pub expected: String,
    /// What came first.
    pub first: String,
    /// The memories returned, with their scores.
    pub returned: Vec<(f64, String)>,
}

/// The evaluation's result.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Per kind.
    pub kinds: BTreeMap<String, Scores>,
    /// Over every question.
    pub overall: Scores,
    /// Questions whose answer did not come first.
    pub misses: Vec<Miss>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| kind | questions | recall@5 | MRR@5 | hit@1 |")?;
        writeln!(f, "|---|---|---|---|---|")?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, s: &Scores| {
            writeln!(
                f,
                "| {name} | {} | {:.3} | {:.3} | {:.3} |",
                s.questions, s.recall_at_5, s.mrr_at_5, s.hit_at_1
            )
        };
        for (kind, scores) in &self.kinds {
            row(f, kind, scores)?;
        }
        row(f, "**overall**", &self.overall)
    }
}

fn scores(ranks: &[Option<usize>]) -> Scores {
    let n = ranks.len().max(1) as f64;
    let within = |r: &Option<usize>| r.filter(|r| *r <= K);
    Scores {
        questions: ranks.len(),
        recall_at_5: ranks.iter().filter(|r| within(r).is_some()).count() as f64 / n,
        mrr_at_5: ranks
            .iter()
            .filter_map(within)
            .map(|r| 1.0 / r as f64)
            .sum::<f64>()
            / n,
        hit_at_1: ranks.iter().filter(|r| **r == Some(1)).count() as f64 / n,
    }
}

/// Why an evaluation could not run.
pub type EvalError = Box<dyn std::error::Error + Send + Sync>;

/// Plays the set into `service` (which must read the time from a clock
/// fixed at [`ASKED_AT`]) and asks every question.
pub async fn evaluate(service: &Service, data: &DataSet) -> Result<Report, EvalError> {
    // Events arrive out of order: odd callers' calls in reverse.
    for (n, caller) in data.callers.iter().enumerate() {
        let mut order: Vec<usize> = (0..caller.calls.len()).collect();
        if n % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let body = serde_json::to_vec(&caller.event(i))?;
            service.ingest_bytes(&body).await?;
        }
    }
    let processed = service.process_pending().await;
    if processed.failed > 0 || processed.retrying > 0 {
        return Err(format!("events not processed: {processed:?}").into());
    }

    let mut by_kind: BTreeMap<String, Vec<Option<usize>>> = BTreeMap::new();
    let mut all = Vec::new();
    let mut misses = Vec::new();
    for caller in &data.callers {
        for q in &caller.questions {
            let expected = caller
                .expected(&q.answer)
                .ok_or_else(|| format!("{}: {:?} has no answer", caller.phone, q.q))?;
            let request: SearchDataRequest = serde_json::from_value(json!({
                "query": q.q,
                "user_id": caller.phone,
                "agent_id": caller.agent_id,
                "k": K,
            }))?;
            let found = service.search(&request).await?;
            let rank = found
                .memories
                .iter()
                .position(|m| m.content == expected)
                .map(|p| p + 1);
            if rank != Some(1) {
                misses.push(Miss {
                    phone: caller.phone.clone(),
                    kind: q.kind.clone(),
                    question: q.q.clone(),
                    rank,
                    expected: expected.clone(),
                    first: found
                        .memories
                        .first()
                        .map(|m| m.content.clone())
                        .unwrap_or_default(),
                    returned: found
                        .memories
                        .iter()
                        .map(|m| (m.score.unwrap_or(0.0), m.content.clone()))
                        .collect(),
                });
            }
            by_kind.entry(q.kind.clone()).or_default().push(rank);
            all.push(rank);
        }
    }
    Ok(Report {
        kinds: by_kind
            .iter()
            .map(|(k, r)| (k.clone(), scores(r)))
            .collect(),
        overall: scores(&all),
        misses,
    })
}

/// The stores an evaluation can run on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StoreKind {
    /// The embedded SQLite store (the default).
    Embedded,
    /// The in-memory store.
    InMemory,
}

impl StoreKind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::InMemory => "in-memory",
        }
    }
}

/// Runs the evaluation on a fresh store of `kind`, in a temporary
/// directory, with `embedder`.
pub async fn evaluate_on(
    kind: StoreKind,
    data: &DataSet,
    embedder: Arc<dyn Embedder>,
) -> Result<Report, EvalError> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn MemoryStore> = match kind {
        StoreKind::Embedded => Arc::new(recall_embedded::EmbeddedStore::open(
            dir.path().join("memory.db"),
        )?),
        StoreKind::InMemory => Arc::new(InMemoryStore::new()),
    };
    evaluate_with(store, dir.path(), data, Some(embedder)).await
}

/// Runs the evaluation on `store`, keeping payloads under `dir`.
pub async fn evaluate_with(
    store: Arc<dyn MemoryStore>,
    dir: &std::path::Path,
    data: &DataSet,
    embedder: Option<Arc<dyn Embedder>>,
) -> Result<Report, EvalError> {
    let asked_at = UnixTimestamp::parse_rfc3339(ASKED_AT)?;
    let mut builder = Service::builder(store, PayloadStore::open(dir.join("payloads"))?)
        .config(ServiceConfig::default())
        .clock(move || asked_at);
    if let Some(embedder) = embedder {
        builder = builder.embedder(embedder);
    }
    evaluate(&builder.build(), data).await
}
