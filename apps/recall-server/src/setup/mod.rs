//! `recall setup --agent <id>`: checks how an ElevenLabs agent is wired
//! to Recall, and says how to fix each mistake.
//!
//! An agent that "doesn't remember" is nearly always wired wrong in one of
//! a handful of places, spread over two pages of the ElevenLabs UI. This
//! reads them through the API ([`inspect`]), checks each one
//! ([`check`]) and prints ✓/✗ with the exact fix to paste
//! ([`Report::render`]). With `--apply` it creates or updates the memory
//! tool and attaches it to the agent ([`plan`], [`apply`]).
//!
//! Secrets are never printed: a header holding a literal secret is
//! compared with Recall's own keys and reported as matching or not, and a
//! workspace secret (whose value the API does not return) is reported by
//! its id.

mod apply;
mod wiring;

use std::fmt::Write as _;

use recall_signature::Secrets;
use url::Url;

pub use apply::{Applied, Change, Plan, PlanError, apply, memory_tool_config, plan};
pub use wiring::{
    Agent, AgentConfig, AgentOverrides, ApiSchema, ConversationConfig, HeaderValue,
    InitiationWebhook, ObjectSchema, OverrideConfig, Overrides, PlatformSettings, PostCallSettings,
    PromptConfig, Property, Tool, ToolConfig, WebhookSettings, WorkspaceSecret, WorkspaceSecrets,
    WorkspaceWebhook, WorkspaceWebhooks,
};

use crate::elevenlabs::{ApiError, ElevenLabsClient, encode};

/// Recall's route for the conversation-initiation webhook.
pub const CLIENT_DATA_PATH: &str = "/webhook/client-data";
/// Recall's route for the memory tool.
pub const SEARCH_DATA_PATH: &str = "/webhook/search-data";
/// Recall's route for the post-call webhook.
pub const POST_CALL_PATH: &str = "/webhook/post-call";

/// The dynamic variable that must fill the memory tool's `user_id`.
pub const CALLER_VARIABLE: &str = "system__caller_id";

/// Everything about an agent's wiring the API tells, read by [`inspect`].
#[derive(Clone, Debug, Default)]
pub struct Wiring {
    /// The agent.
    pub agent: Agent,
    /// The workspace's webhook settings (`GET /v1/convai/settings`).
    pub workspace: WebhookSettings,
    /// The workspace's webhooks, where the key may read them.
    pub webhooks: Option<Vec<WorkspaceWebhook>>,
    /// The workspace tools attached to the agent, in `tool_ids` order.
    pub tools: Vec<Tool>,
    /// Attached tool ids that no longer exist.
    pub missing_tools: Vec<String>,
}

impl Wiring {
    /// The conversation-initiation webhook in force and where it is set:
    /// the agent's own setting, else the workspace's.
    pub fn initiation_webhook(&self) -> Option<(&InitiationWebhook, &'static str)> {
        let own = &self.agent.platform_settings.workspace_overrides;
        own.conversation_initiation_client_data_webhook
            .as_ref()
            .map(|w| (w, "the agent's settings"))
            .or_else(|| {
                self.workspace
                    .conversation_initiation_client_data_webhook
                    .as_ref()
                    .map(|w| (w, "the workspace settings"))
            })
    }

    /// The post-call settings in force: the agent's own, else the
    /// workspace's.
    pub fn post_call(&self) -> Option<&PostCallSettings> {
        let own = &self.agent.platform_settings.workspace_overrides;
        own.webhooks
            .as_ref()
            .filter(|w| w.post_call_webhook_id.is_some())
            .or(self.workspace.webhooks.as_ref())
    }

    /// The agent's memory tool: the first attached webhook tool (workspace
    /// tools first, then inline ones) that calls Recall's search route.
    /// The id is `None` for an inline tool.
    pub fn memory_tool(&self) -> Option<(Option<&str>, &ToolConfig)> {
        let calls_recall = |config: &ToolConfig| {
            config
                .api_schema
                .as_ref()
                .is_some_and(|schema| path_of(&schema.url).ends_with(SEARCH_DATA_PATH))
        };
        self.tools
            .iter()
            .find(|t| calls_recall(&t.tool_config))
            .map(|t| (Some(t.id.as_str()), &t.tool_config))
            .or_else(|| {
                self.agent
                    .conversation_config
                    .agent
                    .prompt
                    .tools
                    .iter()
                    .find(|t| calls_recall(t))
                    .map(|t| (None, t))
            })
    }
}

