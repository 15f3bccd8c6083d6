//! The configuration loader (`apps/recall-server/src/config.rs`) through
//! its public API, `Config::load(file, env)`.
//!
//! Input: the text of `recall.toml`, then optionally a line `#--env--`
//! followed by `NAME=value` lines for the environment. Invariants checked,
//! beyond "never panics":
//! * an error names a setting (in backquotes) or the file it could not read;
//! * neither an error nor `describe()` ever shows a secret (any secret
//!   value starting `wsec_` that appears nowhere else in the input);
//! * `describe()` is valid TOML, and loading it back (secrets given again,
//!   since it redacts them) gives the same configuration.
#![no_main]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use recall_server::config::{Config, EnvVars, SETTINGS, Store};

const ENV_MARKER: &str = "#--env--";

fn file_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("recall-fuzz-config-{}.toml", std::process::id()))
    })
}

fn write_file(text: &str) {
    let mut f = std::fs::File::create(file_path()).expect("a temporary file");
    f.write_all(text.as_bytes()).expect("written");
}

fn is_secret_key(key: &str) -> bool {
    SETTINGS.iter().any(|s| s.secret && s.key == key)
}

fn is_secret_env(name: &str) -> bool {
    SETTINGS.iter().any(|s| s.secret && s.env == name)
}

/// Every string value under `key` in a TOML value (arrays flattened).
fn strings(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| strings(v, out)),
        other => out.push(other.to_string()),
    }
}

/// Secret values that appear nowhere else in the input: those must never
/// be shown.
fn private_secrets(toml_text: &str, env: &[(String, String)]) -> Vec<String> {
    let mut secret = Vec::new();
    let mut public = Vec::new();
    if let Ok(table) = toml_text.parse::<toml::Table>() {
        for (key, value) in &table {
            if is_secret_key(key) {
                strings(value, &mut secret);
            } else {
                public.push(key.clone());
                strings(value, &mut public);
            }
        }
    }
    for (name, value) in env {
        if is_secret_env(name) {
            secret.push(value.clone());
        } else {
            public.push(name.clone());
            public.push(value.clone());
        }
    }
    secret
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| item.starts_with("wsec_") && item.len() >= 8)
        .filter(|item| !public.iter().any(|p| p.contains(item)))
        .map(str::to_owned)
        .collect()
}

fn assert_hides(text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret was shown: {text}"
        );
    }
}

/// The secrets of a loaded configuration as environment variables, since
/// `describe()` redacts them.
fn secret_env(config: &Config) -> Vec<(String, String)> {
    let env = |key: &str| {
        SETTINGS
            .iter()
            .find(|s| s.key == key)
            .unwrap()
            .env
            .to_owned()
    };
    let mut out = Vec::new();
    for (key, webhook) in config.webhook_keys() {
        if !webhook.secrets.is_empty() {
            let joined: Vec<&str> = webhook.secrets.iter().map(|s| s.expose()).collect();
            out.push((env(key), joined.join(",")));
        }
    }
    if !config.admin_token.is_empty() {
        let joined: Vec<&str> = config.admin_token.iter().map(|s| s.expose()).collect();
        out.push((env("admin_token"), joined.join(",")));
    }
    if let Some(key) = &config.elevenlabs_api_key {
        out.push((env("elevenlabs_api_key"), key.expose().to_owned()));
    }
    if let (Store::OpenMemory, Some(key)) = (config.store, &config.openmemory_key) {
        out.push((env("openmemory_key"), key.expose().to_owned()));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml_text, env_text) = text.split_once(ENV_MARKER).unwrap_or((text, ""));
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let secrets = private_secrets(toml_text, &env);

    write_file(toml_text);
    let loaded = Config::load(Some(file_path()), &EnvVars::from_pairs(env.clone()));
    let config = match loaded {
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains('`') || message.contains("cannot read the configuration"),
                "an error that names no setting: {message}"
            );
            assert_hides(&message, &secrets);
            return;
        }
        Ok(config) => config,
    };

    let described = config.describe();
    assert_hides(&described, &secrets);
    if let Err(e) = described.parse::<toml::Table>() {
        panic!("describe() is not TOML ({e}):\n{described}");
    }

    // Load what describe() printed, secrets given again.
    let without_redacted: String = described
        .lines()
        .filter(|line| !line.contains("\"[redacted]\""))
        .map(|line| format!("{line}\n"))
        .collect();
    write_file(&without_redacted);
    let again = match Config::load(Some(file_path()), &EnvVars::from_pairs(secret_env(&config))) {
        Ok(again) => again,
        Err(e) => panic!("describe() does not load back: {e}\n{without_redacted}"),
    };
    assert_eq!(
        again.describe(),
        described,
        "describe() does not round-trip"
    );
    assert_eq!(
        secret_env(&again),
        secret_env(&config),
        "the secrets changed"
    );
});
