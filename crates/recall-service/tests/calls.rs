//! Greet and search, and the whole call lifecycle.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use recall_model::{DynamicValue, MemorySector, NoIdentity};
use recall_service::{GreetFallback, GreetOutcome, SearchError, ServiceConfig};
use serde_json::json;

#[tokio::test]
async fn a_caller_is_remembered_from_one_call_to_the_next() {
    let h = Harness::new();

    // First call: nobody knows her.
    let first = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(first.outcome, GreetOutcome::NewCaller);
    assert_eq!(first.response.dynamic_variables.user_name, "");
    assert_eq!(first.response.dynamic_variables.last_call_summary, "");
    assert_eq!(first_message(&first.response), None);

    // After the call: her name and what the call was about.
    let call = Call::new("conv_first", MARGARET)
        .fact("first_name", "Margaret")
        .fact("email", json!(null))
        .summary(
            "Margaret asked to move her dental check-up from Tuesday to Friday morning.",
            "moving your check-up",
        );
    remember(&h.service, &call).await;

    // Second call: greeted by name, with the last call mentioned.
    let second = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(
        second.outcome,
        GreetOutcome::Recognised {
            named: true,
            last_call: true
        }
    );
    let vars = &second.response.dynamic_variables;
    assert_eq!(vars.user_name, "Margaret");
    assert_eq!(vars.user_profile_summary, "first_name: Margaret");
    assert!(vars.last_call_summary.contains("Friday morning"));
    let greeting = first_message(&second.response).unwrap();
    assert!(greeting.contains("Margaret"), "{greeting}");
    assert!(greeting.contains("moving your check-up"), "{greeting}");

    // During the call, the agent's memory tool finds it.
    let found = h
        .service
        .search(&asking(MARGARET, "when is the dental check-up"))
        .await
        .unwrap();
    let profile = found.profile.unwrap();
    assert_eq!(profile.name.as_deref(), Some("Margaret"));
    assert_eq!(profile.phone_number.unwrap().as_str(), MARGARET);
    let top = &found.memories[0];
    assert!(top.content.contains("Friday morning"));
    assert_eq!(top.sector, MemorySector::Episodic);
    assert_eq!(top.timestamp.unwrap().as_secs(), 1_739_537_297);
}

#[tokio::test]
async fn withheld_and_malformed_callers_get_defaults_without_memory_access() {
    let h = Harness::new();
    // A store that would fail any access proves none happens.
    h.store.set_unavailable(true);
    for (raw, reason) in [
        ("anonymous", NoIdentity::Withheld),
        ("+266696687", NoIdentity::Withheld),
        ("{{system__caller_id}}", NoIdentity::Placeholder),
        ("", NoIdentity::Missing),
        ("0612345678", NoIdentity::Malformed),
    ] {
        let g = h.service.greet(&ringing(raw, "agent_front_desk")).await;
        assert_eq!(g.outcome, GreetOutcome::NoIdentity(reason), "{raw}");
        assert_eq!(g.response.dynamic_variables.user_name, "");
        assert_eq!(first_message(&g.response), None);
    }
    assert_eq!(h.service.stats().store_errors(), 0);
    assert_eq!(h.service.stats().greeting_fallbacks(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_store_gives_the_default_greeting_within_the_budget() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET).fact("first_name", "Margaret"),
    )
    .await;
    h.store.set_latency(Duration::from_secs(10));
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(
        g.outcome,
        GreetOutcome::Fallback(GreetFallback::Timeout(Duration::from_millis(300)))
    );
    assert_eq!(g.response.dynamic_variables.user_name, "");
    assert_eq!(first_message(&g.response), None);
    assert_eq!(h.service.stats().greeting_fallbacks(), 1);

    // Within the budget, the same store is fine.
    h.store.set_latency(Duration::from_millis(100));
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(g.response.dynamic_variables.user_name, "Margaret");
}

