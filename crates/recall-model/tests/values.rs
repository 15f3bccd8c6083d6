//! Boundary cases of every validation rule, and caller-id classification.

use recall_model::{
    AgentId, ConversationId, DecayLambda, MAX_ID_LEN, MemorySector, NoIdentity, PhoneNumber,
    Salience, SalienceLabel, UnixTimestamp, WebhookType, classify_caller_id,
};

// --- Salience -------------------------------------------------------------

#[test]
fn salience_accepts_both_ends_of_the_range() {
    assert_eq!(Salience::new(0.0).unwrap().get(), 0.0);
    assert_eq!(Salience::new(1.0).unwrap().get(), 1.0);
    let neg_zero = Salience::new(-0.0).unwrap().get();
    assert!(neg_zero == 0.0 && neg_zero.is_sign_positive());
}

#[test]
fn salience_rejects_out_of_range_and_non_finite_naming_the_rule() {
    for bad in [-0.0001, 1.0001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = Salience::new(bad).unwrap_err();
        assert_eq!(err.field(), "salience", "{bad}");
        assert!(err.to_string().contains("0.0 to 1.0"), "{err}");
    }
}

#[test]
fn salience_labels_follow_the_seed_levels() {
    assert_eq!(Salience::HIGH.label(), SalienceLabel::High);
    assert_eq!(Salience::MEDIUM.label(), SalienceLabel::Medium);
    assert_eq!(Salience::LOW.label(), SalienceLabel::Low);
    assert_eq!(Salience::new(0.8).unwrap().label(), SalienceLabel::High);
    assert_eq!(
        Salience::new(0.7999).unwrap().label(),
        SalienceLabel::Medium
    );
    assert_eq!(Salience::new(0.5).unwrap().label(), SalienceLabel::Medium);
    assert_eq!(Salience::new(0.4999).unwrap().label(), SalienceLabel::Low);
    assert_eq!(Salience::MIN.label(), SalienceLabel::Low);
}

#[test]
fn salience_deserialization_goes_through_the_rule() {
    assert_eq!(
        serde_json::from_str::<Salience>("0.9").unwrap(),
        Salience::HIGH
    );
    for bad in ["1.0001", "-0.0001", "\"0.5\"", "null"] {
        assert!(serde_json::from_str::<Salience>(bad).is_err(), "{bad}");
    }
}

// --- PhoneNumber ----------------------------------------------------------

#[test]
fn e164_accepts_two_to_fifteen_digits() {
    assert!(PhoneNumber::parse("+12").is_ok(), "2 digits in all");
    assert!(PhoneNumber::parse("+123456789012345").is_ok(), "15 digits");
    assert!(PhoneNumber::parse("+16129782029").is_ok());
}

#[test]
fn e164_rejects_everything_else_naming_the_rule() {
    for bad in [
        "+1",
        "+1234567890123456",
        "+0123456789",
        "+",
        "",
        "16129782029",
        "+1 612 978 2029",
        " +16129782029",
        "+16129782029 ",
        "+1-612-978-2029",
        "+1612978202a",
        "++16129782029",
        "+１６１２９７８２０２９",
    ] {
        let err = PhoneNumber::parse(bad).unwrap_err();
        assert_eq!(err.field(), "phone_number", "{bad:?}");
        assert!(err.to_string().contains("E.164"), "{err}");
    }
}

#[test]
fn phone_number_debug_is_masked() {
    let n = PhoneNumber::parse("+16129782029").unwrap();
    let shown = format!("{n:?}");
    assert!(!shown.contains("16129782029"), "{shown}");
    assert_eq!(n.masked(), "+1612***2029");
    // Short numbers still hide something.
    assert_eq!(PhoneNumber::parse("+12").unwrap().masked(), "+***");
    assert_eq!(PhoneNumber::parse("+123456").unwrap().masked(), "+12***56");
}

#[test]
fn phone_number_serde_goes_through_parse() {
    let n: PhoneNumber = serde_json::from_str("\"+16129782029\"").unwrap();
    assert_eq!(serde_json::to_string(&n).unwrap(), "\"+16129782029\"");
    let err = serde_json::from_str::<PhoneNumber>("\"+1\"").unwrap_err();
    assert!(err.to_string().contains("phone_number"), "{err}");
}

