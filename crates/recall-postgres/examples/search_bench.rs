//! Search latency on PostgreSQL for one caller with many memories among
//! many rows (issue 13: p99 ≤ 10 ms for a 10k-memory caller among 1M).
//!
//! ```sh
//! cargo run --release -p recall-postgres --example search_bench -- [ROWS] [CALLER_ROWS] [SEARCHES]
//! ```
//!
//! Defaults: 1,000,000 rows, 10,000 of them the measured caller's, 500
//! searches. The other rows belong to callers of 100 memories each and are
//! written by `generate_series` without embeddings; the caller's memories
//! are written through `PgMemoryStore::add_batch`, embedded by the
//! built-in model, as the service writes them. Each search is timed as a
//! call sees it: the question embedded, then `MemoryStore::search` (full
//! text and exact vector candidates, shared ranking), three ways: without
//! the cache of large callers' search data, with it, and right after a
//! write of the caller's (the cache stale). Uses `DATABASE_URL`
//! (default the local server) and a schema of its own, dropped at the end.

use std::time::{Duration, Instant};

use recall_memory::{MemoryStore, NewMemory, SearchQuery};
use recall_model::{MemorySector, PhoneNumber};
use recall_postgres::{Database, PgMemoryStore};

const TOPICS: &[&str] = &[
    "roses with black spot",
    "a broken dishwasher",
    "the invoice for March",
    "a dentist appointment",
    "moving house to Leeds",
    "the dog's vaccination",
    "a late parcel from Berlin",
    "the gym membership",
    "a leaking roof",
    "the daughter's wedding",
    "switching to the premium plan",
    "a refund for the concert tickets",
];
const DETAILS: &[&str] = &[
    "asked what to do next",
    "wanted a call back on Friday",
    "was unhappy with the last answer",
    "said it is urgent",
    "prefers email",
    "mentioned her husband Tom",
    "asked about the price",
    "will send photos",
];
const QUESTIONS: &[&str] = &[
    "what did we say about the roses?",
    "when is the dentist appointment",
    "is there a problem with a refund",
    "what happened with the parcel",
    "did she move house",
    "anything about the roof",
    "what plan is the caller on",
    "who is Tom",
];

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (rows, caller_rows, searches) = (arg(1, 1_000_000), arg(2, 10_000), arg(3, 500));
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("bench_search_{}", std::process::id());
    let db = Database::builder(&url)
        .schema(&schema)
        .pool_size(4)
        .connect()
        .await?;
    let outcome = run(&db, rows, caller_rows, searches).await;
    if std::env::var_os("BENCH_KEEP_SCHEMA").is_some() {
        eprintln!("schema {schema} kept (BENCH_KEEP_SCHEMA)");
        return outcome;
    }
    let client = db.client().await?;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    outcome
}

async fn run(
    db: &Database,
    rows: usize,
    caller_rows: usize,
    searches: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    db.migrate().await?;
    let client = db.client().await?;
    let others = rows.saturating_sub(caller_rows) as i64;
    let started = Instant::now();
    client
        .execute(
            "INSERT INTO memories (id, user_id, content, sector, salience, decay_lambda, tags, \
             metadata, created_at, updated_at) \
             SELECT 'bg_' || i, '+1555' || lpad((i / 100)::text, 7, '0'), \
             'Caller talked about item ' || (i % 977) || ' and order ' || (i % 131), \
             'episodic', 0.5, 0.01, '[]', '{}', 1700000000 + i, 1700000000 + i \
             FROM generate_series(1, $1::bigint) i",
            &[&others],
        )
        .await?;
    client.batch_execute("ANALYZE memories").await?;
    eprintln!("{others} other rows written in {:.1?}", started.elapsed());

    let embedder = recall_embed::load(None)?;
    let store = PgMemoryStore::new(db.clone());
    let caller = PhoneNumber::parse("+16129782029")?;
    let started = Instant::now();
    for chunk in 0..caller_rows.div_ceil(500) {
        let batch: Vec<NewMemory> = (chunk * 500..((chunk + 1) * 500).min(caller_rows))
            .map(|i| {
                let topic = TOPICS[i % TOPICS.len()];
                let detail = DETAILS[(i / TOPICS.len()) % DETAILS.len()];
                let content = format!("Call {i}: the caller spoke about {topic} and {detail}.");
                let embedding = embedder.embed(&content).expect("embedded");
                NewMemory::new(content, MemorySector::Episodic).embedding(embedding)
            })
            .collect();
        store.add_batch(&caller, batch).await?;
    }
    client.batch_execute("ANALYZE memories").await?;
    eprintln!(
        "{caller_rows} caller rows written in {:.1?}",
        started.elapsed()
    );

    // Three ways, interleaved so that they share the machine's noise:
    // everything read from the database on every search (no cache), with
    // the caller's data cached, and the first search after a write of the
    // caller's (the cache is stale: the search reads the database, and the
    // data is read again for the next one).
    let uncached = PgMemoryStore::with_cache(db.clone(), 0);
    let modes = ["no cache", "cache", "first after a write"];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(searches); modes.len()];
    let mut found = vec![0; modes.len()];
    for i in 0..searches + 20 {
        let question = QUESTIONS[i % QUESTIONS.len()];
        for (mode, name) in modes.iter().enumerate() {
            let store = if mode == 0 { &uncached } else { &store };
            if *name == "first after a write" {
                let content = format!("Extra memory {i} about {}.", TOPICS[i % TOPICS.len()]);
                let memory = NewMemory::new(content.clone(), MemorySector::Episodic)
                    .embedding(embedder.embed(&content)?);
                store.add(&caller, memory).await?;
            }
            let asked = Instant::now();
            let vector = embedder.embed(question)?;
            let results = store
                .search(&caller, &SearchQuery::new(question, 5).vector(vector))
                .await?;
            let took = asked.elapsed();
            if i >= 20 {
                times[mode].push(took); // the first 20 warm the connections
                found[mode] += results.len();
            }
            if *name == "first after a write" {
                // Time for the background read the search started (untimed).
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    }
    for ((name, times), found) in modes.iter().zip(&mut times).zip(found) {
        times.sort();
        println!(
            "rows={rows} caller_rows={caller_rows} mode=\"{name}\" searches={searches} results={found} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            percentile(times, 0.50).as_secs_f64() * 1e3,
            percentile(times, 0.90).as_secs_f64() * 1e3,
            percentile(times, 0.99).as_secs_f64() * 1e3,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    Ok(())
}
