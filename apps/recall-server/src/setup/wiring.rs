//! The parts of an agent's configuration and of the workspace settings
//! that wire an agent to Recall, as the ElevenLabs API returns them.
//!
//! Shapes follow the official SDK (`GetAgentResponseModel`,
//! `GetConvAiSettingsResponseModel`, `WorkspaceWebhookResponseModel`,
//! `ToolResponseModel`, `WebhookToolApiSchemaConfigOutput`). Every type is
//! tolerant: unknown fields are ignored, and missing (or `null`, which the
//! client drops) fields read as empty.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `GET /v1/convai/agents/{agent_id}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Agent {
    /// Its id.
    pub agent_id: String,
    /// Its name.
    pub name: String,
    /// `conversation_config`.
    pub conversation_config: ConversationConfig,
    /// `platform_settings`.
    pub platform_settings: PlatformSettings,
}

/// `conversation_config`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConversationConfig {
    /// `conversation_config.agent`.
    pub agent: AgentConfig,
}

/// `conversation_config.agent`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// The first message the agent says.
    pub first_message: Option<String>,
    /// `conversation_config.agent.prompt`.
    pub prompt: PromptConfig,
}

/// `conversation_config.agent.prompt`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PromptConfig {
    /// The system prompt.
    pub prompt: Option<String>,
    /// The workspace tools attached to the agent.
    pub tool_ids: Vec<String>,
    /// Tools defined inline in the agent (the older form).
    pub tools: Vec<ToolConfig>,
}

/// `platform_settings`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlatformSettings {
    /// `platform_settings.overrides`.
    pub overrides: Overrides,
    /// The agent's own webhook settings, which take the place of the
    /// workspace's when present.
    pub workspace_overrides: WebhookSettings,
}

/// `platform_settings.overrides`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Overrides {
    /// What a conversation may override.
    pub conversation_config_override: OverrideConfig,
    /// Whether the agent fetches its initiation data from the webhook.
    pub enable_conversation_initiation_client_data_from_webhook: Option<bool>,
}

/// `platform_settings.overrides.conversation_config_override`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OverrideConfig {
    /// `….agent`.
    pub agent: AgentOverrides,
}

/// `platform_settings.overrides.conversation_config_override.agent`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AgentOverrides {
    /// Whether the first message may be overridden.
    pub first_message: Option<bool>,
}

/// The webhook settings of a workspace (`GET /v1/convai/settings`) or of
/// an agent (`platform_settings.workspace_overrides`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// The conversation-initiation webhook.
    pub conversation_initiation_client_data_webhook: Option<InitiationWebhook>,
    /// The post-call webhook's settings.
    pub webhooks: Option<PostCallSettings>,
}

/// `conversation_initiation_client_data_webhook`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct InitiationWebhook {
    /// Where it is sent.
    pub url: String,
    /// The headers sent with it.
    pub request_headers: BTreeMap<String, HeaderValue>,
}

/// `webhooks` (`ConvAiWebhooks`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PostCallSettings {
    /// The workspace webhook post-call events go to.
    pub post_call_webhook_id: Option<String>,
    /// The events sent (`transcript`, `audio`, `call_initiation_failure`,
    /// …); absent means the API's default.
    pub events: Option<Vec<String>>,
    /// Whether audio is sent.
    pub send_audio: Option<bool>,
}

/// `GET /v1/workspace/webhooks`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceWebhooks {
    /// The workspace's webhooks.
    pub webhooks: Vec<WorkspaceWebhook>,
}

/// One workspace webhook (`WorkspaceWebhookResponseModel`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceWebhook {
    /// Its id.
    pub webhook_id: String,
    /// Its name.
    pub name: String,
    /// Where it is sent.
    pub webhook_url: String,
    /// Disabled by hand.
    pub is_disabled: bool,
    /// Disabled by ElevenLabs after repeated failures.
    pub is_auto_disabled: bool,
    /// `hmac`, `oauth2` or `mtls`.
    pub auth_type: Option<String>,
    /// The status of the last failed delivery.
    pub most_recent_failure_error_code: Option<i64>,
    /// When it failed, unix seconds.
    pub most_recent_failure_timestamp: Option<i64>,
}

/// `GET /v1/convai/tools/{tool_id}` (`ToolResponseModel`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Tool {
    /// Its id.
    pub id: String,
    /// Its configuration.
    pub tool_config: ToolConfig,
}

/// A tool's configuration; only webhook tools have an `api_schema`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ToolConfig {
    /// `webhook`, `client`, `system`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Its name, as the LLM sees it.
    pub name: String,
    /// How long ElevenLabs waits for the answer.
    pub response_timeout_secs: Option<i64>,
    /// The request a webhook tool sends.
    pub api_schema: Option<ApiSchema>,
}

/// A webhook tool's request (`WebhookToolApiSchemaConfigOutput`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApiSchema {
    /// Where it is sent.
    pub url: String,
    /// `GET`, `POST`, …; absent means `GET`.
    pub method: Option<String>,
    /// The headers sent.
    pub request_headers: BTreeMap<String, HeaderValue>,
    /// The body's schema.
    pub request_body_schema: Option<ObjectSchema>,
}

/// An object's JSON schema, as tools declare their parameters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ObjectSchema {
    /// Its properties.
    pub properties: BTreeMap<String, Property>,
}

/// One property of a tool's body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Property {
    /// The dynamic variable that fills it, when ElevenLabs (not the LLM)
    /// does.
    pub dynamic_variable: Option<String>,
    /// A constant that fills it.
    pub constant_value: Option<serde_json::Value>,
}

/// A header's value: a literal, a workspace secret, an environment
/// variable or a dynamic variable.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    /// A literal value.
    Text(String),
    /// A workspace secret (its value cannot be read back).
    Secret {
        /// The secret's id.
        secret_id: String,
    },
    /// An environment variable of the workspace.
    EnvVar {
        /// Its label.
        env_var_label: String,
    },
    /// A dynamic variable of the conversation.
    Dynamic {
        /// Its name.
        variable_name: String,
    },
    /// Any other form.
    Other(serde_json::Value),
}

/// `GET /v1/convai/secrets`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceSecrets {
    /// The workspace's secrets (names and ids, never values).
    pub secrets: Vec<WorkspaceSecret>,
}

/// One workspace secret.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkspaceSecret {
    /// Its id.
    pub secret_id: String,
    /// Its name.
    pub name: String,
}
