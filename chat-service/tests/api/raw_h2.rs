//! A bare HTTP/2 gRPC client on the `h2` crate, for what tonic's client does
//! not let a test do: open and reset streams in bulk on one connection (as a
//! gateway whose own clients go away does), or choose its flow-control
//! windows and read a stream message by message.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use h2::client::SendRequest;
use tokio::net::TcpStream;
use tonic::Code;

/// One HTTP/2 connection to chat-service.
pub struct RawConnection {
    sender: SendRequest<Bytes>,
}

/// Connects with h2's default windows.
pub async fn connect(addr: SocketAddr) -> RawConnection {
    connect_with(addr, h2::client::Builder::new()).await
}

/// Connects with `builder`'s settings (windows, for instance).
pub async fn connect_with(addr: SocketAddr, builder: h2::client::Builder) -> RawConnection {
    let tcp = TcpStream::connect(addr).await.expect("connects");
    tcp.set_nodelay(true).expect("nodelay");
    let (sender, connection) = builder.handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        // Ends with the connection; a GOAWAY shows up in the calls.
        let _ = connection.await;
    });
    RawConnection { sender }
}

/// A gRPC request head for `path` (`/package.Service/Method`).
fn request_head(path: &str, token: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://chat-service{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap()
}

/// `message` as one gRPC length-prefixed frame.
pub fn grpc_frame(message: &impl prost::Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&body);
    frame.into()
}

/// A call's gRPC status, from the response headers (trailers-only) or trailers.
fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)
}

impl RawConnection {
    /// Opens `count` calls to `path` and resets each right after its
    /// headers (RST_STREAM CANCEL), without waiting for the server: what
    /// a gateway sends when its clients disconnect in a burst.
    pub async fn open_and_reset(
        &mut self,
        path: &str,
        token: &str,
        count: usize,
    ) -> Result<(), h2::Error> {
        for _ in 0..count {
            let mut sender = self.sender.clone().ready().await?;
            let (_response, mut body) = sender.send_request(request_head(path, token), false)?;
            body.send_reset(h2::Reason::CANCEL);
        }
        Ok(())
    }

    /// Opens a call and sends its headers but never its message (a client
    /// that sends its request slowly). The call stays open while the
    /// returned value lives.
    pub async fn open_without_body(
        &mut self,
        path: &str,
        token: &str,
    ) -> Result<PendingCall, h2::Error> {
        let mut sender = self.sender.clone().ready().await?;
        let (response, body) = sender.send_request(request_head(path, token), false)?;
        Ok(PendingCall {
            _response: response,
            _body: body,
        })
    }

    /// Opens a server-streaming call; `Err` is the connection failing.
    pub async fn server_stream(
        &mut self,
        path: &str,
        token: &str,
        message: &impl prost::Message,
    ) -> Result<RawStream, h2::Error> {
        let mut sender = self.sender.clone().ready().await?;
        let (response, mut body) = sender.send_request(request_head(path, token), false)?;
        body.send_data(grpc_frame(message), true)?;
        let response = response.await?;
        if let Some(code) = status_of(response.headers()) {
            panic!("the call was refused at once: {code:?}");
        }
        Ok(RawStream {
            body: response.into_body(),
            buffer: BytesMut::new(),
        })
    }

    /// A unary call: the reply, or the call's status code. `Err` is the
    /// connection failing (a GOAWAY, a reset).
    pub async fn unary<R: prost::Message + Default>(
        &mut self,
        path: &str,
        token: &str,
        message: &impl prost::Message,
    ) -> Result<Result<R, Code>, h2::Error> {
        let mut sender = self.sender.clone().ready().await?;
        let (response, mut body) = sender.send_request(request_head(path, token), false)?;
        // The server may refuse the call before its message is sent (a 431
        // for oversized headers): then sending fails, and its answer, or the
        // connection's failure, comes from the response.
        let _ = body.send_data(grpc_frame(message), true);
        let response = response.await?;
        if response.status() != http::StatusCode::OK {
            // Not a gRPC answer (431 for oversized headers, say): UNKNOWN,
            // as the gRPC spec maps HTTP statuses it has no code for.
            return Ok(Err(Code::Unknown));
        }
        if let Some(code) = status_of(response.headers()) {
            return Ok(Err(code));
        }
        let mut stream = RawStream {
            body: response.into_body(),
            buffer: BytesMut::new(),
        };
        let reply = stream.next_message::<R>().await?;
        let trailers = stream.body.trailers().await?.unwrap_or_default();
        match (status_of(&trailers), reply) {
            (Some(Code::Ok), Some(reply)) => Ok(Ok(reply)),
            (Some(code), _) => Ok(Err(code)),
            (None, _) => panic!("a call without grpc-status"),
        }
    }
}

/// A call whose request is not finished; dropping it resets the call.
pub struct PendingCall {
    _response: h2::client::ResponseFuture,
    _body: h2::SendStream<Bytes>,
}

/// The response body of a call, read message by message.
pub struct RawStream {
    body: h2::RecvStream,
    buffer: BytesMut,
}

impl RawStream {
    /// The next message, `None` at the end of the body.
    pub async fn next_message<M: prost::Message + Default>(
        &mut self,
    ) -> Result<Option<M>, h2::Error> {
        Ok(self
            .next_frame()
            .await?
            .map(|message| M::decode(message).expect("a valid message")))
    }

    /// The next message's bytes as sent (without the 5-byte frame header),
    /// `None` at the end of the body. Uncompressed frames only.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, h2::Error> {
        loop {
            if self.buffer.len() >= 5 {
                assert_eq!(self.buffer[0], 0, "an uncompressed frame");
                let length = u32::from_be_bytes(self.buffer[1..5].try_into().unwrap()) as usize;
                if self.buffer.len() >= 5 + length {
                    self.buffer.advance(5);
                    return Ok(Some(self.buffer.split_to(length).freeze()));
                }
            }
            match self.body.data().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    // Reading is what opens the window again.
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.buffer.extend_from_slice(&chunk);
                }
                None => return Ok(None),
            }
        }
    }
}
