//! [`Unary`]: the edge's unary gRPC calls to chat-service, straight over one
//! HTTP/2 connection (the `h2` crate), without tonic's `Channel`.
//!
//! Why not tonic's `Channel`: it hands every call to a buffer task over a
//! channel, that task to hyper's connection task over another, and hyper
//! spawns a task per call to wait for its response; tonic then wraps the
//! body in a streaming encoder and decoder. For a small request and a small
//! answer, those hops, tasks and allocations cost the edge more CPU than the
//! HTTP/2 framing itself (BENCHMARKS.md, "Lean send path: the edge"). Here a
//! call encodes its message once, opens a stream on the shared connection,
//! sends headers and body in one go, and awaits its answer in its own task.
//!
//! What tonic's `Channel` did and this keeps:
//! - **lazy, self-healing connection**: dialed on first use (bounded by the
//!   call's timeout), redialed by the next call after it broke; while
//!   chat-service is away calls fail at once with UNAVAILABLE (503);
//! - **keep-alive**: a PING every 30 s; no answer within 20 s closes the
//!   connection, failing its calls (503), so that a vanished host is noticed;
//! - **deadlines**: the `grpc-timeout` the caller set, and the same timeout
//!   enforced here, reported as tonic reports its own (`CANCELLED "Timeout
//!   expired"`, 504 at the edge);
//! - TCP_NODELAY, the HTTP/2 windows of [`crate::grpc`], no server push;
//! - the gRPC status from the trailers, or from the headers of a
//!   trailers-only answer, parsed by tonic ([`Status::from_header_map`]),
//!   rich details included; response metadata as tonic's `Response` carries
//!   it. A broken connection or stream is a status with its error as source
//!   (what `ApiError::from_status` maps to 503), as tonic's are.
//!
//! Event streams (`SubscribeMessages`) stay on tonic: long-lived, one per
//! subscription, their per-call cost does not matter.

use std::{
    error::Error as StdError,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderValue, Method, Request, Uri, header};
use tokio::net::TcpStream;
use tonic::{Code, Status, metadata::MetadataMap};

/// The largest answer accepted (tonic's default decoding limit).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// HTTP/2 settings of the connection (see `crate::grpc` for why).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub timeout: Duration,
    pub stream_window: u32,
    pub connection_window: u32,
    pub keep_alive_interval: Duration,
    pub keep_alive_timeout: Duration,
}

