//! [`StaticEmbedder`]: a sentence embedding as the weighted mean of token
//! vectors read from a table, in microseconds.

use std::path::{Path, PathBuf};

use recall_memory::embed::{EmbedError, Embedder, Embedding, ModelTag};
use tokenizers::Tokenizer;

use crate::LoadError;
use crate::table::Table;

/// The file name of a static table in a model directory.
pub const TABLE_FILE: &str = "static-table.bin";
/// The file name of the tokenizer in a model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// The default model's table and tokenizer, shipped in the crate
/// (`model/`, with their licence and the command that regenerates them).
static DEFAULT_TABLE: &[u8] = include_bytes!("../model/static-table.bin");
static DEFAULT_TOKENIZER: &[u8] = include_bytes!("../model/tokenizer.json");

/// A static embedding model: every token (and each whole word the table
/// knows) has one vector, distilled from a sentence transformer; a text's
/// embedding is the mean of its tokens' vectors.
///
/// No network and no matrix products: embedding a question takes a few
/// microseconds, so it runs inline on the request's task.
///
/// ```
/// use recall_embed::StaticEmbedder;
/// use recall_memory::embed::Embedder;
///
/// let model = StaticEmbedder::default_model()?;
/// let question = model.embed("what was wrong with her flowers")?;
/// let roses = model.embed("Margaret asked how to treat black spot on her roses.")?;
/// let loan = model.embed("The caller asked to refinance the mortgage on the house.")?;
/// assert!(question.cosine(&roses) > question.cosine(&loan));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StaticEmbedder {
    tokenizer: Tokenizer,
    table: Table,
    tag: ModelTag,
    /// Whole words beyond the vocabulary, sorted, with their rows.
    words: Vec<(String, u32)>,
    unknown_row: usize,
    source: Option<PathBuf>,
}

impl std::fmt::Debug for StaticEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticEmbedder")
            .field("model_id", &self.table.model_id)
            .field("dims", &self.table.dims)
            .field("rows", &self.table.rows())
            .field("source", &self.source)
            .finish()
    }
}

impl StaticEmbedder {
    /// The default model, shipped in the crate: all-MiniLM-L6-v2 distilled
    /// into a static table.
    pub fn default_model() -> Result<Self, LoadError> {
        let path = PathBuf::from("<built in>");
        let tokenizer = Tokenizer::from_bytes(DEFAULT_TOKENIZER)
            .map_err(|e| LoadError::corrupt_by(&path, "tokenizer", e))?;
        let table = Table::from_bytes(DEFAULT_TABLE).map_err(|e| LoadError::corrupt(&path, e))?;
        Self::build(tokenizer, table, None)
    }

    /// A static model from a directory holding [`TABLE_FILE`] and
    /// [`TOKENIZER_FILE`] (what `recall-distill` writes).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, LoadError> {
        let dir = dir.as_ref();
        let table_path = dir.join(TABLE_FILE);
        let bytes = std::fs::read(&table_path).map_err(|e| LoadError::io(&table_path, e))?;
        let table = Table::from_bytes(&bytes).map_err(|e| LoadError::corrupt(&table_path, e))?;
        let tokenizer = crate::load_tokenizer(&dir.join(TOKENIZER_FILE))?;
        Self::build(tokenizer, table, Some(dir.to_path_buf()))
    }

    fn build(
        mut tokenizer: Tokenizer,
        table: Table,
        source: Option<PathBuf>,
    ) -> Result<Self, LoadError> {
        let where_ = source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<built in>"));
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| LoadError::corrupt_by(&where_, "tokenizer", e))?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab != table.first_word_row() {
            return Err(LoadError::corrupt(
                &where_,
                format!(
                    "the table has {} token rows but the tokenizer {vocab} tokens: they are not of the same model",
                    table.first_word_row()
                ),
            ));
        }
        let unknown_row = tokenizer
            .token_to_id("[UNK]")
            .map(|id| id as usize)
            .filter(|id| *id < vocab)
            .unwrap_or(0);
        let first = table.first_word_row() as u32;
        let mut words: Vec<(String, u32)> = table
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), first + i as u32))
            .collect();
        words.sort();
        let tag = ModelTag::of(&table.model_id);
        Ok(Self {
            tokenizer,
            table,
            tag,
            words,
            unknown_row,
            source,
        })
    }

    fn word_row(&self, word: &str) -> Option<usize> {
        self.words
            .binary_search_by(|(w, _)| w.as_str().cmp(word))
            .ok()
            .map(|i| self.words[i].1 as usize)
    }

    /// The rows a text is made of: a whole word's row where the table has
    /// it, else its word pieces.
    fn rows(&self, text: &str) -> Result<Vec<usize>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| EmbedError::model("tokenizer").with_source(e))?;
        if self.words.is_empty() {
            return Ok(encoding.get_ids().iter().map(|id| *id as usize).collect());
        }
        Ok(rows_of(&encoding, |word| self.word_row(word)))
    }
}

