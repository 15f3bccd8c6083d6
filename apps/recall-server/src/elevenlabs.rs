//! A small client of the ElevenLabs API, with retries: the Conversations
//! API for `recall import` (list pages, conversation details and audio)
//! and JSON calls for `recall setup` (agents, tools, settings).
//!
//! Shapes follow the official SDK (`GetConversationsPageResponseModel`,
//! `ConversationSummaryResponseModel`); every type is tolerant: unknown
//! fields are ignored and optional ones may be missing or `null`.

use std::time::Duration;

use serde::Deserialize;

/// How requests are retried: 429 (after its `Retry-After`), 5xx and
/// transport errors, with exponential backoff, a bounded number of times.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request in all (the first one included).
    pub max_attempts: u32,
    /// The first backoff after a 5xx or a transport error.
    pub initial_backoff: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured as is
    /// (a longer one is waited for this long).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 or 403: the key is refused; nothing else will work.
    #[error(
        "ElevenLabs refused the API key ({status}) at {base_url}{detail}: check `elevenlabs_api_key` (ELEVENLABS_API_KEY) is a valid key of the workspace that owns the agents, with read access to Conversational AI, and that `elevenlabs_api_url` (ELEVENLABS_API_URL) is that workspace's region (data-residency workspaces use e.g. https://api.eu.residency.elevenlabs.io)"
    )]
    Unauthorized {
        /// The status received.
        status: reqwest::StatusCode,
        /// The base URL used.
        base_url: String,
        /// `: <detail>` from the answer, or empty.
        detail: String,
    },
    /// Any other refusal (e.g. 422 for a bad parameter).
    #[error("{what}: ElevenLabs answered {status}{detail}")]
    Status {
        /// What was asked.
        what: String,
        /// The status received.
        status: reqwest::StatusCode,
        /// `: <detail>` from the answer, or empty.
        detail: String,
    },
    /// Still failing (429, 5xx or transport) after every attempt.
    #[error("{what}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// What was asked.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// An answer that is not of the expected shape.
    #[error("{what}: unexpected answer: {reason}")]
    Malformed {
        /// What was asked.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The connection broke while reading a body.
    #[error("{what}: {source}")]
    Transport {
        /// What was asked.
        what: String,
        /// The error.
        source: reqwest::Error,
    },
}

impl ApiError {
    /// Whether the import must stop (the key is refused).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }
}

/// One page of `GET /v1/convai/conversations`.
#[derive(Clone, Debug, Deserialize)]
pub struct ConversationsPage {
    /// The conversations of this page (summaries, no transcript).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub conversations: Vec<ConversationSummary>,
    /// The cursor of the next page, when there is one.
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// Whether more pages follow.
    #[serde(default)]
    pub has_more: bool,
}

/// A conversation as listed (`ConversationSummaryResponseModel`).
#[derive(Clone, Debug, Deserialize)]
pub struct ConversationSummary {
    /// Its id.
    pub conversation_id: String,
    /// Its agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// `initiated`, `in-progress`, `processing`, `done` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    /// When the call started, unix seconds.
    #[serde(default)]
    pub start_time_unix_secs: Option<i64>,
    /// How long it lasted.
    #[serde(default)]
    pub call_duration_secs: Option<f64>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The listing filters.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only this agent's conversations.
    pub agent_id: Option<String>,
    /// Only calls that started after this time (unix seconds).
    pub after_unix: Option<i64>,
    /// Only calls that started before this time (unix seconds).
    pub before_unix: Option<i64>,
    /// Conversations per page (1 to 100).
    pub page_size: u32,
    /// The page: `None` for the first, else the previous `next_cursor`.
    pub cursor: Option<String>,
}

/// A client of one ElevenLabs API (base URL and key).
#[derive(Clone)]
pub struct ElevenLabsClient {
    http: reqwest::Client,
    base_url: String,
    key: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ElevenLabsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ElevenLabsClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ElevenLabsClient {
    /// A client of the API at `base_url` (e.g. `https://api.elevenlabs.io`)
    /// authenticating with `key`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(base_url: &str, key: &str, retry: RetryPolicy) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("recall/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            retry,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// One page of conversation summaries.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn list(&self, query: &ListQuery) -> Result<ConversationsPage, ApiError> {
        let mut params: Vec<(&str, String)> = vec![("page_size", query.page_size.to_string())];
        if let Some(cursor) = &query.cursor {
            params.push(("cursor", cursor.clone()));
        }
        if let Some(agent) = &query.agent_id {
            params.push(("agent_id", agent.clone()));
        }
        if let Some(after) = query.after_unix {
            params.push(("call_start_after_unix", after.to_string()));
        }
        if let Some(before) = query.before_unix {
            params.push(("call_start_before_unix", before.to_string()));
        }
        let what = "listing conversations (GET /v1/convai/conversations)";
        let url = format!("{}/v1/convai/conversations", self.base_url);
        let response = self
            .send(what, || self.http.get(&url).query(&params))
            .await?
            .ok_or_else(|| ApiError::Status {
                what: what.to_owned(),
                status: reqwest::StatusCode::NOT_FOUND,
                detail: String::new(),
            })?;
        json_body(what, response).await
    }

