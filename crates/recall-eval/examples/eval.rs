//! Prints the retrieval evaluation's per-kind table.
//!
//! ```text
//! cargo run --release -p recall-eval --example eval -- [--store embedded|memory|all] [--model DIR] [--no-model] [--misses]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use recall_eval::{DataSet, StoreKind, evaluate_on, evaluate_with};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), recall_eval::EvalError> {
    let mut stores = vec![StoreKind::Embedded];
    let mut model: Option<PathBuf> = None;
    let mut no_model = false;
    let mut misses = false;
    let mut show = false;
    let mut data_dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--store" => {
                stores = match args.next().as_deref() {
                    Some("embedded") => vec![StoreKind::Embedded],
                    Some("memory") => vec![StoreKind::InMemory],
                    Some("all") => vec![StoreKind::Embedded, StoreKind::InMemory],
                    other => return Err(format!("--store: unknown store {other:?}").into()),
                }
            }
            "--model" => model = args.next().map(PathBuf::from),
            "--data" => data_dir = args.next().map(PathBuf::from),
            "--no-model" => no_model = true,
            "--misses" => misses = true,
            "--show" => {
                misses = true;
                show = true;
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let data = match &data_dir {
        Some(dir) => DataSet::load_from(dir)?,
        None => DataSet::load()?,
    };
    println!(
        "{} callers, {} memories, {} questions {:?}",
        data.callers.len(),
        data.memories(),
        data.callers
            .iter()
            .map(|c| c.questions.len())
            .sum::<usize>(),
        data.kinds()
    );
    let embedder = recall_embed::load(model.as_deref())?;
    for store in stores {
        let started = Instant::now();
        let report = if no_model {
            let dir = tempfile::tempdir()?;
            let s: std::sync::Arc<dyn recall_memory::MemoryStore> = match store {
                StoreKind::Embedded => std::sync::Arc::new(recall_embedded::EmbeddedStore::open(
                    dir.path().join("memory.db"),
                )?),
                StoreKind::InMemory => std::sync::Arc::new(recall_memory::InMemoryStore::new()),
            };
            evaluate_with(s, dir.path(), &data, None).await?
        } else {
            evaluate_on(store, &data, embedder.clone()).await?
        };
        println!(
            "\n{} store, model {} ({:.1?}):\n",
            store.name(),
            if no_model {
                "none"
            } else {
                embedder.model_id()
            },
            started.elapsed()
        );
        println!("{report}");
        if misses {
            for m in &report.misses {
                println!(
                    "[{}] {} {:?} rank {:?}\n    want: {}\n    got:  {}",
                    m.kind,
                    m.phone,
                    m.question,
                    m.rank,
                    m.expected.chars().take(110).collect::<String>(),
                    m.first.chars().take(110).collect::<String>()
                );
                if show {
                    for (score, content) in &m.returned {
                        println!(
                            "      {score:.3} {}",
                            content.chars().take(100).collect::<String>()
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
