//! Distilling a static table from a sentence transformer (model2vec's
//! recipe): embed every token of the vocabulary (and optional whole
//! words) on its own with the transformer, optionally fit those vectors
//! to the transformer's embeddings of a corpus ([tokenlearn](crate::tokenlearn)),
//! reduce them to fewer dimensions with PCA, weight each row by how rare
//! its token is, and quantize.
//!
//! Deterministic: the same model, corpus and options give the same file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use nalgebra::{DMatrix, SymmetricEigen};

use crate::LoadError;
use crate::static_model::{TABLE_FILE, TOKENIZER_FILE, rows_of};
use crate::table::Table;
use crate::tokenlearn::{self, FitOptions, FitReport};
use crate::transformer::TransformerEmbedder;
use recall_memory::BoxError;

/// How much a row counts in a text's sum, from its token's frequency
/// rank (BERT vocabularies are ordered by frequency; whole-word rows rank
/// after the word pieces, from 2000 on, in their list's order).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Weighting {
    /// `ln(1 + rank)`: Zipf's law makes this the token's information
    /// content up to a constant (the model2vec default).
    Zipf,
    /// Smooth inverse frequency, `a / (a + p)` with `a = 1e-4` and the
    /// Zipf probability `p = 1 / (rank + 10)` (Arora et al.).
    Sif,
    /// Every row counts the same.
    Uniform,
}

impl Weighting {
    fn weight(self, rank: f64) -> f64 {
        match self {
            Self::Zipf => (1.0 + rank.max(1.0)).ln(),
            Self::Sif => {
                let p = 1.0 / (rank.max(1.0) + 10.0);
                1e-4 / (1e-4 + p)
            }
            Self::Uniform => 1.0,
        }
    }
}

impl FromStr for Weighting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zipf" => Ok(Self::Zipf),
            "sif" => Ok(Self::Sif),
            "uniform" => Ok(Self::Uniform),
            other => Err(format!(
                "unknown weighting {other:?} (zipf, sif or uniform)"
            )),
        }
    }
}

/// A corpus to fit the table on (see [`tokenlearn`](crate::tokenlearn)).
#[derive(Clone, Debug)]
pub struct Corpus {
    /// The texts, short ones (a sentence or a definition each), in groups
    /// on one subject each (the fit holds groups out whole to measure
    /// itself).
    pub groups: Vec<Vec<String>>,
    /// Where to cache the transformer's embeddings of the texts between
    /// runs (a few hundred MB for a few hundred thousand texts).
    pub cache: Option<PathBuf>,
    /// How to fit.
    pub fit: FitOptions,
}

/// How a distillation runs.
#[derive(Clone, Debug)]
pub struct DistillOptions {
    /// The model id written into the table (and so the tag of its vectors).
    pub model_id: String,
    /// Dimensions kept by PCA (at most the transformer's).
    pub dims: usize,
    /// Whole words to add as rows of their own, most frequent first
    /// (words the tokenizer splits into pieces; others are skipped).
    pub words: Vec<String>,
    /// Texts per transformer batch for the vocabulary (a corpus is batched
    /// by tokens: 64 times this many).
    pub batch: usize,
    /// How rows are weighted.
    pub weighting: Weighting,
    /// A corpus to fit the rows on, or none for plain distillation.
    pub corpus: Option<Corpus>,
}

/// What a distillation wrote.
#[derive(Clone, Debug)]
pub struct DistillReport {
    /// Token rows.
    pub tokens: usize,
    /// Whole-word rows.
    pub words: usize,
    /// Dimensions.
    pub dims: usize,
    /// Share of the variance the kept dimensions hold.
    pub variance_kept: f64,
    /// Size of the table file in bytes.
    pub bytes: usize,
    /// How the fit to the corpus went, when there was one.
    pub fit: Option<FitReport>,
}

fn fail(what: &str) -> LoadError {
    LoadError::corrupt(Path::new("<distillation>"), what)
}

fn fail_by(what: &str, source: impl Into<BoxError>) -> LoadError {
    LoadError::corrupt_by(Path::new("<distillation>"), what, source)
}