/// The table rows of an encoded text (without special tokens): the row
/// `word_row` gives for a word split into pieces, where it gives one,
/// else each piece's token row. The static model and the distillation's
/// fit read texts the same way through this.
pub(crate) fn rows_of(
    encoding: &tokenizers::Encoding,
    word_row: impl Fn(&str) -> Option<usize>,
) -> Vec<usize> {
    let ids = encoding.get_ids();
    let word_ids = encoding.get_word_ids();
    let tokens = encoding.get_tokens();
    let mut rows = Vec::with_capacity(ids.len());
    let mut i = 0;
    while i < ids.len() {
        // The pieces of one word share its word id.
        let mut end = i + 1;
        while end < ids.len() && word_ids[end].is_some() && word_ids[end] == word_ids[i] {
            end += 1;
        }
        let whole = (end - i > 1)
            .then(|| {
                let word: String = tokens[i..end]
                    .iter()
                    .map(|t| t.strip_prefix("##").unwrap_or(t))
                    .collect();
                word_row(&word)
            })
            .flatten();
        match whole {
            Some(row) => rows.push(row),
            None => rows.extend(ids[i..end].iter().map(|id| *id as usize)),
        }
        i = end;
    }
    rows
}

impl Embedder for StaticEmbedder {
    fn model_id(&self) -> &str {
        &self.table.model_id
    }

    fn tag(&self) -> ModelTag {
        self.tag
    }

    fn dims(&self) -> usize {
        self.table.dims
    }

    fn is_cheap(&self) -> bool {
        true
    }

    fn embed(&self, text: &str) -> Result<Embedding, EmbedError> {
        let mut rows = self.rows(text)?;
        rows.retain(|r| *r < self.table.rows());
        if rows.is_empty() {
            rows.push(self.unknown_row);
        }
        let mut acc = vec![0.0_f32; self.table.dims];
        for row in &rows {
            self.table.accumulate(*row, 1.0, &mut acc);
        }
        Embedding::new(self.tag, acc).or_else(|_| {
            // Every row was zero (e.g. only padding): the unknown token's.
            let mut acc = vec![0.0_f32; self.table.dims];
            self.table.accumulate(self.unknown_row, 1.0, &mut acc);
            acc[0] += f32::EPSILON;
            Embedding::new(self.tag, acc)
                .map_err(|e| EmbedError::model("unusable output").with_source(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_word_reads_as_its_own_row_where_the_table_has_one() {
        let mut tokenizer = Tokenizer::from_bytes(DEFAULT_TOKENIZER).unwrap();
        tokenizer.with_padding(None);
        let word = tokenizer.encode("warfarin", false).unwrap().get_ids().len();
        assert!(word > 1, "warfarin should be split into pieces");
        let encoding = tokenizer.encode("takes warfarin daily", false).unwrap();
        let pieces = rows_of(&encoding, |_| None);
        assert_eq!(pieces.len(), encoding.get_ids().len());
        let whole = rows_of(&encoding, |w| (w == "warfarin").then_some(99_999));
        assert_eq!(whole.len(), pieces.len() - word + 1);
        assert!(whole.contains(&99_999));
    }
}
