//! Query understanding: what a memory-tool question asks besides its
//! words — a time (the latest call, the first one, two calls ago, March,
//! last week), a standing fact of the caller's profile (where they live,
//! how to reach them), or their name.
//!
//! Everything here is plain rules over the question's words: no model,
//! microseconds, and the same answer for every store.

use recall_model::UnixTimestamp;
use time::{Date, Month, OffsetDateTime, Weekday};

/// What a question asks about time.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum TimeIntent {
    /// The most recent calls first, skipping `skip` (`two calls ago` skips
    /// one: during a call, the last call is one call ago).
    Latest {
        /// How many of the newest to pass over.
        skip: usize,
    },
    /// The oldest calls first, skipping `skip` (`the second call` skips one).
    Earliest {
        /// How many of the oldest to pass over.
        skip: usize,
    },
    /// Calls within a span of time (unix seconds, end exclusive).
    Window {
        /// The first second of the span.
        start: i64,
        /// The first second after the span.
        end: i64,
    },
}

/// A kind of standing fact about a caller that questions ask for in their
/// own words.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Concept {
    /// A short name, for debugging and docs.
    pub name: &'static str,
    /// Words of a question that ask for it.
    cues: &'static [&'static str],
    /// Parts of a fact's key that hold it.
    keys: &'static [&'static str],
    /// Parts of a key that rule it out (an `email_address` is no home).
    not: &'static [&'static str],
}

impl Concept {
    /// Whether a fact with this key holds the concept.
    pub fn matches_key(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        self.keys.iter().any(|k| key.contains(k)) && !self.not.iter().any(|k| key.contains(k))
    }
}

/// Standing facts and how questions ask for them.
const CONCEPTS: &[Concept] = &[
    Concept {
        name: "residence",
        cues: &[
            "live",
            "lives",
            "living",
            "reside",
            "resides",
            "residence",
            "address",
            "based",
            "located",
            "location",
            "town",
            "city",
            "postcode",
            "zip",
            "suburb",
            "neighbourhood",
            "neighborhood",
            "moved",
            "post",
            "letters",
            "mail",
            "mailing",
            "deliveries",
            "delivery",
            "deliver",
            "delivered",
            "property",
            "premises",
            "house",
            "apartment",
            "flat",
            "home",
            "where",
        ],
        keys: &[
            "city",
            "town",
            "address",
            "postcode",
            "post_code",
            "zip",
            "suburb",
            "location",
            "neighbourhood",
            "neighborhood",
            "county",
            "state",
            "region",
            "area",
            "street",
            "residence",
            "home_",
            "property",
            "premises",
        ],
        not: &["email", "e_mail", "ip_addr", "web", "work_", "business_"],
    },
    Concept {
        name: "contact",
        cues: &[
            "reach",
            "contact",
            "email",
            "e-mail",
            "mail",
            "phone",
            "mobile",
            "cell",
            "text",
            "texts",
            "callback",
            "telephone",
            "contacted",
            "touch",
            "ring",
            "number",
            "call",
            "whatsapp",
            "message",
        ],
        keys: &[
            "email",
            "e_mail",
            "phone",
            "mobile",
            "cell",
            "contact",
            "callback",
            "call_back",
            "telephone",
            "whatsapp",
        ],
        not: &["emergency"],
    },
    Concept {
        name: "emergency",
        cues: &["emergency", "happens", "kin", "ice"],
        keys: &["emergency", "next_of_kin", "kin", "ice_contact"],
        not: &[],
    },
    Concept {
        name: "birth",
        cues: &[
            "born",
            "birthday",
            "birth",
            "age",
            "old",
            "dob",
            "birthdate",
            "sixty",
            "seventy",
            "eighty",
            "ninety",
            "sixties",
            "seventies",
            "eighties",
            "nineties",
            "thirties",
            "forties",
            "fifties",
            "twenties",
            "elderly",
            "senior",
            "pensioner",
        ],
        keys: &["birth", "dob", "age", "born"],
        not: &[
            "mileage", "page", "package", "usage", "storage", "postage", "mortgage",
        ],
    },
    Concept {
        name: "insurance",
        cues: &[
            "insurance",
            "insurer",
            "insured",
            "insures",
            "coverage",
            "covered",
            "cover",
            "carrier",
        ],
        keys: &["insur", "coverage", "carrier", "cover"],
        not: &[],
    },
    Concept {
        name: "policy",
        cues: &[
            "policy",
            "member",
            "membership",
            "plan",
            "tier",
            "subscription",
            "package",
        ],
        keys: &[
            "policy",
            "member",
            "plan",
            "tier",
            "subscription",
            "package",
        ],
        not: &[],
    },
    Concept {
        name: "account",
        cues: &["account", "customer", "reference", "client", "id"],
        keys: &["account", "customer", "reference", "client", "_ref", "_id"],
        not: &["holder", "authori"],
    },
    Concept {
        name: "loyalty",
        cues: &["rewards", "reward", "loyalty", "points", "club", "card"],
        keys: &["loyalty", "reward", "points", "club", "member"],
        not: &[],
    },
    Concept {
        name: "business",
        cues: &[
            "company",
            "business",
            "shop",
            "store",
            "firm",
            "employer",
            "organisation",
            "organization",
            "agency",
            "restaurant",
            "cafe",
            "practice",
        ],
        keys: &[
            "business",
            "company",
            "employer",
            "shop",
            "store",
            "firm",
            "trading",
            "organisation",
            "organization",
            "agency",
            "venue",
        ],
        not: &[],
    },
    Concept {
        name: "work",
        cues: &[
            "work",
            "works",
            "job",
            "employed",
            "occupation",
            "profession",
            "living",
        ],
        keys: &[
            "employer",
            "job",
            "occupation",
            "profession",
            "work",
            "role",
            "title",
        ],
        not: &[],
    },
    Concept {
        name: "authorised",
        cues: &[
            "authorised",
            "authorized",
            "behalf",
            "manage",
            "manages",
            "permission",
            "allowed",
            "attorney",
            "proxy",
            "speak",
        ],
        keys: &[
            "authori",
            "attorney",
            "proxy",
            "representative",
            "delegate",
            "account_holder",
            "joint",
            "guardian",
        ],
        not: &[],
    },
    Concept {
        name: "doctor",
        cues: &[
            "doctor",
            "gp",
            "physician",
            "dentist",
            "vet",
            "surgeon",
            "specialist",
            "consultant",
            "hygienist",
            "therapist",
            "clinician",
        ],
        keys: &[
            "doctor",
            "physician",
            "gp",
            "dentist",
            "vet",
            "surgeon",
            "specialist",
            "consultant",
            "provider",
            "clinician",
            "hygienist",
            "therapist",
        ],
        not: &[],
    },
    Concept {
        name: "pharmacy",
        cues: &[
            "pharmacy",
            "pharmacist",
            "chemist",
            "drugstore",
            "prescriptions",
        ],
        keys: &["pharmacy", "chemist", "drugstore"],
        not: &[],
    },
    Concept {
        name: "vehicle",
        cues: &[
            "car",
            "drive",
            "drives",
            "driving",
            "vehicle",
            "truck",
            "van",
            "ute",
            "suv",
            "motorbike",
            "registration",
            "rego",
            "plate",
            "mileage",
            "odometer",
            "kilometres",
            "kilometers",
            "miles",
            "km",
        ],
        keys: &[
            "vehicle",
            "car",
            "make",
            "model",
            "registration",
            "rego",
            "plate",
            "vin",
            "truck",
            "odometer",
            "mileage",
            "km",
            "miles",
        ],
        not: &["card", "care"],
    },
    Concept {
        name: "pet",
        cues: &[
            "pet", "pets", "dog", "dogs", "cat", "cats", "animal", "animals", "breed", "puppy",
            "kitten",
        ],
        keys: &["pet", "species", "breed", "animal", "dog", "cat"],
        not: &[],
    },
    Concept {
        name: "family",
        cues: &[
            "kids", "children", "child", "son", "daughter", "married", "spouse", "wife", "husband",
            "partner", "family", "relative",
        ],
        keys: &[
            "child",
            "kids",
            "son",
            "daughter",
            "spouse",
            "partner",
            "wife",
            "husband",
            "family",
            "household",
            "joint",
        ],
        not: &[],
    },
    Concept {
        name: "language",
        cues: &["speak", "speaks", "language", "languages"],
        keys: &["language"],
        not: &[],
    },
    Concept {
        name: "diet",
        cues: &[
            "allergy",
            "allergies",
            "allergic",
            "diet",
            "dietary",
            "eat",
            "eats",
            "vegetarian",
            "vegan",
            "gluten",
            "spice",
            "spicy",
            "heat",
            "chilli",
            "chili",
            "hot",
            "milk",
            "dairy",
            "nuts",
            "food",
        ],
        keys: &[
            "allerg",
            "diet",
            "food",
            "intolerance",
            "spice",
            "heat",
            "meal",
        ],
        not: &[],
    },
    Concept {
        name: "size",
        cues: &[
            "size", "sizes", "wear", "wears", "fit", "fits", "bedrooms", "rooms", "seats",
        ],
        keys: &["size", "bedroom", "rooms", "seats", "capacity"],
        not: &[],
    },
    Concept {
        name: "preference",
        cues: &[
            "prefer",
            "prefers",
            "preferred",
            "preference",
            "favourite",
            "favorite",
            "likes",
            "like",
            "usual",
            "usually",
        ],
        keys: &["prefer", "favourite", "favorite", "usual"],
        not: &[],
    },
    Concept {
        name: "budget",
        cues: &[
            "budget", "afford", "spend", "price", "range", "max", "maximum",
        ],
        keys: &["budget", "price", "max_", "spend", "afford"],
        not: &[],
    },
    Concept {
        name: "payment",
        cues: &[
            "pay", "pays", "paying", "payment", "autopay", "debit", "card", "billing",
        ],
        keys: &["payment", "billing", "pay_", "card", "debit", "bank"],
        not: &["card_number_last"],
    },
    Concept {
        name: "contract",
        cues: &[
            "contract", "leave", "term", "ends", "expire", "expires", "renewal", "lease",
        ],
        keys: &["contract", "term", "end_date", "expir", "renewal", "lease"],
        not: &[],
    },
    Concept {
        name: "utility",
        cues: &[
            "meter",
            "tariff",
            "supply",
            "energy",
            "electricity",
            "gas",
            "water",
        ],
        keys: &["meter", "tariff", "supply", "mpan", "mprn"],
        not: &[],
    },
];