/// Distills the transformer in `model_dir` into `out_dir`
/// (`static-table.bin` and a copy of `tokenizer.json`), logging progress
/// to standard error.
pub fn distill(
    model_dir: &Path,
    out_dir: &Path,
    options: &DistillOptions,
) -> Result<DistillReport, LoadError> {
    let model = TransformerEmbedder::open(model_dir, None)?;
    let tokenizer = model.tokenizer();
    let vocab = tokenizer.get_vocab_size(true);
    let hidden = recall_memory::embed::Embedder::dims(&model);
    let (vectors, words) = embed_rows(&model, options)?;

    // Centre the vectors (they share a large common direction), weight
    // the rows by rarity; rows without a vector (special tokens) are zero.
    let real: Vec<&Vec<f32>> = vectors.iter().flatten().collect();
    let n = real.len() as f64;
    let mut mean = vec![0.0_f64; hidden];
    for v in &real {
        for (m, x) in mean.iter_mut().zip(v.iter()) {
            *m += f64::from(*x) / n;
        }
    }
    let mut centred = vec![0.0_f32; vectors.len() * hidden];
    let mut weights = vec![0.0_f32; vectors.len()];
    for (row, v) in vectors.iter().enumerate() {
        let Some(v) = v else { continue };
        for ((c, x), m) in centred[row * hidden..(row + 1) * hidden]
            .iter_mut()
            .zip(v)
            .zip(&mean)
        {
            *c = (f64::from(*x) - m) as f32;
        }
        let rank = if row < vocab {
            row
        } else {
            row - vocab + 2_000
        };
        weights[row] = options.weighting.weight(rank as f64) as f32;
    }

    let mut corpus_rows = None;
    let fit = match &options.corpus {
        None => None,
        Some(corpus) => {
            let (groups, texts): (Vec<usize>, Vec<String>) = corpus
                .groups
                .iter()
                .enumerate()
                .flat_map(|(g, texts)| texts.iter().map(move |t| (g, t.clone())))
                .unzip();
            let targets = tokenlearn::targets(
                &model,
                model_dir,
                &texts,
                corpus.cache.as_deref(),
                options.batch.max(1) * 64,
            )?;
            // Each text as the rows the static model will read it by.
            let word_rows: std::collections::HashMap<&str, usize> = words
                .iter()
                .enumerate()
                .map(|(i, w)| (w.as_str(), vocab + i))
                .collect();
            let rows: Vec<Vec<u32>> = texts
                .iter()
                .map(|t| {
                    let encoding = tokenizer
                        .encode(t.as_str(), false)
                        .map_err(|e| fail_by("tokenizer", e))?;
                    Ok(rows_of(&encoding, |w| word_rows.get(w).copied())
                        .into_iter()
                        .filter(|r| vectors[*r].is_some())
                        .map(|r| r as u32)
                        .collect())
                })
                .collect::<Result<_, LoadError>>()?;
            let mut table = tokenlearn::Table {
                vectors: &mut centred,
                weights: &mut weights,
                dims: hidden,
            };
            let report = tokenlearn::fit(&mut table, &rows, &groups, &targets, &corpus.fit);
            corpus_rows = Some((rows, groups, targets));
            Some(report)
        }
    };

    // PCA of the rows, about the origin so that sums of rows keep their
    // meaning (the rows are centred before any fit, so for unfitted rows
    // this is the usual centred PCA). After a fit, how well the projected
    // sums still match the transformer on the held-out texts is reported.
    let dims = options.dims.min(hidden);
    let mut moment = DMatrix::<f64>::zeros(hidden, hidden);
    for (row, v) in vectors.iter().enumerate() {
        if v.is_some() {
            let c = nalgebra::DVector::from_iterator(
                hidden,
                centred[row * hidden..(row + 1) * hidden]
                    .iter()
                    .map(|x| f64::from(*x)),
            );
            moment.ger(1.0 / n, &c, &c, 1.0);
        }
    }
    let (components, kept) = principal(moment, dims);
    let fit = match (fit, &corpus_rows) {
        (Some(mut report), Some((rows, groups, targets))) => {
            let table = tokenlearn::Table {
                vectors: &mut centred,
                weights: &mut weights,
                dims: hidden,
            };
            let held_out: Vec<usize> = (0..rows.len())
                .filter(|i| !rows[*i].is_empty() && tokenlearn::is_held_out(groups[*i]))
                .collect();
            report.cosine_projected =
                projected_cosine(&table, rows, targets, &held_out, &components);
            Some(report)
        }
        (fit, _) => fit,
    };
    let rows: Vec<Vec<f32>> = (0..vectors.len())
        .map(|row| {
            let v = &centred[row * hidden..(row + 1) * hidden];
            let weight = f64::from(weights[row]);
            components
                .iter()
                .map(|c| {
                    let p: f64 = v.iter().zip(c).map(|(x, c)| f64::from(*x) * c).sum();
                    (p * weight) as f32
                })
                .collect()
        })
        .collect();

    let table = Table::quantize(options.model_id.clone(), dims, words.clone(), &rows);
    let bytes = table.to_bytes();
    std::fs::create_dir_all(out_dir).map_err(|e| LoadError::io(out_dir, e))?;
    let table_path = out_dir.join(TABLE_FILE);
    std::fs::write(&table_path, &bytes).map_err(|e| LoadError::io(&table_path, e))?;
    let tokenizer_path = out_dir.join(TOKENIZER_FILE);
    std::fs::copy(model_dir.join(TOKENIZER_FILE), &tokenizer_path)
        .map_err(|e| LoadError::io(&tokenizer_path, e))?;
    Ok(DistillReport {
        tokens: vocab,
        words: words.len(),
        dims,
        variance_kept: kept,
        bytes: bytes.len(),
        fit,
    })
}

/// One unit-length vector per row, none for special tokens.
type Vectors = Vec<Option<Vec<f32>>>;

