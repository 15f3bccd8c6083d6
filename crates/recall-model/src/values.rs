//! Validated value types: once a value exists, it is valid.
//!
//! Every type here has a private field, a fallible constructor that names the
//! rule broken, `Display`, `AsRef<str>` where it is text, and serde that goes
//! through the constructor, so an invalid value cannot be deserialized either.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ValueError;

/// Implements `Serialize` as a string and `Deserialize` through `parse`.
macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_ref())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                <$ty>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl FromStr for $ty {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::parse(s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_ref())
            }
        }
    };
}

/// A telephone number in E.164 form: `+`, a non-zero digit, then 1 to 14
/// more digits (`^\+[1-9]\d{1,14}$`). It is the key of a caller (ERD
/// `User.userId`).
///
/// ```
/// use recall_model::PhoneNumber;
/// let n = PhoneNumber::parse("+16129782029").unwrap();
/// assert_eq!(n.as_str(), "+16129782029");
/// assert_eq!(n.masked(), "+1612***2029");
/// assert!(PhoneNumber::parse("16129782029").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses an E.164 number. No normalisation: spaces, dashes or a
    /// missing `+` are errors, because a caller id that needs repair is
    /// not a reliable identity.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let rule = "E.164: '+', a digit 1-9, then 1 to 14 digits";
        let Some(digits) = raw.strip_prefix('+') else {
            return Err(ValueError::new("phone_number", rule, raw));
        };
        let ok = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValueError::new("phone_number", rule, raw))
        }
    }

    /// The number as text, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with its middle hidden for logs: `+1612***2029`.
    /// Short numbers keep less of each end so that something is always
    /// hidden.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let keep = if digits.len() >= 10 {
            4
        } else {
            digits.len() / 3
        };
        let head = &digits[..keep];
        let tail = &digits[digits.len() - keep..];
        format!("+{head}***{tail}")
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneNumber {
    /// Debug output is masked so that numbers do not leak into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

string_serde!(PhoneNumber);

/// Longest identifier accepted by [`ConversationId`] and [`AgentId`].
pub const MAX_ID_LEN: usize = 128;

fn check_path_safe_id(field: &'static str, raw: &str) -> Result<(), ValueError> {
    if raw.is_empty() {
        return Err(ValueError::new(field, "must not be empty", raw));
    }
    if raw.len() > MAX_ID_LEN {
        return Err(ValueError::new(
            field,
            "must be at most 128 bytes long",
            raw,
        ));
    }
    if raw == "." || raw.contains("..") {
        return Err(ValueError::new(
            field,
            "must not contain '..' or be '.'",
            raw,
        ));
    }
    if raw.contains('/') || raw.contains('\\') {
        return Err(ValueError::new(field, "must not contain '/' or '\\'", raw));
    }
    if raw.chars().any(char::is_control) {
        return Err(ValueError::new(
            field,
            "must not contain NUL or control characters",
            raw,
        ));
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(ValueError::new(field, "must not contain white space", raw));
    }
    Ok(())
}

macro_rules! path_safe_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier that is safe to use as a single file
            /// name component: not empty, at most [`MAX_ID_LEN`] bytes, no
            /// `/`, `\`, `..`, NUL, control characters or white space.
            pub fn parse(raw: &str) -> Result<Self, ValueError> {
                check_path_safe_id($field, raw)?;
                Ok(Self(raw.to_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        string_serde!($name);
    };
}

path_safe_id!(
    /// An ElevenLabs conversation id, safe to use as a directory name
    /// under the payload store.
    ///
    /// ```
    /// use recall_model::ConversationId;
    /// assert!(ConversationId::parse("conv_01jxd5y165f62a0v7gtr6bkg56").is_ok());
    /// assert!(ConversationId::parse("../etc").is_err());
    /// ```
    ConversationId,
    "conversation_id"
);

path_safe_id!(
    /// An ElevenLabs agent id, safe to use in file names and as a filter.
    AgentId,
    "agent_id"
);

/// How important a memory is, a finite number in `0.0..=1.0`.
///
/// ```
/// use recall_model::Salience;
/// assert_eq!(Salience::new(0.9).unwrap(), Salience::HIGH);
/// assert!(Salience::new(1.0001).is_err());
/// assert!(Salience::new(f64::NAN).is_err());
/// ```
#[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
pub struct Salience(f64);

impl Salience {
    /// The seed's `HIGH_SALIENCE`: profile facts.
    pub const HIGH: Salience = Salience(0.9);
    /// The seed's `MEDIUM_SALIENCE`: call summaries.
    pub const MEDIUM: Salience = Salience(0.7);
    /// The seed's `LOW_SALIENCE`.
    pub const LOW: Salience = Salience(0.3);
    /// The least salience.
    pub const MIN: Salience = Salience(0.0);
    /// The greatest salience.
    pub const MAX: Salience = Salience(1.0);

    /// Accepts a finite value from 0.0 to 1.0 inclusive. `-0.0` is accepted
    /// and stored as `0.0`.
    pub fn new(value: f64) -> Result<Self, ValueError> {
        if value.is_finite() && (0.0..=1.0).contains(&value) {
            Ok(Self(value + 0.0))
        } else {
            Err(ValueError::new(
                "salience",
                "must be a finite number from 0.0 to 1.0",
                value.to_string(),
            ))
        }
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }

    /// The seed's level label: `High` from 0.8, `Medium` from 0.5, else
    /// `Low` (each level's band is centred on the seed's constants 0.9,
    /// 0.7 and 0.3, split half-way between them).
    pub fn label(self) -> SalienceLabel {
        if self.0 >= 0.8 {
            SalienceLabel::High
        } else if self.0 >= 0.5 {
            SalienceLabel::Medium
        } else {
            SalienceLabel::Low
        }
    }
}

impl fmt::Display for Salience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Salience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Salience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Salience::new(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// The UI's salience label (`MemoryDisplay.salienceLabel`): `High`
/// (salience ≥ 0.8), `Medium` (≥ 0.5) or `Low`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SalienceLabel {
    /// Salience ≥ 0.8.
    High,
    /// 0.5 ≤ salience < 0.8.
    Medium,
    /// Salience < 0.5.
    Low,
}

/// The kind of a memory, after OpenMemory's five sectors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum MemorySector {
    /// Facts and knowledge (a caller's name, preferences).
    Semantic,
    /// Events and conversations (a call).
    Episodic,
    /// How-to and skills.
    Procedural,
    /// Feelings.
    Emotional,
    /// Meta-thoughts.
    Reflective,
}

impl MemorySector {
    /// Every sector, in the seed's order.
    pub const ALL: [MemorySector; 5] = [
        MemorySector::Semantic,
        MemorySector::Episodic,
        MemorySector::Procedural,
        MemorySector::Emotional,
        MemorySector::Reflective,
    ];

    /// Parses the lowercase name used on the wire.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Ok(match raw {
            "semantic" => Self::Semantic,
            "episodic" => Self::Episodic,
            "procedural" => Self::Procedural,
            "emotional" => Self::Emotional,
            "reflective" => Self::Reflective,
            _ => {
                return Err(ValueError::new(
                    "sector",
                    "must be one of semantic, episodic, procedural, emotional, reflective",
                    raw,
                ));
            }
        })
    }

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Semantic => "semantic",
            Self::Episodic => "episodic",
            Self::Procedural => "procedural",
            Self::Emotional => "emotional",
            Self::Reflective => "reflective",
        }
    }

    /// OpenMemory's decay rate for the sector, per day.
    pub fn default_decay_lambda(self) -> DecayLambda {
        DecayLambda(match self {
            Self::Episodic => 0.015,
            Self::Semantic => 0.005,
            Self::Procedural => 0.008,
            Self::Emotional => 0.02,
            Self::Reflective => 0.001,
        })
    }
}

