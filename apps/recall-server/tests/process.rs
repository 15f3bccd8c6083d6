//! The `recall` binary itself: zero configuration, then SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_binary_serves_with_zero_configuration_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_recall"))
        .current_dir(dir.path())
        .env_clear()
        // The only change from zero configuration: a free port.
        .env("RECALL_BIND", "127.0.0.1:0")
        .env("RECALL_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut port = None;
    let mut line = String::new();
    while port.is_none() && stderr.read_line(&mut line).unwrap() > 0 {
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["message"] == "recall is listening"
        {
            port = event["port"].as_u64();
        }
        seen.push_str(&line);
        line.clear();
    }
    let Some(port) = port else {
        let _ = child.kill();
        panic!("the server did not start:\n{seen}");
    };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let secrets = dir.path().join("data").join("webhook-secrets.toml");
    assert!(secrets.exists());
    assert!(dir.path().join("data").join("recall.db").exists());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    for line in stderr.lines() {
        rest.push_str(&line.unwrap());
        rest.push('\n');
    }
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{rest}");
    assert!(rest.contains("recall stopped"), "{rest}");
    // The first run says where the generated secrets are (printed directly,
    // so it may come before or after log lines, which a writer thread
    // writes).
    assert!(
        seen.contains("webhook-secrets.toml") || rest.contains("webhook-secrets.toml"),
        "{seen}{rest}"
    );
    assert!(seen.contains("\"address\":\"127.0.0.1:"), "{seen}");
    assert!(
        !seen.contains("127.0.0.1:0\""),
        "the bound port is logged: {seen}"
    );
}
