//! OpenMemory v1.3's dedup hash, reimplemented so the adapter can predict
//! a merge before it writes, and the reference marker that provably
//! avoids one.
//!
//! What the server does (`add_hsg_memory` in `memory/hsg.ts` and
//! `utils/text.ts` of tag `v1.3.0`):
//!
//! 1. **Tokens**: maximal runs of ASCII letters and digits, lower-cased
//!    (anything else, accents included, separates tokens).
//! 2. **Canonical form** of each token: a word of one of 13 synonym groups
//!    becomes the group's first word; otherwise the token is stemmed by the
//!    first suffix rule (`ies`→`y`, `ing`→``, `er`/`ers`→`er`, `ed`→``,
//!    `s`→``) whose result keeps at least 3 letters (tokens of 3 letters
//!    or fewer are kept), and the stem is looked up among the synonyms
//!    again. Canonical tokens of one character are dropped, and the rest
//!    form a **set**: order and repetition do not count.
//! 3. **Token hash**: `h = h·31 + code` over the token's characters, in
//!    wrapping 32-bit arithmetic (Java's `String.hashCode`).
//! 4. **Simhash**: for each bit position every token votes +1 if its hash
//!    has the bit, −1 if not; the bit is set when the votes are positive
//!    (a tie clears it). The server loops over 64 positions, but
//!    JavaScript's `1 << i` shifts by `i mod 32`, so positions 32–63
//!    repeat 0–31: the stored 16-hex-digit hash holds 32 effective bits,
//!    written twice, four bits per digit with the lowest position as the
//!    digit's high bit.
//! 5. **Merge**: an add whose hash string equals any stored row's — of
//!    **any user** — stores nothing and answers that row's id with
//!    `deduplicated: true`. (The server then also checks a Hamming
//!    distance of at most 3 between the two strings, which equal strings
//!    always pass.) A patch never recomputes a row's hash.
//!
//! Short texts therefore collide often, even different facts ("Maria has
//! a savings account with us" and "… a mortgage account …" share a hash),
//! and a random marker word may not move any bit's vote across zero.
//! [`marked`] instead picks marker words whose hashes push chosen bits
//! across, and checks the result.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// The synonym groups of OpenMemory v1.3; each word canonicalises to its
/// group's first word.
const SYNONYMS: [&[&str]; 13] = [
    &["prefer", "like", "love", "enjoy", "favor"],
    &["theme", "mode", "style", "layout"],
    &["meeting", "meet", "session", "call", "sync"],
    &["dark", "night", "black"],
    &["light", "bright", "day"],
    &["user", "person", "people", "customer"],
    &["task", "todo", "job"],
    &["note", "memo", "reminder"],
    &["time", "schedule", "when", "date"],
    &["project", "initiative", "plan"],
    &["issue", "problem", "bug"],
    &["document", "doc", "file"],
    &["question", "query", "ask"],
];

/// The server's Hamming threshold: strings at most this far apart merge.
const MERGE_DISTANCE: u32 = 3;

/// The marker's leading word (`" (ref …)"`).
const MARKER_WORD: &str = "ref";

/// Characters of one marker code; the last is always a digit.
const CODE_LEN: usize = 8;

/// A bit to set is drawn among those costing at most this many votes
/// more than the cheapest.
const SLACK: i64 = 2;

/// Random extra bits each marker moves, so that two markers of one text
/// (written by two processes that have not seen each other's) rarely
/// share a hash.
const EXTRA_BITS: usize = 2;

/// Most codes one marker carries.
const MAX_CODES: usize = 64;

/// Most candidate codes drawn for one marker code.
const MAX_DRAWS: usize = 1 << 16;

/// The group leader of a synonym, if `word` is one.
fn synonym_of(word: &str) -> Option<&'static str> {
    SYNONYMS
        .iter()
        .find(|group| group.contains(&word))
        .map(|group| group[0])
}

