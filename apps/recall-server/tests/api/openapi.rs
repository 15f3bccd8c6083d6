//! `/openapi.json` cannot drift from the server: every documented
//! operation is answered by the real server with the documented method and
//! one of the documented statuses, its JSON body matches the documented
//! schema, the documented set of routes is the server's whole surface, and
//! the schemas of the seed's UI models describe exactly what the real Rust
//! types serialize.

use std::collections::BTreeSet;

use recall_model::ui::{
    CallAnalytics, CallSummary, DataCollectedStat, MemoryDisplay, TranscriptMessage, User,
};
use recall_model::{
    ClientDataResponse, DynamicVariables, MemoryItem, MemorySector, PhoneNumber, ProfileData,
    Salience, SearchDataResponse, TranscriptRole, UnixTimestamp,
};
use serde_json::{Value, json};

use crate::admin::{ADMIN_TOKEN, spawn_admin};
use crate::helpers::{CALLER, TestApp, transcription};

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
    ("get", "/api/calls"),
    ("get", "/api/calls/{conversation_id}"),
    ("get", "/api/calls/{conversation_id}/audio"),
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

/// Checks `value` against an OpenAPI 3.1 schema as utoipa writes them;
/// returns the first mismatch.
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
        _ => return Ok(()), // any value
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
    if !types.iter().any(|t| fits(t)) {
        return Err(format!("{at}: {value} is not {types:?}"));
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
    let at = Some(UnixTimestamp::from_secs(1_739_537_297).unwrap());
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
        (
            "TranscriptMessage",
            serde_json::to_value(TranscriptMessage {
                role: TranscriptRole::User,
                message: "Hi".into(),
                time_in_call_secs: 2.5,
                interrupted: true,
            })
            .unwrap(),
        ),
        (
            "CallSummary",
            serde_json::to_value(CallSummary {
                conversation_id: "conv_1".into(),
                agent_id: "agent_1".into(),
                status: "done".into(),
                duration: Some(22.0),
                cost: Some(296.0),
                summary: Some("Roses.".into()),
                title: Some("Roses".into()),
                successful: Some(true),
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
    // Every sector and label the real types can produce is documented.
    for sector in MemorySector::ALL {
        let value = serde_json::to_value(sector).unwrap();
        check(
            &doc,
            &json!({"$ref": "#/components/schemas/Sector"}),
            &value,
            "Sector",
        )
        .unwrap();
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