#[tokio::test]
async fn a_store_that_is_down_gives_the_default_greeting() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET).fact("first_name", "Margaret"),
    )
    .await;
    h.store.set_unavailable(true);
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert!(matches!(
        g.outcome,
        GreetOutcome::Fallback(GreetFallback::Store(_))
    ));
    assert!(g.outcome.is_fallback());
    assert_eq!(g.response.dynamic_variables.user_name, "");
    assert_eq!(h.service.stats().greeting_fallbacks(), 1);
    assert_eq!(h.service.stats().store_errors(), 1);
    assert!(h.service.ready().await.is_err());
    h.store.set_unavailable(false);
    assert!(h.service.ready().await.is_ok());
}

#[tokio::test]
async fn greetings_use_the_agents_template_and_the_configured_extras() {
    let config = ServiceConfig {
        greeting_templates: BTreeMap::from([(
            "agent_clinic".to_owned(),
            "Welcome back to the clinic, {{user_name}}. {{clinic_name}} here.".to_owned(),
        )]),
        default_greeting: None,
        extra_dynamic_variables: BTreeMap::from([(
            "clinic_name".to_owned(),
            "Northside Dental".to_owned(),
        )]),
        ..ServiceConfig::default()
    };
    config.validate().unwrap();
    let h = Harness::with_config(config);
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET).fact("name", "Margaret"),
    )
    .await;

    let clinic = h.service.greet(&ringing(MARGARET, "agent_clinic")).await;
    assert_eq!(
        first_message(&clinic.response).as_deref(),
        Some("Welcome back to the clinic, Margaret. Northside Dental here.")
    );
    assert_eq!(
        clinic.response.dynamic_variables.extra.get("clinic_name"),
        Some(&DynamicValue::from("Northside Dental"))
    );
    // Without a default template, other agents get no override.
    let other = h.service.greet(&ringing(MARGARET, "agent_sales")).await;
    assert_eq!(other.response.dynamic_variables.user_name, "Margaret");
    assert_eq!(first_message(&other.response), None);

    // Extras are sent to unknown callers too.
    let unknown = h.service.greet(&ringing("anonymous", "agent_clinic")).await;
    assert!(
        unknown
            .response
            .dynamic_variables
            .extra
            .contains_key("clinic_name")
    );
}

#[tokio::test]
async fn without_a_last_call_the_greeting_does_not_pretend_there_was_one() {
    let h = Harness::new();
    // A name but no summary and no words from the caller: no call memory.
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET).fact("first_name", "Margaret"),
    )
    .await;
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    let msg = first_message(&g.response).unwrap();
    assert!(msg.contains("Margaret"));
    assert!(!msg.contains("Last time"), "{msg}");
    assert!(!msg.contains("{{"), "{msg}");
}

#[tokio::test]
async fn the_last_call_prefers_the_same_agent_when_configured() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_a", MARGARET)
            .agent("agent_clinic")
            .start(1_700_000_000)
            .summary("Booked a cleaning.", "your cleaning"),
    )
    .await;
    remember(
        &h.service,
        &Call::new("conv_b", MARGARET)
            .agent("agent_billing")
            .start(1_700_100_000)
            .summary("Asked about an invoice.", "your invoice"),
    )
    .await;
    let g = h.service.greet(&ringing(MARGARET, "agent_clinic")).await;
    assert_eq!(
        g.response.dynamic_variables.last_call_summary,
        "Booked a cleaning."
    );
    // An agent she never called gets her newest call.
    let g = h.service.greet(&ringing(MARGARET, "agent_new")).await;
    assert_eq!(
        g.response.dynamic_variables.last_call_summary,
        "Asked about an invoice."
    );

    let config = ServiceConfig {
        last_call_same_agent: false,
        ..ServiceConfig::default()
    };
    let any = recall_service::Service::new(
        std::sync::Arc::new(h.store.clone()),
        recall_service::PayloadStore::open(h.dir.path()).unwrap(),
        config,
    );
    let g = any.greet(&ringing(MARGARET, "agent_clinic")).await;
    assert_eq!(
        g.response.dynamic_variables.last_call_summary,
        "Asked about an invoice."
    );
}

