//! `recall setup --apply`: creates or updates the memory tool and attaches
//! it to the agent.
//!
//! The plan is computed first ([`plan`]) and shown ([`Plan::describe`])
//! before anything is written ([`apply`]). The tool's `X-Api-Key` header
//! is a workspace secret named [`SECRET_NAME`] holding Recall's search
//! key: created, or updated when it exists, so running `--apply` again
//! converges instead of piling up secrets and tools.

use std::fmt::Write as _;

use recall_signature::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    CALLER_VARIABLE, Expected, HeaderValue, SEARCH_DATA_PATH, Verdict, Wiring, WorkspaceSecrets,
    check,
};
use crate::elevenlabs::{ApiError, ElevenLabsClient, encode};

/// The name of the workspace secret holding Recall's search key.
pub const SECRET_NAME: &str = "recall_search_data_key";

/// The memory tool's name, as the LLM sees it, when Recall creates it.
pub const TOOL_NAME: &str = "recall_caller_memory";

/// The memory tool's configuration (a `webhook` tool): `POST url` with
/// `X-Api-Key: header`, `user_id` filled by ElevenLabs from
/// `system__caller_id` (never by the LLM), and the question as `query`.
/// This is also the JSON `docs/elevenlabs-setup.md` tells to paste.
pub fn memory_tool_config(url: &str, header: HeaderValue) -> Value {
    let header = match header {
        HeaderValue::Text(text) => json!(text),
        HeaderValue::Secret { secret_id } => json!({ "secret_id": secret_id }),
        HeaderValue::EnvVar { env_var_label } => json!({ "env_var_label": env_var_label }),
        HeaderValue::Dynamic { variable_name } => json!({ "variable_name": variable_name }),
        HeaderValue::Other(value) => value,
    };
    json!({
        "type": "webhook",
        "name": TOOL_NAME,
        "description": "Look up what we remember about the current caller from earlier calls: their name, their details and what was discussed. Use it when the caller refers to an earlier call or when a detail about them would help.",
        "response_timeout_secs": 5,
        "api_schema": {
            "url": url,
            "method": "POST",
            "request_headers": { "X-Api-Key": header },
            "request_body_schema": {
                "type": "object",
                "description": "A memory lookup for the current caller.",
                "properties": {
                    "query": {
                        "type": "string",
                        "description": "What to look up, as a short question or a few words, e.g. 'what was wrong with her roses', 'where does she live', 'what was the last call about' or 'insurance provider'."
                    },
                    "user_id": { "type": "string", "dynamic_variable": CALLER_VARIABLE },
                    "agent_id": { "type": "string", "dynamic_variable": "system__agent_id" },
                    "conversation_id": { "type": "string", "dynamic_variable": "system__conversation_id" }
                },
                "required": ["query", "user_id"]
            }
        }
    })
}

/// One write of a plan, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// `POST /v1/convai/secrets`: a workspace secret holding the search key.
    CreateSecret,
    /// `PATCH /v1/convai/secrets/{id}`: the existing secret set to the
    /// search key.
    UpdateSecret {
        /// The secret's id.
        secret_id: String,
    },
    /// `POST /v1/convai/tools`: the memory tool.
    CreateTool {
        /// Its configuration (the secret's id filled in when applied).
        config: Value,
    },
    /// `PATCH /v1/convai/tools/{id}`: the attached memory tool corrected.
    UpdateTool {
        /// The tool's id.
        tool_id: String,
        /// Its new configuration.
        config: Value,
    },
    /// `PATCH /v1/convai/agents/{id}`: the new tool added to the agent's
    /// `tool_ids`, the others kept.
    AttachTool {
        /// The ids attached before.
        existing: Vec<String>,
    },
}

/// The writes that wire the memory tool, computed by [`plan`].
#[derive(Debug)]
pub struct Plan {
    agent_id: String,
    changes: Vec<Change>,
    search_key: Option<Secret>,
}