/// What a question asks, beyond its words.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct QueryIntent {
    /// What time the question is about, if any.
    pub time: Option<TimeIntent>,
    /// For the latest or first call: the span of time it is sought in
    /// ("the first call of 2026"), if the question names one.
    pub within: Option<(i64, i64)>,
    /// Standing facts it asks for ("where does he live"): facts whose key
    /// holds one of them answer it.
    pub concepts: Vec<Concept>,
    /// Whether it asks for a standing fact at all (a profile question),
    /// rather than about something that happened.
    pub profile: bool,
    /// Whether it asks for the caller's name.
    pub asks_name: bool,
    /// Whether it asks about something that happened (a verb such as
    /// "asked", "booked", "did") rather than a standing fact.
    pub event: bool,
    /// Positions (in [`words`]) of the words that only say when or ask
    /// in general ("last", "call", "about"): they are not the topic.
    pub(crate) non_topic: Vec<bool>,
    /// The question's words, lower-cased.
    pub words: Vec<String>,
}

impl QueryIntent {
    /// The words of the question that carry its topic: not stop words,
    /// not the time phrase, not generic call words.
    pub fn topic_words(&self) -> impl Iterator<Item = &str> {
        self.words
            .iter()
            .zip(&self.non_topic)
            .filter(|(w, skip)| !**skip && !is_stop(w))
            .map(|(w, _)| w.as_str())
    }

    /// Whether the question has a topic besides its time or profile cue.
    pub fn has_topic(&self) -> bool {
        self.topic_words().next().is_some()
    }
}

/// Words that say nothing about which memory answers.
const STOP: &[&str] = &[
    "a",
    "about",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anything",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "for",
    "from",
    "had",
    "has",
    "have",
    "he",
    "her",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "me",
    "my",
    "of",
    "on",
    "or",
    "our",
    "s",
    "she",
    "so",
    "that",
    "the",
    "their",
    "them",
    "they",
    "this",
    "those",
    "these",
    "to",
    "up",
    "us",
    "was",
    "we",
    "were",
    "what",
    "whats",
    "when",
    "where",
    "which",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "caller",
    "callers",
    "customer",
    "customers",
    "user",
    "agent",
    "tell",
    "know",
    "remember",
    "ever",
    "there",
    "again",
    "some",
    "get",
    "got",
    "said",
    "say",
    "says",
    "mention",
    "mentioned",
    "anybody",
    "someone",
    "person",
    "please",
    "any",
    "info",
    "information",
    "details",
    "detail",
    "record",
    "records",
    "note",
    "notes",
    "file",
    "just",
    "ll",
    "re",
    "ve",
    "d",
    "t",
    "m",
    "should",
    "need",
    "needs",
    "want",
    "wanted",
    "wants",
    "give",
    "gave",
    "let",
    "more",
    "than",
    "then",
    "very",
    "much",
    "many",
    "one",
    "ones",
    "thing",
    "things",
    "stuff",
    "happen",
    "happened",
    "regarding",
    "re",
    "concerning",
    "kind",
    "sort",
    "type",
];

/// Words about calls in general: with a time, they are not a topic.
const CALL_WORDS: &[&str] = &[
    "call",
    "calls",
    "called",
    "calling",
    "rang",
    "phoned",
    "time",
    "times",
    "talk",
    "talked",
    "talking",
    "spoke",
    "speak",
    "spoken",
    "discuss",
    "discussed",
    "discussion",
    "conversation",
    "conversations",
    "chat",
    "chatted",
    "contact",
    "contacted",
    "reach",
    "reached",
    "interaction",
    "visit",
    "enquiry",
    "inquiry",
    "reason",
    "about",
    "ring",
    "heard",
    "hear",
];

/// Whether `word` carries no topic.
pub(crate) fn is_stop(word: &str) -> bool {
    STOP.contains(&word)
}

