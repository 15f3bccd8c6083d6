//! Text embeddings: the [`Embedder`] port and the [`Embedding`] values
//! that stores keep beside each memory.
//!
//! An [`Embedding`] is a unit-length vector tagged with the model that
//! made it ([`ModelTag`]). Vectors of different models are never compared:
//! [`Embedding::cosine`] answers `None` for them, so a store holding
//! vectors of an earlier model still ranks (by text) until they are
//! rebuilt.
//!
//! Stores keep vectors in the compact form of [`Embedding::to_bytes`]
//! (8-bit values and one scale, about a quarter of the `f32` size), and
//! can score a stored form without decoding it with
//! [`Embedding::cosine_bytes`].
//!
//! ```
//! use recall_memory::embed::{Embedding, ModelTag};
//!
//! let model = ModelTag::of("example-model");
//! let a = Embedding::new(model, vec![1.0, 2.0, 2.0]).unwrap();
//! let b = Embedding::new(model, vec![2.0, 4.0, 4.0]).unwrap();
//! assert!((a.cosine(&b).unwrap() - 1.0).abs() < 1e-6);
//!
//! // The stored form round-trips within 8-bit precision.
//! let stored = a.to_bytes();
//! let back = Embedding::from_bytes(&stored).unwrap();
//! assert!((a.cosine(&back).unwrap() - 1.0).abs() < 1e-3);
//! assert!((a.cosine_bytes(&stored).unwrap() - 1.0).abs() < 1e-3);
//! ```

use std::sync::Arc;

use crate::store::{BoxError, Cause};

/// A short fingerprint of an embedding model's identity (its id string),
/// stored with every vector so that vectors of different models are never
/// compared.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ModelTag(u32);

impl ModelTag {
    /// The tag of the model called `id` (FNV-1a of the id's bytes).
    pub const fn of(id: &str) -> Self {
        let bytes = id.as_bytes();
        let mut hash: u32 = 0x811c_9dc5;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u32;
            hash = hash.wrapping_mul(0x0100_0193);
            i += 1;
        }
        Self(hash)
    }

    /// The tag as a number (what stores persist).
    pub const fn get(self) -> u32 {
        self.0
    }

    /// A tag read back from storage.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }
}

/// Why bytes are not a stored embedding, or values not an embedding.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddingError {
    /// The vector has no values, a value that is not finite, or only zeros.
    #[error("embedding: must have at least one finite, non-zero value")]
    Degenerate,
    /// The stored form is cut short, of another version, or inconsistent.
    #[error("embedding: not a stored embedding ({0})")]
    Corrupt(&'static str),
}

/// A unit-length text embedding made by one model.
///
/// Cloning is cheap (the values are shared).
#[derive(Clone, PartialEq, Debug)]
pub struct Embedding {
    model: ModelTag,
    values: Arc<[f32]>,
}

/// First byte of the stored form, and its version.
const MAGIC: u8 = b'E';
const VERSION: u8 = 1;
/// Bytes before the values: magic, version, tag (4), dims (2), scale (4).
const HEADER: usize = 12;

impl Embedding {
    /// An embedding of `model` with the direction of `values` (scaled to
    /// unit length).
    pub fn new(model: ModelTag, mut values: Vec<f32>) -> Result<Self, EmbeddingError> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return Err(EmbeddingError::Degenerate);
        }
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err(EmbeddingError::Degenerate);
        }
        for v in &mut values {
            *v /= norm;
        }
        Ok(Self {
            model,
            values: values.into(),
        })
    }

    /// The model that made it.
    pub fn model(&self) -> ModelTag {
        self.model
    }

    /// How many dimensions it has.
    pub fn dims(&self) -> usize {
        self.values.len()
    }

    /// The unit-length values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The cosine similarity (−1 to 1) with `other`, or `None` when they
    /// were made by different models or have different dimensions.
    pub fn cosine(&self, other: &Embedding) -> Option<f32> {
        if self.model != other.model || self.values.len() != other.values.len() {
            return None;
        }
        Some(dot(&self.values, &other.values))
    }

    /// The compact stored form: a header (version, model tag, dimensions,
    /// scale) and one signed byte per dimension.
    pub fn to_bytes(&self) -> Vec<u8> {
        let max = self.values.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        let dims = u16::try_from(self.values.len()).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(HEADER + self.values.len());
        out.push(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.model.0.to_le_bytes());
        out.extend_from_slice(&dims.to_le_bytes());
        out.extend_from_slice(&scale.to_le_bytes());
        out.extend(
            self.values
                .iter()
                .take(usize::from(dims))
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8 as u8),
        );
        out
    }

    /// Reads the stored form of [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmbeddingError> {
        let (model, scale, values) = parse(bytes)?;
        let values: Vec<f32> = values.iter().map(|b| f32::from(*b as i8) * scale).collect();
        Self::new(model, values).map_err(|_| EmbeddingError::Corrupt("all values are zero"))
    }

    /// The model tag of a stored form, without reading its values.
    pub fn model_of_bytes(bytes: &[u8]) -> Result<ModelTag, EmbeddingError> {
        parse(bytes).map(|(model, _, _)| model)
    }

    /// The cosine similarity with a stored form, without decoding it;
    /// `None` when the stored form is of another model or dimension, or
    /// unreadable.
    pub fn cosine_bytes(&self, stored: &[u8]) -> Option<f32> {
        let (model, _scale, values) = parse(stored).ok()?;
        if model != self.model || values.len() != self.values.len() {
            return None;
        }
        let mut sum = 0.0_f32;
        let mut norm = 0.0_f32;
        for (q, b) in self.values.iter().zip(values) {
            let v = f32::from(*b as i8);
            sum += q * v;
            norm += v * v;
        }
        // The scale cancels out; rounding to bytes changes the length a
        // little, so divide the stored length out (a stored vector
        // compared with itself scores 1).
        (norm > 0.0).then(|| sum / norm.sqrt())
    }
}

