//! Configuration: built-in defaults, then `recall.toml`, then the
//! environment, extracted by figment into one typed struct and validated
//! once at start-up.
//!
//! Each setting is declared once, in the `settings!` table below: its key
//! (used in `recall.toml`), its environment variable (the seed's names such
//! as `ELEVENLABS_POST_CALL_KEY`, or `RECALL_<KEY>` for the rest), its
//! default and the type that reads it. A bad value stops start-up with a
//! [`ConfigError`] naming the setting and what is allowed.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format as _, Serialized, Toml};
use figment::{Figment, error::Kind};
use recall_service::ServiceConfig;
use recall_signature::{Secret, Secrets};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::net::IpNet;

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "RECALL_CONFIG";

/// The name of the generated-secrets file inside the data directory.
pub const GENERATED_SECRETS_FILE: &str = "webhook-secrets.toml";

/// The shortest admin token accepted: a bearer token guards every caller's
/// data, so it must not be guessable (`openssl rand -hex 24` makes 48).
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// What `check-config` prints instead of a secret.
const REDACTED: &str = "[redacted]";

/// One known setting: its key in `recall.toml`, its environment variable,
/// its default (as text, `None` when unset by default) and whether it is a
/// secret. docs/configuration.md says what each means.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The key in `recall.toml`.
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The default, as it would be written.
    pub default: Option<&'static str>,
    /// Whether the value is a secret (never printed).
    pub secret: bool,
}

/// Declares the settings once: [`SETTINGS`], and the struct figment
/// extracts, whose field types read and check the values (see [`Field`]).
macro_rules! settings {
    ($($key:ident: $ty:ty = $env:literal $(, $default:expr)?;)+) => {
        /// Every setting Recall reads, in the order `check-config` prints them.
        pub const SETTINGS: &[Setting] = &[$(Setting {
            key: stringify!($key),
            env: $env,
            default: settings!(@default $($default)?),
            secret: <$ty as Field>::SECRET,
        }),+];

        /// The settings as written, each read by its type.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            $(#[serde(deserialize_with = "field")] $key: $ty,)+
        }
    };
    (@default) => { None };
    (@default $default:expr) => { Some($default) };
}

settings! {
    bind: SocketAddr = "RECALL_BIND", "127.0.0.1:8080";
    store: Store = "RECALL_STORE", "embedded";
    data_dir: PathBuf = "RECALL_DATA_DIR", "./data";
    embedded_db_path: Option<PathBuf> = "OPENMEMORY_DB_PATH";
    payload_dir: Option<PathBuf> = "PAYLOAD_STORAGE_PATH";
    embedding_model: Option<PathBuf> = "RECALL_EMBEDDING_MODEL";
    openmemory_url: String = "OPENMEMORY_PORT", "8080";
    openmemory_key: Option<RedactedText> = "OPENMEMORY_KEY";
    openmemory_timeout_ms: Num<1, 600_000> = "RECALL_OPENMEMORY_TIMEOUT_MS", "2000";
    post_call_key: Secrets = "ELEVENLABS_POST_CALL_KEY";
    client_data_key: Secrets = "ELEVENLABS_CLIENT_DATA_KEY";
    search_data_key: Secrets = "ELEVENLABS_SEARCH_DATA_KEY";
    admin_token: Secrets = "RECALL_ADMIN_TOKEN";
    elevenlabs_api_key: Option<RedactedText> = "ELEVENLABS_API_KEY";
    log_format: LogFormat = "RECALL_LOG_FORMAT", "auto";
    log_filter: String = "RECALL_LOG", "info";
    post_call_max_bytes: Num<1024, { 4 << 30 }> = "RECALL_POST_CALL_MAX_BYTES", "67108864";
    post_call_max_uploads: Num<1, 4096> = "RECALL_POST_CALL_MAX_UPLOADS", "32";
    quarantine_max_files: Num<1, 1_000_000> = "RECALL_QUARANTINE_MAX_FILES", "1000";
    quarantine_max_bytes: Num<0, { 1 << 40 }> = "RECALL_QUARANTINE_MAX_BYTES", "268435456";
    webhook_max_bytes: Num<256, { 16 << 20 }> = "RECALL_WEBHOOK_MAX_BYTES", "65536";
    request_timeout_ms: Num<1, 600_000> = "RECALL_REQUEST_TIMEOUT_MS", "5000";
    disconnect_timeout_ms: Num<1, 600_000> = "RECALL_DISCONNECT_TIMEOUT_MS", "1000";
    keep_alive_secs: Num<0, 3600> = "RECALL_KEEP_ALIVE_SECS", "30";
    body_timeout_secs: Num<1, 3600> = "RECALL_BODY_TIMEOUT_SECS", "60";
    shutdown_timeout_secs: Num<0, 3600> = "RECALL_SHUTDOWN_TIMEOUT_SECS", "30";
    workers: Num<0, 1024> = "RECALL_WORKERS", "0";
    greeting_budget_ms: Num<1, 60_000> = "RECALL_GREETING_BUDGET_MS", "300";
    search_k: Num<1, 100> = "RECALL_SEARCH_K", "5";
    search_max_k: Num<1, 100> = "RECALL_SEARCH_MAX_K", "20";
    greeting: String = "RECALL_GREETING", recall_service::DEFAULT_GREETING;
    greeting_without_last_call: String =
        "RECALL_GREETING_WITHOUT_LAST_CALL", recall_service::DEFAULT_GREETING_WITHOUT_LAST_CALL;
    greeting_templates: Table = "RECALL_GREETING_TEMPLATES", "{}";
    dynamic_variables: Table = "RECALL_DYNAMIC_VARIABLES", "{}";
    name_fields: Option<Vec<String>> = "RECALL_NAME_FIELDS";
    retry_initial_ms: Num<1, 3_600_000> = "RECALL_RETRY_INITIAL_MS", "1000";
    retry_max_secs: Num<1, 86_400> = "RECALL_RETRY_MAX_SECS", "300";
    signature_tolerance_secs: Num<1, { 7 * 24 * 3600 }> = "RECALL_SIGNATURE_TOLERANCE_SECS", "1800";
    signature_future_secs: Num<0, { 24 * 3600 }> = "RECALL_SIGNATURE_FUTURE_SECS", "300";
    ip_allowlist: Vec<IpNet> = "RECALL_IP_ALLOWLIST", "";
    trusted_proxies: Vec<IpNet> = "RECALL_TRUSTED_PROXIES", "";
}