/// Reads an agent's wiring: the agent, the workspace settings, the
/// workspace webhooks and every attached tool.
///
/// # Errors
/// An [`ApiError`]; an agent that does not exist is an
/// [`ApiError::Status`] 404 naming it.
pub async fn inspect(client: &ElevenLabsClient, agent_id: &str) -> Result<Wiring, ApiError> {
    let agent: Agent = client
        .get_json(
            &format!("agent {agent_id}"),
            &format!("/v1/convai/agents/{}", encode(agent_id)),
        )
        .await?
        .ok_or_else(|| ApiError::Status {
            what: format!("agent {agent_id}"),
            status: reqwest::StatusCode::NOT_FOUND,
            detail: ": no such agent in this workspace (check the id and ELEVENLABS_API_URL)"
                .to_owned(),
        })?;
    let workspace = client
        .get_json("workspace settings", "/v1/convai/settings")
        .await?
        .unwrap_or_default();
    // The post-call webhook's details need the workspace webhooks, which a
    // restricted key may not read: that check then says it cannot tell.
    let webhooks = match client
        .get_json::<WorkspaceWebhooks>("workspace webhooks", "/v1/workspace/webhooks")
        .await
    {
        Ok(list) => list.map(|l| l.webhooks),
        Err(ApiError::Unauthorized { .. }) => None,
        Err(e) => return Err(e),
    };
    let mut tools = Vec::new();
    let mut missing_tools = Vec::new();
    for id in &agent.conversation_config.agent.prompt.tool_ids {
        let tool: Option<Tool> = client
            .get_json(
                &format!("tool {id}"),
                &format!("/v1/convai/tools/{}", encode(id)),
            )
            .await?;
        match tool {
            Some(mut tool) => {
                if tool.id.is_empty() {
                    tool.id.clone_from(id);
                }
                tools.push(tool);
            }
            None => missing_tools.push(id.clone()),
        }
    }
    Ok(Wiring {
        agent,
        workspace,
        webhooks,
        tools,
        missing_tools,
    })
}

/// What the wiring should point at, from Recall's configuration.
#[derive(Clone, Debug)]
pub struct Expected {
    /// Where ElevenLabs reaches Recall (`--url`), e.g.
    /// `https://recall.example.com`. Without it only the paths of the
    /// configured URLs are checked.
    pub public_url: Option<Url>,
    /// Recall's conversation-initiation secrets.
    pub client_data_keys: Secrets,
    /// Recall's memory tool secrets.
    pub search_keys: Secrets,
    /// Whether Recall has a post-call HMAC secret.
    pub post_call_key_set: bool,
}

impl Expected {
    /// The full URL of one of Recall's routes, when `--url` was given.
    pub fn url_of(&self, path: &str) -> Option<String> {
        self.public_url.as_ref().map(|base| join(base, path))
    }

    /// The URL to show in a fix: the full one, or a placeholder host.
    fn shown_url(&self, path: &str) -> String {
        self.url_of(path)
            .unwrap_or_else(|| format!("https://<where ElevenLabs reaches Recall>{path}"))
    }
}

/// `base` with `path` appended to its own path.
fn join(base: &Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

/// The path of a URL, or the text itself when it does not parse.
fn path_of(url: &str) -> &str {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    match without_query.find("://") {
        Some(scheme_end) => {
            let rest = &without_query[scheme_end + 3..];
            rest.find('/').map_or("", |slash| &rest[slash..])
        }
        None => without_query,
    }
    .trim_end_matches('/')
}

/// One item's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Wired right.
    Pass,
    /// Wired wrong or missing: the agent will not remember.
    Fail,
    /// Cannot be told through the API (e.g. a secret's value); the detail
    /// says what to verify by hand.
    Unknown,
}

impl Verdict {
    fn mark(self) -> &'static str {
        match self {
            Self::Pass => "✓",
            Self::Fail => "✗",
            Self::Unknown => "?",
        }
    }
}

/// One checked item.
#[derive(Clone, Debug)]
pub struct Check {
    /// Which part of the wiring.
    pub section: Section,
    /// What is checked, in a few words.
    pub item: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do, when not [`Verdict::Pass`]: steps and text to paste.
    pub fix: Option<String>,
}

