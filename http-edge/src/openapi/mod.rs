//! The OpenAPI 3.1 document of the REST face, served at `GET /openapi.json`,
//! and its reference page at `GET /docs`.
//!
//! The document is derived from the edge's own types, not written by hand:
//! the JSON shapes are the [`crate::dto`] types (`#[derive(ToSchema)]`, so a
//! renamed or added field shows up here by itself), each operation is the
//! `#[utoipa::path]` on its handler in [`crate::routes`] (parameters, body,
//! success answer), and what no single handler knows is added here, once:
//!
//! - [`refusals`]: the error envelope for every status each operation can
//!   answer, with its headers (`Allmine-Error-Reason`, `Retry-After`,
//!   `RateLimit-*`, `WWW-Authenticate`), from the facts that decide it (every
//!   request passes the head limits, every API route wants a token, a JSON
//!   body can be too large, ...);
//! - [`events`]: the Server-Sent Events of the live route, one schema per
//!   event type;
//! - the security schemes (a bearer JWT; the event stream's `access_token`
//!   query parameter) and `x-request-id` on every answer.
//!
//! Routes that are not API (the web page at `/`, its assets, this document
//! and its page) are not in it. A test (`tests/api/openapi.rs`) checks that
//! its operations are exactly [`crate::routes::routes`].

pub mod events;
mod page;
pub mod refusals;

use std::sync::LazyLock;

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::Value;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        ObjectBuilder, Required, Type,
        header::HeaderBuilder,
        path::{Parameter, ParameterBuilder, ParameterIn},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::{dto, error, request_id::X_REQUEST_ID, routes};
use refusals::Refusals;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// The stream id of a path, as the handlers take it (`ApiPath<String>`):
/// declared for the document only.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Read by the derive only.
pub struct StreamPath {
    /// The stream's id (24 hexadecimal digits).
    #[param(
        rename = "streamId",
        pattern = "^[0-9a-fA-F]{24}$",
        example = "64d15f9e2e6c8f4d5a123000"
    )]
    stream_id: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Allmine live chat",
        description = "The public REST and Server-Sent Events face of Allmine live chat.\n\n\
            Success bodies are the resources themselves. Every refusal is the error envelope \
            `{isSuccess, statusCode, data, errors, timestamp}` with the machine-readable reason in \
            the `Allmine-Error-Reason` header. Every answer carries an `x-request-id` (the \
            client's own, when it sent a valid one).",
    ),
    paths(
        routes::messages::send_message,
        routes::messages::list_messages,
        routes::messages::delete_message,
        routes::events::follow_chat,
        routes::bans::ban_user,
        routes::bans::unban_user,
        routes::moderators::add_moderator,
        routes::moderators::remove_moderator,
        routes::health::healthz,
        routes::health::readyz,
    ),
    components(schemas(
        error::Envelope,
        dto::ChatMessageJson,
        dto::MessageDeletedJson,
        dto::UserBannedJson,
        dto::ChatStateChangedJson,
        dto::GapJson,
        crate::event_stream::ErrorEventData,
        events::EventStream,
    )),
    modifiers(&SecuritySchemes, &Refusals, &RequestIds),
    tags(
        (name = "messages", description = "Sending, reading and deleting messages"),
        (name = "live", description = "The chat, live"),
        (name = "moderation", description = "Bans, timeouts and moderators"),
        (name = "health", description = "Probes"),
    ),
)]
struct ApiDoc;

/// The document, built once.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
}

/// The document as served: [`document`] with the headers every answer
/// always carries marked `required` (utoipa's `Header` has no such field).
pub fn document_json() -> &'static [u8] {
    static JSON: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let mut value = serde_json::to_value(document()).unwrap_or_default();
        mark_required_headers(&mut value);
        serde_json::to_vec(&value).unwrap_or_default()
    });
    &JSON
}

/// The document and its page, for any router state (they need none).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(DOCUMENT_PATH, get(serve_document))
        .merge(page::router())
}

async fn serve_document() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        document_json(),
    )
        .into_response()
}

/// The name of the bearer scheme, which the operations refer to.
pub const BEARER: &str = "bearer";
/// The name of the event stream's query-token scheme.
pub const ACCESS_TOKEN: &str = "accessToken";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT of the Allmine auth service. The edge only checks its shape \
                         (three base64url segments); chat-service verifies it.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ACCESS_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                crate::extract::ACCESS_TOKEN_PARAM,
                "The same JWT as a query parameter, on the event stream only (browsers' \
                 `EventSource` cannot send headers).",
            ))),
        );
    }
}

/// `x-request-id` on every operation: an optional request header, and a
/// header of every answer.
struct RequestIds;

impl Modify for RequestIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in refusals::operations_mut(item) {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(request_id_parameter());
                for response in operation.responses.responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        response
                            .headers
                            .insert(X_REQUEST_ID.to_string(), request_id_header());
                    }
                }
            }
        }
    }
}

fn request_id_parameter() -> Parameter {
    ParameterBuilder::new()
        .name(X_REQUEST_ID.as_str())
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The client's id for this request, echoed and logged: 1 to 128 characters of \
             `A-Z a-z 0-9 . _ : -`; any other value is replaced by a fresh one (never refused).",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(128))
                .pattern(Some("^[A-Za-z0-9._:-]+$")),
        ))
        .build()
}

pub(crate) fn request_id_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        )
        .description(Some(
            "The request's id: the client's `x-request-id` when it sent a valid one, else a \
             fresh UUID. Logged with every line about the request.",
        ))
        .build()
}

/// The response headers every answer carries, by lowercase name.
const ALWAYS_PRESENT: &[&str] = &["x-request-id", "allmine-error-reason"];

fn mark_required_headers(document: &mut Value) {
    let Some(document) = document.as_object_mut() else {
        return;
    };
    let mut responses: Vec<&mut Value> = Vec::new();
    let (mut paths, mut components) = (None, None);
    for (key, value) in document.iter_mut() {
        match key.as_str() {
            "paths" => paths = Some(value),
            "components" => components = Some(value),
            _ => {}
        }
    }
    if let Some(paths) = paths.and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                if let Some(answers) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                {
                    responses.extend(answers.values_mut());
                }
            }
        }
    }
    if let Some(shared) = components
        .and_then(|components| components.get_mut("responses"))
        .and_then(Value::as_object_mut)
    {
        responses.extend(shared.values_mut());
    }
    for response in responses {
        let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, header) in headers.iter_mut() {
            if ALWAYS_PRESENT.contains(&name.to_ascii_lowercase().as_str())
                && let Some(header) = header.as_object_mut()
            {
                header.insert("required".to_owned(), Value::Bool(true));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_json_of_openapi_3_1() {
        let document: Value = serde_json::from_slice(document_json()).expect("JSON");
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn the_request_id_is_a_required_header_of_every_answer() {
        let document: Value = serde_json::from_slice(document_json()).expect("JSON");
        let created = &document["paths"][routes::MESSAGES_PATH]["post"]["responses"]["201"];
        assert_eq!(created["headers"]["x-request-id"]["required"], true);
        assert!(created["headers"]["Idempotent-Replayed"]["required"].is_null());
    }
}
