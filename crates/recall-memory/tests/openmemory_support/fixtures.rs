//! The recorded exchanges with a real OpenMemory v1.3.0 server (copied
//! from the project's shared fixtures into `recorded/v1.3.0/`).

use serde::Deserialize;
use serde_json::Value;
use wiremock::ResponseTemplate;

/// One recorded exchange.
#[derive(Deserialize, Debug, Clone)]
pub struct Fixture {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

/// What was sent.
#[derive(Deserialize, Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub body: Value,
}

/// What came back.
#[derive(Deserialize, Debug, Clone)]
pub struct RecordedResponse {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: Value,
}

/// Loads `recorded/v1.3.0/<name>.json`.
pub fn load(name: &str) -> Fixture {
    let path = format!(
        "{}/tests/openmemory_support/recorded/v1.3.0/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl Fixture {
    /// The recorded answer, status, content type and body as received.
    pub fn answer(&self) -> ResponseTemplate {
        let status = self.response.status.expect("a recorded HTTP answer");
        let template = ResponseTemplate::new(status);
        match (&self.response.body, self.response.content_type.as_deref()) {
            (Value::String(text), ct) => template.set_body_raw(text.clone(), ct.unwrap_or("")),
            (body, _) => template.set_body_json(body.clone()),
        }
    }

    /// The recorded request path without its query.
    pub fn path(&self) -> &str {
        self.request.path.split('?').next().unwrap_or_default()
    }

    /// The recorded response body.
    pub fn body(&self) -> &Value {
        &self.response.body
    }
}
