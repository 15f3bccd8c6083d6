//! Post-call wire types against inline payloads: the shapes real payloads
//! take that the fixtures do not show.

use recall_model::{
    CallInitiationFailureData, ConversationTurnMetrics, FailureMetadata, FeatureEntry, NoIdentity,
    PhoneCallInfo, PostCallData, PostCallEvent, PostCallWebhookRequest, TranscriptEntry,
    TranscriptRole, TurnMetricsShape, WebhookType,
};
use serde_json::{Value, json};

fn data(value: Value) -> PostCallData {
    serde_json::from_value(value).unwrap()
}

fn with_call(phone_call: &Value, caller_id: Option<&str>) -> PostCallData {
    let mut d = json!({
        "agent_id": "agent_1",
        "conversation_id": "conv_1",
        "metadata": {"phone_call": phone_call},
    });
    if let Some(id) = caller_id {
        d["conversation_initiation_client_data"] =
            json!({"dynamic_variables": {"system__caller_id": id}});
    }
    data(d)
}

fn twilio_inbound(external: &str) -> Value {
    json!({
        "type": "twilio", "direction": "inbound", "phone_number_id": "pn_1",
        "agent_number": "+15550001111", "external_number": external,
        "stream_sid": "MZ1", "call_sid": "CA1"
    })
}

#[test]
fn twilio_phone_call_is_read_and_written_back_unchanged() {
    let raw = twilio_inbound("+16129782029");
    let call: PhoneCallInfo = serde_json::from_value(raw.clone()).unwrap();
    let PhoneCallInfo::Twilio(details) = &call else {
        panic!("expected twilio, got {call:?}")
    };
    assert_eq!(details.stream_sid.as_deref(), Some("MZ1"));
    assert_eq!(call.provider(), "twilio");
    assert_eq!(call.is_inbound(), Some(true));
    assert_eq!(call.external_number(), Some("+16129782029"));
    assert_eq!(call.agent_number(), Some("+15550001111"));
    assert_eq!(serde_json::to_value(&call).unwrap(), raw);
}

#[test]
fn sip_trunking_phone_call_keeps_call_id_and_has_no_stream_sid() {
    let raw = json!({
        "type": "sip_trunking", "direction": "outbound", "phone_number_id": "pn_2",
        "agent_number": "+15550001111", "external_number": "+442071838750",
        "call_sid": "sip_1", "call_id": "abc@10.0.0.1"
    });
    let call: PhoneCallInfo = serde_json::from_value(raw.clone()).unwrap();
    let PhoneCallInfo::SipTrunking(details) = &call else {
        panic!("expected sip_trunking, got {call:?}")
    };
    assert_eq!(details.call_id.as_deref(), Some("abc@10.0.0.1"));
    assert_eq!(call.is_inbound(), Some(false));
    assert_eq!(serde_json::to_value(&call).unwrap(), raw);
}

#[test]
fn exotel_phone_call_is_its_own_variant_and_keeps_unknown_fields() {
    let raw = json!({
        "type": "exotel", "direction": "inbound", "external_number": "+919876543210",
        "agent_number": "+918000000000", "stream_sid": "st_1", "call_sid": "ex_1",
        "exotel_only": {"x": 1}
    });
    let call: PhoneCallInfo = serde_json::from_value(raw.clone()).unwrap();
    let PhoneCallInfo::Exotel(details) = &call else {
        panic!("expected exotel, got {call:?}")
    };
    assert_eq!(details.extra["exotel_only"], json!({"x": 1}));
    assert_eq!(serde_json::to_value(&call).unwrap(), raw);
}

#[test]
fn unknown_phone_call_provider_is_kept_raw_and_still_readable() {
    let raw = json!({
        "type": "vonage", "direction": "inbound", "external_number": "+16129782029",
        "conversation_uuid": "CON-1"
    });
    let call: PhoneCallInfo = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(call, PhoneCallInfo::Unknown(raw.clone()));
    assert_eq!(call.provider(), "vonage");
    assert_eq!(call.is_inbound(), Some(true));
    assert_eq!(call.external_number(), Some("+16129782029"));
    assert!(call.details().is_none());
    assert_eq!(serde_json::to_value(&call).unwrap(), raw);
}

#[test]
fn phone_call_that_is_not_an_object_is_rejected_naming_the_field() {
    let err = serde_json::from_value::<PhoneCallInfo>(json!("twilio")).unwrap_err();
    assert!(err.to_string().contains("phone_call"), "{err}");
}