/// The parts of the wiring, in call order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// The conversation-initiation webhook: who is calling.
    Initiation,
    /// The prompt and first message: the caller's memory used.
    Prompt,
    /// The memory tool: questions during the call.
    MemoryTool,
    /// The post-call webhook: learning after the call.
    PostCall,
}

impl Section {
    fn title(self) -> &'static str {
        match self {
            Self::Initiation => "While the phone rings: the conversation-initiation webhook",
            Self::Prompt => "The greeting: prompt, first message and overrides",
            Self::MemoryTool => "During the call: the memory tool",
            Self::PostCall => "After the call: the post-call webhook",
        }
    }
}

/// The checklist of one agent.
#[derive(Clone, Debug)]
pub struct Report {
    /// The agent's id.
    pub agent_id: String,
    /// The agent's name.
    pub agent_name: String,
    /// Every item, by section.
    pub checks: Vec<Check>,
    /// Whether `--url` was given (otherwise hosts were not checked).
    pub hosts_checked: bool,
}

impl Report {
    /// The items that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Fail)
    }

    /// Whether every item passed or could not be told.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The item named `item`, if checked.
    pub fn get(&self, item: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.item == item)
    }

    /// The checklist as printed by `recall setup`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let name = if self.agent_name.is_empty() {
            String::new()
        } else {
            format!("\"{}\" ", self.agent_name)
        };
        let _ = writeln!(out, "Agent {name}({})", self.agent_id);
        let mut section = None;
        for check in &self.checks {
            if section != Some(check.section) {
                section = Some(check.section);
                let _ = writeln!(out, "\n{}", check.section.title());
            }
            let _ = writeln!(
                out,
                "  {} {}: {}",
                check.verdict.mark(),
                check.item,
                check.detail
            );
            if let Some(fix) = &check.fix {
                for (i, line) in fix.lines().enumerate() {
                    let lead = if i == 0 { "fix: " } else { "     " };
                    let _ = writeln!(out, "      {lead}{line}");
                }
            }
        }
        let failed = self.failures().count();
        let unknown = self
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Unknown)
            .count();
        let _ = writeln!(out);
        if failed == 0 {
            let _ = write!(out, "All {} checks passed", self.checks.len() - unknown);
        } else {
            let _ = write!(out, "{failed} of {} checks failed", self.checks.len());
        }
        if unknown > 0 {
            let _ = write!(out, "; {unknown} to verify by hand (?)");
        }
        let _ = writeln!(out, ".");
        if !self.hosts_checked {
            let _ = writeln!(
                out,
                "Only the URLs' paths were checked: pass --url https://<where ElevenLabs reaches Recall> to check their host too."
            );
        }
        out
    }
}

/// Checks an agent's wiring against what Recall expects.
pub fn check(wiring: &Wiring, expected: &Expected) -> Report {
    let mut checks = Vec::new();
    initiation_checks(wiring, expected, &mut checks);
    prompt_checks(wiring, &mut checks);
    tool_checks(wiring, expected, &mut checks);
    post_call_checks(wiring, expected, &mut checks);
    Report {
        agent_id: wiring.agent.agent_id.clone(),
        agent_name: wiring.agent.name.clone(),
        checks,
        hosts_checked: expected.public_url.is_some(),
    }
}

/// Whether `url` is Recall's `path` (and at `--url`, when given).
fn url_verdict(url: &str, path: &str, expected: &Expected) -> Result<(), String> {
    if let Some(want) = expected.url_of(path) {
        if url.trim_end_matches('/') != want {
            return Err(format!("{url} is not Recall's {want}"));
        }
    } else if !path_of(url).ends_with(path) {
        return Err(format!("{url} is not Recall's {path} route"));
    }
    Ok(())
}

