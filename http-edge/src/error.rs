//! [`ApiError`], the crate's one error type, and its two mappings: from
//! `tonic::Status` (once, in [`ApiError::from_status`], which `From<Status>`
//! calls) and to the documented envelope (once, in `IntoResponse`).
//!
//! The envelope is `{"isSuccess": false, "statusCode": N, "data": null,
//! "errors": [...], "timestamp": "..."}`: `errors[0]` is the canonical phrase
//! of the status, later entries are the specific reasons a client can act on.
//! Server-side failures (5xx) carry a detail that is logged, never sent: it may
//! hold internals such as transport errors.
//!
//! Every error response also names its machine-readable reason in the
//! [`ERROR_REASON_HEADER`] (`Allmine-Error-Reason: SLOW_MODE`), so that the
//! envelope's keys stay exactly as documented: chat-service's reason when its
//! status carries a `google.rpc.ErrorInfo` of [`ERROR_DOMAIN`], else the
//! edge's own reason for the error ([`ApiError::reason`]).

use std::time::Duration;

use axum::{
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{dto::format_timestamp, rate_limit::RateLimit};

/// The response header that names why a request was refused, in UPPER_SNAKE
/// (`SLOW_MODE`, `BANNED`, `VALIDATION`, ...): the same reason as the
/// `google.rpc.ErrorInfo` chat-service gives gRPC callers.
pub const ERROR_REASON_HEADER: HeaderName = HeaderName::from_static("allmine-error-reason");

/// The `domain` of chat-service's `google.rpc.ErrorInfo`; reasons of any
/// other domain are not chat-service's and are not passed on.
pub const ERROR_DOMAIN: &str = "chat.allmine.tv";

/// Every way a request can fail, from the edge's own checks or from
/// chat-service.
///
/// Client errors hold the reasons shown as `errors[1..]`; server errors hold a
/// detail for the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body, the path, or a field chat-service checked is invalid.
    #[error("validation failed: {0:?}")]
    Validation(Vec<String>),
    /// 401: no usable bearer token, or chat-service rejected it.
    #[error("authentication required: {0:?}")]
    Unauthenticated(Vec<String>),
    /// 403: the caller may not do this.
    #[error("insufficient permissions: {0:?}")]
    PermissionDenied(Vec<String>),
    /// 404: unknown route or resource.
    #[error("resource not found: {0:?}")]
    NotFound(Vec<String>),
    /// 405: the route exists, the method does not.
    #[error("method not allowed: {0:?}")]
    MethodNotAllowed(Vec<String>),
    /// 409: the resource exists already or its state forbids the change.
    #[error("conflict: {0:?}")]
    Conflict(Vec<String>),
    /// 408: the client did not send its body in time.
    #[error("request timeout: {0:?}")]
    RequestTimeout(Vec<String>),
    /// 413: the body is over the limit.
    #[error("payload too large: {0:?}")]
    PayloadTooLarge(Vec<String>),
    /// 414: the request target is over the limit.
    #[error("URI too long: {0:?}")]
    UriTooLong(Vec<String>),
    /// 415: the body is not JSON.
    #[error("unsupported media type: {0:?}")]
    UnsupportedMediaType(Vec<String>),
    /// 429: rate limited; `retry_after` becomes the `Retry-After` header.
    #[error("too many requests: {reasons:?}")]
    TooManyRequests {
        reasons: Vec<String>,
        retry_after: Option<Duration>,
    },
    /// 431: a header, or all of them, over the limit.
    #[error("request header fields too large: {0:?}")]
    HeadersTooLarge(Vec<String>),
    /// 500: anything unexpected.
    #[error("internal error: {0}")]
    Internal(String),
    /// 501: chat-service does not implement the call.
    #[error("not implemented by chat-service: {0}")]
    NotImplemented(String),
    /// 503: chat-service cannot be reached or is not serving.
    #[error("chat-service unavailable: {0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: a bound of the edge or of chat-service is
    /// reached (too many requests in flight, too many event streams); the
    /// reasons say which, and retrying later is expected to work.
    #[error("overloaded: {reasons:?}")]
    Overloaded {
        reasons: Vec<String>,
        retry_after: Duration,
    },
    /// 504: chat-service did not answer before the deadline.
    #[error("chat-service timed out: {0}")]
    GatewayTimeout(String),
    /// A refusal chat-service explained beyond its code: the error it maps
    /// to, with the reason of its `google.rpc.ErrorInfo` and the rate limit
    /// it reported. Every other method answers for the inner error.
    #[error("{} [{}]", .0.error, .0.reason.as_deref().unwrap_or("-"))]
    Explained(Box<Explained>),
}

