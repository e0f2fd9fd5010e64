//! A subscription lasts as long as the token that opened it.
//!
//! A live stream is authorised once, when it opens; without this, a token
//! that expired (or that its issuer stopped renewing) would keep receiving
//! the chat for as long as the connection lasts, while the same token is
//! refused on every other call. So the subscription ends with
//! UNAUTHENTICATED "token has expired" at the token's `valid_until`, the
//! moment the verifier starts refusing it; the client signs in again and
//! resumes from its last cursor.
//!
//! The deadline is a timer polled with the subscription's stream, not a task
//! per subscriber: an idle subscriber, or one being replayed to, is ended on
//! time as well as one receiving events.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use tonic::Status;

use crate::auth::AuthError;
use crate::domain::StreamId;
use crate::error::ChatError;

/// A subscription's events, whatever form they take (`EventStream`'s).
pub type Events<T> = std::pin::Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// `events` of `stream`, ended at `valid_until` with UNAUTHENTICATED "token
/// has expired".
pub fn until_token_expires<T: Send + 'static>(
    events: Events<T>,
    stream: StreamId,
    valid_until: DateTime<Utc>,
) -> Events<T> {
    // A deadline already past fires at the first poll. `sleep` caps a
    // duration beyond its range to "far in the future", so any time fits.
    let remaining = (valid_until - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let mut expires = Box::pin(tokio::time::sleep(remaining));
    let mut events = Some(events);
    Box::pin(futures::stream::poll_fn(move |context| {
        let Some(live) = events.as_mut() else {
            return Poll::Ready(None);
        };
        // The deadline first: once it has passed, nothing more is
        // delivered, even if events are ready. Polling the timer wakes an
        // idle subscription at the deadline; the clock is read as well
        // because the timer fires only at the driver's next tick after it
        // (a deadline already past is not ready at the first poll).
        let expired = expires.as_mut().poll(context).is_ready()
            || tokio::time::Instant::now() >= expires.deadline();
        if expired {
            // Dropping the subscription now frees its place in the feed at
            // once, whether or not the client reads the error.
            events = None;
            tracing::info!(%stream, "token expired; ending the subscription");
            return Poll::Ready(Some(Err(Status::from(ChatError::Unauthenticated(
                AuthError::Expired,
            )))));
        }
        live.as_mut().poll_next(context)
    }))
}

#[cfg(test)]
mod tests {
    use allmine_chat_proto::v1 as pb;
    use futures::StreamExt;
    use tonic::Code;

    use super::*;

    /// A hang detector, not a timing assertion.
    const WAIT: Duration = Duration::from_secs(10);

    fn stream_id() -> StreamId {
        StreamId::parse("64d15f9e2e6c8f4d5a123000").expect("valid id")
    }

    fn event(cursor: &str) -> Result<pb::ChatEvent, Status> {
        Ok(pb::ChatEvent {
            cursor: cursor.to_owned(),
            event: None,
        })
    }

    fn assert_expired(item: Option<Result<pb::ChatEvent, Status>>) {
        let status = item.expect("an item").expect_err("an error");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "token has expired");
    }

    #[tokio::test]
    async fn events_flow_until_the_token_expires() {
        let events: Events<pb::ChatEvent> =
            Box::pin(futures::stream::iter([event("1"), event("2")]));
        let valid_until = Utc::now() + chrono::TimeDelta::hours(1);
        let mut stream = until_token_expires(events, stream_id(), valid_until);
        assert_eq!(
            stream.next().await.expect("an item").expect("ok").cursor,
            "1"
        );
        assert_eq!(
            stream.next().await.expect("an item").expect("ok").cursor,
            "2"
        );
        assert!(stream.next().await.is_none(), "ends when its events end");
    }

    #[tokio::test]
    async fn an_idle_subscription_ends_when_its_token_expires() {
        let idle: Events<pb::ChatEvent> = Box::pin(futures::stream::pending());
        let valid_until = Utc::now() + chrono::TimeDelta::milliseconds(200);
        let mut stream = until_token_expires(idle, stream_id(), valid_until);
        let item = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("ends without any event");
        assert!(Utc::now() >= valid_until, "not before the token expired");
        assert_expired(item);
        assert!(stream.next().await.is_none(), "and then ends");
    }

    #[tokio::test]
    async fn nothing_is_delivered_after_expiry_even_when_events_are_ready() {
        let ready: Events<pb::ChatEvent> = Box::pin(futures::stream::repeat_with(|| event("x")));
        let valid_until = Utc::now() - chrono::TimeDelta::seconds(1);
        let mut stream = until_token_expires(ready, stream_id(), valid_until);
        assert_expired(stream.next().await);
        assert!(stream.next().await.is_none());
    }
}
