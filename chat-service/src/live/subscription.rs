//! One subscriber: replay from its cursor, then the live feed. The
//! subscription is a stream polled by the response body itself, so a
//! subscriber costs no task and no queue of its own: the feed's broadcast
//! buffer (CHAT_LIVE_BUFFER events) is the only backlog. A subscriber slower
//! than that lags behind, gets a `Gap` event with its resume cursor, and its
//! stream ends; it never slows senders or other subscribers. It also ends
//! when the subscriber's token expires (see [`super::expiry`]).
//!
//! Live events are sent as the feed encoded them, shared by every subscriber
//! ([`Outgoing::Shared`]); replayed events and gaps are this subscriber's own.

use std::pin::Pin;
use std::sync::Arc;

use allmine_chat_proto::v1 as pb;
use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::sync::broadcast;
use tonic::Status;

use super::encoded::Outgoing;
use super::expiry::until_token_expires;
use super::{Delivered, Hub};
use crate::domain::{Cursor, Position, StreamEvent, StreamId};
use crate::error::ChatError;
use crate::metrics::live::{self as live_metrics, SubscriberGauge};
use crate::storage::{PageStart, SharedStore, StorageError};

/// At most this many events are replayed after a cursor; beyond that the
/// subscriber gets a gap event and reads history instead.
pub const REPLAY_LIMIT: usize = 1_000;

const READ_BATCH: usize = 200;

pub type EventStream = Pin<Box<dyn Stream<Item = Result<Outgoing, Status>> + Send>>;

/// Subscribes to `stream`, delivering what comes after `after` (a client's
/// cursor, or [`Hub::acceptance_position`] for one without), until
/// `valid_until` (when the subscriber's token expires).
pub fn subscribe(
    hub: &Arc<Hub>,
    stream: StreamId,
    after: Position,
    valid_until: DateTime<Utc>,
) -> EventStream {
    let (live, live_from) = hub.subscribe(stream);
    // Events up to `live_from` come from the store, the rest from the feed,
    // which skips what is at or before `after`: a feed may have started
    // before it (a shared database's feed starts `settle` in the past).
    let (phase, delivered) = if after < live_from {
        (
            Phase::Replay {
                after,
                until: live_from,
            },
            live_from,
        )
    } else {
        (Phase::Live, after)
    };
    let subscription = Subscription {
        _counted: SubscriberGauge::open(),
        hub: Arc::clone(hub),
        stream,
        live,
        delivered,
        phase,
    };
    let events = Box::pin(futures::stream::unfold(subscription, Subscription::next));
    until_token_expires(events, stream, valid_until)
}

struct Subscription {
    /// In `chat_live_subscribers` while the subscription lives.
    _counted: SubscriberGauge,
    hub: Arc<Hub>,
    stream: StreamId,
    live: broadcast::Receiver<Delivered>,
    /// The last position sent from the feed's side (or the replay's end).
    delivered: Position,
    phase: Phase,
}

enum Phase {
    /// The store must be read for `(after, until]` first.
    Replay {
        after: Position,
        until: Position,
    },
    Replaying(std::vec::IntoIter<StreamEvent>),
    Live,
    Ended,
}

type Item = Result<Outgoing, Status>;

impl Subscription {
    /// The next event, or `None` once the stream has ended: on shutdown,
    /// after a gap or an error, or when the feed closes.
    async fn next(mut self) -> Option<(Item, Self)> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Ended) {
                Phase::Ended => return None,
                Phase::Replay { after, until } => {
                    let replayed = tokio::select! {
                        replayed = replay(self.hub.store(), self.stream, after, until) => replayed,
                        () = self.hub.stopping().cancelled() => return None,
                    };
                    match replayed {
                        Ok(Replay::Events(events)) => {
                            self.phase = Phase::Replaying(events.into_iter());
                        }
                        Ok(Replay::TooLong) => {
                            let reason = format!(
                                "more than {REPLAY_LIMIT} events since the cursor: read history with ListMessages after it, then subscribe again"
                            );
                            live_metrics::gap();
                            return Some((Ok(gap(after, reason)), self));
                        }
                        Err(error) => {
                            return Some((Err(Status::from(ChatError::from(error))), self));
                        }
                    }
                }
                Phase::Replaying(mut events) => {
                    if let Some(event) = events.next() {
                        self.phase = Phase::Replaying(events);
                        live_metrics::delivered();
                        return Some((Ok(Outgoing::own(pb::ChatEvent::from(event))), self));
                    }
                    self.phase = Phase::Live;
                }
                // No shutdown check here (it would cost a waiter on the
                // token per event per subscriber): on shutdown the feed
                // leaves the hub, its sender is dropped and `recv` reports
                // `Closed`.
                Phase::Live => match self.live.recv().await {
                    Ok(item) => {
                        self.phase = Phase::Live;
                        if item.position <= self.delivered {
                            continue;
                        }
                        self.delivered = item.position;
                        live_metrics::delivered();
                        return Some((Ok(Outgoing::Shared(item.encoded.clone())), self));
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::info!(stream = %self.stream, skipped, "subscriber fell behind; sending a gap");
                        let reason = format!(
                            "this subscriber fell behind and {skipped} events were skipped: resume from this cursor"
                        );
                        live_metrics::gap();
                        return Some((Ok(gap(self.delivered, reason)), self));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

fn gap(resume_after: Position, reason: String) -> Outgoing {
    Outgoing::own(pb::ChatEvent {
        cursor: Cursor::new(resume_after).to_string(),
        event: Some(pb::chat_event::Event::Gap(pb::Gap { reason })),
    })
}

enum Replay {
    Events(Vec<StreamEvent>),
    TooLong,
}

/// Messages and moderation events in `(after, until]`, in order.
async fn replay(
    store: &SharedStore,
    stream: StreamId,
    after: Position,
    until: Position,
) -> Result<Replay, StorageError> {
    let mut events = Vec::new();
    let mut cursor = after;
    loop {
        let page = store
            .page(&stream, PageStart::After(cursor), READ_BATCH)
            .await?;
        let full = page.len() == READ_BATCH;
        let Some(last) = page.last().map(|message| message.position()) else {
            break;
        };
        events.extend(
            page.into_iter()
                .filter(|message| message.position() <= until)
                .map(StreamEvent::Message),
        );
        if events.len() > REPLAY_LIMIT {
            return Ok(Replay::TooLong);
        }
        if !full || last > until {
            break;
        }
        cursor = last;
    }
    let mut cursor = after;
    loop {
        let page = store.events_after(&stream, cursor, READ_BATCH).await?;
        let full = page.len() == READ_BATCH;
        let Some(last) = page.last().map(|event| event.position()) else {
            break;
        };
        events.extend(
            page.into_iter()
                .filter(|event| event.position() <= until)
                .map(StreamEvent::Moderation),
        );
        if events.len() > REPLAY_LIMIT {
            return Ok(Replay::TooLong);
        }
        if !full || last > until {
            break;
        }
        cursor = last;
    }
    events.sort_by_key(StreamEvent::position);
    Ok(Replay::Events(events))
}