/// The verdict on the secret header of a webhook or tool: `X-Api-Key` or
/// `Authorization: Bearer`, holding one of `keys`.
fn header_verdict(
    headers: &std::collections::BTreeMap<String, HeaderValue>,
    keys: &Secrets,
    setting: &str,
) -> (Verdict, String) {
    let found = headers.iter().find(|(name, _)| {
        name.eq_ignore_ascii_case("x-api-key") || name.eq_ignore_ascii_case("authorization")
    });
    let Some((name, value)) = found else {
        return (
            Verdict::Fail,
            "no X-Api-Key (or Authorization) header: Recall refuses the request with 401"
                .to_owned(),
        );
    };
    let bearer = name.eq_ignore_ascii_case("authorization");
    match value {
        HeaderValue::Text(text) => {
            let presented = if bearer {
                text.strip_prefix("Bearer ")
                    .or_else(|| text.strip_prefix("bearer "))
                    .map(str::trim)
            } else {
                Some(text.trim())
            };
            match presented.map(|p| keys.check_shared(p)) {
                Some(Ok(_)) => (
                    Verdict::Pass,
                    format!("{name} holds {setting} (a literal; a workspace secret is safer)"),
                ),
                _ => (
                    Verdict::Fail,
                    format!(
                        "{name} holds a value that is not {setting}: Recall refuses the request with 401"
                    ),
                ),
            }
        }
        HeaderValue::Secret { secret_id } => (
            Verdict::Unknown,
            format!(
                "{name} is the workspace secret {secret_id}, whose value the API does not show: make sure it is {setting}"
            ),
        ),
        HeaderValue::EnvVar { env_var_label } => (
            Verdict::Unknown,
            format!(
                "{name} is the environment variable {env_var_label}: make sure it holds {setting}"
            ),
        ),
        HeaderValue::Dynamic { variable_name } => (
            Verdict::Fail,
            format!(
                "{name} is the dynamic variable {variable_name}, not a secret: use a workspace secret holding {setting}"
            ),
        ),
        HeaderValue::Other(_) => (
            Verdict::Unknown,
            format!("{name} is set in a form Recall cannot read: make sure it holds {setting}"),
        ),
    }
}

fn initiation_checks(wiring: &Wiring, expected: &Expected, checks: &mut Vec<Check>) {
    let section = Section::Initiation;
    let url = expected.shown_url(CLIENT_DATA_PATH);
    let where_to = "ElevenLabs → Agents platform settings → \"Conversation initiation client data webhook\" (workspace), or the agent's Security tab";
    match wiring.initiation_webhook() {
        None => checks.push(Check {
            section,
            item: "initiation URL",
            verdict: Verdict::Fail,
            detail: "no conversation-initiation webhook is set, for the agent or the workspace"
                .to_owned(),
            fix: Some(format!(
                "{where_to}:\nURL {url}, method POST, header X-Api-Key = a workspace secret holding ELEVENLABS_CLIENT_DATA_KEY"
            )),
        }),
        Some((webhook, source)) => {
            let (verdict, detail, fix) = match url_verdict(&webhook.url, CLIENT_DATA_PATH, expected)
            {
                Ok(()) => (Verdict::Pass, format!("{} (in {source})", webhook.url), None),
                Err(why) => (
                    Verdict::Fail,
                    format!("{why} (in {source})"),
                    Some(format!("{where_to}: set the URL to {url}")),
                ),
            };
            checks.push(Check {
                section,
                item: "initiation URL",
                verdict,
                detail,
                fix,
            });
            let (verdict, detail) = header_verdict(
                &webhook.request_headers,
                &expected.client_data_keys,
                "ELEVENLABS_CLIENT_DATA_KEY",
            );
            checks.push(Check {
                section,
                item: "initiation header",
                verdict,
                fix: (verdict != Verdict::Pass).then(|| {
                    format!(
                        "ElevenLabs → Settings → Secrets: add a secret holding the value of ELEVENLABS_CLIENT_DATA_KEY (`recall check-config` shows where it is set);\nthen {where_to}: header X-Api-Key = that secret"
                    )
                }),
                detail,
            });
        }
    }
    let fetches = wiring
        .agent
        .platform_settings
        .overrides
        .enable_conversation_initiation_client_data_from_webhook;
    checks.push(Check {
        section,
        item: "agent fetches it",
        verdict: if fetches == Some(true) { Verdict::Pass } else { Verdict::Fail },
        detail: if fetches == Some(true) {
            "the agent asks the webhook for each phone call".to_owned()
        } else {
            "the agent does not ask the webhook: Recall never hears of the call before it starts".to_owned()
        },
        fix: (fetches != Some(true)).then(|| {
            format!(
                "Agent → Security → enable \"Fetch initiation client data from a webhook\";\nor PATCH /v1/convai/agents/{} with {{\"platform_settings\": {{\"overrides\": {{\"enable_conversation_initiation_client_data_from_webhook\": true}}}}}}",
                wiring.agent.agent_id
            )
        }),
    });
}