#[test]
fn both_turn_metric_shapes_read_the_same_and_write_back_as_read() {
    let flat = json!({"convai_llm_service_ttfb": {"elapsed_time": 0.25}});
    let nested = json!({"metrics": {"convai_llm_service_ttfb": {"elapsed_time": 0.25}}});
    let a: ConversationTurnMetrics = serde_json::from_value(flat.clone()).unwrap();
    let b: ConversationTurnMetrics = serde_json::from_value(nested.clone()).unwrap();
    assert_eq!(a.shape, TurnMetricsShape::Flat);
    assert_eq!(b.shape, TurnMetricsShape::Nested);
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(a.llm_ttfb_secs(), Some(0.25));
    assert_eq!(b.llm_ttfb_secs(), Some(0.25));
    assert_eq!(serde_json::to_value(&a).unwrap(), flat);
    assert_eq!(serde_json::to_value(&b).unwrap(), nested);
}

#[test]
fn a_flat_metric_named_metrics_beside_others_stays_flat() {
    let raw = json!({"metrics": {"elapsed_time": 1.0}, "other": {"elapsed_time": 2.0}});
    let m: ConversationTurnMetrics = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(m.shape, TurnMetricsShape::Flat);
    assert_eq!(m.elapsed_secs("other"), Some(2.0));
    assert_eq!(serde_json::to_value(&m).unwrap(), raw);
}

#[test]
fn transcript_entry_with_every_part_and_unknown_role() {
    let raw = json!({
        "role": "tool", "message": null, "time_in_call_secs": 12,
        "tool_calls": [{"tool_name": "search_memory", "params_as_json": "{}"}],
        "tool_results": [{"result_value": "ok"}],
        "feedback": {"score": "like"}, "interrupted": true, "source_medium": "audio",
        "llm_usage": {"model_usage": {}},
        "agent_metadata": {"agent_id": "a", "branch_id": "b", "workflow_node_id": "n", "new": 1},
        "conversation_turn_metrics": {"metrics": {"x": {"elapsed_time": 0.1}}},
        "original_message": "orig", "rag_retrieval_info": {"chunks": []},
        "multivoice_message": {"parts": []}, "brand_new_field": [1, 2]
    });
    let e: TranscriptEntry = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(e.role, TranscriptRole::Other("tool".into()));
    assert_eq!(e.message, None);
    assert_eq!(e.time_in_call_secs, Some(12.0));
    assert_eq!(e.tool_calls.as_ref().unwrap().len(), 1);
    assert_eq!(e.interrupted, Some(true));
    let meta = e.agent_metadata.as_ref().unwrap();
    assert_eq!(meta.workflow_node_id.as_deref(), Some("n"));
    assert_eq!(meta.extra["new"], 1);
    assert_eq!(e.original_message.as_deref(), Some("orig"));
    assert_eq!(e.extra["brand_new_field"], json!([1, 2]));
    let back = serde_json::to_value(&e).unwrap();
    assert_eq!(back["role"], "tool");
    assert_eq!(back["brand_new_field"], json!([1, 2]));
    assert_eq!(
        back["conversation_turn_metrics"],
        raw["conversation_turn_metrics"]
    );
}

#[test]
fn minimal_transcription_data_with_nulls_everywhere_parses() {
    let d = data(json!({
        "agent_id": "a", "conversation_id": "c", "status": null, "transcript": null,
        "metadata": null, "analysis": {"evaluation_criteria_results": null,
        "data_collection_results": null}, "conversation_initiation_client_data":
        {"dynamic_variables": null}
    }));
    assert!(d.transcript.is_empty());
    assert!(d.metadata.is_none());
    assert_eq!(d.data_collection_results().count(), 0);
    assert!(d.start_time().is_none());
}

#[test]
fn transcription_data_without_ids_is_rejected_naming_the_field() {
    let body = json!({"type": "post_call_transcription", "event_timestamp": 1,
        "data": {"agent_id": "a"}});
    let err = serde_json::from_value::<PostCallWebhookRequest>(body).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("post_call_transcription"), "{msg}");
    assert!(msg.contains("conversation_id"), "{msg}");
}

#[test]
fn unsafe_conversation_id_is_rejected_when_validated() {
    let d = data(json!({"agent_id": "a", "conversation_id": "../../etc/passwd"}));
    let err = d.conversation().unwrap_err();
    assert_eq!(err.field(), "conversation_id");
}

#[test]
fn caller_comes_from_system_caller_id_first() {
    let d = with_call(&twilio_inbound("+16125550000"), Some("+16129782029"));
    assert_eq!(d.system_caller_id(), Some("+16129782029"));
    assert_eq!(d.caller().unwrap().as_str(), "+16129782029");
}

