//! Who is calling: a usable phone number, or no identity and why.

use crate::PhoneNumber;

/// Why a raw caller id gives no identity. Memory is never read or written
/// under such a value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NoIdentity {
    /// No caller id was sent, or it was empty or blank.
    Missing,
    /// The network withheld the number (`anonymous`, `restricted`,
    /// `unknown`, `private`, `unavailable`, or a keypad encoding of those
    /// such as `+266696687`).
    Withheld,
    /// A template placeholder such as `{{system__caller_id}}` that was
    /// never rendered.
    Placeholder,
    /// Some other text that is not an E.164 number.
    Malformed,
}

impl NoIdentity {
    /// A short reason, for logs and metrics labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Withheld => "withheld",
            Self::Placeholder => "placeholder",
            Self::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for NoIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Words carriers and Twilio use for a withheld number, compared without
/// case and ignoring spaces, dashes and underscores.
const WITHHELD_WORDS: &[&str] = &[
    "anonymous",
    "restricted",
    "unknown",
    "private",
    "unavailable",
    "withheld",
    "blocked",
    "none",
    "null",
    "notavailable",
    "privatenumber",
    "unknowncaller",
];

/// Twilio's keypad spellings of withheld numbers: `+266696687` is
/// "ANONYMOUS", `+7378742833` is "RESTRICTED", `+86282452253` is
/// "UNAVAILABLE", `+8656696` is "UNKNOWN", `+77748281` is "PRIVATE".
const KEYPAD_WITHHELD: &[&str] = &[
    "+266696687",
    "+7378742833",
    "+86282452253",
    "+8656696",
    "+77748281",
];

/// Classifies a raw caller id as a usable [`PhoneNumber`] or as no
/// identity with the reason. Surrounding white space is ignored; nothing
/// else is repaired.
///
/// ```
/// use recall_model::{classify_caller_id, NoIdentity};
/// assert!(classify_caller_id(Some("+16129782029")).is_ok());
/// assert_eq!(classify_caller_id(Some("anonymous")), Err(NoIdentity::Withheld));
/// assert_eq!(classify_caller_id(Some("+266696687")), Err(NoIdentity::Withheld));
/// assert_eq!(classify_caller_id(Some("{{system__caller_id}}")), Err(NoIdentity::Placeholder));
/// assert_eq!(classify_caller_id(None), Err(NoIdentity::Missing));
/// ```
pub fn classify_caller_id(raw: Option<&str>) -> Result<PhoneNumber, NoIdentity> {
    let Some(raw) = raw.map(str::trim) else {
        return Err(NoIdentity::Missing);
    };
    if raw.is_empty() {
        return Err(NoIdentity::Missing);
    }
    if raw.contains("{{") || raw.contains("}}") {
        return Err(NoIdentity::Placeholder);
    }
    if KEYPAD_WITHHELD.contains(&raw) {
        return Err(NoIdentity::Withheld);
    }
    let folded: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    if WITHHELD_WORDS.contains(&folded.as_str()) {
        return Err(NoIdentity::Withheld);
    }
    PhoneNumber::parse(raw).map_err(|_| NoIdentity::Malformed)
}
