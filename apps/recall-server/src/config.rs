//! Configuration: built-in defaults, then `recall.toml`, then the
//! environment, validated once at start-up.
//!
//! Every setting has a key (used in `recall.toml`) and an environment
//! variable (the seed's names such as `ELEVENLABS_POST_CALL_KEY`, or
//! `RECALL_<KEY>` for the rest). A bad value stops start-up with a
//! [`ConfigError`] naming the setting and what is allowed.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use recall_service::ServiceConfig;
use recall_signature::{Secret, Secrets};

use crate::net::IpNet;

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "RECALL_CONFIG";

/// One known setting: its key in `recall.toml`, its environment variable,
/// its default (as text, `None` when unset by default) and what it means.
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
    /// What it is.
    pub help: &'static str,
}

const fn setting(
    key: &'static str,
    env: &'static str,
    default: Option<&'static str>,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        env,
        default,
        secret: false,
        help,
    }
}

const fn secret(key: &'static str, env: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        env,
        default: None,
        secret: true,
        help,
    }
}

/// Every setting Recall reads, in the order `check-config` prints them.
pub const SETTINGS: &[Setting] = &[
    setting(
        "bind",
        "RECALL_BIND",
        Some("127.0.0.1:8080"),
        "address and port to listen on (port 0 picks a free port)",
    ),
    setting(
        "store",
        "RECALL_STORE",
        Some("embedded"),
        "memory store: embedded, openmemory or memory (lost on exit)",
    ),
    setting(
        "data_dir",
        "RECALL_DATA_DIR",
        Some("./data"),
        "directory for the embedded store, payloads and generated secrets",
    ),
    setting(
        "embedded_db_path",
        "OPENMEMORY_DB_PATH",
        None,
        "the embedded store's file (default: <data_dir>/recall.db)",
    ),
    setting(
        "payload_dir",
        "PAYLOAD_STORAGE_PATH",
        None,
        "where raw post-call events are kept (default: <data_dir>/payloads)",
    ),
    setting(
        "embedding_model",
        "RECALL_EMBEDDING_MODEL",
        None,
        "directory of another embedding model: a sentence-transformers model (the full transformer) or a static table; default: the built-in static model",
    ),
    setting(
        "openmemory_url",
        "OPENMEMORY_PORT",
        Some("8080"),
        "OpenMemory's port on localhost, or its full URL (store = openmemory)",
    ),
    secret(
        "openmemory_key",
        "OPENMEMORY_KEY",
        "OpenMemory API key, sent as a bearer token (store = openmemory)",
    ),
    setting(
        "openmemory_timeout_ms",
        "RECALL_OPENMEMORY_TIMEOUT_MS",
        Some("2000"),
        "timeout of one OpenMemory request, in milliseconds",
    ),
    secret(
        "post_call_key",
        "ELEVENLABS_POST_CALL_KEY",
        "post-call webhook HMAC secret(s), comma-separated for rotation",
    ),
    secret(
        "client_data_key",
        "ELEVENLABS_CLIENT_DATA_KEY",
        "client-data webhook shared secret(s), comma-separated for rotation",
    ),
    secret(
        "search_data_key",
        "ELEVENLABS_SEARCH_DATA_KEY",
        "search-data tool shared secret(s), comma-separated for rotation",
    ),
    secret(
        "admin_token",
        "RECALL_ADMIN_TOKEN",
        "operator API and dashboard bearer token(s), comma-separated; unset turns /api and /dashboard off",
    ),
    secret(
        "elevenlabs_api_key",
        "ELEVENLABS_API_KEY",
        "ElevenLabs API key (accepted for compatibility with the seed; not needed to serve)",
    ),
    setting(
        "log_format",
        "RECALL_LOG_FORMAT",
        Some("auto"),
        "auto (pretty at a terminal, JSON otherwise), pretty or json",
    ),
    setting(
        "log_filter",
        "RECALL_LOG",
        Some("info"),
        "tracing filter directives, e.g. info,recall_server=debug",
    ),
    setting(
        "post_call_max_bytes",
        "RECALL_POST_CALL_MAX_BYTES",
        Some("67108864"),
        "largest post-call body accepted, in bytes (64 MiB)",
    ),
    setting(
        "post_call_max_uploads",
        "RECALL_POST_CALL_MAX_UPLOADS",
        Some("32"),
        "post-call bodies received at once before their signature is checked; past it, 503 with Retry-After",
    ),
    setting(
        "quarantine_max_files",
        "RECALL_QUARANTINE_MAX_FILES",
        Some("1000"),
        "refused post-call bodies kept for inspection; the oldest go first",
    ),
    setting(
        "quarantine_max_bytes",
        "RECALL_QUARANTINE_MAX_BYTES",
        Some("268435456"),
        "bytes of refused post-call bodies kept (256 MiB); the oldest go first",
    ),
    setting(
        "webhook_max_bytes",
        "RECALL_WEBHOOK_MAX_BYTES",
        Some("65536"),
        "largest client-data or search-data body accepted, in bytes (64 KiB)",
    ),
    setting(
        "request_timeout_ms",
        "RECALL_REQUEST_TIMEOUT_MS",
        Some("5000"),
        "time a client has to send its request head, in milliseconds",
    ),
    setting(
        "disconnect_timeout_ms",
        "RECALL_DISCONNECT_TIMEOUT_MS",
        Some("1000"),
        "time a client has to close its connection after a response, in milliseconds",
    ),
    setting(
        "keep_alive_secs",
        "RECALL_KEEP_ALIVE_SECS",
        Some("30"),
        "idle keep-alive of a connection, in seconds (0 turns keep-alive off)",
    ),
    setting(
        "body_timeout_secs",
        "RECALL_BODY_TIMEOUT_SECS",
        Some("60"),
        "longest time a client may take to send a request body, in seconds",
    ),
    setting(
        "shutdown_timeout_secs",
        "RECALL_SHUTDOWN_TIMEOUT_SECS",
        Some("30"),
        "on SIGTERM/SIGINT, how long in-flight requests get to finish, in seconds",
    ),
    setting(
        "workers",
        "RECALL_WORKERS",
        Some("0"),
        "HTTP worker threads (0: one per CPU core)",
    ),
    setting(
        "greeting_budget_ms",
        "RECALL_GREETING_BUDGET_MS",
        Some("300"),
        "longest time client-data may wait for the store before greeting with defaults, in ms",
    ),
    setting(
        "search_k",
        "RECALL_SEARCH_K",
        Some("5"),
        "how many memories search-data returns when the tool does not say (1 to search_max_k)",
    ),
    setting(
        "search_max_k",
        "RECALL_SEARCH_MAX_K",
        Some("20"),
        "the most memories search-data ever returns (1 to 100)",
    ),
    setting(
        "greeting",
        "RECALL_GREETING",
        Some(recall_service::DEFAULT_GREETING),
        "first message for a known caller; {{user_name}}, {{last_call_title}}, {{last_call_summary}}, {{user_profile_summary}} are filled in; `none` sends no first-message override",
    ),
    setting(
        "greeting_without_last_call",
        "RECALL_GREETING_WITHOUT_LAST_CALL",
        Some(recall_service::DEFAULT_GREETING_WITHOUT_LAST_CALL),
        "used instead when the greeting mentions the last call but there is none",
    ),
    setting(
        "greeting_templates",
        "RECALL_GREETING_TEMPLATES",
        Some("{}"),
        "greetings per agent: a TOML table, or a JSON object in the environment, agent id -> template",
    ),
    setting(
        "dynamic_variables",
        "RECALL_DYNAMIC_VARIABLES",
        Some("{}"),
        "extra dynamic variables sent with every greeting: a TOML table, or a JSON object in the environment",
    ),
    setting(
        "name_fields",
        "RECALL_NAME_FIELDS",
        None,
        "comma-separated data-collection field ids that hold the caller's name (default: first_name, name, caller_name, full_name, ...)",
    ),
    setting(
        "retry_initial_ms",
        "RECALL_RETRY_INITIAL_MS",
        Some("1000"),
        "first retry delay of a post-call event after a store failure, in ms (doubles each time)",
    ),
    setting(
        "retry_max_secs",
        "RECALL_RETRY_MAX_SECS",
        Some("300"),
        "longest retry delay of a post-call event, in seconds",
    ),
    setting(
        "signature_tolerance_secs",
        "RECALL_SIGNATURE_TOLERANCE_SECS",
        Some("1800"),
        "oldest signature timestamp accepted, in seconds (ElevenLabs' SDK: 30 minutes)",
    ),
    setting(
        "signature_future_secs",
        "RECALL_SIGNATURE_FUTURE_SECS",
        Some("300"),
        "furthest a signature timestamp may be ahead of the clock, in seconds",
    ),
    setting(
        "ip_allowlist",
        "RECALL_IP_ALLOWLIST",
        Some(""),
        "comma-separated client IPs or CIDR ranges allowed to call the webhooks (empty: any)",
    ),
    setting(
        "trusted_proxies",
        "RECALL_TRUSTED_PROXIES",
        Some(""),
        "comma-separated proxy IPs or CIDR ranges whose X-Forwarded-For is believed",
    ),
];

