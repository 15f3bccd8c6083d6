//! Benchmark of the embedded store at production scale.
//!
//! ```text
//! cargo bench -p recall-embedded --bench store
//! RECALL_BENCH_SCALE=0.1 cargo bench -p recall-embedded --bench store   # quick run
//! ```
//!
//! Loads 1,000,000 memories across 10,000 callers, one of whom (the heavy
//! caller) holds 10,000 (all three scaled by `RECALL_BENCH_SCALE`), then
//! measures the file size, the open time, search latency for the heavy
//! caller and for typical callers, and write throughput through the real
//! async API: single writes with each durability, and a burst of 1,000
//! post-call events of 5 memories each. Every memory and question carries
//! its embedding from the default (static) model, as the service writes
//! and asks them, so searches include the vector scan and the shared
//! ranking. The bulk load goes through the
//! hidden `bulk_add_blocking` path (big transactions, same code as `add`).
//! `RECALL_BENCH_DIR` chooses where the database goes (default: the
//! system's temporary directory); it is deleted at the end. With
//! `RECALL_BENCH_OPTIMIZE=1`, `EmbeddedStore::optimize` runs after the
//! load (searches are then measured on a one-segment index).

use std::time::{Duration, Instant};

use std::sync::Arc;

use recall_embedded::{Durability, EmbeddedOptions, EmbeddedStore};
use recall_memory::{Embedder, Fact, FactKey, IdempotencyKey, MemoryStore, NewMemory, SearchQuery};
use recall_model::{DecayLambda, MemorySector, PhoneNumber, Salience, UnixTimestamp};

const FIRST_NAMES: &[&str] = &[
    "Margaret",
    "James",
    "Aisha",
    "Tomasz",
    "Priya",
    "Oluwaseun",
    "Hannah",
    "Diego",
    "Mei",
    "Robert",
    "Fatima",
    "Liam",
    "Sofia",
    "Kwame",
    "Ingrid",
    "Raj",
    "Chloe",
    "Mateo",
    "Yuki",
    "Omar",
];
const STREETS: &[&str] = &[
    "Elm Street",
    "Oak Avenue",
    "Maple Drive",
    "Cedar Lane",
    "Pine Road",
    "Birch Court",
    "Willow Way",
    "Lakeview Terrace",
    "Hillcrest Road",
    "Sunset Boulevard",
    "River Road",
    "Park Place",
];
const CITIES: &[&str] = &[
    "Denver",
    "Seattle",
    "Austin",
    "Boston",
    "Chicago",
    "Phoenix",
    "Atlanta",
    "Portland",
    "Minneapolis",
    "Nashville",
    "Tampa",
    "Omaha",
];
const BRANCHES: &[&str] = &[
    "Downtown",
    "Northgate",
    "Riverside",
    "Westfield",
    "Eastside",
    "Harbor",
    "University",
    "Airport",
];
const DAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const TOPICS: &[&str] = &[
    "refinancing the mortgage on their {street} house",
    "opening a high-yield savings account",
    "a lost debit card and a replacement",
    "the interest rate on their car loan",
    "closing the joint account with their spouse",
    "a wire transfer to a relative in {city}",
    "raising their credit card limit",
    "setting up online banking and the mobile app",
    "a disputed charge of ${amount} at a restaurant",
    "changing their mailing address to {street}",
    "a home equity line of credit",
    "overdraft fees on their checking account",
    "ordering new checks",
    "a student loan for their daughter",
    "travel notice for a trip to {city}",
    "a late mortgage payment and the penalty",
];
const ACTIONS: &[&str] = &[
    "agent promised a callback on {day}",
    "agent emailed the forms to sign",
    "agent booked an appointment at the {branch} branch on {day}",
    "caller will bring documents to the {branch} branch",
    "issue resolved during the call",
    "agent escalated to a supervisor",
    "caller was unhappy with the wait time",
    "agent explained the fees and the caller agreed",
];
const QUERIES: &[&str] = &[
    "refinance",
    "did we talk about the mortgage",
    "what's her name",
    "which branch",
    "callback tuesday",
    "lost debit card",
    "wire transfer to Denver",
    "978-2029",
    "appointment at Riverside",
    "credit card limit",
    "travel to Seattle",
    "student loan daughter",
];

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

fn phone(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1612{:07}", i)).expect("valid E.164")
}

fn fact(key: &str, value: &str, is_name: bool) -> NewMemory {
    NewMemory::new(format!("Caller's {key}: {value}"), MemorySector::Semantic)
        .salience(Salience::HIGH)
        .decay(DecayLambda::PERMANENT)
        .fact(Fact {
            key: FactKey::new(key).expect("valid key"),
            value: value.to_owned(),
            is_name,
        })
}