#[tokio::test]
async fn search_reads_only_the_callers_own_memories() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_m", MARGARET).summary("Talked about her dog Biscuit.", "Biscuit"),
    )
    .await;
    remember(
        &h.service,
        &Call::new("conv_b", BOB).summary("Talked about his dog Rex.", "Rex"),
    )
    .await;
    let found = h.service.search(&asking(BOB, "dog")).await.unwrap();
    assert_eq!(found.memories.len(), 1);
    assert!(found.memories[0].content.contains("Rex"));
}

#[tokio::test]
async fn search_refuses_bad_requests_naming_the_field() {
    let h = Harness::new();
    let err = h
        .service
        .search(&asking("anonymous", "dog"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::InvalidCaller(m) if m.contains("user_id")),
        "{err}"
    );
    let err = h
        .service
        .search(&asking("16129782029", "dog"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::InvalidCaller(m) if m.contains("user_id")),
        "{err}"
    );
    let err = h
        .service
        .search(&asking(MARGARET, "   "))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::InvalidQuery(m) if m.contains("query")),
        "{err}"
    );
    for (field, value) in [
        ("k", json!(0)),
        ("k", json!(2.5)),
        ("k", json!("five")),
        ("min_salience", json!(1.5)),
        ("same_agent_only", json!("yes")),
    ] {
        let mut req = asking(MARGARET, "dog");
        req.extra.insert(field.to_owned(), value);
        let err = h.service.search(&req).await.unwrap_err();
        assert!(
            matches!(&err, SearchError::InvalidQuery(m) if m.starts_with(field)),
            "{err}"
        );
    }
    h.store.set_unavailable(true);
    let err = h
        .service
        .search(&asking(MARGARET, "dog"))
        .await
        .unwrap_err();
    assert!(matches!(err, SearchError::Store(e) if e.is_retryable()));
}

#[tokio::test]
async fn search_sizes_and_scopes_results() {
    let h = Harness::new();
    let mut call = Call::new("conv_1", MARGARET).summary("Talked about the garden roses.", "roses");
    let fields: Vec<String> = (0..25).map(|i| format!("garden_note_{i:02}")).collect();
    for f in &fields {
        call = call.fact(f, "roses in the garden");
    }
    remember(&h.service, &call).await;
    remember(
        &h.service,
        &Call::new("conv_2", MARGARET)
            .agent("agent_other")
            .start(1_739_600_000)
            .summary("Garden centre opening hours.", "garden centre"),
    )
    .await;

    let found = h.service.search(&asking(MARGARET, "garden")).await.unwrap();
    assert_eq!(found.memories.len(), 5, "default k");
    let mut req = asking(MARGARET, "garden");
    req.extra.insert("k".into(), json!(3.0));
    assert_eq!(h.service.search(&req).await.unwrap().memories.len(), 3);
    let mut req = asking(MARGARET, "garden");
    req.extra.insert("k".into(), json!(1000));
    assert_eq!(
        h.service.search(&req).await.unwrap().memories.len(),
        20,
        "capped"
    );

    let mut req = asking(MARGARET, "garden");
    req.extra.insert("k".into(), json!(50));
    req.extra.insert("min_salience".into(), json!(0.8));
    let facts = h.service.search(&req).await.unwrap().memories;
    assert!(!facts.is_empty());
    assert!(facts.iter().all(|m| m.sector == MemorySector::Semantic));

    let mut req = asking(MARGARET, "garden");
    req.agent_id = Some("agent_other".into());
    req.extra.insert("same_agent_only".into(), json!(true));
    let theirs = h.service.search(&req).await.unwrap().memories;
    assert_eq!(theirs.len(), 1);
    assert!(theirs[0].content.contains("opening hours"));
}

#[tokio::test]
async fn an_extra_variable_cannot_shadow_recalls_own() {
    // An invalid configuration (validate refuses it) used anyway.
    let config = ServiceConfig {
        extra_dynamic_variables: BTreeMap::from([("user_name".to_owned(), "Admin".to_owned())]),
        ..ServiceConfig::default()
    };
    assert!(config.validate().is_err());
    let h = Harness::with_config(config);
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET).fact("first_name", "Margaret"),
    )
    .await;
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    let json = serde_json::to_string(&g.response).unwrap();
    assert_eq!(json.matches("\"user_name\"").count(), 1, "{json}");
    assert!(json.contains("\"user_name\":\"Margaret\""), "{json}");
}