impl Embedding {
    /// This embedding prepared for comparing with many stored forms
    /// quickly (a scan of a caller's vectors): quantized once, compared in
    /// integer arithmetic. Its cosines differ from
    /// [`cosine_bytes`](Self::cosine_bytes) by the query's rounding, well
    /// under 0.01.
    pub fn probe(&self) -> Probe {
        let max = self.values.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { 127.0 / max } else { 1.0 };
        let values: Vec<i16> = self
            .values
            .iter()
            .map(|v| (v * scale).round().clamp(-127.0, 127.0) as i16)
            .collect();
        let norm = (values.iter().map(|v| i32::from(*v).pow(2)).sum::<i32>() as f32).sqrt();
        Probe {
            model: self.model,
            values,
            norm,
        }
    }
}

/// An [`Embedding`] prepared for fast comparisons with stored forms
/// ([`Embedding::probe`]).
#[derive(Clone, Debug)]
pub struct Probe {
    model: ModelTag,
    values: Vec<i16>,
    norm: f32,
}

impl Probe {
    /// The cosine similarity with a stored form; `None` when it is of
    /// another model or dimension, or unreadable.
    pub fn cosine(&self, stored: &[u8]) -> Option<f32> {
        let (model, _scale, values) = parse(stored).ok()?;
        if model != self.model || values.len() != self.values.len() || self.norm == 0.0 {
            return None;
        }
        // Sixteen lanes of 16-bit products summed in 32 bits: the form
        // compilers turn into multiply-add vector instructions.
        let (mut dot, mut norm) = ([0_i32; 16], [0_i32; 16]);
        let q_chunks = self.values.chunks_exact(16);
        let v_chunks = values.chunks_exact(16);
        let (q_rest, v_rest) = (q_chunks.remainder(), v_chunks.remainder());
        for (q, v) in q_chunks.zip(v_chunks) {
            for (((d, n), q), v) in dot.iter_mut().zip(norm.iter_mut()).zip(q).zip(v) {
                let x = i32::from(*v as i8);
                *d += i32::from(*q) * x;
                *n += x * x;
            }
        }
        let mut dot: i32 = dot.iter().sum();
        let mut norm: i32 = norm.iter().sum();
        for (q, v) in q_rest.iter().zip(v_rest) {
            let x = i32::from(*v as i8);
            dot += i32::from(*q) * x;
            norm += x * x;
        }
        (norm > 0).then(|| dot as f32 / (self.norm * (norm as f32).sqrt()))
    }
}

fn parse(bytes: &[u8]) -> Result<(ModelTag, f32, &[u8]), EmbeddingError> {
    if bytes.len() < HEADER {
        return Err(EmbeddingError::Corrupt("shorter than its header"));
    }
    if bytes[0] != MAGIC || bytes[1] != VERSION {
        return Err(EmbeddingError::Corrupt("unknown format or version"));
    }
    let model = ModelTag(u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]));
    let dims = usize::from(u16::from_le_bytes([bytes[6], bytes[7]]));
    let scale = f32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let values = &bytes[HEADER..];
    if values.len() != dims || dims == 0 {
        return Err(EmbeddingError::Corrupt(
            "length does not match its dimensions",
        ));
    }
    if !scale.is_finite() || scale <= 0.0 {
        return Err(EmbeddingError::Corrupt("scale is not a positive number"));
    }
    Ok((model, scale, values))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Why a text could not be embedded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The model failed on this input (a bug or a damaged model).
    #[error("embedding model failed: {reason}{}", Cause(.source))]
    Model {
        /// What failed, in words.
        reason: String,
        /// The underlying error (the tokenizer's, the runtime's, ...), if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl EmbedError {
    /// [`EmbedError::Model`] without a source (yet).
    pub fn model(reason: impl Into<String>) -> Self {
        Self::Model {
            reason: reason.into(),
            source: None,
        }
    }

    /// Keeps `source` as the cause; the message then ends with `: {source}`.
    #[must_use]
    pub fn with_source(self, source: impl Into<BoxError>) -> Self {
        match self {
            Self::Model { reason, .. } => Self::Model {
                reason,
                source: Some(source.into()),
            },
        }
    }
}