/// Looks a setting up by key.
fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// A configuration that cannot be used. The message names the setting
/// (its key and environment variable) and what is allowed; it never
/// contains a secret.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// `problem` with the setting `key` and its environment variable.
    fn setting(key: &str, problem: &str) -> Self {
        let env = find(key).map_or("", |s| s.env);
        Self::new(format!("invalid setting `{key}` ({env}): {problem}"))
    }

    fn from_figment(e: &figment::Error, file: Option<&Path>) -> Self {
        match find(e.path.first().map_or("", String::as_str)) {
            Some(s) => match &e.kind {
                Kind::Message(problem) => Self::setting(s.key, problem),
                // A type error quotes the value: not for a secret.
                _ if s.secret => Self::setting(s.key, "a value of the wrong type"),
                kind => Self::setting(s.key, &kind.to_string()),
            },
            None => {
                let file = file.map(|p| format!(" file {}", p.display()));
                Self::new(format!(
                    "cannot read the configuration{}: {e}",
                    file.unwrap_or_default()
                ))
            }
        }
    }
}

/// "got `text`; allowed: `allowed`", for a value that is not a secret.
fn got(text: &str, allowed: &str) -> String {
    format!("got {text:?}; allowed: {allowed}")
}

/// Where the environment comes from: the process (production) or a given
/// list (tests, which run in parallel and must not share the process
/// environment). Of a repeated variable, the last wins.
#[derive(Debug, Clone, Default)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    /// The process environment.
    pub fn process() -> Self {
        Self(std::env::vars().collect())
    }

    /// The given variables only.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The settings given, by key.
    fn settings(&self) -> BTreeMap<&'static str, &str> {
        let given = |s: &'static Setting| Some((s.key, self.get(s.env)?));
        SETTINGS.iter().filter_map(given).collect()
    }

    /// The `RECALL_*` variables that name no setting (other than
    /// `RECALL_CONFIG`), sorted.
    pub fn unknown_recall_names(&self) -> Vec<String> {
        let known = |k: &str| k == CONFIG_ENV || SETTINGS.iter().any(|s| s.env == k);
        let names = self
            .0
            .keys()
            .filter(|k| k.starts_with("RECALL_") && !known(k));
        names.cloned().collect()
    }

    /// The value of one variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Which memory store to run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded store in this file.
    Embedded {
        /// The database file.
        path: PathBuf,
    },
    /// OpenMemory over HTTP.
    OpenMemory {
        /// Its base URL.
        url: String,
        /// Its API key.
        key: Option<RedactedText>,
        /// Timeout of one request.
        timeout: Duration,
    },
    /// The in-memory store (lost on exit; for tests and demos).
    Memory,
}

impl StoreConfig {
    /// The store's name as configured.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Embedded { .. } => "embedded",
            Self::OpenMemory { .. } => "openmemory",
            Self::Memory => "memory",
        }
    }
}

/// A secret kept as plain text whose `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedText(String);

impl RedactedText {
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RedactedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// How logs are written (`log_format` is the variant's name in lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty at a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Where a webhook's secrets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// Configured (file or environment).
    Configured,
    /// Generated on a first run and kept in the data directory.
    Generated,
    /// Not configured yet: `serve` will generate (or reuse) them.
    Missing,
}

/// The secrets of one webhook.
#[derive(Debug, Clone)]
pub struct WebhookKey {
    /// The accepted secrets (several while rotating).
    pub secrets: Secrets,
    /// Where they came from.
    pub source: SecretSource,
}

impl From<Secrets> for WebhookKey {
    /// Configured secrets, or none: [`SecretSource::Missing`].
    fn from(secrets: Secrets) -> Self {
        let source = if secrets.is_empty() {
            SecretSource::Missing
        } else {
            SecretSource::Configured
        };
        Self { secrets, source }
    }
}

/// The secrets of the three webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    /// `ELEVENLABS_POST_CALL_KEY`: HMAC secrets of the post-call webhook.
    pub post_call: WebhookKey,
    /// `ELEVENLABS_CLIENT_DATA_KEY`: shared secrets of client-data.
    pub client_data: WebhookKey,
    /// `ELEVENLABS_SEARCH_DATA_KEY`: shared secrets of search-data.
    pub search_data: WebhookKey,
}

impl WebhookSecrets {
    /// The three keys with their setting keys.
    pub fn each(&self) -> [(&'static str, &WebhookKey); 3] {
        [
            ("post_call_key", &self.post_call),
            ("client_data_key", &self.client_data),
            ("search_data_key", &self.search_data),
        ]
    }

    fn each_mut(&mut self) -> [(&'static str, &mut WebhookKey); 3] {
        [
            ("post_call_key", &mut self.post_call),
            ("client_data_key", &mut self.client_data),
            ("search_data_key", &mut self.search_data),
        ]
    }
}

/// Body size limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest post-call body, in bytes.
    pub post_call_max_bytes: u64,
    /// Post-call bodies received at once (each is staged on disk before
    /// its signature can be checked).
    pub post_call_max_uploads: usize,
    /// Refused bodies kept in quarantine, by count.
    pub quarantine_max_files: u64,
    /// Refused bodies kept in quarantine, by bytes.
    pub quarantine_max_bytes: u64,
    /// Largest client-data or search-data body, in bytes.
    pub webhook_max_bytes: usize,
}

/// Connection and request timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time to receive a request head.
    pub client_request: Duration,
    /// Time for a client to close after the response.
    pub client_disconnect: Duration,
    /// Idle keep-alive (zero: off).
    pub keep_alive: Duration,
    /// Longest time to receive a body.
    pub body: Duration,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown: Duration,
}