impl AsRef<str> for MemorySector {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

string_serde!(MemorySector);

/// Exponential decay rate of a memory's salience, per day. Zero means the
/// memory is permanent.
#[derive(Clone, Copy, PartialEq, PartialOrd, Debug, Default)]
pub struct DecayLambda(f64);

impl DecayLambda {
    /// A permanent memory: no decay.
    pub const PERMANENT: DecayLambda = DecayLambda(0.0);

    /// Accepts a finite, non-negative rate per day.
    pub fn new(per_day: f64) -> Result<Self, ValueError> {
        if per_day.is_finite() && per_day >= 0.0 {
            Ok(Self(per_day + 0.0))
        } else {
            Err(ValueError::new(
                "decay_lambda",
                "must be a finite number ≥ 0 (per day; 0 = permanent)",
                per_day.to_string(),
            ))
        }
    }

    /// The rate per day.
    pub fn per_day(self) -> f64 {
        self.0
    }

    /// Whether the memory never decays.
    pub fn is_permanent(self) -> bool {
        self.0 == 0.0
    }

    /// The decay factor `exp(-λ·days)` after `age_secs` seconds (1.0 for
    /// a permanent memory or a non-positive age).
    pub fn factor(self, age_secs: i64) -> f64 {
        if self.is_permanent() || age_secs <= 0 {
            1.0
        } else {
            (-self.0 * age_secs as f64 / 86_400.0).exp()
        }
    }
}

impl Serialize for DecayLambda {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for DecayLambda {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DecayLambda::new(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A point in time as whole seconds since 1970-01-01 UTC.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize)]
#[serde(transparent)]
pub struct UnixTimestamp(i64);

impl UnixTimestamp {
    /// The latest accepted time, 9999-12-31T23:59:59Z.
    pub const MAX_SECS: i64 = 253_402_300_799;

