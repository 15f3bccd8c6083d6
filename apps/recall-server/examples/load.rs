//! The load generator of `scripts/bench-server.sh`, for the two things
//! `wrk` cannot do:
//!
//! * `rate`: an **open-loop** load at a fixed request rate (to read the
//!   p99 at half of the maximum rate). Requests leave on schedule whether
//!   or not earlier ones have been answered, so a slow server shows up as
//!   latency instead of silently lowering the rate (`wrk` is closed-loop).
//!   The tokio timer ticks in milliseconds, so requests leave in small
//!   bursts (about rate/1000 each millisecond); latency is measured from
//!   the moment each request is handed to the connection, and the report
//!   says how late the sends were, so a generator that cannot keep up is
//!   seen.
//! * `post-call`: post-call events that are each a **new** event (a unique
//!   conversation id, so none is a duplicate), each signed with
//!   `ElevenLabs-Signature` exactly as ElevenLabs does; bodies and
//!   signatures are prepared before the clock starts. Every answer must be
//!   `200` with `"status":"stored"`.
//!
//! Both print one line of `key=value` pairs (latencies in microseconds)
//! for the script to parse, and stop by themselves (bounded in count and
//! time). Loopback only is intended.
//!
//! ```sh
//! cargo run --release -p recall-server --example load -- rate \
//!     --url http://127.0.0.1:8080/webhook/search-data --header "X-Api-Key: $KEY" \
//!     --body-file body.json --rate 2000 --seconds 10
//! cargo run --release -p recall-server --example load -- post-call \
//!     --url http://127.0.0.1:8080/webhook/post-call --secret "$POST_KEY" \
//!     --template scripts/bench/post-call.json --requests 500
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use recall_signature::{SIGNATURE_HEADER, Secret, sign};

/// Load generator for the server benchmark.
#[derive(Debug, Parser)]
struct Cli {
    /// Client runtime threads.
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// POST one body at a fixed rate (open loop) and report latencies.
    Rate {
        /// The URL to POST to.
        #[arg(long)]
        url: String,
        /// A header `Name: value` (repeatable).
        #[arg(long)]
        header: Vec<String>,
        /// The body to POST.
        #[arg(long)]
        body_file: PathBuf,
        /// Requests per second.
        #[arg(long)]
        rate: f64,
        /// How long to send (after the warm-up).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Warm-up at the same rate, not measured.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// The most requests in flight; beyond it a send is skipped and
        /// counted as `skipped`.
        #[arg(long, default_value_t = 256)]
        max_in_flight: usize,
    },
    /// POST new, signed post-call events and report acknowledgement
    /// latencies.
    PostCall {
        /// The post-call webhook URL.
        #[arg(long)]
        url: String,
        /// The post-call webhook secret.
        #[arg(long)]
        secret: String,
        /// The event template; `{{conversation_id}}` and `{{caller}}` are
        /// replaced for each request.
        #[arg(long)]
        template: PathBuf,
        /// How many events.
        #[arg(long, default_value_t = 500)]
        requests: usize,
        /// Requests in flight at once (each connection sends one after the
        /// other).
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Prefix of the conversation ids (make it unique per run).
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// Stop sending after this many seconds even if not all were sent.
        #[arg(long, default_value_t = 120.0)]
        max_seconds: f64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Rate {
                url,
                header,
                body_file,
                rate,
                seconds,
                warmup,
                max_in_flight,
            } => {
                let body = std::fs::read(&body_file)
                    .with_context(|| format!("cannot read {}", body_file.display()))?;
                let headers = parse_headers(&header)?;
                run_rate(RateRun {
                    url,
                    headers,
                    body,
                    rate,
                    seconds,
                    warmup,
                    max_in_flight,
                })
                .await
            }
            Command::PostCall {
                url,
                secret,
                template,
                requests,
                concurrency,
                prefix,
                max_seconds,
            } => {
                let template = std::fs::read_to_string(&template)
                    .with_context(|| format!("cannot read {}", template.display()))?;
                let secret =
                    Secret::new(secret).map_err(|e| anyhow::anyhow!("invalid --secret: {e}"))?;
                run_post_call(PostCallRun {
                    url,
                    secret,
                    template,
                    requests,
                    concurrency,
                    prefix,
                    max_seconds,
                })
                .await
            }
        }
    })
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(10))
        .build()?)
}