/// Which clients may call the webhooks.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    /// Allowed client addresses; empty allows any.
    pub allowlist: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Where raw post-call events are kept.
    pub payload_dir: PathBuf,
    /// The embedding model's directory; `None`: the built-in static model.
    pub embedding_model: Option<PathBuf>,
    /// The memory store.
    pub store: StoreConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter directives.
    pub log_filter: String,
    /// The webhooks' secrets.
    pub secrets: WebhookSecrets,
    /// The ElevenLabs API key, if given.
    pub elevenlabs_api_key: Option<RedactedText>,
    /// Body limits.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// HTTP workers (0: one per core).
    pub workers: usize,
    /// The use cases' settings (greetings, budgets, search sizes, retry).
    pub service: ServiceConfig,
    /// Past tolerance of signature timestamps, in seconds.
    pub signature_tolerance_secs: u64,
    /// Future tolerance of signature timestamps, in seconds.
    pub signature_future_secs: u64,
    /// Bearer tokens of the operator API and dashboard
    /// (`RECALL_ADMIN_TOKEN`); empty turns them off.
    pub admin_tokens: Secrets,
    /// Client-IP policy.
    pub network: NetworkPolicy,
    /// The configuration file read, if any.
    pub config_file: Option<PathBuf>,
    /// `RECALL_*` environment variables that are not settings (typos?);
    /// `recall serve` warns about them.
    pub ignored_env: Vec<String>,
}