/// Every row's unit-length transformer embedding, alone between `[CLS]`
/// and `[SEP]` (none for special tokens): the vocabulary's tokens, then
/// the whole words of `options.words` that the tokenizer splits, with
/// those words.
fn embed_rows(
    model: &TransformerEmbedder,
    options: &DistillOptions,
) -> Result<(Vectors, Vec<String>), LoadError> {
    let tokenizer = model.tokenizer();
    let vocab = tokenizer.get_vocab_size(true);
    let cls = tokenizer
        .token_to_id("[CLS]")
        .ok_or_else(|| fail("no [CLS] token"))?;
    let sep = tokenizer
        .token_to_id("[SEP]")
        .ok_or_else(|| fail("no [SEP] token"))?;
    let special = |token: &str| {
        token.starts_with("[unused") || matches!(token, "[PAD]" | "[CLS]" | "[SEP]" | "[MASK]")
    };

    // The inputs: each token alone, then each whole word's pieces.
    let mut inputs: Vec<Option<Vec<u32>>> = (0..vocab as u32)
        .map(|id| {
            let token = tokenizer.id_to_token(id).unwrap_or_default();
            (!special(&token)).then(|| vec![cls, id, sep])
        })
        .collect();
    let mut words = Vec::new();
    for word in &options.words {
        let pieces = tokenizer
            .encode(word.as_str(), false)
            .map_err(|e| fail_by("tokenizer", e))?;
        let ids = pieces.get_ids();
        let normal: String = pieces
            .get_tokens()
            .iter()
            .map(|t| t.strip_prefix("##").unwrap_or(t))
            .collect();
        let single_word = pieces.get_word_ids().iter().all(|w| *w == Some(0));
        if ids.len() < 2 || !single_word || normal.len() > 255 || words.contains(&normal) {
            continue;
        }
        let mut seq = vec![cls];
        seq.extend_from_slice(ids);
        seq.push(sep);
        inputs.push(Some(seq));
        words.push(normal);
    }

    let total = inputs.len();
    let mut vectors: Vectors = vec![None; total];
    let mut order: Vec<usize> = (0..total).filter(|i| inputs[*i].is_some()).collect();
    order.sort_by_key(|i| inputs[*i].as_ref().map_or(0, Vec::len));
    let started = std::time::Instant::now();
    for (n, chunk) in order.chunks(options.batch.max(1)).enumerate() {
        let batch: Vec<Vec<u32>> = chunk
            .iter()
            .map(|i| inputs[*i].clone().unwrap_or_default())
            .collect();
        let out = model
            .forward(&batch)
            .map_err(|e| fail_by("forward pass", e))?;
        for (i, v) in chunk.iter().zip(out) {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            vectors[*i] = Some(v.iter().map(|x| x / norm).collect());
        }
        if n % 20 == 0 {
            eprintln!(
                "distill: {}/{} rows embedded ({:.0?})",
                ((n + 1) * options.batch).min(order.len()),
                order.len(),
                started.elapsed()
            );
        }
    }
    Ok((vectors, words))
}

/// The `dims` principal directions of a second-moment matrix, each with
/// a deterministic sign (its largest entry positive), and the share of the
/// moment they hold.
fn principal(moment: DMatrix<f64>, dims: usize) -> (Vec<Vec<f64>>, f64) {
    let hidden = moment.nrows();
    let eigen = SymmetricEigen::new(moment);
    let mut by_value: Vec<usize> = (0..hidden).collect();
    by_value.sort_by(|a, b| eigen.eigenvalues[*b].total_cmp(&eigen.eigenvalues[*a]));
    let kept: f64 = by_value[..dims].iter().map(|i| eigen.eigenvalues[*i]).sum();
    let all: f64 = eigen.eigenvalues.iter().sum();
    let components = by_value[..dims]
        .iter()
        .map(|i| {
            let col: Vec<f64> = eigen.eigenvectors.column(*i).iter().copied().collect();
            let big = col
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(1.0);
            let sign = if big < 0.0 { -1.0 } else { 1.0 };
            col.into_iter().map(|x| x * sign).collect()
        })
        .collect();
    (components, kept / all)
}

/// The mean cosine between the texts' static embeddings projected on
/// `components` and their targets: how much of the fit PCA keeps.
fn projected_cosine(
    table: &tokenlearn::Table<'_>,
    texts: &[Vec<u32>],
    targets: &[f32],
    which: &[usize],
    components: &[Vec<f64>],
) -> f64 {
    let d = table.dims;
    let mut acc = vec![0.0_f32; d];
    let mut total = 0.0;
    for i in which {
        tokenlearn::embed(table, &texts[*i], &mut acc);
        let mut projected = vec![0.0_f64; d];
        for c in components {
            let p: f64 = c.iter().zip(&acc).map(|(c, x)| c * f64::from(*x)).sum();
            for (y, c) in projected.iter_mut().zip(c) {
                *y += p * c;
            }
        }
        let norm = projected.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            let target = &targets[i * d..(i + 1) * d];
            total += projected
                .iter()
                .zip(target)
                .map(|(x, y)| x * f64::from(*y))
                .sum::<f64>()
                / norm;
        }
    }
    total / which.len().max(1) as f64
}