/// See [`ApiError::Explained`].
#[derive(Debug)]
pub struct Explained {
    pub error: ApiError,
    /// chat-service's reason, already checked to be UPPER_SNAKE.
    pub reason: Option<String>,
    pub rate_limit: Option<RateLimit>,
}

impl ApiError {
    /// The HTTP status of the envelope.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Explained(explained) => explained.error.status_code(),
        }
    }

    /// The canonical phrase, `errors[0]`, as the public API documents it.
    pub fn phrase(&self) -> &'static str {
        match self {
            Self::Validation(_) => "Validation failed",
            Self::Unauthenticated(_) => "Authentication required",
            Self::PermissionDenied(_) => "Insufficient permissions",
            Self::NotFound(_) => "Resource not found",
            Self::MethodNotAllowed(_) => "Method not allowed",
            Self::Conflict(_) => {
                "Resource already exists or cannot be changed in its current state"
            }
            Self::RequestTimeout(_) => "Request timeout",
            Self::PayloadTooLarge(_) => "Payload too large",
            Self::UriTooLong(_) => "URI too long",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::HeadersTooLarge(_) => "Request header fields too large",
            Self::TooManyRequests { .. } => "Too many requests",
            Self::Internal(_) => "Internal server error",
            Self::NotImplemented(_) => "Not implemented",
            Self::Unavailable(_) | Self::Overloaded { .. } => "Service unavailable",
            Self::GatewayTimeout(_) => "Gateway timeout",
            Self::Explained(explained) => explained.error.phrase(),
        }
    }

    /// The reasons shown to the client after the phrase; none for server errors.
    pub fn reasons(&self) -> &[String] {
        match self {
            Self::Validation(reasons)
            | Self::Unauthenticated(reasons)
            | Self::PermissionDenied(reasons)
            | Self::NotFound(reasons)
            | Self::MethodNotAllowed(reasons)
            | Self::Conflict(reasons)
            | Self::RequestTimeout(reasons)
            | Self::PayloadTooLarge(reasons)
            | Self::UriTooLong(reasons)
            | Self::UnsupportedMediaType(reasons)
            | Self::HeadersTooLarge(reasons)
            | Self::TooManyRequests { reasons, .. }
            | Self::Overloaded { reasons, .. } => reasons,
            Self::Internal(_)
            | Self::NotImplemented(_)
            | Self::Unavailable(_)
            | Self::GatewayTimeout(_) => &[],
            Self::Explained(explained) => explained.error.reasons(),
        }
    }

    /// The machine-readable reason, the [`ERROR_REASON_HEADER`]:
    /// chat-service's when it gave one, else the edge's for this kind of
    /// error. Every 4xx/5xx the edge answers has one.
    pub fn reason(&self) -> &str {
        match self {
            Self::Explained(explained) => explained
                .reason
                .as_deref()
                .unwrap_or_else(|| explained.error.reason()),
            Self::Validation(_) => "VALIDATION",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::PermissionDenied(_) => "PERMISSION_DENIED",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::Conflict(_) => "CONFLICT",
            Self::RequestTimeout(_) => "REQUEST_TIMEOUT",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::UriTooLong(_) => "URI_TOO_LONG",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::HeadersTooLarge(_) => "HEADERS_TOO_LARGE",
            Self::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
            Self::Internal(_) => "INTERNAL",
            Self::NotImplemented(_) => "NOT_IMPLEMENTED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Overloaded { .. } => "OVERLOADED",
            Self::GatewayTimeout(_) => "TIMEOUT",
        }
    }

    /// The rate limit chat-service reported with this refusal, if any.
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        match self {
            Self::Explained(explained) => explained.rate_limit.as_ref(),
            _ => None,
        }
    }

    /// The error without chat-service's explanation.
    fn plain(&self) -> &Self {
        match self {
            Self::Explained(explained) => explained.error.plain(),
            other => other,
        }
    }
}

