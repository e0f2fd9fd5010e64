//! Caps on open subscriptions: per connection
//! (`CHAT_MAX_SUBSCRIPTIONS_PER_CONNECTION`) and per user
//! (`CHAT_MAX_SUBSCRIPTIONS_PER_USER`, a user being the token's `sub`).
//! Over either, `SubscribeMessages` answers RESOURCE_EXHAUSTED naming the
//! limit. A subscription is cheap (no task, ~8 KiB) but not free, and one
//! token or one connection must not be able to open them without end.
//!
//! A connection is its peer address (one TCP connection, one address).
//! http-edge multiplexes its SSE clients over a few connections, so the
//! per-connection cap is far above what one client needs; the per-user cap
//! is what stops one viewer.
//!
//! Counting is by [`SubscriptionSlot`], a guard that lives inside the
//! response stream ([`SubscriptionSlot::hold`]): whatever ends the stream
//! (the client cancels, a gap, an error, shutdown, the connection breaking)
//! drops it and gives the room back.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;

use super::subscription::EventStream;
use crate::domain::UserId;
use crate::error::ChatError;

#[derive(Debug, Clone, Copy)]
pub struct SubscriptionCaps {
    pub per_connection: usize,
    pub per_user: usize,
}

/// Open subscriptions of this instance, by connection and by user.
pub struct SubscriptionLimits {
    caps: SubscriptionCaps,
    open: Mutex<OpenCounts>,
}

#[derive(Default)]
struct OpenCounts {
    by_connection: HashMap<SocketAddr, usize>,
    by_user: HashMap<UserId, usize>,
}

impl SubscriptionLimits {
    pub fn new(caps: SubscriptionCaps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            open: Mutex::new(OpenCounts::default()),
        })
    }

    /// The caps this instance holds subscriptions to.
    pub fn caps(&self) -> SubscriptionCaps {
        self.caps
    }

    /// Room for one more subscription of `user` on `connection` (unknown
    /// when the call did not come over TCP), or the limit it would pass.
    pub fn admit(
        self: &Arc<Self>,
        connection: Option<SocketAddr>,
        user: UserId,
    ) -> Result<SubscriptionSlot, ChatError> {
        self.admit_as(connection, Some(user))
    }

    /// Room for one more subscription of an Allmine service (a `service`
    /// token: http-edge's shared feeds, one per stream it serves) on
    /// `connection`: only the per-connection cap applies, as one edge
    /// follows as many streams as its viewers watch.
    pub fn admit_service(
        self: &Arc<Self>,
        connection: Option<SocketAddr>,
    ) -> Result<SubscriptionSlot, ChatError> {
        self.admit_as(connection, None)
    }

    fn admit_as(
        self: &Arc<Self>,
        connection: Option<SocketAddr>,
        user: Option<UserId>,
    ) -> Result<SubscriptionSlot, ChatError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(user) = user
            && open.by_user.get(&user).copied().unwrap_or(0) >= self.caps.per_user
        {
            return Err(ChatError::LimitReached(format!(
                "too many live subscriptions for this user: at most {} at once",
                self.caps.per_user
            )));
        }
        if let Some(connection) = connection
            && open.by_connection.get(&connection).copied().unwrap_or(0) >= self.caps.per_connection
        {
            return Err(ChatError::LimitReached(format!(
                "too many live subscriptions on this connection: at most {} at once",
                self.caps.per_connection
            )));
        }
        if let Some(user) = user {
            *open.by_user.entry(user).or_default() += 1;
        }
        if let Some(connection) = connection {
            *open.by_connection.entry(connection).or_default() += 1;
        }
        Ok(SubscriptionSlot {
            limits: Arc::clone(self),
            connection,
            user,
        })
    }

    /// Open subscriptions of `user` (for tests and logs).
    pub fn open_for_user(&self, user: &UserId) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.by_user.get(user).copied().unwrap_or(0)
    }
}

/// One admitted subscription; dropping it gives its room back.
pub struct SubscriptionSlot {
    limits: Arc<SubscriptionLimits>,
    connection: Option<SocketAddr>,
    /// `None` for a service's subscription, which no user cap counts.
    user: Option<UserId>,
}

impl SubscriptionSlot {
    /// `events`, holding this slot until the stream is dropped.
    pub fn hold(self, events: EventStream) -> EventStream {
        Box::pin(Held {
            events,
            _slot: self,
        })
    }
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(user) = self.user {
            release(&mut open.by_user, user);
        }
        if let Some(connection) = self.connection {
            release(&mut open.by_connection, connection);
        }
    }
}

/// One less for `key`; a key at zero leaves the map, so that the maps hold
/// only what is open now.
fn release<K: Eq + Hash>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

/// A subscription's events with its slot.
struct Held {
    events: EventStream,
    _slot: SubscriptionSlot,
}

impl Stream for Held {
    type Item = <EventStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ObjectId;

    fn user(byte: u8) -> UserId {
        UserId::from(ObjectId::from_bytes([byte; 12]))
    }

    fn addr(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn limits(per_connection: usize, per_user: usize) -> Arc<SubscriptionLimits> {
        SubscriptionLimits::new(SubscriptionCaps {
            per_connection,
            per_user,
        })
    }

    #[test]
    fn a_user_over_the_cap_is_refused_and_gets_room_back_when_one_ends() {
        let limits = limits(100, 2);
        let first = limits.admit(addr(1), user(1)).expect("first");
        let _second = limits.admit(addr(2), user(1)).expect("second");
        let refused = limits.admit(addr(3), user(1));
        assert!(matches!(refused, Err(ChatError::LimitReached(ref m)) if m.contains("user")));
        // Other users are not affected.
        let _other = limits.admit(addr(1), user(2)).expect("another user");
        drop(first);
        limits.admit(addr(3), user(1)).expect("room again");
    }

    #[test]
    fn a_connection_over_the_cap_is_refused_whoever_asks() {
        let limits = limits(2, 100);
        let _first = limits.admit(addr(1), user(1)).expect("first");
        let _second = limits.admit(addr(1), user(2)).expect("second");
        let refused = limits.admit(addr(1), user(3));
        assert!(matches!(refused, Err(ChatError::LimitReached(ref m)) if m.contains("connection")));
        limits.admit(addr(2), user(3)).expect("another connection");
    }

    #[test]
    fn a_refused_subscription_takes_no_room() {
        let limits = limits(1, 1);
        let _first = limits.admit(addr(1), user(1)).expect("first");
        assert!(limits.admit(addr(2), user(1)).is_err());
        assert!(limits.admit(addr(1), user(2)).is_err());
        assert_eq!(limits.open_for_user(&user(1)), 1);
        assert_eq!(limits.open_for_user(&user(2)), 0);
    }

    #[test]
    fn counts_leave_the_maps_at_zero() {
        let limits = limits(5, 5);
        drop(limits.admit(addr(1), user(1)).expect("admitted"));
        let open = limits.open.lock().expect("lock");
        assert!(open.by_user.is_empty() && open.by_connection.is_empty());
    }
}