/// Whether `text` uses the dynamic variable `name` (`{{name}}`, spaces
/// inside the braces allowed).
fn uses_variable(text: &str, name: &str) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return false;
        };
        if after[..end].trim() == name {
            return true;
        }
        rest = &after[end + 2..];
    }
    false
}

fn prompt_checks(wiring: &Wiring, checks: &mut Vec<Check>) {
    let section = Section::Prompt;
    let agent = &wiring.agent.conversation_config.agent;
    let texts = [
        (
            "system prompt",
            agent.prompt.prompt.as_deref().unwrap_or(""),
        ),
        (
            "first message",
            agent.first_message.as_deref().unwrap_or(""),
        ),
    ];
    let suggestion = "The caller's name is {{user_name}}. What we know about them: {{user_profile_summary}}. Their last call: {{last_call_summary}}. If a value is empty, we do not know it: do not guess.";
    for (item, variable) in [
        ("{{user_name}} used", "user_name"),
        ("{{last_call_summary}} used", "last_call_summary"),
    ] {
        let used_in: Vec<&str> = texts
            .iter()
            .filter(|(_, text)| uses_variable(text, variable))
            .map(|(place, _)| *place)
            .collect();
        checks.push(Check {
            section,
            item,
            verdict: if used_in.is_empty() { Verdict::Fail } else { Verdict::Pass },
            detail: if used_in.is_empty() {
                format!("neither the system prompt nor the first message uses {{{{{variable}}}}}: the agent never sees what Recall sends in it")
            } else {
                format!("in the {}", used_in.join(" and the "))
            },
            fix: used_in.is_empty().then(|| {
                format!("Agent → Agent → System prompt: add\n{suggestion}")
            }),
        });
    }
    let overridable = wiring
        .agent
        .platform_settings
        .overrides
        .conversation_config_override
        .agent
        .first_message;
    checks.push(Check {
        section,
        item: "first message overridable",
        verdict: if overridable == Some(true) { Verdict::Pass } else { Verdict::Fail },
        detail: if overridable == Some(true) {
            "Recall's personal greeting replaces the first message".to_owned()
        } else {
            "overrides of the first message are off: ElevenLabs ignores Recall's personal greeting".to_owned()
        },
        fix: (overridable != Some(true)).then(|| {
            format!(
                "Agent → Security → Overrides: enable \"First message\";\nor PATCH /v1/convai/agents/{} with {{\"platform_settings\": {{\"overrides\": {{\"conversation_config_override\": {{\"agent\": {{\"first_message\": true}}}}}}}}}}",
                wiring.agent.agent_id
            )
        }),
    });
}