/// A lazily connected unary client of one chat-service address.
#[derive(Debug)]
pub struct Unary {
    uri: Uri,
    settings: Settings,
    /// The live connection, if any. A std mutex: held only to clone or
    /// replace the handle, never across an await.
    connection: Mutex<Option<Connection>>,
    /// One dial at a time; callers that arrive meanwhile wait for it.
    dialing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Connection {
    send: SendRequest<Bytes>,
    /// Which dial it came from, so that a connection task ending clears only
    /// its own connection.
    generation: u64,
}

impl Unary {
    /// Prepares the client; nothing is dialed until the first call.
    pub fn new(uri: Uri, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            uri,
            settings,
            connection: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(()),
        })
    }

    /// Calls `path` (`/package.Service/Method`) with `request` (its metadata
    /// as headers, its timeout as `grpc-timeout`), within the timeout.
    pub async fn call<Q, R>(
        self: &Arc<Self>,
        path: &'static str,
        request: tonic::Request<Q>,
    ) -> Result<tonic::Response<R>, Status>
    where
        Q: prost::Message,
        R: prost::Message + Default,
    {
        match tokio::time::timeout(self.settings.timeout, self.call_once(path, request)).await {
            Ok(result) => result,
            // As tonic's own timeout says it (see `ApiError::from_status`).
            Err(_elapsed) => Err(Status::cancelled(tonic::TimeoutExpired(()).to_string())),
        }
    }

    async fn call_once<Q, R>(
        self: &Arc<Self>,
        path: &'static str,
        request: tonic::Request<Q>,
    ) -> Result<tonic::Response<R>, Status>
    where
        Q: prost::Message,
        R: prost::Message + Default,
    {
        let (metadata, _extensions, message) = request.into_parts();
        let body = encode(&message);
        let request = self.http_request(path, metadata)?;
        let connection = self.connection().await?;
        // Fails once the connection is closed: forget it so that the next
        // call dials (its task would too, when it ends).
        let mut send = connection.send.ready().await.map_err(|error| {
            self.forget(connection.generation);
            broken(error)
        })?;
        let (response, mut stream) = send.send_request(request, false).map_err(broken)?;
        stream.send_data(body, true).map_err(broken)?;
        let response = response.await.map_err(broken)?;
        let (parts, mut body) = response.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(http_status(parts.status));
        }
        if let Some(status) = Status::from_header_map(&parts.headers) {
            // A trailers-only answer: a refusal (or an OK without a message).
            return Err(match status.code() {
                Code::Ok => Status::internal("chat-service answered without a message"),
                _ => status,
            });
        }
        let mut received: Option<Bytes> = None;
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(broken)?;
            // Flow control: the window opens again once the bytes are read.
            let _ = body.flow_control().release_capacity(chunk.len());
            match received.take() {
                None if buffer.is_empty() => received = Some(chunk),
                first => {
                    if let Some(first) = first {
                        buffer.extend_from_slice(&first);
                    }
                    buffer.extend_from_slice(&chunk);
                }
            }
            if buffer.len() + received.as_ref().map_or(0, Bytes::len) > MAX_RESPONSE_BYTES {
                return Err(Status::internal("chat-service's answer is too large"));
            }
        }
        let trailers = body.trailers().await.map_err(broken)?;
        let status = trailers
            .as_ref()
            .and_then(Status::from_header_map)
            .unwrap_or_else(|| Status::internal("chat-service's answer has no grpc-status"));
        if status.code() != Code::Ok {
            return Err(status);
        }
        let frame = received.unwrap_or_else(|| buffer.freeze());
        let message = decode(frame)?;
        Ok(tonic::Response::from_parts(
            MetadataMap::from_headers(parts.headers),
            message,
            http::Extensions::new(),
        ))
    }

    /// The request head: the caller's metadata and gRPC's own headers.
    fn http_request(
        &self,
        path: &'static str,
        metadata: MetadataMap,
    ) -> Result<Request<()>, Status> {
        let mut uri = self.uri.clone().into_parts();
        uri.path_and_query = Some(http::uri::PathAndQuery::from_static(path));
        let uri = Uri::from_parts(uri)
            .map_err(|error| Status::internal(format!("bad chat-service URL: {error}")))?;
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.version_mut() = http::Version::HTTP_2;
        let mut headers = metadata.into_headers();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// The live connection, dialing one if there is none.
    async fn connection(self: &Arc<Self>) -> Result<Connection, Status> {
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let _dialing = self.dialing.lock().await;
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let connection = self.dial().await?;
        *lock(&self.connection) = Some(connection.clone());
        Ok(connection)
    }

    fn current(&self) -> Option<Connection> {
        lock(&self.connection).clone()
    }

    /// Drops connection `generation` (broken), so that the next call dials.
    fn forget(&self, generation: u64) {
        let mut connection = lock(&self.connection);
        if connection
            .as_ref()
            .is_some_and(|current| current.generation == generation)
        {
            *connection = None;
        }
    }

    async fn dial(self: &Arc<Self>) -> Result<Connection, Status> {
        // `[::1]` in a URL is `::1` to the resolver.
        let host = self
            .uri
            .host()
            .unwrap_or("localhost")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = self.uri.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((host, port)).await.map_err(broken)?;
        // Every call is a small write that waits for its answer: Nagle's
        // algorithm would hold it for the previous one's ACK.
        stream.set_nodelay(true).map_err(broken)?;
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(self.settings.stream_window)
            .initial_connection_window_size(self.settings.connection_window)
            .enable_push(false)
            .handshake::<_, Bytes>(stream)
            .await
            .map_err(broken)?;
        let generation = next_generation();
        let ping_pong = connection.ping_pong();
        let client = Arc::downgrade(self);
        let settings = self.settings;
        tokio::spawn(async move {
            let keep_alive = keep_alive(ping_pong, settings);
            let mut connection = YieldFirst::new(connection);
            tokio::select! {
                result = &mut connection => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection to chat-service ended");
                    }
                }
                () = keep_alive => {
                    tracing::warn!("chat-service did not answer a keep-alive ping: closing the connection");
                }
            }
            if let Some(client) = client.upgrade() {
                client.forget(generation);
            }
        });
        Ok(Connection { send, generation })
    }
}

