//! CORS (`EDGE_CORS_ALLOWED_ORIGINS`): preflights from allowed origins succeed
//! on every route and method without reaching chat-service; every response,
//! refusals included, grants the origin and exposes the headers a client
//! reads; unlisted origins get no grant; unset, nothing changes.

use std::time::Duration;

use http_edge::cors::AllowedOrigins;
use reqwest::{Method, Response};
use serde_json::json;
use tonic::{Code, Status, metadata::MetadataMap};
use tonic_types::{ErrorDetails, StatusExt};

use crate::helpers::{
    STREAM_ID, TOKEN, TestApp, ban_path, bans_path, events_path, message_item_path, message_path,
    moderator_path, spawn_app, spawn_app_with,
};

const ALLOWED: &str = "https://app.example";
const OTHER_ALLOWED: &str = "http://localhost:5173";
const UNLISTED: &str = "https://evil.example";
const USER_ID: &str = "64d15f9e2e6c8f4d5a123999";
const MESSAGE_ID: &str = "64d15f9e2e6c8f4d5a123456";
const REQUESTED_HEADERS: &str = "authorization,content-type,idempotency-key,last-event-id";
const EXPOSED: [&str; 7] = [
    "x-request-id",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "idempotent-replayed",
    "allmine-error-reason",
];

async fn spawn_with_origins(origins: &str) -> TestApp {
    let origins = AllowedOrigins::parse(origins).expect("valid origins");
    spawn_app_with(|config| config.cors_allowed_origins = origins).await
}

/// Every route of the edge with every method it serves.
fn routes() -> Vec<(Method, String)> {
    vec![
        (Method::POST, message_path(STREAM_ID)),
        (Method::GET, message_path(STREAM_ID)),
        (Method::DELETE, message_item_path(STREAM_ID, MESSAGE_ID)),
        (Method::GET, events_path(STREAM_ID, "")),
        (Method::POST, bans_path(STREAM_ID)),
        (Method::DELETE, ban_path(STREAM_ID, USER_ID)),
        (Method::PUT, moderator_path(STREAM_ID, USER_ID)),
        (Method::DELETE, moderator_path(STREAM_ID, USER_ID)),
        (Method::GET, "/healthz".to_owned()),
        (Method::GET, "/readyz".to_owned()),
    ]
}

async fn preflight(app: &TestApp, origin: &str, method: &Method, path: &str) -> Response {
    app.edge
        .client
        .request(Method::OPTIONS, app.edge.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method.as_str())
        .header("access-control-request-headers", REQUESTED_HEADERS)
        .send()
        .await
        .expect("the edge answers")
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("ASCII"))
}

