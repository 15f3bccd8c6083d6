//! Reading the settings: defaults, `recall.toml`, the environment, and
//! what each bad value is told; `check-config`'s description loads back.

use std::path::PathBuf;

use recall_server::config::{
    Config, ConfigError, EnvVars, GENERATED_SECRETS_FILE, SecretSource, Store,
};

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
    assert_eq!((c.store, c.embedded_db_path()), (Store::Embedded, path));
    assert_eq!(c.payload_dir(), PathBuf::from("./data/payloads"));
    assert_eq!(c.post_call_max_bytes.get(), 64 << 20);
    assert_eq!(c.webhook_max_bytes.get(), 64 << 10);
    assert_eq!(c.post_call_key.source, SecretSource::Missing);
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
    assert_eq!(c.post_call_key.secrets.len(), 2);
    assert_eq!(c.client_data_key.source, SecretSource::Configured);
    assert_eq!(c.payload_dir(), PathBuf::from("/tmp/p"));
    assert_eq!(c.store, Store::OpenMemory);
    assert_eq!(c.openmemory_url, "http://127.0.0.1:9000");
}

#[test]
fn bad_values_name_the_setting_and_what_is_allowed() {
    let e = error(&[("RECALL_STORE", "mysql")]);
    says(
        &e,
        &["RECALL_STORE", "embedded, openmemory, memory or postgres"],
    );
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
        // Line breaks, tabs and DEL stay inside their line, escaped.
        (
            "RECALL_GREETING",
            "Hi {{user_name}}!\n\tWelcome\u{7f} back.",
        ),
    ])
    .unwrap();
    let description = c.describe();
    assert!(
        (description.lines()).all(|l| l.contains(" = ") && l.contains("    # ")),
        "{description}"
    );
    // Secrets are redacted, so leave them out of the round trip.
    let without_secrets: String = (description.lines())
        .filter(|l| !l.contains("[redacted]") && !l.starts_with("post_call_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    let again = load_file(&without_secrets).unwrap();
    assert_eq!(again.bind, c.bind);
    assert_eq!(again.service, c.service);
    assert_eq!(again.ip_allowlist.len(), 2, "{without_secrets}");
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
    assert_eq!(c.post_call_key.secrets.len(), 2);
}

#[test]
fn a_toml_list_of_secrets_is_checked_item_by_item() {
    let e = load_file("post_call_key = [\"wsec_new\", \" wsec_old\"]\n");
    says(
        &e.unwrap_err().to_string(),
        &["`post_call_key`", "white space"],
    );
    let c = load_file("post_call_key = [\"wsec_new\", \"wsec_old\"]\n").unwrap();
    assert_eq!(c.post_call_key.secrets.len(), 2);
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
    assert_eq!(c.admin_token.len(), 1);
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

#[test]
fn the_database_url_is_shown_without_its_password_and_checked() {
    let url = "postgres://recall:hunter2-db-password@db.example.com:5432/recall?sslmode=require";
    let c = load(&[("RECALL_STORE", "postgres"), ("DATABASE_URL", url)]).unwrap();
    let described = c.describe();
    says(
        &described,
        &["database_url = \"postgres://recall:", "db.example.com"],
    );
    assert!(!described.contains("hunter2"), "{described}");
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(c.database_url.as_ref().map(|u| u.expose()), Some(url));

    // What check-config printed is refused as a password.
    let shown = described
        .lines()
        .find_map(|l| l.strip_prefix("database_url = \""))
        .and_then(|l| l.split('"').next())
        .unwrap();
    let e = error(&[("RECALL_STORE", "postgres"), ("DATABASE_URL", shown)]);
    says(&e, &["DATABASE_URL", "check-config"]);

    let e = error(&[("RECALL_STORE", "postgres")]);
    says(&e, &["`database_url` (DATABASE_URL)", "required"]);
    let e = error(&[("DATABASE_URL", "mysql://root:hunter2@db/recall")]);
    says(&e, &["DATABASE_URL", "postgres://"]);
    assert!(!e.contains("hunter2"), "{e}");
    let e = error(&[("RECALL_DATABASE_SCHEMA", "recall; drop")]);
    says(&e, &["RECALL_DATABASE_SCHEMA", "plain identifier"]);
    // The database settings are shown only for the postgres store.
    assert!(!load(&[]).unwrap().describe().contains("database_"));
}
