//! Live delivery's metrics: counted by guards that live as long as what
//! they count, so that every way a subscription or a feed ends (a gap, a
//! cancelled call, shutdown) gives its count back.

use std::sync::LazyLock;

use metrics::{Counter, Gauge};

use super::{LIVE_EVENTS_DELIVERED, LIVE_GAPS, LIVE_STREAMS, LIVE_SUBSCRIBERS, with_recorder};

// Registered once: these are touched per event per subscriber.
static SUBSCRIBERS: LazyLock<Gauge> =
    LazyLock::new(|| with_recorder(|| metrics::gauge!(LIVE_SUBSCRIBERS)));
static STREAMS: LazyLock<Gauge> = LazyLock::new(|| with_recorder(|| metrics::gauge!(LIVE_STREAMS)));
static DELIVERED: LazyLock<Counter> =
    LazyLock::new(|| with_recorder(|| metrics::counter!(LIVE_EVENTS_DELIVERED)));
static GAPS: LazyLock<Counter> = LazyLock::new(|| with_recorder(|| metrics::counter!(LIVE_GAPS)));

/// One open subscription in `chat_live_subscribers`, while it lives.
#[derive(Debug)]
pub struct SubscriberGauge(());

impl SubscriberGauge {
    pub fn open() -> Self {
        SUBSCRIBERS.increment(1.0);
        Self(())
    }
}

impl Drop for SubscriberGauge {
    fn drop(&mut self) {
        SUBSCRIBERS.decrement(1.0);
    }
}

/// One followed stream in `chat_live_streams`, while its feed lives.
#[derive(Debug)]
pub struct StreamGauge(());

impl StreamGauge {
    pub fn open() -> Self {
        STREAMS.increment(1.0);
        Self(())
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        STREAMS.decrement(1.0);
    }
}

/// An event handed to a subscriber.
pub fn delivered() {
    DELIVERED.increment(1);
}

/// A gap event sent to a subscriber.
pub fn gap() {
    GAPS.increment(1);
}