/// Looks a setting up by key.
fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The setting behind an environment variable name, if any.
fn key_for_env(name: &str) -> Option<&'static str> {
    SETTINGS.iter().find(|s| s.env == name).map(|s| s.key)
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

    fn invalid(key: &str, value: &str, allowed: &str) -> Self {
        let setting = find(key);
        let env = setting.map_or("", |s| s.env);
        let shown = if setting.is_some_and(|s| s.secret) {
            "[redacted]".to_owned()
        } else {
            format!("{value:?}")
        };
        Self::new(format!(
            "invalid setting `{key}` ({env}): got {shown}; allowed: {allowed}"
        ))
    }
}

/// Where the environment comes from: the process (production) or a given
/// list (tests, which run in parallel and must not share the process
/// environment).
#[derive(Debug, Clone, Default)]
pub struct EnvVars(Vec<(String, String)>);

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

    /// The `RECALL_*` variables that name no setting (other than
    /// `RECALL_CONFIG`), sorted.
    pub fn unknown_recall_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("RECALL_") && *k != CONFIG_ENV && key_for_env(k).is_none())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The value of one variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (name, value) in &self.0 {
            if let Some(key) = key_for_env(name) {
                dict.insert(key.to_owned(), Value::from(value.clone()));
            }
        }
        Ok(Profile::Default.collect(dict))
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
        f.write_str("[redacted]")
    }
}

