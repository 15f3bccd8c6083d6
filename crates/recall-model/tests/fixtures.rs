//! Every ElevenLabs fixture deserializes, and re-serializing keeps what the
//! rest of the system reads.

use recall_model::{
    ClientDataRequest, ClientDataResponse, DynamicValue, FailureMetadata, PostCallEvent,
    PostCallWebhookRequest, TranscriptRole, TurnMetricsShape, WebhookType,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/elevenlabs/"
    );
    std::fs::read_to_string(format!("{dir}{name}"))
        .unwrap_or_else(|e| panic!("cannot read fixture {name}: {e}"))
}

fn post_call(name: &str) -> PostCallWebhookRequest {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Serializes and parses again; the result must equal the original.
fn round_trip(req: &PostCallWebhookRequest) -> Value {
    let json = serde_json::to_value(req).unwrap();
    let again: PostCallWebhookRequest = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&again, req, "a second parse must give the same value");
    json
}

#[test]
fn every_fixture_file_is_read_by_some_test() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/elevenlabs/"
    );
    let known = [
        "call_initiation_failure.sip.docs-example.json",
        "call_initiation_failure.twilio.docs-example.json",
        "conversation_initiation_client_data.request.CONSTRUCTED.json",
        "conversation_initiation_client_data.response.docs-example.json",
        "hmac_test_vectors.json",
        "post_call_audio.docs-example.json",
        "post_call_transcription.docs-example.json",
    ];
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            known.contains(&name.as_str()),
            "new fixture {name}: add a test for it"
        );
    }
}

#[test]
fn transcription_fixture_parses_with_everything_the_service_reads() {
    let req = post_call("post_call_transcription.docs-example.json");
    assert_eq!(req.webhook_type(), WebhookType::PostCallTranscription);
    assert_eq!(req.event_time().unwrap().as_secs(), 1_739_537_297);
    let PostCallEvent::Transcription(data) = &req.data else {
        panic!("expected a transcription, got {:?}", req.data)
    };
    assert_eq!(data.conversation().unwrap().as_str(), "abc");
    assert_eq!(data.agent().unwrap().as_str(), "xyz");
    assert_eq!(data.status.as_deref(), Some("done"));
    assert_eq!(data.user_id.as_deref(), Some("user123"));
    assert_eq!(data.has_audio, None, "absent in the docs example");

    assert_eq!(data.transcript.len(), 3);
    assert_eq!(data.transcript[0].role, TranscriptRole::Agent);
    assert_eq!(data.transcript[1].role, TranscriptRole::User);
    assert_eq!(
        data.transcript[1].message.as_deref(),
        Some("Hey, can you tell me, like, a fun fact about 11 Labs?")
    );
    assert_eq!(data.transcript[2].time_in_call_secs, Some(9.0));
    assert_eq!(data.transcript[0].tool_calls, None);
    let metrics = data.transcript[2]
        .conversation_turn_metrics
        .as_ref()
        .unwrap();
    assert_eq!(metrics.shape, TurnMetricsShape::Flat);
    assert_eq!(metrics.llm_ttfb_secs(), Some(0.3704247010173276));
    assert_eq!(
        metrics.elapsed_secs("convai_llm_service_ttf_sentence"),
        Some(0.5551181449554861)
    );

    let meta = data.metadata.as_ref().unwrap();
    assert_eq!(data.start_time().unwrap().as_secs(), 1_739_537_297);
    assert_eq!(meta.call_duration_secs, Some(22.0));
    assert_eq!(meta.cost, Some(296.0));
    let deletion = meta.deletion_settings.as_ref().unwrap();
    assert_eq!(deletion.deletion_time_unix_secs, Some(1_802_609_320));
    assert_eq!(deletion.delete_transcript_and_pii, Some(true));
    let feedback = meta.feedback.as_ref().unwrap();
    assert_eq!((feedback.likes, feedback.dislikes), (Some(0), Some(0)));
    assert_eq!(
        meta.authorization_method.as_deref(),
        Some("authorization_header")
    );
    assert_eq!(meta.charging, Some(json!({"dev_discount": true})));
    assert_eq!(meta.termination_reason.as_deref(), Some(""));
    assert!(meta.phone_call.is_none());

    let analysis = data.analysis.as_ref().unwrap();
    assert_eq!(analysis.successful(), Some(true));
    assert!(analysis.data_collection_results.is_empty());
    assert!(
        data.transcript_summary()
            .unwrap()
            .starts_with("The conversation begins")
    );

    let init = data.conversation_initiation_client_data.as_ref().unwrap();
    let agent = init
        .conversation_config_override
        .as_ref()
        .and_then(|o| o.agent.as_ref())
        .unwrap();
    assert_eq!(agent.language.as_deref(), Some("en"));
    assert_eq!(agent.first_message, None);
    assert_eq!(init.dynamic_variables["user_name"], "angelo");
    assert!(
        init.extra.contains_key("branch_id"),
        "unknown fields are kept"
    );
    // No phone call: no caller id to find.
    assert!(data.system_caller_id().is_none());
    assert!(data.caller().is_err());
}

