//! Tokenlearn: fitting the static table to the transformer on a corpus.
//!
//! Plain distillation embeds every token out of context, so the pieces
//! of a rare word (`warfarin` = `war ##far ##in`) get vectors that say
//! nothing about it. Here the table is instead *fitted* so that a text's
//! static embedding — the weighted sum of its tokens' rows, what
//! [`StaticEmbedder`](crate::StaticEmbedder) computes — points where the
//! transformer's embedding of the whole text points, over a corpus of
//! short texts (definitions work well: `scripts/wordnet-corpus.sh` writes
//! one from WordNet).
//!
//! 1. `targets`: the transformer's unit-length mean-pooled embedding of
//!    every text, the slow part (40 minutes for WordNet's 385,000 texts on
//!    two busy cores), optionally cached on disk (`--targets-cache`).
//! 2. `fit`: minimise the cosine distance between each text's weighted
//!    sum of rows and its target with Adam, starting from the distilled
//!    rows; tokens the corpus never shows keep their distilled vectors.
//!    Optionally each updated row (and log-weight) is pulled back toward
//!    its start (an L2 penalty); by default it is not, since on WordNet
//!    the held-out measure below only got worse with a pull (0.886 with
//!    none, 0.849 with 0.1). The per-token weights stay
//!    fixed unless asked to be learned too (as a log-scale factor).
//!
//! A share of the corpus (one group of texts in 50: a group is texts on
//! one subject, such as a WordNet synset's definition, lemmas and
//! examples, which would otherwise flatter the measure by near-copies) is
//! held out from the fit, and the mean cosine between static and
//! transformer embeddings on it is reported before and after each epoch:
//! the measure to choose the fit's settings by (the defaults were).
//!
//! Everything is single-threaded and seeded, so the same inputs give the
//! same table.

use std::path::Path;

use ring::digest::{Context, SHA256};

use crate::LoadError;
use crate::transformer::TransformerEmbedder;
use recall_memory::BoxError;

/// How the table is fitted to a corpus.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Passes over the corpus.
    pub epochs: usize,
    /// Adam's step size.
    pub learning_rate: f32,
    /// Strength of the L2 pull of each row (and log-weight) back toward
    /// its distilled start, per update of that row (0: none).
    pub regularization: f32,
    /// Texts per update.
    pub batch: usize,
    /// Whether each token's weight is fitted too, not only its vector.
    pub learn_weights: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            epochs: 3,
            learning_rate: 0.001,
            regularization: 0.0,
            batch: 32,
            learn_weights: false,
        }
    }
}

/// How a fit went: mean cosine between the static and the transformer
/// embeddings of the held-out texts.
#[derive(Clone, Debug)]
pub struct FitReport {
    /// Texts fitted on.
    pub texts: usize,
    /// Texts held out.
    pub held_out: usize,
    /// Rows the corpus touched.
    pub rows_touched: usize,
    /// Held-out mean cosine before the fit.
    pub cosine_before: f64,
    /// Held-out mean cosine after each epoch.
    pub cosine_after: Vec<f64>,
    /// Held-out mean cosine once the fitted rows are reduced by PCA (set
    /// by the distillation; before it, the last epoch's).
    pub cosine_projected: f64,
}

fn fail_by(what: &str, source: impl Into<BoxError>) -> LoadError {
    LoadError::corrupt_by(Path::new("<tokenlearn>"), what, source)
}

/// The first bytes of a target cache file.
const CACHE_MAGIC: &[u8; 8] = b"RCLTGT\x00\x01";