#[test]
fn caller_falls_back_to_inbound_external_number() {
    for missing in [
        None,
        Some(""),
        Some("{{system__caller_id}}"),
        Some("garbage"),
    ] {
        let d = with_call(&twilio_inbound("+16129782029"), missing);
        assert_eq!(d.caller().unwrap().as_str(), "+16129782029", "{missing:?}");
    }
}

#[test]
fn withheld_caller_id_is_never_replaced() {
    let d = with_call(&twilio_inbound("+16129782029"), Some("anonymous"));
    assert_eq!(d.caller(), Err(NoIdentity::Withheld));
    let d = with_call(&twilio_inbound("+266696687"), None);
    assert_eq!(d.caller(), Err(NoIdentity::Withheld));
}

#[test]
fn on_an_outbound_call_the_person_called_is_the_caller() {
    // The agent rang them: the external number is the person, whatever
    // `system__caller_id` says (there it is the agent's own line).
    let mut call = twilio_inbound("+16129782029");
    call["direction"] = json!("outbound");
    let d = with_call(&call, None);
    assert_eq!(d.is_inbound(), Some(false));
    assert_eq!(d.caller().unwrap().as_str(), "+16129782029");
    let d = with_call(&call, Some("+15550001111"));
    assert_eq!(d.caller().unwrap().as_str(), "+16129782029");
}

#[test]
fn metadata_parts_parse() {
    let d = data(json!({
        "agent_id": "a", "conversation_id": "c",
        "metadata": {
            "start_time_unix_secs": 1739537297, "accepted_time_unix_secs": 1739537298,
            "call_duration_secs": 61, "cost": 12.5,
            "feedback": {"type": "rating", "overall_score": "like", "likes": 1,
                "dislikes": 0, "rating": 4, "comment": "great"},
            "batch_call": {"batch_call_id": "b1", "batch_call_recipient_id": "r1"},
            "error": {"code": 1011, "reason": "internal"},
            "warnings": ["slow llm"], "main_language": "en", "rag_usage": {"usage_count": 2},
            "text_only": false, "timezone": "Europe/London",
            "features_usage": {
                "language_detection": {"enabled": true, "used": false},
                "is_livekit": false,
                "workflow": {"enabled": true, "tool_node": {"enabled": true, "used": true}},
                "agent_testing": {"enabled": true, "tests_ran_after_last_modification": false,
                    "tests_ran_in_last_7_days": true}
            }
        }
    }));
    let meta = d.metadata.as_ref().unwrap();
    assert_eq!(d.start_time().unwrap().as_secs(), 1_739_537_297);
    assert_eq!(meta.accepted_time_unix_secs, Some(1_739_537_298));
    assert_eq!(d.call_duration_secs(), Some(61.0));
    let fb = meta.feedback.as_ref().unwrap();
    assert_eq!(fb.kind.as_deref(), Some("rating"));
    assert_eq!(fb.comment.as_deref(), Some("great"));
    let error = meta.error.as_ref().unwrap();
    assert_eq!(
        (error.code, error.reason.as_deref()),
        (Some(1011), Some("internal"))
    );
    assert_eq!(meta.timezone.as_deref(), Some("Europe/London"));
    let features = meta.features_usage.as_ref().unwrap();
    let detection = features.feature("language_detection").unwrap();
    assert_eq!(
        (detection.enabled, detection.used),
        (Some(true), Some(false))
    );
    assert_eq!(
        features.features["is_livekit"],
        FeatureEntry::Other(json!(false))
    );
    assert!(features.feature("is_livekit").is_none());
    let workflow = features.workflow.as_ref().unwrap();
    assert_eq!(workflow.enabled, Some(true));
    assert!(matches!(
        workflow.nodes["tool_node"],
        FeatureEntry::Usage(_)
    ));
    let testing = features.agent_testing.as_ref().unwrap();
    assert_eq!(testing.tests_ran_in_last_7_days, Some(true));
    let back = serde_json::to_value(&d).unwrap();
    assert_eq!(back["metadata"]["features_usage"]["is_livekit"], false);
    assert_eq!(
        back["metadata"]["features_usage"]["workflow"]["tool_node"]["used"],
        true
    );
}

