//! Property tests: valid values round-trip through serde; invalid ones
//! cannot be deserialized.

use proptest::prelude::*;
use recall_model::{
    AgentId, ClientDataResponse, ConversationId, DynamicValue, DynamicVariables, MAX_ID_LEN,
    MemoryItem, MemorySector, PhoneNumber, PostCallWebhookRequest, Salience, UnixTimestamp,
    ui::MemoryDisplay,
};
use serde_json::{Value, json};

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn sector() -> impl Strategy<Value = MemorySector> {
    prop::sample::select(MemorySector::ALL.to_vec())
}

proptest! {
    #[test]
    fn valid_phone_numbers_round_trip(n in "\\+[1-9][0-9]{1,14}") {
        let parsed: PhoneNumber = serde_json::from_str(&json_str(&n)).unwrap();
        prop_assert_eq!(parsed.as_str(), n.as_str());
        prop_assert_eq!(serde_json::to_string(&parsed).unwrap(), json_str(&n));
    }

    #[test]
    fn too_long_phone_numbers_fail(n in "\\+[1-9][0-9]{15,20}") {
        prop_assert!(serde_json::from_str::<PhoneNumber>(&json_str(&n)).is_err());
    }

    #[test]
    fn phone_numbers_without_plus_or_with_leading_zero_fail(
        digits in "[0-9]{2,15}",
    ) {
        prop_assert!(serde_json::from_str::<PhoneNumber>(&json_str(&digits)).is_err());
        let zero = format!("+0{digits}");
        prop_assert!(serde_json::from_str::<PhoneNumber>(&json_str(&zero)).is_err());
    }

    #[test]
    fn any_text_that_parses_is_e164(s in "\\PC{0,20}") {
        if let Ok(n) = PhoneNumber::parse(&s) {
            let digits = &n.as_str()[1..];
            prop_assert!(n.as_str().starts_with('+'));
            prop_assert!((2..=15).contains(&digits.len()));
            prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn valid_salience_round_trips(v in 0.0f64..=1.0) {
        let s = Salience::new(v).unwrap();
        let back: Salience = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn out_of_range_salience_fails(v in prop_oneof![-1e300f64..-1e-9, 1.000_000_001f64..1e300]) {
        prop_assert!(Salience::new(v).is_err());
        prop_assert!(serde_json::from_str::<Salience>(&v.to_string()).is_err());
    }

    #[test]
    fn valid_ids_round_trip(id in "[A-Za-z0-9_.-]{1,128}") {
        prop_assume!(!id.contains("..") && id != ".");
        let c: ConversationId = serde_json::from_str(&json_str(&id)).unwrap();
        prop_assert_eq!(c.as_str(), id.as_str());
        prop_assert_eq!(serde_json::to_string(&c).unwrap(), json_str(&id));
        let a: AgentId = serde_json::from_str(&json_str(&id)).unwrap();
        prop_assert_eq!(a.as_str(), id.as_str());
    }

    #[test]
    fn ids_with_a_separator_or_traversal_fail(
        head in "[a-z0-9]{0,10}",
        bad in prop::sample::select(vec!["/", "\\", "..", "\0", "\n", "\u{1b}"]),
        tail in "[a-z0-9]{0,10}",
    ) {
        let id = format!("{head}{bad}{tail}");
        prop_assert!(serde_json::from_str::<ConversationId>(&json_str(&id)).is_err());
        prop_assert!(serde_json::from_str::<AgentId>(&json_str(&id)).is_err());
    }

    #[test]
    fn any_parsed_id_is_a_safe_file_name(s in "\\PC{0,140}") {
        if let Ok(id) = ConversationId::parse(&s) {
            let id = id.as_str();
            prop_assert!(!id.is_empty() && id.len() <= MAX_ID_LEN);
            prop_assert!(!id.contains('/') && !id.contains('\\') && !id.contains(".."));
            prop_assert!(!id.chars().any(char::is_control));
        }
    }

    #[test]
    fn timestamps_round_trip_as_seconds_and_rfc3339(secs in 0i64..=UnixTimestamp::MAX_SECS) {
        let t = UnixTimestamp::from_secs(secs).unwrap();
        let back: UnixTimestamp =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        prop_assert_eq!(back, t);
        prop_assert_eq!(UnixTimestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn memory_items_and_displays_round_trip(
        content in "\\PC{0,40}",
        sector in sector(),
        salience in 0.0f64..=1.0,
        ts in proptest::option::of(0i64..=UnixTimestamp::MAX_SECS),
        score in proptest::option::of(0u32..=1000),
    ) {
        let item = MemoryItem {
            content,
            sector,
            salience: Salience::new(salience).unwrap(),
            timestamp: ts.map(|s| UnixTimestamp::from_secs(s).unwrap()),
            score: score.map(|s| f64::from(s) / 1000.0),
        };
        let json = serde_json::to_string(&item).unwrap();
        let back: MemoryItem = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &item);
        let display = MemoryDisplay::from(item);
        let json = serde_json::to_string(&display).unwrap();
        let back: MemoryDisplay = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, display);
    }

    #[test]
    fn unknown_sector_names_fail(name in "[a-z]{0,12}") {
        prop_assume!(MemorySector::ALL.iter().all(|s| s.as_str() != name));
        prop_assert!(serde_json::from_str::<MemorySector>(&json_str(&name)).is_err());
    }

    #[test]
    fn client_data_responses_round_trip(
        name in "\\PC{0,20}",
        extra in prop::collection::btree_map(
            "[a-z_]{1,12}",
            prop_oneof![
                "\\PC{0,10}".prop_map(DynamicValue::String),
                any::<i64>().prop_map(DynamicValue::from),
                any::<bool>().prop_map(DynamicValue::from),
            ],
            0..5,
        ),
    ) {
        let mut vars = DynamicVariables { user_name: name, ..DynamicVariables::default() };
        for (k, v) in extra {
            vars.insert(k, v);
        }
        let resp = ClientDataResponse::new(vars).with_first_message("Hi");
        let json = serde_json::to_value(&resp).unwrap();
        prop_assert_eq!(&json["type"], "conversation_initiation_client_data");
        let back: ClientDataResponse = serde_json::from_value(json).unwrap();
        prop_assert_eq!(back, resp);
    }

    #[test]
    fn unknown_post_call_fields_survive_a_round_trip(
        key in "x_[a-z]{1,10}",
        value in prop_oneof![
            any::<i64>().prop_map(Value::from),
            "\\PC{0,10}".prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ],
    ) {
        let mut body = json!({"type": "post_call_transcription", "event_timestamp": 1,
            "data": {"agent_id": "a", "conversation_id": "c",
                "transcript": [{"role": "user", "message": "hi"}],
                "metadata": {}, "analysis": {}}});
        body[&key] = value.clone();
        body["data"][&key] = value.clone();
        body["data"]["transcript"][0][&key] = value.clone();
        body["data"]["metadata"][&key] = value.clone();
        body["data"]["analysis"][&key] = value.clone();
        let req: PostCallWebhookRequest = serde_json::from_value(body).unwrap();
        let back = serde_json::to_value(&req).unwrap();
        prop_assert_eq!(&back[&key], &value);
        prop_assert_eq!(&back["data"][&key], &value);
        prop_assert_eq!(&back["data"]["transcript"][0][&key], &value);
        prop_assert_eq!(&back["data"]["metadata"][&key], &value);
        prop_assert_eq!(&back["data"]["analysis"][&key], &value);
    }
}
