//! Hostile clients against the whole stack (the real edge in front of the
//! real chat-service): attacks that used to freeze or cut off every other
//! client. Each test asserts that the attacker gets a clear answer and that
//! another client's live stream and calls carry on. Waits are hang
//! detectors, not timings. Isolation does not depend on the store, so these
//! run on the embedded one.

use std::time::Duration;

use allmine_test_support::TokenBuilder;
use allmine_test_support::backends::Backend;
use allmine_test_support::sse::expect_closed_with_gap;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use allmine_test_support::sse::SseReader;

use crate::helpers::{Stack, expect_envelope, spawn_stack_with};

/// Longest wait for something that must happen (an answer, an event).
const HANG: Duration = Duration::from_secs(20);

async fn spawn() -> Stack {
    spawn_stack_with(Backend::Embedded, |config| {
        config.burst_viewer_limit = 100_000;
        config.burst_privileged_limit = 100_000;
    })
    .await
}

fn host(stack: &Stack) -> String {
    stack.edge.address.trim_start_matches("http://").to_owned()
}

/// A live SSE client on `stream` that reads everything (bounded waits).
async fn follow(stack: &Stack, stream: &str, token: &str) -> SseReader {
    let authorization = format!("Bearer {token}");
    let response = stack
        .edge
        .events(stream, "", &[("authorization", &authorization)])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    SseReader::with_read_timeout(response, HANG)
}

/// The next event's type and data.
async fn next(events: &mut SseReader) -> (String, String) {
    let event = events.next_event().await.expect("the stream is still open");
    (event.event.unwrap_or_default(), event.data)
}

/// Asserts the next event is the message `content` (nothing cut the stream
/// in between).
async fn expect_message(events: &mut SseReader, content: &str) {
    let (kind, data) = next(events).await;
    assert_eq!(kind, "message", "{data}");
    assert!(data.contains(content), "{data}");
}

async fn send_ok(stack: &Stack, stream: &str, token: &str, content: &str) {
    let response = stack.edge.send(stream, token, content).await;
    assert_eq!(response.status().as_u16(), 201, "{content}");
}

/// Three viewers open the event stream with a tiny receive window and never
/// read, while the stream carries ~4 MB. Before: their unread events filled
/// the edge's HTTP/2 window to chat-service, and history, readiness and every
/// other live stream hung for as long as they stayed. Now everyone else is
/// served, and each stalled viewer finds a `gap` after what was queued.
#[tokio::test]
async fn stalled_event_stream_readers_do_not_freeze_other_clients() {
    let stack = spawn().await;
    let (busy, owner) = stack.open_stream().await;
    let owner = owner.build();
    let (quiet, _) = stack.open_stream().await;
    let mut follower = follow(&stack, &quiet, &TokenBuilder::new().build()).await;

    let viewer = TokenBuilder::new().build();
    let request = format!(
        "GET /api/v1/live-stream/{busy}/chat/events HTTP/1.1\r\nhost: edge\r\nauthorization: Bearer {viewer}\r\n\r\n"
    );
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("a small window");
        let mut stream = socket
            .connect(host(&stack).parse().expect("an address"))
            .await
            .expect("the edge accepts");
        stream.write_all(request.as_bytes()).await.expect("sent");
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 2,000 messages of ~500 four-byte characters: ~4 MB per stalled viewer.
    let content = "😀".repeat(490);
    let sends = (0..8).map(|worker| {
        let (stack, busy, owner, content) = (&stack, &busy, &owner, &content);
        async move {
            for index in 0..250 {
                send_ok(stack, busy, owner, &format!("{worker}-{index} {content}")).await;
            }
        }
    });
    futures::future::join_all(sends).await;

    let history = stack.edge.history(&quiet, "", Some(&viewer)).await;
    assert_eq!(
        history.status().as_u16(),
        200,
        "history answers while others stall"
    );
    let ready = stack.edge.get("/readyz").await;
    assert_eq!(
        ready.status().as_u16(),
        200,
        "readiness answers while others stall"
    );
    send_ok(&stack, &quiet, &owner, "still live").await;
    expect_message(&mut follower, "still live").await;

    for mut stream in stalled {
        expect_closed_with_gap(&mut stream, HANG).await;
    }
    stack.finish().await;
}

/// Before: one POST with a ~65 KB `Authorization` header answered 503 and
/// ended every open event stream of every client ("Service unavailable");
/// a 16-64 KB one answered 500. Now both are the 431 envelope from the edge,
/// and nobody else notices.
#[tokio::test]
async fn oversized_tokens_are_refused_without_touching_other_clients() {
    let stack = spawn().await;
    let (stream, owner) = stack.open_stream().await;
    let owner = owner.build();
    let mut follower = follow(&stack, &stream, &TokenBuilder::new().build()).await;

    for size in [16 * 1024, 40 * 1024, 65 * 1024] {
        let token = format!("{}.{}.{}", "a".repeat(size / 2), "b".repeat(size / 2), "c");
        for _ in 0..5 {
            let response = stack.edge.send(&stream, &token, "hi").await;
            let errors = expect_envelope(response, 431).await;
            assert_eq!(errors[0], "Request header fields too large");
        }
    }

    send_ok(&stack, &stream, &owner, "after the big tokens").await;
    expect_message(&mut follower, "after the big tokens").await;
    stack.finish().await;
}

