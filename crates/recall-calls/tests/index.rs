//! The call index against the real ElevenLabs fixtures.

use std::path::Path;

use recall_calls::SqliteCallIndex;
use recall_model::ui::{CallAnalytics, Speaker};
use recall_model::{
    AgentId, ConversationId, PhoneNumber, PostCallData, PostCallWebhookRequest, UnixTimestamp,
};
use recall_service::{
    AnalyticsQuery, CallIndex, CallIndexError, CallQuery, IndexedCall, MAX_CALL_PAGE,
    ProcessedEvent,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/elevenlabs")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn phone(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw).unwrap()
}

fn conv(raw: &str) -> ConversationId {
    ConversationId::parse(raw).unwrap()
}

/// The transcription fixture as another call: its own id, caller, start
/// time, outcome and collected data.
fn transcription(id: &str, caller: Option<&str>, start: i64, outcome: &str) -> Value {
    let mut event = fixture("post_call_transcription.docs-example.json");
    let data = &mut event["data"];
    data["conversation_id"] = json!(id);
    data["metadata"]["start_time_unix_secs"] = json!(start);
    data["analysis"]["call_successful"] = json!(outcome);
    data["analysis"]["data_collection_results"] = json!({
        "first_name": {"data_collection_id": "first_name", "value": "Angelo", "rationale": "said so"},
        "plan": {"data_collection_id": "plan", "value": null}
    });
    if let Some(caller) = caller {
        data["conversation_initiation_client_data"]["dynamic_variables"]["system__caller_id"] =
            json!(caller);
    }
    event
}

/// A raw event as the service hands it to the index once processed:
/// typed, its caller decided by the one caller rule.
fn processed(event: &Value) -> ProcessedEvent {
    let (request, _) = PostCallWebhookRequest::from_value_tolerant(event.clone()).unwrap();
    let id = request.data.conversation_id().unwrap().to_owned();
    ProcessedEvent::from_request(conv(&id), request)
}

/// [`processed`], attributed to `caller` whatever the event says.
fn for_caller(event: &Value, caller: Option<&PhoneNumber>) -> ProcessedEvent {
    ProcessedEvent {
        caller: caller.cloned(),
        ..processed(event)
    }
}

async fn open() -> (tempfile::TempDir, SqliteCallIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = SqliteCallIndex::open(dir.path().join("calls.db"))
        .await
        .unwrap();
    (dir, index)
}

/// The call `id` as listed.
async fn listed(index: &SqliteCallIndex, id: &str) -> IndexedCall {
    let page = index.list_calls(CallQuery::default()).await.unwrap();
    page.items
        .into_iter()
        .find(|c| c.call.conversation_id == id)
        .unwrap_or_else(|| panic!("{id} is not listed"))
}