/// Turns text into [`Embedding`]s, locally: no network, ever.
///
/// Implementations are cheap to share (`Arc<dyn Embedder>`). The service
/// embeds each memory once, when the worker writes it, and each question
/// once, when the memory tool asks it.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// The model's identity, e.g. `all-minilm-l6-v2/static-256`; vectors
    /// are tagged with [`ModelTag::of`] of it.
    fn model_id(&self) -> &str;

    /// The tag of every embedding this embedder makes.
    fn tag(&self) -> ModelTag {
        ModelTag::of(self.model_id())
    }

    /// How many dimensions its embeddings have.
    fn dims(&self) -> usize;

    /// Whether one embedding costs so little (microseconds) that it may
    /// run on an async task; when `false`, callers move the work to a
    /// blocking thread.
    fn is_cheap(&self) -> bool;

    /// The embedding of `text`. A text with nothing the model knows (empty,
    /// emoji only, another script) still gets an embedding.
    fn embed(&self, text: &str) -> Result<Embedding, EmbedError>;

    /// The embeddings of `texts`, in order. The default embeds them one by
    /// one; models that batch should override it.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbedError> {
        texts.iter().map(|t| self.embed(t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_and_degenerate_ones_refused() {
        let tag = ModelTag::of("m");
        let e = Embedding::new(tag, vec![3.0, 4.0]).unwrap();
        assert_eq!(e.values(), &[0.6, 0.8]);
        assert_eq!(
            Embedding::new(tag, vec![]).unwrap_err(),
            EmbeddingError::Degenerate
        );
        assert_eq!(
            Embedding::new(tag, vec![0.0, 0.0]).unwrap_err(),
            EmbeddingError::Degenerate
        );
        assert_eq!(
            Embedding::new(tag, vec![f32::NAN, 1.0]).unwrap_err(),
            EmbeddingError::Degenerate
        );
    }

    #[test]
    fn different_models_are_never_compared() {
        let a = Embedding::new(ModelTag::of("a"), vec![1.0, 0.0]).unwrap();
        let b = Embedding::new(ModelTag::of("b"), vec![1.0, 0.0]).unwrap();
        assert_eq!(a.cosine(&b), None);
        assert_eq!(a.cosine_bytes(&b.to_bytes()), None);
        let short = Embedding::new(ModelTag::of("a"), vec![1.0]).unwrap();
        assert_eq!(a.cosine(&short), None);
    }

    #[test]
    fn stored_form_is_checked() {
        let e = Embedding::new(ModelTag::of("a"), vec![0.1, -0.7, 0.2]).unwrap();
        let bytes = e.to_bytes();
        assert_eq!(bytes.len(), HEADER + 3);
        assert_eq!(Embedding::model_of_bytes(&bytes).unwrap(), e.model());
        assert!(Embedding::from_bytes(&bytes[..5]).is_err());
        assert!(Embedding::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut other = bytes.clone();
        other[1] = 9;
        assert!(Embedding::from_bytes(&other).is_err());
        let back = Embedding::from_bytes(&bytes).unwrap();
        for (a, b) in e.values().iter().zip(back.values()) {
            assert!((a - b).abs() < 0.01, "{a} vs {b}");
        }
    }

    #[test]
    fn a_probe_agrees_with_the_exact_cosine() {
        let tag = ModelTag::of("m");
        let a = Embedding::new(tag, (0..256).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
        let b = Embedding::new(tag, (0..256).map(|i| (i as f32 * 0.11).cos()).collect()).unwrap();
        let exact = a.cosine(&b).unwrap();
        let probed = a.probe().cosine(&b.to_bytes()).unwrap();
        assert!((exact - probed).abs() < 0.01, "{exact} vs {probed}");
        assert!((a.probe().cosine(&a.to_bytes()).unwrap() - 1.0).abs() < 1e-3);
        let other = Embedding::new(ModelTag::of("n"), vec![1.0; 256]).unwrap();
        assert_eq!(a.probe().cosine(&other.to_bytes()), None);
    }

    #[test]
    fn cosine_of_stored_form_matches_the_exact_one() {
        let tag = ModelTag::of("m");
        let a = Embedding::new(tag, (0..64).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
        let b = Embedding::new(tag, (0..64).map(|i| (i as f32 * 0.11).cos()).collect()).unwrap();
        let exact = a.cosine(&b).unwrap();
        let stored = a.cosine_bytes(&b.to_bytes()).unwrap();
        assert!((exact - stored).abs() < 0.01, "{exact} vs {stored}");
    }
}