/// Why no plan can be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `--apply` needs the address ElevenLabs reaches Recall at.
    #[error(
        "--apply needs --url: the address where ElevenLabs reaches Recall (e.g. https://recall.example.com), to point the tool at"
    )]
    NoUrl,
    /// The tool needs a secret and Recall has no search key.
    #[error(
        "the memory tool needs Recall's search key and none is configured: set ELEVENLABS_SEARCH_DATA_KEY (or run `recall serve` once to generate it)"
    )]
    NoSearchKey,
    /// The memory tool is defined inline in the agent, which the tools API
    /// cannot update.
    #[error(
        "the memory tool \"{0}\" is defined inline in the agent, which the tools API cannot update: fix it by hand as the checklist says, or remove it and run --apply again"
    )]
    InlineTool(String),
    /// Reading the workspace secrets failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl Plan {
    /// The writes, in order; empty when the tool is wired right.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The writes as shown before asking, secrets never included.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for change in &self.changes {
            match change {
                Change::CreateSecret => {
                    let _ = writeln!(
                        out,
                        "• create the workspace secret \"{SECRET_NAME}\" holding ELEVENLABS_SEARCH_DATA_KEY (its value is not shown)\n    POST /v1/convai/secrets"
                    );
                }
                Change::UpdateSecret { secret_id } => {
                    let _ = writeln!(
                        out,
                        "• set the workspace secret \"{SECRET_NAME}\" ({secret_id}) to ELEVENLABS_SEARCH_DATA_KEY (its value is not shown)\n    PATCH /v1/convai/secrets/{secret_id}"
                    );
                }
                Change::CreateTool { config } => {
                    let _ = writeln!(
                        out,
                        "• create the memory tool\n    POST /v1/convai/tools {}",
                        indent(&json!({ "tool_config": config }))
                    );
                }
                Change::UpdateTool { tool_id, config } => {
                    let _ = writeln!(
                        out,
                        "• update the memory tool {tool_id}\n    PATCH /v1/convai/tools/{tool_id} {}",
                        indent(&json!({ "tool_config": config }))
                    );
                }
                Change::AttachTool { existing } => {
                    let mut ids: Vec<&str> = existing.iter().map(String::as_str).collect();
                    ids.push("<the new tool>");
                    let _ = writeln!(
                        out,
                        "• attach it to the agent\n    PATCH /v1/convai/agents/{} {}",
                        self.agent_id,
                        indent(
                            &json!({"conversation_config": {"agent": {"prompt": {"tool_ids": ids}}}})
                        )
                    );
                }
            }
        }
        out
    }
}

fn indent(value: &Value) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_default()
        .replace('\n', "\n    ")
}

/// A placeholder for the secret's id until it is known.
const SECRET_PLACEHOLDER: &str = "<the secret recall_search_data_key>";

/// The writes that make the agent's memory tool right: create or correct
/// the tool, with a workspace secret for its header unless it already
/// has one, and attach it.
///
/// # Errors
/// See [`PlanError`].
pub async fn plan(
    client: &ElevenLabsClient,
    wiring: &Wiring,
    expected: &Expected,
) -> Result<Plan, PlanError> {
    let url = expected.url_of(SEARCH_DATA_PATH).ok_or(PlanError::NoUrl)?;
    let report = check(wiring, expected);
    let failed = |item: &str| report.get(item).is_some_and(|c| c.verdict == Verdict::Fail);
    let existing = wiring.memory_tool();
    let wrong = failed("tool URL") || failed("tool header") || failed("tool user_id");
    if let Some((None, tool)) = existing
        && wrong
    {
        return Err(PlanError::InlineTool(tool.name.clone()));
    }
    let tool_id = existing.and_then(|(id, _)| id);
    let needs_tool = existing.is_none() || wrong;
    let mut changes = Vec::new();
    if !needs_tool {
        return Ok(Plan {
            agent_id: wiring.agent.agent_id.clone(),
            changes,
            search_key: None,
        });
    }
    // Keep a header that is not known to be wrong (a secret or variable
    // whose value cannot be read back); otherwise use Recall's secret.
    let kept_header = existing
        .filter(|_| !failed("tool header"))
        .and_then(|(_, tool)| {
            let schema = tool.api_schema.as_ref()?;
            schema
                .request_headers
                .iter()
                .find(|(name, _)| {
                    name.eq_ignore_ascii_case("x-api-key")
                        || name.eq_ignore_ascii_case("authorization")
                })
                .map(|(_, value)| value.clone())
        });
    let mut search_key = None;
    let header = match kept_header {
        Some(header) => header,
        None => {
            let key = expected
                .search_keys
                .iter()
                .next()
                .ok_or(PlanError::NoSearchKey)?;
            search_key = Some(key.clone());
            let secrets: WorkspaceSecrets = client
                .get_json("workspace secrets", "/v1/convai/secrets")
                .await?
                .unwrap_or_default();
            match secrets.secrets.iter().find(|s| s.name == SECRET_NAME) {
                Some(secret) => {
                    changes.push(Change::UpdateSecret {
                        secret_id: secret.secret_id.clone(),
                    });
                    HeaderValue::Secret {
                        secret_id: secret.secret_id.clone(),
                    }
                }
                None => {
                    changes.push(Change::CreateSecret);
                    HeaderValue::Secret {
                        secret_id: SECRET_PLACEHOLDER.to_owned(),
                    }
                }
            }
        }
    };
    let mut config = memory_tool_config(&url, header);
    match tool_id {
        Some(tool_id) => {
            // Keep the name the prompt may refer to the tool by.
            if let Some((_, tool)) = existing.filter(|(_, t)| !t.name.is_empty()) {
                config["name"] = json!(tool.name);
            }
            changes.push(Change::UpdateTool {
                tool_id: tool_id.to_owned(),
                config,
            });
        }
        None => {
            changes.push(Change::CreateTool { config });
            changes.push(Change::AttachTool {
                existing: wiring
                    .agent
                    .conversation_config
                    .agent
                    .prompt
                    .tool_ids
                    .clone(),
            });
        }
    }
    Ok(Plan {
        agent_id: wiring.agent.agent_id.clone(),
        changes,
        search_key,
    })
}