#[tokio::test]
async fn a_transcription_fixture_is_listed_and_shown_with_its_transcript() {
    let (_dir, index) = open().await;
    let event = fixture("post_call_transcription.docs-example.json");
    index
        .record(&for_caller(&event, Some(&phone("+16129782029"))))
        .await
        .unwrap();

    let page = index.list_calls(CallQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let listed = &page.items[0];
    let call = &listed.call;
    assert_eq!(call.conversation_id, "abc");
    assert_eq!(call.agent_id, "xyz");
    assert_eq!(call.status, "done");
    assert_eq!(call.duration, Some(22.0));
    assert_eq!(call.cost, Some(296.0));
    assert_eq!(call.successful, Some(true));
    assert_eq!(listed.start_time.as_secs(), 1_739_537_297);
    assert!(
        call.summary
            .as_deref()
            .unwrap()
            .starts_with("The conversation begins")
    );
    assert_eq!(listed.caller, Some(phone("+16129782029")));
    assert!(!listed.has_audio);
    assert!(!listed.initiation_failed);

    let detail = index.get_call(&conv("abc")).await.unwrap().unwrap();
    assert_eq!(&detail.call, call);
    assert_eq!(detail.start_time, listed.start_time);
    assert_eq!(detail.caller_phone, listed.caller);
    assert!(!detail.has_audio);
    assert_eq!(detail.transcript.len(), 3);
    assert_eq!(detail.transcript[0].role, Speaker::Agent);
    assert_eq!(
        detail.transcript[0].message,
        "Hey there angelo. How are you?"
    );
    assert_eq!(detail.transcript[2].time_in_call_secs, 9.0);
    assert!(detail.transcript.iter().all(|t| !t.interrupted));
    assert_eq!(index.get_call(&conv("nope")).await.unwrap(), None);
}

#[tokio::test]
async fn the_caller_is_the_one_the_rule_decided_and_withheld_ids_are_not_kept() {
    let (_dir, index) = open().await;
    index
        .record(&processed(&transcription(
            "c1",
            Some("+16129782029"),
            100,
            "success",
        )))
        .await
        .unwrap();
    index
        .record(&processed(&transcription(
            "c2",
            Some("anonymous"),
            200,
            "success",
        )))
        .await
        .unwrap();
    let mut inbound = transcription("c3", None, 300, "success");
    inbound["data"]["metadata"]["phone_call"] =
        json!({"type": "twilio", "external_number": "+441111111111", "direction": "inbound"});
    index.record(&processed(&inbound)).await.unwrap();

    let c1 = index.get_call(&conv("c1")).await.unwrap().unwrap();
    assert_eq!(c1.caller_phone, Some(phone("+16129782029")));
    let c2 = index.get_call(&conv("c2")).await.unwrap().unwrap();
    assert_eq!(c2.caller_phone, None);
    let c3 = index.get_call(&conv("c3")).await.unwrap().unwrap();
    assert_eq!(c3.caller_phone, Some(phone("+441111111111")));
}

#[tokio::test]
async fn interruptions_are_kept_and_text_less_turns_left_out() {
    let (_dir, index) = open().await;
    let mut event = transcription("c1", None, 100, "success");
    event["data"]["transcript"][1]["interrupted"] = json!(true);
    event["data"]["transcript"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "agent", "message": null, "tool_calls": [{"name": "search"}]}));
    index.record(&processed(&event)).await.unwrap();
    let detail = index.get_call(&conv("c1")).await.unwrap().unwrap();
    let interrupted: Vec<bool> = detail.transcript.iter().map(|t| t.interrupted).collect();
    assert_eq!(interrupted, [false, true, false]);
}

#[tokio::test]
async fn initiation_failures_are_calls_that_never_connected() {
    let (_dir, index) = open().await;
    index
        .record(&processed(&fixture(
            "call_initiation_failure.twilio.docs-example.json",
        )))
        .await
        .unwrap();
    assert!(listed(&index, "abc").await.initiation_failed);
    let detail = index.get_call(&conv("abc")).await.unwrap().unwrap();
    let call = detail.call;
    assert_eq!(call.status, "failed");
    assert_eq!(call.successful, Some(false));
    assert_eq!(call.duration, None);
    assert_eq!(detail.start_time.as_secs(), 1_759_931_652);
    // Outbound Twilio call: the other party is `To`.
    assert_eq!(detail.caller_phone, Some(phone("+441111111111")));
    assert!(call.title.unwrap().contains("busy"));

    let (_dir2, sip_index) = open().await;
    sip_index
        .record(&processed(&fixture(
            "call_initiation_failure.sip.docs-example.json",
        )))
        .await
        .unwrap();
    let detail = sip_index.get_call(&conv("abc")).await.unwrap().unwrap();
    assert_eq!(detail.caller_phone, Some(phone("+11111111111")));
}

#[tokio::test]
async fn a_failure_never_replaces_a_transcription_but_a_transcription_replaces_a_failure() {
    let (_dir, index) = open().await;
    let failure = fixture("call_initiation_failure.sip.docs-example.json");
    let done = fixture("post_call_transcription.docs-example.json");

    index.record(&processed(&failure)).await.unwrap();
    index.record(&processed(&done)).await.unwrap();
    assert!(!listed(&index, "abc").await.initiation_failed);

    index.record(&processed(&failure)).await.unwrap();
    let call = listed(&index, "abc").await;
    assert!(!call.initiation_failed);
    assert_eq!(call.call.status, "done");
}