// --- Path-safe ids --------------------------------------------------------

#[test]
fn path_ids_accept_ordinary_ids_up_to_the_limit() {
    assert!(ConversationId::parse("conv_01jxd5y165f62a0v7gtr6bkg56").is_ok());
    assert!(ConversationId::parse("550e8400-e29b-41d4-a716-446655440000").is_ok());
    assert!(AgentId::parse("agent_abc123").is_ok());
    assert!(
        ConversationId::parse("a.b").is_ok(),
        "a single dot is harmless"
    );
    assert!(ConversationId::parse(&"x".repeat(MAX_ID_LEN)).is_ok());
}

#[test]
fn path_ids_reject_traversal_separators_and_control_characters() {
    let long = "x".repeat(MAX_ID_LEN + 1);
    for bad in [
        "",
        "../etc",
        "..",
        ".",
        "a/../b",
        "a/b",
        "/abs",
        "a\\b",
        "..\\x",
        "a\0b",
        "a\nb",
        "a\tb",
        "a\u{7f}b",
        "a b",
        long.as_str(),
    ] {
        let err = ConversationId::parse(bad).unwrap_err();
        assert_eq!(err.field(), "conversation_id", "{bad:?}");
        let err = AgentId::parse(bad).unwrap_err();
        assert_eq!(err.field(), "agent_id", "{bad:?}");
    }
}

#[test]
fn path_id_errors_name_the_rule() {
    let msg = |raw: &str| ConversationId::parse(raw).unwrap_err().to_string();
    assert!(msg("../x").contains(".."), "{}", msg("../x"));
    assert!(msg("a/b").contains("'/'"), "{}", msg("a/b"));
    assert!(msg("a\0b").contains("NUL"), "{}", msg("a\0b"));
    assert!(msg(&"x".repeat(200)).contains("128"));
    assert!(msg("").contains("empty"));
}

#[test]
fn overlong_values_are_shortened_in_messages() {
    let huge = "9".repeat(100_000);
    let msg = PhoneNumber::parse(&huge).unwrap_err().to_string();
    assert!(msg.len() < 300, "message is {} bytes", msg.len());
    assert!(msg.contains("100000 bytes"), "{msg}");
}

// --- Sector, decay, timestamps, webhook type ------------------------------

#[test]
fn sectors_are_the_five_lowercase_names() {
    for sector in MemorySector::ALL {
        assert_eq!(MemorySector::parse(sector.as_str()).unwrap(), sector);
        let json = serde_json::to_string(&sector).unwrap();
        assert_eq!(json, format!("\"{}\"", sector.as_str()));
    }
    for bad in ["Semantic", "SEMANTIC", "", "memory", " semantic"] {
        let err = MemorySector::parse(bad).unwrap_err();
        assert_eq!(err.field(), "sector");
        assert!(err.to_string().contains("reflective"), "{err}");
    }
}

#[test]
fn decay_lambda_is_finite_and_not_negative() {
    assert!(DecayLambda::new(0.0).unwrap().is_permanent());
    assert!(!DecayLambda::new(0.015).unwrap().is_permanent());
    for bad in [-0.0001, f64::NAN, f64::INFINITY] {
        assert_eq!(DecayLambda::new(bad).unwrap_err().field(), "decay_lambda");
    }
    assert_eq!(DecayLambda::PERMANENT.factor(86_400 * 365), 1.0);
    let one_day = DecayLambda::new(1.0).unwrap().factor(86_400);
    assert!((one_day - (-1.0f64).exp()).abs() < 1e-12);
    assert_eq!(DecayLambda::new(1.0).unwrap().factor(-5), 1.0);
}

#[test]
fn unix_timestamps_are_seconds_from_1970_to_9999() {
    assert!(UnixTimestamp::from_secs(0).is_ok());
    assert!(UnixTimestamp::from_secs(UnixTimestamp::MAX_SECS).is_ok());
    for bad in [-1, UnixTimestamp::MAX_SECS + 1, 1_739_537_297_000_000] {
        assert_eq!(
            UnixTimestamp::from_secs(bad).unwrap_err().field(),
            "timestamp"
        );
    }
    assert!(serde_json::from_str::<UnixTimestamp>("-1").is_err());
    assert!(serde_json::from_str::<UnixTimestamp>("1.5").is_err());
}

