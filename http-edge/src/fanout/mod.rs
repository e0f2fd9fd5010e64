//! The fan-out tree's edge level: at most one upstream `SubscribeMessages`
//! per stream per edge, shared by every SSE client of that stream here
//! (issue 15; docs/live.md "Through the edge").
//!
//! For each SSE client:
//! 1. chat-service checks it alone (`ChatEdgeService.AuthorizeSubscription`
//!    with the client's token): the refusals of `SubscribeMessages`, the
//!    token's `valid_until` and the acceptance cursor.
//!    The answer also names the user and chat-service's per-user cap, which
//!    no longer sees this client: the edge holds each user to it
//!    ([`users`]; 429 `SUBSCRIPTION_LIMIT` past it).
//! 2. Its start: its cursor (`Last-Event-ID`, `after`), else the acceptance
//!    cursor, which gives a client without a cursor exactly the events
//!    positioned after its acceptance, as chat-service would.
//! 3. It joins the stream's [`feed`] if the feed's ring covers its start
//!    (the ring's boundary is at or before it), replaying from the ring what
//!    it has not seen; the first client of a stream opens the feed, starting
//!    the upstream a little before its own start (so that clients accepted
//!    just before it join too). A start the ring no longer covers (or a
//!    cursor the edge cannot read) gets a private upstream subscription with
//!    the client's token, the relay of [`crate::event_stream`], for the life
//!    of that client: such resumes are rare (older than the ring), and the
//!    private subscription replays them exactly, refusals included.
//!
//! The shared upstream authenticates with the edge's own service token
//! (`EDGE_UPSTREAM_TOKEN`), never a client's (that expires, or is banned,
//! while others still watch). Without it the edge relays each client
//! separately, as before.

mod client;
mod feed;
mod frame;
mod position;
pub mod settings;
#[cfg(test)]
mod tests;
pub mod users;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use allmine_chat_proto::v1::SubscribeMessagesRequest;
use axum::{
    body::Body,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::{
    client::{Client, Start},
    feed::{Feed, FeedEnd},
    position::Position,
    settings::{FanoutSettings, UpstreamToken},
    users::UserStreams,
};
use crate::{
    error::ApiError,
    event_stream::{self, Shutdown, StreamSlot},
    extract::BearerToken,
    grpc::ChatClient,
    request_id::RequestId,
};

/// How far (ms of creation time) before "now" a resume cursor may be and
/// still open a stream's feed at itself.
const OPEN_AT_MOST_BEHIND_MS: i64 = 30_000;

/// How far (ms) before its opener's start a feed starts (see `follow`).
const OPEN_EARLIER_MS: i64 = 2_000;

/// The edge's shared feeds, by stream. Cheap to clone.
#[derive(Clone)]
pub struct Fanout {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Fanout")
            .field("ring", &self.inner.ring)
            .field("linger", &self.inner.linger)
            .finish_non_exhaustive()
    }
}

struct Inner {
    chat: ChatClient,
    token: UpstreamToken,
    ring: usize,
    linger: Duration,
    /// Places for feeds lingering without a client
    /// (`EDGE_MAX_LINGERING_FEEDS`).
    lingering: Arc<Semaphore>,
    shutdown: Shutdown,
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
    /// Each user's clients here, held to chat-service's per-user cap.
    users: Arc<UserStreams>,
}

/// One client's request.
pub struct Follow {
    pub stream_id: String,
    pub after: Option<String>,
    pub token: BearerToken,
    pub request_id: RequestId,
}

impl Fanout {
    /// The fan-out, or `None` when no upstream token is configured.
    pub fn new(
        chat: ChatClient,
        settings: &FanoutSettings,
        event_buffer: u64,
        shutdown: Shutdown,
    ) -> Option<Self> {
        let token = settings.upstream_token.clone()?;
        if settings.event_ring < event_buffer {
            tracing::warn!(
                event_ring = settings.event_ring,
                event_buffer,
                "EDGE_EVENT_RING is below EDGE_EVENT_BUFFER: a client is gapped once it is a ring behind"
            );
        }
        Some(Self {
            inner: Arc::new(Inner {
                chat,
                token,
                ring: usize::try_from(settings.event_ring).unwrap_or(usize::MAX),
                linger: settings.feed_linger(),
                lingering: Arc::new(Semaphore::new(
                    usize::try_from(settings.max_lingering_feeds)
                        .unwrap_or(usize::MAX)
                        .min(Semaphore::MAX_PERMITS),
                )),
                shutdown,
                feeds: Mutex::new(HashMap::new()),
                users: Arc::new(UserStreams::default()),
            }),
        })
    }

