//! `spawn_app()` and friends: a real server on a free loopback port, with
//! its data in a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use actix_web::dev::ServerHandle;
use recall_memory::{InMemoryStore, MemoryStore};
use recall_server::Application;
use recall_server::config::{Config, EnvVars, LogFormat};
use recall_service::Service;
use recall_signature::{Secret, sign};
use serde_json::{Value, json};

/// The post-call secret configured by [`spawn_app`].
pub const POST_CALL_KEY: &str = "wsec_test_post_call";
/// The client-data secret configured by [`spawn_app`].
pub const CLIENT_DATA_KEY: &str = "test-client-data-key";
/// The search-data secret configured by [`spawn_app`].
pub const SEARCH_DATA_KEY: &str = "test-search-data-key";
/// A caller.
pub const CALLER: &str = "+16129782029";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        recall_server::telemetry::init(LogFormat::Pretty, "debug", std::io::stdout);
    }
});

/// How to start a test server.
pub struct Options {
    /// Environment variables (the process environment is never read).
    pub vars: Vec<(String, String)>,
    /// A store to use instead of the configured one.
    pub store: Option<Arc<dyn MemoryStore>>,
    /// The data directory.
    pub dir: PathBuf,
    /// Configure the three webhook keys.
    pub with_keys: bool,
}

impl Options {
    /// The in-memory store (unless a store is given), keys configured.
    pub fn new(dir: &Path) -> Self {
        Self {
            vars: vec![("RECALL_STORE".into(), "memory".into())],
            store: None,
            dir: dir.to_owned(),
            with_keys: true,
        }
    }

    /// Adds an environment variable.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    /// Uses `store`.
    pub fn store(mut self, store: Arc<dyn MemoryStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The configuration these options make.
    pub fn config(&self) -> Result<Config, recall_server::config::ConfigError> {
        let mut vars = vec![
            ("RECALL_BIND".to_owned(), "127.0.0.1:0".to_owned()),
            ("RECALL_DATA_DIR".to_owned(), self.dir.display().to_string()),
        ];
        if self.with_keys {
            vars.push(("ELEVENLABS_POST_CALL_KEY".into(), POST_CALL_KEY.into()));
            vars.push(("ELEVENLABS_CLIENT_DATA_KEY".into(), CLIENT_DATA_KEY.into()));
            vars.push(("ELEVENLABS_SEARCH_DATA_KEY".into(), SEARCH_DATA_KEY.into()));
        }
        vars.extend(self.vars.iter().cloned());
        Config::load(None, &EnvVars::from_pairs(vars))
    }
}

/// A running server.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// Its service (to run the post-call worker's pass deterministically).
    pub service: Service,
    /// Stops it.
    pub handle: ServerHandle,
    /// Whether the build generated secrets.
    pub generated_secrets: bool,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The keys in use.
    pub post_call_key: String,
    /// The client-data key in use.
    pub client_data_key: String,
    /// The search-data key in use.
    pub search_data_key: String,
    /// Its event log's folder (`PAYLOAD_STORAGE_PATH`), to look at the
    /// filesystem layout.
    pub payload_dir: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// A server on the in-memory store with configured keys, in its own
/// temporary directory.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_with(Options::new(dir.path())).await;
    app._dir = Some(dir);
    app
}

/// A server started with `options`.
pub async fn spawn_with(options: Options) -> TestApp {
    try_spawn(options).await.expect("the server starts")
}

/// A server started with `options`, or why it refused to start.
pub async fn try_spawn(options: Options) -> anyhow::Result<TestApp> {
    LazyLock::force(&TRACING);
    let config = options.config()?;
    let data_dir = config.data_dir.clone();
    let payload_dir = config.payload_dir();
    let app = Application::build_with_store(config, options.store.clone()).await?;
    let generated_secrets = app.generated_secrets();
    let address = format!("http://127.0.0.1:{}", app.port());
    let service = app.service().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let (post_call_key, client_data_key, search_data_key) = if options.with_keys {
        (
            POST_CALL_KEY.to_owned(),
            CLIENT_DATA_KEY.to_owned(),
            SEARCH_DATA_KEY.to_owned(),
        )
    } else {
        let saved =
            recall_server::secrets_file::read(&data_dir.join("webhook-secrets.toml")).unwrap();
        (
            saved["post_call_key"].clone(),
            saved["client_data_key"].clone(),
            saved["search_data_key"].clone(),
        )
    };
    Ok(TestApp {
        address,
        service,
        handle,
        generated_secrets,
        client: reqwest::Client::new(),
        post_call_key,
        client_data_key,
        search_data_key,
        payload_dir,
        _dir: None,
    })
}

/// Now, in unix seconds.
pub fn now() -> u64 {
    recall_server::auth::now_unix()
}

impl TestApp {
    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The post-call signature of `body`, made now with the configured key.
    pub fn signature(&self, body: &[u8]) -> String {
        sign(
            body,
            &Secret::new(self.post_call_key.as_str()).unwrap(),
            now(),
        )
    }

    /// Posts a post-call body signed now with the configured key.
    pub async fn post_call(&self, body: &[u8]) -> reqwest::Response {
        let signature = self.signature(body);
        self.post_call_signed(body.to_vec(), Some(&signature)).await
    }

