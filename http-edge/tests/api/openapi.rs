//! The OpenAPI document at `/openapi.json`: it is OpenAPI 3.1, its
//! operations are exactly the edge's routes, each declares the refusals the
//! edge can answer, and what the edge really answers validates against it
//! (success bodies, the error envelope, every SSE event type).
//!
//! The schemas are checked by a small validator below that knows the JSON
//! Schema keywords the document uses, and fails on any other, so that a
//! keyword it does not understand can never make a check pass silently.
//! schemathesis checks the same from outside, with generated requests
//! (`scripts/contract_tests.sh`).

use std::collections::BTreeSet;

use allmine_chat_proto::v1::{
    ChatEvent, ChatState, ChatStateChanged, Gap, MessageDeleted, UserBanned, chat_event,
};
use http_edge::{openapi::events::EVENT_TYPES, routes};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::Status;

use crate::{
    fake_chat::{Subscription, Then, documented_message, message_event, rpc, timestamp},
    helpers::{
        STREAM_ID, TOKEN, TestApp, ban_path, bans_path, events_path, message_item_path,
        message_path, moderator_path, spawn_app,
    },
};

const USER_ID: &str = "64d15f9e2e6c8f4d5a1230b2";

async fn document(app: &TestApp) -> Value {
    let response = app.edge.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("the document is JSON")
}

/// (method, path) of every operation in the document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

fn operation<'a>(document: &'a Value, method: &Method, path: &str) -> &'a Value {
    let operation = &document["paths"][path][method.as_str().to_lowercase()];
    assert!(operation.is_object(), "{method} {path} is documented");
    operation
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_exactly_the_edges_routes() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["info"]["title"].is_string());

    let routes: BTreeSet<(String, String)> = routes::routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect();
    assert_eq!(operations(&document), routes);
}

#[tokio::test]
async fn every_operation_declares_its_refusals_with_the_envelope_and_the_bearer_scheme() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["accessToken"]["in"], "query");
    assert_eq!(schemes["accessToken"]["name"], "access_token");

    for (method, path) in routes::routes() {
        let operation = operation(&document, &method, path);
        let responses = operation["responses"].as_object().expect("responses");
        let probe = path.starts_with("/healthz") || path.starts_with("/readyz");
        // Every request can be malformed, over the head limits or shed.
        let mut expected = vec!["400", "414", "431", "503"];
        if !probe {
            expected.extend(["401", "404", "500", "504"]);
            let securities = operation["security"].as_array().expect("security");
            assert!(
                securities
                    .iter()
                    .any(|scheme| scheme.get("bearer").is_some()),
                "{method} {path} wants the bearer token"
            );
        }
        for status in expected {
            let reference = responses[status]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} declares {status}: {responses:?}"));
            let name = reference.trim_start_matches("#/components/responses/");
            let shared = &document["components"]["responses"][name];
            assert_eq!(
                shared["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorEnvelope",
                "{method} {path} {status}"
            );
            assert_eq!(shared["headers"]["Allmine-Error-Reason"]["required"], true);
            assert_eq!(shared["headers"]["x-request-id"]["required"], true);
        }
        let parameters = operation["parameters"].as_array().expect("parameters");
        assert!(
            parameters
                .iter()
                .any(|parameter| parameter["name"] == "x-request-id" && parameter["in"] == "header"),
            "{method} {path} takes an x-request-id"
        );
        let success = responses
            .iter()
            .find(|(status, _)| status.starts_with('2'))
            .unwrap_or_else(|| panic!("{method} {path} has a success"));
        assert_eq!(
            success.1["headers"]["x-request-id"]["required"], true,
            "{method} {path}"
        );
    }

    let send = operation(&document, &Method::POST, routes::MESSAGES_PATH);
    for status in [
        "201", "400", "401", "403", "404", "409", "413", "415", "429", "503", "504",
    ] {
        assert!(send["responses"][status].is_object(), "send: {status}");
    }
    let parameters = send["parameters"].as_array().expect("parameters");
    assert!(parameters.iter().any(|p| p["name"] == "Idempotency-Key"));
    let created = &send["responses"]["201"]["headers"];
    for header in [
        "Idempotent-Replayed",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    ] {
        assert!(created[header].is_object(), "201 declares {header}");
    }
    let refusals = &document["components"]["responses"];
    assert!(refusals["Error429"]["headers"]["Retry-After"].is_object());
    assert!(refusals["Error429"]["headers"]["RateLimit-Remaining"].is_object());
    assert!(refusals["Error503"]["headers"]["Retry-After"].is_object());

    let follow = operation(&document, &Method::GET, routes::EVENTS_PATH);
    let names: Vec<&Value> = follow["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|parameter| &parameter["name"])
        .collect();
    assert!(names.contains(&&json!("Last-Event-ID")), "{names:?}");
    assert!(names.contains(&&json!("access_token")), "{names:?}");
}

