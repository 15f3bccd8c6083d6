//! BM25 over one caller's memories, to choose a large caller's word-match
//! candidates (each term's document frequency counted in that caller's
//! memories only, term frequency one). The final order is the shared
//! ranking's ([`recall_memory::rank`]).

/// BM25's term-frequency saturation (unused with tf = 1 except in the
/// length normalisation's numerator).
pub(crate) const K1: f64 = 1.2;
/// BM25's length normalisation.
pub(crate) const B: f64 = 0.5;
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
}
