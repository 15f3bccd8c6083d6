//! The conformance suite of the [`CallIndex`] port: its rules as
//! executable checks, for any implementation.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use recall_service::InMemoryCallIndex;
//! use recall_service::conformance::calls;
//!
//! calls::run_all(&InMemoryCallIndex::new()).await;
//! # }
//! ```
//!
//! Each check is also a public function. A check panics with a message
//! starting `conformance:` that names the rule broken. Checks invent their
//! own agents, conversations and callers and query by agent, so they do
//! not see each other's calls; [`rebuild_replaces_everything`] replaces the
//! whole index, so run the suite on an index of its own.

use recall_model::{ConversationId, PhoneNumber, PostCallWebhookRequest, UnixTimestamp};
use serde_json::{Value, json};

use super::{
    AnalyticsQuery, CallIndex, CallIndexError, CallQuery, IndexedCall, MAX_CALL_PAGE,
    ProcessedEvent,
};

/// Runs every check against `index`, one after another.
///
/// # Panics
/// On the first rule the index breaks, with a message naming it.
pub async fn run_all<I: CallIndex + ?Sized>(index: &I) {
    a_call_round_trips(index).await;
    redelivery_changes_nothing(index).await;
    a_transcription_replaces_a_failure_never_the_reverse(index).await;
    audio_may_come_before_or_after_the_call(index).await;
    pages_are_newest_first_and_cover_all_once(index).await;
    filters_apply_and_ranges_include_both_ends(index).await;
    bad_limits_and_cursors_are_refused(index).await;
    analytics_follow_the_definitions(index).await;
    daily_counts_per_utc_day(index).await;
    forgetting_a_caller_spares_the_others(index).await;
    deleted_audio_is_unmarked_and_the_call_stays(index).await;
    silent_callers_are_those_without_a_call_since(index).await;
    an_invalid_agent_is_refused_and_changes_nothing(index).await;
    rebuild_replaces_everything(index).await;
}

fn fail(rule: &str, detail: impl std::fmt::Debug) -> ! {
    panic!("conformance: {rule}: {detail:?}")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn invented_caller() -> PhoneNumber {
    let digits = uuid::Uuid::new_v4().as_u128() % 10_000_000_000;
    PhoneNumber::parse(&format!("+1555{digits:010}")).expect("a valid invented number")
}

fn conv(raw: &str) -> ConversationId {
    ConversationId::parse(raw).expect("a valid invented conversation id")
}

fn secs(secs: i64) -> UnixTimestamp {
    UnixTimestamp::from_secs(secs).expect("a valid time")
}

fn event(envelope: Value, caller: Option<&PhoneNumber>) -> ProcessedEvent {
    let id = envelope["data"]["conversation_id"]
        .as_str()
        .expect("an invented id")
        .to_owned();
    let (request, _) =
        PostCallWebhookRequest::from_value_tolerant(envelope).expect("a usable invented event");
    ProcessedEvent {
        caller: caller.cloned(),
        ..ProcessedEvent::from_request(conv(&id), request)
    }
}

/// A connected call of `agent` at `start`.
fn call(
    agent: &str,
    id: &str,
    caller: Option<&PhoneNumber>,
    start: i64,
    outcome: &str,
) -> ProcessedEvent {
    event(
        json!({"type": "post_call_transcription", "event_timestamp": start + 60,
        "data": {"agent_id": agent, "conversation_id": id, "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
                {"role": "user", "message": "I'd like to book.", "time_in_call_secs": 3,
                    "interrupted": true},
                {"role": "agent", "message": null, "tool_calls": [{"name": "search"}]}],
            "metadata": {"start_time_unix_secs": start, "call_duration_secs": 61.9, "cost": 120.5},
            "analysis": {"call_successful": outcome, "transcript_summary": "Booked a table.",
                "call_summary_title": "Table booking",
                "data_collection_results": {
                    "first_name": {"data_collection_id": "first_name", "value": "Ada"},
                    "email": {"data_collection_id": "email", "value": null}}}}}),
        caller,
    )
}

