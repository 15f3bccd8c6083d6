//! `/openapi.json` cannot drift from the server: every documented
//! operation is answered by the real server with the documented method and
//! one of the documented statuses, its JSON body matches the documented
//! schema, the documented set of routes is the server's whole surface, and
//! the schemas, generated from the real Rust types, describe exactly what
//! those types serialize.

use std::collections::BTreeSet;

use recall_model::ui::{
    CallAnalytics, CallDetail, CallSummary, DailyCalls, DataCollectedStat, EraseReport, EventEntry,
    EventStatus, MemoryDisplay, Speaker, TranscriptMessage, User,
};
use recall_model::{
    ClientDataResponse, ConversationId, DynamicVariables, MemoryItem, MemorySector, PhoneNumber,
    ProfileData, Salience, SearchDataResponse, UnixTimestamp,
};
use serde_json::{Value, json};

use crate::admin::{ADMIN_TOKEN, spawn_admin};
use crate::helpers::{CALLER, FlakyStore, Options, TestApp, spawn_app, spawn_with, transcription};

/// The whole HTTP surface, as registered by `routes::configure` and
/// `admin::configure`.
const SURFACE: &[(&str, &str)] = &[
    ("post", "/webhook/client-data"),
    ("post", "/webhook/search-data"),
    ("post", "/webhook/post-call"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/api/users/{phone}"),
    ("delete", "/api/users/{phone}"),
    ("get", "/api/users/{phone}/memories"),
    ("get", "/api/users/{phone}/export"),
    ("get", "/api/calls"),
    ("get", "/api/calls/{conversation_id}"),
    ("get", "/api/calls/{conversation_id}/audio"),
    ("get", "/api/events"),
    ("get", "/api/analytics"),
    ("get", "/api/analytics/daily"),
    ("get", "/dashboard"),
];

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.clone(), path.clone()));
            }
        }
    }
    out
}

/// RFC 3339's `date-time`, which JSON Schema's `format` means.
static DATE_TIME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
    )
    .unwrap()
});

/// Checks `value` against an OpenAPI 3.1 schema as utoipa writes them
/// (types, enums, required and documented properties, patterns, lengths,
/// bounds, `date-time`, `if`/`then`); returns the first mismatch.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "dangling reference {reference}");
        return check(doc, target, value, at);
    }
    if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return if options.iter().any(|o| check(doc, o, value, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: {value} matches none of {options:?}"))
        };
    }
    if let Some(all) = schema["allOf"].as_array() {
        for part in all {
            check(doc, part, value, at)?;
        }
        return Ok(());
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(), // any type; the other keywords still apply
    };
    let fits = |t: &str| match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unexpected schema type {other}"),
    };
    if !types.is_empty() && !types.iter().any(|t| fits(t)) {
        return Err(format!("{at}: {value} is not {types:?}"));
    }
    if let Some(text) = value.as_str() {
        if let Some(pattern) = schema["pattern"].as_str()
            && !regex::Regex::new(pattern).unwrap().is_match(text)
        {
            return Err(format!("{at}: {value} does not match {pattern}"));
        }
        let chars = text.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| chars < min)
            || schema["maxLength"].as_u64().is_some_and(|max| chars > max)
        {
            return Err(format!("{at}: {value} has a length outside the schema's"));
        }
        if schema["format"] == "date-time" && !DATE_TIME.is_match(text) {
            return Err(format!("{at}: {value} is not a date-time"));
        }
    }
    if let Some(number) = value.as_f64()
        && (schema["minimum"].as_f64().is_some_and(|min| number < min)
            || schema["maximum"].as_f64().is_some_and(|max| number > max))
    {
        return Err(format!("{at}: {value} is out of the schema's range"));
    }
    if let Some(condition) = schema.get("if")
        && applies(doc, condition, value)
        && !applies(doc, &schema["then"], value)
    {
        return Err(format!(
            "{at}: {value} breaks {} when {condition}",
            schema["then"]
        ));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        return Err(format!("{at}: {value} is not {constant}"));
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            check(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().unwrap();
            if !object.contains_key(key) {
                return Err(format!("{at}: required `{key}` missing in {value}"));
            }
        }
        for (key, field) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(property) => check(doc, property, field, &format!("{at}.{key}"))?,
                None => match &schema["additionalProperties"] {
                    Value::Null | Value::Bool(false) if properties.is_some() => {
                        return Err(format!("{at}: `{key}` is not documented"));
                    }
                    Value::Object(extra) => check(doc, &Value::Object(extra.clone()), field, at)?,
                    _ => {}
                },
            }
        }
    }
    Ok(())
}