/// The documented error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(
    as = ErrorEnvelope,
    description = "Every refusal's body; the machine-readable reason is the `Allmine-Error-Reason` header."
)]
pub struct Envelope<'a> {
    /// Always `false`.
    is_success: bool,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    status_code: u16,
    /// Always `null` on errors; `()` serializes as `null`.
    #[schema(schema_with = null_schema)]
    data: (),
    /// The status's canonical phrase (`"Validation failed"`), then the
    /// reasons a client can act on (none for server errors).
    #[schema(value_type = Vec<String>, min_items = 1)]
    errors: Vec<&'a str>,
    /// When the edge answered: RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime, example = "2026-01-15T10:30:00.000Z")]
    timestamp: String,
}

/// `data`'s schema: JSON `null` and nothing else.
fn null_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Null)
        .build()
}

impl ApiError {
    /// What the client is shown, the envelope's `errors`: the phrase, then
    /// the reasons (none for server errors).
    pub fn client_errors(&self) -> Vec<&str> {
        std::iter::once(self.phrase())
            .chain(self.reasons().iter().map(String::as_str))
            .collect()
    }

    /// Logs the error in the current span: server errors with their detail
    /// (which is only ever logged: it may carry transport errors or other
    /// internals of chat-service), client errors with their reasons.
    pub fn log(&self) {
        let status = self.status_code().as_u16();
        let reason = self.reason();
        match self.plain() {
            Self::Internal(_) => tracing::error!(status, reason, error = %self, "request failed"),
            // One line per shed request, at the level of other refusals: a
            // WARN each would flood the log (and cost CPU) exactly when the
            // edge is overloaded; the access line records the 503 anyway.
            Self::Overloaded { .. } => {
                tracing::info!(status, reason, error = %self, "request shed");
            }
            Self::NotImplemented(_) | Self::Unavailable(_) | Self::GatewayTimeout(_) => {
                tracing::warn!(status, reason, error = %self, "request failed");
            }
            _ => tracing::info!(status, reason, error = %self, "request rejected"),
        }
    }
}

impl ApiError {
    /// The documented envelope of this error, as JSON.
    pub fn envelope_json(&self) -> Vec<u8> {
        let envelope = Envelope {
            is_success: false,
            status_code: self.status_code().as_u16(),
            data: (),
            errors: self.client_errors(),
            timestamp: format_timestamp(chrono::Utc::now()),
        };
        // Strings, numbers and a null cannot fail to serialize.
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    /// The `Retry-After` a client should honour, when the error has one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.plain() {
            Self::TooManyRequests { retry_after, .. } => *retry_after,
            Self::Overloaded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        self.into_unlogged_response()
    }
}

impl ApiError {
    /// The response, without the log line [`IntoResponse`] writes: for
    /// refusals counted and logged in aggregate (early shedding), where a
    /// line per request would cost the CPU that overload leaves short.
    pub fn into_unlogged_response(self) -> Response {
        let status = self.status_code();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.envelope_json(),
        )
            .into_response();

        let headers = response.headers_mut();
        match self.plain() {
            Self::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The rest of a body that did not arrive in time is never read:
            // the connection cannot carry another request.
            Self::RequestTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        // Reasons are UPPER_SNAKE ASCII (checked when read from chat-service).
        if let Ok(reason) = HeaderValue::from_str(self.reason()) {
            headers.insert(ERROR_REASON_HEADER, reason);
        }
        if let Some(rate_limit) = self.rate_limit() {
            rate_limit.insert_into(headers);
        }
        if let Some(delay) = self.retry_after() {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(delay)),
            );
        }
        response
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        Self::from_status(status, &[])
    }
}