/// A call of `agent` that never connected, at `time`.
fn failure(agent: &str, id: &str, caller: Option<&PhoneNumber>, time: i64) -> ProcessedEvent {
    event(
        json!({"type": "call_initiation_failure", "event_timestamp": time,
        "data": {"agent_id": agent, "conversation_id": id, "failure_reason": "busy",
            "metadata": {"type": "sip", "body": {"to_number": "+15550000000"}}}}),
        caller,
    )
}

fn by_agent(agent: &str) -> CallQuery {
    CallQuery {
        agent: Some(recall_model::AgentId::parse(agent).expect("a valid invented agent")),
        ..CallQuery::default()
    }
}

fn range_of(agent: &str) -> AnalyticsQuery {
    AnalyticsQuery {
        agent: by_agent(agent).agent,
        ..AnalyticsQuery::default()
    }
}

async fn record<I: CallIndex + ?Sized>(index: &I, event: &ProcessedEvent) {
    if let Err(e) = index.record(event).await {
        fail("a valid event is recorded", e);
    }
}

async fn listed<I: CallIndex + ?Sized>(index: &I, query: CallQuery) -> Vec<IndexedCall> {
    match index.list_calls(query).await {
        Ok(page) => page.items,
        Err(e) => fail("list_calls answers", e),
    }
}

fn ids(calls: &[IndexedCall]) -> Vec<&str> {
    calls
        .iter()
        .map(|c| c.call.conversation_id.as_str())
        .collect()
}

/// A call's row holds what the event said, as the UI shows it.
pub async fn a_call_round_trips<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let id = unique("conv");
    let caller = invented_caller();
    record(
        index,
        &call(&agent, &id, Some(&caller), 1_739_537_297, "success"),
    )
    .await;
    let calls = listed(index, by_agent(&agent)).await;
    let [listed] = calls.as_slice() else {
        fail("one call is listed once", ids(&calls));
    };
    let summary = &listed.call;
    let expected = (
        summary.conversation_id.as_str(),
        summary.agent_id.as_str(),
        summary.status.as_str(),
        summary.duration,
        summary.cost,
        summary.summary.as_deref(),
        summary.title.as_deref(),
        summary.successful,
    );
    if expected
        != (
            id.as_str(),
            agent.as_str(),
            "done",
            Some(61.0),
            Some(120.5),
            Some("Booked a table."),
            Some("Table booking"),
            Some(true),
        )
    {
        fail("the listed call holds the event's figures", expected);
    }
    if listed.caller.as_ref() != Some(&caller)
        || listed.start_time != secs(1_739_537_297)
        || listed.has_audio
        || listed.initiation_failed
    {
        fail(
            "the listed call has its caller, start time and no audio",
            listed,
        );
    }
    let detail = match index.get_call(&conv(&id)).await {
        Ok(Some(detail)) => detail,
        other => fail("get_call finds a recorded call", other.map(|d| d.is_some())),
    };
    let turns: Vec<(&str, &str, bool)> = detail
        .transcript
        .iter()
        .map(|t| (t.role.as_str(), t.message.as_str(), t.interrupted))
        .collect();
    if turns
        != [
            ("agent", "Hello, how can I help?", false),
            ("user", "I'd like to book.", true),
        ]
    {
        fail("the transcript keeps spoken turns in order", turns);
    }
    if detail.call != listed.call || detail.caller_phone.as_ref() != Some(&caller) {
        fail("get_call agrees with the list", &detail);
    }
    match index.get_call(&conv(&unique("absent"))).await {
        Ok(None) => {}
        other => fail("an unknown call is None", other.map(|d| d.is_some())),
    }
    index.forget_caller(&caller).await.ok();
}

/// Recording the same events again changes nothing.
pub async fn redelivery_changes_nothing<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let caller = invented_caller();
    let one = call(&agent, &unique("conv"), Some(&caller), 1_000, "success");
    record(index, &one).await;
    let before = index.analytics(range_of(&agent)).await.ok();
    let listed_before = listed(index, by_agent(&agent)).await;
    for _ in 0..3 {
        record(index, &one).await;
    }
    if index.analytics(range_of(&agent)).await.ok() != before
        || listed(index, by_agent(&agent)).await != listed_before
    {
        fail("redelivered events change nothing", before);
    }
    index.forget_caller(&caller).await.ok();
}

