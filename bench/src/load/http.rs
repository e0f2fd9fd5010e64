//! HTTP/1.1 POSTs over one keep-alive connection per slot (wrk's model), with
//! hyper's connection-level client: no pool, no redirects, little overhead.
//! The connection is driven inside the slot's own task (not spawned), so an
//! exchange wakes one task, not two: that keeps the generator's own cost per
//! request close to wrk's, which matters when it shares nothing but one core.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Caller;

/// Each request's deadline.
pub(super) const DEADLINE: Duration = Duration::from_secs(5);

/// What every request of a run sends, and the status it expects.
#[derive(Clone)]
pub struct HttpRequest {
    pub addr: SocketAddr,
    pub path: Uri,
    pub body: Bytes,
    pub expect: StatusCode,
}

impl HttpRequest {
    /// The POST, as one user.
    pub fn build(&self, host: &HeaderValue, authorization: &HeaderValue) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(AUTHORIZATION, authorization.clone());
        request
    }
}

/// What came back: any status, its headers and the whole body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpAnswer {
    /// The body, if the status is `expect`; else an error naming the status
    /// and the start of the body.
    pub fn expect(self, expect: StatusCode) -> Result<Bytes, String> {
        if self.status != expect {
            let text = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned();
            return Err(format!("HTTP {}: {text}", self.status));
        }
        Ok(self.body)
    }
}

type Io = TokioIo<TcpStream>;

/// One open connection: the request half and the connection's state
/// machine, which must be polled while an exchange is under way.
struct Open {
    sender: SendRequest<Full<Bytes>>,
    connection: Connection<Io, Full<Bytes>>,
}

/// One connection, one user.
pub struct HttpSlot {
    request: HttpRequest,
    host: HeaderValue,
    authorization: HeaderValue,
    connection: Option<Open>,
}

impl HttpSlot {
    pub async fn connect(request: HttpRequest, authorization: &str) -> anyhow::Result<Self> {
        let mut slot = Self {
            host: HeaderValue::from_str(&request.addr.to_string())?,
            authorization: HeaderValue::from_str(authorization)?,
            request,
            connection: None,
        };
        slot.connection = Some(slot.dial().await?);
        Ok(slot)
    }

    async fn dial(&self) -> anyhow::Result<Open> {
        let stream =
            tokio::time::timeout(DEADLINE, TcpStream::connect(self.request.addr)).await??;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        Ok(Open { sender, connection })
    }

    async fn send(&mut self) -> Result<HttpAnswer, String> {
        let mut open = match self.connection.take() {
            Some(open) => open,
            None => self
                .dial()
                .await
                .map_err(|error| format!("connect: {error}"))?,
        };
        let request = self.request.build(&self.host, &self.authorization);
        let sender = &mut open.sender;
        let exchange = async {
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
            Ok::<_, String>((parts.status, parts.headers, body))
        };
        let (status, headers, body) = tokio::select! {
            biased;
            exchange = exchange => exchange?,
            closed = &mut open.connection => {
                return Err(match closed {
                    Ok(()) => "the server closed the connection".to_owned(),
                    Err(error) => format!("connection: {error}"),
                });
            }
        };
        // Kept only after a whole exchange: a failed one redials next time.
        self.connection = Some(open);
        Ok(HttpAnswer {
            status,
            headers,
            body,
        })
    }

    /// One request within its deadline, whatever its status.
    async fn answer(&mut self) -> Result<HttpAnswer, String> {
        match tokio::time::timeout(DEADLINE, self.send()).await {
            Ok(result) => result,
            Err(_) => {
                self.connection = None;
                Err(format!("no answer within {DEADLINE:?}"))
            }
        }
    }

    /// One request within its deadline; the reply's body, if the status is
    /// the one expected.
    pub async fn exchange(&mut self) -> Result<Bytes, String> {
        let answer = self.answer().await?;
        answer.expect(self.request.expect)
    }
}

impl Caller for HttpSlot {
    async fn call(&mut self) -> Result<usize, String> {
        self.exchange().await.map(|body| body.len())
    }
}
