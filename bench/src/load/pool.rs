//! HTTP/1.1 for open-loop runs: a pool of keep-alive connections that grows
//! on demand, so that every request in flight has a connection of its own
//! (HTTP/1.1 carries one exchange at a time) and the pool is never what
//! holds a request back. Requests take turns among the prepared users.
//!
//! Unlike the closed loop's slots ([`super::http`]), each connection is
//! driven by a task of its own: an idle connection in the pool must notice
//! that the server closed it (`SendRequest::is_closed`), or the next request
//! on it would fail for a reason that is not the server's answer to it.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use super::http::{DEADLINE, HttpAnswer, HttpRequest};

/// One connection: its request half and the task that drives it.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: AbortHandle,
}

impl Drop for Connection {
    /// A connection left mid-exchange (its request timed out) is closed,
    /// not left to the server's idle timeout.
    fn drop(&mut self) {
        self.driver.abort();
    }
}

pub struct HttpPool {
    request: HttpRequest,
    host: HeaderValue,
    authorizations: Vec<HeaderValue>,
    idle: Mutex<Vec<Connection>>,
    dialed: AtomicU64,
}

impl HttpPool {
    /// Prepares one token per user and opens `warm` connections.
    pub async fn connect(request: HttpRequest, users: usize, warm: usize) -> anyhow::Result<Self> {
        let pool = Self {
            host: HeaderValue::from_str(&request.addr.to_string())?,
            authorizations: crate::payload::viewer_authorizations(users.max(1))
                .iter()
                .map(|value| HeaderValue::from_str(value))
                .collect::<Result<_, _>>()?,
            request,
            idle: Mutex::new(Vec::with_capacity(warm)),
            dialed: AtomicU64::new(0),
        };
        for _ in 0..warm {
            let connection = pool.dial().await?;
            pool.put_back(connection);
        }
        Ok(pool)
    }

    /// Connections opened so far.
    pub fn dialed(&self) -> u64 {
        self.dialed.load(Ordering::Relaxed)
    }

    /// One request as user `user` (modulo the users prepared), on an idle
    /// connection or a new one, within its deadline (dialing included).
    pub async fn call(&self, user: usize) -> Result<HttpAnswer, String> {
        match tokio::time::timeout(DEADLINE, self.exchange(user)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {DEADLINE:?}")),
        }
    }

    async fn exchange(&self, user: usize) -> Result<HttpAnswer, String> {
        let mut connection = match self.take_idle() {
            Some(connection) => connection,
            None => self
                .dial()
                .await
                .map_err(|error| format!("connect: {error}"))?,
        };
        let authorization = &self.authorizations[user % self.authorizations.len()];
        let request = self.request.build(&self.host, authorization);
        let sender = &mut connection.sender;
        sender
            .ready()
            .await
            .map_err(|error| format!("connection: {error}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("request: {error}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|error| format!("body: {error}"))?
            .to_bytes();
        // Only a connection that carried a whole exchange goes back.
        self.put_back(connection);
        Ok(HttpAnswer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(connection) = idle.pop() {
            if !connection.sender.is_closed() {
                return Some(connection);
            }
        }
        None
    }

    fn put_back(&self, connection: Connection) {
        if !connection.sender.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
        }
    }

    async fn dial(&self) -> anyhow::Result<Connection> {
        let stream =
            tokio::time::timeout(DEADLINE, TcpStream::connect(self.request.addr)).await??;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            // Its end (the server closed, or the exchange failed) shows
            // through the sender; nothing else to report.
            let _closed = connection.await;
        })
        .abort_handle();
        self.dialed.fetch_add(1, Ordering::Relaxed);
        Ok(Connection { sender, driver })
    }
}