fn parse_headers(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .with_context(|| format!("a header is `Name: value`, got {h:?}"))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

struct RateRun {
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    rate: f64,
    seconds: f64,
    warmup: f64,
    max_in_flight: usize,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    /// How late each measured send left against its schedule.
    lateness_us: Vec<u64>,
}

async fn run_rate(run: RateRun) -> anyhow::Result<()> {
    anyhow::ensure!(
        run.rate > 0.0 && run.rate < 1_000_000.0,
        "--rate must be in (0, 1e6)"
    );
    let client = client()?;
    let body = actix_web::web::Bytes::from(run.body);
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &run.headers {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes())?,
            reqwest::header::HeaderValue::from_str(value)?,
        );
    }
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(run.max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / run.rate);
    let warmup_n = (run.warmup * run.rate).round() as u64;
    let measured_n = (run.seconds * run.rate).round() as u64;
    let total = warmup_n + measured_n;
    let mut skipped = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    let start = tokio::time::Instant::now();
    let mut measure_start = None;
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let measured = i >= warmup_n;
        if measured && measure_start.is_none() {
            measure_start = Some(Instant::now());
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            if measured {
                skipped += 1;
            }
            continue;
        };
        let request = client
            .post(&run.url)
            .headers(headers.clone())
            .body(body.clone());
        let tally = tally.clone();
        tasks.spawn(async move {
            let late = tokio::time::Instant::now().saturating_duration_since(due);
            let sent = Instant::now();
            let ok = match request.send().await {
                Ok(response) => {
                    let success = response.status().is_success();
                    success && response.bytes().await.is_ok()
                }
                Err(_) => false,
            };
            let elapsed = sent.elapsed();
            drop(permit);
            if measured {
                let mut t = tally.lock().unwrap_or_else(PoisonError::into_inner);
                if ok {
                    t.latencies_us.push(micros(elapsed));
                } else {
                    t.errors += 1;
                }
                t.lateness_us.push(micros(late));
            }
        });
        // Reap finished tasks now and then so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let wall = measure_start.map_or(Duration::ZERO, |s| s.elapsed());
    let mut t = Arc::try_unwrap(tally)
        .map_err(|_| anyhow::anyhow!("tasks still hold the tally"))?
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    t.latencies_us.sort_unstable();
    t.lateness_us.sort_unstable();
    let ok = t.latencies_us.len() as u64;
    println!(
        "target_rate={:.0} achieved_rate={:.0} ok={ok} errors={} skipped={skipped} p50_us={} p90_us={} p99_us={} max_us={} late_p50_us={} late_p99_us={}",
        run.rate,
        ok as f64 / wall.as_secs_f64().max(1e-9),
        t.errors,
        percentile(&t.latencies_us, 50.0),
        percentile(&t.latencies_us, 90.0),
        percentile(&t.latencies_us, 99.0),
        t.latencies_us.last().copied().unwrap_or(0),
        percentile(&t.lateness_us, 50.0),
        percentile(&t.lateness_us, 99.0),
    );
    Ok(())
}

struct PostCallRun {
    url: String,
    secret: Secret,
    template: String,
    requests: usize,
    concurrency: usize,
    prefix: String,
    max_seconds: f64,
}

async fn run_post_call(run: PostCallRun) -> anyhow::Result<()> {
    anyhow::ensure!(
        run.template.contains("{{conversation_id}}"),
        "the template has no {{{{conversation_id}}}} to replace"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Every event new: its own conversation id, its own caller, its own
    // signature — all prepared before the clock starts.
    let events: Vec<(actix_web::web::Bytes, String)> = (0..run.requests)
        .map(|i| {
            let body = run
                .template
                .replace("{{conversation_id}}", &format!("{}_{i:06}", run.prefix))
                .replace("{{caller}}", &format!("+1612555{:04}", i % 10_000));
            let signature = sign(body.as_bytes(), &run.secret, now);
            (actix_web::web::Bytes::from(body), signature)
        })
        .collect();
    let events = Arc::new(Mutex::new(events.into_iter()));
    let client = client()?;
    let deadline = Instant::now() + Duration::from_secs_f64(run.max_seconds);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..run.concurrency.max(1) {
        let events = events.clone();
        let client = client.clone();
        let url = run.url.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                if Instant::now() > deadline {
                    break;
                }
                let next = events.lock().unwrap_or_else(PoisonError::into_inner).next();
                let Some((body, signature)) = next else { break };
                let sent = Instant::now();
                let result = client
                    .post(&url)
                    .header(SIGNATURE_HEADER, signature)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                let outcome = match result {
                    Ok(response) => {
                        let status = response.status();
                        match response.text().await {
                            Ok(text) if status.is_success() && text.contains("\"stored\"") => {
                                Ok(())
                            }
                            Ok(text) => Err(format!("{status} {text}")),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let elapsed = sent.elapsed();
                match outcome {
                    Ok(()) => latencies.push(micros(elapsed)),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        let (l, e, f) = joined?;
        latencies.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let wall = started.elapsed();
    latencies.sort_unstable();
    if let Some(e) = &first_error {
        eprintln!("load: first error: {e}");
    }
    let ok = latencies.len();
    println!(
        "requests={} concurrency={} ok={ok} errors={errors} rate={:.0} p50_us={} p90_us={} p99_us={} max_us={}",
        run.requests,
        run.concurrency,
        ok as f64 / wall.as_secs_f64().max(1e-9),
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(0),
    );
    Ok(())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
