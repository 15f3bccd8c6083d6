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
        .env("RECALL_STORE", "postgres")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RECALL_STORE"), "{stderr}");
    assert!(
        stderr.contains("embedded, openmemory or memory"),
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
