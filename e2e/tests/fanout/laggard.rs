//! A client that stops reading gets a `gap` with its resume cursor and is
//! disconnected; the shared feed never waits for it, and the clients of the
//! same stream that read get every event, with no gap.

use std::collections::HashSet;

use allmine_test_support::TokenBuilder;
use allmine_test_support::sse::expect_closed_with_gap;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::fleet::{Fleet, HANG, send};

/// Messages sent, by workers at once.
const WORKERS: usize = 8;
const PER_WORKER: usize = 250;

/// What starts a message event, in the body.
const MARKER: &[u8] = b"\nevent: message\n";

#[tokio::test]
async fn a_laggard_gets_a_gap_and_is_disconnected_while_the_others_get_everything() {
    let fleet = Fleet::start(|_| {}).await;
    let edge = fleet.edge(|_| {}).await;
    let stream = fleet.stream().await;
    let viewer = TokenBuilder::new().build();

    // Never reads, with a tiny receive window.
    let request = format!(
        "GET /api/v1/live-stream/{stream}/chat/events HTTP/1.1\r\nhost: edge\r\nauthorization: Bearer {viewer}\r\n\r\n"
    );
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small window");
    let mut stalled = socket
        .connect(
            edge.address
                .trim_start_matches("http://")
                .parse()
                .expect("an address"),
        )
        .await
        .expect("the edge accepts");
    stalled.write_all(request.as_bytes()).await.expect("sent");

    // Reads everything, as it comes.
    let authorization = format!("Bearer {}", TokenBuilder::new().build());
    let response = edge
        .events(&stream, "", &[("authorization", authorization.as_str())])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let expected = WORKERS * PER_WORKER;
    let reader = tokio::spawn(async move {
        let mut response = response;
        let mut seen = Vec::new();
        let (mut messages, mut scanned) = (0_usize, 0_usize);
        while messages < expected {
            let chunk = tokio::time::timeout(HANG, response.chunk())
                .await
                .expect("events keep coming")
                .expect("the body reads")
                .expect("the stream is open");
            seen.extend_from_slice(&chunk);
            // Counts each marker once: from just before the new bytes on.
            let from = scanned.saturating_sub(MARKER.len() - 1);
            messages += count(&seen[from..], MARKER);
            scanned = seen.len();
        }
        String::from_utf8(seen).expect("UTF-8")
    });
    fleet.expect_live_subscribers(1.0).await;

    // ~2 KB per event (490 four-byte characters): ~4 MB for the laggard.
    let content = "😀".repeat(490);
    let sends = (0..WORKERS).map(|worker| {
        let (edge, stream, content) = (&edge, &stream, &content);
        let sender = TokenBuilder::new().build();
        async move {
            for index in 0..PER_WORKER {
                send(
                    edge,
                    stream,
                    &sender,
                    &format!("{worker}-{index} {content}"),
                )
                .await;
            }
        }
    });
    futures::future::join_all(sends).await;
    assert_eq!(
        fleet.live_subscribers().await,
        1.0,
        "one upstream throughout"
    );

    let read = tokio::time::timeout(HANG, reader)
        .await
        .expect("the reader got everything")
        .expect("the reader did not panic");
    assert!(!read.contains("event: gap"), "no gap for a reader");
    let distinct: HashSet<_> = read
        .split("\n\n")
        .filter(|block| block.contains("event: message"))
        .collect();
    assert_eq!(distinct.len(), expected, "each event once");

    expect_closed_with_gap(&mut stalled, HANG).await;
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}
