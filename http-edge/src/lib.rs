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
//!     (`SendMessage`, 201 and the message), `GET` on the same path with
//!     `?limit=&before=&after=` (`ListMessages`, 200 and a page of messages)
//!     and `DELETE .../messages/{messageId}` (`DeleteMessage`, 204);
//!   - [`routes::events`]: `GET .../{streamId}/chat/events`
//!     (`SubscribeMessages`, a stream of Server-Sent Events, resumable with
//!     `Last-Event-ID` or `?after=`; the token may also come as
//!     `?access_token=`, on this route only, for browsers' `EventSource`);
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
//!   the bearer token (and the event stream's header-or-query token), the JSON
//!   body (content type, size, unknown fields), the path, the query string
//!   (strict: unknown or repeated parameters are refused) and `Last-Event-ID`.
//! - [`event_stream`]: relaying a gRPC event stream as SSE (one event per
//!   `ChatEvent`, an `error` event if it fails, keep-alive comments), and the
//!   [`event_stream::Shutdown`] that ends open streams when the edge stops.
//! - [`server`]: the accept loop over hyper with every connection bounded
//!   (open connections, header read and idle timeouts, request head size,
//!   HTTP/2 settings), and hyper's own refusals rewritten into the envelope.
//! - [`shed`]: the outermost layer, which answers 503 at once, before any
//!   other work, while every unary slot to chat-service is taken.
//! - [`limits`]: request-level bounds (target and header sizes, the body
//!   read deadline).
//! - [`cors`]: cross-origin access for browser apps
//!   (`EDGE_CORS_ALLOWED_ORIGINS`), off unless configured.
//! - [`request_id`]: the middleware that gives each request an `x-request-id`
//!   and a tracing span.
//! - [`grpc`]: the lazily connecting, self-reconnecting chat-service client,
//!   with a deadline on every unary call (a subscription has none).
//! - [`upstream`]: its unary calls, straight over one HTTP/2 connection
//!   (`h2`), without tonic's per-call buffer task and spawned tasks.
//! - [`web`]: the web chat page at `/` and its assets under `/app/`,
//!   embedded in the binary (plain HTML, CSS and JavaScript from `web/`).
//! - [`dto`]: the documented JSON shapes, one file per resource (message,
//!   history page, ban, stream, live events), and their conversions from the
//!   proto messages.
//! - [`error`]: [`ApiError`], its single mapping to the envelope (and the
//!   `Allmine-Error-Reason` header), and the single mapping from
//!   `tonic::Status` (codes and rich error details).
//! - [`rate_limit`]: chat-service's send quota as the IETF `RateLimit-*`
//!   header fields.
//! - [`openapi`]: the OpenAPI 3.1 document of the routes above, derived
//!   from these types, at `/openapi.json`, and its reference page at
//!   `/docs`.

pub mod config;
pub mod cors;
pub mod dto;
pub mod error;
pub mod event_stream;
pub mod extract;
pub mod fanout;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod shed;
pub mod startup;
pub mod telemetry;
pub mod upstream;
pub mod web;

pub use config::Config;
pub use error::ApiError;
pub use startup::Application;