impl Config {
    /// Loads the configuration: defaults, then `file` (or the file named by
    /// `RECALL_CONFIG` in `env`, or `./recall.toml` when it exists), then
    /// `env`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad setting.
    pub fn load(file: Option<&Path>, env: &EnvVars) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_owned)
            .or_else(|| {
                env.get(CONFIG_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| Some(PathBuf::from("recall.toml")).filter(|p| p.is_file()));
        // Every setting is given a value, "" when it has no default.
        let defaults: BTreeMap<_, _> = SETTINGS
            .iter()
            .map(|s| (s.key, s.default.unwrap_or("")))
            .collect();
        let mut figment = Figment::from(Serialized::defaults(defaults));
        if let Some(path) = &file {
            figment = figment.merge(Toml::string(&read_toml(path)?));
        }
        let raw: Raw = figment
            .merge(Serialized::defaults(env.settings()))
            .extract()
            .map_err(|e| ConfigError::from_figment(&e, file.as_deref()))?;
        let mut config = raw.build()?;
        config.config_file = file;
        config.ignored_env = env.unknown_recall_names();
        Ok(config)
    }

    /// The path of the file holding generated secrets.
    pub fn generated_secrets_path(&self) -> PathBuf {
        self.data_dir.join(GENERATED_SECRETS_FILE)
    }

    /// Fills the webhook secrets that are not configured: from the data
    /// directory's generated-secrets file when it exists, else freshly
    /// generated and saved there (mode 0600). Refuses when the server binds
    /// a non-loopback address without configured secrets.
    ///
    /// Returns whether secrets were generated now.
    ///
    /// # Errors
    /// A [`ConfigError`] for a non-loopback bind without secrets, or when
    /// the file cannot be read or written.
    pub fn resolve_secrets(&mut self) -> Result<bool, ConfigError> {
        let keys = self.secrets.each();
        let missing = keys
            .iter()
            .filter(|(_, k)| k.source == SecretSource::Missing);
        let names: Vec<&str> = missing
            .map(|(key, _)| find(key).map_or(*key, |s| s.env))
            .collect();
        if names.is_empty() {
            return Ok(false);
        }
        if !self.bind.ip().is_loopback() {
            return Err(ConfigError::new(format!(
                "refusing to listen on {} (not a loopback address) without configured webhook secrets: set {}",
                self.bind,
                names.join(", ")
            )));
        }
        self.fill_secrets(true)
    }

    /// Fills the webhook secrets that are not configured from the data
    /// directory's generated-secrets file, without generating anything
    /// (for `check-config` and `sign`).
    ///
    /// # Errors
    /// When the file exists but cannot be read or holds an unusable secret.
    pub fn load_generated_secrets(&mut self) -> Result<(), ConfigError> {
        self.fill_secrets(false).map(drop)
    }

    /// Fills the missing secrets from the generated-secrets file, first
    /// generating and saving those it lacks when `generate`.
    fn fill_secrets(&mut self, generate: bool) -> Result<bool, ConfigError> {
        let path = self.generated_secrets_path();
        let (path_text, mut generated) = (path.display(), false);
        let mut saved = crate::secrets_file::read(&path).map_err(|e| {
            ConfigError::new(format!("cannot read generated secrets {path_text}: {e}"))
        })?;
        for (name, key) in self.secrets.each_mut() {
            if key.source != SecretSource::Missing {
                continue;
            }
            if generate && !saved.contains_key(name) {
                let fresh = Secret::generate().map_err(|e| {
                    ConfigError::new(format!("cannot generate a secret for `{name}`: {e}"))
                })?;
                saved.insert(name.to_owned(), fresh.expose().to_owned());
                generated = true;
            }
            if let Some(value) = saved.get(name) {
                let secret = Secret::new(value.as_str()).map_err(|e| {
                    ConfigError::new(format!(
                        "the generated secret `{name}` in {path_text} is unusable: {e}"
                    ))
                })?;
                key.secrets = Secrets::single(secret);
                key.source = SecretSource::Generated;
            }
        }
        if generated {
            crate::secrets_file::write(&path, &saved).map_err(|e| {
                ConfigError::new(format!("cannot save generated secrets to {path_text}: {e}"))
            })?;
        }
        Ok(generated)
    }

    /// The effective configuration as `recall.toml` (valid TOML), secrets
    /// redacted, each line's comment naming its environment variable.
    pub fn describe(&self) -> String {
        fn num(value: impl fmt::Display) -> String {
            value.to_string()
        }
        let (limits, timeouts, service) = (&self.limits, &self.timeouts, &self.service);
        let secret = |set: bool| text(if set { REDACTED } else { "" });
        let nets = |nets: &[IpNet]| {
            text(
                nets.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
        };
        // A comment cannot hold a control character.
        let generated = self.generated_secrets_path().display().to_string();
        let generated = generated.replace(char::is_control, "?");
        let tokens = self.admin_tokens.len();
        let mut out = String::new();
        for setting in SETTINGS {
            let webhook = self
                .secrets
                .each()
                .into_iter()
                .find(|(key, _)| *key == setting.key);
            let webhook = webhook.map(|(_, key)| key);
            let note = match webhook.map(|key| key.source) {
                Some(SecretSource::Missing) => {
                    format!("; not set: `recall serve` generates one into {generated}")
                }
                Some(SecretSource::Generated) => format!("; generated, kept in {generated}"),
                Some(SecretSource::Configured) => format!(
                    "; {} secret(s) configured",
                    webhook.map_or(0, |k| k.secrets.len())
                ),
                None if setting.key != "admin_token" => String::new(),
                None if tokens == 0 => "; not set: /api and /dashboard are off".into(),
                None => format!("; {tokens} token(s) configured"),
            };
            let value = match (setting.key, &self.store) {
                ("bind", _) => text(self.bind),
                ("store", store) => text(store.name()),
                ("data_dir", _) => text(self.data_dir.display()),
                ("embedded_db_path", StoreConfig::Embedded { path }) => text(path.display()),
                ("payload_dir", _) => text(self.payload_dir.display()),
                ("embedding_model", _) => match &self.embedding_model {
                    Some(model) => text(model.display()),
                    None => continue,
                },
                ("openmemory_url", StoreConfig::OpenMemory { url, .. }) => text(url),
                ("openmemory_key", StoreConfig::OpenMemory { key, .. }) => secret(key.is_some()),
                ("openmemory_timeout_ms", StoreConfig::OpenMemory { timeout, .. }) => {
                    num(timeout.as_millis())
                }
                (
                    "embedded_db_path"
                    | "openmemory_url"
                    | "openmemory_key"
                    | "openmemory_timeout_ms",
                    _,
                ) => continue,
                ("post_call_key" | "client_data_key" | "search_data_key", _) => {
                    secret(webhook.is_some_and(|k| k.source != SecretSource::Missing))
                }
                ("admin_token", _) => secret(tokens > 0),
                ("elevenlabs_api_key", _) => secret(self.elevenlabs_api_key.is_some()),
                ("log_format", _) => text(format!("{:?}", self.log_format).to_lowercase()),
                ("log_filter", _) => text(&self.log_filter),
                ("post_call_max_bytes", _) => num(limits.post_call_max_bytes),
                ("post_call_max_uploads", _) => num(limits.post_call_max_uploads),
                ("quarantine_max_files", _) => num(limits.quarantine_max_files),
                ("quarantine_max_bytes", _) => num(limits.quarantine_max_bytes),
                ("webhook_max_bytes", _) => num(limits.webhook_max_bytes),
                ("request_timeout_ms", _) => num(timeouts.client_request.as_millis()),
                ("disconnect_timeout_ms", _) => num(timeouts.client_disconnect.as_millis()),
                ("keep_alive_secs", _) => num(timeouts.keep_alive.as_secs()),
                ("body_timeout_secs", _) => num(timeouts.body.as_secs()),
                ("shutdown_timeout_secs", _) => num(timeouts.shutdown.as_secs()),
                ("workers", _) => num(self.workers),
                ("greeting_budget_ms", _) => num(service.greet_budget.as_millis()),
                ("search_k", _) => num(service.search_default_k),
                ("search_max_k", _) => num(service.search_max_k),
                ("greeting", _) => text(service.default_greeting.as_deref().unwrap_or("none")),
                ("greeting_without_last_call", _) => text(&service.greeting_without_last_call),
                ("greeting_templates", _) => table(&service.greeting_templates),
                ("dynamic_variables", _) => table(&service.extra_dynamic_variables),
                ("name_fields", _) => text(service.name_field_ids.join(",")),
                ("retry_initial_ms", _) => num(service.retry_initial.as_millis()),
                ("retry_max_secs", _) => num(service.retry_max.as_secs()),
                ("signature_tolerance_secs", _) => num(self.signature_tolerance_secs),
                ("signature_future_secs", _) => num(self.signature_future_secs),
                ("ip_allowlist", _) => nets(&self.network.allowlist),
                ("trusted_proxies", _) => nets(&self.network.trusted_proxies),
                (other, _) => unreachable!("`{other}` is missing from Config::describe"),
            };
            let _ = writeln!(out, "{} = {value}    # {}{note}", setting.key, setting.env);
        }
        out
    }
}

/// Text as a TOML basic string on one line (the toml crate writes a
/// multi-line string for text with a line break, which would split the
/// line of `check-config`).
fn text(value: impl fmt::Display) -> String {
    let mut out = String::from("\"");
    for c in value.to_string().chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out + "\""
}

/// Texts by name as a TOML inline table.
fn table(map: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{} = {}", text(k), text(v)))
        .collect();
    if items.is_empty() {
        "{}".into()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

/// The configuration file's text, refused when it is not TOML with an
/// error that gives the line, column and problem but not the text there,
/// which may be a secret.
fn read_toml(path: &Path) -> Result<String, ConfigError> {
    let cannot = |what: String| {
        let path = path.display();
        ConfigError::new(format!("cannot read the configuration file {path}: {what}"))
    };
    if !path.is_file() {
        return Err(ConfigError::new(format!(
            "configuration file {} (--config or {CONFIG_ENV}) does not exist or is not a file",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| cannot(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| cannot(format!("TOML syntax error at {}", toml_error(&text, &e))))?;
    match table.keys().find(|key| find(key).is_none()) {
        Some(key) => Err(ConfigError::new(format!(
            "unknown setting `{key}` in {}; known settings: {}",
            path.display(),
            SETTINGS
                .iter()
                .map(|s| s.key)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None => Ok(text),
    }
}

/// Where a TOML error is ("line L, column C") and what it is, without the
/// text there: the parser's own message quotes the line, which may hold a
/// secret.
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let at = e
        .span()
        .map_or(text.len(), |span| span.start.min(text.len()));
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {}", e.message().trim())
}

impl Raw {
    /// The checks that involve several settings, and the [`Config`].
    fn build(self) -> Result<Config, ConfigError> {
        for (i, token) in self.admin_token.iter().enumerate() {
            let len = token.expose().chars().count();
            if len < MIN_ADMIN_TOKEN_LEN {
                let problem = format!(
                    "token #{} is {len} characters long; at least {MIN_ADMIN_TOKEN_LEN} are required (e.g. `openssl rand -hex 24`)",
                    i + 1
                );
                return Err(ConfigError::setting("admin_token", &problem));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_filter).is_err() {
            let allowed = "tracing directives such as info or info,recall_server=debug";
            return Err(ConfigError::setting(
                "log_filter",
                &got(&self.log_filter, allowed),
            ));
        }
        let store = match self.store {
            Store::Embedded => StoreConfig::Embedded {
                path: self
                    .embedded_db_path
                    .unwrap_or_else(|| self.data_dir.join("recall.db")),
            },
            Store::OpenMemory => StoreConfig::OpenMemory {
                url: openmemory_url(&self.openmemory_url)?,
                key: self.openmemory_key,
                timeout: self.openmemory_timeout_ms.millis(),
            },
            Store::Memory => StoreConfig::Memory,
        };
        let defaults = ServiceConfig::default();
        let service = ServiceConfig {
            greeting_templates: self.greeting_templates.0,
            default_greeting: Some(self.greeting)
                .filter(|g| !g.trim().eq_ignore_ascii_case("none")),
            greeting_without_last_call: self.greeting_without_last_call,
            greet_budget: self.greeting_budget_ms.millis(),
            extra_dynamic_variables: self.dynamic_variables.0,
            name_field_ids: self
                .name_fields
                .unwrap_or_else(|| defaults.name_field_ids.clone()),
            search_default_k: self.search_k.size(),
            search_max_k: self.search_max_k.size(),
            retry_initial: self.retry_initial_ms.millis(),
            retry_max: self.retry_max_secs.secs(),
            ..defaults
        };
        service.validate().map_err(|e| {
            let key = match e.setting.split('.').next().unwrap_or_default() {
                "default_greeting" => "greeting",
                "greet_budget" => "greeting_budget_ms",
                "extra_dynamic_variables" => "dynamic_variables",
                "name_field_ids" => "name_fields",
                "search_default_k" => "search_k",
                "retry_initial" => "retry_initial_ms",
                "retry_max" => "retry_max_secs",
                same => same,
            };
            ConfigError::setting(key, &format!("{} {}", e.setting, e.reason))
        })?;
        Ok(Config {
            bind: self.bind,
            payload_dir: self
                .payload_dir
                .unwrap_or_else(|| self.data_dir.join("payloads")),
            data_dir: self.data_dir,
            embedding_model: self.embedding_model,
            store,
            log_format: self.log_format,
            log_filter: self.log_filter,
            secrets: WebhookSecrets {
                post_call: self.post_call_key.into(),
                client_data: self.client_data_key.into(),
                search_data: self.search_data_key.into(),
            },
            elevenlabs_api_key: self.elevenlabs_api_key,
            limits: Limits {
                post_call_max_bytes: self.post_call_max_bytes.0,
                post_call_max_uploads: self.post_call_max_uploads.size(),
                quarantine_max_files: self.quarantine_max_files.0,
                quarantine_max_bytes: self.quarantine_max_bytes.0,
                webhook_max_bytes: self.webhook_max_bytes.size(),
            },
            timeouts: Timeouts {
                client_request: self.request_timeout_ms.millis(),
                client_disconnect: self.disconnect_timeout_ms.millis(),
                keep_alive: self.keep_alive_secs.secs(),
                body: self.body_timeout_secs.secs(),
                shutdown: self.shutdown_timeout_secs.secs(),
            },
            workers: self.workers.size(),
            service,
            signature_tolerance_secs: self.signature_tolerance_secs.0,
            signature_future_secs: self.signature_future_secs.0,
            admin_tokens: self.admin_token,
            network: NetworkPolicy {
                allowlist: self.ip_allowlist,
                trusted_proxies: self.trusted_proxies,
            },
            config_file: None,
            ignored_env: Vec::new(),
        })
    }
}

fn openmemory_url(text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    let invalid = || {
        let allowed =
            "a port number (1-65535) on localhost, or a URL such as http://openmemory:8080";
        ConfigError::setting("openmemory_url", &got(text, allowed))
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u16>() {
            Ok(port) if port > 0 => Ok(format!("http://127.0.0.1:{port}")),
            _ => Err(invalid()),
        };
    }
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.trim_end_matches('/').to_owned())
        }
        _ => Err(invalid()),
    }
}

/// A setting as written. The environment only has text; in `recall.toml`
/// a number or a boolean reads as its text, and some settings take a list
/// or a table.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "got a nested list or table; allowed: a string, a number, or a list or table of them"
)]
enum Input {
    Text(Text),
    List(Vec<Text>),
    Table(BTreeMap<String, Text>),
}

/// One value as text.
#[derive(Deserialize)]
#[serde(from = "Scalar")]
struct Text(String);

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl From<Scalar> for Text {
    fn from(scalar: Scalar) -> Self {
        Self(match scalar {
            Scalar::Text(text) => text,
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(x) => x.to_string(),
            Scalar::Bool(b) => b.to_string(),
        })
    }
}

/// Reads a field of [`Raw`] with its type's [`Field`] impl; the error is
/// what follows "invalid setting `key` (ENV): ".
fn field<'de, D: Deserializer<'de>, T: Field>(deserializer: D) -> Result<T, D::Error> {
    T::from_input(Input::deserialize(deserializer)?).map_err(D::Error::custom)
}

/// How a setting's type reads its value.
trait Field: Sized {
    /// A secret is never shown, nor trimmed: white space around it is
    /// refused, since a secret with a stray newline would never match.
    const SECRET: bool = false;

    /// Reads the value's text; the error says what is allowed.
    fn from_text(text: &str) -> Result<Self, String>;

    /// Reads the value as written. A list reads as its items joined by
    /// commas (each item checked like a whole value); only [`Table`] takes
    /// a table.
    fn from_input(input: Input) -> Result<Self, String> {
        let text = match input {
            Input::Text(Text(text)) => text,
            Input::List(items) => {
                let items = items.iter().map(|Text(item)| untrimmed::<Self>(item));
                items.collect::<Result<Vec<_>, _>>()?.join(",")
            }
            Input::Table(_) => {
                let shown = if Self::SECRET {
                    REDACTED
                } else {
                    "\"a table\""
                };
                return Err(format!(
                    "got {shown}; allowed: a string, a number or a list"
                ));
            }
        };
        Self::from_text(untrimmed::<Self>(&text)?)
    }
}

/// `text`, unless it is a secret with white space around it.
fn untrimmed<T: Field>(text: &str) -> Result<&str, String> {
    if T::SECRET && text.trim() != text {
        Err(WHITE_SPACE.into())
    } else {
        Ok(text)
    }
}

/// Why a secret is never trimmed.
const WHITE_SPACE: &str = "the value starts or ends with white space (a stray newline or space?); secrets are used exactly as given, never trimmed: remove it";

impl Field for String {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl Field for PathBuf {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Err(got("", "a directory path")),
            path => Ok(path.into()),
        }
    }
}

impl Field for SocketAddr {
    fn from_text(text: &str) -> Result<Self, String> {
        let allowed = "an IP address and port such as 127.0.0.1:8080 or [::1]:8080";
        text.trim().parse().map_err(|_| got(text, allowed))
    }
}

impl Field for IpNet {
    fn from_text(text: &str) -> Result<Self, String> {
        let allowed =
            "comma-separated IP addresses or CIDR ranges such as 34.67.146.145 or 10.0.0.0/8";
        text.parse().map_err(|_| got(text, allowed))
    }
}

/// The memory store named by `store`.
enum Store {
    Embedded,
    OpenMemory,
    Memory,
}

impl Field for Store {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "embedded" => Ok(Self::Embedded),
            "openmemory" => Ok(Self::OpenMemory),
            "memory" => Ok(Self::Memory),
            other => Err(got(other, "embedded, openmemory or memory")),
        }
    }
}

impl Field for LogFormat {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "auto" => Ok(Self::Auto),
            "pretty" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            other => Err(got(other, "auto, pretty or json")),
        }
    }
}