fn summary(rng: &mut fastrand::Rng, now: UnixTimestamp) -> NewMemory {
    let topic = pick(rng, TOPICS)
        .replace("{street}", pick(rng, STREETS))
        .replace("{city}", pick(rng, CITIES))
        .replace("{amount}", &rng.u32(20..2000).to_string());
    let action = pick(rng, ACTIONS)
        .replace("{day}", pick(rng, DAYS))
        .replace("{branch}", pick(rng, BRANCHES));
    let mut content = format!("Caller asked about {topic}; {action}.");
    if rng.u8(..4) == 0 {
        content.push_str(&format!(
            " Caller mentioned a new number {}-{:03}-{:04}.",
            rng.u32(200..999),
            rng.u32(200..999),
            rng.u32(0..10_000)
        ));
    }
    NewMemory::new(content, MemorySector::Episodic)
        .salience(Salience::MEDIUM)
        .occurred_at(now.plus_secs(-rng.i64(0..400 * 86_400)))
}

/// Gives each memory its embedding, as the service's worker does.
fn embedded(embedder: &dyn Embedder, memories: Vec<NewMemory>) -> Vec<NewMemory> {
    memories
        .into_iter()
        .map(|m| {
            let vector = embedder
                .embed(&m.content.replace('_', " "))
                .expect("embedding");
            m.embedding(vector)
        })
        .collect()
}