/// How logs are written.
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
        let file: Option<PathBuf> = match file {
            Some(path) => Some(path.to_owned()),
            None => match env.get(CONFIG_ENV).filter(|v| !v.is_empty()) {
                Some(path) => Some(PathBuf::from(path)),
                None => {
                    let default = PathBuf::from("recall.toml");
                    default.is_file().then_some(default)
                }
            },
        };
        let mut figment = Figment::new();
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError::new(format!(
                    "configuration file {} (--config or {CONFIG_ENV}) does not exist or is not a file",
                    path.display()
                )));
            }
            check_toml_syntax(path)?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env.clone());
        let values: BTreeMap<String, Value> = figment.extract().map_err(|e| {
            ConfigError::new(format!(
                "cannot read the configuration{}: {e}",
                file.as_ref()
                    .map(|p| format!(" file {}", p.display()))
                    .unwrap_or_default()
            ))
        })?;
        let mut raw = BTreeMap::new();
        for (key, value) in values {
            if find(&key).is_none() {
                return Err(ConfigError::new(format!(
                    "unknown setting `{key}` in {}; known settings: {}",
                    file.as_ref()
                        .map_or_else(|| "the configuration".into(), |p| p.display().to_string()),
                    SETTINGS
                        .iter()
                        .map(|s| s.key)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            raw.insert(key.clone(), scalar_text(&key, &value)?);
        }
        let mut config = Self::from_raw(&raw)?;
        config.config_file = file;
        config.ignored_env = env.unknown_recall_names();
        Ok(config)
    }

    fn from_raw(raw: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        for setting in SETTINGS.iter().filter(|s| s.secret) {
            if let Some(value) = raw.get(setting.key) {
                no_surrounding_whitespace(setting.key, value)?;
            }
        }
        long_enough_admin_tokens(raw.get("admin_token"))?;
        let get = |key: &str| -> String {
            raw.get(key)
                .cloned()
                .or_else(|| find(key).and_then(|s| s.default).map(str::to_owned))
                .unwrap_or_default()
        };
        let opt = |key: &str| -> Option<String> {
            raw.get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let num = |key: &str, min: u64, max: u64| number(key, &get(key), min, max);

        let bind_text = get("bind");
        let bind: SocketAddr = bind_text.trim().parse().map_err(|_| {
            ConfigError::invalid(
                "bind",
                &bind_text,
                "an IP address and port such as 127.0.0.1:8080 or [::1]:8080",
            )
        })?;

        let data_dir = PathBuf::from(get("data_dir").trim());
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "", "a directory path"));
        }
        let payload_dir = opt("payload_dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("payloads"));
        let embedding_model = opt("embedding_model").map(PathBuf::from);

        let store_text = get("store");
        let store = match store_text.trim() {
            "embedded" => StoreConfig::Embedded {
                path: opt("embedded_db_path")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("recall.db")),
            },
            "openmemory" => StoreConfig::OpenMemory {
                url: openmemory_url(&get("openmemory_url"))?,
                key: not_placeholder("openmemory_key", opt("openmemory_key"))?,
                timeout: Duration::from_millis(num("openmemory_timeout_ms", 1, 600_000)?),
            },
            "memory" => StoreConfig::Memory,
            other => {
                return Err(ConfigError::invalid(
                    "store",
                    other,
                    "embedded, openmemory or memory",
                ));
            }
        };

        let format_text = get("log_format");
        let log_format = match format_text.trim() {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    "log_format",
                    other,
                    "auto, pretty or json",
                ));
            }
        };
        let log_filter = get("log_filter");
        if tracing_subscriber::EnvFilter::try_new(&log_filter).is_err() {
            return Err(ConfigError::invalid(
                "log_filter",
                &log_filter,
                "tracing directives such as info or info,recall_server=debug",
            ));
        }

        let secrets = WebhookSecrets {
            post_call: webhook_key("post_call_key", raw.get("post_call_key"))?,
            client_data: webhook_key("client_data_key", raw.get("client_data_key"))?,
            search_data: webhook_key("search_data_key", raw.get("search_data_key"))?,
        };

        const GIB: u64 = 1 << 30;
        let limits = Limits {
            post_call_max_bytes: num("post_call_max_bytes", 1024, 4 * GIB)?,
            post_call_max_uploads: usize::try_from(num("post_call_max_uploads", 1, 4096)?)
                .unwrap_or(4096),
            quarantine_max_files: num("quarantine_max_files", 1, 1_000_000)?,
            quarantine_max_bytes: num("quarantine_max_bytes", 0, 1 << 40)?,
            webhook_max_bytes: usize::try_from(num("webhook_max_bytes", 256, 16 << 20)?)
                .unwrap_or(usize::MAX),
        };
        let timeouts = Timeouts {
            client_request: Duration::from_millis(num("request_timeout_ms", 1, 600_000)?),
            client_disconnect: Duration::from_millis(num("disconnect_timeout_ms", 1, 600_000)?),
            keep_alive: Duration::from_secs(num("keep_alive_secs", 0, 3600)?),
            body: Duration::from_secs(num("body_timeout_secs", 1, 3600)?),
            shutdown: Duration::from_secs(num("shutdown_timeout_secs", 0, 3600)?),
        };
        let workers = usize::try_from(num("workers", 0, 1024)?).unwrap_or(1);
        let service = service_config(&get, &opt)?;
        let signature_tolerance_secs = num("signature_tolerance_secs", 1, 7 * 24 * 3600)?;
        let signature_future_secs = num("signature_future_secs", 0, 24 * 3600)?;
        let network = NetworkPolicy {
            allowlist: nets("ip_allowlist", &get("ip_allowlist"))?,
            trusted_proxies: nets("trusted_proxies", &get("trusted_proxies"))?,
        };

        Ok(Self {
            bind,
            data_dir,
            payload_dir,
            embedding_model,
            store,
            log_format,
            log_filter,
            secrets,
            elevenlabs_api_key: not_placeholder("elevenlabs_api_key", opt("elevenlabs_api_key"))?,
            limits,
            timeouts,
            workers,
            service,
            signature_tolerance_secs,
            signature_future_secs,
            network,
            admin_tokens: webhook_key("admin_token", raw.get("admin_token"))?.secrets,
            config_file: None,
            ignored_env: Vec::new(),
        })
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
        let missing: Vec<&'static str> = self
            .secrets
            .each()
            .into_iter()
            .filter(|(_, k)| k.source == SecretSource::Missing)
            .map(|(name, _)| name)
            .collect();
        if missing.is_empty() {
            return Ok(false);
        }
        if !self.bind.ip().is_loopback() {
            let names: Vec<String> = missing
                .iter()
                .map(|k| find(k).map_or((*k).to_owned(), |s| s.env.to_owned()))
                .collect();
            return Err(ConfigError::new(format!(
                "refusing to listen on {} (not a loopback address) without configured webhook secrets: set {}",
                self.bind,
                names.join(", ")
            )));
        }
        let path = self.generated_secrets_path();
        let mut saved = crate::secrets_file::read(&path).map_err(|e| {
            ConfigError::new(format!(
                "cannot read generated secrets {}: {e}",
                path.display()
            ))
        })?;
        let mut generated = false;
        for (name, key) in self.secrets.each_mut() {
            if key.source != SecretSource::Missing {
                continue;
            }
            let value = match saved.get(name) {
                Some(value) => value.clone(),
                None => {
                    generated = true;
                    let fresh = Secret::generate().map_err(|e| {
                        ConfigError::new(format!("cannot generate a secret for `{name}`: {e}"))
                    })?;
                    let value = fresh.expose().to_owned();
                    saved.insert(name.to_owned(), value.clone());
                    value
                }
            };
            let secret = Secret::new(value).map_err(|e| {
                ConfigError::new(format!(
                    "the generated secret `{name}` in {} is unusable: {e}",
                    path.display()
                ))
            })?;
            *key = WebhookKey {
                secrets: Secrets::single(secret),
                source: SecretSource::Generated,
            };
        }
        if generated {
            crate::secrets_file::write(&path, &saved).map_err(|e| {
                ConfigError::new(format!(
                    "cannot save generated secrets to {}: {e}",
                    path.display()
                ))
            })?;
        }
        Ok(generated)
    }

    /// Fills the webhook secrets that are not configured from the data
    /// directory's generated-secrets file, without generating anything
    /// (for `check-config` and `sign`).
    ///
    /// # Errors
    /// When the file exists but cannot be read or holds an unusable secret.
    pub fn load_generated_secrets(&mut self) -> Result<(), ConfigError> {
        let path = self.generated_secrets_path();
        let saved = crate::secrets_file::read(&path).map_err(|e| {
            ConfigError::new(format!(
                "cannot read generated secrets {}: {e}",
                path.display()
            ))
        })?;
        for (name, key) in self.secrets.each_mut() {
            if key.source != SecretSource::Missing {
                continue;
            }
            if let Some(value) = saved.get(name) {
                let secret = Secret::new(value.as_str()).map_err(|e| {
                    ConfigError::new(format!(
                        "the generated secret `{name}` in {} is unusable: {e}",
                        path.display()
                    ))
                })?;
                *key = WebhookKey {
                    secrets: Secrets::single(secret),
                    source: SecretSource::Generated,
                };
            }
        }
        Ok(())
    }

    /// The effective configuration as `recall.toml` (valid TOML), secrets
    /// redacted, each line's comment naming its environment variable.
    pub fn describe(&self) -> String {
        let mut d = Describer::default();
        let quoted = |s: &str| toml_string(s);
        let table = |map: &BTreeMap<String, String>| {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_string(k), toml_string(v)))
                .collect();
            if items.is_empty() {
                "{}".to_owned()
            } else {
                format!("{{ {} }}", items.join(", "))
            }
        };
        let generated_path = self.generated_secrets_path().display().to_string();
        d.line("bind", quoted(&self.bind.to_string()));
        d.line("store", quoted(self.store.name()));
        d.line("data_dir", quoted(&self.data_dir.display().to_string()));
        if let StoreConfig::Embedded { path } = &self.store {
            d.line("embedded_db_path", quoted(&path.display().to_string()));
        }
        d.line(
            "payload_dir",
            quoted(&self.payload_dir.display().to_string()),
        );
        if let Some(model) = &self.embedding_model {
            d.line("embedding_model", quoted(&model.display().to_string()));
        }
        if let StoreConfig::OpenMemory { url, key, timeout } = &self.store {
            d.line("openmemory_url", quoted(url));
            d.line(
                "openmemory_key",
                quoted(if key.is_some() { "[redacted]" } else { "" }),
            );
            d.line("openmemory_timeout_ms", timeout.as_millis().to_string());
        }
        for (name, key) in self.secrets.each() {
            let (value, note) = match key.source {
                SecretSource::Missing => (
                    quoted(""),
                    format!("not set: `recall serve` generates one into {generated_path}"),
                ),
                SecretSource::Generated => (
                    quoted("[redacted]"),
                    format!("generated, kept in {generated_path}"),
                ),
                SecretSource::Configured => (
                    quoted("[redacted]"),
                    format!("{} secret(s) configured", key.secrets.len()),
                ),
            };
            d.note(name, value, &note);
        }
        if self.admin_tokens.is_empty() {
            d.note(
                "admin_token",
                quoted(""),
                "not set: /api and /dashboard are off",
            );
        } else {
            d.note(
                "admin_token",
                quoted("[redacted]"),
                &format!("{} token(s) configured", self.admin_tokens.len()),
            );
        }
        d.line(
            "elevenlabs_api_key",
            quoted(if self.elevenlabs_api_key.is_some() {
                "[redacted]"
            } else {
                ""
            }),
        );
        d.line(
            "log_format",
            quoted(match self.log_format {
                LogFormat::Auto => "auto",
                LogFormat::Pretty => "pretty",
                LogFormat::Json => "json",
            }),
        );
        d.line("log_filter", quoted(&self.log_filter));
        d.line(
            "post_call_max_bytes",
            self.limits.post_call_max_bytes.to_string(),
        );
        d.line(
            "post_call_max_uploads",
            self.limits.post_call_max_uploads.to_string(),
        );
        d.line(
            "quarantine_max_files",
            self.limits.quarantine_max_files.to_string(),
        );
        d.line(
            "quarantine_max_bytes",
            self.limits.quarantine_max_bytes.to_string(),
        );
        d.line(
            "webhook_max_bytes",
            self.limits.webhook_max_bytes.to_string(),
        );
        d.line(
            "request_timeout_ms",
            self.timeouts.client_request.as_millis().to_string(),
        );
        d.line(
            "disconnect_timeout_ms",
            self.timeouts.client_disconnect.as_millis().to_string(),
        );
        d.line(
            "keep_alive_secs",
            self.timeouts.keep_alive.as_secs().to_string(),
        );
        d.line(
            "body_timeout_secs",
            self.timeouts.body.as_secs().to_string(),
        );
        d.line(
            "shutdown_timeout_secs",
            self.timeouts.shutdown.as_secs().to_string(),
        );
        d.line("workers", self.workers.to_string());
        let svc = &self.service;
        d.line(
            "greeting_budget_ms",
            svc.greet_budget.as_millis().to_string(),
        );
        d.line("search_k", svc.search_default_k.to_string());
        d.line("search_max_k", svc.search_max_k.to_string());
        d.line(
            "greeting",
            quoted(svc.default_greeting.as_deref().unwrap_or("none")),
        );
        d.line(
            "greeting_without_last_call",
            quoted(&svc.greeting_without_last_call),
        );
        d.line("greeting_templates", table(&svc.greeting_templates));
        d.line("dynamic_variables", table(&svc.extra_dynamic_variables));
        d.line("name_fields", quoted(&svc.name_field_ids.join(",")));
        d.line(
            "retry_initial_ms",
            svc.retry_initial.as_millis().to_string(),
        );
        d.line("retry_max_secs", svc.retry_max.as_secs().to_string());
        d.line(
            "signature_tolerance_secs",
            self.signature_tolerance_secs.to_string(),
        );
        d.line(
            "signature_future_secs",
            self.signature_future_secs.to_string(),
        );
        let join = |nets: &[IpNet]| {
            quoted(
                &nets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
        };
        d.line("ip_allowlist", join(&self.network.allowlist));
        d.line("trusted_proxies", join(&self.network.trusted_proxies));
        d.out
    }
}