/// The comma-separated list in header `name`, lowercased.
fn list(response: &Response, name: &str) -> Vec<String> {
    header(response, name)
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

/// `response` grants `origin` and exposes every header a client reads.
fn assert_granted(response: &Response, origin: &str) {
    assert_eq!(
        header(response, "access-control-allow-origin"),
        Some(origin),
        "{} {:?}",
        response.status(),
        response.headers()
    );
    let exposed = list(response, "access-control-expose-headers");
    for name in EXPOSED {
        assert!(
            exposed.iter().any(|item| item == name),
            "{name}: {exposed:?}"
        );
    }
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_succeeds_on_every_route_and_method() {
    let app = spawn_with_origins(&format!("{ALLOWED}, {OTHER_ALLOWED}")).await;
    for origin in [ALLOWED, OTHER_ALLOWED] {
        for (method, path) in routes() {
            let response = preflight(&app, origin, &method, &path).await;

            assert!(
                response.status().is_success(),
                "{method} {path}: {}",
                response.status()
            );
            assert_eq!(
                header(&response, "access-control-allow-origin"),
                Some(origin)
            );
            assert!(
                list(&response, "access-control-allow-methods")
                    .contains(&method.to_string().to_ascii_lowercase()),
                "{method} {path}: {:?}",
                response.headers()
            );
            let allowed = list(&response, "access-control-allow-headers");
            for name in REQUESTED_HEADERS.split(',') {
                assert!(
                    allowed.iter().any(|item| item == name),
                    "{name}: {allowed:?}"
                );
            }
            assert!(header(&response, "access-control-max-age").is_some());
            assert!(
                header(&response, "x-request-id").is_some(),
                "every response has one"
            );
            // Never the credentials mode: the API takes bearer tokens.
            assert!(header(&response, "access-control-allow-credentials").is_none());
        }
    }
    assert_eq!(
        app.chat.call_count(),
        0,
        "a preflight never reaches chat-service"
    );
}

#[tokio::test]
async fn responses_to_an_allowed_origin_grant_it_and_expose_the_headers_clients_read() {
    let app = spawn_with_origins(ALLOWED).await;
    app.chat.reply_metadata("ratelimit-limit", "20");

    let sent = app
        .edge
        .client
        .post(app.edge.url(&message_path(STREAM_ID)))
        .header("origin", ALLOWED)
        .header("idempotency-key", "k-1")
        .bearer_auth(TOKEN)
        .json(&json!({"content": "selam"}))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(sent.status().as_u16(), 201);
    assert_granted(&sent, ALLOWED);
    assert_eq!(header(&sent, "ratelimit-limit"), Some("20"));

    let events = app
        .edge
        .client
        .get(app.edge.url(&events_path(STREAM_ID, "")))
        .header("origin", ALLOWED)
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(events.status().as_u16(), 200);
    assert_granted(&events, ALLOWED);
}

#[tokio::test]
async fn refusals_grant_the_allowed_origin_too_so_a_page_can_read_them() {
    let app = spawn_with_origins(ALLOWED).await;
    let path = message_path(STREAM_ID);
    let send = |token: Option<&'static str>| {
        let mut request = app
            .edge
            .client
            .post(app.edge.url(&path))
            .header("origin", ALLOWED)
            .json(&json!({"content": "selam"}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let unauthenticated = send(None).await.expect("answers");
    assert_eq!(unauthenticated.status().as_u16(), 401);
    assert_granted(&unauthenticated, ALLOWED);

    let mut metadata = MetadataMap::new();
    metadata.insert("ratelimit-remaining", "0".parse().expect("ASCII"));
    app.chat.fail_with(Status::with_error_details_and_metadata(
        Code::ResourceExhausted,
        "slow mode is on",
        ErrorDetails::with_error_info("SLOW_MODE", "chat.allmine.tv", []),
        metadata,
    ));
    let slow = send(Some(TOKEN)).await.expect("answers");
    assert_eq!(slow.status().as_u16(), 429);
    assert_granted(&slow, ALLOWED);
    assert_eq!(header(&slow, "allmine-error-reason"), Some("SLOW_MODE"));

    let too_large = app
        .edge
        .client
        .post(app.edge.url(&path))
        .header("origin", ALLOWED)
        .header("content-type", "application/json")
        .bearer_auth(TOKEN)
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .expect("answers");
    assert_eq!(too_large.status().as_u16(), 413);
    assert_granted(&too_large, ALLOWED);

    let header_too_large = app
        .edge
        .client
        .get(app.edge.url(&path))
        .header("origin", ALLOWED)
        .header("x-padding", "a".repeat(9 * 1024))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(header_too_large.status().as_u16(), 431);
    assert_granted(&header_too_large, ALLOWED);

    for (method, path, status) in [
        (Method::GET, "/no/such/route".to_owned(), 404),
        (Method::PATCH, path.clone(), 405),
    ] {
        let response = app
            .edge
            .client
            .request(method, app.edge.url(&path))
            .header("origin", ALLOWED)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), status);
        assert_granted(&response, ALLOWED);
    }
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_grant() {
    let app = spawn_with_origins(ALLOWED).await;

    let response = preflight(&app, UNLISTED, &Method::POST, &message_path(STREAM_ID)).await;
    assert!(header(&response, "access-control-allow-origin").is_none());

    let sent = app
        .edge
        .client
        .post(app.edge.url(&message_path(STREAM_ID)))
        .header("origin", UNLISTED)
        .bearer_auth(TOKEN)
        .json(&json!({"content": "selam"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(sent.status().as_u16(), 201, "the server still serves it");
    assert!(
        header(&sent, "access-control-allow-origin").is_none(),
        "but the browser may not read it"
    );
}

#[tokio::test]
async fn star_grants_any_origin() {
    let app = spawn_with_origins("*").await;

    let response = preflight(
        &app,
        UNLISTED,
        &Method::DELETE,
        &message_item_path(STREAM_ID, MESSAGE_ID),
    )
    .await;
    assert!(response.status().is_success());
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn without_the_setting_there_is_no_cors_and_a_preflight_is_405_as_before() {
    let app = spawn_app().await;

    let response = preflight(&app, ALLOWED, &Method::POST, &message_path(STREAM_ID)).await;
    assert_eq!(response.status().as_u16(), 405);
    assert!(header(&response, "access-control-allow-origin").is_none());
    let sent = app
        .edge
        .client
        .post(app.edge.url(&message_path(STREAM_ID)))
        .header("origin", ALLOWED)
        .bearer_auth(TOKEN)
        .json(&json!({"content": "selam"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(sent.status().as_u16(), 201);
    assert!(header(&sent, "access-control-allow-origin").is_none());
}