const MONTHS: &[(&str, Month)] = &[
    ("january", Month::January),
    ("jan", Month::January),
    ("february", Month::February),
    ("feb", Month::February),
    ("march", Month::March),
    ("april", Month::April),
    ("apr", Month::April),
    ("may", Month::May),
    ("june", Month::June),
    ("jun", Month::June),
    ("july", Month::July),
    ("jul", Month::July),
    ("august", Month::August),
    ("aug", Month::August),
    ("september", Month::September),
    ("sept", Month::September),
    ("sep", Month::September),
    ("october", Month::October),
    ("oct", Month::October),
    ("november", Month::November),
    ("nov", Month::November),
    ("december", Month::December),
    ("dec", Month::December),
];

const WEEKDAYS: &[(&str, Weekday)] = &[
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

/// Nouns for a call or something done in one: "the last X" asks for the
/// latest call about X.
const EVENT_NOUNS: &[&str] = &[
    "call",
    "calls",
    "called",
    "time",
    "times",
    "conversation",
    "conversations",
    "contact",
    "chat",
    "visit",
    "visits",
    "booking",
    "bookings",
    "booked",
    "order",
    "orders",
    "ordered",
    "reservation",
    "reservations",
    "appointment",
    "appointments",
    "complaint",
    "complaints",
    "claim",
    "claims",
    "enquiry",
    "inquiry",
    "question",
    "questions",
    "issue",
    "issues",
    "problem",
    "problems",
    "request",
    "requests",
    "purchase",
    "purchases",
    "payment",
    "payments",
    "repair",
    "repairs",
    "service",
    "message",
    "interaction",
    "discussion",
    "thing",
    "one",
    "spoke",
    "talked",
    "rang",
    "phoned",
    "contacted",
    "reached",
    "update",
    "change",
    "visit",
    "delivery",
    "deliveries",
    "return",
    "returns",
    "refund",
    "refunds",
    "bill",
    "bills",
    "invoice",
    "query",
    "queries",
    "report",
    "incident",
    "quote",
    "quotes",
    "viewing",
    "viewings",
    "offer",
    "offers",
    "inspection",
    "treatment",
    "checkup",
    "check",
    "exam",
    "session",
    "job",
    "fault",
    "outage",
    "ticket",
];

const NUMBERS: &[(&str, usize)] = &[
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("a", 1),
    ("an", 1),
    ("couple", 2),
    ("few", 3),
    ("several", 4),
];

const ORDINALS: &[(&str, usize)] = &[
    ("first", 0),
    ("1st", 0),
    ("second", 1),
    ("2nd", 1),
    ("third", 2),
    ("3rd", 2),
    ("fourth", 3),
    ("4th", 3),
    ("fifth", 4),
    ("5th", 4),
];

const DAY: i64 = 86_400;

fn count(word: &str) -> Option<usize> {
    if let Ok(n) = word.parse::<usize>() {
        return (1..=60).contains(&n).then_some(n);
    }
    NUMBERS.iter().find(|(w, _)| *w == word).map(|(_, n)| *n)
}

fn month(word: &str) -> Option<Month> {
    MONTHS.iter().find(|(w, _)| *w == word).map(|(_, m)| *m)
}

fn weekday(word: &str) -> Option<Weekday> {
    WEEKDAYS.iter().find(|(w, _)| *w == word).map(|(_, d)| *d)
}

fn day_number(word: &str) -> Option<u8> {
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))
        .unwrap_or(word);
    digits.parse::<u8>().ok().filter(|d| (1..=31).contains(d))
}

fn year(word: &str) -> Option<i32> {
    word.parse::<i32>()
        .ok()
        .filter(|y| (1990..=2100).contains(y) && word.len() == 4)
}

fn unit_secs(word: &str) -> Option<i64> {
    match word {
        "day" | "days" => Some(DAY),
        "week" | "weeks" => Some(7 * DAY),
        "fortnight" | "fortnights" => Some(14 * DAY),
        "month" | "months" => Some(30 * DAY),
        "year" | "years" => Some(365 * DAY),
        _ => None,
    }
}

fn secs(date: Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp()
}

fn month_span(year: i32, month: Month) -> (i64, i64) {
    let start = Date::from_calendar_date(year, month, 1).unwrap_or(Date::MIN);
    let (ny, nm) = if month == Month::December {
        (year + 1, Month::January)
    } else {
        (year, month.next())
    };
    let end = Date::from_calendar_date(ny, nm, 1).unwrap_or(Date::MAX);
    (secs(start), secs(end))
}

/// The most recent `month` that has begun by `today` (this month if it
/// is `month`).
fn latest_month(today: Date, month: Month) -> i32 {
    if month as u8 <= today.month() as u8 {
        today.year()
    } else {
        today.year() - 1
    }
}

/// Seasons (northern hemisphere months), the most recent that has begun.
fn season_span(today: Date, first: Month, months: i64) -> (i64, i64) {
    let year = latest_month(today, first);
    let (start, _) = month_span(year, first);
    (start, start + months * 30 * DAY + 2 * DAY)
}

/// A word sequence of the question and where it is.
struct Words<'a> {
    w: &'a [String],
}

impl Words<'_> {
    fn at(&self, i: usize) -> &str {
        self.w.get(i).map_or("", String::as_str)
    }

    fn before(&self, i: usize) -> &str {
        if i == 0 { "" } else { self.at(i - 1) }
    }
}

