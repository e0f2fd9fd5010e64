//! How chat-service serves gRPC: its own accept loop and hyper connections
//! over tonic's `Routes`, instead of `tonic::transport::Server`.
//!
//! Why not tonic's `Server`: it does not expose the HTTP/2 settings that
//! decide whether one client can hurt another, and its defaults let them:
//! - the per-stream send buffer (hyper's 400 KiB): every subscriber that
//!   stops reading kept ~0.45 MB queued here (3,000 of them: 1.9 GB). Here
//!   it is [`STREAM_SEND_BUFFER`]: a subscriber that does not read leaves
//!   its events in the live feed's bounded buffer, falls behind, and gets a
//!   `gap` event (see `live::subscription`);
//! - the reset-stream policy (h2 allows 20 remotely-reset streams waiting
//!   to be accepted): a burst of cancelled calls through http-edge made
//!   chat-service send GOAWAY ENHANCE_YOUR_CALM on the edge's shared
//!   connection, ending every live stream on it;
//! - no cap on connections, and no way to refuse silent ones.
//!
//! What each connection gets is in [`builder`]; the other limits are
//! tower layers over the routes: [`DeadlineLayer`] (the caller's
//! `grpc-timeout`) and [`LoadShedLayer`] (a bound on unary calls in
//! progress), and [`CallMetricsLayer`] outside them (metrics and the
//! call's span). Shutdown keeps tonic's semantics: stop accepting at once,
//! let connections finish their calls (HTTP/2 GOAWAY), and close whatever
//! is left when the drain time is over.

mod connection;
pub mod cors;
mod deadline;
mod load_shed;
mod metrics;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tower::Service;

pub use connection::FIRST_REQUEST_TIMEOUT;
pub use deadline::{Deadline, DeadlineLayer};
pub use load_shed::{
    LoadShed, LoadShedLayer, LoadShedSettings, MAX_REQUEST_BYTES, REQUEST_BODY_TIMEOUT,
};
pub use metrics::{CallMetrics, CallMetricsLayer};

use allmine_observability::throttle::LogThrottle;
use connection::Connection;

/// Bytes queued per HTTP/2 stream for a peer that does not read. 64 KiB is
/// dozens of chat events, enough to keep a reading subscriber's pipe full
/// across a round trip; beyond it, events wait in the live feed's buffer
/// (shared by all subscribers of a stream) instead of per subscriber here.
pub const STREAM_SEND_BUFFER: usize = 64 * 1024;

/// What a client may send on one stream before we read it. Requests are a
/// few hundred bytes, so the RFC's 64 KiB default never holds one up; more
/// would only let a client park more bytes here.
pub const INITIAL_STREAM_WINDOW: u32 = 64 * 1024;

/// What a client may send on one connection before we read it: the bound on
/// unread request bytes per connection. 2 MiB, twice hyper's default, for a
/// measured reason: h2 closes a connection with GOAWAY ENHANCE_YOUR_CALM
/// ("too_many_data_frames") once the small DATA frames it holds unread
/// (charged ~190-220 B each for a short SendMessage) exceed half this
/// window. At 1 MiB that was ~2,400 queued sends, below
/// `CHAT_MAX_CONCURRENT_STREAMS` (2,500): an overloaded gateway's whole
/// connection died (seen in the overload benchmark). At 2 MiB the budget is
/// ~4,700 streams, above the cap.
pub const INITIAL_CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;

/// HTTP/2 keep-alive: a PING this often, and a connection whose peer has
/// not answered within the timeout is closed, so that dead peers (a
/// crashed gateway, a cut network) give back their streams, subscriptions
/// and connection slot within half a minute.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Streams the peer reset before we accepted them, held at once per
/// connection. A cancelled call is legitimate, and http-edge multiplexes
/// thousands of clients over a few connections: when many of them go away
/// together, their resets arrive in the same read as the calls themselves,
/// and hyper accepts only after reading everything the socket holds (a
/// burst of 2,000 cancelled calls arrives as ~2,000 such streams at once).
/// h2's default (20) answered that with GOAWAY ENHANCE_YOUR_CALM, ending
/// every call on the edge's connection. These streams cost memory, not
/// work (handlers never run for them): h2's record of the stream and its
/// header map, about a kilobyte (a header value repeated through the HPACK
/// table is shared, not copied), freed when the accept loop reaches them in
/// the same pass. So ~10 MB per connection at worst; a peer that resets
/// more than this in one burst is attacking, and loses only its own
/// connection.
pub const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 10_000;