/// What [`apply`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The secret created or updated.
    pub secret_id: Option<String>,
    /// The tool created or updated.
    pub tool_id: Option<String>,
    /// Whether the agent's `tool_ids` was changed.
    pub attached: bool,
}

#[derive(Deserialize)]
struct Created {
    #[serde(alias = "secret_id")]
    id: String,
}

/// Makes the writes of `plan`, in order, stopping at the first failure
/// (running `--apply` again goes on from there: the secret is found by
/// name and the tool by the agent's `tool_ids`).
///
/// # Errors
/// The first failed write.
pub async fn apply(client: &ElevenLabsClient, plan: &Plan) -> Result<Applied, ApiError> {
    let mut applied = Applied::default();
    let value = || plan.search_key.as_ref().map_or("", |k| k.expose());
    for change in &plan.changes {
        match change {
            Change::CreateSecret => {
                let created: Created = client
                    .write_json(
                        reqwest::Method::POST,
                        "creating the workspace secret",
                        "/v1/convai/secrets",
                        &json!({"type": "new", "name": SECRET_NAME, "value": value()}),
                    )
                    .await?;
                applied.secret_id = Some(created.id);
            }
            Change::UpdateSecret { secret_id } => {
                let _: Value = client
                    .write_json(
                        reqwest::Method::PATCH,
                        "updating the workspace secret",
                        &format!("/v1/convai/secrets/{}", encode(secret_id)),
                        &json!({"type": "update", "name": SECRET_NAME, "value": value()}),
                    )
                    .await?;
                applied.secret_id = Some(secret_id.clone());
            }
            Change::CreateTool { config } => {
                let created: Created = client
                    .write_json(
                        reqwest::Method::POST,
                        "creating the memory tool",
                        "/v1/convai/tools",
                        &json!({ "tool_config": with_secret(config, &applied) }),
                    )
                    .await?;
                applied.tool_id = Some(created.id);
            }
            Change::UpdateTool { tool_id, config } => {
                let _: Value = client
                    .write_json(
                        reqwest::Method::PATCH,
                        "updating the memory tool",
                        &format!("/v1/convai/tools/{}", encode(tool_id)),
                        &json!({ "tool_config": with_secret(config, &applied) }),
                    )
                    .await?;
                applied.tool_id = Some(tool_id.clone());
            }
            Change::AttachTool { existing } => {
                let mut ids = existing.clone();
                ids.extend(applied.tool_id.clone());
                let _: Value = client
                    .write_json(
                        reqwest::Method::PATCH,
                        "attaching the memory tool to the agent",
                        &format!("/v1/convai/agents/{}", encode(&plan.agent_id)),
                        &json!({"conversation_config": {"agent": {"prompt": {"tool_ids": ids}}}}),
                    )
                    .await?;
                applied.attached = true;
            }
        }
    }
    Ok(applied)
}

/// The tool configuration with the created secret's id in its header.
fn with_secret(config: &Value, applied: &Applied) -> Value {
    let mut config = config.clone();
    if let Some(id) = &applied.secret_id {
        config["api_schema"]["request_headers"]["X-Api-Key"] = json!({ "secret_id": id });
    }
    config
}