#[tokio::test]
async fn the_last_call_is_the_latest_by_call_time_whatever_the_arrival_order() {
    let h = Harness::new();
    // The newest call is delivered first; an older one arrives later (a
    // late retry, or history imported afterwards).
    remember(
        &h.service,
        &Call::new("conv_new", MARGARET)
            .start(1_700_500_000)
            .summary(
                "Asked to move the cleaning to Friday.",
                "moving your cleaning",
            ),
    )
    .await;
    remember(
        &h.service,
        &Call::new("conv_old", MARGARET)
            .start(1_700_000_000)
            .summary("Booked a cleaning for Tuesday.", "booking a cleaning"),
    )
    .await;
    let g = h
        .service
        .greet(&ringing(MARGARET, "agent_front_desk"))
        .await;
    assert_eq!(
        g.response.dynamic_variables.last_call_summary,
        "Asked to move the cleaning to Friday."
    );
    // The memory tool agrees on what "the last call" was.
    let found = h
        .service
        .search(&asking(MARGARET, "what was her most recent call about"))
        .await
        .unwrap();
    assert_eq!(
        found.memories[0].content,
        "Asked to move the cleaning to Friday."
    );
    let found = h
        .service
        .search(&asking(MARGARET, "the first time she called"))
        .await
        .unwrap();
    assert_eq!(found.memories[0].content, "Booked a cleaning for Tuesday.");
}

#[tokio::test]
async fn the_memory_tool_answers_the_best_it_has_with_scores() {
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET)
            .fact("first_name", "Margaret")
            .summary(
                "Margaret asked how to treat black spot on her roses.",
                "roses",
            ),
    )
    .await;
    // Nothing in common with the question: still the caller's memories,
    // each with a score from 0 to 1, the strong match first elsewhere.
    for query in [
        "what about the invoice",
        "🌹🌹🌹",
        "¿qué pasó con sus flores?",
    ] {
        let found = h.service.search(&asking(MARGARET, query)).await.unwrap();
        assert_eq!(found.memories.len(), 2, "{query}");
        assert!(
            found
                .memories
                .iter()
                .all(|m| m.score.is_some_and(|s| (0.0..=1.0).contains(&s))),
            "{query}: {:?}",
            found.memories
        );
    }
    let found = h
        .service
        .search(&asking(MARGARET, "black spot roses"))
        .await
        .unwrap();
    assert!(found.memories[0].content.contains("black spot"));
    assert!(found.memories[0].score.unwrap() > found.memories[1].score.unwrap());
}

#[tokio::test]
async fn memories_stored_without_embeddings_are_backfilled_and_then_found_by_meaning() {
    use recall_memory::MemoryStore;
    use std::sync::Arc;
    // Written by a service without an embedder (an older version).
    let h = Harness::new();
    remember(
        &h.service,
        &Call::new("conv_1", MARGARET)
            .fact("first_name", "Margaret")
            .summary(
                "Margaret asked how to treat black spot on her roses.",
                "roses",
            ),
    )
    .await;
    let model = Arc::new(WordEmbedder::default());
    let backlog = h
        .store
        .embedding_backlog(recall_memory::Embedder::tag(model.as_ref()), None, 10)
        .await
        .unwrap();
    assert_eq!(backlog.tasks.len(), 2);

    // The new version starts with an embedder: the backfill embeds both,
    // once; a second run has nothing left to do.
    let service = recall_service::Service::builder(
        Arc::new(h.store.clone()),
        recall_service::PayloadStore::open(h.dir.path()).unwrap(),
    )
    .embedder(model.clone())
    .build();
    let report = service.backfill_embeddings().await.unwrap();
    assert_eq!(report.embedded, 2);
    assert_eq!(service.backfill_embeddings().await.unwrap().embedded, 0);

    // A question sharing no word with the memory finds it by meaning.
    let found = service.search(&asking(MARGARET, "flowers")).await.unwrap();
    assert!(
        found.memories[0].content.contains("black spot"),
        "{found:?}"
    );
    assert!(found.memories[0].score.unwrap() > 0.0);
}