/// Finds the first time phrase of `words`: the intent and which words
/// it took.
fn scan(words: &[String], today: Date, now_secs: i64) -> (Option<TimeIntent>, Vec<bool>) {
    let mut non_topic = vec![false; words.len()];
    let w = Words { w: words };
    let mut time = None;
    let mark = |from: usize, to: usize, non_topic: &mut Vec<bool>| {
        for flag in non_topic.iter_mut().take(to.min(words.len())).skip(from) {
            *flag = true;
        }
    };
    let mut i = 0;
    while i < words.len() && time.is_none() {
        let word = w.at(i);
        let next = w.at(i + 1);
        let next2 = w.at(i + 2);
        // N calls ago / N weeks ago / three months back.
        if (word == "ago" || (word == "back" && i >= 1 && unit_secs(w.at(i - 1)).is_some()))
            && i >= 1
        {
            let unit = w.at(i - 1);
            // "three weeks ago", "a couple of weeks ago", "weeks ago".
            let (n, from) = match count(w.before(i - 1)) {
                Some(n) => (n, i - 2),
                None if w.before(i - 1) == "of" && i >= 3 => {
                    (count(w.at(i - 3)).unwrap_or(2), i.saturating_sub(4))
                }
                None => (1, i - 1),
            };
            if let Some(len) = unit_secs(unit) {
                let centre = now_secs - n as i64 * len;
                let half = (len / 2).max(DAY);
                time = Some(TimeIntent::Window {
                    start: centre - half,
                    end: centre + half,
                });
                mark(from, i + 1, &mut non_topic);
            } else if EVENT_NOUNS.contains(&unit) || unit == "ones" {
                time = Some(TimeIntent::Latest {
                    skip: n.saturating_sub(1),
                });
                mark(from, i + 1, &mut non_topic);
            }
        }
        // The week before last.
        else if word == "week" && next == "before" && next2 == "last" {
            let monday = secs(today) - i64::from(today.weekday().number_days_from_monday()) * DAY;
            time = Some(TimeIntent::Window {
                start: monday - 14 * DAY - DAY,
                end: monday - 7 * DAY + DAY,
            });
            mark(i.saturating_sub(1), i + 3, &mut non_topic);
        }
        // Before last, the time before (that), second to last, penultimate.
        else if word == "before"
            && (matches!(next, "last" | "that")
                || (matches!(next, "his" | "her" | "their" | "the")
                    && (matches!(next2, "last" | "latest" | "previous")
                        || (next2 == "most" && w.at(i + 3) == "recent")))
                || (next.is_empty() && matches!(w.before(i), "time" | "one" | "call")))
        {
            time = Some(TimeIntent::Latest { skip: 1 });
            mark(i, i + 2, &mut non_topic);
        }
        // The other week, a while ago.
        else if word == "other" && next == "week" {
            time = Some(TimeIntent::Window {
                start: now_secs - 24 * DAY,
                end: now_secs - 4 * DAY,
            });
            mark(i.saturating_sub(1), i + 2, &mut non_topic);
        } else if word == "while" && matches!(next, "ago" | "back") {
            time = Some(TimeIntent::Window {
                start: 0,
                end: now_secs - 30 * DAY,
            });
            mark(i.saturating_sub(1), i + 2, &mut non_topic);
        } else if word == "penultimate"
            || (word == "last" && next == "but" && next2 == "one")
            || (matches!(word, "second" | "2nd") && matches!(next, "last" | "latest"))
            || (matches!(word, "second" | "2nd") && next == "to" && next2 == "last")
            || (word == "next" && next == "to" && next2 == "last")
        {
            time = Some(TimeIntent::Latest { skip: 1 });
            let len = if word == "penultimate" {
                1
            } else if next == "to" || next == "but" {
                3
            } else {
                2
            };
            mark(i, i + len, &mut non_topic);
        } else if matches!(word, "third" | "3rd") && next == "to" && next2 == "last" {
            time = Some(TimeIntent::Latest { skip: 2 });
            mark(i, i + 3, &mut non_topic);
        }
        // Yesterday, today, this/last week, month, year.
        else if word == "yesterday" {
            let start = secs(today) - DAY;
            time = Some(TimeIntent::Window {
                start,
                end: start + DAY,
            });
            mark(i, i + 1, &mut non_topic);
        } else if word == "today" || (word == "this" && matches!(next, "morning" | "afternoon")) {
            time = Some(TimeIntent::Window {
                start: secs(today),
                end: now_secs + 1,
            });
            mark(i, i + if word == "today" { 1 } else { 2 }, &mut non_topic);
        } else if matches!(word, "last" | "past" | "previous" | "this")
            && let Some(span) = relative_span(word, next, next2, today, now_secs)
        {
            time = Some(span.0);
            mark(i, i + span.1, &mut non_topic);
        } else if matches!(word, "in" | "within" | "over" | "during")
            && matches!(next, "the" | "these")
            && matches!(next2, "last" | "past")
        {
            // "in the last few weeks", "in the past month".
            let (n, unit) = match count(w.at(i + 3)) {
                Some(n) => (n, w.at(i + 4)),
                None => (1, w.at(i + 3)),
            };
            if let Some(len) = unit_secs(unit) {
                time = Some(TimeIntent::Window {
                    start: now_secs - n as i64 * len,
                    end: now_secs + 1,
                });
                mark(i, i + 5, &mut non_topic);
            }
        } else if word == "earlier" && next == "this" && matches!(next2, "year" | "month" | "week")
        {
            let start = match next2 {
                "year" => {
                    secs(Date::from_calendar_date(today.year(), Month::January, 1).unwrap_or(today))
                }
                "month" => month_span(today.year(), today.month()).0,
                _ => secs(today) - i64::from(today.weekday().number_days_from_monday()) * DAY,
            };
            time = Some(TimeIntent::Window {
                start,
                end: now_secs + 1,
            });
            mark(i, i + 3, &mut non_topic);
        }
        // A month: "in March", "March 3rd", "3rd of March", "March 2025".
        else if let Some(m) = month(word).filter(|_| {
            word != "may"
                || matches!(
                    w.before(i),
                    "in" | "of"
                        | "during"
                        | "since"
                        | "early"
                        | "mid"
                        | "late"
                        | "last"
                        | "back"
                        | "from"
                        | "until"
                        | "before"
                        | "after"
                )
                || day_number(next).is_some()
                || year(next).is_some()
        }) && !(word == "march" && matches!(next, "on" | "in"))
        {
            let explicit_year = year(next).or_else(|| year(next2));
            // "October last year", "March of last year", "May this year".
            let relative_year = (1..=3).find_map(|k| match (w.at(i + k), w.at(i + k + 1)) {
                ("last" | "previous", "year") => Some((today.year() - 1, i + k + 2)),
                ("this", "year") => Some((today.year(), i + k + 2)),
                _ => None,
            });
            let y = explicit_year
                .or(relative_year.map(|(y, _)| y))
                .unwrap_or_else(|| latest_month(today, m));
            if let Some((_, end)) = relative_year {
                mark(i, end, &mut non_topic);
            }
            let (mut start, mut end) = month_span(y, m);
            let mut used = 1;
            if let Some(d) = day_number(next).or_else(|| {
                // "3rd of March", "the 3rd March"
                let before = if w.before(i) == "of" {
                    i.saturating_sub(2)
                } else {
                    i.saturating_sub(1)
                };
                (i > 0).then(|| day_number(w.at(before))).flatten()
            }) && let Ok(date) = Date::from_calendar_date(y, m, d)
            {
                start = secs(date) - DAY;
                end = secs(date) + 2 * DAY;
                used = if day_number(next).is_some() { 2 } else { 1 };
            } else {
                let lead = if w.before(i) == "of" {
                    w.at(i.saturating_sub(2))
                } else {
                    w.before(i)
                };
                match lead {
                    "early" | "start" | "beginning" => end = start + 11 * DAY,
                    "mid" | "middle" => {
                        start += 9 * DAY;
                        end = start + 13 * DAY;
                    }
                    "late" | "end" => start = end - 12 * DAY,
                    _ => {}
                }
            }
            time = Some(TimeIntent::Window { start, end });
            let from = i.saturating_sub(1);
            mark(
                from,
                i + used + usize::from(explicit_year.is_some()),
                &mut non_topic,
            );
        }
        // "over the weekend", "at the weekend": the last one.
        else if word == "weekend" {
            let monday = secs(today) - i64::from(today.weekday().number_days_from_monday()) * DAY;
            time = Some(TimeIntent::Window {
                start: monday - 2 * DAY,
                end: monday + DAY,
            });
            mark(i.saturating_sub(2), i + 1, &mut non_topic);
        }
        // Quarters: "Q3", "the first quarter".
        else if let Some(q) = quarter(word, next) {
            let first = Month::try_from(1 + 3 * q).unwrap_or(Month::January);
            let y = year(next)
                .or_else(|| year(next2))
                .unwrap_or_else(|| latest_month(today, first));
            let (start, _) = month_span(y, first);
            let (_, end) = month_span(y, Month::try_from(3 + 3 * q).unwrap_or(Month::March));
            time = Some(TimeIntent::Window { start, end });
            mark(i.saturating_sub(1), i + 2, &mut non_topic);
        }
        // The start or end of a year: "the start of the year", "end of last year".
        else if matches!(word, "start" | "beginning" | "end")
            && next == "of"
            && let Some((y, used)) = match (w.at(i + 2), w.at(i + 3)) {
                ("the" | "this", "year") => Some((today.year(), 4)),
                ("last" | "previous", "year") => Some((today.year() - 1, 4)),
                (y, _) if year(y).is_some() => year(y).map(|y| (y, 3)),
                _ => None,
            }
        {
            let (start, end) = if word == "end" {
                (
                    month_span(y, Month::October).0,
                    month_span(y, Month::December).1,
                )
            } else {
                (
                    month_span(y, Month::January).0,
                    month_span(y, Month::February).1,
                )
            };
            time = Some(TimeIntent::Window { start, end });
            mark(i.saturating_sub(1), i + used, &mut non_topic);
        }
        // Easter, roughly.
        else if word == "easter" {
            let y = latest_month(today, Month::April);
            let start = secs(Date::from_calendar_date(y, Month::March, 20).unwrap_or(today));
            let end = secs(Date::from_calendar_date(y, Month::May, 1).unwrap_or(today));
            time = Some(TimeIntent::Window { start, end });
            mark(i.saturating_sub(1), i + 1, &mut non_topic);
        }
        // A season or holiday.
        // Only when said as a time ("in the spring", "last summer",
        // "summer 2025"): "spring flowers" and "winter tyres" are not.
        else if let Some((first, months)) = match word {
            "spring" => Some((Month::March, 3)),
            "summer" => Some((Month::June, 3)),
            "autumn" => Some((Month::September, 3)),
            "fall" => Some((Month::September, 3)),
            "winter" => Some((Month::December, 3)),
            _ => None,
        }
        .filter(|_| {
            let lead = |w: &str| {
                matches!(
                    w,
                    "in" | "during"
                        | "over"
                        | "last"
                        | "this"
                        | "since"
                        | "before"
                        | "after"
                        | "early"
                        | "late"
                        | "mid"
                        | "of"
                        | "through"
                        | "until"
                )
            };
            lead(w.before(i))
                || (w.before(i) == "the" && lead(w.at(i.saturating_sub(2))))
                || year(next).is_some()
                || year(w.before(i)).is_some()
                || (next == "of" && year(next2).is_some())
        }) {
            // "summer 2025", "the summer of 2025", "the 2025 summer".
            let explicit = year(next)
                .or_else(|| (next == "of").then(|| year(next2)).flatten())
                .or_else(|| year(w.before(i)));
            let (start, end) = match explicit {
                Some(y) => {
                    let (start, _) = month_span(y, first);
                    (start, start + months * 30 * DAY + 2 * DAY)
                }
                None => season_span(today, first, months),
            };
            time = Some(TimeIntent::Window { start, end });
            let used = if explicit.is_some() && next == "of" {
                3
            } else {
                2
            };
            mark(i.saturating_sub(2), i + used, &mut non_topic);
        } else if word == "new" && next == "year" {
            let y = if today.month() == Month::December && today.day() >= 26 {
                today.year()
            } else {
                today.year() - 1
            };
            let start = secs(Date::from_calendar_date(y, Month::December, 26).unwrap_or(today));
            time = Some(TimeIntent::Window {
                start,
                end: start + 16 * DAY,
            });
            mark(i.saturating_sub(1), i + 2, &mut non_topic);
        } else if matches!(word, "christmas" | "xmas" | "holidays") {
            let y = if today.month() == Month::December && today.day() >= 15 {
                today.year()
            } else {
                today.year() - 1
            };
            let start = secs(Date::from_calendar_date(y, Month::December, 15).unwrap_or(today));
            time = Some(TimeIntent::Window {
                start,
                end: start + 22 * DAY,
            });
            mark(i.saturating_sub(1), i + 1, &mut non_topic);
        }
        // A year: "in 2025".
        else if let Some(y) = year(word).filter(|_| {
            matches!(
                w.before(i),
                "in" | "during" | "of" | "since" | "from" | "back"
            )
        }) {
            let start = secs(Date::from_calendar_date(y, Month::January, 1).unwrap_or(today));
            let end = secs(Date::from_calendar_date(y + 1, Month::January, 1).unwrap_or(today));
            time = Some(TimeIntent::Window { start, end });
            mark(i.saturating_sub(1), i + 1, &mut non_topic);
        }
        // A day of the month alone: "on the 14th".
        else if word == "the"
            && let Some(d) = day_number(next).filter(|_| {
                matches!(w.before(i), "on" | "of") && month(next2).is_none() && next.len() > 2
            })
        {
            let mut day = None;
            let mut probe = today;
            for _ in 0..3 {
                if let Ok(date) = Date::from_calendar_date(probe.year(), probe.month(), d)
                    && date <= today
                {
                    day = Some(date);
                    break;
                }
                let (y, m) = if probe.month() == Month::January {
                    (probe.year() - 1, Month::December)
                } else {
                    (probe.year(), probe.month().previous())
                };
                probe = Date::from_calendar_date(y, m, 1).unwrap_or(probe);
            }
            if let Some(date) = day {
                time = Some(TimeIntent::Window {
                    start: secs(date),
                    end: secs(date) + DAY,
                });
                mark(i.saturating_sub(1), i + 2, &mut non_topic);
            }
        }
        // A weekday: "on Tuesday", "last Friday".
        else if let Some(d) = weekday(word) {
            let back = (7 + i64::from(today.weekday().number_days_from_monday())
                - i64::from(d.number_days_from_monday()))
                % 7;
            let back = if back == 0 { 7 } else { back };
            let day = secs(today) - back * DAY;
            time = Some(TimeIntent::Window {
                start: day,
                end: day + DAY,
            });
            mark(i.saturating_sub(1), i + 1, &mut non_topic);
        }
        // Latest: "most recent", "latest", "last call", "previous", "recently".
        else if (word == "most" && matches!(next, "recent" | "recently" | "latest"))
            || matches!(word, "latest" | "newest" | "recent" | "recently" | "lately")
            || (word == "last" && !is_time_unit(next) && !not_a_time(next))
            || (matches!(word, "previous" | "prior") && !is_time_unit(next) && !not_a_time(next))
            || (word == "other" && next == "day" && w.before(i) == "the")
        {
            time = Some(TimeIntent::Latest { skip: 0 });
            let len = if word == "most" || word == "other" {
                2
            } else {
                1
            };
            let from = if word == "other" { i - 1 } else { i };
            mark(
                from,
                from + len + usize::from(word == "other"),
                &mut non_topic,
            );
            // "last call", "previous time": the call word is no topic.
            if matches!(
                next,
                "call" | "time" | "conversation" | "contact" | "chat" | "spoke"
            ) {
                mark(i + 1, i + 2, &mut non_topic);
            }
        }
        // Earliest: "first time", "first called", "earliest", "originally".
        else if let Some(skip) = ORDINALS
            .iter()
            .find(|(o, _)| *o == word)
            .map(|(_, n)| *n)
            .filter(|_| {
                EVENT_NOUNS.contains(&next)
                    || next.is_empty()
                    || matches!(next, "ever" | "got" | "came" | "reached" | "booked")
                    || (matches!(w.before(i), "she" | "he" | "they" | "we" | "i" | "caller")
                        && word == "first")
            })
            .filter(|_| !matches!(next, "name" | "names"))
        {
            time = Some(TimeIntent::Earliest { skip });
            mark(
                i.saturating_sub(usize::from(w.before(i) == "very")),
                i + 1,
                &mut non_topic,
            );
            if matches!(next, "call" | "time" | "conversation" | "contact" | "ever") {
                mark(i + 1, i + 2, &mut non_topic);
            }
        } else if matches!(
            word,
            "earliest" | "originally" | "initially" | "oldest" | "initial"
        ) {
            time = Some(TimeIntent::Earliest { skip: 0 });
            mark(i, i + 1, &mut non_topic);
        }
        i += 1;
    }

    // "since March" runs to now; "before the summer" ends where it begins.
    if let Some(TimeIntent::Window { start, end }) = time
        && let Some(first) = non_topic.iter().position(|t| *t)
    {
        let lead = |k: usize| (first >= k).then(|| words[first - k].as_str());
        let modifier = [0, 1, 2]
            .into_iter()
            .filter_map(lead)
            .find(|w| matches!(*w, "since" | "after" | "before"));
        match modifier {
            Some("since") => {
                time = Some(TimeIntent::Window {
                    start,
                    end: now_secs + 1,
                })
            }
            Some("after") => {
                time = Some(TimeIntent::Window {
                    start: end,
                    end: now_secs + 1,
                })
            }
            Some("before") => {
                time = Some(TimeIntent::Window {
                    start: start - 90 * DAY,
                    end: start,
                });
            }
            _ => {}
        }
    }

    (time, non_topic)
}