/// A transcription replaces a failure of the same conversation; a failure
/// never replaces a transcription.
pub async fn a_transcription_replaces_a_failure_never_the_reverse<I: CallIndex + ?Sized>(
    index: &I,
) {
    let agent = unique("agent");
    let id = unique("conv");
    let caller = invented_caller();
    let failed = failure(&agent, &id, Some(&caller), 500);
    record(index, &failed).await;
    let calls = listed(index, by_agent(&agent)).await;
    let first = calls.first().map(|c| {
        (
            c.initiation_failed,
            c.call.status.clone(),
            c.call.successful,
            c.call.duration,
        )
    });
    if first != Some((true, "failed".to_owned(), Some(false), None)) {
        fail(
            "a call that never connected is failed and unsuccessful",
            first,
        );
    }
    record(index, &call(&agent, &id, Some(&caller), 600, "success")).await;
    record(index, &failed).await;
    let calls = listed(index, by_agent(&agent)).await;
    if calls.len() != 1 || calls[0].initiation_failed || calls[0].call.status != "done" {
        fail("the transcription wins over the failure", calls);
    }
    index.forget_caller(&caller).await.ok();
}

/// Audio recorded before the call's transcription still counts.
pub async fn audio_may_come_before_or_after_the_call<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let caller = invented_caller();
    let (early, late) = (unique("early"), unique("late"));
    record(index, &ProcessedEvent::audio_stored(conv(&early))).await;
    record(index, &call(&agent, &early, Some(&caller), 100, "success")).await;
    record(index, &call(&agent, &late, Some(&caller), 200, "success")).await;
    record(index, &ProcessedEvent::audio_stored(conv(&late))).await;
    let calls = listed(index, by_agent(&agent)).await;
    if calls.len() != 2 || !calls.iter().all(|c| c.has_audio) {
        fail("audio before or after the call is shown", calls);
    }
    index.forget_caller(&caller).await.ok();
}

/// Newest first (start time, then conversation id, descending); pages
/// cover every call once; cursors stay valid when calls are added.
pub async fn pages_are_newest_first_and_cover_all_once<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let caller = invented_caller();
    for (id, start) in [
        ("c_a", 300),
        ("c_b", 300),
        ("c_c", 100),
        ("c_d", 200),
        ("c_e", 50),
    ] {
        let id = format!("{agent}_{id}");
        record(index, &call(&agent, &id, Some(&caller), start, "success")).await;
    }
    let mut seen = Vec::new();
    let mut query = CallQuery {
        limit: Some(2),
        ..by_agent(&agent)
    };
    let mut pages = 0;
    loop {
        let page = match index.list_calls(query.clone()).await {
            Ok(page) => page,
            Err(e) => fail("pages are listed", e),
        };
        pages += 1;
        if page.items.len() > 2 {
            fail("a page holds at most its limit", ids(&page.items));
        }
        seen.extend(page.items.iter().map(|c| c.call.conversation_id.clone()));
        if pages == 1 {
            // A newer call added between pages does not shift the rest.
            let newer = format!("{agent}_c_z");
            record(index, &call(&agent, &newer, Some(&caller), 999, "success")).await;
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
        if pages > 10 {
            fail("paging ends", &seen);
        }
    }
    let expected: Vec<String> = ["c_b", "c_a", "c_d", "c_c", "c_e"]
        .iter()
        .map(|id| format!("{agent}_{id}"))
        .collect();
    if seen != expected {
        fail("pages are newest first and cover every call once", seen);
    }
    index.forget_caller(&caller).await.ok();
}