#[tokio::test]
async fn redelivered_events_change_nothing() {
    let (_dir, index) = open().await;
    let event = transcription("c1", Some("+16129782029"), 100, "success");
    for _ in 0..3 {
        index.record(&processed(&event)).await.unwrap();
    }
    let analytics = index.analytics(AnalyticsQuery::default()).await.unwrap();
    assert_eq!(analytics.total_calls, 1);
    assert_eq!(analytics.data_collected.len(), 1);
    assert_eq!(analytics.data_collected[0].count, 1);
}

#[tokio::test]
async fn audio_may_arrive_before_or_after_the_transcription() {
    let (_dir, index) = open().await;
    let mut audio = fixture("post_call_audio.docs-example.json");
    audio["data"]["conversation_id"] = json!("early");
    index.record(&processed(&audio)).await.unwrap();
    index
        .record(&processed(&transcription("early", None, 100, "success")))
        .await
        .unwrap();
    index
        .record(&processed(&transcription("late", None, 200, "success")))
        .await
        .unwrap();
    index
        .record(&ProcessedEvent::audio_stored(conv("late")))
        .await
        .unwrap();
    index
        .record(&processed(&transcription("none", None, 300, "success")))
        .await
        .unwrap();

    for (id, expected) in [("early", true), ("late", true), ("none", false)] {
        let detail = index.get_call(&conv(id)).await.unwrap().unwrap();
        assert_eq!(detail.has_audio, expected, "{id}");
        assert_eq!(listed(&index, id).await.has_audio, expected, "{id}");
    }
}

