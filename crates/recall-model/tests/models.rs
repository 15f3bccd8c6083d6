//! The UI models.

use recall_model::{
    MemorySector, PhoneNumber, PostCallData, Salience, TranscriptEntry, UnixTimestamp,
    ui::{self, CallAnalytics, CallSummary, MemoryDisplay, Speaker, TranscriptMessage},
};
use serde_json::{Value, json};

fn phone() -> PhoneNumber {
    PhoneNumber::parse("+16129782029").unwrap()
}

#[test]
fn ui_user_matches_the_typescript_interface() {
    let user = ui::User {
        phone_number: phone(),
        name: Some("Angelo".into()),
        profile_summary: None,
        last_call_summary: Some("Asked about Eleven Labs".into()),
    };
    assert_eq!(
        serde_json::to_value(&user).unwrap(),
        json!({"phoneNumber": "+16129782029", "name": "Angelo",
            "lastCallSummary": "Asked about Eleven Labs"})
    );
}

#[test]
fn memory_display_has_a_label_that_matches_its_salience() {
    let m = MemoryDisplay::new(
        "Called about a refund",
        MemorySector::Episodic,
        Salience::MEDIUM,
        Some(UnixTimestamp::from_secs(0).unwrap()),
    );
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(
        json,
        json!({"content": "Called about a refund", "sector": "episodic", "salience": 0.7,
            "timestamp": "1970-01-01T00:00:00Z", "salienceLabel": "Medium"})
    );
    let mut wrong = json;
    wrong["salienceLabel"] = json!("High");
    let err = serde_json::from_value::<MemoryDisplay>(wrong).unwrap_err();
    assert!(err.to_string().contains("salienceLabel"), "{err}");
}

#[test]
fn transcript_message_from_an_entry_fills_defaults() {
    let entry: TranscriptEntry =
        serde_json::from_value(json!({"role": "agent", "message": " Hello "})).unwrap();
    let msg = TranscriptMessage::from_entry(&entry).unwrap();
    assert_eq!(msg.role, Speaker::Agent);
    assert_eq!(
        serde_json::to_value(&msg).unwrap(),
        json!({"role": "agent", "message": "Hello", "timeInCallSecs": 0.0, "interrupted": false})
    );
}

#[test]
fn a_transcript_leaves_out_turns_without_text_or_of_other_roles() {
    for turn in [
        json!({"role": "agent", "message": null, "tool_calls": [{}]}),
        json!({"role": "user", "message": "  "}),
        json!({"role": "tool", "message": "42"}),
        json!({"message": "Hi"}),
    ] {
        let entry: TranscriptEntry = serde_json::from_value(turn.clone()).unwrap();
        assert_eq!(TranscriptMessage::from_entry(&entry), None, "{turn}");
    }
}

fn call(
    id: &str,
    successful: &str,
    duration: Option<f64>,
    cost: f64,
    name: &Value,
) -> PostCallData {
    serde_json::from_value(json!({
        "agent_id": "agent_1", "conversation_id": id, "status": "done",
        "metadata": {"call_duration_secs": duration, "cost": cost},
        "analysis": {"call_successful": successful, "transcript_summary": "Summary",
            "call_summary_title": "Title",
            "data_collection_results": {"first_name": {"data_collection_id": "first_name",
                "value": name}}}
    }))
    .unwrap()
}

#[test]
fn call_summary_from_post_call_data() {
    let summary = CallSummary::from(&call("c1", "success", Some(22.0), 296.0, &json!("Angelo")));
    assert_eq!(
        serde_json::to_value(&summary).unwrap(),
        json!({"conversationId": "c1", "agentId": "agent_1", "status": "done",
            "duration": 22.0, "cost": 296.0, "summary": "Summary", "title": "Title",
            "successful": true})
    );
    let unknown = CallSummary::from(&call("c2", "unknown", None, 0.0, &json!(null)));
    let json = serde_json::to_value(&unknown).unwrap();
    assert!(json.get("successful").is_none());
    assert!(json.get("duration").is_none());
}

#[test]
fn call_analytics_totals_calls() {
    let calls = [
        call("c1", "success", Some(20.0), 100.0, &json!("Angelo")),
        call("c2", "failure", Some(40.0), 50.0, &json!("Angelo")),
        call("c3", "success", None, 25.0, &json!("Maria")),
        call("c4", "unknown", Some(30.0), 0.0, &json!(null)),
    ];
    let a = CallAnalytics::from_calls(&calls);
    assert_eq!(a.total_calls, 4);
    assert_eq!(a.success_rate, 0.5);
    assert_eq!(a.avg_duration, 30.0);
    assert_eq!(a.total_cost, 175.0);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json["dataCollected"],
        json!([{"fieldId": "first_name", "value": "Angelo", "count": 2},
               {"fieldId": "first_name", "value": "Maria", "count": 1}])
    );
    assert_eq!(json["totalCalls"], 4);
    assert_eq!(json["successRate"], 0.5);
    assert_eq!(json["avgDuration"], 30.0);
    assert_eq!(json["totalCost"], 175.0);
    let empty = CallAnalytics::from_calls(&[]);
    assert_eq!((empty.success_rate, empty.avg_duration), (0.0, 0.0));
}

#[test]
fn data_collected_is_ordered_by_count_then_field_id_then_value() {
    let with = |id: &str, fields: Value| -> PostCallData {
        serde_json::from_value(json!({
            "agent_id": "agent_1", "conversation_id": id,
            "analysis": {"data_collection_results": fields}
        }))
        .unwrap()
    };
    let calls = [
        with(
            "c1",
            json!({"city": {"value": "Paris"}, "name": {"value": "Maria"}}),
        ),
        with(
            "c2",
            json!({"name": {"value": "Maria"}, "age": {"value": 40}}),
        ),
        with(
            "c3",
            json!({"city": {"value": "Lyon"}, "name": {"value": "Angelo"}}),
        ),
    ];
    let a = CallAnalytics::from_calls(&calls);
    let order: Vec<(&str, String, u64)> = a
        .data_collected
        .iter()
        .map(|s| (s.field_id.as_str(), s.value.to_string(), s.count))
        .collect();
    assert_eq!(
        order,
        [
            ("name", "\"Maria\"".to_owned(), 2),
            ("age", "40".to_owned(), 1),
            ("city", "\"Lyon\"".to_owned(), 1),
            ("city", "\"Paris\"".to_owned(), 1),
            ("name", "\"Angelo\"".to_owned(), 1),
        ]
    );
}
