//! http-edge: the public REST face of Allmine live chat.
//!
//! The edge owns no state and checks no tokens. It maps the documented REST
//! paths, the `Authorization` header and the JSON bodies onto gRPC calls to
//! chat-service, and gRPC statuses back onto HTTP statuses and the documented
//! error envelope `{isSuccess, statusCode, data, errors[], timestamp}`.
//!
//! - [`config`]: the one clap [`Config`] (flags with `EDGE_*` environment
//!   fallbacks).
//! - [`startup`]: [`Application`], which binds the listener and serves until a
//!   shutdown future resolves; `main` and the tests share it.
//! - [`telemetry`]: the tracing subscriber (`RUST_LOG`).
//! - [`routes`]: the router, its fallbacks (404, 405) and one file per route
//!   group, each handler a thin parse → gRPC call → map:
//!   - [`routes::messages`]: `POST /api/v1/live-stream/{streamId}/chat/messages`
//!     (`SendMessage`, 201 and the message) and `GET` on the same path with
//!     `?limit=&before=&after=` (`ListMessages`, 200 and a page of messages);
//!   - [`routes::bans`]: `POST .../{streamId}/chat/bans` (`BanUser`, 201 and
//!     the ban) and `DELETE .../{streamId}/chat/bans/{userId}` (`UnbanUser`,
//!     204);
//!   - [`routes::moderators`]: `PUT` and `DELETE
//!     .../{streamId}/chat/moderators/{userId}` (`AddModerator`,
//!     `RemoveModerator`, 200 and the stream);
//!   - [`routes::health`]: `/healthz`, `/readyz`.
//!
//!   `ChatAdminService` (registering streams, opening chats, profiles) is
//!   internal and deliberately has no route here.
//! - [`extract`]: the request extractors whose rejections are [`ApiError`]s:
//!   the bearer token, the JSON body (content type, size, unknown fields), the
//!   path and the query string (strict: unknown or repeated parameters are
//!   refused).
//! - [`request_id`]: the middleware that gives each request an `x-request-id`
//!   and a tracing span.
//! - [`grpc`]: the lazily connecting, self-reconnecting chat-service client,
//!   with a deadline on every call.
//! - [`dto`]: the documented JSON shapes, one file per resource (message,
//!   history page, ban, stream), and their conversions from the proto
//!   messages.
//! - [`error`]: [`ApiError`], its single mapping to the envelope, and the
//!   single mapping from `tonic::Status` (codes and rich error details).

pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod grpc;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use error::ApiError;
pub use startup::Application;