/// Reads `text` as asked at `now`.
pub fn parse(text: &str, now: UnixTimestamp) -> QueryIntent {
    parse_with_names(text, now, &|_| false)
}

/// Reads `text` as asked at `now`, knowing which words are the caller's
/// name (they say nothing about what is asked).
pub(crate) fn parse_with_names(
    text: &str,
    now: UnixTimestamp,
    is_name: &dyn Fn(&str) -> bool,
) -> QueryIntent {
    let words: Vec<String> = super::lexical::question_words(text);
    let today = OffsetDateTime::from_unix_timestamp(now.as_secs())
        .map(OffsetDateTime::date)
        .unwrap_or(Date::MIN);
    let now_secs = now.as_secs();
    let (mut time, mut non_topic) = scan(&words, today, now_secs);
    if time.is_none()
        && let Some(date) = numeric_date(text, today)
    {
        time = Some(TimeIntent::Window {
            start: secs(date) - DAY,
            end: secs(date) + 2 * DAY,
        });
        for (flag, word) in non_topic.iter_mut().zip(&words) {
            if word.bytes().all(|b| b.is_ascii_digit()) {
                *flag = true;
            }
        }
    }
    // A second phrase narrows the first: "the first call of 2026", "in
    // March, what was the last thing she booked".
    let mut within = None;
    if time.is_some() {
        let rest: Vec<usize> = (0..words.len()).filter(|i| !non_topic[*i]).collect();
        let rest_words: Vec<String> = rest.iter().map(|i| words[*i].clone()).collect();
        let (second, marks) = scan(&rest_words, today, now_secs);
        let combined = match (time, second) {
            (
                Some(TimeIntent::Latest { .. } | TimeIntent::Earliest { .. }),
                Some(TimeIntent::Window { start, end }),
            ) => {
                within = Some((start, end));
                true
            }
            (
                Some(TimeIntent::Window { start, end }),
                Some(ordinal @ (TimeIntent::Latest { .. } | TimeIntent::Earliest { .. })),
            ) => {
                within = Some((start, end));
                time = Some(ordinal);
                true
            }
            _ => false,
        };
        if combined {
            for (k, i) in rest.iter().enumerate() {
                if marks[k] {
                    non_topic[*i] = true;
                }
            }
        }
    }

    // Words about calls in general are no topic when there is a time, or
    // another topic ("did we talk about the refinance").
    let other_topic = words
        .iter()
        .zip(&non_topic)
        .any(|(w, skip)| !*skip && !is_stop(w) && !CALL_WORDS.contains(&w.as_str()));
    if time.is_some() || other_topic {
        for (flag, word) in non_topic.iter_mut().zip(&words) {
            if CALL_WORDS.contains(&word.as_str()) {
                *flag = true;
            }
        }
    }

    let asks_name = asks_for_name(&words);
    let concepts: Vec<Concept> = CONCEPTS
        .iter()
        .filter(|c| words.iter().any(|w| c.cues.contains(&w.as_str())))
        .copied()
        .collect();
    let event = has_event_verb(&words);
    let profile =
        time.is_none() && (asks_name || is_profile_question(&words, &concepts, event, is_name));
    QueryIntent {
        time,
        within,
        concepts,
        profile,
        asks_name,
        event,
        non_topic,
        words,
    }
}