#[tokio::test]
async fn the_reference_page_is_served_from_the_binary_and_loads_only_this_origin() {
    let app = spawn_app().await;
    let page = app.edge.get("/docs").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.expect("the page");
    for asset in ["/docs/docs.js", "/docs/docs.css"] {
        assert!(html.contains(asset), "the page loads {asset}");
        let response = app.edge.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
    let script = app.edge.get("/docs/docs.js").await;
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        script
            .text()
            .await
            .expect("the script")
            .contains("/openapi.json")
    );
}

/// The schema a documented answer's body must match.
fn response_schema<'a>(
    document: &'a Value,
    method: &Method,
    path: &str,
    status: u16,
    content_type: &str,
) -> &'a Value {
    let mut response = &operation(document, method, path)["responses"][status.to_string()];
    if let Some(reference) = response["$ref"].as_str() {
        response = document
            .pointer(&reference.replace("#/", "/"))
            .expect("a shared response");
    }
    let schema = &response["content"][content_type]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status} {content_type}"
    );
    schema
}

#[tokio::test]
async fn what_the_edge_answers_validates_against_the_document() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let edge = &app.edge;

    let post_message = (Method::POST, routes::MESSAGES_PATH, message_path(STREAM_ID));
    let post_ban = (Method::POST, routes::BANS_PATH, bans_path(STREAM_ID));
    let hello = json!({"content": "hello"});
    let cases = [
        (post_message.clone(), Some(hello.clone()), Some(TOKEN), 201),
        (
            (Method::GET, routes::MESSAGES_PATH, message_path(STREAM_ID)),
            None,
            Some(TOKEN),
            200,
        ),
        (
            post_ban.clone(),
            Some(json!({"userId": USER_ID, "durationSeconds": 60})),
            Some(TOKEN),
            201,
        ),
        (
            (
                Method::PUT,
                routes::MODERATOR_PATH,
                moderator_path(STREAM_ID, USER_ID),
            ),
            None,
            Some(TOKEN),
            200,
        ),
        (
            (Method::GET, "/healthz", "/healthz".to_owned()),
            None,
            None,
            200,
        ),
        (
            (Method::GET, "/readyz", "/readyz".to_owned()),
            None,
            None,
            200,
        ),
        // Refusals: the envelope.
        (post_message, Some(hello), None, 401),
        (post_ban, Some(json!({"userId": 7})), Some(TOKEN), 400),
    ];
    for ((method, template, path), body, token, status) in cases {
        let response = edge.call(method.clone(), &path, body.as_ref(), token).await;
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let body: Value = response.json().await.expect("a JSON body");
        let schema = response_schema(&document, &method, template, status, "application/json");
        validate(&document, schema, &body, "$")
            .unwrap_or_else(|error| panic!("{method} {path} {status}: {error}\n{body:#}"));
    }

    // 204s have no body, and say so.
    for (method, template, path) in [
        (
            Method::DELETE,
            routes::MESSAGE_PATH,
            message_item_path(STREAM_ID, "64d15f9e2e6c8f4d5a1230a1"),
        ),
        (
            Method::DELETE,
            routes::BAN_PATH,
            ban_path(STREAM_ID, USER_ID),
        ),
    ] {
        let response = edge.call(method.clone(), &path, None, Some(TOKEN)).await;
        assert_eq!(response.status(), 204);
        let documented = &operation(&document, &method, template)["responses"]["204"];
        assert!(documented["content"].is_null(), "{method} {path}");
    }
}

