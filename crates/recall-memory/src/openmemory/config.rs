//! How to reach an OpenMemory server: [`OpenMemoryConfig`].

use std::fmt;
use std::time::Duration;

use recall_model::ValueError;
use url::Url;

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Default total timeout of one read request (search, list, get): sized
/// for a phone call, where the agent cannot wait.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(300);
/// Default total timeout of one write request (add, update, delete,
/// erase). OpenMemory embeds once per sector with a 200 ms pause between
/// sectors, so a three-sector add takes about 460 ms.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of retries of an idempotent operation.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Largest accepted [`OpenMemoryConfig::max_retries`].
pub const MAX_RETRIES_LIMIT: u32 = 5;
/// Default delay before the first retry; doubled for each later one and
/// jittered.
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_millis(50);

/// How to reach an OpenMemory server (v1.2–v1.3, user-scoped API).
///
/// The API key is redacted in `Debug` output.
///
/// ```
/// use std::time::Duration;
/// use recall_memory::openmemory::OpenMemoryConfig;
///
/// let config = OpenMemoryConfig::from_port_or_url("8080")
///     .unwrap()
///     .with_api_key("secret")
///     .unwrap()
///     .read_timeout(Duration::from_millis(400));
/// assert_eq!(config.base_url().as_str(), "http://127.0.0.1:8080/");
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct OpenMemoryConfig {
    pub(crate) base_url: Url,
    pub(crate) api_key: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) retry_base_delay: Duration,
}

impl OpenMemoryConfig {
    /// A configuration for the server at `base_url` (`http` only), with
    /// no API key and the default timeouts and retries.
    pub fn new(base_url: Url) -> Result<Self, ValueError> {
        let base_url = normalise_base(base_url)?;
        Ok(Self {
            base_url,
            api_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
        })
    }