    /// Accepts seconds from 0 to [`Self::MAX_SECS`]. A value that looks
    /// like milliseconds is beyond the year 9999 only after 2286; such a
    /// value is rejected as out of range rather than silently rescaled.
    pub fn from_secs(secs: i64) -> Result<Self, ValueError> {
        if (0..=Self::MAX_SECS).contains(&secs) {
            Ok(Self(secs))
        } else {
            Err(ValueError::new(
                "timestamp",
                "must be unix seconds from 0 to 253402300799 (year 9999)",
                secs.to_string(),
            ))
        }
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self(secs.clamp(0, Self::MAX_SECS))
    }

    /// Seconds since the epoch.
    pub fn as_secs(self) -> i64 {
        self.0
    }

    /// This time plus `secs` seconds, saturating within the valid range.
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs).clamp(0, Self::MAX_SECS))
    }

    /// The time as an RFC 3339 string in UTC, e.g. `2025-02-14T12:48:17Z`:
    /// readable by an LLM and by JavaScript's `new Date(...)`.
    ///
    /// ```
    /// use recall_model::UnixTimestamp;
    /// let t = UnixTimestamp::from_secs(1_739_537_297).unwrap();
    /// assert_eq!(t.to_rfc3339(), "2025-02-14T12:48:17Z");
    /// ```
    pub fn to_rfc3339(self) -> String {
        // Every value in 0..=MAX_SECS is a valid date with a four-digit
        // year, which RFC 3339 can always express.
        time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| self.0.to_string())
    }

    /// Parses an RFC 3339 date-time with any offset. Fractions of a second
    /// are dropped (the time is rounded down to the whole second).
    ///
    /// ```
    /// use recall_model::UnixTimestamp;
    /// let t = UnixTimestamp::parse_rfc3339("2025-02-14T13:48:17.9+01:00").unwrap();
    /// assert_eq!(t.as_secs(), 1_739_537_297);
    /// assert!(UnixTimestamp::parse_rfc3339("yesterday").is_err());
    /// ```
    pub fn parse_rfc3339(raw: &str) -> Result<Self, ValueError> {
        Self::from_secs(rfc3339_secs(raw)?)
    }
}

/// The unix seconds of an RFC 3339 date-time, any year.
fn rfc3339_secs(raw: &str) -> Result<i64, ValueError> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            ValueError::new(
                "timestamp",
                "must be an RFC 3339 date-time such as 2025-02-14T12:48:17Z",
                raw,
            )
        })
}

impl UnixTimestamp {
    /// Like [`parse_rfc3339`](Self::parse_rfc3339), but a valid date-time
    /// before 1970 or after 9999 becomes the first or last accepted time
    /// instead of an error: for the bounds of a time range, where "from
    /// 1900" means "from the start".
    ///
    /// ```
    /// use recall_model::UnixTimestamp;
    /// let t = UnixTimestamp::parse_rfc3339_saturating("1900-01-01T00:00:00Z").unwrap();
    /// assert_eq!(t.as_secs(), 0);
    /// assert!(UnixTimestamp::parse_rfc3339_saturating("yesterday").is_err());
    /// ```
    pub fn parse_rfc3339_saturating(raw: &str) -> Result<Self, ValueError> {
        Ok(Self::from_secs_saturating(rfc3339_secs(raw)?))
    }

    /// `secs`, brought within 0 to [`Self::MAX_SECS`].
    pub fn from_secs_saturating(secs: i64) -> Self {
        Self(secs.clamp(0, Self::MAX_SECS))
    }
}

impl fmt::Display for UnixTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for UnixTimestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        UnixTimestamp::from_secs(i64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// The `type` of a post-call webhook event. A type this version does not
/// know is kept as [`WebhookType::Unknown`] so it can be stored and
/// reported, never dropped.
///
/// ```
/// use recall_model::WebhookType;
/// assert_eq!(WebhookType::parse("post_call_audio"), WebhookType::PostCallAudio);
/// assert!(WebhookType::parse("post_call_video").is_unknown());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum WebhookType {
    /// `post_call_transcription`: transcript, analysis and metadata.
    PostCallTranscription,
    /// `post_call_audio`: the call's audio as base64 MP3.
    PostCallAudio,
    /// `call_initiation_failure`: the call never connected.
    CallInitiationFailure,
    /// A type this version does not know, as received.
    Unknown(String),
}

impl WebhookType {
    /// Classifies a raw `type`; never fails.
    pub fn parse(raw: &str) -> Self {
        match raw {
            "post_call_transcription" => Self::PostCallTranscription,
            "post_call_audio" => Self::PostCallAudio,
            "call_initiation_failure" => Self::CallInitiationFailure,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::PostCallTranscription => "post_call_transcription",
            Self::PostCallAudio => "post_call_audio",
            Self::CallInitiationFailure => "call_initiation_failure",
            Self::Unknown(raw) => raw,
        }
    }

    /// Whether this version does not know the type.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }
}

impl AsRef<str> for WebhookType {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for WebhookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for WebhookType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(WebhookType::parse(&raw))
    }
}
