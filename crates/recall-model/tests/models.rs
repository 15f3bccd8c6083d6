//! OpenMemory entities, UI models and settings.

use recall_model::{
    DecayLambda, MemorySector, PhoneNumber, PostCallData, Salience, Settings, TranscriptEntry,
    TranscriptRole, UnixTimestamp, openmemory,
    ui::{self, CallAnalytics, CallSummary, MemoryDisplay, TranscriptMessage},
};
use serde_json::{Value, json};

fn phone() -> PhoneNumber {
    PhoneNumber::parse("+16129782029").unwrap()
}

#[test]
fn openmemory_user_and_memory_are_camel_case() {
    let user = openmemory::User {
        user_id: phone(),
        name: None,
        summary: Some("Likes jazz".into()),
        memory_count: 2,
    };
    assert_eq!(
        serde_json::to_value(&user).unwrap(),
        json!({"userId": "+16129782029", "summary": "Likes jazz", "memoryCount": 2})
    );
    let memory = openmemory::Memory {
        id: "mem_xyz789".into(),
        user_id: phone(),
        content: "Likes jazz".into(),
        sector: MemorySector::Semantic,
        salience: Salience::HIGH,
        decay_lambda: DecayLambda::PERMANENT,
        tags: vec!["profile".into()],
        metadata: json!({"source": "post_call"}).as_object().unwrap().clone(),
        created_at: UnixTimestamp::from_secs(1_739_537_297).unwrap(),
        last_accessed_at: None,
    };
    let json = serde_json::to_value(&memory).unwrap();
    assert_eq!(
        json,
        json!({"id": "mem_xyz789", "userId": "+16129782029", "content": "Likes jazz",
            "sector": "semantic", "salience": 0.9, "decayLambda": 0.0, "tags": ["profile"],
            "metadata": {"source": "post_call"}, "createdAt": "2025-02-14T12:48:17Z"})
    );
    let back: openmemory::Memory = serde_json::from_value(json).unwrap();
    assert_eq!(back, memory);
}

#[test]
fn openmemory_entities_reject_invalid_values() {
    assert!(serde_json::from_value::<openmemory::User>(json!({"userId": "anonymous"})).is_err());
    let base = json!({"id": "m", "userId": "+16129782029", "content": "c", "sector": "semantic",
        "salience": 0.5, "createdAt": "2025-02-14T12:48:17Z"});
    assert!(serde_json::from_value::<openmemory::Memory>(base.clone()).is_ok());
    for (field, bad) in [
        ("salience", json!(2.0)),
        ("decayLambda", json!(-1.0)),
        ("sector", json!("gossip")),
        ("createdAt", json!("not a date")),
        ("userId", json!("12345")),
    ] {
        let mut m = base.clone();
        m[field] = bad;
        assert!(
            serde_json::from_value::<openmemory::Memory>(m).is_err(),
            "{field}"
        );
    }
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
        serde_json::from_value(json!({"role": "agent", "message": null})).unwrap();
    let msg = TranscriptMessage::from(&entry);
    assert_eq!(msg.role, TranscriptRole::Agent);
    assert_eq!(
        serde_json::to_value(&msg).unwrap(),
        json!({"role": "agent", "message": "", "timeInCallSecs": 0.0, "interrupted": false})
    );
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
fn settings_debug_redacts_every_secret() {
    let settings = Settings::from_lookup(|name| Some(format!("value-of-{name}")));
    assert_eq!(
        settings.elevenlabs_post_call_key,
        "value-of-ELEVENLABS_POST_CALL_KEY"
    );
    assert_eq!(
        settings.payload_storage_path,
        "value-of-PAYLOAD_STORAGE_PATH"
    );
    let shown = format!("{settings:?}");
    for secret in [
        "ELEVENLABS_API_KEY",
        "ELEVENLABS_POST_CALL_KEY",
        "ELEVENLABS_CLIENT_DATA_KEY",
        "ELEVENLABS_SEARCH_DATA_KEY",
        "OPENMEMORY_KEY",
    ] {
        assert!(
            !shown.contains(&format!("value-of-{secret}")),
            "{secret} leaked: {shown}"
        );
    }
    for plain in [
        "OPENMEMORY_PORT",
        "OPENMEMORY_DB_PATH",
        "PAYLOAD_STORAGE_PATH",
    ] {
        assert!(
            shown.contains(&format!("value-of-{plain}")),
            "{plain} hidden: {shown}"
        );
    }
    assert!(format!("{:?}", Settings::default()).contains("<unset>"));
    assert_eq!(Settings::ENV_NAMES.len(), 8);
    let only_port =
        Settings::from_lookup(|name| (name == "OPENMEMORY_PORT").then(|| "8080".into()));
    assert_eq!(only_port.openmemory_port, "8080");
    assert_eq!(only_port.openmemory_key, "");
}
