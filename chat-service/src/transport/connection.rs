//! One accepted TCP connection, served by hyper until it ends, the server
//! drains, or the drain time is over.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::transport::server::TcpConnectInfo;
use tower::Service;

/// A connection must have sent a whole first request by then, or it is
/// closed. Without this, a client that connects and sends nothing (or a
/// partial preface) would hold one of the `CHAT_MAX_CONNECTIONS` slots
/// forever: HTTP/2 keep-alive pings only start after the handshake, and
/// the HTTP/1 header timeout only once HTTP/1 is recognised.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long such a connection gets to close politely (an HTTP/2 client
/// that did finish its handshake gets GOAWAY and reconnects when it needs
/// to) before it is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where a connection stands with respect to [`FIRST_REQUEST_TIMEOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstRequest {
    Awaited,
    Seen,
    /// It never came: the connection is closing, and is dropped at the
    /// next deadline.
    Missed,
}

/// What the connection task needs from the server.
pub struct Connection<S> {
    pub builder: Arc<Builder<TokioExecutor>>,
    pub service: S,
    /// Set when the server starts draining: finish what is in flight.
    pub draining: CancellationToken,
    /// Set when the drain time is over: close now.
    pub closing: CancellationToken,
    /// This connection's slot under `CHAT_MAX_CONNECTIONS`, given back when
    /// the task ends.
    pub slot: OwnedSemaphorePermit,
}

impl<S> Connection<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    pub async fn serve(self, stream: TcpStream, peer: SocketAddr) {
        // As `Server::serve` would set it: with Nagle's algorithm on, a
        // small frame written while the previous one is unacknowledged
        // waits for the peer's delayed ACK (up to 40 ms on Linux). Live
        // events, one small frame each, hit exactly that.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let first_request = Arc::new(AtomicBool::new(false));
        let service = PerConnection {
            inner: self.service,
            // What tonic's `Request::remote_addr()` reads.
            info: TcpConnectInfo {
                local_addr: stream.local_addr().ok(),
                remote_addr: Some(peer),
            },
            first_request: Arc::clone(&first_request),
        };
        let mut connection = pin!(
            self.builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        );
        let mut deadline = pin!(tokio::time::sleep(FIRST_REQUEST_TIMEOUT));
        let (mut state, mut draining) = (FirstRequest::Awaited, false);
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    break;
                }
                () = &mut deadline, if state != FirstRequest::Seen => match state {
                    _ if first_request.load(Ordering::Relaxed) => state = FirstRequest::Seen,
                    FirstRequest::Awaited => {
                        tracing::debug!(%peer, "closing a connection that sent no request in time");
                        connection.as_mut().graceful_shutdown();
                        state = FirstRequest::Missed;
                        deadline.as_mut().reset(tokio::time::Instant::now() + CLOSE_TIMEOUT);
                    }
                    FirstRequest::Seen | FirstRequest::Missed => break,
                },
                () = self.draining.cancelled(), if !draining => {
                    draining = true;
                    // HTTP/2: GOAWAY, then in-flight streams finish; HTTP/1:
                    // close after the current response.
                    connection.as_mut().graceful_shutdown();
                }
                () = self.closing.cancelled() => break,
            }
        }
        drop(self.slot);
    }
}

/// The service as one connection sees it: every request carries the
/// connection's addresses and counts as the connection's first request.
#[derive(Clone)]
struct PerConnection<S> {
    inner: S,
    info: TcpConnectInfo,
    first_request: Arc<AtomicBool>,
}

impl<S> Service<Request<Incoming>> for PerConnection<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        self.first_request.store(true, Ordering::Relaxed);
        request.extensions_mut().insert(self.info.clone());
        self.inner.call(request.map(Body::new))
    }
}
