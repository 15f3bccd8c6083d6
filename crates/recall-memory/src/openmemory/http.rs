//! One pooled HTTP client, timeouts, bounded retries with jittered
//! backoff, and the mapping of OpenMemory's answers onto [`MemoryError`]
//! (keyed on status codes: OpenMemory's error bodies vary).

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::config::OpenMemoryConfig;
use super::wire::error_reason;
use crate::store::MemoryError;

/// What to do when the server says the user id is not the API key's
/// tenant (OpenMemory releases after v1.3).
pub(crate) const TENANT_MISMATCH_ADVICE: &str = "this OpenMemory release binds every request to the API key's tenant and refuses a per-caller user_id, so Recall cannot keep callers apart on it; run OpenMemory v1.2 or v1.3 (the user-scoped API), or set RECALL_STORE=embedded";

/// Whether a request may take long (writes) or must be quick (reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
}

/// A request to send.
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Option<Vec<u8>>,
    pub kind: Kind,
    /// Whether it may be sent again after a timeout or an unavailable
    /// server (only for idempotent requests).
    pub retry: bool,
    /// How to name it in errors, e.g. `GET /memory/all` (never with the
    /// user id, which is personal data).
    pub what: &'static str,
}

impl Call {
    /// A call without a body.
    pub fn new(method: Method, url: Url, kind: Kind, what: &'static str) -> Self {
        let retry = matches!(method, Method::GET | Method::DELETE | Method::HEAD);
        Self {
            method,
            url,
            body: None,
            kind,
            retry,
            what,
        }
    }

    /// Adds a JSON body (always a valid JSON object with the JSON content
    /// type: anything else makes `/memory/query` crash the server).
    pub fn json<T: Serialize>(mut self, body: &T) -> Result<Self, MemoryError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            MemoryError::internal(format!("cannot encode {}", self.what)).with_source(e)
        })?;
        self.body = Some(bytes);
        Ok(self)
    }

    /// Sets whether the call may be retried.
    pub fn retry(mut self, retry: bool) -> Self {
        self.retry = retry;
        self
    }
}

/// A response: status and body text.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: String,
    pub what: &'static str,
}

impl Answer {
    /// The reason the server gave, if any.
    pub fn reason(&self) -> String {
        error_reason(&self.body).unwrap_or_else(|| "no reason given".to_owned())
    }

    /// Whether the body names `code` as its `err` or `error`.
    pub fn has_code(&self, code: &str) -> bool {
        error_reason(&self.body).is_some_and(|r| r == code || r.starts_with(&format!("{code}:")))
    }

    /// Whether this is the newer releases' tenant refusal.
    pub fn is_tenant_mismatch(&self) -> bool {
        self.status == StatusCode::FORBIDDEN && self.body.contains("tenant_mismatch")
    }

    /// Maps a non-success answer onto an error; success passes through.
    /// Callers that give 403/404 a meaning of their own (not found) check
    /// those first, after [`Self::is_tenant_mismatch`].
    pub fn ok(self) -> Result<Self, MemoryError> {
        let status = self.status;
        if status.is_success() {
            return Ok(self);
        }
        let what = self.what;
        Err(if self.is_tenant_mismatch() {
            MemoryError::incompatible(format!(
                "OpenMemory answered 403 tenant_mismatch to {what}: {TENANT_MISMATCH_ADVICE}"
            ))
        } else if status == StatusCode::UNAUTHORIZED {
            MemoryError::rejected(format!(
                "OpenMemory requires an API key (401 {}): set the OpenMemory API key",
                self.reason()
            ))
        } else if status == StatusCode::FORBIDDEN && self.has_code("invalid_api_key") {
            MemoryError::rejected(
                "OpenMemory refused the API key (403 invalid_api_key): check the OpenMemory API key",
            )
        } else if status == StatusCode::NOT_FOUND {
            MemoryError::incompatible(format!(
                "OpenMemory does not serve {what} (404 {}): run OpenMemory v1.2 or v1.3",
                self.reason()
            ))
        } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            MemoryError::unavailable(format!(
                "OpenMemory answered {} to {what}: {}",
                status.as_u16(),
                self.reason()
            ))
        } else {
            MemoryError::rejected(format!(
                "OpenMemory answered {} to {what}: {}",
                status.as_u16(),
                self.reason()
            ))
        })
    }

    /// Parses the body as `T`; a body of another shape means a server
    /// this adapter does not know.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, MemoryError> {
        serde_json::from_str(&self.body).map_err(|e| {
            MemoryError::incompatible(format!(
                "OpenMemory's answer to {} is not the v1.2–v1.3 shape: run OpenMemory v1.2 or v1.3",
                self.what
            ))
            .with_source(e)
        })
    }
}