#[tokio::test]
async fn every_event_type_the_edge_sends_validates_against_its_documented_data() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let event = |cursor: &str, event| ChatEvent {
        cursor: cursor.to_owned(),
        event: Some(event),
    };
    app.chat.reply::<rpc::SubscribeMessages>(Subscription {
        events: vec![
            Ok(message_event(documented_message())),
            Ok(event(
                "c2",
                chat_event::Event::MessageDeleted(MessageDeleted {
                    message_id: "64d15f9e2e6c8f4d5a1230a1".to_owned(),
                    deleted_by: USER_ID.to_owned(),
                }),
            )),
            Ok(event(
                "c3",
                chat_event::Event::UserBanned(UserBanned {
                    user_id: USER_ID.to_owned(),
                    expires_at: Some(timestamp(1_768_473_000, 0)),
                }),
            )),
            Ok(event(
                "c4",
                chat_event::Event::ChatStateChanged(ChatStateChanged {
                    state: ChatState::Closed.into(),
                }),
            )),
            Ok(event(
                "c5",
                chat_event::Event::Gap(Gap {
                    reason: "fell behind".to_owned(),
                }),
            )),
            Err(Status::unavailable("chat-service is going away")),
        ],
        then: Then::End,
    });

    let response = app
        .edge
        .call(Method::GET, &events_path(STREAM_ID, ""), None, Some(TOKEN))
        .await;
    assert_eq!(response.status(), 200);
    let stream_schema = response_schema(
        &document,
        &Method::GET,
        routes::EVENTS_PATH,
        200,
        "text/event-stream",
    );
    let text = response.text().await.expect("the stream ends");

    let mut seen = Vec::new();
    for block in text.split("\n\n").filter(|block| !block.trim().is_empty()) {
        let mut event = serde_json::Map::new();
        for line in block.lines().filter(|line| !line.starts_with(':')) {
            let (field, value) = line.split_once(':').expect("`field: value`");
            let value = value.strip_prefix(' ').unwrap_or(value);
            let value = match field {
                "data" => serde_json::from_str(value).expect("data is one line of JSON"),
                _ => Value::from(value),
            };
            event.insert(field.to_owned(), value);
        }
        let event = Value::Object(event);
        validate(&document, stream_schema, &event, "$")
            .unwrap_or_else(|error| panic!("{error}\n{event:#}"));
        seen.push(event["event"].as_str().expect("a type").to_owned());
    }
    let documented: Vec<&str> = EVENT_TYPES.iter().map(|(name, ..)| *name).collect();
    assert_eq!(seen, documented, "every documented event type, sent once");
}

#[test]
fn the_validator_is_not_vacuous() {
    let document = json!({"components": {"schemas": {
        "Thing": {"type": "object", "required": ["a"], "properties": {
            "a": {"type": ["string", "null"], "format": "date-time"},
            "b": {"oneOf": [{"type": "null"}, {"type": "integer", "minimum": 1}]},
        }},
    }}});
    let thing = json!({"$ref": "#/components/schemas/Thing"});
    assert!(validate(&document, &thing, &json!({"a": null}), "$").is_ok());
    assert!(
        validate(
            &document,
            &thing,
            &json!({"a": "2026-01-15T10:30:00.000Z", "b": 2}),
            "$"
        )
        .is_ok()
    );
    for bad in [
        json!({}),
        json!({"a": 1}),
        json!({"a": "yesterday"}),
        json!({"a": null, "b": 0}),
        json!([]),
    ] {
        assert!(validate(&document, &thing, &bad, "$").is_err(), "{bad}");
    }
    let unknown = json!({"type": "string", "contentEncoding": "base64"});
    assert!(validate(&document, &unknown, &json!("x"), "$").is_err());
}

