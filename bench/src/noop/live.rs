//! The fan-out baseline shared by the no-op servers: while anybody follows
//! the chat, each no-op send gets a fresh id and is broadcast to every
//! follower, with a `tokio::sync::broadcast` channel as chat-service's feed
//! does, but with nothing else (no store, no watermark, no per-subscriber
//! task or outbox). What it reaches is the stack's fan-out ceiling.
//!
//! With no follower, nothing changes: the send baselines keep answering the
//! canned reply, id included, and measure what they measured before.

use std::sync::Arc;

use allmine_chat_proto::v1 as pb;
use chat_service::domain::ObjectIdGenerator;
use chrono::Utc;
use tokio::sync::broadcast;

/// Events buffered for followers that are behind (chat-service's default).
const BUFFER: usize = 1_024;

/// A broadcast of `T`, what the server's followers receive.
pub struct NoopLive<T> {
    ids: ObjectIdGenerator,
    sender: broadcast::Sender<Arc<T>>,
}

impl<T> Default for NoopLive<T> {
    fn default() -> Self {
        Self {
            ids: ObjectIdGenerator::new(),
            sender: broadcast::channel(BUFFER).0,
        }
    }
}

impl<T> NoopLive<T> {
    /// A receiver of everything published from now on.
    pub fn follow(&self) -> broadcast::Receiver<Arc<T>> {
        self.sender.subscribe()
    }

    /// If anybody follows: `canned` with a fresh id (so that followers can
    /// tell messages apart), after `publish` has broadcast what it makes of
    /// it. `None` when nobody follows.
    pub fn publish_if_followed(
        &self,
        canned: &pb::ChatMessage,
        publish: impl FnOnce(&pb::ChatMessage) -> T,
    ) -> Option<pb::ChatMessage> {
        if self.sender.receiver_count() == 0 {
            return None;
        }
        let message = pb::ChatMessage {
            id: self.ids.next(Utc::now()).to_string(),
            ..canned.clone()
        };
        // Receivers may have left since the count: nothing to do then.
        let _ = self.sender.send(Arc::new(publish(&message)));
        Some(message)
    }
}

/// A stream of what `receiver` gets, ending when the follower falls behind
/// the buffer (chat-service sends a gap event then and ends too) or the
/// server stops.
pub fn followed<T, U>(
    receiver: broadcast::Receiver<Arc<T>>,
    map: impl Fn(&T) -> U + Send + 'static,
) -> impl futures::Stream<Item = U> + Send + 'static
where
    T: Send + Sync + 'static,
    U: Send + 'static,
{
    futures::stream::unfold((receiver, map), |(mut receiver, map)| async move {
        let item = receiver.recv().await.ok()?;
        Some((map(&item), (receiver, map)))
    })
}
