//! Configuration: built-in defaults, then `recall.toml`, then the
//! environment, extracted by figment into [`Config`] and validated once at
//! start-up.
//!
//! Each setting is declared once, in the `settings!` table below: its key
//! (used in `recall.toml`), its environment variable (the seed's names such
//! as `ELEVENLABS_POST_CALL_KEY`, or `RECALL_<KEY>` for the rest), its
//! default and the type that reads, checks and shows it ([`Field`]). That
//! one line makes the field of [`Config`], the row of [`SETTINGS`] and the
//! line of `recall check-config`. A bad value stops start-up with a
//! [`ConfigError`] naming the setting and what is allowed.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format as _, Serialized, Toml};
use figment::{Figment, error::Kind};
use recall_service::{DeletionPolicy, ServiceConfig};
use recall_signature::{Secret, Secrets};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use toml::Value;

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

/// Declares the settings once: [`SETTINGS`], the fields of [`Config`] and
/// what `check-config` shows of each.
macro_rules! settings {
    ($($key:ident: $ty:ty = $env:literal $(, $default:expr)?;)+) => {
        /// Every setting Recall reads, in the order `check-config` prints them.
        pub const SETTINGS: &[Setting] = &[$(Setting {
            key: stringify!($key),
            env: $env,
            default: settings!(@default $($default)?),
            secret: <$ty as Field>::SECRET,
        }),+];

        /// The validated configuration: one field per setting (its key),
        /// then what is derived from them.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            $(
                #[doc = concat!("`", stringify!($key), "` (`", $env, "`): see docs/configuration.md.")]
                #[serde(deserialize_with = "field")]
                pub $key: $ty,
            )+
            /// The use cases' settings (greetings, budgets, search sizes,
            /// retry), made of the settings above.
            #[serde(skip)]
            pub service: ServiceConfig,
            /// Whether `admin_token` was generated on a first run (and is
            /// kept in the generated-secrets file) rather than configured.
            #[serde(skip)]
            pub admin_token_generated: bool,
            /// The configuration file read, if any.
            #[serde(skip)]
            pub config_file: Option<PathBuf>,
            /// `RECALL_*` environment variables that are not settings
            /// (typos?); `recall serve` warns about them.
            #[serde(skip)]
            pub ignored_env: Vec<String>,
        }

        impl Config {
            /// Each setting's value as `recall.toml` would write it.
            fn shown(&self) -> [String; SETTINGS.len()] {
                [$(self.$key.show()),+]
            }
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
    audit_log: Option<PathBuf> = "RECALL_AUDIT_LOG";
    embedding_model: Option<PathBuf> = "RECALL_EMBEDDING_MODEL";
    openmemory_url: String = "OPENMEMORY_PORT", "8080";
    openmemory_key: Option<RedactedText> = "OPENMEMORY_KEY";
    openmemory_timeout_ms: Num<1, 600_000> = "RECALL_OPENMEMORY_TIMEOUT_MS", "2000";
    post_call_key: WebhookKey = "ELEVENLABS_POST_CALL_KEY";
    client_data_key: WebhookKey = "ELEVENLABS_CLIENT_DATA_KEY";
    search_data_key: WebhookKey = "ELEVENLABS_SEARCH_DATA_KEY";
    admin_token: Secrets = "RECALL_ADMIN_TOKEN";
    elevenlabs_api_key: Option<RedactedText> = "ELEVENLABS_API_KEY";
    elevenlabs_api_url: String = "ELEVENLABS_API_URL", "https://api.elevenlabs.io";
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
    database_url: Option<DatabaseUrl> = "DATABASE_URL";
    database_schema: String = "RECALL_DATABASE_SCHEMA", "public";
    database_pool_size: Num<1, 1024> = "RECALL_DATABASE_POOL_SIZE", "16";
    database_statement_timeout_ms: Num<1, 600_000> = "RECALL_DATABASE_STATEMENT_TIMEOUT_MS", "5000";
    database_ca_file: Option<PathBuf> = "RECALL_DATABASE_CA_FILE";
    claim_lease_secs: Num<1, 3600> = "RECALL_CLAIM_LEASE_SECS", "60";
    deletion_policy: DeletionPolicy = "RECALL_DELETION_POLICY", "raw";
    retain_events_days: Option<Num<1, 36_500>> = "RECALL_RETAIN_EVENTS_DAYS";
    retain_audio_days: Option<Num<1, 36_500>> = "RECALL_RETAIN_AUDIO_DAYS";
    retain_callers_days: Option<Num<1, 36_500>> = "RECALL_RETAIN_CALLERS_DAYS";
    retention_sweep_secs: Num<1, 86_400> = "RECALL_RETENTION_SWEEP_SECS", "3600";
}