#[test]
fn analysis_data_collection_results_parse_with_schema() {
    let d = data(json!({
        "agent_id": "a", "conversation_id": "c",
        "analysis": {
            "evaluation_criteria_results": {"polite": {"criteria_id": "polite",
                "result": "success", "rationale": "yes"}},
            "data_collection_results": {
                "first_name": {"data_collection_id": "first_name", "value": " Angelo ",
                    "json_schema": {"type": "string", "description": "The caller's first name",
                        "enum": null, "is_system_provided": false, "dynamic_variable": "",
                        "constant_value": ""},
                    "rationale": "said so"},
                "age": {"data_collection_id": "age", "value": 42, "json_schema": null,
                    "rationale": null},
                "email": {"data_collection_id": "email", "value": null}
            },
            "call_successful": "failure", "transcript_summary": "  ",
            "call_summary_title": "Intro call"
        }
    }));
    let analysis = d.analysis.as_ref().unwrap();
    assert_eq!(analysis.successful(), Some(false));
    assert_eq!(
        analysis.evaluation_criteria_results["polite"]
            .result
            .as_deref(),
        Some("success")
    );
    let results: Vec<_> = d.data_collection_results().collect();
    assert_eq!(results.len(), 3);
    let name = &analysis.data_collection_results["first_name"];
    assert_eq!(name.value_text().as_deref(), Some("Angelo"));
    let schema = name.json_schema.as_ref().unwrap();
    assert_eq!(schema.kind.as_deref(), Some("string"));
    assert_eq!(schema.is_system_provided, Some(false));
    assert_eq!(
        analysis.data_collection_results["age"]
            .value_text()
            .as_deref(),
        Some("42")
    );
    assert_eq!(analysis.data_collection_results["email"].value_text(), None);
    assert_eq!(
        d.transcript_summary(),
        None,
        "a blank summary is no summary"
    );
}

#[test]
fn client_data_echo_parses_source_info_and_dynamic_variables() {
    let d = data(json!({
        "agent_id": "a", "conversation_id": "c",
        "conversation_initiation_client_data": {
            "custom_llm_extra_body": {"temperature": 0.2}, "user_id": "u1",
            "source_info": {"source": "twilio", "version": "1.0"},
            "dynamic_variables": {"system__caller_id": "+16129782029",
                "system__call_duration_secs": 30, "user_name": "Angelo"}
        }
    }));
    let init = d.conversation_initiation_client_data.as_ref().unwrap();
    assert_eq!(init.user_id.as_deref(), Some("u1"));
    assert_eq!(
        init.source_info.as_ref().unwrap().source.as_deref(),
        Some("twilio")
    );
    assert_eq!(init.dynamic_variables["system__call_duration_secs"], 30);
    assert_eq!(d.caller().unwrap().as_str(), "+16129782029");
}

#[test]
fn unknown_webhook_type_is_kept_with_its_data() {
    let body = json!({"type": "post_call_video", "event_timestamp": 5,
        "data": {"conversation_id": "c", "frames": 3}, "new_top_level": true});
    let req: PostCallWebhookRequest = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(
        req.webhook_type(),
        WebhookType::Unknown("post_call_video".into())
    );
    let PostCallEvent::Unknown { kind, data } = &req.data else {
        panic!("expected unknown, got {:?}", req.data)
    };
    assert_eq!(kind, "post_call_video");
    assert_eq!(data["frames"], 3);
    assert_eq!(req.data.conversation_id(), Some("c"));
    assert_eq!(serde_json::to_value(&req).unwrap(), body);
}

#[test]
fn unknown_fields_at_every_level_survive_a_round_trip() {
    let body = json!({
        "type": "post_call_transcription", "event_timestamp": 1, "top": 1,
        "data": {"agent_id": "a", "conversation_id": "c", "d": 2,
            "metadata": {"m": 3, "deletion_settings": {"ds": 4}},
            "analysis": {"an": 5},
            "transcript": [{"role": "user", "message": "hi", "t": 6}],
            "conversation_initiation_client_data": {"ci": 7, "source_info": {"si": 8},
                "conversation_config_override": {"co": 9, "agent": {"ag": 10},
                    "tts": {"tt": 11}}}}
    });
    let req: PostCallWebhookRequest = serde_json::from_value(body).unwrap();
    let back = serde_json::to_value(&req).unwrap();
    assert_eq!(back["top"], 1);
    let d = &back["data"];
    assert_eq!(d["d"], 2);
    assert_eq!(d["metadata"]["m"], 3);
    assert_eq!(d["metadata"]["deletion_settings"]["ds"], 4);
    assert_eq!(d["analysis"]["an"], 5);
    assert_eq!(d["transcript"][0]["t"], 6);
    let ci = &d["conversation_initiation_client_data"];
    assert_eq!(ci["ci"], 7);
    assert_eq!(ci["source_info"]["si"], 8);
    assert_eq!(ci["conversation_config_override"]["co"], 9);
    assert_eq!(ci["conversation_config_override"]["agent"]["ag"], 10);
    assert_eq!(ci["conversation_config_override"]["tts"]["tt"], 11);
}

