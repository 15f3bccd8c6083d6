//! Related words from WordNet: a memory that says "warfarin" also holds,
//! more weakly, "anticoagulant"; one that says "boots" holds "footwear".
//! Questions often ask with a more general word, or a synonym, than the
//! memory uses.
//!
//! The table (`data/wordnet-related.tsv`, one `word<TAB>related words`
//! line per word, sorted) is derived from WordNet 3.0 by
//! `scripts/wordnet-related.py`: for each word's most frequent senses, the
//! other words of the sense and of its hypernyms two levels up, without
//! the most generic ones. WordNet's licence is in `data/WORDNET-LICENSE`.

use std::sync::OnceLock;

static TABLE: &str = include_str!("data/wordnet-related.tsv");

fn index() -> &'static [(&'static str, &'static str)] {
    static INDEX: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    INDEX.get_or_init(|| {
        TABLE
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .collect()
    })
}

fn lookup(word: &str) -> Option<&'static str> {
    let index = index();
    index
        .binary_search_by(|(w, _)| (*w).cmp(word))
        .ok()
        .map(|i| index[i].1)
}

/// The words related to `word` (lower case), trying its dictionary form
/// when it is inflected ("roses", "booked", "cancelling").
pub(crate) fn related(word: &str) -> Option<&'static str> {
    if word.len() < 3 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    if let Some(found) = lookup(word) {
        return Some(found);
    }
    let forms = [
        word.strip_suffix("ies").map(|s| format!("{s}y")),
        word.strip_suffix("es").map(str::to_owned),
        word.strip_suffix('s').map(str::to_owned),
        word.strip_suffix("ed").map(str::to_owned),
        word.strip_suffix('d').map(str::to_owned),
        word.strip_suffix("ing").map(str::to_owned),
        word.strip_suffix("ing").map(|s| format!("{s}e")),
    ];
    forms
        .into_iter()
        .flatten()
        .filter(|f| f.len() >= 3)
        .find_map(|f| lookup(&f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_finds_inflected_words() {
        let index = index();
        assert!(
            index.windows(2).all(|w| w[0].0 < w[1].0),
            "table must be sorted"
        );
        assert!(related("warfarin").unwrap().contains("anticoagulant"));
        assert!(related("boots").unwrap().contains("footwear"));
        assert!(related("tiramisu").unwrap().contains("dessert"));
        assert!(related("xyzzy").is_none());
        assert!(related("ab").is_none());
    }
}
