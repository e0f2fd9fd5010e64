//! A client without a cursor joining a running shared feed gets exactly the
//! events positioned after its acceptance (issue 16's contract, as
//! chat-service keeps it for its own subscriptions): never what was sent
//! before, always what is sent after its 200.

use allmine_test_support::TokenBuilder;

use crate::fleet::{Fleet, contents, follow, messages, send};

#[tokio::test]
async fn a_client_without_a_cursor_joining_a_running_feed_starts_at_its_acceptance() {
    let fleet = Fleet::start(|_| {}).await;
    let edge = fleet.edge(|_| {}).await;
    let stream = fleet.stream().await;
    let sender = TokenBuilder::new().build();
    let mut early = follow(&edge, &stream, &TokenBuilder::new().build(), &[]).await;
    for index in 0..3 {
        send(&edge, &stream, &sender, &format!("before {index}")).await;
    }
    // The feed has delivered them: they are in the ring.
    assert_eq!(
        contents(&messages(&mut early, 3).await),
        ["before 0", "before 1", "before 2"]
    );

    let mut late = follow(&edge, &stream, &TokenBuilder::new().build(), &[]).await;
    for index in 0..2 {
        send(&edge, &stream, &sender, &format!("after {index}")).await;
    }

    assert_eq!(
        contents(&messages(&mut late, 2).await),
        ["after 0", "after 1"]
    );
    assert_eq!(
        contents(&messages(&mut early, 2).await),
        ["after 0", "after 1"]
    );
    assert_eq!(fleet.live_subscribers().await, 1.0);
}
