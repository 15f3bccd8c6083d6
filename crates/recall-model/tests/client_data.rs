//! The client-data request and response.

use recall_model::{
    ClientDataRequest, ClientDataResponse, ClientDataType, ConversationConfigOverride,
    DynamicValue, DynamicVariables, NoIdentity, TtsOverride,
};
use serde_json::json;

#[test]
fn request_tolerates_missing_null_and_unknown_fields() {
    let req: ClientDataRequest =
        serde_json::from_value(json!({"caller_id": null, "extra_thing": {"a": 1}})).unwrap();
    assert_eq!(req.caller(), Err(NoIdentity::Missing));
    assert_eq!(req.agent().unwrap_err().field(), "agent_id");
    assert_eq!(req.extra["extra_thing"], json!({"a": 1}));
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        json!({"extra_thing": {"a": 1}})
    );
}

#[test]
fn request_with_withheld_or_placeholder_caller_has_no_identity() {
    for (raw, reason) in [
        ("anonymous", NoIdentity::Withheld),
        ("+266696687", NoIdentity::Withheld),
        ("{{system__caller_id}}", NoIdentity::Placeholder),
        ("", NoIdentity::Missing),
    ] {
        let req: ClientDataRequest =
            serde_json::from_value(json!({"caller_id": raw, "agent_id": "a"})).unwrap();
        assert_eq!(req.caller(), Err(reason), "{raw:?}");
    }
}

#[test]
fn request_with_unsafe_agent_id_is_rejected_when_validated() {
    let req: ClientDataRequest = serde_json::from_value(json!({"agent_id": "../agents"})).unwrap();
    assert_eq!(req.agent().unwrap_err().field(), "agent_id");
}

#[test]
fn default_response_has_the_type_and_empty_known_variables_only() {
    let json = serde_json::to_value(ClientDataResponse::default()).unwrap();
    assert_eq!(
        json,
        json!({
            "type": "conversation_initiation_client_data",
            "dynamic_variables": {"user_name": "", "user_profile_summary": "",
                "last_call_summary": ""}
        })
    );
}

#[test]
fn response_overrides_skip_absent_fields() {
    let mut vars = DynamicVariables {
        user_name: "Angelo".into(),
        ..DynamicVariables::default()
    };
    vars.extra
        .insert("calls_so_far".into(), DynamicValue::from(3));
    vars.extra.insert("vip".into(), DynamicValue::from(true));
    vars.extra
        .insert("score".into(), DynamicValue::try_from(0.5).unwrap());
    let mut resp = ClientDataResponse::new(vars).with_first_message("Welcome back, Angelo!");
    resp.conversation_config_override
        .get_or_insert_with(ConversationConfigOverride::default)
        .tts = Some(TtsOverride {
        voice_id: Some("voice_1".into()),
        ..TtsOverride::default()
    });
    let json = serde_json::to_value(&resp).unwrap();
    assert_eq!(json["dynamic_variables"]["calls_so_far"], 3);
    assert_eq!(json["dynamic_variables"]["vip"], true);
    assert_eq!(json["dynamic_variables"]["score"], 0.5);
    assert_eq!(
        json["conversation_config_override"],
        json!({"agent": {"first_message": "Welcome back, Angelo!"},
               "tts": {"voice_id": "voice_1"}})
    );
    let back: ClientDataResponse = serde_json::from_value(json).unwrap();
    assert_eq!(back, resp);
}

#[test]
fn dynamic_values_are_scalars_never_null() {
    for bad in [json!(null), json!([1]), json!({"a": 1})] {
        let err = serde_json::from_value::<DynamicValue>(bad.clone()).unwrap_err();
        assert!(
            err.to_string().contains("string, number or bool"),
            "{bad}: {err}"
        );
    }
    let err = serde_json::from_value::<DynamicVariables>(json!({"x": null})).unwrap_err();
    assert!(err.to_string().contains("dynamic variable"), "{err}");
    assert!(DynamicValue::try_from(f64::NAN).is_err());
    assert!(DynamicValue::try_from(f64::INFINITY).is_err());
    assert_eq!(DynamicValue::from("hi").to_string(), "hi");
}

#[test]
fn known_variables_must_be_text() {
    let err = serde_json::from_value::<DynamicVariables>(json!({"user_name": null})).unwrap_err();
    assert!(
        err.to_string().contains("user_name") || err.to_string().contains("string"),
        "{err}"
    );
}

#[test]
fn response_with_a_wrong_type_is_rejected_naming_the_field() {
    let err = serde_json::from_value::<ClientDataResponse>(
        json!({"type": "something_else", "dynamic_variables": {}}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("type"), "{err}");
    assert!(err.to_string().contains(ClientDataType::VALUE), "{err}");
}

#[test]
fn a_known_name_in_extra_is_never_written_twice() {
    let mut vars = DynamicVariables {
        user_name: "Angelo".into(),
        ..DynamicVariables::default()
    };
    vars.extra
        .insert("user_name".into(), DynamicValue::from("Mallory"));
    let text = serde_json::to_string(&vars).unwrap();
    assert_eq!(text.matches("\"user_name\"").count(), 1, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["user_name"], "Angelo");
}

#[test]
fn insert_routes_known_names_to_their_fields() {
    let mut vars = DynamicVariables::default();
    vars.insert("last_call_summary", "Asked about refunds");
    vars.insert("user_profile_summary", 7);
    vars.insert("plan", "gold");
    assert_eq!(vars.last_call_summary, "Asked about refunds");
    assert_eq!(vars.user_profile_summary, "7");
    assert!(vars.extra.keys().all(|k| k == "plan"));
    assert_eq!(vars.get("plan"), Some(DynamicValue::from("gold")));
    assert_eq!(
        vars.get("last_call_summary"),
        Some(DynamicValue::from("Asked about refunds"))
    );
    assert_eq!(vars.get("missing"), None);
}
