//! The seed's configuration keys as a plain struct. Loading (defaults, a
//! file, the environment) belongs to the server.

use std::fmt;

/// The seed's eight settings, named after their environment variables.
/// `Debug` shows whether each secret is set, never its value.
///
/// ```
/// use recall_model::Settings;
/// let settings = Settings {
///     elevenlabs_post_call_key: "wsec_live_secret".into(),
///     openmemory_port: "8080".into(),
///     ..Settings::default()
/// };
/// let shown = format!("{settings:?}");
/// assert!(!shown.contains("wsec_live_secret"));
/// assert!(shown.contains("8080"));
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// `ELEVENLABS_API_KEY`: the primary ElevenLabs API key (secret).
    pub elevenlabs_api_key: String,
    /// `ELEVENLABS_POST_CALL_KEY`: HMAC secret of the post-call webhook (secret).
    pub elevenlabs_post_call_key: String,
    /// `ELEVENLABS_CLIENT_DATA_KEY`: shared secret of the client-data webhook (secret).
    pub elevenlabs_client_data_key: String,
    /// `ELEVENLABS_SEARCH_DATA_KEY`: shared secret of the search-data tool (secret).
    pub elevenlabs_search_data_key: String,
    /// `OPENMEMORY_KEY`: the OpenMemory API key (secret).
    pub openmemory_key: String,
    /// `OPENMEMORY_PORT`: OpenMemory's port or URL.
    pub openmemory_port: String,
    /// `OPENMEMORY_DB_PATH`: path of OpenMemory's database.
    pub openmemory_db_path: String,
    /// `PAYLOAD_STORAGE_PATH`: directory where raw webhook payloads are kept.
    pub payload_storage_path: String,
}

impl Settings {
    /// The environment variable names, in the seed's order.
    pub const ENV_NAMES: [&'static str; 8] = [
        "ELEVENLABS_API_KEY",
        "ELEVENLABS_POST_CALL_KEY",
        "ELEVENLABS_CLIENT_DATA_KEY",
        "ELEVENLABS_SEARCH_DATA_KEY",
        "OPENMEMORY_KEY",
        "OPENMEMORY_PORT",
        "OPENMEMORY_DB_PATH",
        "PAYLOAD_STORAGE_PATH",
    ];

    /// Builds settings from a lookup of environment-style names (e.g.
    /// `|name| std::env::var(name).ok()`); a missing name leaves its
    /// field empty.
    pub fn from_lookup(mut lookup: impl FnMut(&str) -> Option<String>) -> Self {
        let mut get = |name: &str| lookup(name).unwrap_or_default();
        Self {
            elevenlabs_api_key: get("ELEVENLABS_API_KEY"),
            elevenlabs_post_call_key: get("ELEVENLABS_POST_CALL_KEY"),
            elevenlabs_client_data_key: get("ELEVENLABS_CLIENT_DATA_KEY"),
            elevenlabs_search_data_key: get("ELEVENLABS_SEARCH_DATA_KEY"),
            openmemory_key: get("OPENMEMORY_KEY"),
            openmemory_port: get("OPENMEMORY_PORT"),
            openmemory_db_path: get("OPENMEMORY_DB_PATH"),
            payload_storage_path: get("PAYLOAD_STORAGE_PATH"),
        }
    }
}

/// Shows a secret as `<set>` or `<unset>`.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("elevenlabs_api_key", &Redacted(&self.elevenlabs_api_key))
            .field(
                "elevenlabs_post_call_key",
                &Redacted(&self.elevenlabs_post_call_key),
            )
            .field(
                "elevenlabs_client_data_key",
                &Redacted(&self.elevenlabs_client_data_key),
            )
            .field(
                "elevenlabs_search_data_key",
                &Redacted(&self.elevenlabs_search_data_key),
            )
            .field("openmemory_key", &Redacted(&self.openmemory_key))
            .field("openmemory_port", &self.openmemory_port)
            .field("openmemory_db_path", &self.openmemory_db_path)
            .field("payload_storage_path", &self.payload_storage_path)
            .finish()
    }
}