/// Writes `recall.toml` lines with their environment variable.
#[derive(Default)]
struct Describer {
    out: String,
}

impl Describer {
    fn line(&mut self, key: &str, value: String) {
        self.note(key, value, "");
    }

    #[allow(clippy::needless_pass_by_value)] // callers build the value for this call
    fn note(&mut self, key: &str, value: String, note: &str) {
        let env = find(key).map_or("", |s| s.env);
        let note = if note.is_empty() {
            String::new()
        } else {
            format!("; {note}")
        };
        let _ = writeln!(self.out, "{key} = {value}    # {env}{note}");
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Refuses a configuration file that is not TOML with an error that gives
/// the line, column and problem but not the text there, which may be a
/// secret (the TOML parser's own message quotes the offending line).
fn check_toml_syntax(path: &Path) -> Result<(), ConfigError> {
    let cannot = |what: String| {
        ConfigError::new(format!(
            "cannot read the configuration file {}: {what}",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(path).map_err(|e| cannot(e.to_string()))?;
    match Toml::from_str::<Dict>(&text) {
        Ok(_) => Ok(()),
        Err(e) => Err(cannot(format!(
            "TOML syntax error at {}",
            toml_error(&text, &e)
        ))),
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

/// The name of the generated-secrets file inside the data directory.
pub const GENERATED_SECRETS_FILE: &str = "webhook-secrets.toml";

fn scalar_text(key: &str, value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(_, s) => Ok(s.clone()),
        Value::Char(_, c) => Ok(c.to_string()),
        Value::Bool(_, b) => Ok(b.to_string()),
        Value::Num(_, n) => match (n.to_u128(), n.to_i128(), n.to_f64()) {
            (Some(u), _, _) => Ok(u.to_string()),
            (None, Some(i), _) => Ok(i.to_string()),
            (None, None, Some(f)) => Ok(f.to_string()),
            _ => Err(ConfigError::invalid(key, "?", "a number")),
        },
        Value::Array(_, items) => items
            .iter()
            .map(|item| {
                let text = scalar_text(key, item)?;
                // A list's items are joined with commas, where white space
                // would read as a separator: check each secret first.
                if find(key).is_some_and(|s| s.secret) {
                    no_surrounding_whitespace(key, &text)?;
                }
                Ok(text)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        Value::Empty(..) => Ok(String::new()),
        Value::Dict(_, dict) if TABLE_KEYS.contains(&key) => {
            let mut out = BTreeMap::new();
            for (name, item) in dict {
                out.insert(name.clone(), scalar_text(key, item)?);
            }
            Ok(serde_json::to_string(&out).unwrap_or_default())
        }
        Value::Dict(..) => Err(ConfigError::invalid(
            key,
            "a table",
            "a string, a number or a list",
        )),
    }
}

/// The settings whose value is a table (a JSON object in the environment).
const TABLE_KEYS: &[&str] = &["greeting_templates", "dynamic_variables"];

fn table(key: &str, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_str(text).map_err(|_| {
        ConfigError::invalid(
            key,
            text,
            "a TOML table, or in the environment a JSON object, of names to text, e.g. {\"agent_1\": \"Hello {{user_name}}!\"}",
        )
    })
}

fn service_config(
    get: &dyn Fn(&str) -> String,
    opt: &dyn Fn(&str) -> Option<String>,
) -> Result<ServiceConfig, ConfigError> {
    let num = |key: &str, min: u64, max: u64| number(key, &get(key), min, max);
    let defaults = ServiceConfig::default();
    let greeting = get("greeting");
    let config = ServiceConfig {
        greeting_templates: table("greeting_templates", &get("greeting_templates"))?,
        default_greeting: if greeting.trim().eq_ignore_ascii_case("none") {
            None
        } else {
            Some(greeting)
        },
        greeting_without_last_call: get("greeting_without_last_call"),
        greet_budget: Duration::from_millis(num("greeting_budget_ms", 1, 60_000)?),
        extra_dynamic_variables: table("dynamic_variables", &get("dynamic_variables"))?,
        name_field_ids: match opt("name_fields") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => defaults.name_field_ids.clone(),
        },
        search_default_k: usize::try_from(num("search_k", 1, 100)?).unwrap_or(5),
        search_max_k: usize::try_from(num("search_max_k", 1, 100)?).unwrap_or(20),
        retry_initial: Duration::from_millis(num("retry_initial_ms", 1, 3_600_000)?),
        retry_max: Duration::from_secs(num("retry_max_secs", 1, 86_400)?),
        ..defaults
    };
    config.validate().map_err(|e| {
        let key = match e.setting.split('.').next().unwrap_or_default() {
            "greeting_templates" => "greeting_templates",
            "default_greeting" => "greeting",
            "greeting_without_last_call" => "greeting_without_last_call",
            "greet_budget" => "greeting_budget_ms",
            "extra_dynamic_variables" => "dynamic_variables",
            "name_field_ids" => "name_fields",
            "search_max_k" => "search_max_k",
            "search_default_k" => "search_k",
            "retry_initial" => "retry_initial_ms",
            "retry_max" => "retry_max_secs",
            _ => "",
        };
        let env = find(key).map_or("", |s| s.env);
        ConfigError::new(format!(
            "invalid setting `{key}` ({env}): {} {}",
            e.setting, e.reason
        ))
    })?;
    Ok(config)
}

fn number(key: &str, text: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let allowed = format!("a whole number from {min} to {max}");
    let value: u64 = text
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(key, text, &allowed))?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::invalid(key, text, &allowed))
    }
}

fn nets(key: &str, text: &str) -> Result<Vec<IpNet>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>().map_err(|_| {
                ConfigError::invalid(
                    key,
                    item,
                    "comma-separated IP addresses or CIDR ranges such as 34.67.146.145 or 10.0.0.0/8",
                )
            })
        })
        .collect()
}

/// What `check-config` prints instead of a secret.
const REDACTED: &str = "[redacted]";

fn redacted_placeholder(key: &str) -> ConfigError {
    ConfigError::invalid(
        key,
        REDACTED,
        "the real secret; \"[redacted]\" is what `recall check-config` prints in its place",
    )
}

fn not_placeholder(key: &str, value: Option<String>) -> Result<Option<RedactedText>, ConfigError> {
    match value {
        Some(v) if v == REDACTED => Err(redacted_placeholder(key)),
        other => Ok(other.map(RedactedText)),
    }
}

/// The shortest admin token accepted: a bearer token guards every caller's
/// data, so it must not be guessable (`openssl rand -hex 24` makes 48).
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Refuses a secret setting whose value starts or ends with white space:
/// secrets are used byte for byte, so a stray newline from a file or a
/// space from a shell would make a secret that never matches. It is not
/// trimmed, because guessing what was meant would hide the mistake.
fn no_surrounding_whitespace(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim() == value {
        return Ok(());
    }
    let env = find(key).map_or("", |s| s.env);
    Err(ConfigError::new(format!(
        "invalid setting `{key}` ({env}): the value starts or ends with white space \
         (a stray newline or space?); secrets are used exactly as given, never trimmed: remove it"
    )))
}

/// Refuses admin tokens shorter than [`MIN_ADMIN_TOKEN_LEN`] characters.
fn long_enough_admin_tokens(raw: Option<&String>) -> Result<(), ConfigError> {
    let items = raw.into_iter().flat_map(|v| v.split(',')).map(str::trim);
    for (i, token) in items.filter(|t| !t.is_empty()).enumerate() {
        let len = token.chars().count();
        if len < MIN_ADMIN_TOKEN_LEN {
            return Err(ConfigError::new(format!(
                "invalid setting `admin_token` (RECALL_ADMIN_TOKEN): token #{} is {len} characters long; \
                 at least {MIN_ADMIN_TOKEN_LEN} are required (e.g. `openssl rand -hex 24`)",
                i + 1
            )));
        }
    }
    Ok(())
}

/// Several secrets separated by commas; white space next to a comma is
/// part of the separator (`"wsec_new, wsec_old"`), while white space
/// around the whole value is refused by [`no_surrounding_whitespace`].
fn webhook_key(key: &str, raw: Option<&String>) -> Result<WebhookKey, ConfigError> {
    let items: Vec<&str> = raw
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if items.is_empty() {
        return Ok(WebhookKey {
            secrets: Secrets::default(),
            source: SecretSource::Missing,
        });
    }
    if items.contains(&REDACTED) {
        return Err(redacted_placeholder(key));
    }
    let secrets = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            Secret::new(item).map_err(|e| {
                ConfigError::invalid(
                    key,
                    "",
                    &format!(
                        "one or more comma-separated secrets without control characters (secret #{}: {e})",
                        i + 1
                    ),
                )
            })
        })
        .collect::<Result<Secrets, _>>()?;
    Ok(WebhookKey {
        secrets,
        source: SecretSource::Configured,
    })
}

