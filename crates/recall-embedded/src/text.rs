//! Turning text into index bodies and safe FTS5 queries.
//!
//! SQLite's `unicode61` tokenizer splits and folds words; this module
//! adds what it cannot: digit-only forms of phone-style numbers (so
//! `978-2029`, `9782029` and `2029` all find `+1 (612) 978-2029`), and a
//! query builder that never passes user text to FTS5 as syntax.

/// Words the query builder drops because nearly every memory or question
/// contains them. A query made only of such words keeps them.
const STOPWORDS: &[&str] = &[
    "a", "about", "all", "am", "an", "and", "any", "anything", "are", "as", "at", "be", "been",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he",
    "her", "hers", "him", "his", "how", "i", "if", "in", "is", "it", "its", "me", "my", "of", "on",
    "or", "our", "she", "so", "that", "the", "their", "them", "they", "this", "to", "us", "was",
    "we", "were", "what", "whats", "when", "where", "which", "who", "why", "will", "with", "would",
    "you", "your", "caller", "callers", "agent", "tell", "know", "remember", "ever", "there",
    "again", "some", "get", "got",
];

/// Question words and the words profile facts use for the same thing:
/// callers and agents ask "where does he live", the post-call flow writes
/// `Caller's city: Manchester`. A query holding a word on the left also
/// searches the words on the right.
const ALIASES: &[(&[&str], &[&str])] = &[
    (
        &["live", "lives", "living", "reside", "resides", "home"],
        &["city", "address"],
    ),
    (
        &["work", "works", "job", "employed", "company"],
        &["employer", "job", "work"],
    ),
    (&["drive", "drives", "driving", "car"], &["vehicle", "car"]),
    (
        &["phone", "reach", "contact"],
        &["number", "phone", "contact"],
    ),
    (
        &["born", "birthday", "age", "old"],
        &["birth", "birthday", "age"],
    ),
    (&["mail", "email"], &["email"]),
    (&["speak", "speaks", "language"], &["language"]),
    (
        &["kids", "children", "son", "daughter"],
        &["children", "kids", "son", "daughter"],
    ),
];

/// The most terms one query is split into; the rest are ignored.
pub(crate) const MAX_QUERY_TERMS: usize = 12;

/// Shortest digit-only form indexed as a phone-style token.
const MIN_PHONE_DIGITS: usize = 7;
/// Shortest suffix of a phone-style number that is indexed (last four).
const MIN_SUFFIX_DIGITS: usize = 4;
/// Longest run of digits treated as a phone number (E.164 maximum).
const MAX_PHONE_DIGITS: usize = 15;

/// Lower-cased runs of letters and digits, in order.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Digit groups separated only by phone punctuation (space, `-`, `.`,
/// `(`, `)`, `/`, `+`), joined: `+1 (612) 978-2029` gives
/// `16129782029`. Groups that join to fewer than two digits are skipped.
fn joined_digit_groups(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut groups = 0usize;
    let mut in_digits = false;
    let mut flush = |current: &mut String, groups: &mut usize| {
        if *groups > 0 && current.len() >= 2 {
            out.push(std::mem::take(current));
        }
        current.clear();
        *groups = 0;
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                groups += 1;
            }
            in_digits = true;
            current.push(c);
        } else if matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '+') {
            in_digits = false;
        } else {
            in_digits = false;
            flush(&mut current, &mut groups);
        }
    }
    flush(&mut current, &mut groups);
    out
}

/// Extra tokens to index for the phone-style numbers in `text`: each
/// number's digits joined, and every suffix of at least four digits, so
/// that a fragment such as the last four digits finds it.
pub(crate) fn phone_tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for digits in joined_digit_groups(text) {
        if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits.len()) {
            continue;
        }
        for start in 0..=digits.len() - MIN_SUFFIX_DIGITS {
            let suffix = &digits[start..];
            if !out.iter().any(|t| t == suffix) {
                out.push(suffix.to_owned());
            }
        }
    }
    out
}

/// The text the full-text index holds for a memory — its content, its
/// tags, its fact's key and value, then the phone-style tokens of all of
/// them — and its length in words (phone-style tokens not counted), the
/// document length the ranking uses.
pub(crate) fn index_body(
    content: &str,
    tags: &[String],
    fact: Option<(&str, &str)>,
) -> (String, i64) {
    let mut body = String::with_capacity(content.len() + 64);
    body.push_str(content);
    for tag in tags {
        body.push('\n');
        body.push_str(tag);
    }
    if let Some((key, value)) = fact {
        body.push('\n');
        body.push_str(key);
        body.push('\n');
        body.push_str(value);
    }
    let length = i64::try_from(words(&body).len()).unwrap_or(i64::MAX);
    let extra = phone_tokens(&body);
    for token in extra {
        body.push('\n');
        body.push_str(&token);
    }
    (body, length)
}

/// The most bytes of a query's text that are read; a longer question is
/// cut (at a character boundary) rather than searched word by word.
const MAX_QUERY_BYTES: usize = 2048;