/// Caller, agent and time filters; `from` and `to` include their ends.
pub async fn filters_apply_and_ranges_include_both_ends<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let (ann, bob) = (invented_caller(), invented_caller());
    for (id, who, start) in [("t1", &ann, 100), ("t2", &bob, 200), ("t3", &ann, 300)] {
        let id = format!("{agent}_{id}");
        record(index, &call(&agent, &id, Some(who), start, "success")).await;
    }
    let anns = listed(
        index,
        CallQuery {
            phone: Some(ann.clone()),
            ..CallQuery::default()
        },
    )
    .await;
    if ids(&anns) != [format!("{agent}_t3"), format!("{agent}_t1")] {
        fail("the caller filter keeps only their calls", ids(&anns));
    }
    let ranged = listed(
        index,
        CallQuery {
            from: Some(secs(200)),
            to: Some(secs(300)),
            ..by_agent(&agent)
        },
    )
    .await;
    if ids(&ranged) != [format!("{agent}_t3"), format!("{agent}_t2")] {
        fail("from and to include both ends", ids(&ranged));
    }
    let other = listed(index, by_agent(&unique("agent"))).await;
    if !other.is_empty() {
        fail("the agent filter keeps only its calls", ids(&other));
    }
    index.forget_caller(&ann).await.ok();
    index.forget_caller(&bob).await.ok();
}

/// A page size outside `1..=MAX_CALL_PAGE` and a made-up cursor are
/// refused with their own errors.
pub async fn bad_limits_and_cursors_are_refused<I: CallIndex + ?Sized>(index: &I) {
    for limit in [0, MAX_CALL_PAGE + 1] {
        let query = CallQuery {
            limit: Some(limit),
            ..CallQuery::default()
        };
        match index.list_calls(query).await {
            Err(CallIndexError::InvalidLimit(n)) if n == limit => {}
            other => fail("a bad limit is InvalidLimit", other.map(|p| p.items.len())),
        }
    }
    for cursor in ["not a cursor", "bm9wZQ", ""] {
        let query = CallQuery {
            cursor: Some(cursor.to_owned()),
            ..CallQuery::default()
        };
        match index.list_calls(query).await {
            Err(CallIndexError::InvalidCursor) => {}
            other => fail(
                "a made-up cursor is InvalidCursor",
                other.map(|p| p.items.len()),
            ),
        }
    }
}

/// Totals follow the port's definitions.
pub async fn analytics_follow_the_definitions<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let caller = invented_caller();
    let id = |n: &str| format!("{agent}_{n}");
    record(
        index,
        &call(&agent, &id("a"), Some(&caller), 86_400, "success"),
    )
    .await;
    let mut second = call(&agent, &id("b"), Some(&caller), 86_500, "failure");
    if let super::ProcessedData::Transcription(data) = &mut second.data {
        let metadata = data.metadata.get_or_insert_with(Default::default);
        metadata.call_duration_secs = Some(30.2);
        metadata.cost = Some(10.0);
        let analysis = data.analysis.get_or_insert_with(Default::default);
        analysis.data_collection_results.insert(
            "city".into(),
            serde_json::from_value(json!({"data_collection_id": "city", "value": "Paris"}))
                .expect("a data collection result"),
        );
    }
    record(index, &second).await;
    record(
        index,
        &call(&agent, &id("c"), Some(&caller), 86_600, "unknown"),
    )
    .await;
    record(index, &failure(&agent, &id("d"), Some(&caller), 86_700)).await;
    let totals = match index.analytics(range_of(&agent)).await {
        Ok(totals) => totals,
        Err(e) => fail("analytics answer", e),
    };
    let figures = (
        totals.total_calls,
        totals.success_rate,
        totals.avg_duration,
        totals.total_cost,
    );
    // Durations 61, 30, 61 (whole seconds); the failure has none.
    if figures != (4, 0.25, (61.0 + 30.0 + 61.0) / 3.0, 120.5 + 10.0 + 120.5) {
        fail("totals, success rate, mean duration and cost", figures);
    }
    let collected: Vec<(&str, &Value, u64)> = totals
        .data_collected
        .iter()
        .map(|c| (c.field_id.as_str(), &c.value, c.count))
        .collect();
    if collected
        != [
            ("first_name", &json!("Ada"), 3),
            ("city", &json!("Paris"), 1),
        ]
    {
        fail("collected values by count, nulls left out", collected);
    }
    let empty = index.analytics(range_of(&unique("agent"))).await.ok();
    if empty
        .as_ref()
        .map(|a| (a.total_calls, a.success_rate, a.avg_duration))
        != Some((0, 0.0, 0.0))
    {
        fail("no calls: zeros", empty);
    }
    index.forget_caller(&caller).await.ok();
}