    /// Posts a post-call body with the given signature header.
    pub async fn post_call_signed(
        &self,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/webhook/post-call"))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("ElevenLabs-Signature", signature);
        }
        request.send().await.expect("the request is answered")
    }

    /// Posts client-data with the configured key in `X-Api-Key`.
    pub async fn client_data(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/webhook/client-data"))
            .header("X-Api-Key", &self.client_data_key)
            .json(body)
            .send()
            .await
            .expect("the request is answered")
    }

    /// Posts search-data with the configured key in `X-Api-Key`.
    pub async fn search(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/webhook/search-data"))
            .header("X-Api-Key", &self.search_data_key)
            .json(body)
            .send()
            .await
            .expect("the request is answered")
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Runs one pass of the post-call worker now.
    pub async fn settle(&self) {
        self.service.process_pending().await;
    }

    /// Stops the server gracefully.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// The conversations with a stored event.
    pub async fn stored_conversations(&self) -> usize {
        let log = self.service.event_log();
        log.conversations().await.unwrap().len()
    }

    /// Where a stored event's body is on disk.
    pub fn event_path(&self, conversation: &str, kind: &str) -> std::path::PathBuf {
        self.payload_dir
            .join(conversation)
            .join(format!("{kind}.json"))
    }

    /// The quarantine folder.
    pub fn quarantine_dir(&self) -> std::path::PathBuf {
        self.payload_dir.join("_quarantine")
    }

    /// The greeting's JSON for `caller`.
    pub async fn greet(&self, caller: &str) -> Value {
        let response = self
            .client_data(&json!({
                "caller_id": caller,
                "agent_id": "agent_1",
                "called_number": "+15550001111",
                "call_sid": "CA123"
            }))
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// A `post_call_transcription` event in which `caller` gives `name`.
pub fn transcription(conversation: &str, caller: &str, name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "post_call_transcription",
        "event_timestamp": 1_739_537_319,
        "data": {
            "agent_id": "agent_1",
            "conversation_id": conversation,
            "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hello! Who am I speaking with?", "time_in_call_secs": 0},
                {"role": "user", "message": format!("Hi, it's {name}. My roses have black spots."), "time_in_call_secs": 2}
            ],
            "metadata": {
                "start_time_unix_secs": 1_739_537_297,
                "call_duration_secs": 22,
                "phone_call": {
                    "type": "twilio",
                    "direction": "inbound",
                    "external_number": caller,
                    "agent_number": "+15550001111",
                    "phone_number_id": "phnum_1",
                    "call_sid": "CA123"
                }
            },
            "analysis": {
                "call_successful": "success",
                "transcript_summary": format!("{name} asked how to treat black spot on her roses."),
                "call_summary_title": "Roses with black spot",
                "data_collection_results": {
                    "first_name": {"data_collection_id": "first_name", "value": name, "rationale": "The caller said so."}
                }
            },
            "conversation_initiation_client_data": {
                "dynamic_variables": {"system__caller_id": caller, "system__conversation_id": conversation}
            }
        }
    }))
    .unwrap()
}

/// An error body's `error` code.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("errors are JSON");
    assert!(body["message"].is_string(), "{body}");
    body["error"].as_str().expect("an error code").to_owned()
}

/// A store that fails with `Unavailable` while `failing` is set.
#[derive(Default)]
pub struct FlakyStore {
    inner: InMemoryStore,
    /// While set, every call fails.
    pub failing: std::sync::atomic::AtomicBool,
}

impl FlakyStore {
    /// A working store.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts or stops failing.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), recall_memory::MemoryError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            Err(recall_memory::MemoryError::unavailable("test outage"))
        } else {
            Ok(())
        }
    }
}

use recall_memory::{
    AddOutcome, ListRequest, Memory, MemoryError, MemoryId, MemoryPage, MemoryUpdate, NewMemory,
    ScoredMemory, SearchQuery, UserProfile,
};
use recall_model::PhoneNumber;

#[async_trait::async_trait]
impl MemoryStore for FlakyStore {
    async fn add(&self, user: &PhoneNumber, memory: NewMemory) -> Result<AddOutcome, MemoryError> {
        self.check()?;
        self.inner.add(user, memory).await
    }
    async fn search(
        &self,
        user: &PhoneNumber,
        query: &SearchQuery,
    ) -> Result<Vec<ScoredMemory>, MemoryError> {
        self.check()?;
        self.inner.search(user, query).await
    }
    async fn list(
        &self,
        user: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<MemoryPage, MemoryError> {
        self.check()?;
        self.inner.list(user, request).await
    }
    async fn get(&self, user: &PhoneNumber, id: &MemoryId) -> Result<Memory, MemoryError> {
        self.check()?;
        self.inner.get(user, id).await
    }
    async fn update(
        &self,
        user: &PhoneNumber,
        id: &MemoryId,
        update: MemoryUpdate,
    ) -> Result<Memory, MemoryError> {
        self.check()?;
        self.inner.update(user, id, update).await
    }
    async fn delete(&self, user: &PhoneNumber, id: &MemoryId) -> Result<(), MemoryError> {
        self.check()?;
        self.inner.delete(user, id).await
    }
    async fn erase_user(&self, user: &PhoneNumber) -> Result<u64, MemoryError> {
        self.check()?;
        self.inner.erase_user(user).await
    }
    async fn profile(&self, user: &PhoneNumber) -> Result<UserProfile, MemoryError> {
        self.check()?;
        self.inner.profile(user).await
    }
    async fn health(&self) -> Result<(), MemoryError> {
        self.check()
    }
}
