//! The search-data webhook (the agent's memory tool): its request parser
//! (`SearchDataRequest`, as the route parses it) and the search made from
//! it.
//!
//! Invariants checked, beyond "never panics":
//! * a parsed request serializes and parses back to itself;
//! * the query is trimmed and not blank; errors name `query`,
//!   `conversation_id` or `agent_id`;
//! * the search refuses a request without a caller identity (and only
//!   then says `user_id`), refuses with a message naming the bad field,
//!   never returns more than the configured maximum, and never returns the
//!   known caller's memories to anyone else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recall_fuzz::{
    KNOWN_CALLER, KNOWN_NAME, KNOWN_TOPIC, assert_round_trip, parse_small_body, service,
};
use recall_model::SearchDataRequest;
use recall_service::SearchError;

const QUERY_FIELDS: &[&str] = &[
    "query",
    "k:",
    "min_salience:",
    "same_agent_only:",
    "agent_id",
];

fuzz_target!(|body: &[u8]| {
    let Some(request) = parse_small_body::<SearchDataRequest>(body) else {
        return;
    };
    assert_round_trip(&request);

    match request.query_text() {
        Ok(q) => assert!(!q.is_empty() && q == q.trim(), "{q:?}"),
        Err(e) => assert_eq!(e.field(), "query", "{e}"),
    }
    if let Some(Err(e)) = request.conversation() {
        assert_eq!(e.field(), "conversation_id", "{e}");
    }
    if let Some(Err(e)) = request.agent() {
        assert_eq!(e.field(), "agent_id", "{e}");
    }

    let (runtime, service) = service();
    let caller = request.caller();
    match runtime.block_on(service.search(&request)) {
        Err(SearchError::InvalidCaller(reason)) => {
            assert!(caller.is_err(), "a valid caller refused: {reason}");
            assert!(reason.starts_with("user_id"), "{reason}");
        }
        Err(SearchError::InvalidQuery(reason)) => {
            assert!(caller.is_ok());
            assert!(
                QUERY_FIELDS.iter().any(|f| reason.contains(f)),
                "a refusal that names no field: {reason}"
            );
            if request.query_text().is_err() {
                assert!(reason.contains("query"), "{reason}");
            }
        }
        Err(SearchError::Store(e)) => panic!("the in-memory store failed: {e}"),
        Err(other) => panic!("an error this target does not know: {other}"),
        Ok(response) => {
            let phone = caller.expect("searched without a caller identity");
            assert!(request.query_text().is_ok());
            assert!(response.memories.len() <= service.config().search_max_k);
            if phone.as_str() != KNOWN_CALLER {
                let shown = serde_json::to_string(&response).expect("a response serializes");
                assert!(
                    response.memories.is_empty()
                        && response.profile.is_none()
                        && !shown.contains(KNOWN_NAME)
                        && !shown.contains(KNOWN_TOPIC),
                    "another caller's memory leaked: {shown}"
                );
            }
        }
    }
});