/// Calls and successes per UTC day, oldest first.
pub async fn daily_counts_per_utc_day<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let caller = invented_caller();
    let day = 1_739_491_200; // 2025-02-14T00:00:00Z
    for (n, start, outcome) in [
        ("a", day + 86_400 + 5, "success"),
        ("b", day + 86_399, "failure"),
        ("c", day, "success"),
    ] {
        let id = format!("{agent}_{n}");
        record(index, &call(&agent, &id, Some(&caller), start, outcome)).await;
    }
    let days = index.daily(range_of(&agent)).await.ok();
    let days: Option<Vec<(String, u64, u64)>> = days.map(|d| {
        d.into_iter()
            .map(|d| (d.day, d.calls, d.successful))
            .collect()
    });
    if days
        != Some(vec![
            ("2025-02-14".to_owned(), 2, 1),
            ("2025-02-15".to_owned(), 1, 1),
        ])
    {
        fail("per UTC day, oldest first", days);
    }
    index.forget_caller(&caller).await.ok();
}

/// Forgetting a caller removes their calls, newest first, and only theirs.
pub async fn forgetting_a_caller_spares_the_others<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let (ann, bob) = (invented_caller(), invented_caller());
    let id = |n: &str| format!("{agent}_{n}");
    record(index, &call(&agent, &id("a1"), Some(&ann), 100, "success")).await;
    record(index, &failure(&agent, &id("a2"), Some(&ann), 200)).await;
    record(index, &ProcessedEvent::audio_stored(conv(&id("a1")))).await;
    record(index, &call(&agent, &id("b1"), Some(&bob), 150, "success")).await;
    let forgotten = index.forget_caller(&ann).await.ok();
    if forgotten != Some(vec![conv(&id("a2")), conv(&id("a1"))]) {
        fail(
            "forget_caller returns their conversations newest first",
            forgotten,
        );
    }
    let left = listed(index, by_agent(&agent)).await;
    if ids(&left) != [id("b1")] {
        fail("only the caller's calls are removed", ids(&left));
    }
    if index.forget_caller(&ann).await.ok() != Some(Vec::new()) {
        fail("forgetting again finds nothing", ());
    }
    // A call recorded again after forgetting has no audio left over.
    record(index, &call(&agent, &id("a1"), Some(&ann), 100, "success")).await;
    let again = listed(
        index,
        CallQuery {
            phone: Some(ann.clone()),
            ..CallQuery::default()
        },
    )
    .await;
    if again.len() != 1 || again[0].has_audio {
        fail("forgetting removes the audio mark too", again);
    }
    index.forget_caller(&ann).await.ok();
    index.forget_caller(&bob).await.ok();
}

/// Unmarking a call's audio leaves the call, with its figures; unmarking
/// again finds nothing.
pub async fn deleted_audio_is_unmarked_and_the_call_stays<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let caller = invented_caller();
    let id = unique("audio_gone");
    record(index, &call(&agent, &id, Some(&caller), 100, "success")).await;
    record(index, &ProcessedEvent::audio_stored(conv(&id))).await;
    match index.unmark_audio(&conv(&id)).await {
        Ok(true) => {}
        other => fail("unmarking stored audio says so", other),
    }
    match index.unmark_audio(&conv(&id)).await {
        Ok(false) => {}
        other => fail("unmarking again finds nothing", other),
    }
    let calls = listed(index, by_agent(&agent)).await;
    if calls.len() != 1 || calls[0].has_audio || calls[0].call.duration != Some(61.0) {
        fail("a call without its audio stays, with its figures", calls);
    }
    match index.get_call(&conv(&id)).await {
        Ok(Some(detail)) if !detail.has_audio => {}
        other => fail("a call without its audio says so", other),
    }
    index.forget_caller(&caller).await.ok();
}

