//! The refusals of each operation: which statuses it can answer besides its
//! success, each the error envelope with its headers.
//!
//! The statuses follow from facts about the operation rather than from a
//! hand-kept list per route: every request passes the head limits (hyper's
//! 400 for malformed HTTP, 414, 431) and the connection cap (503); every API
//! route wants a token (401) and calls chat-service, which can refuse a
//! value (400), not find the resource (404), fail (500), shed load or be
//! unreachable (503) or late (504); a JSON body can come too slowly (408), be
//! too large (413) or not be JSON (415). Only chat-service's rules differ per
//! route (who may: 403; state conflicts: 409; rate limits: 429), and those
//! are listed in [`operation_refusals`].
//!
//! Each status is one shared response (`#/components/responses/...`), so
//! the envelope and its headers are described once.

use utoipa::{
    Modify,
    openapi::{
        ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Type,
        header::{Header, HeaderBuilder},
        path::{Operation, PathItem},
        response::Response,
    },
};

/// [`crate::error::ERROR_REASON_HEADER`], as the document names it.
pub const REASON_HEADER: &str = "Allmine-Error-Reason";

/// What an operation is, for the refusals it can answer.
#[derive(Debug, Clone, Copy)]
struct Facts {
    /// Wants a bearer token.
    token: bool,
    /// Calls chat-service.
    chat_service: bool,
    /// Reads a JSON body.
    json_body: bool,
    /// chat-service's own rules for this call: 403, 409, 429.
    rules: &'static [u16],
}

/// The facts of each documented operation, by operation id.
fn facts(operation_id: &str) -> Option<Facts> {
    let api = |json_body, rules| Facts {
        token: true,
        chat_service: true,
        json_body,
        rules,
    };
    Some(match operation_id {
        // Banned (403); chat closed, stream ended, or an idempotency key
        // reused for another message (409); slow mode or burst limit (429).
        "sendMessage" => api(true, &[403, 409, 429]),
        "listMessages" => api(false, &[]),
        // Only the sender, the owner or a moderator may delete.
        "deleteMessage" => api(false, &[403]),
        // Too many subscriptions for the user or the connection (429); the
        // edge's own stream cap is a 503 like any shedding.
        "followChat" => api(false, &[429]),
        "banUser" => api(true, &[403]),
        "unbanUser" | "addModerator" | "removeModerator" => api(false, &[403]),
        // Not ready is a 503, which every request can answer anyway.
        "healthz" | "readyz" => Facts {
            token: false,
            chat_service: false,
            json_body: false,
            rules: &[],
        },
        _ => return None,
    })
}

/// The error statuses an operation can answer, in order; `None` for an
/// operation this module does not know (the tests catch that).
pub fn operation_refusals(operation_id: &str) -> Option<Vec<u16>> {
    let facts = facts(operation_id)?;
    // Malformed HTTP (hyper), the head limits, the connection cap.
    let mut statuses = vec![400, 414, 431, 503];
    if facts.token {
        statuses.push(401);
    }
    if facts.chat_service {
        statuses.extend([404, 500, 504]);
    }
    if facts.json_body {
        statuses.extend([408, 413, 415]);
    }
    statuses.extend(facts.rules);
    statuses.sort_unstable();
    statuses.dedup();
    Some(statuses)
}

/// Adds the shared error responses and each operation's references to them.
pub struct Refusals;

impl Modify for Refusals {
    fn modify(&self, openapi: &mut OpenApi) {
        let mut used = Vec::new();
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                let id = operation.operation_id.clone().unwrap_or_default();
                // Unknown: left without refusals; the tests name it.
                let Some(statuses) = operation_refusals(&id) else {
                    continue;
                };
                for status in statuses {
                    operation.responses.responses.insert(
                        status.to_string(),
                        RefOr::Ref(Ref::from_response_name(response_name(status))),
                    );
                    used.push(status);
                }
            }
        }
        used.sort_unstable();
        used.dedup();
        let components = openapi.components.get_or_insert_with(Default::default);
        for status in used {
            components
                .responses
                .insert(response_name(status), RefOr::T(error_response(status)));
        }
    }
}

/// The operations of a path item, whatever their methods.
pub(crate) fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// `Error401`, the shared response's name.
fn response_name(status: u16) -> String {
    format!("Error{status}")
}