#[test]
fn unknown_failure_metadata_type_is_kept_raw() {
    let raw = json!({"type": "telnyx", "body": {"x": 1}});
    let meta: FailureMetadata = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(meta.kind(), "telnyx");
    assert_eq!(meta, FailureMetadata::Unknown(raw.clone()));
    assert_eq!(serde_json::to_value(&meta).unwrap(), raw);
}

#[test]
fn sip_failure_with_bad_status_code_is_rejected_naming_the_body() {
    let raw = json!({"type": "sip", "body": {"sip_status_code": "busy"}});
    let err = serde_json::from_value::<FailureMetadata>(raw).unwrap_err();
    assert!(err.to_string().contains("metadata.body"), "{err}");
}

#[test]
fn envelope_without_type_is_rejected_naming_it() {
    let err = serde_json::from_value::<PostCallWebhookRequest>(json!({"data": {}})).unwrap_err();
    assert!(err.to_string().contains("type"), "{err}");
}

// The one caller rule: live processing and reindexing both use it.

fn parsed(json: &str) -> PostCallData {
    serde_json::from_str(json).unwrap()
}

#[test]
fn caller_falls_back_to_an_e164_user_id() {
    let d = parsed(r#"{"agent_id":"a","conversation_id":"c","user_id":"+16129782029"}"#);
    assert_eq!(d.caller().unwrap().as_str(), "+16129782029");
    let d = parsed(r#"{"agent_id":"a","conversation_id":"c","user_id":"user123"}"#);
    assert_eq!(d.caller(), Err(NoIdentity::Missing));
}

#[test]
fn an_outbound_call_is_keyed_by_the_person_called_never_the_agents_line() {
    let d = parsed(
        r#"{"agent_id":"a","conversation_id":"c",
        "metadata":{"phone_call":{"type":"twilio","direction":"outbound",
          "agent_number":"+15550001111","external_number":"+16129782029"}},
        "conversation_initiation_client_data":{"dynamic_variables":{"system__caller_id":"+15550001111"}}}"#,
    );
    assert_eq!(d.caller().unwrap().as_str(), "+16129782029");
    // An inbound call whose caller id is the agent's own line.
    let d = parsed(
        r#"{"agent_id":"a","conversation_id":"c",
        "metadata":{"phone_call":{"type":"sip_trunking","direction":"inbound",
          "agent_number":"+15550001111","external_number":"+15550001111"}},
        "conversation_initiation_client_data":{"dynamic_variables":{"system__caller_id":"+15550001111"}}}"#,
    );
    assert_eq!(d.caller(), Err(NoIdentity::Malformed));
    // Inbound: the caller id.
    let d = parsed(
        r#"{"agent_id":"a","conversation_id":"c",
        "metadata":{"phone_call":{"type":"twilio","direction":"inbound",
          "agent_number":"+15550001111","external_number":"+16129782029"}},
        "conversation_initiation_client_data":{"dynamic_variables":{"system__caller_id":"+16129782029"}}}"#,
    );
    assert_eq!(d.caller().unwrap().as_str(), "+16129782029");
}

#[test]
fn a_failed_call_belongs_to_the_person_called() {
    let failure = |json: &str| -> CallInitiationFailureData { serde_json::from_str(json).unwrap() };
    let twilio = failure(
        r#"{"metadata":{"type":"twilio","body":{"Direction":"outbound-api","From":"+15550001111","To":"+441111111111"}}}"#,
    );
    assert_eq!(twilio.party().unwrap().as_str(), "+441111111111");
    let inbound = failure(
        r#"{"metadata":{"type":"twilio","body":{"Direction":"inbound","From":"+16129782029","To":"+15550001111"}}}"#,
    );
    assert_eq!(inbound.party().unwrap().as_str(), "+16129782029");
    let sip = failure(
        r#"{"metadata":{"type":"sip","body":{"from_number":"+15550001111","to_number":"+441111111111"}}}"#,
    );
    assert_eq!(sip.party().unwrap().as_str(), "+441111111111");
    assert!(failure("{}").party().is_none());
}

#[test]
fn a_withheld_caller_id_is_final() {
    let d = parsed(
        r#"{"agent_id":"a","conversation_id":"c","user_id":"+16129782029",
        "conversation_initiation_client_data":{"dynamic_variables":{"system__caller_id":"anonymous"}}}"#,
    );
    assert_eq!(d.caller(), Err(NoIdentity::Withheld));
}