/// Whether an `if` or `then` (required keys and the values of some
/// properties; other keys are free) holds for `value`.
fn applies(doc: &Value, condition: &Value, value: &Value) -> bool {
    let present = condition["required"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|key| value.get(key.as_str().unwrap()).is_some());
    let matching = condition["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, schema)| {
            value
                .get(key)
                .is_none_or(|v| check(doc, schema, v, key).is_ok())
        });
    present && matching
}

/// The documented property names of a named schema.
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} has no properties"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_document_lists_exactly_the_servers_routes() {
    let (app, _dir) = spawn_admin().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().collect();
    let surface: BTreeSet<(String, String)> = SURFACE
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, surface);
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    !response["description"].as_str().unwrap_or("").is_empty(),
                    "{status} without a description"
                );
            }
        }
    }
}

fn concrete(path: &str) -> String {
    path.replace("{phone}", CALLER)
        .replace("{conversation_id}", "conv_doc")
}

async fn send(app: &TestApp, method: &str, path: &str) -> reqwest::Response {
    let url = app.url(&concrete(path));
    let request = match (method, path) {
        ("post", "/webhook/client-data") => app
            .client
            .post(url)
            .header("X-Api-Key", &app.client_data_key)
            .json(&json!({"caller_id": CALLER, "agent_id": "agent_1",
                          "called_number": "+15550001111", "call_sid": "CA1"})),
        ("post", "/webhook/search-data") => app
            .client
            .post(url)
            .header("X-Api-Key", &app.search_data_key)
            .json(&json!({"query": "roses", "user_id": CALLER})),
        ("post", "/webhook/post-call") => {
            let body = transcription("conv_doc_2", CALLER, "Margaret");
            let signature = app.signature(&body);
            app.client
                .post(url)
                .header("ElevenLabs-Signature", signature)
                .header("Content-Type", "application/json")
                .body(body)
        }
        ("get", "/api/events") => app.client.get(format!("{url}?status=failed")),
        ("get", _) => app.client.get(url),
        ("delete", _) => app.client.delete(url),
        (other, _) => panic!("no request for {other}"),
    };
    request.bearer_auth(ADMIN_TOKEN).send().await.unwrap()
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let (app, _dir) = spawn_admin().await;
    // A caller with a call, memories and audio, so every route has data.
    let body = transcription("conv_doc", CALLER, "Margaret");
    assert_eq!(app.post_call(&body).await.status(), 200);
    let audio = json!({"type": "post_call_audio", "event_timestamp": 1_739_537_400,
        "data": {"agent_id": "agent_1", "conversation_id": "conv_doc", "full_audio": "SUQzBAAAAAAAAA=="}});
    assert_eq!(
        app.post_call(&serde_json::to_vec(&audio).unwrap())
            .await
            .status(),
        200
    );
    app.settle().await;

    let doc = document(&app).await;
    let mut ops = operations(&doc);
    // Erase last: it removes the data the other operations read.
    ops.sort_by_key(|(method, _)| method == "delete");
    for (method, path) in ops {
        let response = send(&app, &method, &path).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        assert_ne!(
            status.as_u16(),
            405,
            "{method} {path} is not served: {text}"
        );
        assert!(
            !text.contains("\"no route"),
            "{method} {path} is not routed: {text}"
        );
        let documented = &doc["paths"][&path][&method]["responses"][status.as_str()];
        assert!(
            !documented.is_null(),
            "{method} {path} answered an undocumented {status}: {text}"
        );
        let content = documented["content"].as_object().unwrap();
        let (documented_type, media) = content.iter().next().unwrap();
        assert!(
            content_type.starts_with(documented_type.as_str()),
            "{method} {path}: content type {content_type}, documented {documented_type}"
        );
        if documented_type == "application/json" && path != "/openapi.json" {
            let value: Value = serde_json::from_str(&text).unwrap();
            check(&doc, &media["schema"], &value, &format!("{method} {path}"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(
            status.is_success(),
            "{method} {path} answered {status}: {text}"
        );

        // A method the document does not list is refused on the same path.
        let other = app
            .client
            .put(app.url(&concrete(&path)))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 405, "PUT {path}");
    }
}

#[tokio::test]
async fn error_answers_match_the_documented_error_schema() {
    let (app, _dir) = spawn_admin().await;
    let doc = document(&app).await;
    for (method, path, token) in [
        ("get", "/api/calls?limit=0", ADMIN_TOKEN),
        ("get", "/api/calls", "wrong"),
        ("get", "/api/users/+15550009999", ADMIN_TOKEN),
    ] {
        let response = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let route = path
            .split('?')
            .next()
            .unwrap()
            .replace("+15550009999", "{phone}");
        let documented = &doc["paths"][&route][method]["responses"][status.as_str()];
        assert!(!documented.is_null(), "{path}: {status} is not documented");
        let value: Value = response.json().await.unwrap();
        check(
            &doc,
            &documented["content"]["application/json"]["schema"],
            &value,
            path,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn the_ui_schemas_describe_exactly_what_the_real_types_serialize() {
    let (app, _dir) = spawn_admin().await;
    let doc = document(&app).await;
    let time = UnixTimestamp::from_secs(1_739_537_297).unwrap();
    let at = Some(time);
    let call = CallSummary {
        conversation_id: "conv_1".into(),
        agent_id: "agent_1".into(),
        status: "done".into(),
        duration: Some(22.0),
        cost: Some(296.0),
        summary: Some("Roses.".into()),
        title: Some("Roses".into()),
        successful: Some(true),
    };
    let turn = TranscriptMessage {
        role: Speaker::User,
        message: "Hi".into(),
        time_in_call_secs: 2.5,
        interrupted: true,
    };
    // Every optional field set, so every documented property must appear.
    let samples: Vec<(&str, Value)> = vec![
        (
            "User",
            serde_json::to_value(User {
                phone_number: PhoneNumber::parse(CALLER).unwrap(),
                name: Some("Margaret".into()),
                profile_summary: Some("first_name: Margaret".into()),
                last_call_summary: Some("Asked about roses.".into()),
            })
            .unwrap(),
        ),
        (
            "MemoryDisplay",
            serde_json::to_value(MemoryDisplay::new(
                "Likes roses",
                MemorySector::Semantic,
                Salience::HIGH,
                at,
            ))
            .unwrap(),
        ),
        ("TranscriptMessage", serde_json::to_value(&turn).unwrap()),
        ("CallSummary", serde_json::to_value(&call).unwrap()),
        (
            "CallDetail",
            serde_json::to_value(CallDetail {
                call,
                transcript: vec![turn],
                has_audio: true,
                start_time: time,
                caller_phone: Some(PhoneNumber::parse(CALLER).unwrap()),
                transcript_deleted_at: Some(time),
                audio_deleted_at: Some(time),
            })
            .unwrap(),
        ),
        (
            "DailyCalls",
            serde_json::to_value(DailyCalls {
                day: "2025-02-14".into(),
                calls: 3,
                successful: 2,
            })
            .unwrap(),
        ),
        (
            "EventEntry",
            serde_json::to_value(EventEntry {
                status: EventStatus::Quarantined,
                conversation_id: Some(ConversationId::parse("conv_1").unwrap()),
                event_type: Some("post_call_transcription".into()),
                reason: Some("not JSON".into()),
                attempts: 2,
                file: Some("1.json".into()),
                bytes: Some(2),
                received_at: at,
            })
            .unwrap(),
        ),
        (
            "EraseReport",
            serde_json::to_value(EraseReport {
                phone_number: PhoneNumber::parse(CALLER).unwrap(),
                memories: 5,
                conversations: 2,
                payloads: 3,
                audio: 1,
                indexed_calls: 2,
                quarantined: 1,
                pending_events: 1,
                failed_events: 0,
            })
            .unwrap(),
        ),
        (
            "CallAnalytics",
            serde_json::to_value(CallAnalytics {
                total_calls: 3,
                success_rate: 0.5,
                avg_duration: 22.0,
                total_cost: 592.0,
                data_collected: vec![DataCollectedStat {
                    field_id: "first_name".into(),
                    value: json!("Margaret"),
                    count: 2,
                }],
            })
            .unwrap(),
        ),
        (
            "SearchDataResponse",
            serde_json::to_value(SearchDataResponse {
                profile: Some(ProfileData {
                    name: Some("Margaret".into()),
                    summary: Some("first_name: Margaret".into()),
                    phone_number: Some(PhoneNumber::parse(CALLER).unwrap()),
                }),
                memories: vec![MemoryItem {
                    timestamp: at,
                    ..MemoryItem::new("Likes roses", MemorySector::Semantic, Salience::HIGH)
                }],
            })
            .unwrap(),
        ),
        (
            "ClientDataResponse",
            serde_json::to_value(
                ClientDataResponse::new(DynamicVariables::default()).with_first_message("Hello!"),
            )
            .unwrap(),
        ),
    ];
    for (name, value) in samples {
        let schema = json!({"$ref": format!("#/components/schemas/{name}")});
        check(&doc, &schema, &value, name).unwrap_or_else(|e| panic!("{e}"));
        let emitted: BTreeSet<String> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            emitted,
            properties(&doc, name),
            "{name}: documented properties differ"
        );
    }
    // Every sector, label, speaker and event status the real types can
    // produce is documented.
    for sector in MemorySector::ALL {
        let value = serde_json::to_value(sector).unwrap();
        check(
            &doc,
            &json!({"$ref": "#/components/schemas/MemorySector"}),
            &value,
            "MemorySector",
        )
        .unwrap();
    }
    for (name, value) in [
        ("Speaker", json!(Speaker::Agent)),
        ("Speaker", json!(Speaker::User)),
        ("EventStatus", json!(EventStatus::Pending)),
        ("EventStatus", json!(EventStatus::Failed)),
        ("EventStatus", json!(EventStatus::Quarantined)),
    ] {
        let schema = json!({"$ref": format!("#/components/schemas/{name}")});
        check(&doc, &schema, &value, name).unwrap();
    }
    for salience in [0.95, 0.6, 0.1] {
        let label = serde_json::to_value(Salience::new(salience).unwrap().label()).unwrap();
        check(
            &doc,
            &json!({"$ref": "#/components/schemas/SalienceLabel"}),
            &label,
            "label",
        )
        .unwrap();
    }
}

#[tokio::test]
async fn every_route_refuses_other_methods_with_allow_and_a_json_error() {
    let (app, _dir) = spawn_admin().await;
    let doc = document(&app).await;
    let mut allowed: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for (method, path) in operations(&doc) {
        allowed
            .entry(path)
            .or_default()
            .insert(method.to_uppercase());
    }
    for (path, methods) in allowed {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if methods.contains(method) {
                continue;
            }
            let response = app
                .client
                .request(method.parse().unwrap(), app.url(&concrete(&path)))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            // RFC 9110: a 405 lists the methods the route does accept.
            let allow: BTreeSet<String> = response
                .headers()
                .get("allow")
                .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"))
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(allow, methods, "{method} {path}: Allow");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
            assert!(
                body["message"].as_str().unwrap().contains(method),
                "{method} {path}: {body}"
            );
        }
    }
}

/// Whether the document's schema of parameter `name` of `method path`
/// accepts `raw` as sent in a URL.
fn documents_parameter(doc: &Value, method: &str, path: &str, name: &str, raw: &str) -> bool {
    let parameter = doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} documents no parameter {name}"));
    let mut schema = &parameter["schema"];
    if let Some(reference) = schema["$ref"].as_str() {
        schema =
            &doc["components"]["schemas"][reference.trim_start_matches("#/components/schemas/")];
    }
    let integer = schema["type"] == "integer"
        || schema["type"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("integer")));
    let value = if integer {
        match raw.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => return false,
        }
    } else {
        json!(raw)
    };
    check(doc, schema, &value, name).is_ok()
}