/// A whole number from `MIN` to `MAX`.
struct Num<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Field for Num<MIN, MAX> {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().parse() {
            Ok(n) if (MIN..=MAX).contains(&n) => Ok(Self(n)),
            _ => Err(got(text, &format!("a whole number from {MIN} to {MAX}"))),
        }
    }
}

impl<const MIN: u64, const MAX: u64> Num<MIN, MAX> {
    fn millis(&self) -> Duration {
        Duration::from_millis(self.0)
    }

    fn secs(&self) -> Duration {
        Duration::from_secs(self.0)
    }

    fn size(&self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Refuses what `check-config` prints in a secret's place.
fn not_placeholder(text: &str) -> Result<&str, String> {
    match text {
        REDACTED => Err(format!(
            "got {REDACTED}; allowed: the real secret; \"{REDACTED}\" is what `recall check-config` prints in its place"
        )),
        _ => Ok(text),
    }
}

impl Field for RedactedText {
    const SECRET: bool = true;

    fn from_text(text: &str) -> Result<Self, String> {
        Ok(Self(not_placeholder(text)?.to_owned()))
    }
}

/// Several secrets separated by commas, for rotation.
impl Field for Secrets {
    const SECRET: bool = true;

    fn from_text(text: &str) -> Result<Self, String> {
        let items = Vec::<String>::from_text(text)?;
        items
            .iter()
            .try_for_each(|item| not_placeholder(item).map(drop))?;
        let secret = |(i, item)| {
            Secret::new(item).map_err(|e| {
                format!(
                    "got {REDACTED}; allowed: one or more comma-separated secrets without control characters (secret #{}: {e})",
                    i + 1
                )
            })
        };
        items.into_iter().enumerate().map(secret).collect()
    }
}

/// Unset when empty.
impl<T: Field> Field for Option<T> {
    const SECRET: bool = T::SECRET;

    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Ok(None),
            _ => T::from_text(text).map(Some),
        }
    }
}