    /// Serves one SSE client: authorised alone, then from the shared feed
    /// (or a private subscription, see the module docs).
    pub async fn follow(&self, follow: Follow, mut slot: StreamSlot) -> Result<Response, ApiError> {
        let Follow {
            stream_id,
            after,
            token,
            request_id,
        } = follow;
        let grant = self
            .inner
            .chat
            .authorize_subscription(stream_id.clone(), &token, &request_id)
            .await?;
        // chat-service's per-user cap, which no longer sees this client (0:
        // a chat-service that does not say, so no cap here).
        if !grant.user_id.is_empty() && grant.max_subscriptions_per_user > 0 {
            let cap = usize::try_from(grant.max_subscriptions_per_user).unwrap_or(usize::MAX);
            slot.hold(self.inner.users.admit(&grant.user_id, cap)?);
        }
        let valid_until = grant.valid_until.as_ref().map_or(i64::MIN, |at| {
            at.seconds.saturating_mul(1_000) + i64::from(at.nanos / 1_000_000)
        });
        // Where a subscription accepted now starts: chat-service's clock.
        let Some(accepted) = Position::parse(&grant.start_cursor) else {
            return Err(ApiError::Internal(format!(
                "chat-service sent an acceptance cursor that is not a position: {:?}",
                grant.start_cursor
            )));
        };
        let (cursor, start) = match after {
            Some(cursor) => match Position::parse(&cursor) {
                Some(start) => (cursor, start),
                // chat-service decides (a 400, as before).
                None => {
                    return self
                        .private(stream_id, Some(cursor), &token, &request_id, slot)
                        .await;
                }
            },
            None => (grant.start_cursor.clone(), accepted),
        };
        // A feed opened for this client starts at its cursor (so that the
        // clients of a reconnect storm find theirs in the ring), but never
        // after "now" (a cursor from the future would leave everyone else
        // outside the ring), and not for a cursor older than
        // `OPEN_AT_MOST_BEHIND` (its replay could exceed chat-service's
        // limit and end the feed for everyone with a gap): that client goes
        // private and the next one opens the feed.
        //
        // And a little before that (`OPEN_EARLIER_MS`): viewers arriving
        // together, or a reconnect storm, reach chat-service in one order
        // and this registry in another; a client accepted (or resuming) just
        // before the feed's opener would otherwise find its start outside
        // the ring and hold a private subscription for its whole life. The
        // opener skips what it has seen, by position, as every joiner does.
        let open_at = if start > accepted {
            Some(accepted)
        } else if start.created_ms >= accepted.created_ms.saturating_sub(OPEN_AT_MOST_BEHIND_MS) {
            Some(start)
        } else {
            None
        }
        .map(|position| {
            let earlier = position.earlier_by(OPEN_EARLIER_MS);
            (earlier.cursor(), earlier)
        });
        let key = stream_id.to_ascii_lowercase();
        let (feed, seq, opened_at) = match self.join(&key, start, open_at) {
            Joined::Feed(feed, seq) => (feed, seq, None),
            Joined::Created(feed, seq, opened_at) => (feed, seq, Some(opened_at)),
            Joined::NotCovered => {
                tracing::info!("resume older than the edge's ring: a private subscription");
                return self
                    .private(stream_id, Some(cursor), &token, &request_id, slot)
                    .await;
            }
        };
        let client_start = Start {
            seq,
            after: start,
            cursor,
            valid_until_ms: valid_until,
            expires: deadline(valid_until),
        };
        // Attached: from here the client counts, and leaving detaches it.
        let client = Client::new(
            Arc::clone(&feed),
            client_start,
            slot,
            self.inner.shutdown.clone(),
        );
        let opened = opened_at.is_some();
        if let Some(opened_at) = opened_at {
            self.open_upstream(feed, stream_id, opened_at, request_id)
                .await?;
        }
        tracing::info!(opened_feed = opened, "following the shared feed");
        Ok(respond(client))
    }

