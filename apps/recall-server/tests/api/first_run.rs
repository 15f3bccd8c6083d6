//! The zero-configuration first run: secrets generated once, kept with
//! mode 0600, reused on restart, and required by the webhooks.

use serde_json::json;

use crate::helpers::{CALLER, Options, spawn_with};

#[tokio::test]
async fn secrets_are_generated_once_kept_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        let mut o = Options::new(dir.path());
        o.with_keys = false;
        o
    };
    let first = spawn_with(options()).await;
    assert!(first.generated_secrets);
    let path = dir.path().join("webhook-secrets.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(first.post_call_key.starts_with("wsec_"));
    assert_ne!(first.client_data_key, first.search_data_key);

    // The generated key is required and works.
    let greet = |key: String, url: String| {
        reqwest::Client::new()
            .post(url)
            .header("X-Api-Key", key)
            .json(&json!({"caller_id": CALLER, "agent_id": "agent_1"}))
            .send()
    };
    let url = first.url("/webhook/client-data");
    assert_eq!(
        greet(first.client_data_key.clone(), url.clone())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(greet("guess".into(), url).await.unwrap().status(), 401);
    let keys = (
        first.post_call_key.clone(),
        first.client_data_key.clone(),
        first.search_data_key.clone(),
    );
    first.stop().await;
    drop(first);

    let second = spawn_with(options()).await;
    assert!(!second.generated_secrets);
    assert_eq!(
        (
            second.post_call_key.clone(),
            second.client_data_key.clone(),
            second.search_data_key.clone()
        ),
        keys
    );
    let url = second.url("/webhook/client-data");
    assert_eq!(greet(keys.1.clone(), url).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_first_run_opens_the_dashboard_with_a_generated_token() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        let mut o = Options::new(dir.path());
        o.with_keys = false;
        o
    };
    let first = spawn_with(options()).await;
    let saved =
        recall_server::secrets_file::read(&dir.path().join("webhook-secrets.toml")).unwrap();
    let token = saved["admin_token"].clone();
    assert!(
        token.starts_with("recall_admin_") && token.len() >= 32,
        "{token}"
    );
    let calls = |app: &crate::helpers::TestApp, token: &str| {
        app.client
            .get(app.url("/api/calls"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(calls(&first, &token).await.unwrap().status(), 200);
    assert_eq!(
        calls(&first, "not-the-token-at-all")
            .await
            .unwrap()
            .status(),
        401
    );
    first.stop().await;
    drop(first);

    // Kept and reused, never replaced.
    let second = spawn_with(options()).await;
    assert_eq!(calls(&second, &token).await.unwrap().status(), 200);
    second.stop().await;
    drop(second);

    // A configured token wins, and nothing is generated beside it.
    let own = "an-operator-chosen-token-0123";
    let third = spawn_with(options().var("RECALL_ADMIN_TOKEN", own)).await;
    assert_eq!(calls(&third, own).await.unwrap().status(), 200);
    assert_eq!(calls(&third, &token).await.unwrap().status(), 401);
}

#[test]
fn check_config_says_where_the_generated_token_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhook-secrets.toml");
    std::fs::write(
        &file,
        "admin_token = \"recall_admin_0123456789abcdef0123\"\n",
    )
    .unwrap();
    let mut config = recall_server::config::Config::load(
        None,
        &recall_server::config::EnvVars::from_pairs([(
            "RECALL_DATA_DIR",
            dir.path().to_str().unwrap(),
        )]),
    )
    .unwrap();
    config.load_generated_secrets().unwrap();
    assert!(config.admin_token_generated);
    let line = config
        .describe()
        .lines()
        .find(|l| l.starts_with("admin_token"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("[redacted]") && line.contains("generated, kept in"),
        "{line}"
    );
    assert!(!line.contains("0123456789abcdef"), "{line}");
}
