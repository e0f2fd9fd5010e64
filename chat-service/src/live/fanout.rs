//! A feed's broadcast to its subscribers, in batches that take turns with
//! every other task of the runtime.
//!
//! One broadcast channel would wake every subscriber of a stream at once:
//! with 10,000 of them, 10,000 response tasks land in the runtime's queue
//! ahead of anything that arrives next, and a send's acknowledgment waited
//! behind the previous message's whole fan-out (~100-170 ms on one core,
//! BENCHMARKS.md section 4). So subscribers are spread over *shards* of at
//! most `batch` receivers each, one broadcast channel per shard, and an
//! event goes to one shard at a time, the feed yielding to the runtime
//! between shards: a send's tasks wait behind at most one shard's worth of
//! subscribers, and the fan-out takes turns with them instead of going
//! first. A stream with no more than `batch` subscribers has one shard and
//! no yield, as before.
//!
//! Order and gaps are unchanged: each shard carries every event in order and
//! has the stream's whole buffer; a subscriber that falls behind its shard
//! gets a gap as before. Subscribing happens under the feed's position lock
//! (see [`super::feed`]), so a subscriber joining while an event is still on
//! its way to the shards either gets it (and skips it as already covered by
//! its start) or was not meant to.

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::encoded::LiveEvent;

/// What a shard carries: the encoded event, shared by every shard.
pub type Delivered = Arc<LiveEvent>;

pub struct Fanout {
    shards: Mutex<Vec<broadcast::Sender<Delivered>>>,
    /// Receivers per shard, at most.
    batch: usize,
    /// Events buffered per shard.
    capacity: usize,
}

impl Fanout {
    pub fn new(batch: usize, capacity: usize) -> Self {
        Self {
            shards: Mutex::new(Vec::new()),
            batch: batch.max(1),
            capacity,
        }
    }

    /// A receiver of every event sent from now on, in the first shard with
    /// room (the places of those who left are taken again).
    pub fn subscribe(&self) -> broadcast::Receiver<Delivered> {
        let mut shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shard) = shards
            .iter()
            .find(|shard| shard.receiver_count() < self.batch)
        {
            return shard.subscribe();
        }
        let (sender, receiver) = broadcast::channel(self.capacity);
        shards.push(sender);
        receiver
    }

    pub fn receiver_count(&self) -> usize {
        let shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        shards.iter().map(broadcast::Sender::receiver_count).sum()
    }

    /// Sends `events`, in order, to every shard, one shard at a time,
    /// yielding to the runtime between shards.
    pub async fn send(&self, events: &[Delivered]) {
        if events.is_empty() {
            return;
        }
        // Shards whose subscribers have all left go here, where nothing
        // iterates them (one feed task sends): an audience that shrank from
        // 50,000 to 10 would otherwise keep ~780 empty shards, each with
        // its buffer of `capacity` events, for the rest of the feed's life.
        self.shards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|shard| shard.receiver_count() > 0);
        let mut index = 0;
        loop {
            // The lock is not held across the yield: subscribing (on other
            // tasks) goes on meanwhile.
            let shard = {
                let shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
                match shards.get(index) {
                    Some(shard) => shard.clone(),
                    None => return,
                }
            };
            for event in events {
                // No receivers in a shard is fine: it just holds nothing.
                let _ = shard.send(Arc::clone(event));
            }
            index += 1;
            let listened = shard.receiver_count() > 0;
            drop(shard);
            if listened {
                tokio::task::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ObjectId, Position};

    fn event(ms: i64) -> Delivered {
        Arc::new(LiveEvent {
            position: Position {
                created_ms: ms,
                id: ObjectId::from_bytes([1; 12]),
            },
            encoded: bytes::Bytes::from_static(b"x"),
        })
    }

    #[tokio::test]
    async fn every_subscriber_of_every_shard_gets_every_event_in_order() {
        let fanout = Fanout::new(2, 16);
        let mut receivers: Vec<_> = (0..5).map(|_| fanout.subscribe()).collect();
        assert_eq!(fanout.receiver_count(), 5);
        assert_eq!(fanout.shards.lock().expect("lock").len(), 3, "2 + 2 + 1");
        fanout.send(&[event(1), event(2)]).await;
        fanout.send(&[event(3)]).await;
        for receiver in &mut receivers {
            for expected in 1..=3 {
                let got = receiver.try_recv().expect("an event");
                assert_eq!(got.position.created_ms, expected);
            }
            assert!(receiver.try_recv().is_err(), "nothing more");
        }
    }

    #[tokio::test]
    async fn a_place_left_in_a_shard_is_taken_again() {
        let fanout = Fanout::new(2, 16);
        let first = fanout.subscribe();
        let _second = fanout.subscribe();
        drop(first);
        let _third = fanout.subscribe();
        assert_eq!(fanout.shards.lock().expect("lock").len(), 1);
        assert_eq!(fanout.receiver_count(), 2);
    }

    #[tokio::test]
    async fn shards_everyone_left_are_dropped_at_the_next_send() {
        let fanout = Fanout::new(2, 16);
        let receivers: Vec<_> = (0..6).map(|_| fanout.subscribe()).collect();
        let mut kept = fanout.subscribe();
        assert_eq!(fanout.shards.lock().expect("lock").len(), 4);
        drop(receivers);
        fanout.send(&[event(1)]).await;
        assert_eq!(fanout.shards.lock().expect("lock").len(), 1);
        assert_eq!(kept.try_recv().expect("an event").position.created_ms, 1);
    }

    #[tokio::test]
    async fn a_subscriber_behind_its_shard_buffer_lags() {
        let fanout = Fanout::new(1, 2);
        let mut slow = fanout.subscribe();
        let mut other = fanout.subscribe();
        fanout.send(&[event(1), event(2), event(3)]).await;
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(1))
        ));
        assert!(matches!(
            other.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(1))
        ));
    }
}
