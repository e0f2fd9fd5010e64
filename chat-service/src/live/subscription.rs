//! One subscriber: replay from its cursor, then the live feed, through a
//! small bounded outbox. A subscriber slower than the feed's buffer lags
//! behind, gets a `Gap` event with its resume cursor, and its stream ends;
//! it never slows senders or other subscribers, and its memory is bounded by
//! the outbox.

use std::sync::Arc;

use allmine_chat_proto::v1 as pb;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{Delivered, Hub};
use crate::domain::{Cursor, Position, StreamEvent, StreamId};
use crate::error::ChatError;
use crate::storage::{PageStart, SharedStore, StorageError};

/// At most this many events are replayed after a cursor; beyond that the
/// subscriber gets a gap event and reads history instead.
pub const REPLAY_LIMIT: usize = 1_000;

/// Events waiting for a slow client, per subscription.
const OUTBOX: usize = 64;

const READ_BATCH: usize = 200;

pub type EventStream = ReceiverStream<Result<pb::ChatEvent, Status>>;

/// Subscribes to `stream`, replaying what came after `after`.
pub fn subscribe(hub: &Arc<Hub>, stream: StreamId, after: Option<Position>) -> EventStream {
    let (live, live_from) = hub.subscribe(stream);
    let (outbox, events) = mpsc::channel(OUTBOX);
    tokio::spawn(forward(
        Arc::clone(hub),
        stream,
        after,
        live,
        live_from,
        outbox,
    ));
    ReceiverStream::new(events)
}

async fn forward(
    hub: Arc<Hub>,
    stream: StreamId,
    after: Option<Position>,
    mut live: broadcast::Receiver<Delivered>,
    live_from: Position,
    outbox: mpsc::Sender<Result<pb::ChatEvent, Status>>,
) {
    let stopping = hub.stopping().clone();
    let send = |event: Result<pb::ChatEvent, Status>| {
        let outbox = outbox.clone();
        let stopping = stopping.clone();
        async move {
            tokio::select! {
                result = outbox.send(event) => result.is_ok(),
                () = stopping.cancelled() => false,
            }
        }
    };

    let mut delivered = live_from;
    if let Some(after) = after {
        if after < live_from {
            match replay(hub.store(), stream, after, live_from).await {
                Ok(Replay::Events(events)) => {
                    for event in events {
                        if !send(Ok(pb::ChatEvent::from(event))).await {
                            return;
                        }
                    }
                }
                Ok(Replay::TooLong) => {
                    let reason = format!(
                        "more than {REPLAY_LIMIT} events since the cursor: read history with ListMessages after it, then subscribe again"
                    );
                    let _ = send(Ok(gap(after, reason))).await;
                    return;
                }
                Err(error) => {
                    let _ = send(Err(Status::from(ChatError::from(error)))).await;
                    return;
                }
            }
        } else {
            delivered = after;
        }
    }

    loop {
        let received = tokio::select! {
            received = live.recv() => received,
            () = stopping.cancelled() => return,
            () = outbox.closed() => return,
        };
        match received {
            Ok(item) => {
                let (position, event) = item.as_ref();
                if *position <= delivered {
                    continue;
                }
                if !send(Ok(event.clone())).await {
                    return;
                }
                delivered = *position;
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::info!(%stream, skipped, "subscriber fell behind; sending a gap");
                let reason = format!(
                    "this subscriber fell behind and {skipped} events were skipped: resume from this cursor"
                );
                let _ = send(Ok(gap(delivered, reason))).await;
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn gap(resume_after: Position, reason: String) -> pb::ChatEvent {
    pb::ChatEvent {
        cursor: Cursor::new(resume_after).to_string(),
        event: Some(pb::chat_event::Event::Gap(pb::Gap { reason })),
    }
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
