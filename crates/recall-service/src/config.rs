//! What an operator can tune: greetings, the greeting's latency budget,
//! search sizes, which data-collection fields hold a name, retry backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use recall_memory::MAX_RESULTS;
use recall_model::AgentId;

/// The greeting used for a known caller with a name when the agent has no
/// template of its own. `{{user_name}}`, `{{last_call_summary}}`,
/// `{{last_call_title}}` and `{{user_profile_summary}}` are replaced.
pub const DEFAULT_GREETING: &str = "Hi {{user_name}}, good to hear from you again! Last time we talked about {{last_call_title}}. How can I help you today?";

/// The greeting used instead of a template that mentions the last call
/// when there is nothing to say about it (no last call, or no title or
/// summary).
pub const DEFAULT_GREETING_WITHOUT_LAST_CALL: &str =
    "Hi {{user_name}}, good to hear from you again! How can I help you today?";

/// The data-collection field ids that hold the caller's name unless
/// configured otherwise.
pub const DEFAULT_NAME_FIELD_IDS: &[&str] = &[
    "first_name",
    "name",
    "caller_name",
    "full_name",
    "customer_name",
    "patient_name",
    "user_name",
    "caller_first_name",
    "client_name",
    "contact_name",
];

/// The three dynamic variables Recall always sends; extras may not reuse
/// their names.
pub const RESERVED_VARIABLES: &[&str] = &["user_name", "user_profile_summary", "last_call_summary"];

/// How the [`Service`](crate::Service) behaves. [`Default`] gives the
/// documented defaults; call [`validate`](Self::validate) at start-up.
#[derive(Clone, PartialEq, Debug)]
pub struct ServiceConfig {
    /// Greeting templates by agent id (the `first_message` override for a
    /// known caller with a name).
    pub greeting_templates: BTreeMap<String, String>,
    /// The template for agents without one; `None` sends no
    /// `first_message` override for them (the override must be enabled on
    /// the agent, so an operator may want none). Default
    /// [`DEFAULT_GREETING`].
    pub default_greeting: Option<String>,
    /// Used instead of a template that mentions `{{last_call_summary}}` or
    /// `{{last_call_title}}` when that value is empty. Default
    /// [`DEFAULT_GREETING_WITHOUT_LAST_CALL`].
    pub greeting_without_last_call: String,
    /// How long the greeting may wait for the memory store before
    /// answering with the defaults. Default 300 ms.
    pub greet_budget: Duration,
    /// Whether the last call summary prefers the last call with the same
    /// agent (falling back to any agent). Default `true`.
    pub last_call_same_agent: bool,
    /// Extra dynamic variables sent with every greeting (e.g. a company
    /// name the agent's prompt uses).
    pub extra_dynamic_variables: BTreeMap<String, String>,
    /// The data-collection field ids holding the caller's name (compared
    /// without case). Default [`DEFAULT_NAME_FIELD_IDS`].
    pub name_field_ids: Vec<String>,
    /// Memories returned by search when the request does not say. Default 5.
    pub search_default_k: usize,
    /// The most memories search returns. Default 20.
    pub search_max_k: usize,
    /// The first retry delay after a retryable store failure. Default 1 s.
    pub retry_initial: Duration,
    /// The longest retry delay (the delay doubles up to it). Default 5 min.
    pub retry_max: Duration,
    /// The longest digest of the caller's own words kept for a call that
    /// has no summary, in characters. Default 600.
    pub caller_digest_max_chars: usize,
    /// How long a replica sharing the event log holds an event it is
    /// processing; when it dies, another takes the event over after this.
    /// Default 60 s.
    pub claim_lease: Duration,
    /// What Recall does when ElevenLabs' `metadata.deletion_settings`
    /// schedule a call's deletion. Default [`DeletionPolicy::Raw`].
    pub deletion_policy: DeletionPolicy,
    /// How long a call's stored events and transcript are kept (by the
    /// time they were received); `None` (the default): no limit.
    pub retain_events: Option<Duration>,
    /// How long a call's audio is kept (by the time its event was
    /// received); `None` (the default): no limit.
    pub retain_audio: Option<Duration>,
    /// How long a caller not heard from is kept before they are erased
    /// entirely (by the start of their newest call); `None` (the
    /// default): no limit.
    pub retain_callers: Option<Duration>,
    /// How often the retention sweep runs (it also runs at start).
    /// Default 1 h.
    pub retention_sweep: Duration,
}