/// When each status is answered, as the document tells clients.
fn when(status: u16) -> &'static str {
    match status {
        400 => {
            "The request is invalid: its body, path, query or headers (`VALIDATION`), or \
             not valid HTTP. `errors[1..]` name each problem, by field."
        }
        401 => {
            "No bearer token, a malformed one, or one chat-service rejected \
             (`UNAUTHENTICATED`)."
        }
        403 => "The caller may not do this (`BANNED`, `PERMISSION_DENIED`, ...).",
        404 => "The stream, message or user is unknown (`STREAM_NOT_REGISTERED`, `NOT_FOUND`).",
        408 => "The request body did not arrive in time; the connection is closed.",
        409 => {
            "The chat's state forbids it (`CHAT_CLOSED`, `STREAM_ENDED`), or the resource \
             exists already (an `Idempotency-Key` reused for another message)."
        }
        413 => "The body is larger than 16 KiB.",
        414 => "The request target is longer than 8 KiB.",
        415 => "The body is not `application/json`.",
        429 => {
            "Sending too fast (`SLOW_MODE`, `BURST_LIMIT`) or too many live subscriptions: \
             retry after `Retry-After` seconds."
        }
        431 => "A header is larger than 8 KiB, or all of them together larger than 32 KiB.",
        500 => "chat-service failed unexpectedly (`INTERNAL`); no detail is shown.",
        503 => {
            "chat-service is unreachable or not serving (`UNAVAILABLE`), or a bound of the \
             edge or of chat-service is reached (`OVERLOADED`: connections, requests in \
             flight, event streams): retry, after `Retry-After` seconds when given."
        }
        504 => "chat-service did not answer in time (`TIMEOUT`).",
        _ => "Refused.",
    }
}

fn error_response(status: u16) -> Response {
    let phrase = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Error");
    let mut response = ResponseBuilder::new()
        .description(format!("{phrase}. {}", when(status)))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        // As the header is usually written (HTTP names are case-insensitive;
        // the edge sends it lowercase, over HTTP/2 too).
        .header(REASON_HEADER, reason_header())
        .header(
            crate::request_id::X_REQUEST_ID.as_str(),
            super::request_id_header(),
        );
    match status {
        401 => {
            response = response.header(
                "WWW-Authenticate",
                string_header("`Bearer`: the scheme the API wants."),
            );
        }
        429 => {
            response = response.header("Retry-After", retry_after_header());
            for (name, description) in rate_limit_headers() {
                response = response.header(name, integer_header(description));
            }
        }
        503 => response = response.header("Retry-After", retry_after_header()),
        _ => {}
    }
    response.build()
}

/// `RateLimit-*`, as on a send's 201 and on its 429.
pub(crate) fn rate_limit_headers() -> [(&'static str, &'static str); 3] {
    [
        (
            "RateLimit-Limit",
            "Messages allowed per window (when chat-service reports it).",
        ),
        (
            "RateLimit-Remaining",
            "Messages left in the current window.",
        ),
        ("RateLimit-Reset", "Seconds until the quota is full again."),
    ]
}

fn reason_header() -> Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Z0-9_]{1,63}$")),
        )
        .description(Some(
            "Why the request was refused, machine-readable: chat-service's reason (the \
             `google.rpc.ErrorInfo` reason gRPC clients get: `SLOW_MODE`, `BURST_LIMIT`, \
             `BANNED`, `CHAT_CLOSED`, `STREAM_ENDED`, `STREAM_NOT_REGISTERED`, ...) when it gave \
             one, else the edge's for the status (`VALIDATION`, `UNAUTHENTICATED`, \
             `NOT_FOUND`, `OVERLOADED`, ...). New reasons may appear: treat an unknown one \
             by its status.",
        ))
        .build()
}

fn retry_after_header() -> Header {
    integer_header("Whole seconds to wait before retrying (at least 1).")
}

fn integer_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(description))
        .build()
}

fn string_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_route_answers_every_status_the_contract_names() {
        let statuses = operation_refusals("sendMessage").expect("known");
        for status in [400, 401, 403, 404, 409, 413, 415, 429, 503, 504] {
            assert!(statuses.contains(&status), "{status}");
        }
    }

    #[test]
    fn the_documented_reason_header_is_the_one_sent() {
        assert!(REASON_HEADER.eq_ignore_ascii_case(crate::error::ERROR_REASON_HEADER.as_str()));
    }

    #[test]
    fn probes_want_no_token_and_call_nothing_that_could_refuse_them() {
        assert_eq!(
            operation_refusals("healthz").expect("known"),
            [400, 414, 431, 503]
        );
        assert_eq!(operation_refusals("nope"), None);
    }
}
