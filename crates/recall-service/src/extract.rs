//! From a `post_call_transcription` event to memories: what the caller
//! told the agent (profile facts) and what the call was about. Who called
//! is decided by [`PostCallData::caller`], Recall's one caller rule.

use recall_memory::{Fact, FactKey, IdempotencyKey, NewMemory};
use recall_model::{
    ConversationId, DecayLambda, FieldProblem, MemorySector, PostCallData, Salience,
    TranscriptRole, UnixTimestamp,
};
use serde_json::Value;

use crate::ServiceConfig;

/// Metadata key of the time (unix seconds) a memory's call happened, kept
/// with the memory whatever a store does with `created_at` (the stores
/// compare facts' times themselves: `AddOutcome::Outdated`).
pub(crate) const LEARNT_AT: &str = "learnt_at";

/// The longest fact value kept, in characters.
const MAX_FACT_CHARS: usize = 2_000;

/// The longest call summary kept as a memory, in characters (at most
/// 32 KiB of UTF-8, well inside a memory's 64 KiB). The stored event
/// keeps the whole text.
pub(crate) const MAX_SUMMARY_CHARS: usize = 8_000;

/// A data-collection value as text; `None` for null or blank.
fn fact_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.trim().to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if a.is_empty() => return None,
        Value::Object(o) if o.is_empty() => return None,
        other => other.to_string(),
    };
    if text.is_empty() {
        return None;
    }
    Some(truncate(&text, MAX_FACT_CHARS))
}

/// The length in characters of a value's text before shortening.
fn fact_text_len(value: &Value) -> usize {
    match value {
        Value::String(s) => s.trim().chars().count(),
        other => other.to_string().chars().count(),
    }
}