/// What Recall does when ElevenLabs' `metadata.deletion_settings` of a
/// call say to delete its transcript and personal data, or its audio, at
/// a time.
///
/// ```
/// use recall_service::DeletionPolicy;
/// assert_eq!(DeletionPolicy::parse("all"), Ok(DeletionPolicy::All));
/// assert_eq!(DeletionPolicy::Raw.to_string(), "raw");
/// assert!(DeletionPolicy::parse("none").unwrap_err().contains("raw, all or off"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum DeletionPolicy {
    /// Delete Recall's raw copies of what ElevenLabs deletes (the stored
    /// events and transcript, the audio); keep the memories learnt from
    /// the call. The default.
    #[default]
    Raw,
    /// As [`Raw`](Self::Raw), and when the transcript goes, the memories
    /// learnt from the call go too.
    All,
    /// Ignore the deletion settings (retention windows still apply).
    Off,
}

impl DeletionPolicy {
    /// The policy named `name` (`raw`, `all` or `off`).
    ///
    /// # Errors
    /// What the names are.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim() {
            "raw" => Ok(Self::Raw),
            "all" => Ok(Self::All),
            "off" => Ok(Self::Off),
            other => Err(format!("got {other:?}; allowed: raw, all or off")),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::All => "all",
            Self::Off => "off",
        }
    }
}

impl std::fmt::Display for DeletionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            greeting_templates: BTreeMap::new(),
            default_greeting: Some(DEFAULT_GREETING.to_owned()),
            greeting_without_last_call: DEFAULT_GREETING_WITHOUT_LAST_CALL.to_owned(),
            greet_budget: Duration::from_millis(300),
            last_call_same_agent: true,
            extra_dynamic_variables: BTreeMap::new(),
            name_field_ids: DEFAULT_NAME_FIELD_IDS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            search_default_k: 5,
            search_max_k: 20,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            caller_digest_max_chars: 600,
            claim_lease: Duration::from_secs(60),
            deletion_policy: DeletionPolicy::Raw,
            retain_events: None,
            retain_audio: None,
            retain_callers: None,
            retention_sweep: Duration::from_secs(3600),
        }
    }
}

/// A setting is out of range; the message names it.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// The setting, e.g. `search_max_k`.
    pub setting: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

