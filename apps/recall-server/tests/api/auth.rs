//! Every way authentication can fail: 401 as JSON, and nothing stored.

use recall_signature::{Secret, sign};
use serde_json::json;

use crate::helpers::{CALLER, error_code, now, spawn_app, transcription};

#[tokio::test]
async fn post_call_refuses_missing_wrong_expired_future_and_tampered_signatures() {
    let app = spawn_app().await;
    let body = transcription("conv_auth", CALLER, "Margaret");
    let key = Secret::new(app.post_call_key.as_str()).unwrap();
    let wrong = Secret::new("wsec_not_the_key").unwrap();
    let tampered_body = transcription("conv_auth", CALLER, "Mallory");

    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("missing", body.clone(), None),
        ("empty", body.clone(), Some(String::new())),
        ("malformed", body.clone(), Some("t=abc,v0=00".into())),
        (
            "wrong secret",
            body.clone(),
            Some(sign(&body, &wrong, now())),
        ),
        (
            "expired",
            body.clone(),
            Some(sign(&body, &key, now() - 31 * 60)),
        ),
        (
            "future",
            body.clone(),
            Some(sign(&body, &key, now() + 60 * 60)),
        ),
        (
            "tampered body",
            tampered_body,
            Some(sign(&body, &key, now())),
        ),
    ];
    for (case, body, signature) in cases {
        let response = app.post_call_signed(body, signature.as_deref()).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(error_code(response).await, "unauthorized", "{case}");
    }
    assert_eq!(app.stored_conversations().await, 0);
    assert_eq!(app.service.pending_count(), 0);

    // The genuine request still works.
    assert_eq!(app.post_call(&body).await.status(), 200);
    assert_eq!(app.stored_conversations().await, 1);
}

#[tokio::test]
async fn a_rotated_post_call_secret_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let app = crate::helpers::spawn_with(
        crate::helpers::Options::new(dir.path())
            .var("ELEVENLABS_POST_CALL_KEY", "wsec_new,wsec_old"),
    )
    .await;
    let body = transcription("conv_rotate", CALLER, "Margaret");
    let old = sign(&body, &Secret::new("wsec_old").unwrap(), now());
    assert_eq!(app.post_call_signed(body, Some(&old)).await.status(), 200);
}

#[tokio::test]
async fn client_data_and_search_need_their_own_secret() {
    let app = spawn_app().await;
    let greet_body = json!({"caller_id": CALLER, "agent_id": "agent_1"});
    let search_body = json!({"query": "name", "user_id": CALLER});
    for (path, body, key, other_key) in [
        (
            "/webhook/client-data",
            &greet_body,
            app.client_data_key.clone(),
            app.search_data_key.clone(),
        ),
        (
            "/webhook/search-data",
            &search_body,
            app.search_data_key.clone(),
            app.client_data_key.clone(),
        ),
    ] {
        let url = app.url(path);
        let post = || app.client.post(&url).json(body);

        let missing = post().send().await.unwrap();
        assert_eq!(missing.status(), 401, "{path} missing");
        assert_eq!(error_code(missing).await, "unauthorized");

        let wrong = post().header("X-Api-Key", "guess").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path} wrong");

        let swapped = post().header("X-Api-Key", &other_key).send().await.unwrap();
        assert_eq!(swapped.status(), 401, "{path} the other route's key");

        let bad_bearer = post()
            .header("Authorization", "Bearer guess")
            .send()
            .await
            .unwrap();
        assert_eq!(bad_bearer.status(), 401, "{path} wrong bearer");

        let bearer = post()
            .header("Authorization", format!("Bearer {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), 200, "{path} bearer");

        let raw = serde_json::to_vec(body).unwrap();
        let signed = sign(&raw, &Secret::new(key.as_str()).unwrap(), now());
        let by_signature = app
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("ElevenLabs-Signature", &signed)
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(by_signature.status(), 200, "{path} signature");

        let tampered = app
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("ElevenLabs-Signature", &signed)
            .body(serde_json::to_vec(&json!({"caller_id": "+442071838750", "query": "x", "user_id": "+442071838750"})).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(tampered.status(), 401, "{path} tampered body");

        let expired = sign(&raw, &Secret::new(key.as_str()).unwrap(), now() - 3600);
        let response = app
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("ElevenLabs-Signature", expired)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path} expired signature");
    }
}