#[test]
fn transcription_fixture_round_trips_keeping_needed_fields() {
    let req = post_call("post_call_transcription.docs-example.json");
    let json = round_trip(&req);
    assert_eq!(json["type"], "post_call_transcription");
    assert_eq!(json["event_timestamp"], 1_739_537_297);
    let data = &json["data"];
    assert_eq!(data["conversation_id"], "abc");
    assert_eq!(data["agent_id"], "xyz");
    assert_eq!(data["transcript"][1]["role"], "user");
    assert_eq!(
        data["transcript"][2]["conversation_turn_metrics"]["convai_llm_service_ttfb"]["elapsed_time"],
        0.3704247010173276
    );
    assert_eq!(data["metadata"]["start_time_unix_secs"], 1_739_537_297);
    assert_eq!(data["metadata"]["charging"]["dev_discount"], true);
    assert_eq!(
        data["analysis"]["transcript_summary"],
        fixture_value("post_call_transcription.docs-example.json")["data"]["analysis"]["transcript_summary"]
    );
    assert_eq!(
        data["conversation_initiation_client_data"]["dynamic_variables"]["user_name"],
        "angelo"
    );
    assert_eq!(
        data["conversation_initiation_client_data"]["conversation_config_override"]["agent"]["language"],
        "en"
    );
}