/// Looks a setting up by key.
pub(crate) fn find(key: &str) -> Option<&'static Setting> {
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
    pub(crate) fn new(message: impl Into<String>) -> Self {
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

/// The memory store named by `store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Recall's embedded store.
    Embedded,
    /// OpenMemory over HTTP.
    OpenMemory,
    /// The in-memory store (lost on exit; for tests and demos).
    Memory,
    /// PostgreSQL (`database_url`): memories, events and the call index,
    /// shared by any number of replicas.
    Postgres,
}

impl Store {
    /// The store's name as configured.
    pub fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::OpenMemory => "openmemory",
            Self::Memory => "memory",
            Self::Postgres => "postgres",
        }
    }

    /// The store named `name`.
    ///
    /// # Errors
    /// What the names are.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::from_text(name)
    }

    /// Whether this store keeps the events and the call index too, so that
    /// the server needs no local state.
    pub fn is_shared(self) -> bool {
        self == Self::Postgres
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

/// A PostgreSQL URL (`postgres://user:password@host:port/db?sslmode=...`).
/// `Debug` and `check-config` show it with the password redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(url::Url);

impl DatabaseUrl {
    /// The URL, password included, for the one place that connects.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// The URL with its password redacted.
    pub fn masked(&self) -> String {
        let mut url = self.0.clone();
        if url.password().is_some() {
            // Cannot fail: the URL has a host, since it has a password.
            let _ = url.set_password(Some(REDACTED));
        }
        url.to_string()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
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
        let mut config: Self = figment
            .merge(Serialized::defaults(env.settings()))
            .extract()
            .map_err(|e| ConfigError::from_figment(&e, file.as_deref()))?;
        config.check()?;
        config.config_file = file;
        config.ignored_env = env.unknown_recall_names();
        Ok(config)
    }

    /// The checks that involve several settings, the defaults made of
    /// other settings, and the [`ServiceConfig`].
    fn check(&mut self) -> Result<(), ConfigError> {
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
            let problem = got(&self.log_filter, allowed);
            return Err(ConfigError::setting("log_filter", &problem));
        }
        self.elevenlabs_api_url = elevenlabs_api_url(&self.elevenlabs_api_url)?;
        if self.store == Store::OpenMemory {
            self.openmemory_url = openmemory_url(&self.openmemory_url)?;
        }
        if self.store == Store::Postgres && self.database_url.is_none() {
            let problem = "required with store = \"postgres\": a URL such as postgres://recall:PASSWORD@db.example.com:5432/recall?sslmode=require";
            return Err(ConfigError::setting("database_url", problem));
        }
        let schema = &self.database_schema;
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if schema.is_empty()
            || !schema.chars().all(plain)
            || schema.starts_with(|c: char| c.is_ascii_digit())
        {
            let allowed =
                "a plain identifier: ASCII letters, digits and _, not starting with a digit";
            return Err(ConfigError::setting(
                "database_schema",
                &got(schema, allowed),
            ));
        }
        let data_dir = &self.data_dir;
        (self.embedded_db_path).get_or_insert_with(|| data_dir.join("recall.db"));
        (self.payload_dir).get_or_insert_with(|| data_dir.join("payloads"));
        (self.audit_log).get_or_insert_with(|| data_dir.join(recall_service::AUDIT_FILE_NAME));
        let defaults = ServiceConfig::default();
        let name_fields = (self.name_fields).get_or_insert_with(|| defaults.name_field_ids.clone());
        self.service = ServiceConfig {
            greeting_templates: self.greeting_templates.0.clone(),
            default_greeting: Some(self.greeting.clone())
                .filter(|g| !g.trim().eq_ignore_ascii_case("none")),
            greeting_without_last_call: self.greeting_without_last_call.clone(),
            greet_budget: self.greeting_budget_ms.millis(),
            extra_dynamic_variables: self.dynamic_variables.0.clone(),
            name_field_ids: name_fields.clone(),
            search_default_k: self.search_k.size(),
            search_max_k: self.search_max_k.size(),
            retry_initial: self.retry_initial_ms.millis(),
            retry_max: self.retry_max_secs.secs(),
            claim_lease: self.claim_lease_secs.secs(),
            deletion_policy: self.deletion_policy,
            retain_events: self.retain_events_days.map(Num::days),
            retain_audio: self.retain_audio_days.map(Num::days),
            retain_callers: self.retain_callers_days.map(Num::days),
            retention_sweep: self.retention_sweep_secs.secs(),
            ..defaults
        };
        self.service.validate().map_err(|e| {
            let key = match e.setting.split('.').next().unwrap_or_default() {
                "default_greeting" => "greeting",
                "greet_budget" => "greeting_budget_ms",
                "extra_dynamic_variables" => "dynamic_variables",
                "name_field_ids" => "name_fields",
                "search_default_k" => "search_k",
                "retry_initial" => "retry_initial_ms",
                "retry_max" => "retry_max_secs",
                "retain_events" => "retain_events_days",
                "retain_audio" => "retain_audio_days",
                "retain_callers" => "retain_callers_days",
                "retention_sweep" => "retention_sweep_secs",
                same => same,
            };
            ConfigError::setting(key, &format!("{} {}", e.setting, e.reason))
        })
    }

    /// The embedded store's file.
    pub fn embedded_db_path(&self) -> PathBuf {
        (self.embedded_db_path.clone()).unwrap_or_else(|| self.data_dir.join("recall.db"))
    }

    /// Where raw post-call events are kept.
    pub fn payload_dir(&self) -> PathBuf {
        (self.payload_dir.clone()).unwrap_or_else(|| self.data_dir.join("payloads"))
    }

    /// The audit log's file (with every store but `postgres`, which keeps
    /// the audit log in a table).
    pub fn audit_log_path(&self) -> PathBuf {
        (self.audit_log.clone())
            .unwrap_or_else(|| self.data_dir.join(recall_service::AUDIT_FILE_NAME))
    }

    /// The three webhooks' keys with their setting keys.
    pub fn webhook_keys(&self) -> [(&'static str, &WebhookKey); 3] {
        [
            ("post_call_key", &self.post_call_key),
            ("client_data_key", &self.client_data_key),
            ("search_data_key", &self.search_data_key),
        ]
    }

    /// The path of the file holding generated secrets.
    pub fn generated_secrets_path(&self) -> PathBuf {
        self.data_dir.join(GENERATED_SECRETS_FILE)
    }

    /// The effective configuration as `recall.toml` (valid TOML), secrets
    /// redacted, each line's comment naming its environment variable.
    /// Settings of a store not in use are left out.
    pub fn describe(&self) -> String {
        // A comment cannot hold a control character.
        let generated = self.generated_secrets_path().display().to_string();
        let generated = generated.replace(char::is_control, "?");
        let tokens = self.admin_token.len();
        let mut out = String::new();
        for (setting, value) in SETTINGS.iter().zip(self.shown()) {
            let unused = match setting.key {
                "embedded_db_path" => self.store != Store::Embedded,
                key if key.starts_with("database_") || key == "claim_lease_secs" => {
                    self.store != Store::Postgres
                }
                key => key.starts_with("openmemory_") && self.store != Store::OpenMemory,
            };
            if unused {
                continue;
            }
            let mut webhook = self.webhook_keys().into_iter();
            let webhook = webhook.find(|(key, _)| *key == setting.key).map(|(_, k)| k);
            let note = match webhook.map(|key| (key.source, key.secrets.len())) {
                Some((SecretSource::Missing, _)) => {
                    format!("; not set: `recall serve` generates one into {generated}")
                }
                Some((SecretSource::Generated, _)) => format!("; generated, kept in {generated}"),
                Some((SecretSource::Configured, n)) => format!("; {n} secret(s) configured"),
                None if setting.key != "admin_token" => String::new(),
                None if self.admin_token_generated => format!("; generated, kept in {generated}"),
                None if tokens == 0 => "; not set: /api and /dashboard are off".into(),
                None => format!("; {tokens} token(s) configured"),
            };
            let _ = writeln!(out, "{} = {value}    # {}{note}", setting.key, setting.env);
        }
        out
    }
}

/// Text as a TOML basic string on one line: JSON's escaping, which TOML
/// shares, plus DEL, which TOML also wants escaped. (The toml crate writes
/// a multi-line string for text with a line break, which would split the
/// line of `check-config`.)
fn text(value: impl fmt::Display) -> String {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    quoted.replace('\u{7f}', "\\u007F")
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
        Some(key) => {
            let known: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
            Err(ConfigError::new(format!(
                "unknown setting `{key}` in {}; known settings: {}",
                path.display(),
                known.join(", ")
            )))
        }
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

/// The ElevenLabs API base URL: http(s), no query, without a trailing `/`.
fn elevenlabs_api_url(text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    let allowed = "the API's base URL, such as https://api.elevenlabs.io or https://api.eu.residency.elevenlabs.io";
    match url::Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            Ok(text.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError::setting(
            "elevenlabs_api_url",
            &got(text, allowed),
        )),
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

/// Reads a field of [`Config`] with its type's [`Field`] impl; the error
/// is what follows "invalid setting `key` (ENV): ".
fn field<'de, D: Deserializer<'de>, T: Field>(deserializer: D) -> Result<T, D::Error> {
    T::from_input(Value::deserialize(deserializer)?).map_err(D::Error::custom)
}

/// A value as text. The environment only has text; in `recall.toml` a
/// number or a boolean reads as its text.
fn scalar(value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        Value::Array(_) | Value::Table(_) => Err(
            "got a nested list or table; allowed: a string, a number, or a list or table of them"
                .into(),
        ),
        other => Ok(other.to_string()),
    }
}

/// How a setting's type reads its value and shows it again.
trait Field: Sized {
    /// A secret is never shown, nor trimmed: white space around it is
    /// refused, since a secret with a stray newline would never match.
    const SECRET: bool = false;

    /// Reads the value's text; the error says what is allowed.
    ///
    /// # Errors
    /// What is allowed, and the text unless it is a secret.
    fn from_text(text: &str) -> Result<Self, String>;

    /// The value as `recall.toml` writes it (a secret: redacted).
    fn show(&self) -> String;

    /// Reads the value as written. A list reads as its items joined by
    /// commas (each item checked like a whole value); only [`Table`] takes
    /// a table.
    ///
    /// # Errors
    /// As [`Field::from_text`].
    fn from_input(input: Value) -> Result<Self, String> {
        let text = match input {
            Value::Array(items) => {
                let item = |item| scalar(item).and_then(|t| Ok(untrimmed::<Self>(&t)?.to_owned()));
                items
                    .into_iter()
                    .map(item)
                    .collect::<Result<Vec<_>, _>>()?
                    .join(",")
            }
            Value::Table(_) => {
                let shown = if Self::SECRET {
                    REDACTED
                } else {
                    "\"a table\""
                };
                return Err(format!(
                    "got {shown}; allowed: a string, a number or a list"
                ));
            }
            value => scalar(value)?,
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

    fn show(&self) -> String {
        text(self)
    }
}

impl Field for PathBuf {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Err(got("", "a directory path")),
            path => Ok(path.into()),
        }
    }

    fn show(&self) -> String {
        text(self.display())
    }
}

impl Field for SocketAddr {
    fn from_text(text: &str) -> Result<Self, String> {
        let allowed = "an IP address and port such as 127.0.0.1:8080 or [::1]:8080";
        text.trim().parse().map_err(|_| got(text, allowed))
    }

    fn show(&self) -> String {
        text(self)
    }
}

impl Field for IpNet {
    fn from_text(text: &str) -> Result<Self, String> {
        let allowed =
            "comma-separated IP addresses or CIDR ranges such as 34.67.146.145 or 10.0.0.0/8";
        text.parse().map_err(|_| got(text, allowed))
    }

    fn show(&self) -> String {
        text(self)
    }
}

impl Field for Store {
    fn from_text(text: &str) -> Result<Self, String> {
        let all = [
            Self::Embedded,
            Self::OpenMemory,
            Self::Memory,
            Self::Postgres,
        ];
        let found = all.into_iter().find(|s| s.name() == text.trim());
        found.ok_or_else(|| got(text.trim(), "embedded, openmemory, memory or postgres"))
    }

    fn show(&self) -> String {
        text(self.name())
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

    fn show(&self) -> String {
        text(format!("{self:?}").to_lowercase())
    }
}

impl Field for DeletionPolicy {
    fn from_text(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }

    fn show(&self) -> String {
        text(self.name())
    }
}

/// A whole number from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Num<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Field for Num<MIN, MAX> {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().parse() {
            Ok(n) if (MIN..=MAX).contains(&n) => Ok(Self(n)),
            _ => Err(got(text, &format!("a whole number from {MIN} to {MAX}"))),
        }
    }

    fn show(&self) -> String {
        self.0.to_string()
    }
}