#[tokio::test]
async fn the_document_refuses_exactly_what_the_server_refuses() {
    let (app, _dir) = spawn_admin().await;
    let doc = document(&app).await;
    let ids = [
        "conv_1",
        "a..b",
        ".",
        ".a.b.",
        "a b",
        "a%01b",
        "a%5Cb",
        &"x".repeat(129),
        "é",
    ];
    let mut cases: Vec<(&str, &str, String, String)> = Vec::new();
    for phone in [
        "+16129782029",
        "16129782029",
        "+0123",
        "+1",
        "+12",
        "+1234567890123456",
        "+1612-978",
    ] {
        for path in [
            "/api/users/{phone}",
            "/api/users/{phone}/memories",
            "/api/users/{phone}/export",
        ] {
            cases.push(("get", path, "phone".into(), phone.into()));
        }
    }
    for id in ids {
        for path in [
            "/api/calls/{conversation_id}",
            "/api/calls/{conversation_id}/audio",
        ] {
            cases.push(("get", path, "conversation_id".into(), id.into()));
        }
        for path in ["/api/calls", "/api/analytics", "/api/analytics/daily"] {
            cases.push(("get", path, "agent".into(), id.into()));
        }
    }
    for time in [
        "",
        "2025-02-14T12:48:17Z",
        "2025-02-14T13:48:17.5%2B01:00",
        "1739537297",
        "-5",
        "yesterday",
        "1900-01-01T00:00:00Z",
        "99999999999999999999",
        "2025-02-14",
    ] {
        for name in ["from", "to"] {
            for path in ["/api/calls", "/api/analytics", "/api/analytics/daily"] {
                cases.push(("get", path, name.into(), time.into()));
            }
        }
    }
    for limit in ["", "0", "1", "100", "101", "200", "201", "ten", "%205"] {
        cases.push(("get", "/api/calls", "limit".into(), limit.into()));
        cases.push((
            "get",
            "/api/users/{phone}/memories",
            "limit".into(),
            limit.into(),
        ));
    }
    for sector in ["semantic", "musical", ""] {
        cases.push((
            "get",
            "/api/users/{phone}/memories",
            "sector".into(),
            sector.into(),
        ));
    }
    for phone in [
        "%2B16129782029",
        "+16129782029",
        "6129782029",
        "",
        "%2B1612%20978",
    ] {
        cases.push(("get", "/api/calls", "phone".into(), phone.into()));
    }
    for (method, path, name, raw) in cases {
        let in_path = path.contains(&format!("{{{name}}}"));
        if in_path && raw == "." {
            continue; // a dot segment, removed by the URL before it is sent
        }
        let url = if in_path {
            path.replace(&format!("{{{name}}}"), &raw)
        } else {
            format!("{}?{name}={raw}", concrete(path))
        };
        let response = app
            .client
            .get(app.url(&url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let refused = response.status() == 400;
        // What the server decodes: `+` in a query is a space, %XX a byte.
        let decoded = if in_path {
            raw.clone()
        } else {
            raw.replace('+', " ")
        };
        let decoded = decoded
            .replace("%01", "\u{1}")
            .replace("%5C", "\\")
            .replace("%20", " ")
            .replace("%2B", "+");
        assert_eq!(
            documents_parameter(&doc, method, path, &name, &decoded),
            !refused,
            "{method} {url}: the server answered {}, the document {}",
            response.status(),
            if refused { "accepts it" } else { "refuses it" }
        );
    }

    // Bodies: search-data's rules.
    let schema = json!({"$ref": "#/components/schemas/SearchDataRequest"});
    for body in [
        json!({"query": "roses", "user_id": CALLER}),
        json!({"query": "roses", "user_id": format!(" {CALLER}\n")}),
        json!({"query": "  ", "user_id": CALLER}),
        json!({"user_id": CALLER}),
        json!({"query": "roses", "user_id": "6129782029"}),
        json!({"query": "roses"}),
        json!({"query": "roses", "user_id": CALLER, "k": 0}),
        json!({"query": "roses", "user_id": CALLER, "k": 3}),
        json!({"query": "roses", "user_id": CALLER, "min_salience": 1.5}),
        json!({"query": "roses", "user_id": CALLER, "same_agent_only": true}),
        json!({"query": "roses", "user_id": CALLER, "same_agent_only": true, "agent_id": "a/b"}),
        json!({"query": "roses", "user_id": CALLER, "same_agent_only": true, "agent_id": "agent_1"}),
        json!({"query": "roses", "user_id": CALLER, "same_agent_only": false, "agent_id": "a/b"}),
    ] {
        let refused = app.search(&body).await.status() == 400;
        assert_eq!(
            check(&doc, &schema, &body, "search-data").is_ok(),
            !refused,
            "search-data {body}: server refused: {refused}"
        );
    }
    // The post-call envelope.
    let schema = json!({"$ref": "#/components/schemas/PostCallEvent"});
    for body in [
        json!({"type": "post_call_transcription", "data": {"conversation_id": "conv_env"}}),
        json!({"type": "post_call_transcription", "event_timestamp": "x", "data": {"conversation_id": "conv_env"}}),
        json!({"type": "bad type", "data": {"conversation_id": "conv_env"}}),
        json!({"type": "post_call_audio", "data": null}),
        json!({"type": "post_call_audio", "data": {"conversation_id": "_reserved"}}),
        json!({"type": "post_call_audio", "data": {"conversation_id": "a..b"}}),
        json!({"data": {"conversation_id": "conv_env"}}),
    ] {
        let refused = app
            .post_call(&serde_json::to_vec(&body).unwrap())
            .await
            .status()
            == 400;
        assert_eq!(
            check(&doc, &schema, &body, "post-call").is_ok(),
            !refused,
            "post-call {body}: server refused: {refused}"
        );
    }
}

/// Asserts that `response`, an answer to `method path`, has a documented
/// status.
async fn assert_documented(doc: &Value, method: &str, path: &str, response: reqwest::Response) {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        !doc["paths"][path][method]["responses"][status.as_str()].is_null(),
        "{method} {path} answered an undocumented {status}: {body}"
    );
}

#[tokio::test]
async fn every_status_the_routes_answer_is_documented() {
    let dir = tempfile::tempdir().unwrap();
    let store = FlakyStore::new();
    let app = spawn_with(
        Options::new(dir.path())
            .var("RECALL_ADMIN_TOKEN", ADMIN_TOKEN)
            .var("RECALL_WEBHOOK_MAX_BYTES", "256")
            .var("RECALL_POST_CALL_MAX_BYTES", "1024")
            .store(store.clone()),
    )
    .await;
    let doc = document(&app).await;
    let big = json!({"query": "x".repeat(300), "user_id": CALLER, "caller_id": CALLER});

    // 400, 401, 404 and 413 on each operation that can answer them.
    for (method, path) in operations(&doc) {
        if path.starts_with("/api/") {
            let url = app.url(&concrete(&path));
            let request = |token: &str| {
                app.client
                    .request(method.to_uppercase().parse().unwrap(), &url)
                    .bearer_auth(token)
            };
            assert_documented(
                &doc,
                &method,
                &path,
                request("wrong-token").send().await.unwrap(),
            )
            .await;
            assert_documented(
                &doc,
                &method,
                &path,
                request(ADMIN_TOKEN).send().await.unwrap(),
            )
            .await;
            let bad = path
                .replace("{phone}", "12345")
                .replace("{conversation_id}", "a..b");
            let bad = if bad == path {
                format!("{path}?from=yesterday&limit=0")
            } else {
                bad
            };
            let response = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&bad))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{method} {bad}");
            assert_documented(&doc, &method, &path, response).await;
        }
    }
    for (path, key) in [
        ("/webhook/client-data", &app.client_data_key),
        ("/webhook/search-data", &app.search_data_key),
    ] {
        for request in [
            app.client.post(app.url(path)).json(&json!({})),
            app.client
                .post(app.url(path))
                .header("X-Api-Key", key)
                .body("not json"),
            app.client
                .post(app.url(path))
                .header("X-Api-Key", key)
                .json(&big),
        ] {
            assert_documented(&doc, "post", path, request.send().await.unwrap()).await;
        }
    }
    assert_documented(
        &doc,
        "post",
        "/webhook/post-call",
        app.post_call_signed(b"{}".to_vec(), None).await,
    )
    .await;
    assert_documented(
        &doc,
        "post",
        "/webhook/post-call",
        app.post_call(b"[]").await,
    )
    .await;
    assert_documented(
        &doc,
        "post",
        "/webhook/post-call",
        app.post_call(&[b' '; 2048]).await,
    )
    .await;

    // 503 wherever the memory store is read.
    store.set_failing(true);
    for (method, path) in [
        ("get", "/api/users/{phone}"),
        ("get", "/api/users/{phone}/memories"),
        ("get", "/api/users/{phone}/export"),
        ("delete", "/api/users/{phone}"),
        ("get", "/ready"),
    ] {
        let response = app
            .client
            .request(
                method.to_uppercase().parse().unwrap(),
                app.url(&concrete(path)),
            )
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503, "{method} {path}");
        assert_documented(&doc, method, path, response).await;
    }
    let response = app
        .search(&json!({"query": "roses", "user_id": CALLER}))
        .await;
    assert_eq!(response.status(), 503);
    assert_documented(&doc, "post", "/webhook/search-data", response).await;

    // 404 on every operator operation while no admin token is configured.
    let off = spawn_app().await;
    for (method, path) in operations(&doc) {
        if path.starts_with("/api/") || path == "/dashboard" {
            let response = off
                .client
                .request(
                    method.to_uppercase().parse().unwrap(),
                    off.url(&concrete(&path)),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{method} {path}");
            assert_documented(&doc, &method, &path, response).await;
        }
    }

    // 403 on the webhooks for a client outside the allowlist.
    let dir = tempfile::tempdir().unwrap();
    let fenced = spawn_with(Options::new(dir.path()).var("RECALL_IP_ALLOWLIST", "10.0.0.1")).await;
    for path in [
        "/webhook/client-data",
        "/webhook/search-data",
        "/webhook/post-call",
    ] {
        let response = fenced
            .client
            .post(fenced.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_documented(&doc, "post", path, response).await;
    }
}
