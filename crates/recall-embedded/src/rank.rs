//! The ranking formula (documented in `docs/embedded-store.md`).
//!
//! ```text
//! score = relevance × sector_weight × (FLOOR + (1 − FLOOR) × salience × decay)
//! ```
//!
//! * `relevance` ∈ (0, 1]: BM25 over the caller's own memories (each term's
//!   document frequency counted in that caller's memories only), with a
//!   term frequency of one, divided by the best score the query could
//!   reach, so that it is comparable across queries.
//! * `decay = exp(−λ · age in days)` with the memory's λ (0 = permanent).
//! * `FLOOR` keeps an old or unimportant memory that answers the question
//!   ahead of a fresh one that does not.

use recall_model::MemorySector;

/// BM25's term-frequency saturation (unused with tf = 1 except in the
/// length normalisation's numerator).
pub(crate) const K1: f64 = 1.2;
/// BM25's length normalisation.
pub(crate) const B: f64 = 0.5;
/// The share of the score that salience and decay cannot take away.
pub(crate) const FLOOR: f64 = 0.6;

/// How much a sector's memories weigh against the others.
pub(crate) fn sector_weight(sector: MemorySector) -> f64 {
    match sector {
        MemorySector::Semantic => 1.0,
        MemorySector::Episodic => 1.0,
        MemorySector::Procedural => 0.95,
        MemorySector::Emotional => 0.9,
        MemorySector::Reflective => 0.85,
    }
}

/// The largest [`sector_weight`].
pub(crate) const MAX_SECTOR_WEIGHT: f64 = 1.0;

/// BM25's inverse document frequency of a term found in `df` of `n`
/// memories (always positive).
pub(crate) fn idf(n: f64, df: f64) -> f64 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// The BM25 weight of one matched term in a memory of `len` words when
/// the caller's memories average `avg_len` words.
pub(crate) fn term_weight(idf: f64, len: f64, avg_len: f64) -> f64 {
    let avg = if avg_len > 0.0 { avg_len } else { 1.0 };
    idf * (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * len / avg))
}

/// The largest [`term_weight`] a term can reach (an empty memory).
pub(crate) fn max_term_weight(idf: f64) -> f64 {
    idf * (K1 + 1.0) / (1.0 + K1 * (1.0 - B))
}

/// The multiplier salience and decay give a memory.
pub(crate) fn importance(salience: f64, decay: f64) -> f64 {
    FLOOR + (1.0 - FLOOR) * salience * decay
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rarer_terms_weigh_more() {
        assert!(idf(100.0, 1.0) > idf(100.0, 50.0));
        assert!(idf(100.0, 100.0) > 0.0);
    }

    #[test]
    fn shorter_memories_weigh_more_and_never_pass_the_bound() {
        let i = idf(100.0, 3.0);
        assert!(term_weight(i, 5.0, 20.0) > term_weight(i, 40.0, 20.0));
        assert!(term_weight(i, 0.0, 20.0) <= max_term_weight(i) + 1e-12);
    }

    #[test]
    fn importance_keeps_a_floor() {
        assert_eq!(importance(0.0, 0.0), FLOOR);
        assert_eq!(importance(1.0, 1.0), 1.0);
        assert!(importance(0.9, 1.0) > importance(0.9, 0.5));
    }
}
