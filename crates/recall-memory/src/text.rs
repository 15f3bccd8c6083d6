//! Pure text helpers for stores that rank memories themselves: turning
//! text into search terms and scoring documents against a query (BM25).
//!
//! [`InMemoryStore`](crate::InMemoryStore) ranks with these, and any other
//! store that searches locally may use them to rank the same way.
//!
//! ```
//! use recall_memory::text::{Bm25, terms};
//!
//! let docs = [
//!     terms("Caller is refinancing their mortgage"),
//!     terms("Caller's dog is called Biscuit"),
//! ];
//! let query = terms("refinance");
//! let scores = Bm25::new(&docs).scores(&query);
//! assert!(scores[0] > 0.0);
//! assert_eq!(scores[1], 0.0);
//! ```

/// Words too common to say anything about which memory is relevant.
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from",
    "had", "has", "have", "he", "her", "his", "how", "i", "in", "is", "it", "its", "me", "my",
    "of", "on", "or", "our", "s", "she", "so", "that", "the", "their", "them", "they", "this",
    "to", "was", "we", "were", "what", "when", "where", "which", "who", "why", "with", "you",
    "your",
];

/// Suffixes stripped by [`stem`], longest first.
const SUFFIXES: &[&str] = &[
    "ingly", "edly", "ings", "ing", "ies", "ed", "es", "s", "e", "ly", "y",
];

/// Shortest stem left after stripping a suffix.
const MIN_STEM: usize = 3;

/// Shortest query term that also matches longer words it begins (so
/// `refi` finds `refinancing`).
const MIN_PREFIX: usize = 4;

/// Fewest digits for a punctuated number's digits to be joined into one
/// more term (so `3.5` stays `3` and `5`, while `978-2029` also gives
/// `9782029`).
const MIN_NUMBER_DIGITS: usize = 5;

/// Weight of a prefix match relative to a whole-term match.
const PREFIX_WEIGHT: f64 = 0.6;

/// A light English stemmer: strips one common suffix (`-ing`, `-ed`, `-es`,
/// `-s`, `-e`, `-ly`, ...) when at least three characters remain, so that
/// `refinance`, `refinanced` and `refinancing` share the stem `refinanc`.
/// Words of digits are left alone.
///
/// ```
/// use recall_memory::text::stem;
/// assert_eq!(stem("refinancing"), stem("refinance"));
/// assert_eq!(stem("mortgages"), stem("mortgage"));
/// assert_eq!(stem("2029"), "2029");
/// ```
pub fn stem(word: &str) -> &str {
    if word.bytes().all(|b| b.is_ascii_digit()) {
        return word;
    }
    for suffix in SUFFIXES {
        if let Some(stem) = word.strip_suffix(suffix)
            && stem.chars().count() >= MIN_STEM
        {
            return stem;
        }
    }
    word
}

/// Whether `chunk` (no white space) looks like a phone number or another
/// punctuated number, e.g. `+1-612-978-2029` or `(612)`.
fn is_number_like(chunk: &str) -> bool {
    chunk.bytes().any(|b| b.is_ascii_digit())
        && chunk
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-().".contains(&b))
}

/// The search terms of `text`: lowercase, split on anything that is not a
/// letter or digit, common stop words removed, each word stemmed with
/// [`stem`]. A run of numbers written with phone punctuation (`+1 (612)
/// 978-2029`) also yields its digits joined (`16129782029`), so a number
/// matches however it was written.
///
/// ```
/// use recall_memory::text::terms;
/// assert_eq!(terms("What is the caller's first_name?"), ["caller", "first", "nam"]);
/// assert!(terms("call +1 (612) 978-2029").contains(&"16129782029".to_owned()));
/// assert!(terms("call 612.978.2029").contains(&"6129782029".to_owned()));
/// ```
pub fn terms(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut number = String::new();
    let mut number_parts = 0usize;
    for chunk in lower.split_whitespace() {
        if is_number_like(chunk) {
            number.extend(chunk.chars().filter(char::is_ascii_digit));
            number_parts += 1;
        } else {
            flush_number(&mut out, &mut number, &mut number_parts);
        }
        for word in chunk.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() || STOP_WORDS.contains(&word) {
                continue;
            }
            out.push(stem(word).to_owned());
        }
    }
    flush_number(&mut out, &mut number, &mut number_parts);
    out
}

/// Emits the joined digits of a punctuated or multi-part number, if they
/// are not already a single term.
fn flush_number(out: &mut Vec<String>, number: &mut String, parts: &mut usize) {
    let joined = std::mem::take(number);
    let was_split = *parts > 1 || out.last().is_none_or(|last| *last != joined);
    if joined.len() >= MIN_NUMBER_DIGITS && was_split && !out.contains(&joined) {
        out.push(joined);
    }
    *parts = 0;
}

/// How well `query_term` matches `doc_term`: 1.0 for the same term,
/// a lesser weight when the query term (of at least four characters) begins
/// the document term, else 0.0.
pub fn term_match(query_term: &str, doc_term: &str) -> f64 {
    if query_term == doc_term {
        1.0
    } else if query_term.chars().count() >= MIN_PREFIX && doc_term.starts_with(query_term) {
        PREFIX_WEIGHT
    } else {
        0.0
    }
}

