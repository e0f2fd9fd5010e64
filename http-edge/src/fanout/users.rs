//! Each user's live streams at this edge, held to chat-service's per-user
//! cap.
//!
//! Behind the fan-out, a user's SSE clients are no longer subscriptions of
//! their own in chat-service, so its per-user cap
//! (`CHAT_MAX_SUBSCRIPTIONS_PER_USER`) no longer sees them: without this, one
//! viewer could open every event-stream slot of the edge
//! (`EDGE_MAX_EVENT_STREAMS`) and lock everyone else out. chat-service names
//! the user and the cap when it authorises a client
//! (`AuthorizeSubscription`); the edge counts, and refuses past the cap with
//! what chat-service would have answered (429, `SUBSCRIPTION_LIMIT`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::error::{ApiError, ERROR_DOMAIN};

/// Open event streams by user id.
#[derive(Debug, Default)]
pub struct UserStreams {
    open: Mutex<HashMap<String, usize>>,
}

/// One of a user's open streams, counted while it lives.
#[derive(Debug)]
pub struct UserSlot {
    streams: Arc<UserStreams>,
    user: String,
}

impl UserStreams {
    /// Room for one more stream of `user`, or the refusal.
    pub fn admit(self: &Arc<Self>, user: &str, cap: usize) -> Result<UserSlot, ApiError> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(user.to_owned()).or_insert(0);
        if *count >= cap {
            return Err(limit_reached(cap));
        }
        *count += 1;
        Ok(UserSlot {
            streams: Arc::clone(self),
            user: user.to_owned(),
        })
    }

    #[cfg(test)]
    fn open_for(&self, user: &str) -> usize {
        let open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        open.get(user).copied().unwrap_or(0)
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// chat-service's own refusal for the per-user cap, mapped as every
/// chat-service refusal is.
fn limit_reached(cap: usize) -> ApiError {
    ApiError::from(Status::with_error_details(
        Code::ResourceExhausted,
        format!("too many live subscriptions for this user: at most {cap} at once"),
        ErrorDetails::with_error_info(
            "SUBSCRIPTION_LIMIT",
            ERROR_DOMAIN,
            std::collections::HashMap::<String, String>::new(),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_held_to_the_cap_and_a_closed_stream_gives_its_place_back() {
        let streams = Arc::new(UserStreams::default());
        let first = streams.admit("alice", 2).expect("room");
        let _second = streams.admit("alice", 2).expect("room");
        let refused = streams.admit("alice", 2).expect_err("over the cap");
        assert_eq!(refused.status_code().as_u16(), 429);
        assert_eq!(refused.reason(), "SUBSCRIPTION_LIMIT");
        let _bob = streams
            .admit("bob", 2)
            .expect("another user is not held back");
        drop(first);
        let _again = streams.admit("alice", 2).expect("room again");
        assert_eq!(streams.open_for("alice"), 2);
    }

    #[test]
    fn the_count_is_forgotten_when_a_user_has_no_stream_left() {
        let streams = Arc::new(UserStreams::default());
        drop(streams.admit("carol", 1).expect("room"));
        assert!(streams.open.lock().expect("a lock").is_empty());
    }
}