fn openmemory_url(text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    let allowed = "a port number (1-65535) on localhost, or a URL such as http://openmemory:8080";
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u16>() {
            Ok(port) if port > 0 => Ok(format!("http://127.0.0.1:{port}")),
            _ => Err(ConfigError::invalid("openmemory_url", text, allowed)),
        };
    }
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError::invalid("openmemory_url", text, allowed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(None, &EnvVars::from_pairs(vars.iter().copied()))
    }

    #[test]
    fn defaults_serve_loopback_on_the_embedded_store_under_data() {
        let c = load(&[]).unwrap();
        assert_eq!(c.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            c.store,
            StoreConfig::Embedded {
                path: PathBuf::from("./data/recall.db")
            }
        );
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
        let e = load(&[("RECALL_STORE", "postgres")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RECALL_STORE") && e.contains("embedded, openmemory or memory"),
            "{e}"
        );
        let e = load(&[("RECALL_BIND", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RECALL_BIND"), "{e}");
        let e = load(&[("RECALL_SEARCH_K", "0")]).unwrap_err().to_string();
        assert!(
            e.contains("RECALL_SEARCH_K") && e.contains("1 to 100"),
            "{e}"
        );
        let e = load(&[("RECALL_IP_ALLOWLIST", "1.2.3.4,nope")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RECALL_IP_ALLOWLIST") && e.contains("nope"),
            "{e}"
        );
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
        assert_eq!(
            c.service.greeting_templates["agent_1"],
            "Welcome back, {{user_name}}!"
        );
        assert_eq!(c.service.default_greeting, None);
        assert_eq!(c.service.name_field_ids, ["given_name", "nickname"]);
        assert_eq!(c.service.search_default_k, 8);

        let e = load(&[("RECALL_GREETING_TEMPLATES", "agent_1=hi")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RECALL_GREETING_TEMPLATES"), "{e}");
        let e = load(&[("RECALL_SEARCH_K", "30")]).unwrap_err().to_string();
        assert!(
            e.contains("RECALL_SEARCH_K") && e.contains("search_max_k"),
            "{e}"
        );
        let e = load(&[("RECALL_DYNAMIC_VARIABLES", r#"{"user_name": "x"}"#)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RECALL_DYNAMIC_VARIABLES"), "{e}");
    }

    #[test]
    fn tables_in_the_toml_file_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recall.toml");
        std::fs::write(
            &path,
            "[greeting_templates]\nagent_7 = \"Hello again {{user_name}}\"\n[dynamic_variables]\ncompany = \"Acme\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), &EnvVars::default()).unwrap();
        assert_eq!(
            c.service.greeting_templates["agent_7"],
            "Hello again {{user_name}}"
        );
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
        let text = c.describe();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recall.toml");
        // Secrets are redacted, so leave them out of the round trip.
        let without_secrets: String = text
            .lines()
            .filter(|l| !l.contains("[redacted]") && !l.starts_with("post_call_key"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, &without_secrets).unwrap();
        let again = Config::load(Some(&path), &EnvVars::default()).unwrap();
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
            let e = load(&[("RECALL_STORE", "openmemory"), (name, "[redacted]")])
                .unwrap_err()
                .to_string();
            assert!(e.contains(name) && e.contains("check-config"), "{e}");
        }
    }

    #[test]
    fn secrets_never_appear_in_errors_or_descriptions() {
        let e = load(&[("ELEVENLABS_POST_CALL_KEY", "ok,bad\u{7}secret")])
            .unwrap_err()
            .to_string();
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
        let c = Config::load(
            Some(&path),
            &EnvVars::from_pairs([("RECALL_SEARCH_K", "3")]),
        )
        .unwrap();
        assert_eq!(c.bind.port(), 9999);
        assert_eq!(c.service.search_default_k, 3);
        std::fs::write(&path, "bnd = \"x\"\n").unwrap();
        let e = Config::load(Some(&path), &EnvVars::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown setting `bnd`"), "{e}");
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
                let e = load(&[(env, value)]).unwrap_err().to_string();
                assert!(
                    e.contains(&format!("`{key}` ({env})")) && e.contains("white space"),
                    "{env}={value:?}: {e}"
                );
                assert!(!e.contains("0123456789abcdef"), "{e}");
            }
        }
        // Spaces next to a comma only separate the secrets of a rotation.
        let c = load(&[("ELEVENLABS_POST_CALL_KEY", "wsec_new, wsec_old")]).unwrap();
        assert_eq!(c.secrets.post_call.secrets.len(), 2);
    }

    #[test]
    fn a_toml_list_of_secrets_is_checked_item_by_item() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recall.toml");
        std::fs::write(&path, "post_call_key = [\"wsec_new\", \" wsec_old\"]\n").unwrap();
        let e = Config::load(Some(&path), &EnvVars::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`post_call_key`") && e.contains("white space"),
            "{e}"
        );
        std::fs::write(&path, "post_call_key = [\"wsec_new\", \"wsec_old\"]\n").unwrap();
        let c = Config::load(Some(&path), &EnvVars::default()).unwrap();
        assert_eq!(c.secrets.post_call.secrets.len(), 2);
    }

    #[test]
    fn admin_tokens_shorter_than_16_characters_are_refused() {
        let e = load(&[("RECALL_ADMIN_TOKEN", "0123456789abcdef, short")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`admin_token` (RECALL_ADMIN_TOKEN)")
                && e.contains("token #2 is 5 characters"),
            "{e}"
        );
        assert!(!e.contains("short"), "the token itself is not shown: {e}");
        let c = load(&[("RECALL_ADMIN_TOKEN", "0123456789abcdef")]).unwrap();
        assert_eq!(c.admin_tokens.len(), 1);
    }

    #[test]
    fn a_saved_secret_with_surrounding_white_space_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap();
        std::fs::write(
            dir.path().join(GENERATED_SECRETS_FILE),
            "post_call_key = \"wsec_saved \"\n",
        )
        .unwrap();
        type Resolve = fn(&mut Config) -> Result<(), ConfigError>;
        let resolvers: [Resolve; 2] = [Config::load_generated_secrets, |c| {
            c.resolve_secrets().map(drop)
        }];
        for resolve in resolvers {
            let mut c = load(&[("RECALL_DATA_DIR", data_dir)]).unwrap();
            let e = resolve(&mut c).unwrap_err().to_string();
            assert!(
                e.contains("`post_call_key`")
                    && e.contains(GENERATED_SECRETS_FILE)
                    && e.contains("whitespace"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_toml_syntax_error_does_not_quote_the_line() {
        // Found by fuzzing: the TOML parser's message quotes the offending
        // line, which printed an unquoted secret at start-up.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recall.toml");
        std::fs::write(
            &path,
            "bind = \"127.0.0.1:9999\"\npost_call_key = wsec_hunter2_unquoted\n",
        )
        .unwrap();
        let e = Config::load(Some(&path), &EnvVars::default())
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(
            e.contains("cannot read the configuration file")
                && e.contains("TOML syntax error at line 2, column 17"),
            "{e}"
        );
    }
}