/// A caller is silent since a time when none of their calls (connected
/// or not) started at or after it; calls without a caller count for no
/// one.
pub async fn silent_callers_are_those_without_a_call_since<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let (ann, bob) = (invented_caller(), invented_caller());
    let id = |n: &str| format!("{agent}_{n}");
    record(index, &call(&agent, &id("a1"), Some(&ann), 100, "success")).await;
    record(index, &failure(&agent, &id("a2"), Some(&ann), 300)).await;
    record(index, &call(&agent, &id("b1"), Some(&bob), 150, "success")).await;
    record(index, &call(&agent, &id("n1"), None, 50, "success")).await;
    let (ann_ref, bob_ref) = (&ann, &bob);
    let silent = |before| async move {
        match index.callers_silent_since(secs(before)).await {
            Ok(callers) => {
                if !callers.is_sorted() {
                    fail("silent callers are listed in number order", callers);
                }
                (callers.contains(ann_ref), callers.contains(bob_ref))
            }
            Err(e) => fail("silent callers are listed", e),
        }
    };
    if silent(150).await != (false, false) {
        fail(
            "a caller with a call at the cutoff is not silent",
            silent(150).await,
        );
    }
    if silent(151).await != (false, true) {
        fail(
            "a caller whose newest call is before the cutoff is silent",
            silent(151).await,
        );
    }
    if silent(301).await != (true, true) {
        fail(
            "a call that never connected counts as heard from",
            silent(301).await,
        );
    }
    index.forget_caller(&ann).await.ok();
    index.forget_caller(&bob).await.ok();
}

/// An event without a valid agent id is refused and changes nothing.
pub async fn an_invalid_agent_is_refused_and_changes_nothing<I: CallIndex + ?Sized>(index: &I) {
    let caller = invented_caller();
    let bad = call("../etc", &unique("conv"), Some(&caller), 100, "success");
    match index.record(&bad).await {
        Err(CallIndexError::InvalidEvent(reason)) if reason.contains("agent_id") => {}
        other => fail("an invalid agent id is InvalidEvent naming agent_id", other),
    }
    let theirs = listed(
        index,
        CallQuery {
            phone: Some(caller),
            ..CallQuery::default()
        },
    )
    .await;
    if !theirs.is_empty() {
        fail("a refused event changes nothing", ids(&theirs));
    }
}

/// Rebuilding replaces every row with the events given, at once.
pub async fn rebuild_replaces_everything<I: CallIndex + ?Sized>(index: &I) {
    let agent = unique("agent");
    let caller = invented_caller();
    let id = |n: &str| format!("{agent}_{n}");
    record(
        index,
        &call(&agent, &id("stale"), Some(&caller), 50, "success"),
    )
    .await;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let events = vec![
        failure(&agent, &id("two"), Some(&caller), 200),
        call(&agent, &id("two"), Some(&caller), 200, "success"),
        call(&agent, &id("one"), Some(&caller), 100, "success"),
        ProcessedEvent::audio_stored(conv(&id("one"))),
        call("../etc", &id("bad"), Some(&caller), 300, "success"),
    ];
    let feeder = tokio::spawn(async move {
        for event in events {
            if sender.send(event).await.is_err() {
                break;
            }
        }
    });
    let calls = index.rebuild(receiver).await;
    feeder.await.ok();
    if calls.as_ref().ok() != Some(&2) {
        fail("rebuild counts the calls kept", calls);
    }
    let all = listed(index, CallQuery::default()).await;
    let shown: Vec<(&str, bool, bool)> = all
        .iter()
        .map(|c| {
            (
                c.call.conversation_id.as_str(),
                c.initiation_failed,
                c.has_audio,
            )
        })
        .collect();
    if shown
        != [
            (id("two").as_str(), false, false),
            (id("one").as_str(), false, true),
        ]
    {
        fail(
            "only the rebuilt calls remain, as when recorded live",
            shown,
        );
    }
    index.forget_caller(&caller).await.ok();
}