/// The connection's future, made to let every other ready task run before
/// each of its polls.
///
/// A call wakes the connection task when it queues its frames, and Tokio
/// runs a task just woken next: the connection then wrote each call alone,
/// one `writev` per call (and chat-service read them one by one). Yielding
/// once first puts it behind the tasks already ready, whose calls queue
/// their frames meanwhile; one write then carries them all. When nothing
/// else is ready the yield costs one trip through the run queue.
struct YieldFirst<F> {
    inner: F,
    yielded: bool,
}

impl<F> YieldFirst<F> {
    fn new(inner: F) -> Self {
        Self {
            inner,
            yielded: false,
        }
    }
}

impl<F: Future + Unpin> Future for YieldFirst<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.yielded {
            self.yielded = true;
            // Woken while running: Tokio queues the task at the back.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Resolves when a ping goes unanswered for the keep-alive timeout.
async fn keep_alive(ping_pong: Option<h2::PingPong>, settings: Settings) {
    let Some(mut ping_pong) = ping_pong else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(settings.keep_alive_interval).await;
        let pong = tokio::time::timeout(
            settings.keep_alive_timeout,
            ping_pong.ping(h2::Ping::opaque()),
        )
        .await;
        if !matches!(pong, Ok(Ok(_))) {
            return;
        }
    }
}

fn next_generation() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The gRPC frame of `message`: uncompressed flag, length, bytes.
fn encode(message: &impl prost::Message) -> Bytes {
    let length = message.encoded_len();
    let mut frame = BytesMut::with_capacity(5 + length);
    frame.put_u8(0);
    frame.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
    // Cannot fail: the buffer has room for the whole message.
    let _ = message.encode(&mut frame);
    frame.freeze()
}

/// The message in one gRPC frame.
fn decode<R: prost::Message + Default>(mut frame: Bytes) -> Result<R, Status> {
    if frame.len() < 5 {
        return Err(Status::internal("chat-service answered without a message"));
    }
    let compressed = frame.get_u8();
    let length = frame.get_u32() as usize;
    if compressed != 0 {
        return Err(Status::internal(
            "chat-service answered a compressed message",
        ));
    }
    if length != frame.len() {
        return Err(Status::internal("chat-service's answer is not one message"));
    }
    R::decode(frame).map_err(|error| Status::internal(format!("cannot decode the answer: {error}")))
}

/// A failed connection or stream, as a status whose source is the error:
/// what tonic makes of transport failures, and what `ApiError::from_status`
/// maps to 503.
fn broken(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Status {
    Status::from_error(error.into())
}

/// A non-200 HTTP answer (a proxy in between, or not a gRPC server), as
/// tonic maps it (gRPC's HTTP-to-gRPC status mapping).
fn http_status(status: http::StatusCode) -> Status {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(code, format!("chat-service answered HTTP {status}"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_its_frame() {
        let message = prost_types::Duration {
            seconds: 42,
            nanos: 7,
        };
        let frame = encode(&message);
        assert_eq!(frame[0], 0);
        assert_eq!(
            u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize,
            frame.len() - 5
        );
        assert_eq!(
            decode::<prost_types::Duration>(frame).expect("decodes"),
            message
        );
    }

    #[test]
    fn a_truncated_or_compressed_frame_is_refused() {
        let frame = encode(&prost_types::Duration {
            seconds: 42,
            nanos: 7,
        });
        assert!(decode::<prost_types::Duration>(frame.slice(..frame.len() - 1)).is_err());
        let mut compressed = BytesMut::from(&frame[..]);
        compressed[0] = 1;
        assert!(decode::<prost_types::Duration>(compressed.freeze()).is_err());
        assert!(decode::<prost_types::Duration>(Bytes::from_static(&[0, 0])).is_err());
    }

    #[test]
    fn a_transport_failure_carries_its_source() {
        let status = broken(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(StdError::source(&status).is_some());
    }
}