/// Streams h2 itself must reset because the peer broke the protocol on
/// them (malformed frames, data on closed streams, streams over the
/// concurrency limit), over the connection's life; past it, the connection
/// is closed (GOAWAY ENHANCE_YOUR_CALM). This is the guard against
/// "MadeYouReset" style attacks, kept at h2's default: a cancelled call
/// never counts here (that is a reset by the peer), nor does a request
/// over [`MAX_HEADER_LIST_SIZE`] (answered 431), and a well-behaved client
/// such as http-edge never triggers one.
pub const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// The largest header block accepted per request: twice the largest
/// `authorization` value http-edge forwards (8 KiB), with room for the
/// other metadata. A request over it is answered 431 on its own; h2 closes
/// the connection of a peer that sends more than four times this (its
/// abuse limit), which is why the edge refuses large tokens itself.
pub const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// HTTP/1.1 (gRPC-Web): the time a client has to send a request's headers,
/// including the wait for the next request on a kept-alive connection.
pub const HTTP1_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/1.1 read buffer, which bounds a request's head (hyper's default is
/// ~400 KiB).
pub const HTTP1_MAX_BUFFER: usize = 32 * 1024;

/// After a failed `accept` that is not about one connection (out of file
/// descriptors, say), wait this long before trying again: retrying at once
/// would spin on a listener that stays readable.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// How often refused connections and accept failures are logged.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct TransportSettings {
    /// Connections open at once on one listening address; a new connection
    /// over it is closed as soon as it is accepted.
    pub max_connections: u32,
    /// HTTP/2 streams open at once per connection
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`); clients queue beyond it.
    pub max_concurrent_streams: u32,
    /// Whether HTTP/1.1 is served too (gRPC-Web); else HTTP/2 only.
    pub http1: bool,
}

/// How serving ended (ordered: the worse outcome is the greater).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Drained {
    /// Every connection finished within the drain time.
    Cleanly,
    /// The drain time ran out; the remaining connections were closed.
    GraceExceeded,
}

/// The HTTP/1.1 and HTTP/2 settings of every connection (see the constants
/// above for each value's reason).
fn builder(settings: &TransportSettings) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    if !settings.http1 {
        builder = builder.http2_only();
    }
    builder
        .http1()
        // hyper enforces the header timeout only with a timer.
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP1_HEADER_READ_TIMEOUT)
        .max_buf_size(HTTP1_MAX_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.max_concurrent_streams)
        .max_send_buf_size(STREAM_SEND_BUFFER)
        .initial_stream_window_size(INITIAL_STREAM_WINDOW)
        .initial_connection_window_size(INITIAL_CONNECTION_WINDOW)
        .adaptive_window(false)
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_SIZE);
    builder
}

/// Serves `service` on `listener` until `stopping` is cancelled, then
/// drains: the listener closes at once, connections finish their calls,
/// and whatever is still open after `grace` is closed.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    settings: TransportSettings,
    stopping: CancellationToken,
    grace: Duration,
) -> Drained
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = Arc::new(builder(&settings));
    // One permit per open connection: the cap, and (all permits back) the
    // sign that every connection has closed.
    let slots = Arc::new(Semaphore::new(settings.max_connections as usize));
    let closing = CancellationToken::new();
    let log = LogThrottle::new(LOG_INTERVAL);
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = stopping.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_about_one_connection(&error) => continue,
            Err(error) => {
                if log.ready() {
                    tracing::warn!(%error, "cannot accept connections; retrying");
                }
                tokio::select! {
                    () = stopping.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_RETRY_DELAY) => continue,
                }
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Closed at once: the client sees its connection end and may
            // retry elsewhere; nothing is read from it.
            drop(stream);
            refused += 1;
            if log.ready() {
                tracing::warn!(
                    max_connections = settings.max_connections,
                    refused_total = refused,
                    "connection limit reached: closing new connections"
                );
            }
            continue;
        };
        let connection = Connection {
            builder: Arc::clone(&builder),
            service: service.clone(),
            draining: stopping.clone(),
            closing: closing.clone(),
            slot,
        };
        tokio::spawn(connection.serve(stream, peer));
    }
    // Stop accepting now: new clients are refused by the kernel instead of
    // waiting on a backlog nobody reads.
    drop(listener);
    let all_closed = slots.acquire_many(settings.max_connections);
    match tokio::time::timeout(grace, all_closed).await {
        Ok(_) => Drained::Cleanly,
        Err(_) => {
            closing.cancel();
            // Each connection task returns as soon as it sees `closing`.
            let _ = slots.acquire_many(settings.max_connections).await;
            Drained::GraceExceeded
        }
    }
}

/// Errors of `accept` that concern only the connection being accepted.
fn is_about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}