impl ServiceConfig {
    /// Checks every setting; the error names the first bad one.
    ///
    /// ```
    /// use recall_service::ServiceConfig;
    /// assert!(ServiceConfig::default().validate().is_ok());
    /// let bad = ServiceConfig { search_max_k: 0, ..ServiceConfig::default() };
    /// assert_eq!(bad.validate().unwrap_err().setting, "search_max_k");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for agent in self.greeting_templates.keys() {
            AgentId::parse(agent).map_err(|e| {
                ConfigError::new(format!("greeting_templates.{agent}"), e.to_string())
            })?;
        }
        for (agent, template) in &self.greeting_templates {
            if template.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("greeting_templates.{agent}"),
                    "must not be empty",
                ));
            }
        }
        if self
            .default_greeting
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(ConfigError::new(
                "default_greeting",
                "must not be empty (leave it unset to send no greeting override)",
            ));
        }
        if self.greeting_without_last_call.trim().is_empty() {
            return Err(ConfigError::new(
                "greeting_without_last_call",
                "must not be empty",
            ));
        }
        if self.greet_budget.is_zero() {
            return Err(ConfigError::new(
                "greet_budget",
                "must be greater than zero",
            ));
        }
        for key in self.extra_dynamic_variables.keys() {
            if key.trim().is_empty() {
                return Err(ConfigError::new(
                    "extra_dynamic_variables",
                    "variable names must not be empty",
                ));
            }
            if RESERVED_VARIABLES.contains(&key.as_str()) {
                return Err(ConfigError::new(
                    format!("extra_dynamic_variables.{key}"),
                    "is set by Recall itself and cannot be configured",
                ));
            }
        }
        if self.name_field_ids.iter().any(|f| f.trim().is_empty()) {
            return Err(ConfigError::new(
                "name_field_ids",
                "field ids must not be empty",
            ));
        }
        if self.search_max_k == 0 || self.search_max_k > MAX_RESULTS {
            return Err(ConfigError::new(
                "search_max_k",
                format!("must be from 1 to {MAX_RESULTS}"),
            ));
        }
        if self.search_default_k == 0 || self.search_default_k > self.search_max_k {
            return Err(ConfigError::new(
                "search_default_k",
                "must be from 1 to search_max_k",
            ));
        }
        if self.retry_initial.is_zero() {
            return Err(ConfigError::new(
                "retry_initial",
                "must be greater than zero",
            ));
        }
        if self.retry_max < self.retry_initial {
            return Err(ConfigError::new(
                "retry_max",
                "must be at least retry_initial",
            ));
        }
        if self.caller_digest_max_chars == 0 {
            return Err(ConfigError::new(
                "caller_digest_max_chars",
                "must be greater than zero",
            ));
        }
        if self.claim_lease.is_zero() {
            return Err(ConfigError::new("claim_lease", "must be greater than zero"));
        }
        for (setting, window) in [
            ("retain_events", self.retain_events),
            ("retain_audio", self.retain_audio),
            ("retain_callers", self.retain_callers),
        ] {
            if window.is_some_and(|w| w.is_zero()) {
                return Err(ConfigError::new(
                    setting,
                    "must be greater than zero (leave it unset to keep for ever)",
                ));
            }
        }
        if self.retention_sweep.is_zero() {
            return Err(ConfigError::new(
                "retention_sweep",
                "must be greater than zero",
            ));
        }
        Ok(())
    }

    /// Whether `field_id` holds the caller's name.
    pub fn is_name_field(&self, field_id: &str) -> bool {
        self.name_field_ids
            .iter()
            .any(|f| f.trim().eq_ignore_ascii_case(field_id.trim()))
    }

    /// The delay before retry number `attempt` (1 for the first retry):
    /// `retry_initial` doubled each time, capped at `retry_max`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use recall_service::ServiceConfig;
    /// let c = ServiceConfig::default();
    /// assert_eq!(c.retry_delay(1), Duration::from_secs(1));
    /// assert_eq!(c.retry_delay(3), Duration::from_secs(4));
    /// assert_eq!(c.retry_delay(60), Duration::from_secs(300));
    /// ```
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.retry_initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }

    /// The template for `agent`: its own, else the default.
    pub(crate) fn template_for(&self, agent: Option<&AgentId>) -> Option<&str> {
        agent
            .and_then(|a| self.greeting_templates.get(a.as_str()))
            .or(self.default_greeting.as_ref())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting_of(config: &ServiceConfig) -> String {
        config.validate().unwrap_err().setting
    }

    #[test]
    fn each_bad_setting_is_named() {
        let d = ServiceConfig::default;
        assert_eq!(
            setting_of(&ServiceConfig {
                search_default_k: 30,
                ..d()
            }),
            "search_default_k"
        );
        assert_eq!(
            setting_of(&ServiceConfig {
                search_max_k: 101,
                ..d()
            }),
            "search_max_k"
        );
        assert_eq!(
            setting_of(&ServiceConfig {
                greet_budget: Duration::ZERO,
                ..d()
            }),
            "greet_budget"
        );
        assert_eq!(
            setting_of(&ServiceConfig {
                retry_max: Duration::from_millis(10),
                ..d()
            }),
            "retry_max"
        );
        assert_eq!(
            setting_of(&ServiceConfig {
                extra_dynamic_variables: BTreeMap::from([("user_name".into(), "x".into())]),
                ..d()
            }),
            "extra_dynamic_variables.user_name"
        );
        assert_eq!(
            setting_of(&ServiceConfig {
                greeting_templates: BTreeMap::from([("../a".into(), "Hi".into())]),
                ..d()
            }),
            "greeting_templates.../a"
        );
        assert_eq!(
            setting_of(&ServiceConfig {
                retain_audio: Some(Duration::ZERO),
                ..d()
            }),
            "retain_audio"
        );
        assert_eq!(
            setting_of(&ServiceConfig {
                retention_sweep: Duration::ZERO,
                ..d()
            }),
            "retention_sweep"
        );
        assert_eq!(
            setting_of(&ServiceConfig {
                default_greeting: Some(" ".into()),
                ..d()
            }),
            "default_greeting"
        );
    }

    #[test]
    fn name_fields_are_matched_without_case() {
        let c = ServiceConfig::default();
        assert!(c.is_name_field("First_Name"));
        assert!(c.is_name_field("patient_name"));
        assert!(!c.is_name_field("email"));
    }
}
