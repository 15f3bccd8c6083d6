//! Word-overlap relevance: BM25 over the candidates, normalized by the
//! best score the question could reach.

use crate::text::{stem, term_match, terms};

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// BM25's length normalisation.
const B: f64 = 0.5;

/// The lower-cased words of a question (letters and digits), in order.
pub(crate) fn question_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A document's terms: the stems of its words.
pub(crate) struct Document {
    own: Vec<String>,
}

impl Document {
    /// The document of `text`.
    pub(crate) fn new(text: &str) -> Self {
        Self { own: terms(text) }
    }

    /// How well the query term matches: 1 for one of its own words, less
    /// for a prefix.
    fn tf(&self, query_term: &str) -> f64 {
        self.own
            .iter()
            .map(|t| term_match(query_term, t))
            .fold(0.0, f64::max)
    }
}

/// The lexical relevance of each document to the query terms, from 0 (no
/// word shared) to 1 (every query term, in a short document).
pub(crate) fn relevance(query: &[String], docs: &[Document]) -> Vec<f64> {
    let mut distinct: Vec<&str> = query.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let n = docs.len() as f64;
    let mut scores = vec![0.0; docs.len()];
    if docs.is_empty() || distinct.is_empty() {
        return scores;
    }
    let avg_len = docs.iter().map(|d| d.own.len()).sum::<usize>() as f64 / n;
    let avg_len = if avg_len > 0.0 { avg_len } else { 1.0 };
    let mut best_possible = 0.0;
    for q in distinct {
        let tfs: Vec<f64> = docs.iter().map(|doc| doc.tf(q)).collect();
        let df = tfs.iter().filter(|tf| **tf > 0.0).count() as f64;
        // A term in no candidate still counts in the best possible score:
        // a question half of whose words match nothing is half answered.
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        best_possible += idf * (K1 + 1.0) / (1.0 + K1 * (1.0 - B));
        if df == 0.0 {
            continue;
        }
        for ((score, tf), doc) in scores.iter_mut().zip(&tfs).zip(docs) {
            if *tf > 0.0 {
                let tf = tf.min(1.0);
                let len_norm = 1.0 - B + B * doc.own.len() as f64 / avg_len;
                *score += idf * tf * (K1 + 1.0) / (tf + K1 * len_norm);
            }
        }
    }
    if best_possible > 0.0 {
        for s in &mut scores {
            *s = (*s / best_possible).min(1.0);
        }
    }
    scores
}

/// The query terms of some topic words: stemmed, without stop words.
pub(crate) fn query_terms<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
    let text: Vec<&str> = words.collect();
    terms(&text.join(" "))
}

/// The stems of a name, to drop from a question that merely mentions it.
pub(crate) fn name_stems(name: &str) -> Vec<String> {
    question_words(name)
        .iter()
        .map(|w| stem(w).to_owned())
        .collect()
}