/// At most `max` characters, with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The memories a call leaves: one permanent semantic fact per non-null
/// data-collection result, and one episodic memory of the call (its
/// summary, else a digest of the caller's own words). What had to be
/// shortened is added to `problems`.
pub(crate) fn call_memories(
    data: &PostCallData,
    conversation: &ConversationId,
    event_time: Option<UnixTimestamp>,
    config: &ServiceConfig,
    problems: &mut Vec<FieldProblem>,
) -> Vec<NewMemory> {
    let agent = data.agent().ok();
    let occurred = data.start_time().or(event_time);
    let stamp = |mut m: NewMemory| {
        m = m.conversation(conversation.clone());
        if let Some(agent) = &agent {
            m = m.agent(agent.clone());
        }
        if let Some(at) = occurred {
            m = m.occurred_at(at).meta(LEARNT_AT, at.as_secs());
        }
        m
    };
    let mut out = Vec::new();

    for (field, result) in data.data_collection_results() {
        let Some(value) = fact_text(&result.value) else {
            continue;
        };
        if value.chars().count() == MAX_FACT_CHARS && fact_text_len(&result.value) > MAX_FACT_CHARS
        {
            problems.push(FieldProblem::new(
                format!("data.analysis.data_collection_results.{field}.value"),
                format!("longer than {MAX_FACT_CHARS} characters: shortened"),
            ));
        }
        let (Ok(key), Ok(idempotency)) = (
            FactKey::new(field),
            IdempotencyKey::new(format!("{conversation}/fact/{field}")),
        ) else {
            tracing::warn!(%conversation, field, "data-collection field id unusable as a key: skipped");
            continue;
        };
        let memory = NewMemory::new(format!("Caller's {field}: {value}"), MemorySector::Semantic)
            .salience(Salience::HIGH)
            .decay(DecayLambda::PERMANENT)
            .tag("profile")
            .tag(field)
            .meta("source", "data_collection")
            .meta("field_id", field)
            .fact(Fact {
                key,
                value,
                is_name: config.is_name_field(field),
            })
            .idempotency_key(idempotency);
        out.push(stamp(memory));
    }

    let analysis = data.analysis.as_ref();
    let (content, source) = match data.transcript_summary() {
        Some(summary) => {
            let summary = summary.trim();
            if summary.chars().count() > MAX_SUMMARY_CHARS {
                problems.push(FieldProblem::new(
                    "data.analysis.transcript_summary",
                    format!(
                        "longer than {MAX_SUMMARY_CHARS} characters ({} bytes): shortened",
                        summary.len()
                    ),
                ));
            }
            (truncate(summary, MAX_SUMMARY_CHARS), "transcript_summary")
        }
        None => {
            let said: Vec<String> = data
                .transcript
                .iter()
                .filter(|turn| turn.role == TranscriptRole::User)
                .filter_map(|turn| turn.message.as_deref())
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| format!("\u{201c}{m}\u{201d}"))
                .collect();
            if said.is_empty() {
                (String::new(), "")
            } else {
                (
                    truncate(
                        &format!("The caller said: {}", said.join(" ")),
                        config.caller_digest_max_chars,
                    ),
                    "caller_turns",
                )
            }
        }
    };
    if !content.is_empty()
        && let Ok(idempotency) = IdempotencyKey::new(format!("{conversation}/call"))
    {
        let mut memory = NewMemory::new(content, MemorySector::Episodic)
            .salience(Salience::MEDIUM)
            .tag("call")
            .meta("source", source)
            .idempotency_key(idempotency);
        if let Some(title) = analysis
            .and_then(|a| a.call_summary_title.as_deref())
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            memory = memory.meta("title", title);
        }
        memory = memory.meta("agent_id", data.agent_id.as_str());
        if let Some(name) = data.agent_name.as_deref() {
            memory = memory.meta("agent_name", name);
        }
        if let Some(start) = data.start_time() {
            memory = memory.meta("started_at", start.as_secs());
        }
        if let Some(duration) = data.call_duration_secs() {
            memory = memory.meta("duration_secs", duration);
        }
        if let Some(outcome) = analysis.and_then(|a| a.call_successful.as_deref()) {
            memory = memory.meta("call_successful", outcome);
        }
        out.push(stamp(memory));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> PostCallData {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn facts_are_permanent_high_salience_and_keyed_by_field() {
        let d = data(
            r#"{"agent_id":"a","conversation_id":"c",
            "analysis":{"data_collection_results":{
              "first_name":{"data_collection_id":"first_name","value":"Margaret"},
              "email":{"data_collection_id":"email","value":null},
              "age":{"data_collection_id":"age","value":71},
              "blank":{"data_collection_id":"blank","value":"  "}}}}"#,
        );
        let conv = ConversationId::parse("c").unwrap();
        let m = call_memories(&d, &conv, None, &ServiceConfig::default(), &mut Vec::new());
        assert_eq!(m.len(), 2, "null and blank values are not facts");
        let age = &m[0];
        assert_eq!(age.content, "Caller's age: 71");
        assert!(!age.fact.as_ref().unwrap().is_name);
        let name = &m[1];
        assert_eq!(name.content, "Caller's first_name: Margaret");
        assert_eq!(name.sector, MemorySector::Semantic);
        assert_eq!(name.salience, Salience::HIGH);
        assert_eq!(name.decay_lambda, Some(DecayLambda::PERMANENT));
        assert!(name.tags.contains(&"first_name".to_owned()));
        let fact = name.fact.as_ref().unwrap();
        assert_eq!(
            (fact.key.as_str(), fact.value.as_str(), fact.is_name),
            ("first_name", "Margaret", true)
        );
        assert_eq!(
            name.idempotency_key.as_ref().unwrap().as_str(),
            "c/fact/first_name"
        );
    }

    #[test]
    fn without_a_summary_only_the_callers_words_are_kept() {
        let d = data(
            r#"{"agent_id":"a","conversation_id":"c","transcript":[
              {"role":"agent","message":"Hi, this is Margaret from the clinic."},
              {"role":"user","message":"I need to move my appointment."},
              {"role":"user","message":null}]}"#,
        );
        let conv = ConversationId::parse("c").unwrap();
        let m = call_memories(&d, &conv, None, &ServiceConfig::default(), &mut Vec::new());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].sector, MemorySector::Episodic);
        assert!(m[0].content.contains("move my appointment"));
        assert!(!m[0].content.contains("Margaret"));
        assert_eq!(m[0].idempotency_key.as_ref().unwrap().as_str(), "c/call");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