#[tokio::test]
async fn pages_are_newest_first_with_stable_cursors_and_filters() {
    let (_dir, index) = open().await;
    // Two calls share a start time: the conversation id breaks the tie.
    for (id, start) in [("a", 100), ("b", 200), ("c", 200), ("d", 300), ("e", 400)] {
        index
            .record(&processed(&transcription(
                id,
                Some("+16129782029"),
                start,
                "success",
            )))
            .await
            .unwrap();
    }
    index
        .record(&processed(&transcription(
            "other",
            Some("+15550001111"),
            250,
            "failure",
        )))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = index
            .list_calls(CallQuery {
                phone: Some(phone("+16129782029")),
                limit: Some(2),
                cursor: cursor.clone(),
                ..CallQuery::default()
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|c| c.call.conversation_id.clone()));
        if page.next_cursor.is_none() {
            break;
        }
        cursor = page.next_cursor;
        // A call added between pages does not shift the following pages.
        if seen.len() == 2 {
            index
                .record(&processed(&transcription(
                    "new",
                    Some("+16129782029"),
                    999,
                    "success",
                )))
                .await
                .unwrap();
        }
    }
    assert_eq!(seen, ["e", "d", "c", "b", "a"]);

    let ranged = index
        .list_calls(CallQuery {
            from: Some(UnixTimestamp::from_secs(200).unwrap()),
            to: Some(UnixTimestamp::from_secs(300).unwrap()),
            ..CallQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = ranged
        .items
        .iter()
        .map(|c| c.call.conversation_id.as_str())
        .collect();
    assert_eq!(ids, ["d", "other", "c", "b"]);

    let by_agent = index
        .list_calls(CallQuery {
            agent: Some(AgentId::parse("someone-else").unwrap()),
            ..CallQuery::default()
        })
        .await
        .unwrap();
    assert!(by_agent.items.is_empty());
}

#[tokio::test]
async fn bad_cursors_and_limits_are_refused() {
    let (_dir, index) = open().await;
    for cursor in ["", "!!!", "bm90LWEtY3Vyc29y", "MTAwOi4u"] {
        let result = index
            .list_calls(CallQuery {
                cursor: Some(cursor.to_owned()),
                ..CallQuery::default()
            })
            .await;
        assert!(
            matches!(result, Err(CallIndexError::InvalidCursor)),
            "{cursor:?}"
        );
    }
    for limit in [0, MAX_CALL_PAGE + 1] {
        let result = index
            .list_calls(CallQuery {
                limit: Some(limit),
                ..CallQuery::default()
            })
            .await;
        assert!(matches!(result, Err(CallIndexError::InvalidLimit(l)) if l == limit));
    }
}

#[tokio::test]
async fn analytics_count_failures_as_unsuccessful_calls() {
    let (_dir, index) = open().await;
    index
        .record(&processed(&transcription("c1", None, 86_400, "success")))
        .await
        .unwrap();
    let mut c2 = transcription("c2", None, 86_500, "failure");
    c2["data"]["metadata"]["call_duration_secs"] = json!(40);
    c2["data"]["metadata"]["cost"] = json!(100);
    c2["data"]["analysis"]["data_collection_results"]["first_name"]["value"] = json!("Maria");
    index.record(&processed(&c2)).await.unwrap();
    index
        .record(&processed(&transcription(
            "c3",
            None,
            2 * 86_400,
            "unknown",
        )))
        .await
        .unwrap();
    let mut failure = fixture("call_initiation_failure.sip.docs-example.json");
    failure["data"]["conversation_id"] = json!("f1");
    failure["event_timestamp"] = json!(2 * 86_400 + 5);
    index.record(&processed(&failure)).await.unwrap();

    let all = index.analytics(AnalyticsQuery::default()).await.unwrap();
    assert_eq!(all.total_calls, 4);
    assert_eq!(all.success_rate, 0.25);
    // (22 + 40 + 22) / 3: the failure has no duration.
    assert_eq!(all.avg_duration, 28.0);
    assert_eq!(all.total_cost, 296.0 * 2.0 + 100.0);
    let collected: Vec<_> = all
        .data_collected
        .iter()
        .map(|c| (c.field_id.as_str(), c.value.clone(), c.count))
        .collect();
    assert_eq!(
        collected,
        [
            ("first_name", json!("Angelo"), 2),
            ("first_name", json!("Maria"), 1)
        ]
    );

    let day_two = index
        .analytics(AnalyticsQuery {
            from: Some(UnixTimestamp::from_secs(2 * 86_400).unwrap()),
            ..AnalyticsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(day_two.total_calls, 2);
    assert_eq!(day_two.success_rate, 0.0);

    let empty = index
        .analytics(AnalyticsQuery {
            agent: Some(AgentId::parse("nobody").unwrap()),
            ..AnalyticsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (empty.total_calls, empty.success_rate, empty.avg_duration),
        (0, 0.0, 0.0)
    );

    let daily = index.daily(AnalyticsQuery::default()).await.unwrap();
    let daily: Vec<_> = daily
        .iter()
        .map(|d| (d.day.as_str(), d.calls, d.successful))
        .collect();
    assert_eq!(daily, [("1970-01-02", 2, 1), ("1970-01-03", 2, 0)]);
}

#[tokio::test]
async fn forgetting_a_caller_removes_only_their_calls() {
    let (_dir, index) = open().await;
    for (id, caller) in [
        ("a", "+16129782029"),
        ("b", "+16129782029"),
        ("c", "+15550001111"),
    ] {
        index
            .record(&processed(&transcription(id, Some(caller), 100, "success")))
            .await
            .unwrap();
        index
            .record(&ProcessedEvent::audio_stored(conv(id)))
            .await
            .unwrap();
    }
    let removed = index.forget_caller(&phone("+16129782029")).await.unwrap();
    let mut removed: Vec<_> = removed.iter().map(|c| c.as_str().to_owned()).collect();
    removed.sort();
    assert_eq!(removed, ["a", "b"]);
    assert_eq!(index.get_call(&conv("a")).await.unwrap(), None);
    assert!(index.get_call(&conv("c")).await.unwrap().is_some());
    let analytics = index.analytics(AnalyticsQuery::default()).await.unwrap();
    assert_eq!(analytics.total_calls, 1);
    assert_eq!(analytics.data_collected[0].count, 1);
    assert!(
        index
            .forget_caller(&phone("+16129782029"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn events_without_a_valid_agent_id_are_refused() {
    let (_dir, index) = open().await;
    let mut event = fixture("post_call_transcription.docs-example.json");
    event["data"]["agent_id"] = json!("../etc");
    let err = index.record(&processed(&event)).await.unwrap_err();
    assert!(matches!(err, CallIndexError::InvalidEvent(_)), "{err}");
    assert!(err.to_string().contains("agent_id"), "{err}");
    assert!(
        index
            .list_calls(CallQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn an_inbound_twilio_failure_belongs_to_the_number_that_called() {
    let (_dir, index) = open().await;
    let mut event = fixture("call_initiation_failure.twilio.docs-example.json");
    event["data"]["metadata"]["body"]["Direction"] = json!("inbound");
    event["data"]["metadata"]["body"]["From"] = json!("+16129782029");
    index.record(&processed(&event)).await.unwrap();
    let detail = index.get_call(&conv("abc")).await.unwrap().unwrap();
    assert_eq!(detail.caller_phone, Some(phone("+16129782029")));

    // The caller the service decided is the one kept.
    index
        .record(&for_caller(&event, Some(&phone("+15550001111"))))
        .await
        .unwrap();
    let detail = index.get_call(&conv("abc")).await.unwrap().unwrap();
    assert_eq!(detail.caller_phone, Some(phone("+15550001111")));
    assert_eq!(calls_of(&index, "+15550001111").await, 1);
    assert_eq!(calls_of(&index, "+16129782029").await, 0);
}

async fn calls_of(index: &SqliteCallIndex, caller: &str) -> usize {
    index
        .list_calls(CallQuery {
            phone: Some(phone(caller)),
            ..CallQuery::default()
        })
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test]
async fn a_caller_decided_by_the_service_wins_over_the_events_own_ids() {
    let (_dir, index) = open().await;
    // An outbound call: system__caller_id is the agent's own line, the
    // service attributes the call to the person called.
    let agent_line = "+15550001111";
    let callee = "+16125550123";
    index
        .record(&for_caller(
            &transcription("outbound", Some(agent_line), 100, "success"),
            Some(&phone(callee)),
        ))
        .await
        .unwrap();
    assert_eq!(calls_of(&index, callee).await, 1);
    assert_eq!(calls_of(&index, agent_line).await, 0);
    assert_eq!(index.forget_caller(&phone(callee)).await.unwrap().len(), 1);

    // No identity decided: not filed under the event's caller id either.
    index
        .record(&for_caller(
            &transcription("withheld", Some(callee), 200, "success"),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(calls_of(&index, callee).await, 0);
    assert_eq!(
        index
            .list_calls(CallQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn the_index_and_the_model_answer_the_same_analytics() {
    let (_dir, index) = open().await;
    let mut events = Vec::new();
    for (id, start, outcome, fields) in [
        (
            "c1",
            100,
            "success",
            json!({"city": {"value": "Paris"}, "name": {"value": "Maria"}}),
        ),
        (
            "c2",
            200,
            "failure",
            json!({"name": {"value": "Maria"}, "age": {"value": 40}}),
        ),
        (
            "c3",
            300,
            "unknown",
            json!({"city": {"value": "Lyon"}, "name": {"value": "Angelo"}}),
        ),
        ("c4", 400, "success", json!({"name": {"value": null}})),
    ] {
        let mut event = transcription(id, None, start, outcome);
        event["data"]["analysis"]["data_collection_results"] = fields;
        index.record(&processed(&event)).await.unwrap();
        events.push(serde_json::from_value::<PostCallData>(event["data"].clone()).unwrap());
    }
    let indexed = index.analytics(AnalyticsQuery::default()).await.unwrap();
    assert_eq!(indexed, CallAnalytics::from_calls(&events));
    let order: Vec<_> = indexed
        .data_collected
        .iter()
        .map(|c| (c.field_id.as_str(), c.value.clone(), c.count))
        .collect();
    assert_eq!(
        order,
        [
            ("name", json!("Maria"), 2),
            ("age", json!(40), 1),
            ("city", json!("Lyon"), 1),
            ("city", json!("Paris"), 1),
            ("name", json!("Angelo"), 1),
        ]
    );
}

#[tokio::test]
async fn the_sqlite_index_passes_the_call_index_conformance_suite() {
    let (_dir, index) = open().await;
    recall_service::conformance::calls::run_all(&index).await;
}

#[tokio::test]
async fn the_suite_passes_again_on_a_reopened_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    recall_service::conformance::calls::run_all(&SqliteCallIndex::open(&path).await.unwrap()).await;
    recall_service::conformance::calls::run_all(&SqliteCallIndex::open(&path).await.unwrap()).await;
}