impl ApiError {
    /// The one mapping from a gRPC status. A field violation names its field
    /// in the client's terms: the proto path as the route's REST name when
    /// `rest_names` lists it (`page_size` → `limit`, a query parameter), else
    /// in camelCase (`stream_id` → `streamId`).
    pub fn from_status(status: Status, rest_names: &[(&str, &str)]) -> Self {
        crate::metrics::upstream_failure(status.code());
        // tonic reports the expiry of its own deadline (the client's
        // `Endpoint::timeout`, or the server enforcing `grpc-timeout`) as
        // CANCELLED "Timeout expired", not as DEADLINE_EXCEEDED.
        if is_tonic_timeout(&status) {
            return Self::GatewayTimeout(log_detail(&status));
        }
        // A status the client stack built from a failed connection (hyper's
        // "operation was canceled", a reset, a connection closed mid-call)
        // carries that error as its source, whatever code it got; a status
        // chat-service sent never has one. A broken connection is chat-service
        // restarting or going away: retryable, not a fault of the edge.
        if std::error::Error::source(&status).is_some() {
            return Self::Unavailable(log_detail(&status));
        }
        let details = status.get_error_details();
        let reasons = || client_reasons(&status, &details, rest_names);
        let error_info = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN && is_reason(&info.reason));
        let error = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Self::Validation(reasons()),
            Code::Unauthenticated => Self::Unauthenticated(reasons()),
            Code::PermissionDenied => Self::PermissionDenied(reasons()),
            Code::NotFound => Self::NotFound(reasons()),
            // FAILED_PRECONDITION usually maps to 400. It maps to 409 here on
            // purpose: the public contract puts every state conflict ("cannot
            // be changed in its current state") at 409, beside ALREADY_EXISTS
            // and ABORTED.
            Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => {
                Self::Conflict(reasons())
            }
            Code::ResourceExhausted => Self::TooManyRequests {
                reasons: reasons(),
                retry_after: details
                    .retry_info()
                    .and_then(|info| info.retry_delay)
                    .or_else(|| {
                        error_info
                            .and_then(|info| info.metadata.get("retry_after_seconds"))
                            .and_then(|seconds| seconds.parse().ok())
                            .map(Duration::from_secs)
                    }),
            },
            Code::Unimplemented => Self::NotImplemented(log_detail(&status)),
            // chat-service shedding load says so with a RetryInfo: the
            // client is told to come back, and why.
            Code::Unavailable => match details.retry_info().and_then(|info| info.retry_delay) {
                Some(retry_after) => Self::Overloaded {
                    reasons: reasons(),
                    retry_after,
                },
                None => Self::Unavailable(log_detail(&status)),
            },
            Code::DeadlineExceeded => Self::GatewayTimeout(log_detail(&status)),
            // The edge never cancels a call it is still waiting on (a client
            // that hangs up drops the whole request instead), so a CANCELLED
            // came from chat-service's side, shutting down: retryable.
            Code::Cancelled => Self::Unavailable(log_detail(&status)),
            _ => Self::Internal(log_detail(&status)),
        };
        let reason = error_info.map(|info| info.reason.clone());
        let rate_limit = RateLimit::from_metadata(status.metadata());
        if reason.is_none() && rate_limit.is_none() {
            return error;
        }
        Self::Explained(Box::new(Explained {
            error,
            reason,
            rate_limit,
        }))
    }
}

/// `google.rpc.ErrorInfo`'s rule for a reason: `[A-Z0-9_]+`, at most 63
/// characters. Anything else is not passed on (it becomes a header value).
fn is_reason(reason: &str) -> bool {
    (1..=63).contains(&reason.len())
        && reason
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_')
}

fn is_tonic_timeout(status: &Status) -> bool {
    status.code() == Code::Cancelled && status.message() == tonic::TimeoutExpired(()).to_string()
}