/// The transformer's unit-length embedding of every text, `dims` floats
/// each, in order. With `cache`, a file there computed from the same
/// texts and model weights is read instead, and a fresh computation is
/// written there.
pub(crate) fn targets(
    model: &TransformerEmbedder,
    model_dir: &Path,
    texts: &[String],
    cache: Option<&Path>,
    batch_tokens: usize,
) -> Result<Vec<f32>, LoadError> {
    let dims = recall_memory::embed::Embedder::dims(model);
    let key = cache_key(model_dir, texts)?;
    if let Some(path) = cache
        && let Some(values) = read_cache(path, &key, texts.len(), dims)
    {
        eprintln!(
            "tokenlearn: {} targets read from {}",
            texts.len(),
            path.display()
        );
        return Ok(values);
    }
    let tokenizer = model.tokenizer();
    let inputs: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            tokenizer
                .encode(t.as_str(), true)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| fail_by("tokenizer", e))
        })
        .collect::<Result<_, _>>()?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|i| inputs[*i].len());
    let mut values = vec![0.0_f32; texts.len() * dims];
    let started = std::time::Instant::now();
    let mut done = 0;
    let mut logged = 0;
    while done < order.len() {
        // Sorted by length: a batch takes texts while they fit the budget
        // at the last (longest) one's length.
        let mut end = done + 1;
        while end < order.len() && (end - done + 1) * inputs[order[end]].len() <= batch_tokens {
            end += 1;
        }
        let chunk = &order[done..end];
        let batch: Vec<Vec<u32>> = chunk.iter().map(|i| inputs[*i].clone()).collect();
        let out = model
            .forward(&batch)
            .map_err(|e| fail_by("forward pass", e))?;
        for (i, v) in chunk.iter().zip(out) {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            for (slot, x) in values[i * dims..(i + 1) * dims].iter_mut().zip(&v) {
                *slot = x / norm;
            }
        }
        done += chunk.len();
        if done - logged >= 20_000 || done == order.len() {
            logged = done;
            eprintln!(
                "tokenlearn: {done}/{} targets ({:.0?})",
                order.len(),
                started.elapsed()
            );
        }
    }
    if let Some(path) = cache {
        write_cache(path, &key, texts.len(), dims, &values)?;
    }
    Ok(values)
}

/// A digest of the texts and the model weights: a cache made from
/// either different is not used.
fn cache_key(model_dir: &Path, texts: &[String]) -> Result<[u8; 32], LoadError> {
    let mut context = Context::new(&SHA256);
    let weights = model_dir.join(crate::WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).map_err(|e| LoadError::io(&weights, e))?;
    context.update(&bytes);
    for text in texts {
        context.update(text.as_bytes());
        context.update(b"\n");
    }
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    Ok(key)
}

