//! Raw TCP clients, for what reqwest will not send or cannot observe:
//! malformed or oversized request heads, bodies shorter than their
//! `Content-Length`, connections that stall, idle or stop reading.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// The longest wait for something the edge must do by itself (close, answer):
/// a hang detector, far above every timeout the tests configure.
pub const HANG: Duration = Duration::from_secs(15);

/// A connection to the edge at `address` (`http://host:port`).
pub async fn connect(address: &str) -> TcpStream {
    TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .expect("the edge accepts")
}

/// A connection whose receive buffer is as small as the kernel allows, for
/// a client that stops reading.
pub async fn connect_small_window(address: &str) -> TcpStream {
    let address = address
        .trim_start_matches("http://")
        .parse()
        .expect("a socket address");
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small buffer");
    socket.connect(address).await.expect("the edge accepts")
}

/// Sends `request` (write errors ignored: the edge may close early on
/// purpose) and returns everything the edge answered until it closed.
pub async fn exchange(address: &str, request: Vec<u8>) -> String {
    let stream = connect(address).await;
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let answer = read_until_closed(&mut reader).await;
    drop(writing.await);
    answer.expect("the edge closes the connection after answering")
}

/// Reads until the peer closes; `None` if it is still open after [`HANG`].
pub async fn read_until_closed(reader: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut received = Vec::new();
    let mut chunk = [0_u8; 16 * 1024];
    let read_all = async {
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    };
    tokio::time::timeout(HANG, read_all).await.ok()?;
    Some(String::from_utf8_lossy(&received).into_owned())
}

/// Splits a raw HTTP/1.1 response into its status, its head and its body.
pub fn parse_response(raw: &str) -> (u16, String, String) {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an HTTP response: {raw:?}"));
    let status = head
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head:?}"));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Asserts a raw response is `status` with the documented envelope and a
/// request id.
pub fn expect_raw_envelope(raw: &str, status: u16) -> serde_json::Value {
    let (actual, head, body) = parse_response(raw);
    assert_eq!(actual, status, "{raw}");
    assert!(head.contains("\r\nx-request-id: "), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(json["isSuccess"], false);
    assert_eq!(json["statusCode"], status);
    json
}