fn tool_checks(wiring: &Wiring, expected: &Expected, checks: &mut Vec<Check>) {
    let section = Section::MemoryTool;
    let apply = format!(
        "recall setup --agent {} --url {} --apply",
        wiring.agent.agent_id,
        expected
            .public_url
            .as_ref()
            .map_or("https://<where ElevenLabs reaches Recall>", |u| u
                .as_str()
                .trim_end_matches('/'))
    );
    let Some((id, tool)) = wiring.memory_tool() else {
        let mut detail = format!(
            "none of the agent's {} tools calls Recall's {SEARCH_DATA_PATH}",
            wiring.tools.len() + wiring.agent.conversation_config.agent.prompt.tools.len()
        );
        if !wiring.missing_tools.is_empty() {
            let _ = write!(
                detail,
                " (attached but gone: {})",
                wiring.missing_tools.join(", ")
            );
        }
        let template = memory_tool_config(
            &expected.shown_url(SEARCH_DATA_PATH),
            HeaderValue::Secret {
                secret_id: "<id of a workspace secret holding ELEVENLABS_SEARCH_DATA_KEY>"
                    .to_owned(),
            },
        );
        checks.push(Check {
            section,
            item: "tool attached",
            verdict: Verdict::Fail,
            detail,
            fix: Some(format!(
                "run `{apply}`, or Agent → Tools → Add tool → Webhook and paste:\n{}",
                serde_json::to_string_pretty(&template).unwrap_or_default()
            )),
        });
        return;
    };
    let name = match id {
        Some(id) => format!("\"{}\" ({id})", tool.name),
        None => format!("\"{}\" (inline in the agent)", tool.name),
    };
    checks.push(Check {
        section,
        item: "tool attached",
        verdict: Verdict::Pass,
        detail: name,
        fix: None,
    });
    let Some(schema) = &tool.api_schema else {
        return;
    };
    let method = schema.method.as_deref().unwrap_or("GET");
    let url_result = url_verdict(&schema.url, SEARCH_DATA_PATH, expected).and_then(|()| {
        if method.eq_ignore_ascii_case("POST") {
            Ok(())
        } else {
            Err(format!(
                "the tool sends {method}; Recall's {SEARCH_DATA_PATH} takes POST"
            ))
        }
    });
    let fix_tool = format!(
        "run `{apply}`, or edit the tool (Agent → Tools → {})",
        tool.name
    );
    checks.push(Check {
        section,
        item: "tool URL",
        verdict: if url_result.is_ok() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: match &url_result {
            Ok(()) => format!("POST {}", schema.url),
            Err(why) => why.clone(),
        },
        fix: url_result.is_err().then(|| {
            format!(
                "{fix_tool}: method POST, URL {}",
                expected.shown_url(SEARCH_DATA_PATH)
            )
        }),
    });
    let (verdict, detail) = header_verdict(
        &schema.request_headers,
        &expected.search_keys,
        "ELEVENLABS_SEARCH_DATA_KEY",
    );
    checks.push(Check {
        section,
        item: "tool header",
        verdict,
        detail,
        fix: (verdict == Verdict::Fail)
            .then(|| format!("{fix_tool}: header X-Api-Key = a workspace secret holding ELEVENLABS_SEARCH_DATA_KEY")),
    });
    let user_id = schema
        .request_body_schema
        .as_ref()
        .and_then(|body| body.properties.get("user_id"));
    let bound = user_id.and_then(|p| p.dynamic_variable.as_deref());
    let (verdict, detail) = match (user_id, bound) {
        (Some(_), Some(CALLER_VARIABLE)) => (
            Verdict::Pass,
            format!("filled by ElevenLabs from {CALLER_VARIABLE}"),
        ),
        (Some(_), Some(other)) => (
            Verdict::Fail,
            format!(
                "filled from {other}, not {CALLER_VARIABLE}: the memories looked up are not the caller's"
            ),
        ),
        (Some(p), None) if p.constant_value.is_some() => (
            Verdict::Fail,
            "a constant: every caller would read the same caller's memories".to_owned(),
        ),
        (Some(_), None) => (
            Verdict::Fail,
            "chosen by the LLM: a caller could make it read another caller's memories".to_owned(),
        ),
        (None, _) => (
            Verdict::Fail,
            "the tool sends no user_id: Recall cannot tell whose memories to read".to_owned(),
        ),
    };
    checks.push(Check {
        section,
        item: "tool user_id",
        verdict,
        detail,
        fix: (verdict == Verdict::Fail).then(|| {
            format!(
                "{fix_tool}: in the body parameters, user_id → Value type \"Dynamic variable\" → {CALLER_VARIABLE}"
            )
        }),
    });
}