/// The HTTP side of the adapter.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: Url,
    api_key: Option<HeaderValue>,
    read_timeout: Duration,
    write_timeout: Duration,
    max_retries: u32,
    retry_base_delay: Duration,
}

impl Http {
    /// Builds the pooled client.
    pub fn new(config: &OpenMemoryConfig) -> Result<Self, MemoryError> {
        let api_key = match &config.api_key {
            Some(k) => {
                let mut v = HeaderValue::from_str(k).map_err(|_| {
                    MemoryError::rejected(
                        "invalid openmemory_api_key: must be visible ASCII without spaces",
                    )
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // OpenMemory closes idle keep-alive connections after 5 s.
            .pool_idle_timeout(Duration::from_secs(4))
            .build()
            .map_err(|e| MemoryError::internal("cannot build the HTTP client").with_source(e))?;
        Ok(Self {
            client,
            base: config.base_url.clone(),
            api_key,
            read_timeout: config.read_timeout,
            write_timeout: config.write_timeout,
            max_retries: config.max_retries,
            retry_base_delay: config.retry_base_delay,
        })
    }

    /// The URL of `segments` below the base URL, each segment encoded,
    /// `+` included (as `%2B`, like the recorded requests: a `+` decodes
    /// to a space in some places of OpenMemory).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if url.path().contains('+') {
            let encoded = url.path().replace('+', "%2B");
            url.set_path(&encoded);
        }
        url
    }

    /// How many times idempotent operations are retried.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The pause before retry number `attempt` (0-based): the base delay
    /// doubled per attempt, half of it random.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .retry_base_delay
            .saturating_mul(1u32 << attempt.min(10))
            .as_millis()
            .min(u128::from(u32::MAX)) as u64;
        let half = full / 2;
        Duration::from_millis(half + fastrand::u64(0..=half))
    }

    /// Sends `call`, retrying it (when allowed) after a timeout, a
    /// connection failure, a 5xx or a 429. Returns any other answer.
    pub async fn send(&self, call: &Call) -> Result<Answer, MemoryError> {
        let mut attempt = 0;
        loop {
            let result = self.send_once(call).await.and_then(|a| {
                if a.status.is_server_error() || a.status == StatusCode::TOO_MANY_REQUESTS {
                    a.ok()
                } else {
                    Ok(a)
                }
            });
            match result {
                Err(e) if call.retry && e.is_retryable() && attempt < self.max_retries => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once(&self, call: &Call) -> Result<Answer, MemoryError> {
        let timeout = match call.kind {
            Kind::Read => self.read_timeout,
            Kind::Write => self.write_timeout,
        };
        let mut request = self
            .client
            .request(call.method.clone(), call.url.clone())
            .timeout(timeout);
        if let Some(key) = &self.api_key {
            request = request.header("x-api-key", key.clone());
        }
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.clone());
        }
        let map = |e: reqwest::Error| self.transport_error(e, timeout, call.what);
        let response = request.send().await.map_err(map)?;
        let status = response.status();
        let body = response.text().await.map_err(map)?;
        Ok(Answer {
            status,
            body,
            what: call.what,
        })
    }

    fn transport_error(
        &self,
        e: reqwest::Error,
        timeout: Duration,
        what: &'static str,
    ) -> MemoryError {
        if e.is_timeout() {
            return MemoryError::Timeout(timeout);
        }
        // The URL carries the caller's number: keep it out of messages.
        let e = e.without_url();
        let reason = if e.is_connect() {
            format!("cannot connect to OpenMemory at {} for {what}", self.base)
        } else {
            format!(
                "OpenMemory at {} gave no usable answer to {what}",
                self.base
            )
        };
        MemoryError::unavailable(reason).with_source(e)
    }
}