/// The server's stem of a lower-case ASCII token: the first suffix rule
/// that matches and leaves at least 3 characters, else the token.
fn stem(token: &str) -> Cow<'_, str> {
    // (suffix, replacement); "ers" and "er" are the one rule /ers?$/ → "er".
    const RULES: [(&[&str], &str); 5] = [
        (&["ies"], "y"),
        (&["ing"], ""),
        (&["ers", "er"], "er"),
        (&["ed"], ""),
        (&["s"], ""),
    ];
    if token.len() <= 3 {
        return Cow::Borrowed(token);
    }
    for (suffixes, with) in RULES {
        let Some(base) = suffixes.iter().find_map(|s| token.strip_suffix(s)) else {
            continue;
        };
        if base.len() + with.len() >= 3 {
            return if with.is_empty() {
                Cow::Borrowed(base)
            } else {
                Cow::Owned(format!("{base}{with}"))
            };
        }
    }
    Cow::Borrowed(token)
}

/// The server's canonical form of a lower-case ASCII token.
fn canonical(token: &str) -> Cow<'_, str> {
    if let Some(leader) = synonym_of(token) {
        return Cow::Borrowed(leader);
    }
    let stemmed = stem(token);
    match synonym_of(&stemmed) {
        Some(leader) => Cow::Borrowed(leader),
        None => stemmed,
    }
}

/// The canonical token set of `text`, as the server hashes it.
pub(crate) fn canonical_tokens(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .filter_map(|t| {
            let lower = t.to_ascii_lowercase();
            let can = canonical(&lower);
            (can.len() > 1).then(|| can.into_owned())
        })
        .collect()
}

/// A token's 32-bit hash: `h·31 + byte`, wrapping.
fn token_hash(token: &str) -> u32 {
    token
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
}

/// The bit votes of a token set: +1 per token with the bit, −1 without.
#[derive(Clone, Debug)]
struct Votes([i64; 32]);

impl Votes {
    fn of<'a>(tokens: impl IntoIterator<Item = &'a String>) -> Self {
        let mut votes = Self([0; 32]);
        for t in tokens {
            votes.add(token_hash(t));
        }
        votes
    }

    fn add(&mut self, hash: u32) {
        for (bit, v) in self.0.iter_mut().enumerate() {
            *v += if hash >> bit & 1 == 1 { 1 } else { -1 };
        }
    }

    fn hash(&self) -> ContentHash {
        let bits = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0)
            .fold(0u32, |h, (bit, _)| h | 1 << bit);
        ContentHash(bits)
    }

    /// How many more tokens voting `want` it takes for `bit` to be `want`.
    fn cost(&self, bit: usize, want: bool) -> i64 {
        let v = self.0[bit];
        if want { (1 - v).max(0) } else { v.max(0) }
    }
}

/// OpenMemory v1.3's dedup hash of a text (see the module docs): 32
/// effective bits, bit `i` being position `i` (and `i + 32`) of the
/// server's simhash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ContentHash(u32);

impl ContentHash {
    /// The hash the server computes for `text` on `POST /memory/add`.
    pub fn of(text: &str) -> Self {
        Votes::of(&canonical_tokens(text)).hash()
    }

    /// The 32 effective bits; bit `i` is the server's position `i`.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether bit `i` (0–31) is set.
    fn bit(self, i: usize) -> bool {
        self.0 >> i & 1 == 1
    }

    /// The server's Hamming distance between the two stored strings (each
    /// effective bit counts twice).
    pub fn distance(self, other: Self) -> u32 {
        2 * (self.0 ^ other.0).count_ones()
    }

    /// Whether the server merges an add of this hash into a stored row of
    /// hash `stored`: the row is found by equal hash, then accepted within
    /// Hamming distance 3.
    pub fn merges_into(self, stored: Self) -> bool {
        self == stored && self.distance(stored) <= MERGE_DISTANCE
    }

    /// Whether this hash is within the server's merge threshold of
    /// `other` (closer than the marker allows, even if the server looked
    /// rows up by distance rather than by equality).
    fn near(self, other: Self) -> bool {
        self.distance(other) <= MERGE_DISTANCE
    }
}

