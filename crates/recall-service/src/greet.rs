//! Greet: the client-data webhook, while the phone rings.

use std::time::Duration;

use recall_memory::{ErrorChain, ListRequest, Memory, MemoryError, MemoryFilter, UserProfile};
use recall_model::{
    AgentId, ClientDataRequest, ClientDataResponse, DynamicValue, DynamicVariables, MemorySector,
    NoIdentity, PhoneNumber,
};

use crate::Service;
use crate::config::RESERVED_VARIABLES;

/// The answer to the client-data webhook and what happened.
#[derive(Clone, PartialEq, Debug)]
pub struct Greeting {
    /// What to send to ElevenLabs (always a valid answer).
    pub response: ClientDataResponse,
    /// How it was made.
    pub outcome: GreetOutcome,
}

/// How a greeting was made.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum GreetOutcome {
    /// The caller is known: their memories were read.
    Recognised {
        /// Whether their name is known (and a `first_message` may be set).
        named: bool,
        /// Whether a last call was found.
        last_call: bool,
    },
    /// A valid number with no memories yet.
    NewCaller,
    /// No usable caller id: nothing was read.
    NoIdentity(NoIdentity),
    /// The store was slow or failing: the defaults were sent.
    Fallback(GreetFallback),
}

/// Why a greeting fell back to the defaults.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum GreetFallback {
    /// The store did not answer within the budget.
    Timeout(Duration),
    /// The store failed; the error's text.
    Store(String),
}

impl GreetOutcome {
    /// A short label for logs and metrics: `recognised`, `new_caller`,
    /// `no_identity`, `timeout` or `store_error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Recognised { .. } => "recognised",
            Self::NewCaller => "new_caller",
            Self::NoIdentity(_) => "no_identity",
            Self::Fallback(GreetFallback::Timeout(_)) => "timeout",
            Self::Fallback(GreetFallback::Store(_)) => "store_error",
        }
    }

    /// Whether the defaults were sent because the store let us down.
    pub fn is_fallback(&self) -> bool {
        matches!(self, Self::Fallback(_))
    }
}

/// What the store knows for a greeting.
struct Known {
    profile: UserProfile,
    last_call: Option<Memory>,
}

/// Replaces `{{name}}` placeholders (spaces inside the braces allowed).
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `template` uses `{{name}}`.
fn mentions(template: &str, name: &str) -> bool {
    render(template, &[(name, "\u{0}")]).contains('\u{0}')
}

