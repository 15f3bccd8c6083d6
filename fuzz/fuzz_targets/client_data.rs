//! The client-data webhook: its request parser (`ClientDataRequest`, as
//! the route parses it) and the greeting made from it.
//!
//! Invariants checked, beyond "never panics":
//! * a parsed request serializes and parses back to itself;
//! * a caller identity is the trimmed `caller_id` and a valid E.164
//!   number; an agent error names `agent_id`;
//! * the greeting never fails, always says `"type":
//!   "conversation_initiation_client_data"`, reads no memory without a
//!   caller identity, and never shows the known caller's name or topics
//!   to anyone else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recall_fuzz::{
    KNOWN_CALLER, KNOWN_NAME, KNOWN_TOPIC, assert_round_trip, parse_small_body, service,
};
use recall_model::{ClientDataRequest, PhoneNumber};
use recall_service::GreetOutcome;

fuzz_target!(|body: &[u8]| {
    let Some(request) = parse_small_body::<ClientDataRequest>(body) else {
        return;
    };
    assert_round_trip(&request);

    let caller = request.caller();
    if let Ok(phone) = &caller {
        assert_eq!(
            Some(phone.as_str()),
            request.caller_id.as_deref().map(str::trim)
        );
        assert_eq!(PhoneNumber::parse(phone.as_str()).as_ref(), Ok(phone));
    }
    if let Err(e) = request.agent() {
        assert_eq!(e.field(), "agent_id", "{e}");
    }

    let (runtime, service) = service();
    let greeting = runtime.block_on(service.greet(&request));
    match (&caller, &greeting.outcome) {
        (Err(reason), GreetOutcome::NoIdentity(given)) => assert_eq!(reason, given),
        (Err(_), other) => panic!("no caller identity, yet {other:?}"),
        (Ok(_), GreetOutcome::NoIdentity(r)) => panic!("a valid caller called {r:?}"),
        (Ok(phone), GreetOutcome::Recognised { .. }) => assert_eq!(phone.as_str(), KNOWN_CALLER),
        (Ok(_), _) => {}
    }
    let json = serde_json::to_value(&greeting.response).expect("a greeting serializes");
    assert_eq!(json["type"], "conversation_initiation_client_data");
    assert!(json["dynamic_variables"].is_object(), "{json}");
    let shown = json.to_string();
    if caller.as_ref().map(PhoneNumber::as_str) != Ok(KNOWN_CALLER) {
        assert!(
            !shown.contains(KNOWN_NAME) && !shown.contains(KNOWN_TOPIC),
            "another caller's memory leaked: {shown}"
        );
    }
});
