//! A feed outlives its last client for the linger time, but only so many at
//! once (`EDGE_MAX_LINGERING_FEEDS`): one client opening and leaving many
//! streams cannot keep their upstream subscriptions alive for everyone
//! else's cost.

use allmine_test_support::TokenBuilder;

use crate::fleet::{Fleet, follow};

#[tokio::test]
async fn past_the_lingering_bound_a_feed_closes_when_its_last_client_leaves() {
    let fleet = Fleet::start(|_| {}).await;
    let edge = fleet
        .edge(|config| {
            // A linger longer than the test's hang bound: any feed that
            // lingers is still counted when the test ends.
            config.fanout.feed_linger_ms = 600_000;
            config.fanout.max_lingering_feeds = 1;
        })
        .await;
    let viewer = TokenBuilder::new().build();
    let (first, second, third) = (
        fleet.stream().await,
        fleet.stream().await,
        fleet.stream().await,
    );

    drop(follow(&edge, &first, &viewer, &[]).await);
    // The first lingers: its upstream stays.
    fleet.expect_live_subscribers(1.0).await;

    // The next ones have no place to linger: each upstream closes as its
    // client leaves, and the first still lingers.
    for stream in [&second, &third] {
        let reader = follow(&edge, stream, &viewer, &[]).await;
        fleet.expect_live_subscribers(2.0).await;
        drop(reader);
        fleet.expect_live_subscribers(1.0).await;
    }
}
