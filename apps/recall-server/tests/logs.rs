//! What the logs hold after a whole call lifecycle: the conversation id,
//! masked phone numbers, and never a secret or a full number.
//!
//! A test binary of its own, because it installs the process-wide
//! subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use recall_server::Application;
use recall_server::config::{Config, EnvVars, LogFormat};
use recall_signature::{Secret, sign};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The process-wide subscriber, installed once, writing JSON lines into
/// one capture shared by the tests of this binary.
fn capture() -> Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            recall_server::telemetry::init(LogFormat::Json, "debug", capture.clone());
            capture
        })
        .clone()
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

const CALLER: &str = "+16129782029";
const POST_CALL_KEY: &str = "wsec_log_test_post_call_secret";
const CLIENT_DATA_KEY: &str = "log-test-client-data-secret";
const SEARCH_DATA_KEY: &str = "log-test-search-data-secret";

#[tokio::test]
async fn logs_mask_numbers_name_the_conversation_and_never_hold_secrets() {
    let capture = capture();

    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(
        None,
        &EnvVars::from_pairs([
            ("RECALL_BIND", "127.0.0.1:0"),
            ("RECALL_STORE", "memory"),
            ("RECALL_DATA_DIR", dir.path().to_str().unwrap()),
            ("ELEVENLABS_POST_CALL_KEY", POST_CALL_KEY),
            ("ELEVENLABS_CLIENT_DATA_KEY", CLIENT_DATA_KEY),
            ("ELEVENLABS_SEARCH_DATA_KEY", SEARCH_DATA_KEY),
        ]),
    )
    .unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let service = app.service().clone();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let greet = || {
        client
            .post(format!("{base}/webhook/client-data"))
            .header("X-Api-Key", CLIENT_DATA_KEY)
            .json(&json!({"caller_id": CALLER, "agent_id": "agent_1"}))
            .send()
    };
    assert_eq!(greet().await.unwrap().status(), 200);
    let event = serde_json::to_vec(&json!({
        "type": "post_call_transcription",
        "event_timestamp": 1_739_537_319,
        "data": {
            "agent_id": "agent_1",
            "conversation_id": "conv_logs_1",
            "transcript": [{"role": "user", "message": "It's Margaret.", "time_in_call_secs": 1}],
            "analysis": {
                "transcript_summary": "Margaret called.",
                "data_collection_results": {"first_name": {"data_collection_id": "first_name", "value": "Margaret"}}
            },
            "conversation_initiation_client_data": {"dynamic_variables": {"system__caller_id": CALLER}}
        }
    }))
    .unwrap();
    let signature = sign(
        &event,
        &Secret::new(POST_CALL_KEY).unwrap(),
        recall_server::auth::now_unix(),
    );
    let response = client
        .post(format!("{base}/webhook/post-call"))
        .header("ElevenLabs-Signature", signature)
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    service.process_pending().await;
    assert_eq!(greet().await.unwrap().status(), 200);
    let search = client
        .post(format!("{base}/webhook/search-data"))
        .header("Authorization", format!("Bearer {SEARCH_DATA_KEY}"))
        .json(&json!({"query": "name", "user_id": CALLER, "conversation_id": "conv_logs_2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200);
    let refused = client
        .post(format!("{base}/webhook/client-data"))
        .header("X-Api-Key", "a-wrong-guess-of-the-key")
        .json(&json!({"caller_id": CALLER}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let logs = capture.text();
    assert!(logs.contains("conv_logs_1"), "{logs}");
    assert!(logs.contains("+1612***2029"), "{logs}");
    assert!(
        !logs.contains(CALLER),
        "a full phone number was logged:\n{logs}"
    );
    for secret in [
        POST_CALL_KEY,
        CLIENT_DATA_KEY,
        SEARCH_DATA_KEY,
        "a-wrong-guess-of-the-key",
    ] {
        assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
    }
    // One line per answered request, with its route and status.
    assert!(
        logs.lines()
            .filter(|l| l.contains("\"answered\"") && l.contains("/webhook/client-data"))
            .count()
            >= 3,
        "{logs}"
    );
}

#[tokio::test]
async fn client_protocol_errors_are_warnings_not_errors() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let capture = capture();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(
        None,
        &EnvVars::from_pairs([
            ("RECALL_BIND", "127.0.0.1:0"),
            ("RECALL_STORE", "memory"),
            ("RECALL_DATA_DIR", dir.path().to_str().unwrap()),
            ("ELEVENLABS_POST_CALL_KEY", POST_CALL_KEY),
            ("ELEVENLABS_CLIENT_DATA_KEY", CLIENT_DATA_KEY),
            ("ELEVENLABS_SEARCH_DATA_KEY", SEARCH_DATA_KEY),
        ]),
    )
    .unwrap();
    let app = Application::build(config).await.unwrap();
    let address = format!("127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(256 << 10)
    );
    let requests: [(&str, &[u8], &str); 3] = [
        (
            "a header line without a colon",
            b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
            "400",
        ),
        (
            "a control byte in a header",
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n",
            "400",
        ),
        ("an oversized request head", big.as_bytes(), "431"),
    ];
    for (what, request, status) in requests {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        // The server may answer and close before the whole head is sent.
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {answer}"
        );
    }

    // The HTTP layer logs once it has closed each connection.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let warnings = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains("\"level\":\"WARN\"") && l.contains("client protocol error"))
            .count()
    };
    while warnings(&capture.text()) < requests.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let logs = capture.text();
    assert!(warnings(&logs) >= requests.len(), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("client protocol error") && l.contains("request parse error")),
        "{logs}"
    );
    for line in logs.lines().filter(|l| l.contains("\"level\":\"ERROR\"")) {
        assert!(
            !line.contains("stream error") && !line.contains("parse error"),
            "a client's mistake was logged as an error: {line}"
        );
    }
}