/// The memories of one caller holding `n` of them: three profile facts,
/// the rest call summaries.
fn caller_memories(rng: &mut fastrand::Rng, n: usize, now: UnixTimestamp) -> Vec<NewMemory> {
    let mut out = Vec::with_capacity(n);
    let facts = [
        ("first_name", pick(rng, FIRST_NAMES).to_owned(), true),
        ("preferred_branch", pick(rng, BRANCHES).to_owned(), false),
        ("city", pick(rng, CITIES).to_owned(), false),
    ];
    for (key, value, is_name) in facts.iter().take(n) {
        out.push(fact(key, value, *is_name));
    }
    while out.len() < n {
        out.push(summary(rng, now));
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

async fn search_latency(
    store: &EmbeddedStore,
    embedder: &Arc<dyn Embedder>,
    callers: &[PhoneNumber],
    rounds: usize,
    now: UnixTimestamp,
) -> (Duration, Duration, f64) {
    let mut times = Vec::with_capacity(rounds);
    let mut hits = 0usize;
    for i in 0..rounds {
        let caller = &callers[i % callers.len()];
        let text = QUERIES[i % QUERIES.len()];
        let start = Instant::now();
        // The question is embedded per search, as the service does.
        let query = SearchQuery::new(text, 5)
            .at(now)
            .vector(embedder.embed(text).expect("embedding"))
            .embedder(embedder.clone());
        let found = store.search(caller, &query).await.expect("search");
        times.push(start.elapsed());
        hits += found.len();
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        hits as f64 / rounds as f64,
    )
}

fn main() {
    let scale: f64 = std::env::var("RECALL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0 && *s <= 1.0)
        .unwrap_or(1.0);
    let total = (1_000_000.0 * scale) as usize;
    let callers = ((10_000.0 * scale) as usize).max(2);
    let heavy = (10_000.0 * scale) as usize;
    let typical = (total - heavy) / (callers - 1);
    let dir = std::env::var_os("RECALL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("recall-embedded-bench-{}", std::process::id()));
    let path = dir.join("memory.db");
    println!(
        "recall-embedded benchmark: scale {scale}, {total} memories, {callers} callers, \
         heavy caller {heavy}, typical caller {typical}; file {}",
        path.display()
    );

    let now = UnixTimestamp::now();
    let mut rng = fastrand::Rng::with_seed(4);
    let embedder = recall_embed::load(None).expect("the default embedding model");
    let store = EmbeddedStore::open(&path).expect("open");

    // Bulk load in transactions of about 20,000 memories.
    let start = Instant::now();
    let mut loaded = 0usize;
    let mut batch = Vec::new();
    let mut in_batch = 0usize;
    for c in 0..callers {
        let n = if c == 0 { heavy } else { typical };
        let memories = embedded(embedder.as_ref(), caller_memories(&mut rng, n, now));
        in_batch += memories.len();
        batch.push((phone(c), memories));
        if in_batch >= 20_000 || c + 1 == callers {
            loaded += store
                .bulk_add_blocking(std::mem::take(&mut batch))
                .expect("bulk load");
            in_batch = 0;
        }
    }
    let load = start.elapsed();
    println!(
        "bulk load: {loaded} memories in {:.1} s ({:.0} memories/s)",
        load.as_secs_f64(),
        loaded as f64 / load.as_secs_f64()
    );
    drop(store);

    let start = Instant::now();
    let store = EmbeddedStore::open(&path).expect("reopen");
    let open = start.elapsed();
    println!(
        "file size: {:.1} MiB (+ WAL {:.1} MiB); open: {}",
        file_size(&path) as f64 / 1048576.0,
        file_size(&dir.join("memory.db-wal")) as f64 / 1048576.0,
        micros(open)
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var_os("RECALL_BENCH_OPTIMIZE").is_some() {
        let start = Instant::now();
        runtime.block_on(store.optimize()).expect("optimize");
        println!("optimize: {:.1} s", start.elapsed().as_secs_f64());
    }
    runtime.block_on(async {
        let heavy_caller = [phone(0)];
        let typical_callers: Vec<PhoneNumber> = (1..callers).step_by(7).map(phone).collect();
        // Warm the caches as a running server would be.
        search_latency(&store, &embedder, &heavy_caller, 200, now).await;
        search_latency(&store, &embedder, &typical_callers, 200, now).await;
        if std::env::var_os("RECALL_BENCH_PROFILE").is_some() {
            search_latency(&store, &embedder, &heavy_caller, 20_000, now).await;
            return;
        }
        let (p50, p99, hits) = search_latency(&store, &embedder, &heavy_caller, 3_000, now).await;
        println!(
            "search, heavy caller ({heavy} memories): p50 {} p99 {} ({hits:.1} results/query)",
            micros(p50),
            micros(p99)
        );
        let (p50, p99, hits) =
            search_latency(&store, &embedder, &typical_callers, 3_000, now).await;
        println!(
            "search, typical callers ({typical} memories): p50 {} p99 {} ({hits:.1} results/query)",
            micros(p50),
            micros(p99)
        );

        // Burst of 1,000 post-call events, 5 memories each, one add_batch per event.
        let mut rng = fastrand::Rng::with_seed(5);
        let start = Instant::now();
        for e in 0..1_000usize {
            let caller = phone(1 + e % (callers - 1));
            let mut memories = embedded(embedder.as_ref(), caller_memories(&mut rng, 5, now));
            for (i, m) in memories.iter_mut().enumerate() {
                m.idempotency_key =
                    Some(IdempotencyKey::new(format!("conv_burst_{e}/{i}")).expect("key"));
            }
            store.add_batch(&caller, memories).await.expect("add_batch");
        }
        let burst = start.elapsed();
        println!(
            "burst of 1,000 post-call events (5 memories each, add_batch, durability Full): \
             {:.2} s ({:.0} memories/s)",
            burst.as_secs_f64(),
            5_000.0 / burst.as_secs_f64()
        );

        let start = Instant::now();
        for i in 0..500usize {
            let m = summary(&mut rng, now);
            store
                .add(&phone(1 + i % (callers - 1)), m)
                .await
                .expect("add");
        }
        let single = start.elapsed();
        println!(
            "single writes (add, durability Full): {:.0} writes/s ({} each)",
            500.0 / single.as_secs_f64(),
            micros(single / 500)
        );

        // Searches while another task writes post-call batches non-stop.
        let writer = {
            let store = store.clone();
            let embedder = embedder.clone();
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(7);
                let mut batches = 0usize;
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(30) && batches < 2_000 {
                    let caller = phone(1 + batches % (callers - 1));
                    let memories = embedded(embedder.as_ref(), caller_memories(&mut rng, 5, now));
                    store.add_batch(&caller, memories).await.expect("add_batch");
                    batches += 1;
                }
                batches
            })
        };
        let (p50, p99, _) = search_latency(&store, &embedder, &heavy_caller, 2_000, now).await;
        let batches = writer.await.expect("writer task");
        println!(
            "search, heavy caller, while another task wrote {batches} post-call batches: \
             p50 {} p99 {}",
            micros(p50),
            micros(p99)
        );
    });
    drop(store);

    let options = EmbeddedOptions {
        durability: Durability::Normal,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open_with(&path, options).expect("reopen with Normal");
    runtime.block_on(async {
        let mut rng = fastrand::Rng::with_seed(6);
        let start = Instant::now();
        for i in 0..500usize {
            let m = summary(&mut rng, now);
            store
                .add(&phone(1 + i % (callers - 1)), m)
                .await
                .expect("add");
        }
        let single = start.elapsed();
        println!(
            "single writes (add, durability Normal): {:.0} writes/s ({} each)",
            500.0 / single.as_secs_f64(),
            micros(single / 500)
        );
    });
    drop(store);
    std::fs::remove_dir_all(&dir).expect("clean up");
}