fn read_cache(path: &Path, key: &[u8; 32], count: usize, dims: usize) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    let header = CACHE_MAGIC.len() + 32 + 8;
    if bytes.len() != header + count * dims * 4
        || &bytes[..CACHE_MAGIC.len()] != CACHE_MAGIC
        || &bytes[CACHE_MAGIC.len()..CACHE_MAGIC.len() + 32] != key
    {
        return None;
    }
    let numbers = &bytes[CACHE_MAGIC.len() + 32..header];
    let stored_count = u32::from_le_bytes(numbers[..4].try_into().ok()?) as usize;
    let stored_dims = u32::from_le_bytes(numbers[4..].try_into().ok()?) as usize;
    if (stored_count, stored_dims) != (count, dims) {
        return None;
    }
    Some(
        bytes[header..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

fn write_cache(
    path: &Path,
    key: &[u8; 32],
    count: usize,
    dims: usize,
    values: &[f32],
) -> Result<(), LoadError> {
    let mut out = Vec::with_capacity(CACHE_MAGIC.len() + 40 + values.len() * 4);
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(key);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(&(dims as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(|e| LoadError::io(path, e))
}

/// A small seeded generator (SplitMix64) for the shuffles: the same
/// seed, the same fit.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Adam's state for a block of parameters, updated lazily: only the rows
/// a batch touched, with the bias correction of the global step.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

impl Adam {
    fn new(len: usize) -> Self {
        Self {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    /// One step on `params[range]` with gradient `grad[range]`.
    fn step(
        &mut self,
        params: &mut [f32],
        grad: &[f32],
        range: std::ops::Range<usize>,
        rate: f32,
        step: i32,
    ) {
        let c1 = 1.0 - BETA1.powi(step);
        let c2 = 1.0 - BETA2.powi(step);
        for i in range {
            let g = grad[i];
            self.m[i] = BETA1 * self.m[i] + (1.0 - BETA1) * g;
            self.v[i] = BETA2 * self.v[i] + (1.0 - BETA2) * g * g;
            params[i] -= rate * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + EPSILON);
        }
    }
}

/// The rows and per-token weights being fitted.
pub(crate) struct Table<'a> {
    /// `rows × dims` vectors, row-major.
    pub(crate) vectors: &'a mut [f32],
    /// One weight per row; a text's embedding is `Σ weight · vector`.
    pub(crate) weights: &'a mut [f32],
    /// Dimensions of a row.
    pub(crate) dims: usize,
}

/// The weighted sum of `rows`' vectors into `acc`.
pub(crate) fn embed(table: &Table<'_>, rows: &[u32], acc: &mut [f32]) {
    acc.fill(0.0);
    let d = table.dims;
    for row in rows {
        let r = *row as usize;
        let w = table.weights[r];
        for (a, x) in acc.iter_mut().zip(&table.vectors[r * d..(r + 1) * d]) {
            *a += w * x;
        }
    }
}

fn cosine(a: &[f32], unit: &[f32]) -> f64 {
    let norm = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return 0.0;
    }
    a.iter()
        .zip(unit)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum::<f64>()
        / norm
}

fn mean_cosine(table: &Table<'_>, texts: &[Vec<u32>], targets: &[f32], which: &[usize]) -> f64 {
    let d = table.dims;
    let mut acc = vec![0.0; d];
    let total: f64 = which
        .iter()
        .map(|i| {
            embed(table, &texts[*i], &mut acc);
            cosine(&acc, &targets[i * d..(i + 1) * d])
        })
        .sum();
    total / which.len().max(1) as f64
}

/// Whether the fit holds out the texts of group `group`: one group in
/// 50, picked by a hash of its number.
pub(crate) fn is_held_out(group: usize) -> bool {
    SplitMix(group as u64).next().is_multiple_of(50)
}

/// Fits `table` so that each text's weighted sum of rows (`texts[i]`,
/// rows of the table) points along its target (`targets[i·dims..]`, unit
/// length). `groups[i]` is text `i`'s group, held out or not as a whole.
/// Texts without rows are skipped; rows no text uses are left as they
/// are.
pub(crate) fn fit(
    table: &mut Table<'_>,
    texts: &[Vec<u32>],
    groups: &[usize],
    targets: &[f32],
    options: &FitOptions,
) -> FitReport {
    let d = table.dims;
    let n_rows = table.weights.len();
    let start_vectors = table.vectors.to_vec();
    let start_weights = table.weights.to_vec();
    // log-weights, fitted when asked: weight = start · exp(log).
    let mut log_weights = vec![0.0_f32; n_rows];

    let (held_out, mut train): (Vec<usize>, Vec<usize>) = (0..texts.len())
        .filter(|i| !texts[*i].is_empty())
        .partition(|i| is_held_out(groups[*i]));
    let mut rng = SplitMix(0x7265_6361_6c6c);
    let mut touched = vec![false; n_rows];
    for i in &train {
        for r in &texts[*i] {
            touched[*r as usize] = true;
        }
    }
    let rows_touched = touched.iter().filter(|t| **t).count();
    let cosine_before = mean_cosine(table, texts, targets, &held_out);
    eprintln!(
        "tokenlearn: fitting on {} texts ({} held out, {rows_touched} rows touched); held-out cosine {cosine_before:.4}",
        train.len(),
        held_out.len()
    );

    let mut adam_vectors = Adam::new(table.vectors.len());
    let mut adam_weights = Adam::new(n_rows);
    let mut grad = vec![0.0_f32; table.vectors.len()];
    let mut grad_weights = vec![0.0_f32; n_rows];
    let mut in_batch = vec![false; n_rows];
    let mut batch_rows: Vec<usize> = Vec::new();
    let mut sum = vec![0.0_f32; d];
    let mut back = vec![0.0_f32; d];
    let mut step = 0;
    let mut cosine_after = Vec::with_capacity(options.epochs);
    let started = std::time::Instant::now();
    for epoch in 0..options.epochs {
        rng.shuffle(&mut train);
        for batch in train.chunks(options.batch.max(1)) {
            for i in batch {
                let rows = &texts[*i];
                let target = &targets[i * d..(i + 1) * d];
                embed(table, rows, &mut sum);
                let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm < 1e-12 {
                    continue;
                }
                // loss = 1 − cos(s, y); ∂loss/∂s = −(y − cos · ŝ) / |s|.
                let cos: f32 = sum.iter().zip(target).map(|(s, y)| s * y).sum::<f32>() / norm;
                for ((b, s), y) in back.iter_mut().zip(&sum).zip(target) {
                    *b = -(y - cos * s / norm) / norm;
                }
                for row in rows {
                    let r = *row as usize;
                    if !in_batch[r] {
                        in_batch[r] = true;
                        batch_rows.push(r);
                    }
                    let w = table.weights[r];
                    let vector = &table.vectors[r * d..(r + 1) * d];
                    let mut dot = 0.0;
                    for ((g, b), x) in grad[r * d..(r + 1) * d].iter_mut().zip(&back).zip(vector) {
                        *g += w * b;
                        dot += b * x;
                    }
                    grad_weights[r] += w * dot;
                }
            }
            step += 1;
            for r in batch_rows.drain(..) {
                in_batch[r] = false;
                let range = r * d..(r + 1) * d;
                for ((g, x), x0) in grad[range.clone()]
                    .iter_mut()
                    .zip(&table.vectors[range.clone()])
                    .zip(&start_vectors[range.clone()])
                {
                    *g += options.regularization * (x - x0);
                }
                adam_vectors.step(
                    table.vectors,
                    &grad,
                    range.clone(),
                    options.learning_rate,
                    step,
                );
                grad[range].fill(0.0);
                if options.learn_weights {
                    grad_weights[r] += options.regularization * log_weights[r];
                    adam_weights.step(
                        &mut log_weights,
                        &grad_weights,
                        r..r + 1,
                        options.learning_rate,
                        step,
                    );
                    table.weights[r] = start_weights[r] * log_weights[r].exp();
                }
                grad_weights[r] = 0.0;
            }
        }
        let after = mean_cosine(table, texts, targets, &held_out);
        eprintln!(
            "tokenlearn: epoch {}/{}: held-out cosine {after:.4} ({:.0?})",
            epoch + 1,
            options.epochs,
            started.elapsed()
        );
        cosine_after.push(after);
    }
    FitReport {
        texts: train.len(),
        held_out: held_out.len(),
        rows_touched,
        cosine_before,
        cosine_projected: cosine_after.last().copied().unwrap_or(cosine_before),
        cosine_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_moves_sums_toward_their_targets() {
        // Two rows, two texts: text 0 is row 0, text 1 rows 0 and 1; the
        // targets want row 0 along x and the pair along y.
        let mut vectors = vec![0.6, 0.8, 0.8, 0.6];
        let mut weights = vec![1.0, 1.0];
        let texts = vec![vec![0], vec![0, 1]];
        let targets = vec![1.0, 0.0, 0.0, 1.0];
        let mut table = Table {
            vectors: &mut vectors,
            weights: &mut weights,
            dims: 2,
        };
        let all = [0, 1];
        let before = mean_cosine(&table, &texts, &targets, &all);
        let mut train = texts.clone();
        // Enough copies that the held-out sample is small.
        for _ in 0..200 {
            train.extend(texts.iter().cloned());
        }
        let train_targets: Vec<f32> = targets
            .iter()
            .copied()
            .cycle()
            .take(train.len() * 2)
            .collect();
        let options = FitOptions {
            epochs: 20,
            learning_rate: 0.01,
            regularization: 0.0,
            batch: 4,
            learn_weights: true,
        };
        let groups: Vec<usize> = (0..train.len()).collect();
        let report = fit(&mut table, &train, &groups, &train_targets, &options);
        let after = mean_cosine(&table, &texts, &targets, &all);
        assert!(after > before + 0.1, "{before} → {after}");
        assert!(report.cosine_after.last().copied().unwrap_or(0.0) > report.cosine_before);
    }

    #[test]
    fn the_shuffle_is_seeded() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        SplitMix(1).shuffle(&mut a);
        SplitMix(1).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }
}