/// The quarter (0 to 3) named by `word` ("q3") or `word next` ("third
/// quarter").
fn quarter(word: &str, next: &str) -> Option<u8> {
    match word {
        "q1" => Some(0),
        "q2" => Some(1),
        "q3" => Some(2),
        "q4" => Some(3),
        _ if next == "quarter" => ORDINALS
            .iter()
            .find(|(o, _)| *o == word)
            .and_then(|(_, n)| u8::try_from(*n).ok())
            .filter(|n| *n < 4),
        _ => None,
    }
}

/// A date written in figures ("2026-03-14", "14/03/2026", "3/14"): the
/// day, read the way that gives the latest date not after `today` when
/// day and month could be swapped.
fn numeric_date(text: &str, today: Date) -> Option<Date> {
    for chunk in text.split_whitespace() {
        let chunk = chunk.trim_matches(|c: char| !c.is_ascii_digit());
        let parts: Vec<&str> = chunk.split(['-', '/', '.']).collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            continue;
        }
        let nums: Vec<i32> = parts.iter().filter_map(|p| p.parse().ok()).collect();
        if nums.len() != parts.len() {
            continue;
        }
        let year_of = |y: i32| if y < 100 { 2000 + y } else { y };
        let mut options: Vec<(i32, i32, i32)> = Vec::new();
        if parts[0].len() == 4 && nums.len() == 3 {
            options.push((nums[0], nums[1], nums[2]));
        } else {
            let y = nums.get(2).map_or(today.year(), |y| year_of(*y));
            options.push((y, nums[1], nums[0]));
            options.push((y, nums[0], nums[1]));
        }
        let best = options
            .into_iter()
            .filter_map(|(y, m, d)| {
                let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
                Date::from_calendar_date(y, month, u8::try_from(d).ok()?).ok()
            })
            .filter(|d| *d <= today)
            .max();
        if best.is_some() {
            return best;
        }
    }
    None
}

/// Words after "last" that make it no time: "last name", "last four
/// digits".
fn not_a_time(word: &str) -> bool {
    matches!(
        word,
        "name" | "names" | "four" | "4" | "digits" | "digit" | "number" | "numbers" | "minute"
    )
}