#[test]
fn unix_timestamps_format_and_parse_rfc3339() {
    let t = UnixTimestamp::from_secs(0).unwrap();
    assert_eq!(t.to_rfc3339(), "1970-01-01T00:00:00Z");
    let max = UnixTimestamp::from_secs(UnixTimestamp::MAX_SECS).unwrap();
    assert_eq!(max.to_rfc3339(), "9999-12-31T23:59:59Z");
    assert_eq!(
        UnixTimestamp::parse_rfc3339(&max.to_rfc3339()).unwrap(),
        max
    );
    for bad in ["", "2025-02-14", "1969-12-31T23:59:59Z", "1739537297"] {
        assert_eq!(
            UnixTimestamp::parse_rfc3339(bad).unwrap_err().field(),
            "timestamp",
            "{bad:?}"
        );
    }
}

#[test]
fn webhook_types_known_and_unknown() {
    for (raw, kind) in [
        (
            "post_call_transcription",
            WebhookType::PostCallTranscription,
        ),
        ("post_call_audio", WebhookType::PostCallAudio),
        (
            "call_initiation_failure",
            WebhookType::CallInitiationFailure,
        ),
    ] {
        assert_eq!(WebhookType::parse(raw), kind);
        assert_eq!(kind.as_str(), raw);
        assert!(!kind.is_unknown());
    }
    let unknown: WebhookType = serde_json::from_str("\"Post_Call_Audio\"").unwrap();
    assert_eq!(unknown, WebhookType::Unknown("Post_Call_Audio".into()));
    assert_eq!(
        serde_json::to_string(&unknown).unwrap(),
        "\"Post_Call_Audio\""
    );
}

// --- Caller identity ------------------------------------------------------

#[test]
fn usable_caller_ids_become_phone_numbers() {
    assert_eq!(
        classify_caller_id(Some("+16129782029")).unwrap().as_str(),
        "+16129782029"
    );
    assert_eq!(
        classify_caller_id(Some("  +442071838750\n"))
            .unwrap()
            .as_str(),
        "+442071838750",
        "surrounding white space is ignored"
    );
}

#[test]
fn withheld_words_in_any_case_and_spelling_are_withheld() {
    for raw in [
        "anonymous",
        "Anonymous",
        "RESTRICTED",
        "unknown",
        "private",
        "Unavailable",
        "withheld",
        "Private Number",
        "not-available",
        "unknown_caller",
    ] {
        assert_eq!(
            classify_caller_id(Some(raw)),
            Err(NoIdentity::Withheld),
            "{raw}"
        );
    }
}

#[test]
fn keypad_encodings_are_withheld_not_numbers() {
    for raw in [
        "+266696687",
        "+7378742833",
        "+86282452253",
        "+8656696",
        "+77748281",
    ] {
        assert!(PhoneNumber::parse(raw).is_ok(), "{raw} is valid E.164 ...");
        assert_eq!(
            classify_caller_id(Some(raw)),
            Err(NoIdentity::Withheld),
            "... but {raw} spells a withheld word"
        );
    }
}

#[test]
fn placeholders_empty_and_malformed_have_their_reasons() {
    assert_eq!(
        classify_caller_id(Some("{{system__caller_id}}")),
        Err(NoIdentity::Placeholder)
    );
    assert_eq!(
        classify_caller_id(Some("+1{{x}}")),
        Err(NoIdentity::Placeholder)
    );
    assert_eq!(classify_caller_id(None), Err(NoIdentity::Missing));
    assert_eq!(classify_caller_id(Some("")), Err(NoIdentity::Missing));
    assert_eq!(classify_caller_id(Some("   ")), Err(NoIdentity::Missing));
    for raw in [
        "16129782029",
        "+1",
        "+1 612 978 2029",
        "sip:alice@example.com",
    ] {
        assert_eq!(
            classify_caller_id(Some(raw)),
            Err(NoIdentity::Malformed),
            "{raw}"
        );
    }
    assert_eq!(NoIdentity::Withheld.to_string(), "withheld");
}
