//! [`TransformerEmbedder`]: the full sentence transformer (BERT, mean
//! pooling, unit length) run on the CPU with candle.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use recall_memory::embed::{EmbedError, Embedder, Embedding, ModelTag};
use tokenizers::{Tokenizer, TruncationParams};

use crate::LoadError;

/// The weights file of a sentence-transformers model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The model configuration file of such a directory.
pub const CONFIG_FILE: &str = "config.json";

/// The longest input, in tokens, the model reads (all-MiniLM-L6-v2 was
/// trained on 256; the rest of a longer text is not read).
const MAX_TOKENS: usize = 256;

/// A BERT sentence transformer such as all-MiniLM-L6-v2, loaded from a
/// sentence-transformers model directory (`model.safetensors`,
/// `config.json`, `tokenizer.json`), with mean pooling over the tokens
/// and unit-length output, as sentence-transformers computes it.
///
/// Several milliseconds per text on a CPU core: callers run it on a
/// blocking thread ([`Embedder::is_cheap`] is `false`).
pub struct TransformerEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    model_id: String,
    tag: ModelTag,
    dims: usize,
    source: PathBuf,
}

impl std::fmt::Debug for TransformerEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformerEmbedder")
            .field("model_id", &self.model_id)
            .field("dims", &self.dims)
            .field("source", &self.source)
            .finish()
    }
}

impl TransformerEmbedder {
    /// Loads the model in `dir`. The model id is `<dir name>/transformer`
    /// unless `model_id` is given.
    pub fn open(dir: impl AsRef<Path>, model_id: Option<&str>) -> Result<Self, LoadError> {
        let dir = dir.as_ref();
        let config_path = dir.join(CONFIG_FILE);
        let raw =
            std::fs::read_to_string(&config_path).map_err(|e| LoadError::io(&config_path, e))?;
        let config: Config = serde_json::from_str(&raw)
            .map_err(|e| LoadError::corrupt_by(&config_path, "not a BERT config", e))?;
        let mut tokenizer = crate::load_tokenizer(&dir.join(crate::TOKENIZER_FILE))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| LoadError::corrupt_by(dir, "tokenizer", e))?;
        let weights = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&weights).map_err(|e| LoadError::io(&weights, e))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
            .map_err(|e| LoadError::corrupt_by(&weights, "unreadable weights", e))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| LoadError::corrupt_by(&weights, "not a BERT model", e))?;
        let model_id = model_id.map(str::to_owned).unwrap_or_else(|| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            format!("{name}/transformer")
        });
        let embedder = Self {
            model,
            tokenizer,
            tag: ModelTag::of(&model_id),
            model_id,
            dims: config.hidden_size,
            source: dir.to_path_buf(),
        };
        // A damaged model fails here, at start-up, not on the first call.
        embedder
            .embed("start-up check")
            .map_err(|e| LoadError::corrupt_by(dir, "start-up check failed", e))?;
        Ok(embedder)
    }

    /// The mean-pooled outputs for a batch of token id sequences (padded
    /// with zeros and masked), not yet unit length.
    pub(crate) fn forward(&self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let fail = |e: candle_core::Error| EmbedError::model("forward pass").with_source(e);
        let longest = batch.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for seq in batch {
            ids.extend_from_slice(seq);
            ids.extend(std::iter::repeat_n(0, longest - seq.len()));
            mask.extend(std::iter::repeat_n(1u32, seq.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - seq.len()));
        }
        let shape = (batch.len(), longest);
        let ids = Tensor::from_vec(ids, shape, &Device::Cpu).map_err(fail)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu).map_err(fail)?;
        let types = ids.zeros_like().map_err(fail)?;
        let out = self
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(fail)?;
        // Mean over the real tokens only.
        let maskf = mask
            .to_dtype(DType::F32)
            .and_then(|m| m.unsqueeze(2))
            .map_err(fail)?;
        let summed = out
            .broadcast_mul(&maskf)
            .and_then(|x| x.sum(1))
            .map_err(fail)?;
        let counts = maskf.sum(1).map_err(fail)?;
        let mean = summed.broadcast_div(&counts).map_err(fail)?;
        mean.to_vec2::<f32>().map_err(fail)
    }

    fn ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| EmbedError::model("tokenizer").with_source(e))
    }

    /// The tokenizer (for the distillation).
    #[cfg(feature = "distill")]
    pub(crate) fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

impl Embedder for TransformerEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn tag(&self) -> ModelTag {
        self.tag
    }

    fn dims(&self) -> usize {
        self.dims
    }

    fn is_cheap(&self) -> bool {
        false
    }

    fn embed(&self, text: &str) -> Result<Embedding, EmbedError> {
        let ids = self.ids(text)?;
        let mut out = self.forward(&[ids])?;
        let values = out.pop().unwrap_or_default();
        Embedding::new(self.tag, values)
            .map_err(|e| EmbedError::model("unusable output").with_source(e))
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        // Similar lengths batch together with little padding.
        let mut order: Vec<(usize, Vec<u32>)> = texts
            .iter()
            .map(|t| self.ids(t))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .enumerate()
            .collect();
        order.sort_by_key(|(_, ids)| ids.len());
        let mut vectors: Vec<Option<Embedding>> = vec![None; texts.len()];
        for chunk in order.chunks(16) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|(_, ids)| ids.clone()).collect();
            for ((i, _), values) in chunk.iter().zip(self.forward(&batch)?) {
                vectors[*i] = Some(
                    Embedding::new(self.tag, values)
                        .map_err(|e| EmbedError::model("unusable output").with_source(e))?,
                );
            }
        }
        for v in vectors {
            out.push(v.ok_or_else(|| EmbedError::model("a batch lost a text"))?);
        }
        Ok(out)
    }
}