/// `errors[1..]` of a client error: one "field: description" per bad-request
/// violation, else the status message when there is one.
fn client_reasons(
    status: &Status,
    details: &ErrorDetails,
    rest_names: &[(&str, &str)],
) -> Vec<String> {
    let violations: Vec<String> = details
        .bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .iter()
                .map(|violation| {
                    if violation.field.is_empty() {
                        violation.description.clone()
                    } else {
                        format!(
                            "{}: {}",
                            client_field_name(&violation.field, rest_names),
                            violation.description
                        )
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if !violations.is_empty() {
        return violations;
    }
    let message = status.message().trim();
    if message.is_empty() {
        Vec::new()
    } else {
        vec![message.to_owned()]
    }
}

/// What the log gets for a server error: the code, the message and the cause.
fn log_detail(status: &Status) -> String {
    let code = status.code();
    let message = status.message();
    match std::error::Error::source(status) {
        Some(source) => format!("{code:?}: {message} ({source})"),
        None => format!("{code:?}: {message}"),
    }
}

/// The name a client knows a proto field by: the route's REST name when it
/// has one, else the JSON name.
fn client_field_name(proto_path: &str, rest_names: &[(&str, &str)]) -> String {
    rest_names
        .iter()
        .find(|(proto, _rest)| *proto == proto_path)
        .map_or_else(
            || json_field_path(proto_path),
            |(_proto, rest)| (*rest).to_owned(),
        )
}

/// Turns a proto field path into the JSON name clients know:
/// `stream_id` → `streamId`, `sender.profile_photo` → `sender.profilePhoto`.
fn json_field_path(proto_path: &str) -> String {
    proto_path
        .split('.')
        .map(snake_to_camel)
        .collect::<Vec<_>>()
        .join(".")
}

fn snake_to_camel(segment: &str) -> String {
    let mut camel = String::with_capacity(segment.len());
    let mut upper_next = false;
    for (index, character) in segment.char_indices() {
        // A leading underscore is part of the name (`_id`), not a separator.
        if character == '_' && index > 0 {
            upper_next = true;
        } else if upper_next {
            camel.extend(character.to_uppercase());
            upper_next = false;
        } else {
            camel.push(character);
        }
    }
    camel
}

/// `Retry-After` takes whole seconds; rounding up keeps clients from retrying
/// early, and 0 would invite an immediate retry.
pub fn retry_after_seconds(delay: Duration) -> u64 {
    let whole_seconds = delay
        .as_secs()
        .saturating_add(u64::from(delay.subsec_nanos() > 0));
    whole_seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_fields_become_camel_case() {
        assert_eq!(json_field_path("stream_id"), "streamId");
        assert_eq!(json_field_path("content"), "content");
        assert_eq!(
            json_field_path("sender.profile_photo.created_at"),
            "sender.profilePhoto.createdAt"
        );
        assert_eq!(json_field_path("_id"), "_id");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
    }

    #[test]
    fn violations_become_reasons_with_json_field_names() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid request",
            ErrorDetails::with_bad_request_violation("stream_id", "must be 24 hex digits"),
        );
        let error = ApiError::from(status);
        assert_eq!(error.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(error.reasons(), ["streamId: must be 24 hex digits"]);
    }

    #[test]
    fn a_route_can_give_a_field_its_rest_name_and_the_others_stay_camel_case() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid request",
            ErrorDetails::with_bad_request(vec![
                tonic_types::FieldViolation::new("page_size", "must be between 1 and 100"),
                tonic_types::FieldViolation::new("stream_id", "must be 24 hex digits"),
            ]),
        );
        let error = ApiError::from_status(status, &[("page_size", "limit")]);
        assert_eq!(
            error.reasons(),
            [
                "limit: must be between 1 and 100",
                "streamId: must be 24 hex digits"
            ]
        );
    }

    #[test]
    fn without_violations_the_message_is_the_reason_of_a_client_error() {
        let error = ApiError::from(Status::not_found("stream not found"));
        assert_eq!(error.reasons(), ["stream not found"]);
        let error = ApiError::from(Status::permission_denied(""));
        assert!(error.reasons().is_empty());
    }

    #[test]
    fn server_errors_never_expose_the_message() {
        for status in [
            Status::internal("db password is hunter2"),
            Status::unavailable("tcp connect error 10.0.0.7"),
            Status::deadline_exceeded("slow shard 3"),
            Status::unimplemented("method x"),
        ] {
            let error = ApiError::from(status);
            assert!(error.status_code().is_server_error());
            assert!(error.reasons().is_empty());
        }
    }

    #[test]
    fn chat_services_error_info_gives_the_reason_and_the_code_still_the_status() {
        let status = Status::with_error_details(
            Code::FailedPrecondition,
            "the chat of this stream is closed",
            ErrorDetails::with_error_info("CHAT_CLOSED", ERROR_DOMAIN, []),
        );
        let error = ApiError::from(status);
        assert_eq!(error.status_code(), StatusCode::CONFLICT);
        assert_eq!(error.reason(), "CHAT_CLOSED");
        assert_eq!(error.reasons(), ["the chat of this stream is closed"]);
        assert_eq!(
            error.phrase(),
            "Resource already exists or cannot be changed in its current state"
        );
    }

    #[test]
    fn without_error_info_or_with_a_foreign_or_malformed_one_the_reason_is_the_edges() {
        assert_eq!(
            ApiError::from(Status::failed_precondition("closed")).reason(),
            "CONFLICT"
        );
        for (reason, domain) in [
            ("CHAT_CLOSED", "example.com"),
            ("chat closed", ERROR_DOMAIN),
            ("", ERROR_DOMAIN),
            ("CLOSED\r\nX-Evil: 1", ERROR_DOMAIN),
        ] {
            let status = Status::with_error_details(
                Code::FailedPrecondition,
                "closed",
                ErrorDetails::with_error_info(reason, domain, []),
            );
            assert_eq!(ApiError::from(status).reason(), "CONFLICT", "{reason:?}");
        }
    }

    #[test]
    fn every_edge_error_has_an_upper_snake_reason() {
        for error in [
            ApiError::Validation(vec![]),
            ApiError::Unauthenticated(vec![]),
            ApiError::PayloadTooLarge(vec![]),
            ApiError::Overloaded {
                reasons: vec![],
                retry_after: Duration::from_secs(1),
            },
            ApiError::GatewayTimeout(String::new()),
            ApiError::Internal(String::new()),
        ] {
            assert!(is_reason(error.reason()), "{error:?}");
        }
    }

    #[test]
    fn error_info_retry_after_seconds_is_the_retry_after_when_there_is_no_retry_info() {
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "slow mode is on",
            ErrorDetails::with_error_info(
                "SLOW_MODE",
                ERROR_DOMAIN,
                [("retry_after_seconds".to_owned(), "7".to_owned())],
            ),
        );
        let error = ApiError::from(status);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(error.reason(), "SLOW_MODE");
    }

    #[test]
    fn failed_precondition_is_a_conflict() {
        let error = ApiError::from(Status::failed_precondition("stream ended"));
        assert_eq!(error.status_code(), StatusCode::CONFLICT);
    }

    #[test]
    fn the_tonic_timeout_is_a_gateway_timeout_and_other_cancellations_unavailable() {
        let timeout = ApiError::from(Status::from_error(Box::new(tonic::TimeoutExpired(()))));
        assert_eq!(timeout.status_code(), StatusCode::GATEWAY_TIMEOUT);
        let cancelled = ApiError::from(Status::cancelled("shutting down"));
        assert_eq!(cancelled.status_code(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_connection_failing_under_a_call_is_unavailable_whatever_its_code() {
        // What tonic builds when the connection breaks mid-call: UNKNOWN
        // "transport error" with the I/O error as its source.
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let broken = Status::from_error(Box::new(reset));
        assert_eq!(broken.code(), Code::Unknown);
        assert_eq!(
            ApiError::from(broken).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // The same code sent by chat-service is its own fault: 500.
        let sent = ApiError::from(Status::unknown("transport error"));
        assert_eq!(sent.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