    /// Reads the server's address from a port on this machine (`8080`,
    /// meaning `http://127.0.0.1:8080/`), a `host:port`, or a full URL
    /// (`http://openmemory:8080/`, optionally with a path prefix).
    ///
    /// ```
    /// use recall_memory::openmemory::OpenMemoryConfig;
    /// let at = |s| OpenMemoryConfig::from_port_or_url(s).map(|c| c.base_url().to_string());
    /// assert_eq!(at("8080").unwrap(), "http://127.0.0.1:8080/");
    /// assert_eq!(at("openmemory:8080").unwrap(), "http://openmemory:8080/");
    /// assert_eq!(at("http://om.internal/prefix").unwrap(), "http://om.internal/prefix/");
    /// assert!(at("0").is_err());
    /// assert!(at("ftp://om").is_err());
    /// ```
    pub fn from_port_or_url(raw: &str) -> Result<Self, ValueError> {
        const FIELD: &str = "openmemory_url";
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ValueError::new(
                FIELD,
                "must be a port, host:port or http URL",
                raw,
            ));
        }
        if raw.bytes().all(|b| b.is_ascii_digit()) {
            return match raw.parse::<u16>() {
                Ok(port) if port > 0 => {
                    let url = Url::parse(&format!("http://127.0.0.1:{port}/"))
                        .map_err(|_| ValueError::new(FIELD, "must be a valid port", raw))?;
                    Self::new(url)
                }
                _ => Err(ValueError::new(FIELD, "a port must be 1 to 65535", raw)),
            };
        }
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("http://{raw}")
        };
        let url = Url::parse(&with_scheme)
            .map_err(|_| ValueError::new(FIELD, "must be a port, host:port or http URL", raw))?;
        Self::new(url)
    }

    /// Sets the API key (OpenMemory's `OM_API_KEY`), sent as `x-api-key`.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Result<Self, ValueError> {
        let key = key.into();
        if key.is_empty() || key.len() > 4096 {
            return Err(ValueError::new(
                "openmemory_api_key",
                "must be 1 to 4096 bytes long",
                "<redacted>",
            ));
        }
        if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ValueError::new(
                "openmemory_api_key",
                "must be visible ASCII without spaces",
                "<redacted>",
            ));
        }
        self.api_key = Some(key);
        Ok(self)
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the total timeout of one read request.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets the total timeout of one write request.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets how many times an idempotent operation is retried after a
    /// timeout or an unavailable server (at most [`MAX_RETRIES_LIMIT`]).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the delay before the first retry (doubled for each later
    /// retry, with full jitter).
    pub fn retry_base_delay(mut self, delay: Duration) -> Self {
        self.retry_base_delay = delay;
        self
    }

    /// The server's base URL (always ends with `/`).
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Whether an API key is set.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// Checks the settings the setters cannot: timeouts are not zero and
    /// retries are bounded. The error names the setting.
    pub fn validate(&self) -> Result<(), ValueError> {
        let positive = |field: &'static str, d: Duration| {
            if d.is_zero() {
                Err(ValueError::new(field, "must be greater than zero", "0ms"))
            } else if d > Duration::from_secs(600) {
                Err(ValueError::new(
                    field,
                    "must be at most 600 s",
                    format!("{}ms", d.as_millis()),
                ))
            } else {
                Ok(())
            }
        };
        positive("openmemory_connect_timeout", self.connect_timeout)?;
        positive("openmemory_read_timeout", self.read_timeout)?;
        positive("openmemory_write_timeout", self.write_timeout)?;
        if self.max_retries > MAX_RETRIES_LIMIT {
            return Err(ValueError::new(
                "openmemory_max_retries",
                "must be at most 5",
                self.max_retries.to_string(),
            ));
        }
        if self.retry_base_delay > Duration::from_secs(10) {
            return Err(ValueError::new(
                "openmemory_retry_base_delay",
                "must be at most 10 s",
                format!("{}ms", self.retry_base_delay.as_millis()),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for OpenMemoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenMemoryConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .finish()
    }
}

/// Accepts `http` URLs with a host and no credentials, query or fragment;
/// makes the path end with `/` so endpoints join below it.
fn normalise_base(mut url: Url) -> Result<Url, ValueError> {
    const FIELD: &str = "openmemory_url";
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(ValueError::new(
                FIELD,
                "https is not supported by this build; reach OpenMemory over http on a private network or a local TLS proxy",
                url.as_str(),
            ));
        }
        _ => return Err(ValueError::new(FIELD, "must be an http URL", url.as_str())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValueError::new(FIELD, "must name a host", url.as_str()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ValueError::new(
            FIELD,
            "must not carry credentials; set the API key instead",
            "<redacted>",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ValueError::new(
            FIELD,
            "must not have a query or fragment",
            url.as_str(),
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_means_loopback() {
        let c = OpenMemoryConfig::from_port_or_url("18081").unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:18081/");
        assert_eq!(c.read_timeout, DEFAULT_READ_TIMEOUT);
        assert!(!c.has_api_key());
    }

    #[test]
    fn bad_addresses_name_the_setting() {
        for raw in [
            "",
            "0",
            "70000",
            "https://om",
            "ftp://om",
            "http://u:p@om",
            "http://om?x=1",
        ] {
            let err = OpenMemoryConfig::from_port_or_url(raw).unwrap_err();
            assert_eq!(err.field(), "openmemory_url", "{raw}");
        }
    }

    #[test]
    fn the_key_never_shows_in_debug_or_errors() {
        let c = OpenMemoryConfig::from_port_or_url("1")
            .unwrap()
            .with_api_key("testkey123")
            .unwrap();
        assert!(!format!("{c:?}").contains("testkey123"));
        let err = OpenMemoryConfig::from_port_or_url("1")
            .unwrap()
            .with_api_key("bad key")
            .unwrap_err();
        assert_eq!(err.field(), "openmemory_api_key");
        assert!(!err.to_string().contains("bad key"));
    }

    #[test]
    fn validate_rejects_zero_timeouts_and_unbounded_retries() {
        let c = OpenMemoryConfig::from_port_or_url("1").unwrap();
        assert!(c.validate().is_ok());
        let err = c
            .clone()
            .read_timeout(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert_eq!(err.field(), "openmemory_read_timeout");
        let err = c.max_retries(6).validate().unwrap_err();
        assert_eq!(err.field(), "openmemory_max_retries");
    }
}