fn is_time_unit(word: &str) -> bool {
    unit_secs(word).is_some()
        || matches!(
            word,
            "night"
                | "evening"
                | "morning"
                | "weekend"
                | "summer"
                | "spring"
                | "autumn"
                | "fall"
                | "winter"
                | "christmas"
                | "quarter"
        )
        || month(word).is_some()
        || weekday(word).is_some()
}

/// "last week", "past month", "this year", "last three months"…: the span
/// and how many words it took.
fn relative_span(
    word: &str,
    next: &str,
    next2: &str,
    today: Date,
    now: i64,
) -> Option<(TimeIntent, usize)> {
    let monday = secs(today) - i64::from(today.weekday().number_days_from_monday()) * DAY;
    let window = |start: i64, end: i64| TimeIntent::Window { start, end };
    if let (Some(n), Some(len)) = (count(next), unit_secs(next2)) {
        // "last three months", "past 2 weeks"
        if word != "this" {
            return Some((window(now - n as i64 * len, now + 1), 3));
        }
    }
    let span = match (word, next) {
        ("this", "week") => window(monday, now + 1),
        ("last" | "previous", "week") => window(monday - 7 * DAY - DAY, monday + DAY),
        ("past", "week") => window(now - 7 * DAY, now + 1),
        ("this", "month") => window(month_span(today.year(), today.month()).0, now + 1),
        ("last" | "previous", "month") => {
            let prev = today.month().previous();
            let y = if prev == Month::December {
                today.year() - 1
            } else {
                today.year()
            };
            let (s, e) = month_span(y, prev);
            window(s - 2 * DAY, e + 2 * DAY)
        }
        ("past", "month") => window(now - 31 * DAY, now + 1),
        ("this", "year") => window(
            secs(Date::from_calendar_date(today.year(), Month::January, 1).ok()?),
            now + 1,
        ),
        ("last" | "previous", "year") => window(
            secs(Date::from_calendar_date(today.year() - 1, Month::January, 1).ok()?),
            secs(Date::from_calendar_date(today.year(), Month::January, 1).ok()?),
        ),
        ("past", "year") => window(now - 365 * DAY, now + 1),
        ("last", "night" | "evening") => window(secs(today) - DAY, secs(today)),
        ("this" | "last", "weekend") => {
            let saturday = monday - 2 * DAY;
            let saturday = if word == "this" && today.weekday() as u8 >= Weekday::Saturday as u8 {
                monday + 5 * DAY
            } else {
                saturday
            };
            window(saturday, saturday + 2 * DAY)
        }
        ("last" | "this", "fortnight") | ("past", "fortnight") => window(now - 14 * DAY, now + 1),
        _ => return None,
    };
    Some((span, 2))
}

fn asks_for_name(words: &[String]) -> bool {
    let has = |w: &str| words.iter().any(|x| x == w);
    (has("name") || has("names") || has("called") && has("who"))
        && !has("account")
        && !has("company")
        || (has("who") && (has("is") || has("am")) && words.len() <= 4 && !has("doctor"))
}

/// Verbs of something that happened in a call.
const EVENT_VERBS: &[&str] = &[
    "asked",
    "ask",
    "book",
    "booked",
    "booking",
    "order",
    "ordered",
    "complain",
    "complained",
    "complaint",
    "report",
    "reported",
    "happened",
    "problem",
    "issue",
    "wrong",
    "discuss",
    "discussed",
    "talk",
    "talked",
    "called",
    "calling",
    "mentioned",
    "request",
    "requested",
    "did",
    "cancel",
    "cancelled",
    "canceled",
    "change",
    "changed",
    "quote",
    "quoted",
    "paid",
    "buy",
    "bought",
    "claim",
    "claimed",
    "waived",
    "refunded",
    "sent",
    "arranged",
    "scheduled",
    "rescheduled",
    "offered",
    "agreed",
    "went",
];

/// Whether the question asks about something that happened: an event
/// verb, or "call"/"ring" unless said of reaching the caller ("the
/// best number to call her on").
fn has_event_verb(words: &[String]) -> bool {
    words.iter().enumerate().any(|(i, w)| {
        let next = words.get(i + 1).map_or("", String::as_str);
        match w.as_str() {
            "call" | "ring" => !matches!(next, "her" | "him" | "them" | "back" | "on" | "at"),
            // "what's his company called": a name, not a call.
            "called" | "named" if i + 1 == words.len() && i >= 2 => false,
            other => EVENT_VERBS.contains(&other),
        }
    })
}

/// Whether the question asks for a standing fact rather than an event.
fn is_profile_question(
    words: &[String],
    concepts: &[Concept],
    event_verb: bool,
    is_name: &dyn Fn(&str) -> bool,
) -> bool {
    if event_verb {
        return false;
    }
    let has = |w: &str| words.iter().any(|x| x == w);
    let cue = |w: &str| concepts.iter().any(|c| c.cues.contains(&w));
    // The words that say what else the question is about: a profile
    // question is mostly its cue ("where does she live now").
    let others = words
        .iter()
        .filter(|w| !is_stop(w) && !cue(w) && !is_name(w) && !PROFILE_FILLERS.contains(&w.as_str()))
        .count();
    if !concepts.is_empty() {
        return others <= 2;
    }
    // "what is her X", "her X", "is she on X".
    let possessive = has("her") || has("his") || has("their");
    let present = words.first().is_some_and(|w| {
        matches!(
            w.as_str(),
            "is" | "are"
                | "does"
                | "do"
                | "has"
                | "have"
                | "what"
                | "which"
                | "who"
                | "where"
                | "how"
        )
    }) && ["is", "does", "do", "has", "have", "are"]
        .iter()
        .any(|w| has(w));
    (possessive || present) && others <= 2
}

