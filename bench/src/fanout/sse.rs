//! SSE subscribers: `GET …/chat/events`, one HTTP/1.1 connection each, as
//! browsers' `EventSource`s hold them, parsed as far as the benchmark needs:
//! a `message` event's id is the first field of its JSON data; a `gap`
//! is counted and ends the viewer (the edge ends its stream after it).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{ACCEPT, AUTHORIZATION, HOST};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::{MessageKey, Receipts, Tally, message_key, wait_ready};
use crate::payload;

/// Event streams being opened at once. Each open is an
/// `AuthorizeSubscription` call from the edge to chat-service, which sheds
/// calls past its in-flight limit (256) and queue (128): 20,000 viewers
/// opening at once would be refused, not measured. Browsers arrive spread
/// out too.
const OPENING_AT_ONCE: usize = 128;

/// Opens one event stream per entry of `receipts`, the i-th at
/// `addrs[i % addrs.len()]`; returns the readers' tasks and the number of
/// connections.
///
/// The first viewer of each edge opens alone, the others once those are
/// open: an edge with the fan-out tree opens its shared feed at its first
/// client's acceptance, and a client accepted a moment earlier that joins
/// after that is outside the feed's ring and gets a private upstream
/// subscription for its whole life (seen here: 5 of 9,872 viewers opening
/// together). That race is the edge's (noted in BENCHMARKS.md); staggering
/// keeps the "one upstream subscription per edge" check exact.
pub(super) async fn subscribe(
    addrs: &[SocketAddr],
    stream_id: &str,
    receipts: &[Receipts],
    tally: &Tally,
) -> anyhow::Result<(Vec<JoinHandle<()>>, usize)> {
    anyhow::ensure!(
        !addrs.is_empty() || receipts.is_empty(),
        "SSE viewers need an edge to connect to"
    );
    let path = format!("/api/v1/live-stream/{stream_id}/chat/events");
    let (ready, answers) = mpsc::channel(receipts.len().max(1));
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    // A permit per first viewer open; the others wait for all of them.
    let firsts = addrs.len().min(receipts.len());
    let firsts_open = Arc::new(Semaphore::new(0));
    let tasks: Vec<_> = receipts
        .iter()
        .zip(payload::viewer_authorizations(receipts.len()))
        .enumerate()
        .map(|(index, (receipts, authorization))| {
            let opening = Arc::clone(&opening);
            let firsts_open = Arc::clone(&firsts_open);
            let viewer = Viewer {
                addr: addrs[index % addrs.len()],
                path: path.clone(),
                authorization,
                receipts: receipts.clone(),
                tally: tally.clone(),
            };
            let ready = ready.clone();
            tokio::spawn(async move {
                let first = index < firsts;
                if !first {
                    // Given back at once: it only waits for the firsts.
                    let _ = firsts_open
                        .acquire_many(u32::try_from(firsts).unwrap_or(u32::MAX))
                        .await;
                }
                // Closed only by dropping, never: acquiring cannot fail.
                let permit = opening.acquire_owned().await.ok();
                follow(viewer, ready, permit, first.then_some(firsts_open)).await;
            })
        })
        .collect();
    drop(ready);
    wait_ready(answers, &tasks).await?;
    let connections = tasks.len();
    Ok((tasks, connections))
}

/// One viewer: where it connects, as whom, where its copies go.
struct Viewer {
    addr: SocketAddr,
    path: String,
    authorization: String,
    receipts: Receipts,
    tally: Tally,
}