impl Service {
    /// Answers the client-data webhook: dynamic variables (always
    /// `user_name`, `user_profile_summary`, `last_call_summary` and the
    /// configured extras) and, for a known caller with a name, a
    /// `first_message` from the agent's template.
    ///
    /// Never fails: an unknown or withheld caller gets the defaults without
    /// any memory access; a store that fails or does not answer within
    /// [`greet_budget`](crate::ServiceConfig::greet_budget) also gets the
    /// defaults, and the reason is in the outcome, the
    /// `greeting_fallbacks` counter and a warning.
    #[tracing::instrument(name = "greet", skip_all, fields(agent_id = req.agent_id.as_deref().unwrap_or("")))]
    pub async fn greet(&self, req: &ClientDataRequest) -> Greeting {
        let config = self.config();
        let mut vars = DynamicVariables::default();
        // `validate` refuses extras named like Recall's own three; skip
        // them anyway so a response never carries a key twice.
        for (k, v) in &config.extra_dynamic_variables {
            if !RESERVED_VARIABLES.contains(&k.as_str()) {
                vars.extra
                    .insert(k.clone(), DynamicValue::String(v.clone()));
            }
        }
        let caller = match req.caller() {
            Ok(caller) => caller,
            Err(reason) => {
                tracing::debug!(
                    reason = reason.as_str(),
                    "no caller identity: default greeting"
                );
                return Greeting {
                    response: ClientDataResponse::new(vars),
                    outcome: GreetOutcome::NoIdentity(reason),
                };
            }
        };
        let agent = req.agent().ok();
        let lookup = self.lookup(&caller, agent.as_ref());
        let known = match tokio::time::timeout(config.greet_budget, lookup).await {
            Ok(Ok(known)) => known,
            Ok(Err(e)) => {
                self.stats().add_store_error();
                self.stats().add_greeting_fallback();
                tracing::warn!(caller = %caller.masked(), error = %ErrorChain(&e), "memory store failed: default greeting");
                return Greeting {
                    response: ClientDataResponse::new(vars),
                    outcome: GreetOutcome::Fallback(GreetFallback::Store(e.to_string())),
                };
            }
            Err(_) => {
                self.stats().add_greeting_fallback();
                tracing::warn!(
                    caller = %caller.masked(),
                    budget_ms = config.greet_budget.as_millis() as u64,
                    "memory store too slow: default greeting"
                );
                return Greeting {
                    response: ClientDataResponse::new(vars),
                    outcome: GreetOutcome::Fallback(GreetFallback::Timeout(config.greet_budget)),
                };
            }
        };

        let name = known.profile.name.clone().unwrap_or_default();
        let last_summary = known
            .last_call
            .as_ref()
            .map(|m| m.content.trim().to_owned())
            .unwrap_or_default();
        let last_title = known
            .last_call
            .as_ref()
            .and_then(|m| m.metadata.get("title"))
            .and_then(|t| t.as_str())
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        vars.user_name = name.clone();
        vars.user_profile_summary = known.profile.summary.clone().unwrap_or_default();
        vars.last_call_summary = last_summary.clone();

        if known.profile.memory_count == 0 && known.last_call.is_none() {
            return Greeting {
                response: ClientDataResponse::new(vars),
                outcome: GreetOutcome::NewCaller,
            };
        }

        let mut response = ClientDataResponse::new(vars.clone());
        if !name.trim().is_empty()
            && let Some(template) = config.template_for(agent.as_ref())
        {
            let missing_last_call = (mentions(template, "last_call_summary")
                && last_summary.is_empty())
                || (mentions(template, "last_call_title") && last_title.is_empty());
            let template = if missing_last_call {
                config.greeting_without_last_call.as_str()
            } else {
                template
            };
            let mut values: Vec<(&str, &str)> = vec![
                ("user_name", name.trim()),
                ("user_profile_summary", vars.user_profile_summary.as_str()),
                ("last_call_summary", last_summary.as_str()),
                ("last_call_title", last_title.as_str()),
            ];
            for (k, v) in &config.extra_dynamic_variables {
                values.push((k.as_str(), v.as_str()));
            }
            response = response.with_first_message(render(template, &values));
        }
        tracing::debug!(caller = %caller.masked(), named = !name.is_empty(), "caller recognised");
        Greeting {
            response,
            outcome: GreetOutcome::Recognised {
                named: !name.trim().is_empty(),
                last_call: known.last_call.is_some(),
            },
        }
    }

    /// The caller's profile (cross-agent) and last call: the newest call
    /// memory, preferring the same agent when configured. The profile and
    /// the preferred call are read together (one round trip on stores
    /// that can); the other agents' calls only when that finds none.
    async fn lookup(
        &self,
        caller: &PhoneNumber,
        agent: Option<&AgentId>,
    ) -> Result<Known, MemoryError> {
        let store = self.store();
        let mut any_agent = ListRequest::first(1);
        any_agent.filter = MemoryFilter {
            sector: Some(MemorySector::Episodic),
            ..MemoryFilter::default()
        };
        let same_agent = agent
            .filter(|_| self.config().last_call_same_agent)
            .map(|agent| {
                let mut same = any_agent.clone();
                same.filter.agent_id = Some(agent.clone());
                same
            });
        let (profile, page) = store
            .list_with_profile(caller, same_agent.as_ref().unwrap_or(&any_agent))
            .await?;
        let mut last_call = page.items.into_iter().next();
        if last_call.is_none() && same_agent.is_some() && profile.memory_count > 0 {
            last_call = store
                .list(caller, &any_agent)
                .await?
                .items
                .into_iter()
                .next();
        }
        Ok(Known { profile, last_call })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_replaces_known_names_and_keeps_others() {
        let out = render(
            "Hi {{user_name}}, {{ last_call_title }} {{other}} {{unclosed",
            &[
                ("user_name", "Margaret"),
                ("last_call_title", "your booking"),
            ],
        );
        assert_eq!(out, "Hi Margaret, your booking {{other}} {{unclosed");
    }

    #[test]
    fn mentions_finds_placeholders() {
        assert!(mentions("Hi {{ last_call_summary }}", "last_call_summary"));
        assert!(!mentions("Hi {{user_name}}", "last_call_summary"));
    }
}