/// The hash as the server stores it: 16 hex digits, the 32 effective bits
/// twice, each digit holding four positions, the lowest as its high bit.
impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut half = String::with_capacity(8);
        for nibble in 0..8 {
            let d = (0..4).fold(0u32, |d, k| d << 1 | u32::from(self.bit(4 * nibble + k)));
            half.push(char::from_digit(d, 16).unwrap_or('0'));
        }
        write!(f, "{half}{half}")
    }
}

/// A marker code: `CODE_LEN` characters of `[a-z0-9]`, the last a digit,
/// so no stem rule or synonym applies and it is its own canonical token.
fn draw_code(rng: &mut fastrand::Rng) -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut code: String = (0..CODE_LEN - 1)
        .map(|_| char::from(ALNUM[rng.usize(..ALNUM.len())]))
        .collect();
    code.push(char::from(b'0' + rng.u8(..10)));
    code
}

/// `text` with a one-code reference marker, not checked against anything.
pub(crate) fn unchecked_marker(text: &str, rng: &mut fastrand::Rng) -> String {
    format!("{text} ({MARKER_WORD} {})", draw_code(rng))
}

/// `text` with a reference marker, `" (ref c1 c2 …)"`, whose server hash
/// is more than the merge distance from every hash in `taken` (so the
/// server cannot merge it into a row of any of them), checked before it is
/// returned; `None` if no such marker was found within the bounds (not
/// expected: see the tests).
///
/// The codes are drawn at random, but only codes whose token hash votes
/// the right way on chosen bits are kept. For each taken hash, bits are
/// chosen (at random among the cheapest to flip given the text's votes,
/// or among ones already differing) until two differ from it; then
/// [`EXTRA_BITS`] more, so that markers of one text vary. Every kept code
/// votes towards all chosen values at once, so each moves every unmet bit
/// one vote closer and no met bit back; the marker ends when all are met.
pub(crate) fn marked(text: &str, taken: &[ContentHash], rng: &mut fastrand::Rng) -> Option<String> {
    let mut tokens = canonical_tokens(text);
    tokens.insert(MARKER_WORD.to_owned());
    let mut votes = Votes::of(&tokens);
    // The chosen bits (`mask`) and the values they must take (`want`).
    let (mut mask, mut want) = (0u32, 0u32);
    let mut choose =
        |mask: &mut u32, want: &mut u32, value: &dyn Fn(usize) -> bool| -> Option<()> {
            let free: Vec<usize> = (0..32).filter(|b| *mask >> b & 1 == 0).collect();
            let cheapest = free.iter().map(|&b| votes.cost(b, value(b))).min()?;
            let cheap: Vec<usize> = free
                .into_iter()
                .filter(|&b| votes.cost(b, value(b)) <= cheapest + SLACK)
                .collect();
            let bit = cheap[rng.usize(..cheap.len())];
            *mask |= 1 << bit;
            if value(bit) {
                *want |= 1 << bit;
            }
            Some(())
        };
    for t in taken {
        while 2 * ((want ^ t.0) & mask).count_ones() <= MERGE_DISTANCE {
            choose(&mut mask, &mut want, &|b| !t.bit(b))?;
        }
    }
    let here = votes.hash();
    for _ in 0..EXTRA_BITS {
        choose(&mut mask, &mut want, &|b| !here.bit(b))?;
    }
    let met = |votes: &Votes| (votes.hash().0 ^ want) & mask == 0;
    let mut codes: Vec<String> = Vec::new();
    while codes.is_empty() || !met(&votes) {
        if codes.len() >= MAX_CODES {
            return None;
        }
        let code = (0..MAX_DRAWS)
            .map(|_| draw_code(rng))
            .find(|c| (token_hash(c) ^ want) & mask == 0 && !tokens.contains(c))?;
        votes.add(token_hash(&code));
        tokens.insert(code.clone());
        codes.push(code);
    }
    let out = format!("{text} ({MARKER_WORD} {})", codes.join(" "));
    let hash = ContentHash::of(&out);
    taken.iter().all(|t| !hash.near(*t)).then_some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Hashes computed by OpenMemory v1.3.0's own `compute_simhash` (run
    /// under Node.js 20 on the tag's source), for texts that exercise the
    /// tokeniser, the stem rules, the synonyms and the bit layout.
    const REFERENCE: &[(&str, &str)] = &[
        ("The caller's name is Maria", "d5428400d5428400"),
        ("the caller's NAME is Maria!!", "d5428400d5428400"),
        ("The caller's name is John", "d0b28c00d0b28c00"),
        (
            "Maria prefers to be called back in the evening",
            "ce002000ce002000",
        ),
        (
            "In the evening Maria likes to be called back",
            "ce002000ce002000",
        ),
        ("Maria has a savings account with us", "7949800079498000"),
        ("Maria has a mortgage account with us", "7949800079498000"),
        ("", "0000000000000000"),
        ("a b c 1 2 3 !!", "0000000000000000"),
        (
            "ties kings users studies played running hers ers sing",
            "e1d18c00e1d18c00",
        ),
        (
            "Dark mode at night, black theme; light/bright day layout",
            "48a4400048a44000",
        ),
        (
            "The customer asked a question about the schedule of the project meeting",
            "93d2000093d20000",
        ),
        (
            "Café résumé naïve straße \u{212a} ſ ﬁle",
            "9230000092300000",
        ),
        (
            "Caller asked to move the delivery to Friday",
            "cfd08004cfd08004",
        ),
        (
            "Account note 17: the caller confirmed reference code 482913 for the claim",
            "9675840096758400",
        ),
        (
            "Account note 18: the caller confirmed reference code 482914 for the claim",
            "9675840096758400",
        ),
        ("Caller's first_name: Ann", "814e8000814e8000"),
        (
            "Recall keeps the idempotency keys of deleted memories here",
            "8afd00008afd0000",
        ),
        (
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz 0000000000 9999999999",
            "0048cd2f0048cd2f",
        ),
        (
            "The caller's name is Maria Gonzalez and she has been a customer since 2015. She called today to ask about refinancing the mortgage on her house, and whether the bank could lower the rate; she prefers email over phone calls and asked us to call back next Tuesday.",
            "0b5020000b502000",
        ),
        ("bed red fed need seed wed speed", "8911800089118000"),
        ("flies dies pies lies cries", "1101800011018000"),
        ("user users person people customers", "d3d76c00d3d76c00"),
        ("CALLS Meetings SYNCS sessions", "dc52641cdc52641c"),
        (
            "doc docs document documents filed files",
            "9001000090010000",
        ),
    ];

    #[test]
    fn hashes_match_openmemorys_own_computation() {
        for (text, expected) in REFERENCE {
            assert_eq!(ContentHash::of(text).to_string(), *expected, "{text:?}");
        }
    }

    #[test]
    fn tokens_are_canonicalised_like_the_server() {
        let tokens = |t: &str| {
            let mut v: Vec<String> = canonical_tokens(t).into_iter().collect();
            v.sort();
            v
        };
        // Stems fall through to a later rule when one leaves too little.
        assert_eq!(tokens("ties kings hers"), ["her", "king", "tie"]);
        assert_eq!(
            tokens("studies running played users"),
            ["play", "runn", "study", "user"]
        );
        // Synonyms, before and after stemming; one-letter tokens go.
        assert_eq!(
            tokens("Calls, likes a DOCS"),
            ["document", "meeting", "prefer"]
        );
        // Only ASCII letters and digits make tokens.
        assert_eq!(tokens("café ſun \u{212a}elvin"), ["caf", "elvin", "un"]);
    }

    /// The fixtures' dedup outcomes, replayed in recording order against a
    /// model of the server's table (fixtures 03–14, 30, 32, 38, 48, 65).
    #[test]
    fn predicts_the_recorded_merges() {
        // (fixture, user, content, merged into the row of fixture …)
        let adds: &[(&str, u8, &str, Option<&str>)] = &[
            ("03", 1, "The caller's name is Maria", None),
            (
                "04",
                1,
                "Maria prefers to be called back in the evening",
                None,
            ),
            ("06", 1, "Maria has a dog named Biscuit", None),
            (
                "07",
                1,
                "On the last call Maria asked about refinancing her mortgage",
                None,
            ),
            ("08", 2, "The caller's name is John", None),
            ("09", 1, "The caller's name is Maria", Some("03")),
            ("10", 1, "the caller's NAME is Maria!!", Some("03")),
            (
                "11",
                1,
                "In the evening Maria likes to be called back",
                Some("04"),
            ),
            ("12", 1, "Maria has a savings account with us", None),
            ("13", 1, "Maria has a mortgage account with us", Some("12")),
            ("14", 2, "The caller's name is Maria", Some("03")),
            // 30 patched 04's content; its stored hash stays.
            (
                "32",
                1,
                "Maria prefers to be called back in the evening",
                Some("04"),
            ),
            // 38 deleted 07 and 48 erased user 2 (08) before this add.
            ("65", 2, "John's preferred branch is Minneapolis", None),
        ];
        let mut rows: Vec<(&str, u8, ContentHash)> = Vec::new();
        for (fixture, user, content, expected) in adds {
            if *fixture == "65" {
                rows.retain(|(f, u, _)| *f != "07" && *u != 2);
            }
            let hash = ContentHash::of(content);
            let merged = rows.iter().find(|(_, _, h)| hash.merges_into(*h));
            assert_eq!(merged.map(|(f, _, _)| *f), *expected, "fixture {fixture}");
            if merged.is_none() {
                rows.push((fixture, *user, hash));
            }
        }
    }

    #[test]
    fn the_stored_string_holds_32_bits_twice() {
        let h = ContentHash(0b1011);
        assert_eq!(h.to_string(), "d0000000d0000000");
        assert_eq!(h.distance(ContentHash(0b0011)), 2);
        assert!(!h.merges_into(ContentHash(0b0011)));
        assert!(h.merges_into(h));
    }

    #[test]
    fn every_bit_can_be_voted_either_way_by_a_code() {
        let mut rng = fastrand::Rng::with_seed(7);
        for bit in 0..32 {
            for want in [0, 1] {
                let found = (0..1000).any(|_| token_hash(&draw_code(&mut rng)) >> bit & 1 == want);
                assert!(found, "no code votes {want} on bit {bit}");
            }
        }
    }

    #[test]
    fn a_code_is_its_own_canonical_token() {
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..1000 {
            let code = draw_code(&mut rng);
            assert_eq!(
                canonical_tokens(&code).into_iter().collect::<Vec<_>>(),
                [code]
            );
        }
    }

    #[test]
    fn a_text_whose_votes_are_far_from_zero_still_gets_a_marker() {
        // 300 distinct short tokens: every high bit is voted down ~300 to
        // 0 and the low bits are far from a tie.
        let text: String = (0..300).map(|i| format!("w{i} ")).collect();
        let plain = ContentHash::of(&text);
        let mut rng = fastrand::Rng::with_seed(3);
        let out = marked(&text, &[plain], &mut rng).expect("a marker");
        assert!(ContentHash::of(&out).distance(plain) > MERGE_DISTANCE);
    }

    #[test]
    fn a_marker_avoids_every_taken_hash_at_once() {
        let text = "Maria has a savings account with us";
        let mut rng = fastrand::Rng::with_seed(11);
        let mut taken = vec![ContentHash::of(text)];
        for _ in 0..6 {
            let out = marked(text, &taken, &mut rng).expect("a marker");
            let h = ContentHash::of(&out);
            assert!(
                taken.iter().all(|t| h.distance(*t) > MERGE_DISTANCE),
                "{out}"
            );
            taken.push(h);
        }
    }

    #[test]
    fn two_markers_of_one_text_rarely_share_a_hash() {
        // Two processes marking the same text against the same taken hash
        // should not land on each other's row (that costs a re-send).
        let mut rng = fastrand::Rng::with_seed(5);
        let (mut same, mut n) = (0, 0);
        for i in 0..400 {
            let text = TEMPLATES[i % TEMPLATES.len()]
                .replace("{n}", NAMES[i % NAMES.len()])
                .replace("{d}", &(i * 7919 % 1000).to_string());
            let plain = ContentHash::of(&text);
            for _ in 0..5 {
                let a = marked(&text, &[plain], &mut rng).expect("a marker");
                let b = marked(&text, &[plain], &mut rng).expect("a marker");
                same += usize::from(ContentHash::of(&a) == ContentHash::of(&b));
                n += 1;
            }
        }
        assert!(same * 100 <= n, "{same} of {n} pairs share a hash");
    }

    const NAMES: &[&str] = &[
        "Maria",
        "John",
        "Ann",
        "Mr. O'Neil",
        "José",
        "Li",
        "Anne-Marie",
        "Bob",
    ];
    const TEMPLATES: &[&str] = &[
        "The caller's name is {n}",
        "{n} asked to move the delivery to Friday at {d} pm",
        "Account note {d}: the caller confirmed reference code {d} for the claim",
        "{n} has a savings account with us",
        "{n} has a mortgage account with us",
        "On the last call {n} asked about refinancing her mortgage; rate {d}%",
        "{n} prefers to be called back in the evening",
        "Caller {n} reported that order #{d} arrived damaged and wants a refund",
        "{n} called about {d} unpaid invoices, promised to pay by the {d}th",
        "Summary: {n} wants dark mode. {n} likes email. Meeting on day {d}.",
        "{d}",
        "ok",
    ];

    /// A templated call summary with varied names, numbers, punctuation,
    /// case and whitespace.
    fn summary() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(
                (
                    0..TEMPLATES.len(),
                    0..NAMES.len(),
                    proptest::collection::vec(0u32..1_000_000, 3),
                    0..4usize,
                ),
                1..8,
            ),
            "[ \t\n]{0,3}",
            prop::sample::select(vec!["", ".", "!!", "?", " …", ";"]),
        )
            .prop_map(|(parts, ws, end)| {
                let mut out = String::new();
                for (t, n, digits, case) in parts {
                    let mut s = TEMPLATES[t].replace("{n}", NAMES[n]);
                    for d in &digits {
                        s = s.replacen("{d}", &d.to_string(), 1);
                    }
                    let s = match case {
                        0 => s,
                        1 => s.to_uppercase(),
                        2 => s.to_lowercase(),
                        _ => s.replace(' ', "  "),
                    };
                    out.push_str(&s);
                    out.push_str(&ws);
                }
                out.push_str(end);
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The marked text never merges into the unmarked one (0 lost),
        /// nor into a second taken hash.
        #[test]
        fn a_marked_summary_never_merges_into_the_plain_one(
            text in summary(),
            other in any::<u32>(),
            seed in any::<u64>(),
        ) {
            let plain = ContentHash::of(&text);
            let mut rng = fastrand::Rng::with_seed(seed);
            let out = marked(&text, &[plain], &mut rng);
            prop_assert!(out.is_some(), "no marker for {:?}", text);
            let out = out.unwrap_or_default();
            prop_assert!(out.starts_with(&text) && out.ends_with(')'));
            let hash = ContentHash::of(&out);
            prop_assert!(!hash.merges_into(plain));
            prop_assert!(hash.distance(plain) > MERGE_DISTANCE);

            let taken = [plain, ContentHash(other)];
            let out = marked(&text, &taken, &mut rng);
            prop_assert!(out.is_some(), "no marker for {:?}", text);
            let hash = ContentHash::of(&out.unwrap_or_default());
            prop_assert!(taken.iter().all(|t| hash.distance(*t) > MERGE_DISTANCE));
        }
    }
}
