//! Cost of one embedding, static table against the full transformer.
//!
//! ```text
//! cargo bench -p recall-embed --features transformer --bench embed
//! RECALL_BENCH_MODEL=models/all-MiniLM-L6-v2 cargo bench -p recall-embed --features transformer --bench embed
//! ```
//!
//! Without `RECALL_BENCH_MODEL` only the built-in static model is
//! measured; with it (a directory from `scripts/fetch-minilm.sh`), the
//! transformer too, on the same texts: a memory-tool question and a call
//! summary as ElevenLabs writes them.

use criterion::{Criterion, criterion_group, criterion_main};
use recall_memory::embed::Embedder;

const QUESTION: &str = "what was wrong with her flowers";
const SUMMARY: &str = "The user called about a sharp pain in her lower left molar whenever she \
drinks something cold. It started a few days after her cleaning and is getting worse. Nora \
offered an urgent slot with Dr. Halvorsen the next morning at 8:15 AM, which Priya accepted, \
and suggested she use a sensitivity toothpaste and avoid very cold drinks until then.";

fn bench(c: &mut Criterion) {
    let static_model = recall_embed::StaticEmbedder::default_model().expect("built-in model");
    c.bench_function("static/question", |b| {
        b.iter(|| static_model.embed(std::hint::black_box(QUESTION)).unwrap())
    });
    c.bench_function("static/summary", |b| {
        b.iter(|| static_model.embed(std::hint::black_box(SUMMARY)).unwrap())
    });
    #[cfg(feature = "transformer")]
    if let Some(dir) = std::env::var_os("RECALL_BENCH_MODEL") {
        let model = recall_embed::TransformerEmbedder::open(dir, None).expect("transformer");
        c.bench_function("transformer/question", |b| {
            b.iter(|| model.embed(std::hint::black_box(QUESTION)).unwrap())
        });
        c.bench_function("transformer/summary", |b| {
            b.iter(|| model.embed(std::hint::black_box(SUMMARY)).unwrap())
        });
        let batch: Vec<&str> = std::iter::repeat_n(SUMMARY, 16).collect();
        c.bench_function("transformer/16 summaries", |b| {
            b.iter(|| model.embed_batch(std::hint::black_box(&batch)).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