/// The search terms of a user's query: lower-cased words of two or more
/// characters (or any digits), stop words removed unless nothing else is
/// left, joined digit groups of phone-style fragments added, duplicates
/// removed, at most [`MAX_QUERY_TERMS`].
pub(crate) fn query_terms(text: &str) -> Vec<String> {
    let mut end = text.len().min(MAX_QUERY_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let all: Vec<String> = words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 2 || w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let content: Vec<String> = all
        .iter()
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .cloned()
        .collect();
    let mut terms = if content.is_empty() { all } else { content };
    let asked = terms.clone();
    for (words, aliases) in ALIASES {
        if asked.iter().any(|t| words.contains(&t.as_str())) {
            terms.extend(aliases.iter().map(|a| (*a).to_owned()));
        }
    }
    for joined in joined_digit_groups(text) {
        if joined.len() >= MIN_SUFFIX_DIGITS && !terms.contains(&joined) {
            terms.push(joined);
        }
    }
    let mut unique: Vec<String> = Vec::with_capacity(terms.len());
    for term in terms {
        if !unique.contains(&term) {
            unique.push(term);
        }
    }
    unique.truncate(MAX_QUERY_TERMS);
    unique
}

/// The FTS5 query for one search term, always quoted (quotes doubled, so
/// nothing in user text is FTS5 syntax):
///
/// * a word of up to 3 characters (after dropping a plural `s`) must
///   match whole or with an `s` (`"car" OR "cars"`);
/// * a longer word matches any word starting with its first 4 (words of
///   4 to 6 characters) or 5 (longer words) characters, so `refinance`
///   finds `refinancing`, `loans` finds `loan` and `talked` finds
///   `talking` — the index keeps 4- and 5-character prefixes, so this is
///   a seek, not a scan;
/// * a number matches numbers starting with all its digits (`2029`
///   finds `2029` and `20291`), never a shorter head.
pub(crate) fn fts_query(term: &str) -> String {
    let quoted = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
    if term.chars().all(|c| c.is_ascii_digit()) {
        return if term.len() <= 3 {
            quoted(term)
        } else {
            format!("{}*", quoted(term))
        };
    }
    // A plural's singular: `pets` searches `pet` and `pets`.
    let term = match term.strip_suffix('s') {
        Some(stem) if !stem.ends_with('s') && stem.chars().count() >= 3 => stem,
        _ => term,
    };
    let len = term.chars().count();
    if len <= 3 {
        return format!("{} OR {}", quoted(term), quoted(&format!("{term}s")));
    }
    let head = if len <= 6 { 4 } else { 5 };
    let head: String = term.chars().take(head).collect();
    format!("{}*", quoted(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_indexed_as_digits_and_suffixes() {
        let tokens = phone_tokens("Call back on +1 (612) 978-2029 after 5");
        assert!(tokens.contains(&"16129782029".to_owned()));
        assert!(tokens.contains(&"6129782029".to_owned()));
        assert!(tokens.contains(&"9782029".to_owned()));
        assert!(tokens.contains(&"2029".to_owned()));
        assert!(!tokens.iter().any(|t| t.len() < 4));
    }

    #[test]
    fn short_numbers_are_not_phone_numbers() {
        assert!(phone_tokens("Arrived at 5 pm on the 12th, paid 300").is_empty());
    }

    #[test]
    fn query_terms_drop_stop_words_but_keep_content() {
        assert_eq!(
            query_terms("Did we talk about the refinance?"),
            vec!["talk", "refinance"]
        );
        assert_eq!(query_terms("what's her name"), vec!["name"]);
        // Only stop words: they are kept rather than searching for nothing.
        assert_eq!(query_terms("who is she"), vec!["who", "is", "she"]);
    }

    #[test]
    fn question_words_also_search_profile_field_words() {
        let terms = query_terms("where does he live");
        assert_eq!(terms, vec!["live", "city", "address"]);
    }

    #[test]
    fn query_terms_join_phone_fragments() {
        let terms = query_terms("number ending 978-2029");
        assert!(terms.contains(&"9782029".to_owned()), "{terms:?}");
        assert!(terms.contains(&"2029".to_owned()), "{terms:?}");
    }

    #[test]
    fn very_long_queries_are_cut_at_a_character_boundary() {
        let text = format!("{}refinance", "é".repeat(MAX_QUERY_BYTES));
        let terms = query_terms(&text);
        assert!(!terms.contains(&"refinance".to_owned()));
        assert_eq!(terms.len(), 1);
    }

    #[test]
    fn query_terms_are_capped_and_unique() {
        let terms = query_terms(&"alpha beta alpha gamma ".repeat(20));
        assert_eq!(terms, vec!["alpha", "beta", "gamma"]);
        let many: String = (0..40).map(|i| format!("word{i} ")).collect();
        assert_eq!(query_terms(&many).len(), MAX_QUERY_TERMS);
    }

    #[test]
    fn fts_queries_quote_everything_and_keep_short_heads() {
        assert_eq!(fts_query("car"), "\"car\" OR \"cars\"");
        assert_eq!(fts_query("pets"), "\"pet\" OR \"pets\"");
        assert_eq!(fts_query("address"), "\"addre\"*");
        assert_eq!(fts_query("123"), "\"123\"");
        assert_eq!(fts_query("loans"), "\"loan\"*");
        assert_eq!(fts_query("talked"), "\"talk\"*");
        assert_eq!(fts_query("refinance"), "\"refin\"*");
        assert_eq!(fts_query("9782029"), "\"9782029\"*");
        assert_eq!(fts_query("a\"b"), "\"a\"\"b\" OR \"a\"\"bs\"");
        assert_eq!(fts_query("a\"bcdefg"), "\"a\"\"bcd\"*");
    }

    #[test]
    fn index_body_includes_tags_fact_and_phone_forms() {
        let (body, length) = index_body(
            "Caller's phone: 612-978-2029",
            &["contact".to_owned()],
            Some(("mobile_number", "612-978-2029")),
        );
        assert!(body.contains("contact"));
        assert!(body.contains("mobile_number"));
        assert!(body.contains("6129782029"));
        // caller s phone 612 978 2029 contact mobile number 612 978 2029
        assert_eq!(length, 12);
    }
}
