//! The error of every validated constructor.

use std::fmt;

/// A value broke a validation rule. The message names the field, the rule
/// and the offending value (shortened, so a huge input cannot flood a log).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid {field}: {rule} (got {value})")]
pub struct ValueError {
    field: &'static str,
    rule: &'static str,
    value: Shown,
}

impl ValueError {
    /// A rule broken by `value` in `field`.
    pub fn new(field: &'static str, rule: &'static str, value: impl Into<String>) -> Self {
        Self {
            field,
            rule,
            value: Shown(value.into()),
        }
    }

    /// The field (or value kind) that was invalid, e.g. `phone_number`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The rule that was broken, in words.
    pub fn rule(&self) -> &'static str {
        self.rule
    }
}

/// The offending value as shown in messages: quoted, at most 64 characters.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Shown(String);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        if self.0.chars().count() <= MAX {
            write!(f, "{:?}", self.0)
        } else {
            let head: String = self.0.chars().take(MAX).collect();
            write!(f, "{head:?}… ({} bytes)", self.0.len())
        }
    }
}
