//! The search-data tool's request and response.

use recall_model::{
    MemoryItem, MemorySector, NoIdentity, PhoneNumber, ProfileData, Salience, SearchDataRequest,
    SearchDataResponse, UnixTimestamp,
};
use serde_json::json;

#[test]
fn request_reads_every_field_and_keeps_unknown_ones() {
    let req: SearchDataRequest = serde_json::from_value(json!({
        "query": "  what car do they drive ", "user_id": "+16129782029", "agent_id": "a1",
        "conversation_id": "conv_1", "context": {"topic": "cars"}, "new": 1
    }))
    .unwrap();
    assert_eq!(req.query_text().unwrap(), "what car do they drive");
    assert_eq!(req.caller().unwrap().as_str(), "+16129782029");
    assert_eq!(req.agent().unwrap().unwrap().as_str(), "a1");
    assert_eq!(req.conversation().unwrap().unwrap().as_str(), "conv_1");
    assert_eq!(req.context, Some(json!({"topic": "cars"})));
    assert_eq!(req.extra["new"], 1);
}

#[test]
fn request_without_query_or_caller_reports_why() {
    let req: SearchDataRequest =
        serde_json::from_value(json!({"user_id": "{{system__caller_id}}"})).unwrap();
    assert_eq!(req.query_text().unwrap_err().field(), "query");
    assert_eq!(req.caller(), Err(NoIdentity::Placeholder));
    assert!(req.agent().is_none());
    let blank: SearchDataRequest = serde_json::from_value(json!({"query": "   "})).unwrap();
    assert!(
        blank
            .query_text()
            .unwrap_err()
            .to_string()
            .contains("blank")
    );
}

#[test]
fn request_with_unsafe_conversation_id_is_rejected_when_validated() {
    let req: SearchDataRequest = serde_json::from_value(json!({"conversation_id": "a/b"})).unwrap();
    assert_eq!(
        req.conversation().unwrap().unwrap_err().field(),
        "conversation_id"
    );
}

#[test]
fn response_is_compact_with_rfc3339_timestamps() {
    let resp = SearchDataResponse {
        profile: Some(ProfileData {
            name: Some("Angelo".into()),
            summary: None,
            phone_number: Some(PhoneNumber::parse("+16129782029").unwrap()),
        }),
        memories: vec![MemoryItem {
            content: "Drives a red Volvo".into(),
            sector: MemorySector::Semantic,
            salience: Salience::HIGH,
            timestamp: Some(UnixTimestamp::from_secs(1_739_537_297).unwrap()),
            score: Some(0.82),
        }],
    };
    let json = serde_json::to_value(&resp).unwrap();
    assert_eq!(
        json,
        json!({
            "profile": {"name": "Angelo", "phone_number": "+16129782029"},
            "memories": [{"content": "Drives a red Volvo", "sector": "semantic",
                "salience": 0.9, "timestamp": "2025-02-14T12:48:17Z", "score": 0.82}]
        })
    );
    let back: SearchDataResponse = serde_json::from_value(json).unwrap();
    assert_eq!(back, resp);
}

#[test]
fn memory_items_with_invalid_values_do_not_deserialize() {
    for bad in [
        json!({"content": "x", "sector": "gossip", "salience": 0.5}),
        json!({"content": "x", "sector": "semantic", "salience": 1.5}),
        json!({"content": "x", "sector": "semantic", "salience": 0.5, "timestamp": "yesterday"}),
        json!({"content": "x", "sector": "semantic", "salience": 0.5, "timestamp": 1739537297}),
        json!({"sector": "semantic", "salience": 0.5}),
    ] {
        assert!(
            serde_json::from_value::<MemoryItem>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}