    /// The stream's feed with the client attached after `start`, else a new
    /// feed starting at `open_at` (if given), else `NotCovered`.
    fn join(&self, key: &str, start: Position, open_at: Option<(String, Position)>) -> Joined {
        let mut feeds = self.feeds();
        if let Some(feed) = feeds.get(key) {
            return match feed.attach(start) {
                Some(seq) => Joined::Feed(Arc::clone(feed), seq),
                None => Joined::NotCovered,
            };
        }
        let Some((cursor, position)) = open_at else {
            return Joined::NotCovered;
        };
        let feed = Feed::new(key.to_owned(), position, self.inner.ring);
        let Some(seq) = feed.attach(start) else {
            return Joined::NotCovered;
        };
        feeds.insert(key.to_owned(), Arc::clone(&feed));
        Joined::Created(feed, seq, cursor)
    }

    /// Starts `feed`'s upstream after `cursor` with the edge's token, then
    /// its task. In a task of its own, so that it finishes even if this
    /// client leaves meanwhile (others may have joined). A refusal ends the
    /// feed (its other clients get the `error`) and is this client's answer:
    /// 503 when chat-service refuses the edge's own token (a configuration
    /// fault, logged), else as mapped.
    async fn open_upstream(
        &self,
        feed: Arc<Feed>,
        stream_id: String,
        cursor: String,
        request_id: RequestId,
    ) -> Result<(), ApiError> {
        let request = SubscribeMessagesRequest {
            stream_id,
            after: Some(cursor),
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let fanout = self.clone();
        tokio::spawn(async move {
            let inner = &fanout.inner;
            let opened = inner
                .chat
                .subscribe_messages(request, inner.token.bearer(), &request_id)
                .await;
            match opened {
                Ok(upstream) => {
                    let _ = answer.send(Ok(()));
                    let (shutdown, linger) = (inner.shutdown.clone(), inner.linger);
                    feed::run(feed, upstream, fanout, shutdown, linger).await;
                }
                Err(error) => {
                    let error = feed::upstream_error(error);
                    fanout.remove(&feed);
                    feed.end(FeedEnd::Failed(frame::error(&error)));
                    let _ = answer.send(Err(error));
                }
            }
        });
        answered.await.unwrap_or_else(|_| {
            Err(ApiError::Internal(
                "the task opening a shared feed ended without an answer".to_owned(),
            ))
        })
    }

    /// Today's relay: a subscription of the client's own.
    async fn private(
        &self,
        stream_id: String,
        after: Option<String>,
        token: &BearerToken,
        request_id: &RequestId,
        slot: StreamSlot,
    ) -> Result<Response, ApiError> {
        let request = SubscribeMessagesRequest { stream_id, after };
        let events = self
            .inner
            .chat
            .subscribe_messages(request, token, request_id)
            .await?;
        Ok(event_stream::respond(events, slot))
    }

    /// A place for a feed to linger without a client, if one is free.
    fn linger_place(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.inner.lingering).try_acquire_owned().ok()
    }

    /// Removes `feed` from the registry if it has no client (the linger is
    /// over); `true` if it did.
    fn retire_if_idle(&self, feed: &Arc<Feed>) -> bool {
        let mut feeds = self.feeds();
        if !feed.retire_if_idle() {
            return false;
        }
        if feeds
            .get(&feed.stream_id)
            .is_some_and(|current| Arc::ptr_eq(current, feed))
        {
            feeds.remove(&feed.stream_id);
        }
        true
    }

    /// Removes `feed` (it ended): the next client opens a new one.
    fn remove(&self, feed: &Arc<Feed>) {
        let mut feeds = self.feeds();
        feed.retire();
        if feeds
            .get(&feed.stream_id)
            .is_some_and(|current| Arc::ptr_eq(current, feed))
        {
            feeds.remove(&feed.stream_id);
        }
    }

    fn feeds(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Feed>>> {
        self.inner
            .feeds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

enum Joined {
    Feed(Arc<Feed>, u64),
    /// With the cursor its upstream starts after.
    Created(Arc<Feed>, u64, String),
    NotCovered,
}

/// The instant `valid_until_ms` (wall clock) will be on the runtime's clock.
fn deadline(valid_until_ms: i64) -> tokio::time::Instant {
    let left_ms = valid_until_ms.saturating_sub(Utc::now().timestamp_millis());
    let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
    tokio::time::Instant::now() + left
}

/// The 200 response: the same headers as the relay's.
fn respond(client: Client) -> Response {
    let body = Body::from_stream(client.into_body());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response()
}
