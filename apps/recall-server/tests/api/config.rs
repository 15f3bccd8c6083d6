//! Start-up validation: a bad configuration is refused with a message
//! naming the setting; the `recall` command exits non-zero.

use std::process::Command;

use crate::helpers::{Options, try_spawn};

fn recall() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recall"));
    command.env_clear();
    command
}

#[test]
fn the_command_refuses_a_bad_setting_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = recall()
        .current_dir(dir.path())
        .args(["check-config"])
        .env("RECALL_STORE", "mysql")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RECALL_STORE"), "{stderr}");
    assert!(
        stderr.contains("embedded, openmemory, memory or postgres"),
        "{stderr}"
    );

    let output = recall()
        .current_dir(dir.path())
        .args(["serve"])
        .env("RECALL_BIND", "127.0.0.1:99999")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("RECALL_BIND"));
}

#[test]
fn check_config_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let output = recall()
        .current_dir(dir.path())
        .args(["check-config"])
        .env("ELEVENLABS_POST_CALL_KEY", "wsec_super_private_value")
        .env("RECALL_BIND", "127.0.0.1:9123")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("bind = \"127.0.0.1:9123\""), "{stdout}");
    assert!(stdout.contains("ELEVENLABS_POST_CALL_KEY"), "{stdout}");
    assert!(!stdout.contains("super_private"), "{stdout}");
}

#[test]
fn sign_matches_the_official_sdk() {
    // A vector verified by ElevenLabs' Python SDK.
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("event.json");
    std::fs::write(
        &body,
        br#"{"type":"post_call_audio","event_timestamp":1739537319,"data":{"agent_id":"xyz","conversation_id":"abc","full_audio":"SUQz"}}"#,
    )
    .unwrap();
    let output = recall()
        .args([
            "sign",
            "--secret",
            "wsec_test_secret",
            "--timestamp",
            "1739537297",
        ])
        .arg(&body)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "t=1739537297,v0=e3ad8a1d3a2d47de6aec9b1a24ce3dc6a39c2512e25cde1dbbf4a5312ec7967b"
    );
}

#[tokio::test]
async fn a_public_address_without_secrets_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path()).var("RECALL_BIND", "0.0.0.0:0");
    options.with_keys = false;
    let error = try_spawn(options).await.err().expect("refused").to_string();
    assert!(error.contains("ELEVENLABS_POST_CALL_KEY"), "{error}");
    assert!(!dir.path().join("webhook-secrets.toml").exists());
}

#[tokio::test]
async fn a_bad_value_in_the_environment_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("RECALL_LOG_FORMAT", "xml"),
        ("RECALL_WEBHOOK_MAX_BYTES", "lots"),
        ("RECALL_TRUSTED_PROXIES", "10.0.0.0/99"),
        ("OPENMEMORY_PORT", "http//nope"),
    ] {
        let mut options = Options::new(dir.path()).var(name, value);
        if name == "OPENMEMORY_PORT" {
            options = options.var("RECALL_STORE", "openmemory");
        }
        let error = try_spawn(options).await.err().expect("refused").to_string();
        assert!(error.contains(name), "{name}: {error}");
    }
}

#[test]
fn every_setting_is_documented_with_its_environment_variable() {
    let doc = include_str!("../../../../docs/configuration.md");
    for setting in recall_server::config::SETTINGS {
        assert!(
            doc.contains(&format!("| `{}` | `{}` |", setting.key, setting.env)),
            "docs/configuration.md lacks a row for `{}` ({})",
            setting.key,
            setting.env
        );
    }
}

#[tokio::test]
async fn replay_and_forget_work_on_the_embedded_store_from_the_command_line() {
    use crate::helpers::{CALLER, CLIENT_DATA_KEY, POST_CALL_KEY, SEARCH_DATA_KEY};

    let dir = tempfile::tempdir().unwrap();
    let options = || Options::new(dir.path()).var("RECALL_STORE", "embedded");
    let app = crate::helpers::spawn_with(options()).await;
    let event = crate::helpers::transcription("conv_cli", CALLER, "Margaret");
    assert_eq!(app.post_call(&event).await.status(), 200);
    app.settle().await;
    app.stop().await;
    drop(app);

    let cli = |args: &[&str]| {
        recall()
            .current_dir(dir.path())
            .args(args)
            .env("RECALL_DATA_DIR", dir.path())
            .env("RECALL_STORE", "embedded")
            .env("ELEVENLABS_POST_CALL_KEY", POST_CALL_KEY)
            .env("ELEVENLABS_CLIENT_DATA_KEY", CLIENT_DATA_KEY)
            .env("ELEVENLABS_SEARCH_DATA_KEY", SEARCH_DATA_KEY)
            .output()
            .unwrap()
    };
    let replay = cli(&["replay", "--conversation", "conv_cli"]);
    assert!(replay.status.success(), "{replay:?}");
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(stdout.contains("1 processed"), "{stdout}");

    let forget = cli(&["forget", CALLER]);
    assert!(forget.status.success(), "{forget:?}");
    let stdout = String::from_utf8_lossy(&forget.stdout);
    assert!(stdout.contains("+1612***2029"), "{stdout}");
    assert!(!stdout.contains(CALLER), "the number is masked: {stdout}");

    let bad = cli(&["forget", "6129782029"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("phone_number"));

    let app = crate::helpers::spawn_with(options()).await;
    let greeting = app.greet(CALLER).await;
    assert_eq!(greeting["dynamic_variables"]["user_name"], "");
}

#[test]
fn a_missing_or_damaged_embedding_model_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let output = recall()
        .current_dir(dir.path())
        .args(["serve"])
        .env("RECALL_BIND", "127.0.0.1:0")
        .env("RECALL_EMBEDDING_MODEL", &missing)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RECALL_EMBEDDING_MODEL"), "{stderr}");
    assert!(stderr.contains(&*missing.to_string_lossy()), "{stderr}");

    // A static table that was cut short.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::write(damaged.join("static-table.bin"), b"RCLSTAT\x01 cut short").unwrap();
    std::fs::write(damaged.join("tokenizer.json"), b"{}").unwrap();
    let output = recall()
        .current_dir(dir.path())
        .args(["serve"])
        .env("RECALL_BIND", "127.0.0.1:0")
        .env("RECALL_EMBEDDING_MODEL", &damaged)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("static-table.bin"), "{stderr}");
    assert!(stderr.contains("damaged or truncated"), "{stderr}");
}
