//! One upstream per stream per edge, however many SSE clients: counted by
//! chat-service itself (`chat_live_subscribers`, scraped from outside), and
//! every client still gets every event, in order, each exactly once; one
//! client's token expiring ends that client only.

use allmine_test_support::TokenBuilder;

use crate::fleet::{Fleet, contents, follow, messages, send};

/// Viewers per edge.
const VIEWERS: usize = 6;

#[tokio::test]
async fn many_clients_on_two_edges_are_one_subscription_per_edge_and_stream() {
    let fleet = Fleet::start(|_| {}).await;
    let (edge_a, edge_b) = (fleet.edge(|_| {}).await, fleet.edge(|_| {}).await);
    let stream = fleet.stream().await;
    let other_stream = fleet.stream().await;
    let sender = TokenBuilder::new().build();

    let mut viewers = Vec::new();
    for edge in [&edge_a, &edge_b] {
        for _ in 0..VIEWERS {
            viewers.push(follow(edge, &stream, &TokenBuilder::new().build(), &[]).await);
        }
    }
    fleet.expect_live_subscribers(2.0).await;
    let mut elsewhere = follow(&edge_a, &other_stream, &TokenBuilder::new().build(), &[]).await;
    fleet.expect_live_subscribers(3.0).await;

    for index in 0..3 {
        send(&edge_a, &stream, &sender, &format!("m{index}")).await;
    }
    send(&edge_b, &other_stream, &sender, "elsewhere").await;

    let mut ids = None;
    for viewer in &mut viewers {
        let seen = messages(viewer, 3).await;
        assert_eq!(contents(&seen), ["m0", "m1", "m2"]);
        // The same events, with the same cursors, whichever edge.
        let seen_ids: Vec<_> = seen.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids.get_or_insert_with(|| seen_ids.clone()), &seen_ids);
    }
    assert_eq!(contents(&messages(&mut elsewhere, 1).await), ["elsewhere"]);
    assert_eq!(
        fleet.live_subscribers().await,
        3.0,
        "still one per edge and stream"
    );

    // The last client of a stream leaving drops its upstream (after the
    // linger); the others keep theirs.
    viewers.truncate(VIEWERS);
    fleet.expect_live_subscribers(2.0).await;
    drop(viewers);
    drop(elsewhere);
    fleet.expect_live_subscribers(0.0).await;
}

#[tokio::test]
async fn a_token_expiring_ends_that_client_only() {
    let fleet = Fleet::start(|config| config.jwt_leeway_secs = 0).await;
    let edge = fleet.edge(|_| {}).await;
    let stream = fleet.stream().await;
    let sender = TokenBuilder::new().build();
    let mut staying = follow(&edge, &stream, &TokenBuilder::new().build(), &[]).await;
    let short_lived = TokenBuilder::new().expires_in(3).build();
    let mut leaving = follow(&edge, &stream, &short_lived, &[]).await;
    fleet.expect_live_subscribers(1.0).await;
    send(&edge, &stream, &sender, "while both are signed in").await;
    assert_eq!(
        contents(&messages(&mut leaving, 1).await),
        ["while both are signed in"]
    );

    let event = leaving.next_event().await.expect("the error event");

    assert_eq!(event.event.as_deref(), Some("error"), "{event:?}");
    assert_eq!(event.id, None, "the resume point stays the last event");
    assert_eq!(
        event.json(),
        serde_json::json!({"errors": ["Authentication required", "token has expired"]})
    );
    leaving.expect_end().await;
    send(&edge, &stream, &sender, "after the expiry").await;
    assert_eq!(
        contents(&messages(&mut staying, 2).await),
        ["while both are signed in", "after the expiry"]
    );
    assert_eq!(
        fleet.live_subscribers().await,
        1.0,
        "the shared upstream lives on"
    );
}

#[tokio::test]
async fn each_client_is_refused_as_its_own_subscription_would_be() {
    let fleet = Fleet::start(|_| {}).await;
    let edge = fleet.edge(|_| {}).await;
    let stream = fleet.stream().await;
    let mut watching = follow(&edge, &stream, &TokenBuilder::new().build(), &[]).await;
    fleet.expect_live_subscribers(1.0).await;

    let expired = TokenBuilder::new().expires_in(-600).build();
    let wrong_key = TokenBuilder::new()
        .signed_with_secret(b"another secret, 32 bytes long!!!")
        .build();
    for (stream_id, token, status) in [
        (stream.as_str(), expired.as_str(), 401),
        (stream.as_str(), wrong_key.as_str(), 401),
        ("64d15f9e2e6c8f4d5a1230ff", watching_token().as_str(), 404),
        ("not-an-id", watching_token().as_str(), 400),
    ] {
        let authorization = format!("Bearer {token}");
        let response = edge
            .events(stream_id, "", &[("authorization", authorization.as_str())])
            .await;
        assert_eq!(response.status().as_u16(), status, "{stream_id}");
        let body: serde_json::Value = response.json().await.expect("the envelope");
        assert!(body["errors"].is_array(), "{body}");
    }
    // A cursor chat-service cannot read: its answer, as before.
    let authorization = format!("Bearer {}", watching_token());
    let response = edge
        .events(
            &stream,
            "",
            &[
                ("authorization", authorization.as_str()),
                ("last-event-id", "AAAB-not-a-cursor"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);

    send(&edge, &stream, &TokenBuilder::new().build(), "still live").await;
    assert_eq!(contents(&messages(&mut watching, 1).await), ["still live"]);
    assert_eq!(fleet.live_subscribers().await, 1.0);
}

fn watching_token() -> String {
    TokenBuilder::new().build()
}

#[tokio::test]
async fn one_user_is_held_to_chat_services_per_user_cap_across_the_fanout() {
    // Behind the fan-out a user's clients are not subscriptions of their
    // own in chat-service: the edge holds them to its cap instead.
    let fleet = Fleet::start(|config| config.max_subscriptions_per_user = 2).await;
    let edge = fleet.edge(|_| {}).await;
    let (stream, other_stream) = (fleet.stream().await, fleet.stream().await);
    let greedy = TokenBuilder::new().build();

    let first = follow(&edge, &stream, &greedy, &[]).await;
    let _second = follow(&edge, &other_stream, &greedy, &[]).await;
    let authorization = format!("Bearer {greedy}");
    let refused = edge
        .events(&stream, "", &[("authorization", authorization.as_str())])
        .await;
    assert_eq!(refused.status().as_u16(), 429, "a third stream of one user");
    assert_eq!(
        refused
            .headers()
            .get("allmine-error-reason")
            .and_then(|value| value.to_str().ok()),
        Some("SUBSCRIPTION_LIMIT")
    );
    drop(refused);

    // Anyone else is not held back, and a closed stream gives its place back.
    let _someone_else = follow(&edge, &stream, &TokenBuilder::new().build(), &[]).await;
    drop(first);
    // The edge notices the client left once its connection closes.
    let authorization = format!("Bearer {greedy}");
    let back = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            let response = edge
                .events(&stream, "", &[("authorization", authorization.as_str())])
                .await;
            match response.status().as_u16() {
                200 => break,
                429 => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                other => panic!("unexpected status {other}"),
            }
        }
    })
    .await;
    assert!(back.is_ok(), "the greedy user's place came back");
}