/// Okapi BM25 over a fixed set of documents, each given as its [`terms`].
#[derive(Debug)]
pub struct Bm25<'a> {
    docs: &'a [Vec<String>],
    avg_len: f64,
}

impl<'a> Bm25<'a> {
    /// Term saturation.
    const K1: f64 = 1.2;
    /// Length normalisation.
    const B: f64 = 0.75;

    /// Prepares scoring over `docs`.
    pub fn new(docs: &'a [Vec<String>]) -> Self {
        let total: usize = docs.iter().map(Vec::len).sum();
        let avg_len = if docs.is_empty() {
            0.0
        } else {
            total as f64 / docs.len() as f64
        };
        Self { docs, avg_len }
    }

    /// Each document's score for `query` (terms as given by [`terms`];
    /// repeated terms count once), in document order. A document that
    /// matches no query term scores exactly 0.0; every other score is
    /// positive.
    pub fn scores(&self, query: &[String]) -> Vec<f64> {
        let mut distinct: Vec<&str> = query.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let n = self.docs.len() as f64;
        let mut scores = vec![0.0; self.docs.len()];
        for q in distinct {
            let tfs: Vec<f64> = self
                .docs
                .iter()
                .map(|doc| doc.iter().map(|t| term_match(q, t)).sum())
                .collect();
            let df = tfs.iter().filter(|tf| **tf > 0.0).count() as f64;
            if df == 0.0 {
                continue;
            }
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for ((score, tf), doc) in scores.iter_mut().zip(&tfs).zip(self.docs) {
                if *tf > 0.0 {
                    let len_norm = if self.avg_len > 0.0 {
                        1.0 - Self::B + Self::B * doc.len() as f64 / self.avg_len
                    } else {
                        1.0
                    };
                    *score += idf * tf * (Self::K1 + 1.0) / (tf + Self::K1 * len_norm);
                }
            }
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<String> {
        terms(s)
    }

    #[test]
    fn stemming_joins_word_forms_and_keeps_short_words() {
        assert_eq!(stem("rates"), stem("rate"));
        assert_eq!(stem("called"), stem("calling"));
        assert_eq!(stem("was"), "was");
        assert_eq!(stem("dogs"), "dog");
    }

    #[test]
    fn terms_drop_stop_words_and_punctuation() {
        assert_eq!(t("The DOG, and the cat!"), ["dog", "cat"]);
        assert!(t("  ...  ").is_empty());
        assert!(t("what is it").is_empty());
    }

    #[test]
    fn phone_numbers_match_however_written() {
        let written = t("Call back on +44 20 7946 0958 after five");
        assert!(written.contains(&"442079460958".to_owned()), "{written:?}");
        let plain = t("+442079460958");
        assert!(plain.iter().any(|q| written.contains(q)), "{plain:?}");
        // A lone plain number is one term, not two.
        assert_eq!(t("room 101"), ["room", "101"]);
    }

    #[test]
    fn non_ascii_text_is_lowercased_and_split_on_letters() {
        assert_eq!(t("Zoë's CAFÉ, São Paulo"), ["zoë", "café", "são", "paulo"]);
        assert_eq!(t("größe"), ["größ"]);
        // Two two-byte letters are not long enough to be a prefix.
        assert_eq!(term_match("éé", "ééclair"), 0.0);
        assert!(term_match("café", "caféteria") > 0.0);
    }

    #[test]
    fn short_punctuated_numbers_are_not_joined() {
        assert_eq!(t("rate 3.5"), ["rat", "3", "5"]);
        assert_eq!(t("call 978-2029"), ["call", "978", "2029", "9782029"]);
    }

    #[test]
    fn prefix_matches_score_less_than_whole_terms() {
        assert_eq!(term_match("refinanc", "refinanc"), 1.0);
        assert!(term_match("refi", "refinanc") > 0.0);
        assert!(term_match("refi", "refinanc") < 1.0);
        assert_eq!(term_match("ref", "refinanc"), 0.0);
        assert_eq!(term_match("dog", "biscuit"), 0.0);
    }

    #[test]
    fn bm25_prefers_documents_matching_more_and_rarer_terms() {
        let docs = [
            t("mortgage refinance rates"),
            t("mortgage payment due"),
            t("dog named Biscuit"),
        ];
        let scores = Bm25::new(&docs).scores(&t("refinance mortgage"));
        assert!(scores[0] > scores[1], "{scores:?}");
        assert!(scores[1] > 0.0);
        assert_eq!(scores[2], 0.0);
    }

    #[test]
    fn bm25_of_no_documents_or_no_terms_is_empty_or_zero() {
        assert!(Bm25::new(&[]).scores(&t("anything")).is_empty());
        let docs = [t("something")];
        assert_eq!(Bm25::new(&docs).scores(&[]), [0.0]);
    }
}