/// Opens the event stream, says so on `ready` (and frees its place among
/// those opening; a first viewer also on `first_open`), then records every
/// message.
async fn follow(
    viewer: Viewer,
    ready: mpsc::Sender<Result<(), String>>,
    mut opening: Option<OwnedSemaphorePermit>,
    first_open: Option<Arc<Semaphore>>,
) {
    let Viewer {
        addr,
        path,
        authorization,
        receipts,
        tally,
    } = viewer;
    let mut ready = Some(ready);
    let outcome: Result<(), String> = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| format!("nodelay: {error}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("handshake: {error}"))?;
        let mut connection = std::pin::pin!(connection);
        let request = Request::get(path.as_str())
            .header(HOST, HeaderValue::from_str(&addr.to_string()).map_err(|e| e.to_string())?)
            .header(AUTHORIZATION, authorization.as_str())
            .header(ACCEPT, "text/event-stream")
            .body(Empty::<Bytes>::new())
            .map_err(|error| error.to_string())?;
        let response = tokio::select! {
            response = sender.send_request(request) => response.map_err(|error| format!("request: {error}"))?,
            closed = &mut connection => return Err(format!("the connection closed: {closed:?}")),
        };
        if response.status() != StatusCode::OK {
            return Err(format!("HTTP {}", response.status()));
        }
        opening.take();
        if let Some(first_open) = &first_open {
            first_open.add_permits(1);
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(())).await;
        }
        let mut body = response.into_body();
        let mut events = EventParser::default();
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                closed = &mut connection => return Err(format!("the connection closed: {closed:?}")),
            };
            let data = match frame {
                None => return Err("the server ended the event stream".to_owned()),
                Some(Err(error)) => return Err(format!("body: {error}")),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            for event in events.push(&data) {
                match event {
                    Parsed::Message(key) => tally.copy(&receipts, key),
                    // The edge ends the stream after it; a browser would
                    // reconnect from its id.
                    Parsed::Gap => {
                        tally.gap(&receipts);
                        return Ok(());
                    }
                    Parsed::Other(kind) => return Err(format!("an unexpected `{kind}` event")),
                }
            }
        }
    }
    .await;
    if let Err(error) = outcome {
        match ready {
            Some(ready) => {
                let _ = ready.send(Err(error)).await;
            }
            None => tally.error(error),
        }
    }
}

/// What an SSE event was, as far as the benchmark cares.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Message(MessageKey),
    /// The client fell behind; the stream ends.
    Gap,
    /// Any other event type (`gap`, `error`, …), or a message without a
    /// readable id.
    Other(String),
}

/// Splits the byte stream into events (blank-line separated) and reads the
/// `event:` and `data:` lines of each; comments (keep-alives) are skipped.
#[derive(Default)]
struct EventParser {
    buffer: BytesMut,
}

impl EventParser {
    fn push(&mut self, data: &[u8]) -> Vec<Parsed> {
        self.buffer.extend_from_slice(data);
        let mut parsed = Vec::new();
        while let Some(end) = find(&self.buffer, b"\n\n") {
            let block = self.buffer.split_to(end + 2);
            if let Some(event) = parse_block(&block[..end]) {
                parsed.push(event);
            }
        }
        // A partial event stays for the next chunk.
        if self.buffer.is_empty() {
            self.buffer.clear();
        } else if self.buffer.remaining() > 1 << 20 {
            self.buffer.clear();
            parsed.push(Parsed::Other("over-long".to_owned()));
        }
        parsed
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn parse_block(block: &[u8]) -> Option<Parsed> {
    let text = std::str::from_utf8(block).ok()?;
    let mut kind = None;
    let mut data = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            kind = Some(value.trim_start());
        } else if let Some(value) = line.strip_prefix("data:") {
            data = Some(value.trim_start());
        }
    }
    let data = data?;
    Some(match kind.unwrap_or("message") {
        "message" => data
            .strip_prefix(r#"{"_id":""#)
            .and_then(|rest| rest.get(..24))
            .and_then(message_key)
            .map_or_else(
                || Parsed::Other("message without an id".to_owned()),
                Parsed::Message,
            ),
        "gap" => Parsed::Gap,
        other => Parsed::Other(other.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_read_whole() {
        let id = "64d15f9e2e6c8f4d5a123000";
        let stream = format!(
            ": keep-alive\n\nid: AAAB\nevent: message\ndata: {{\"_id\":\"{id}\",\"content\":\"x\"}}\n\nevent: gap\ndata: {{}}\n\n"
        );
        let (first, second) = stream.as_bytes().split_at(30);
        let mut parser = EventParser::default();
        let mut events = parser.push(first);
        events.extend(parser.push(second));
        assert_eq!(
            events,
            vec![
                Parsed::Message(message_key(id).expect("24 bytes")),
                Parsed::Gap
            ]
        );
    }
}
