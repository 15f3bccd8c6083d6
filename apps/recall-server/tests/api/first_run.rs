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