impl<const MIN: u64, const MAX: u64> Num<MIN, MAX> {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The number of milliseconds.
    pub fn millis(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// The number of seconds.
    pub fn secs(self) -> Duration {
        Duration::from_secs(self.0)
    }

    /// The number of days.
    pub fn days(self) -> Duration {
        Duration::from_secs(self.0.saturating_mul(24 * 3600))
    }

    /// The number as a size or count.
    pub fn size(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl Field for DatabaseUrl {
    fn from_text(text: &str) -> Result<Self, String> {
        // The text is never quoted: it may hold a password.
        let allowed =
            "a URL such as postgres://recall:PASSWORD@db.example.com:5432/recall?sslmode=require";
        let url = url::Url::parse(text.trim())
            .map_err(|e| format!("not a URL ({e}); allowed: {allowed}"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") || !url.has_host() {
            return Err(format!(
                "not a postgres:// URL with a host; allowed: {allowed}"
            ));
        }
        if url.password().is_some_and(|p| p == "%5Bredacted%5D") {
            return Err(format!(
                "the password is {REDACTED}, what `recall check-config` prints in its place; allowed: the real password"
            ));
        }
        Ok(Self(url))
    }

    fn show(&self) -> String {
        text(self.masked())
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

/// The redacted placeholder, or `""` when nothing is set.
fn redacted(set: bool) -> String {
    text(if set { REDACTED } else { "" })
}

impl Field for RedactedText {
    const SECRET: bool = true;

    fn from_text(text: &str) -> Result<Self, String> {
        Ok(Self(not_placeholder(text)?.to_owned()))
    }

    fn show(&self) -> String {
        redacted(true)
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

    fn show(&self) -> String {
        redacted(!self.is_empty())
    }
}

/// Configured secrets, or none: [`SecretSource::Missing`].
impl Field for WebhookKey {
    const SECRET: bool = true;

    fn from_text(text: &str) -> Result<Self, String> {
        let secrets = Secrets::from_text(text)?;
        let source = match secrets.is_empty() {
            true => SecretSource::Missing,
            false => SecretSource::Configured,
        };
        Ok(Self { secrets, source })
    }

    fn show(&self) -> String {
        redacted(self.source != SecretSource::Missing)
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

    fn show(&self) -> String {
        self.as_ref().map_or_else(|| text(""), T::show)
    }
}

/// Items separated by commas; white space next to a comma is part of the
/// separator. Shown as a TOML list.
impl<T: Field> Field for Vec<T> {
    fn from_text(text: &str) -> Result<Self, String> {
        let items = text.split(',').map(str::trim).filter(|s| !s.is_empty());
        items.map(T::from_text).collect()
    }

    fn show(&self) -> String {
        format!(
            "[{}]",
            self.iter().map(T::show).collect::<Vec<_>>().join(", ")
        )
    }
}

/// Names to texts: a TOML table, or (in the environment) a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table(pub BTreeMap<String, String>);

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

    fn show(&self) -> String {
        let items: Vec<_> = (self.0.iter())
            .map(|(k, v)| format!("{} = {}", text(k), text(v)))
            .collect();
        match items.is_empty() {
            true => "{}".into(),
            false => format!("{{ {} }}", items.join(", ")),
        }
    }

    fn from_input(input: Value) -> Result<Self, String> {
        match input {
            Value::Table(table) => {
                let item = |(k, v)| Ok((k, scalar(v)?));
                table
                    .into_iter()
                    .map(item)
                    .collect::<Result<_, String>>()
                    .map(Self)
            }
            input => Self::from_text(&String::from_input(input)?),
        }
    }
}