/// Words a profile question may hold besides its cue.
const PROFILE_FILLERS: &[&str] = &[
    "now",
    "current",
    "currently",
    "best",
    "usual",
    "main",
    "primary",
    "still",
    "today",
    "exactly",
    "again",
    "us",
    "called",
    "named",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 30 November 2026, 17:00 UTC.
    fn now() -> UnixTimestamp {
        UnixTimestamp::from_secs(1_796_058_000).unwrap()
    }

    fn day(y: i32, m: Month, d: u8) -> i64 {
        secs(Date::from_calendar_date(y, m, d).unwrap())
    }

    fn window(q: &str) -> (i64, i64) {
        match parse(q, now()).time {
            Some(TimeIntent::Window { start, end }) => (start, end),
            other => panic!("{q:?}: {other:?}"),
        }
    }

    fn topic(q: &str) -> Vec<String> {
        parse(q, now()).topic_words().map(str::to_owned).collect()
    }

    #[test]
    fn the_fixed_now_is_a_monday() {
        let today = OffsetDateTime::from_unix_timestamp(now().as_secs()).unwrap();
        assert_eq!(today.weekday(), Weekday::Monday);
        assert_eq!(
            today.date(),
            Date::from_calendar_date(2026, Month::November, 30).unwrap()
        );
    }

    #[test]
    fn latest_and_skips() {
        for q in [
            "what was her most recent call about",
            "what happened last time he called",
            "the latest thing he booked",
            "previous call",
            "last call summary",
            "what did she call about recently",
            "when did he call last",
        ] {
            assert_eq!(
                parse(q, now()).time,
                Some(TimeIntent::Latest { skip: 0 }),
                "{q}"
            );
        }
        for q in [
            "two calls ago",
            "the call before last",
            "second to last call",
            "penultimate call",
            "the one before last",
        ] {
            assert_eq!(
                parse(q, now()).time,
                Some(TimeIntent::Latest { skip: 1 }),
                "{q}"
            );
        }
        assert_eq!(
            parse("three calls ago", now()).time,
            Some(TimeIntent::Latest { skip: 2 })
        );
    }

    #[test]
    fn earliest_and_ordinals() {
        for q in [
            "the first time she called",
            "what was his first call about",
            "when she first called",
            "earliest contact",
            "what did she originally call about",
        ] {
            assert_eq!(
                parse(q, now()).time,
                Some(TimeIntent::Earliest { skip: 0 }),
                "{q}"
            );
        }
        assert_eq!(
            parse("her second call", now()).time,
            Some(TimeIntent::Earliest { skip: 1 })
        );
        assert_eq!(parse("what is her first name", now()).time, None);
    }

    #[test]
    fn months_weeks_and_days() {
        assert_eq!(
            window("what did we discuss in March"),
            (day(2026, Month::March, 1), day(2026, Month::April, 1))
        );
        // December has not come yet this year: last December.
        assert_eq!(
            window("anything in December"),
            (day(2025, Month::December, 1), day(2026, Month::January, 1))
        );
        assert_eq!(
            window("march 2025"),
            (day(2025, Month::March, 1), day(2025, Month::April, 1))
        );
        let (s, e) = window("the call on March 3rd");
        assert!(s <= day(2026, Month::March, 3) && e > day(2026, Month::March, 3) + DAY - 1);
        let (s, e) = window("what did she call about last week");
        assert!(s <= day(2026, Month::November, 23) && e >= day(2026, Month::November, 30));
        assert!(e <= day(2026, Month::December, 1));
        assert_eq!(
            window("yesterday"),
            (
                day(2026, Month::November, 29),
                day(2026, Month::November, 30)
            )
        );
        let (s, e) = window("about three weeks ago");
        assert!(s < day(2026, Month::November, 9) && e > day(2026, Month::November, 9));
        let (s, e) = window("back in the summer");
        assert_eq!(s, day(2026, Month::June, 1));
        assert!(e >= day(2026, Month::August, 31));
        assert_eq!(
            window("last friday"),
            (
                day(2026, Month::November, 27),
                day(2026, Month::November, 28)
            )
        );
        assert_eq!(
            window("calls in 2025"),
            (day(2025, Month::January, 1), day(2026, Month::January, 1))
        );
        let (s, _) = window("last month");
        assert!(s <= day(2026, Month::October, 1));
    }

    #[test]
    fn more_ways_of_saying_when() {
        let within = |q: &str, day_: i64| {
            let (s, e) = window(q);
            assert!(s <= day_ && day_ < e, "{q}: {s}..{e} misses {day_}");
        };
        within("three months back", day(2026, Month::August, 30));
        within("the other week", day(2026, Month::November, 16));
        within("over the weekend", day(2026, Month::November, 28));
        within("the week before last", day(2026, Month::November, 18));
        within("in Q3", day(2026, Month::August, 1));
        within("the first quarter", day(2026, Month::February, 1));
        within("at the start of the year", day(2026, Month::January, 20));
        within("at the end of last year", day(2025, Month::November, 20));
        within("around Easter", day(2026, Month::April, 5));
        within("the summer of 2025", day(2025, Month::July, 10));
        within("at the beginning of October", day(2026, Month::October, 5));
        within(
            "what did he ring about on the 14th",
            day(2026, Month::November, 14),
        );
        within("the call on 2026-03-14", day(2026, Month::March, 14));
        within("the call on 14/03/2026", day(2026, Month::March, 14));
        within("since March", day(2026, Month::October, 1));
        within("after the summer", day(2026, Month::October, 1));
        within("before Christmas", day(2025, Month::December, 1));
        within("a while ago", day(2025, Month::June, 1));
        assert_eq!(
            parse("the time before that", now()).time,
            Some(TimeIntent::Latest { skip: 1 })
        );
        assert_eq!(
            parse("her prior booking", now()).time,
            Some(TimeIntent::Latest { skip: 0 })
        );
        assert_eq!(
            parse("the initial call", now()).time,
            Some(TimeIntent::Earliest { skip: 0 })
        );
        for q in [
            "the call before his most recent one",
            "the call before her last one",
        ] {
            assert_eq!(
                parse(q, now()).time,
                Some(TimeIntent::Latest { skip: 1 }),
                "{q}"
            );
        }
        // A first or last call within a span.
        let q = parse("his first call of 2026", now());
        assert_eq!(q.time, Some(TimeIntent::Earliest { skip: 0 }));
        assert_eq!(
            q.within,
            Some((day(2026, Month::January, 1), day(2027, Month::January, 1)))
        );
        let q = parse("in March, what was the last thing she booked", now());
        assert_eq!(q.time, Some(TimeIntent::Latest { skip: 0 }));
        assert_eq!(
            q.within,
            Some((day(2026, Month::March, 1), day(2026, Month::April, 1)))
        );
        assert_eq!(q.topic_words().collect::<Vec<_>>(), vec!["booked"]);
        // Not times.
        for q in [
            "what is her account number ending 2029",
            "on the 3 bedroom house",
            "her last name",
            "spring flowers",
            "did he buy winter tyres",
            "the summer house booking",
        ] {
            assert_eq!(parse(q, now()).time, None, "{q}");
        }
    }

    #[test]
    fn may_is_a_month_only_when_it_reads_as_one() {
        assert!(parse("may I ask about the refund", now()).time.is_none());
        assert!(matches!(
            parse("what did he book in May", now()).time,
            Some(TimeIntent::Window { .. })
        ));
    }

    #[test]
    fn time_words_and_call_words_are_not_the_topic() {
        assert_eq!(
            topic("what was her most recent call about"),
            Vec::<String>::new()
        );
        assert_eq!(topic("the latest thing he booked"), vec!["booked"]);
        assert_eq!(
            topic("the most recent billing question"),
            vec!["billing", "question"]
        );
        assert_eq!(topic("did we talk about roses in March"), vec!["roses"]);
        // Call words are no topic beside another, and the topic alone.
        assert_eq!(topic("did she call about the leak"), vec!["leak"]);
        assert_eq!(topic("did she call"), vec!["call"]);
    }

    #[test]
    fn profile_questions_and_concepts() {
        let q = parse("where does he live", now());
        assert!(q.profile);
        assert_eq!(q.concepts[0].name, "residence");
        assert!(q.concepts[0].matches_key("home_city"));
        assert!(!q.concepts[0].matches_key("email"));
        let q = parse("how do we reach her", now());
        assert!(q.profile && q.concepts.iter().any(|c| c.matches_key("email_address")));
        assert!(parse("what insurance does she have", now()).profile);
        assert!(parse("her email", now()).profile);
        assert!(!parse("did she ask about insurance for the crown", now()).profile);
        assert!(parse("what's her name", now()).asks_name);
        assert!(!parse("what did Dana book", now()).asks_name);
    }
}