fn fixture_value(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

#[test]
fn audio_fixture_parses_and_round_trips() {
    let req = post_call("post_call_audio.docs-example.json");
    assert_eq!(req.webhook_type(), WebhookType::PostCallAudio);
    let PostCallEvent::Audio(audio) = &req.data else {
        panic!("expected audio, got {:?}", req.data)
    };
    assert_eq!(audio.conversation_id.as_deref(), Some("abc"));
    assert_eq!(audio.agent_id.as_deref(), Some("xyz"));
    assert!(audio.full_audio.as_deref().unwrap().starts_with("SUQzBAAA"));
    // Nothing is lost: the audio payload has no field we do not model.
    assert_eq!(
        round_trip(&req),
        fixture_value("post_call_audio.docs-example.json")
    );
}

#[test]
fn sip_failure_fixture_parses_and_round_trips_exactly() {
    let req = post_call("call_initiation_failure.sip.docs-example.json");
    assert_eq!(req.webhook_type(), WebhookType::CallInitiationFailure);
    let PostCallEvent::InitiationFailure(failure) = &req.data else {
        panic!("expected a failure, got {:?}", req.data)
    };
    assert_eq!(failure.failure_reason.as_deref(), Some("busy"));
    let Some(FailureMetadata::Sip(body)) = &failure.metadata else {
        panic!("expected sip metadata, got {:?}", failure.metadata)
    };
    assert_eq!(body.sip_status_code, Some(486));
    assert_eq!(body.from_number.as_deref(), Some("+441111111111"));
    assert_eq!(body.extra["twirp_code"], "unavailable");
    assert_eq!(
        round_trip(&req),
        fixture_value("call_initiation_failure.sip.docs-example.json")
    );
}

#[test]
fn twilio_failure_fixture_parses_and_round_trips_exactly() {
    let req = post_call("call_initiation_failure.twilio.docs-example.json");
    let PostCallEvent::InitiationFailure(failure) = &req.data else {
        panic!("expected a failure, got {:?}", req.data)
    };
    let metadata = failure.metadata.as_ref().unwrap();
    assert_eq!(metadata.kind(), "twilio");
    let FailureMetadata::Twilio(body) = metadata else {
        panic!("expected twilio metadata")
    };
    assert_eq!(body["CallStatus"], "busy");
    assert_eq!(body["SipResponseCode"], "487");
    assert_eq!(
        round_trip(&req),
        fixture_value("call_initiation_failure.twilio.docs-example.json")
    );
}

#[test]
fn every_post_call_fixture_envelope_reads_type_and_ids() {
    for (name, kind) in [
        (
            "post_call_transcription.docs-example.json",
            WebhookType::PostCallTranscription,
        ),
        (
            "post_call_audio.docs-example.json",
            WebhookType::PostCallAudio,
        ),
        (
            "call_initiation_failure.sip.docs-example.json",
            WebhookType::CallInitiationFailure,
        ),
        (
            "call_initiation_failure.twilio.docs-example.json",
            WebhookType::CallInitiationFailure,
        ),
    ] {
        let request: PostCallWebhookRequest = serde_json::from_str(&fixture(name)).unwrap();
        assert_eq!(request.webhook_type(), kind, "{name}");
        assert_eq!(request.data.conversation_id(), Some("abc"), "{name}");
        assert_eq!(request.data.agent_id(), Some("xyz"), "{name}");
        assert!(request.event_time().is_ok(), "{name}");
    }
}

#[test]
fn client_data_request_fixture_parses() {
    let req: ClientDataRequest = serde_json::from_str(&fixture(
        "conversation_initiation_client_data.request.CONSTRUCTED.json",
    ))
    .unwrap();
    assert_eq!(req.caller().unwrap().as_str(), "+12025550148");
    assert_eq!(req.agent().unwrap().as_str(), "agent_0000example");
    assert_eq!(req.called_number.as_deref(), Some("+12025550158"));
    assert_eq!(
        req.call_sid.as_deref(),
        Some("CA00000000000000000000000000000000")
    );
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        fixture_value("conversation_initiation_client_data.request.CONSTRUCTED.json")
    );
}

#[test]
fn client_data_response_docs_example_parses_and_round_trips() {
    let original = fixture_value("conversation_initiation_client_data.response.docs-example.json");
    let resp: ClientDataResponse = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(
        resp.dynamic_variables.extra["customer_name"],
        DynamicValue::from("John Doe")
    );
    let agent = resp
        .conversation_config_override
        .as_ref()
        .and_then(|o| o.agent.as_ref())
        .unwrap();
    assert_eq!(
        agent.first_message.as_deref(),
        Some("Hi, how can I help you today?")
    );
    assert_eq!(agent.prompt.as_ref().unwrap().extra["llm"], "gpt-4o");

    let json = serde_json::to_value(&resp).unwrap();
    // Every field of the example survives, unknown ones included ...
    let mut expected = original;
    // ... and the three Recall variables are always present, empty here.
    for key in ["user_name", "user_profile_summary", "last_call_summary"] {
        expected["dynamic_variables"][key] = json!("");
    }
    assert_eq!(json, expected);
    let again: ClientDataResponse = serde_json::from_value(json).unwrap();
    assert_eq!(again, resp);
}

#[test]
fn hmac_vectors_name_fixtures_that_parse_as_post_call_events() {
    let vectors: Vec<Value> = serde_json::from_str(&fixture("hmac_test_vectors.json")).unwrap();
    assert!(!vectors.is_empty());
    for vector in vectors {
        let body = match (vector.get("file"), vector.get("inline_body")) {
            (Some(file), _) => fixture(file.as_str().unwrap()),
            (None, Some(inline)) => inline.as_str().unwrap().to_owned(),
            _ => panic!("vector without a body: {vector}"),
        };
        let req: PostCallWebhookRequest = serde_json::from_str(&body).unwrap();
        assert!(!req.webhook_type().is_unknown());
    }
}