/// Validates `value` against `schema` (a subset of JSON Schema 2020-12: the
/// keywords utoipa writes into this document). Any other keyword is an
/// error, so that nothing passes unchecked.
fn validate(document: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = schema
        .as_object()
        .ok_or(format!("{at}: schema is not an object"))?;
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$ref" => {
                let pointer = rule.as_str().ok_or("$ref")?.replace("#/", "/");
                let target = document
                    .pointer(&pointer)
                    .ok_or(format!("{at}: no {pointer}"))?;
                validate(document, target, value, at)?;
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{at}: bad type")),
                };
                if !types.iter().any(|kind| is_type(value, kind)) {
                    return Err(format!("{at}: {value} is not of type {types:?}"));
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, property) in rule.as_object().ok_or("properties")? {
                        if let Some(field) = object.get(name) {
                            validate(document, property, field, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().ok_or("required")? {
                        let name = name.as_str().ok_or("required name")?;
                        if !object.contains_key(name) {
                            return Err(format!("{at}: `{name}` is missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let (Some(object), true) = (value.as_object(), rule.is_object()) {
                    for (name, field) in object {
                        validate(document, rule, field, &format!("{at}.{name}"))?;
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (index, item) in items.iter().enumerate() {
                        validate(document, rule, item, &format!("{at}[{index}]"))?;
                    }
                }
            }
            "propertyNames" => {
                if let Some(object) = value.as_object() {
                    for name in object.keys() {
                        validate(document, rule, &Value::from(name.as_str()), at)?;
                    }
                }
            }
            "allOf" => {
                for part in rule.as_array().ok_or("allOf")? {
                    validate(document, part, value, at)?;
                }
            }
            "oneOf" => {
                let matching = rule
                    .as_array()
                    .ok_or("oneOf")?
                    .iter()
                    .filter(|part| validate(document, part, value, at).is_ok())
                    .count();
                if matching != 1 {
                    return Err(format!("{at}: {value} matches {matching} of oneOf"));
                }
            }
            "enum" => {
                if !rule.as_array().ok_or("enum")?.contains(value) {
                    return Err(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "minItems" => {
                let least = rule.as_u64().ok_or("minItems")?;
                if value
                    .as_array()
                    .is_some_and(|items| (items.len() as u64) < least)
                {
                    return Err(format!("{at}: fewer than {rule} items"));
                }
            }
            "minLength" | "maxLength" => {
                if let Some(text) = value.as_str() {
                    let length = text.chars().count() as u64;
                    let bound = rule.as_u64().ok_or("length")?;
                    if (keyword == "minLength" && length < bound)
                        || (keyword == "maxLength" && length > bound)
                    {
                        return Err(format!("{at}: length {length} breaks {keyword} {bound}"));
                    }
                }
            }
            "minimum" | "maximum" => {
                if let Some(number) = value.as_f64() {
                    let bound = rule.as_f64().ok_or("bound")?;
                    if (keyword == "minimum" && number < bound)
                        || (keyword == "maximum" && number > bound)
                    {
                        return Err(format!("{at}: {number} breaks {keyword} {bound}"));
                    }
                }
            }
            "format" => {
                if let (Some(text), "date-time") = (value.as_str(), rule.as_str().unwrap_or("")) {
                    chrono::DateTime::parse_from_rfc3339(text)
                        .map_err(|_| format!("{at}: {text:?} is not a date-time"))?;
                }
            }
            // Annotations, and constraints on values the edge never
            // produces here (patterns apply to request fields).
            "description" | "title" | "example" | "examples" | "pattern" => {}
            other => return Err(format!("{at}: the validator does not know `{other}`")),
        }
    }
    Ok(())
}

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}