/// Before: ~1,000 clients that POST with a bogus bearer token and reset
/// their connection made chat-service send GOAWAY (ENHANCE_YOUR_CALM) to the
/// edge, and every live stream died. Now the edge lets each call finish
/// instead of resetting it, chat-service tolerates resets, and live streams
/// carry on.
#[tokio::test]
async fn a_flood_of_reset_connections_does_not_cut_live_streams() {
    let stack = spawn().await;
    let (stream, owner) = stack.open_stream().await;
    let owner = owner.build();
    let mut follower = follow(&stack, &stream, &TokenBuilder::new().build()).await;
    // Well-formed, but signed with a key chat-service does not know.
    let bogus = TokenBuilder::new()
        .signed_with_secret(b"not-the-secret-of-this-service-0123456789")
        .build();
    let body = r#"{"content":"flood"}"#;
    let request = format!(
        "POST /api/v1/live-stream/{stream}/chat/messages HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\nauthorization: Bearer {bogus}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );

    let address = host(&stack);
    // All at once, each resetting a few milliseconds after its request went
    // out: while the edge still waits for chat-service on many of them.
    let clients: Vec<_> = (0..1000_u64)
        .map(|index| {
            let (address, request) = (address.clone(), request.clone());
            tokio::spawn(async move {
                let Ok(mut connection) = TcpStream::connect(&address).await else {
                    return;
                };
                let _ = connection.write_all(request.as_bytes()).await;
                tokio::time::sleep(Duration::from_micros(index % 20 * 250)).await;
                // Reset instead of closing: RST, not FIN.
                let _ = connection.set_zero_linger();
                drop(connection);
            })
        })
        .collect();
    // Meanwhile, well-behaved clients send: none of their calls may fail.
    let honest = (0..4).map(|worker| {
        let (stack, stream, owner) = (&stack, &stream, &owner);
        async move {
            for index in 0..50 {
                send_ok(stack, stream, owner, &format!("honest {worker}-{index}")).await;
            }
        }
    });
    futures::future::join_all(honest).await;
    for client in clients {
        client.await.expect("a client task");
    }

    send_ok(&stack, &stream, &owner, "after the flood").await;
    for _ in 0..200 {
        next(&mut follower).await;
    }
    expect_message(&mut follower, "after the flood").await;
    stack.finish().await;
}

/// Before: an SSE stream whose token had expired kept receiving the chat
/// (50 s observed) while the same token got 401 on history. Now the stream
/// ends at `exp` + leeway with an `error` event carrying the 401 envelope's
/// errors.
#[tokio::test]
async fn an_event_stream_ends_with_a_401_error_when_its_token_expires() {
    let stack = spawn_stack_with(Backend::Embedded, |config| config.jwt_leeway_secs = 0).await;
    let (stream, owner) = stack.open_stream().await;
    let owner = owner.build();
    let short_lived = TokenBuilder::new().expires_in(3).build();
    let mut follower = follow(&stack, &stream, &short_lived).await;
    send_ok(&stack, &stream, &owner, "while signed in").await;
    expect_message(&mut follower, "while signed in").await;

    let (kind, data) = next(&mut follower).await;

    assert_eq!(kind, "error", "{data}");
    let errors: serde_json::Value = serde_json::from_str(&data).expect("JSON data");
    assert_eq!(errors["errors"][0], "Authentication required", "{data}");
    // Nothing follows the error: the stream ends.
    follower.expect_end().await;
    stack.finish().await;
}

/// Before: a message made only of invisible characters (zero-width space,
/// word joiner, BOM, Hangul filler, Braille blank) passed as non-blank, and a
/// bidi override was stored as is.
#[tokio::test]
async fn invisible_only_content_and_bidi_overrides_are_400_through_the_edge() {
    let stack = spawn().await;
    let (stream, owner) = stack.open_stream().await;
    let owner = owner.build();
    for (content, reason) in [
        (
            " \u{200B}\u{2060}\u{FEFF}\u{3164}\u{2800} ",
            "content: must not be empty or only whitespace/invisible characters",
        ),
        (
            "invoice \u{202E}fdp.exe",
            "content: must not contain bidirectional embedding, override or isolate controls (found U+202E)",
        ),
    ] {
        let response = stack.edge.send(&stream, &owner, content).await;
        let errors = expect_envelope(response, 400).await;
        assert_eq!(errors, ["Validation failed", reason]);
    }
    assert!(stack.stored(&stream).await.is_empty(), "nothing was stored");
    stack.finish().await;
}