    /// A conversation's details, as the raw JSON body; `None` when it is
    /// gone (404).
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn conversation(&self, id: &str) -> Result<Option<bytes::Bytes>, ApiError> {
        let what = format!("conversation {id}");
        let url = format!("{}/v1/convai/conversations/{}", self.base_url, encode(id));
        let Some(response) = self.send(&what, || self.http.get(&url)).await? else {
            return Ok(None);
        };
        response
            .bytes()
            .await
            .map(Some)
            .map_err(|source| ApiError::Transport { what, source })
    }

    /// A conversation's recording, as a response to stream; `None` when
    /// there is none (404).
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn audio(&self, id: &str) -> Result<Option<reqwest::Response>, ApiError> {
        let what = format!("audio of conversation {id}");
        let url = format!(
            "{}/v1/convai/conversations/{}/audio",
            self.base_url,
            encode(id)
        );
        self.send(&what, || self.http.get(&url)).await
    }

    /// `GET <base_url><path>` as JSON; `None` for a 404. `what` names the
    /// request in errors.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
    ) -> Result<Option<T>, ApiError> {
        let url = format!("{}{path}", self.base_url);
        match self.send(what, || self.http.get(&url)).await? {
            Some(response) => json_body(what, response).await.map(Some),
            None => Ok(None),
        }
    }

    /// A write (`POST` or `PATCH`) of a JSON body, answered with JSON. A
    /// write is retried after 429 only: after a 5xx or a broken connection
    /// it may have been done, so it is reported, not repeated.
    ///
    /// # Errors
    /// See [`ApiError`]; a 404 is an [`ApiError::Status`].
    pub async fn write_json<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        what: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let request = || self.http.request(method.clone(), &url).json(body);
        match self.send_with(what, request, false).await? {
            Some(response) => json_body(what, response).await,
            None => Err(ApiError::Status {
                what: what.to_owned(),
                status: reqwest::StatusCode::NOT_FOUND,
                detail: String::new(),
            }),
        }
    }

    /// Sends a request with the key, retrying as the policy says.
    /// `Ok(None)` for a 404.
    async fn send(
        &self,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Option<reqwest::Response>, ApiError> {
        self.send_with(what, request, true).await
    }

    /// [`Self::send`]; `idempotent: false` retries 429s only.
    async fn send_with(
        &self,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
        idempotent: bool,
    ) -> Result<Option<reqwest::Response>, ApiError> {
        let mut backoff = self.retry.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = match request().header("xi-api-key", &self.key).send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        return Ok(Some(response));
                    }
                    if status == reqwest::StatusCode::NOT_FOUND {
                        return Ok(None);
                    }
                    if matches!(status.as_u16(), 401 | 403) {
                        return Err(ApiError::Unauthorized {
                            status,
                            base_url: self.base_url.clone(),
                            detail: detail(response).await,
                        });
                    }
                    let retry_after = retry_after(&response);
                    if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || (idempotent && status.is_server_error())
                    {
                        let wait = match retry_after {
                            Some(wait) => wait.min(self.retry.max_backoff),
                            None => backoff,
                        };
                        let last = format!("{status}{}", detail(response).await);
                        if attempt >= self.retry.max_attempts {
                            return Err(ApiError::GaveUp {
                                what: what.to_owned(),
                                attempts: attempt,
                                last,
                            });
                        }
                        tracing::debug!(what, %status, wait_ms = wait.as_millis() as u64, "retrying");
                        tokio::time::sleep(wait).await;
                        backoff = (backoff * 2).min(self.retry.max_backoff);
                        continue;
                    }
                    return Err(ApiError::Status {
                        what: what.to_owned(),
                        status,
                        detail: detail(response).await,
                    });
                }
                Err(e) => e.to_string(),
            };
            if attempt >= self.retry.max_attempts || !idempotent {
                return Err(ApiError::GaveUp {
                    what: what.to_owned(),
                    attempts: attempt,
                    last,
                });
            }
            tracing::debug!(what, error = %last, "retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }
}

/// A JSON answer read as `T`, `null`s dropped first: the API sends `null`
/// for absent optional fields, which the tolerant types read as missing.
async fn json_body<T: serde::de::DeserializeOwned>(
    what: &str,
    response: reqwest::Response,
) -> Result<T, ApiError> {
    let body = response
        .bytes()
        .await
        .map_err(|source| ApiError::Transport {
            what: what.to_owned(),
            source,
        })?;
    let malformed = |e: serde_json::Error| ApiError::Malformed {
        what: what.to_owned(),
        reason: e.to_string(),
    };
    let mut value: serde_json::Value = serde_json::from_slice(&body).map_err(malformed)?;
    drop_nulls(&mut value);
    serde_json::from_value(value).map_err(malformed)
}

/// Removes every `null` member of every object, recursively.
fn drop_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the API).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let text = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: f64 = text.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `: <detail>` from an error body (`{"detail": ...}`), short, or empty.
async fn detail(response: reqwest::Response) -> String {
    let Ok(body) = response.bytes().await else {
        return String::new();
    };
    let text = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(map)) => match map.get("detail") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return String::new(),
        },
        _ => return String::new(),
    };
    let short: String = text.chars().take(300).collect();
    format!(": {short}")
}

/// A path segment, percent-encoded.
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