fn post_call_checks(wiring: &Wiring, expected: &Expected, checks: &mut Vec<Check>) {
    let section = Section::PostCall;
    let url = expected.shown_url(POST_CALL_PATH);
    let create = format!(
        "ElevenLabs → Settings → Webhooks → Create webhook: URL {url}, authentication HMAC; set the secret it shows as ELEVENLABS_POST_CALL_KEY;\nthen Agents platform settings → Post-call webhook: choose it, with transcript events"
    );
    let settings = wiring.post_call();
    let Some(id) = settings.and_then(|s| s.post_call_webhook_id.as_deref()) else {
        checks.push(Check {
            section,
            item: "post-call webhook chosen",
            verdict: Verdict::Fail,
            detail: "no post-call webhook is set: Recall never learns from a call".to_owned(),
            fix: Some(create),
        });
        return;
    };
    let events = settings.and_then(|s| s.events.as_ref());
    let transcripts = events.is_none_or(|e| e.iter().any(|e| e == "transcript"));
    checks.push(Check {
        section,
        item: "transcript events",
        verdict: if transcripts {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: match events {
            None => "sent (the default)".to_owned(),
            Some(e) if transcripts => format!("sent (events: {})", e.join(", ")),
            Some(e) => format!(
                "not sent (events: {}): Recall learns from transcripts",
                if e.is_empty() {
                    "none".to_owned()
                } else {
                    e.join(", ")
                }
            ),
        },
        fix: (!transcripts).then(|| {
            "Agents platform settings → Post-call webhook: enable transcript events".to_owned()
        }),
    });
    let Some(webhooks) = &wiring.webhooks else {
        checks.push(Check {
            section,
            item: "post-call webhook",
            verdict: Verdict::Unknown,
            detail: format!(
                "webhook {id} is chosen, but this API key may not read the workspace's webhooks: check its URL ({url}) and HMAC authentication in Settings → Webhooks"
            ),
            fix: None,
        });
        return;
    };
    let Some(webhook) = webhooks.iter().find(|w| w.webhook_id == id) else {
        checks.push(Check {
            section,
            item: "post-call webhook",
            verdict: Verdict::Fail,
            detail: format!("the chosen webhook {id} does not exist any more"),
            fix: Some(create),
        });
        return;
    };
    let url_result = url_verdict(&webhook.webhook_url, POST_CALL_PATH, expected);
    checks.push(Check {
        section,
        item: "post-call URL",
        verdict: if url_result.is_ok() { Verdict::Pass } else { Verdict::Fail },
        detail: match &url_result {
            Ok(()) => format!("{} (\"{}\")", webhook.webhook_url, webhook.name),
            Err(why) => why.clone(),
        },
        fix: url_result.is_err().then(|| {
            format!(
                "Settings → Webhooks → \"{}\": set the URL to {url} (or create a webhook with it and choose it)",
                webhook.name
            )
        }),
    });
    let enabled = !webhook.is_disabled && !webhook.is_auto_disabled;
    let mut detail = if webhook.is_auto_disabled {
        "disabled by ElevenLabs after failed deliveries".to_owned()
    } else if webhook.is_disabled {
        "disabled".to_owned()
    } else {
        "enabled".to_owned()
    };
    if let Some(code) = webhook.most_recent_failure_error_code {
        let _ = write!(detail, "; the last failed delivery got {code}");
        if let Some(at) = webhook
            .most_recent_failure_timestamp
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute] UTC"
                ))
                .ok()
            })
        {
            let _ = write!(detail, " at {at}");
        }
    }
    checks.push(Check {
        section,
        item: "post-call enabled",
        verdict: if enabled { Verdict::Pass } else { Verdict::Fail },
        detail,
        fix: (!enabled).then(|| {
            format!(
                "fix what made deliveries fail (Recall's log says why it refused them), then Settings → Webhooks → \"{}\": enable it. Events refused meanwhile can be fetched with `recall import --since <when it failed>`",
                webhook.name
            )
        }),
    });
    let hmac = webhook
        .auth_type
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case("hmac"));
    let (verdict, detail) = match (hmac, expected.post_call_key_set) {
        (true, true) => (
            Verdict::Unknown,
            "HMAC is on and Recall has ELEVENLABS_POST_CALL_KEY; the API does not show the secret: make sure it is the one ElevenLabs showed for this webhook".to_owned(),
        ),
        (true, false) => (
            Verdict::Fail,
            "HMAC is on, but Recall has no ELEVENLABS_POST_CALL_KEY to check it with".to_owned(),
        ),
        (false, _) => (
            Verdict::Fail,
            format!(
                "authentication is {}, not HMAC: Recall checks the ElevenLabs-Signature header",
                webhook.auth_type.as_deref().unwrap_or("not set")
            ),
        ),
    };
    checks.push(Check {
        section,
        item: "HMAC secret",
        verdict,
        detail,
        fix: (verdict == Verdict::Fail).then_some(create),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_found_with_or_without_spaces() {
        assert!(uses_variable("Hi {{user_name}}!", "user_name"));
        assert!(uses_variable("Hi {{ user_name }}!", "user_name"));
        assert!(!uses_variable("Hi {{user_name_x}}", "user_name"));
        assert!(!uses_variable("Hi user_name", "user_name"));
        assert!(!uses_variable("{{user_name", "user_name"));
        assert!(uses_variable(
            "{{a}} then {{last_call_summary}}",
            "last_call_summary"
        ));
    }

    #[test]
    fn paths_are_read_from_urls() {
        assert_eq!(
            path_of("https://h.example/webhook/search-data?x=1"),
            "/webhook/search-data"
        );
        assert_eq!(
            path_of("https://h.example/recall/webhook/post-call/"),
            "/recall/webhook/post-call"
        );
        assert_eq!(path_of("https://h.example"), "");
    }
}