/// Items separated by commas; white space next to a comma is part of the
/// separator.
impl<T: Field> Field for Vec<T> {
    fn from_text(text: &str) -> Result<Self, String> {
        let items = text.split(',').map(str::trim).filter(|s| !s.is_empty());
        items.map(T::from_text).collect()
    }
}

/// Names to texts: a TOML table, or (in the environment) a JSON object.
struct Table(BTreeMap<String, String>);

impl Field for Table {
    fn from_text(text: &str) -> Result<Self, String> {
        let allowed = "a TOML table, or in the environment a JSON object, of names to text, e.g. {\"agent_1\": \"Hello {{user_name}}!\"}";
        match text.trim() {
            "" => Ok(Self(BTreeMap::new())),
            json => serde_json::from_str(json)
                .map(Self)
                .map_err(|_| got(json, allowed)),
        }
    }

    fn from_input(input: Input) -> Result<Self, String> {
        match input {
            Input::Table(table) => Ok(Self(table.into_iter().map(|(k, Text(v))| (k, v)).collect())),
            input => Self::from_text(&String::from_input(input)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(None, &EnvVars::from_pairs(vars.iter().copied()))
    }

    fn error(vars: &[(&str, &str)]) -> String {
        load(vars).unwrap_err().to_string()
    }

    /// Loads `recall.toml` holding `text`, with no environment.
    fn load_file(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recall.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), &EnvVars::default())
    }

