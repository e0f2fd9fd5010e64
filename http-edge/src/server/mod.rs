//! The HTTP server: our own accept loop over hyper-util's connection
//! builder, so that every connection has a bound.
//!
//! `axum::serve` takes no connection settings; a public edge needs them:
//! - **a cap on open connections** ([`Limits::max_connections`], lowered to
//!   fit the process's open-file limit): past it a new connection is answered
//!   `503` with `Retry-After` and closed, instead of the process running out
//!   of file descriptors and failing everyone;
//! - **a header read timeout** (HTTP/1.1): slow-header clients are closed;
//! - **an idle timeout** on every connection ([`io::GuardedIo`]): idle
//!   keep-alive connections and clients that stopped reading are closed;
//! - **a bounded request head** ([`MAX_REQUEST_HEAD_BYTES`]), and hyper's
//!   automatic refusals of heads it cannot parse rewritten into the envelope
//!   ([`automatic_response`]);
//! - **HTTP/2 settings chosen on purpose**: streams per connection, a bounded
//!   send buffer per stream, the header list size, and a reset-stream budget.
//!
//! Shutdown stops accepting at once, lets open connections finish their
//! requests (event streams end through their own shutdown token), and gives
//! up on connections still open after a drain bound, so that a client that
//! never reads cannot hold the process.

mod automatic_response;
mod io;

use std::{future::Future, pin::pin, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{io::AsyncWriteExt as _, net::TcpListener, sync::Semaphore};

use crate::{config::Limits, error::ApiError};

pub use io::GuardedIo;

/// The largest request line plus headers hyper reads (HTTP/1.1). The router
/// refuses smaller heads that break the documented per-header and total
/// limits with the envelope itself; this is the hard stop that bounds the
/// memory one connection can make the edge hold.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// Requests one HTTP/2 connection may have open at once (browsers open
/// fewer; more would let one connection take a large share of the edge).
const MAX_STREAMS_PER_CONNECTION: u32 = 128;

/// Bytes hyper queues per HTTP/2 stream for a peer that does not read (its
/// default is 400 KiB). Event streams queue their events themselves.
const MAX_SEND_BUFFER_PER_STREAM: usize = 64 * 1024;

/// Streams a client may open and reset before the server accepted them, and
/// that the server may reset for errors, before the connection is closed:
/// hyper's defaults, stated here because they are part of what one
/// connection may cost.
const MAX_PENDING_RESET_STREAMS: usize = 20;
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// File descriptors kept free of client connections: the listener, the
/// connections to chat-service, logs.
const RESERVED_FILE_DESCRIPTORS: u64 = 64;

/// Connections over the cap being answered 503 at once; more are closed
/// without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 256;

/// How long shutdown waits for open connections beyond the gRPC deadline.
const DRAIN_MARGIN: Duration = Duration::from_secs(5);

/// The bounds of the server, from [`Limits`].
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Longest a well-behaved request can take (the gRPC deadline), which
    /// bounds the drain at shutdown.
    pub request_deadline: Duration,
}

impl ServerSettings {
    pub fn new(limits: &Limits, request_deadline: Duration) -> Self {
        Self {
            header_read_timeout: limits.header_read_timeout(),
            idle_timeout: limits.idle_timeout(),
            max_connections: connection_cap(limits.max_connections),
            request_deadline,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let builder = connection_builder(&settings);
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, _peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors or a connection reset before
                // accept: the listener itself is fine. Back off briefly so
                // that a persistent error does not spin the loop.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            crate::metrics::shed(crate::metrics::Shed::Connections);
            // Answered while few are being answered; past that, closed at
            // once, so that refusing cannot cost more than serving.
            if let Ok(refusing) = Arc::clone(&refusals).try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refusing);
                });
            }
            continue;
        };
        // TCP_NODELAY: with Nagle's algorithm an SSE event written while the
        // previous one is unacknowledged waits for the client's delayed ACK
        // (up to 40 ms).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let io = TokioIo::new(GuardedIo::new(stream, settings.idle_timeout));
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(io, service).into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let open = settings.max_connections - permits.available_permits();
    tracing::info!(open, "stopped accepting; draining open connections");
    let drain_bound = settings.request_deadline + DRAIN_MARGIN;
    if tokio::time::timeout(drain_bound, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_secs = drain_bound.as_secs(),
            "connections still open after the drain time; closing them"
        );
    }
}

fn connection_builder(settings: &ServerSettings) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .max_send_buf_size(MAX_SEND_BUFFER_PER_STREAM)
        .max_header_list_size(u32::try_from(MAX_REQUEST_HEAD_BYTES).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(MAX_PENDING_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS);
    builder
}

/// Answers a connection over the cap with the 503 envelope and closes it.
/// Bounded: a client that does not read gets nothing after a second.
///
/// What the client already sent is read first (briefly): closing a socket
/// with unread data makes the kernel send a reset, which can destroy the
/// answer before the client reads it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt as _;
    let mut request = [0_u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut request)).await;
    let error = ApiError::Overloaded {
        reasons: vec!["The edge has too many open connections; retry later".to_owned()],
        retry_after: Duration::from_secs(1),
    };
    let response = automatic_response::closing_response(&error);
    let write = async {
        stream.write_all(&response).await?;
        stream.shutdown().await?;
        // Until the client closes (or the second is up), so that what it
        // still sends does not reset the connection under the answer.
        while stream.read(&mut request).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    if tokio::time::timeout(Duration::from_secs(1), write)
        .await
        .is_err()
    {
        tracing::debug!("a refused connection did not take its 503 in time");
    }
    tracing::debug!("refused a connection over the cap");
}

/// `configured`, lowered so that the connections fit the process's limit on
/// open files (with room for everything else): running out of descriptors
/// fails every client, a cap fails only the newest.
fn connection_cap(configured: u64) -> usize {
    let cap = match open_file_limit() {
        Some(limit) if limit.saturating_sub(RESERVED_FILE_DESCRIPTORS) < configured => {
            let lowered = limit.saturating_sub(RESERVED_FILE_DESCRIPTORS).max(1);
            tracing::warn!(
                configured,
                lowered,
                open_file_limit = limit,
                "EDGE_MAX_CONNECTIONS lowered to fit the open-file limit (raise `ulimit -n` to allow more)"
            );
            lowered
        }
        _ => configured,
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The soft limit on open files of this process, from `/proc/self/limits`
/// (Linux); `None` elsewhere or when unlimited. (The bench sizes its
/// viewers with it too.)
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_open_file_limit(unlimited), None);
    }
}