    /// Asserts that `message` says every one of `parts`.
    #[track_caller]
    fn says(message: &str, parts: &[&str]) {
        let missing: Vec<_> = parts.iter().filter(|p| !message.contains(*p)).collect();
        assert!(missing.is_empty(), "{missing:?} not in: {message}");
    }

    #[test]
    fn defaults_serve_loopback_on_the_embedded_store_under_data() {
        let c = load(&[]).unwrap();
        assert_eq!(c.bind, "127.0.0.1:8080".parse().unwrap());
        let path = PathBuf::from("./data/recall.db");
        assert_eq!(c.store, StoreConfig::Embedded { path });
        assert_eq!(c.payload_dir, PathBuf::from("./data/payloads"));
        assert_eq!(c.limits.post_call_max_bytes, 64 << 20);
        assert_eq!(c.limits.webhook_max_bytes, 64 << 10);
        assert_eq!(c.secrets.post_call.source, SecretSource::Missing);
    }

    #[test]
    fn seed_names_and_rotation_lists_are_read() {
        let c = load(&[
            ("ELEVENLABS_POST_CALL_KEY", "wsec_new, wsec_old"),
            ("ELEVENLABS_CLIENT_DATA_KEY", "cd"),
            ("OPENMEMORY_PORT", "9000"),
            ("RECALL_STORE", "openmemory"),
            ("PAYLOAD_STORAGE_PATH", "/tmp/p"),
        ])
        .unwrap();
        assert_eq!(c.secrets.post_call.secrets.len(), 2);
        assert_eq!(c.secrets.client_data.source, SecretSource::Configured);
        assert_eq!(c.payload_dir, PathBuf::from("/tmp/p"));
        match c.store {
            StoreConfig::OpenMemory { url, .. } => assert_eq!(url, "http://127.0.0.1:9000"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_name_the_setting_and_what_is_allowed() {
        let e = error(&[("RECALL_STORE", "postgres")]);
        says(&e, &["RECALL_STORE", "embedded, openmemory or memory"]);
        says(&error(&[("RECALL_BIND", "localhost")]), &["RECALL_BIND"]);
        says(
            &error(&[("RECALL_SEARCH_K", "0")]),
            &["RECALL_SEARCH_K", "1 to 100"],
        );
        let e = error(&[("RECALL_IP_ALLOWLIST", "1.2.3.4,nope")]);
        says(&e, &["RECALL_IP_ALLOWLIST", "nope"]);
    }

    #[test]
    fn greetings_and_search_sizes_reach_the_service() {
        let c = load(&[
            (
                "RECALL_GREETING_TEMPLATES",
                r#"{"agent_1": "Welcome back, {{user_name}}!"}"#,
            ),
            ("RECALL_GREETING", "none"),
            ("RECALL_NAME_FIELDS", "given_name, nickname"),
            ("RECALL_SEARCH_K", "8"),
        ])
        .unwrap();
        let templates = &c.service.greeting_templates;
        assert_eq!(templates["agent_1"], "Welcome back, {{user_name}}!");
        assert_eq!(c.service.default_greeting, None);
        assert_eq!(c.service.name_field_ids, ["given_name", "nickname"]);
        assert_eq!(c.service.search_default_k, 8);

        let e = error(&[("RECALL_GREETING_TEMPLATES", "agent_1=hi")]);
        says(&e, &["RECALL_GREETING_TEMPLATES"]);
        let e = error(&[("RECALL_SEARCH_K", "30")]);
        says(&e, &["RECALL_SEARCH_K", "search_max_k"]);
        let e = error(&[("RECALL_DYNAMIC_VARIABLES", r#"{"user_name": "x"}"#)]);
        says(&e, &["RECALL_DYNAMIC_VARIABLES"]);
    }

    #[test]
    fn tables_in_the_toml_file_are_read() {
        let c = load_file(
            "[greeting_templates]\nagent_7 = \"Hello again {{user_name}}\"\n[dynamic_variables]\ncompany = \"Acme\"\n",
        )
        .unwrap();
        let templates = &c.service.greeting_templates;
        assert_eq!(templates["agent_7"], "Hello again {{user_name}}");
        assert_eq!(c.service.extra_dynamic_variables["company"], "Acme");
    }

    #[test]
    fn unknown_recall_variables_are_reported_not_fatal() {
        let c = load(&[
            ("RECALL_BNID", "0.0.0.0:1"),
            ("RECALL_CONFIG", ""),
            ("HOME", "/"),
        ])
        .unwrap();
        assert_eq!(c.ignored_env, ["RECALL_BNID"]);
        assert_eq!(c.bind.port(), 8080);
    }

    #[test]
    fn the_description_is_a_recall_toml_that_loads_back_the_same() {
        let c = load(&[
            ("RECALL_BIND", "127.0.0.1:9001"),
            (
                "RECALL_GREETING_TEMPLATES",
                r#"{"agent_1": "Hi \"{{user_name}}\"\\o/"}"#,
            ),
            ("RECALL_IP_ALLOWLIST", "10.0.0.0/8,34.67.146.145"),
            ("ELEVENLABS_POST_CALL_KEY", "wsec_x"),
        ])
        .unwrap();
        // Secrets are redacted, so leave them out of the round trip.
        let without_secrets: String = (c.describe().lines())
            .filter(|l| !l.contains("[redacted]") && !l.starts_with("post_call_key"))
            .map(|l| format!("{l}\n"))
            .collect();
        let again = load_file(&without_secrets).unwrap();
        assert_eq!(again.bind, c.bind);
        assert_eq!(again.service, c.service);
        assert_eq!(again.network.allowlist.len(), 2, "{without_secrets}");
    }

    #[test]
    fn the_redacted_placeholder_is_refused_as_a_secret() {
        for name in [
            "ELEVENLABS_POST_CALL_KEY",
            "OPENMEMORY_KEY",
            "ELEVENLABS_API_KEY",
        ] {
            let e = error(&[("RECALL_STORE", "openmemory"), (name, "[redacted]")]);
            says(&e, &[name, "check-config"]);
        }
    }

    #[test]
    fn secrets_never_appear_in_errors_or_descriptions() {
        let e = error(&[("ELEVENLABS_POST_CALL_KEY", "ok,bad\u{7}secret")]);
        assert!(
            e.contains("ELEVENLABS_POST_CALL_KEY") && !e.contains("secret\u{7}"),
            "{e}"
        );
        let c = load(&[("ELEVENLABS_SEARCH_DATA_KEY", "hunter2-very-secret")]).unwrap();
        assert!(!c.describe().contains("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn a_toml_file_is_layered_under_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recall.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9999\"\nsearch_k = 7\n").unwrap();
        let env = EnvVars::from_pairs([("RECALL_SEARCH_K", "3")]);
        let c = Config::load(Some(&path), &env).unwrap();
        assert_eq!(c.bind.port(), 9999);
        assert_eq!(c.service.search_default_k, 3);
        let e = load_file("bnd = \"x\"\n").unwrap_err().to_string();
        says(&e, &["unknown setting `bnd`"]);
    }

    #[test]
    fn secrets_with_surrounding_white_space_are_refused_not_trimmed() {
        for (env, key) in [
            ("ELEVENLABS_POST_CALL_KEY", "post_call_key"),
            ("ELEVENLABS_CLIENT_DATA_KEY", "client_data_key"),
            ("ELEVENLABS_SEARCH_DATA_KEY", "search_data_key"),
            ("RECALL_ADMIN_TOKEN", "admin_token"),
            ("OPENMEMORY_KEY", "openmemory_key"),
        ] {
            for value in [
                "wsec_0123456789abcdef\n",
                " wsec_0123456789abcdef",
                "a-long-enough-token,b-long-enough-token\t",
            ] {
                let e = error(&[(env, value)]);
                says(&e, &[&format!("`{key}` ({env})"), "white space"]);
                assert!(!e.contains("0123456789abcdef"), "{e}");
            }
        }
        // Spaces next to a comma only separate the secrets of a rotation.
        let c = load(&[("ELEVENLABS_POST_CALL_KEY", "wsec_new, wsec_old")]).unwrap();
        assert_eq!(c.secrets.post_call.secrets.len(), 2);
    }

    #[test]
    fn a_toml_list_of_secrets_is_checked_item_by_item() {
        let e = load_file("post_call_key = [\"wsec_new\", \" wsec_old\"]\n");
        says(
            &e.unwrap_err().to_string(),
            &["`post_call_key`", "white space"],
        );
        let c = load_file("post_call_key = [\"wsec_new\", \"wsec_old\"]\n").unwrap();
        assert_eq!(c.secrets.post_call.secrets.len(), 2);
    }

    #[test]
    fn admin_tokens_shorter_than_16_characters_are_refused() {
        let e = error(&[("RECALL_ADMIN_TOKEN", "0123456789abcdef, short")]);
        says(
            &e,
            &[
                "`admin_token` (RECALL_ADMIN_TOKEN)",
                "token #2 is 5 characters",
            ],
        );
        assert!(!e.contains("short"), "the token itself is not shown: {e}");
        let c = load(&[("RECALL_ADMIN_TOKEN", "0123456789abcdef")]).unwrap();
        assert_eq!(c.admin_tokens.len(), 1);
    }

    #[test]
    fn a_saved_secret_with_surrounding_white_space_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap();
        let saved = "post_call_key = \"wsec_saved \"\n";
        std::fs::write(dir.path().join(GENERATED_SECRETS_FILE), saved).unwrap();
        type Resolve = fn(&mut Config) -> Result<(), ConfigError>;
        let resolvers: [Resolve; 2] = [Config::load_generated_secrets, |c| {
            c.resolve_secrets().map(drop)
        }];
        for resolve in resolvers {
            let mut c = load(&[("RECALL_DATA_DIR", data_dir)]).unwrap();
            let e = resolve(&mut c).unwrap_err().to_string();
            says(
                &e,
                &["`post_call_key`", GENERATED_SECRETS_FILE, "whitespace"],
            );
        }
    }

    #[test]
    fn a_toml_syntax_error_does_not_quote_the_line() {
        // Found by fuzzing: the TOML parser's message quotes the offending
        // line, which printed an unquoted secret at start-up.
        let e = load_file("bind = \"127.0.0.1:9999\"\npost_call_key = wsec_hunter2_unquoted\n");
        let e = e.unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        says(
            &e,
            &[
                "cannot read the configuration",
                "TOML syntax error at line 2, column 17",
            ],
        );
    }
}
