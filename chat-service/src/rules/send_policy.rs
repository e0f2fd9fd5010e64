//! Whether a user may send to a stream now, and as whom.
//!
//! Checks, in order (the first failure answers): the stream is registered
//! (NOT_FOUND), its chat is open (FAILED_PRECONDITION), the sender is not
//! banned (PERMISSION_DENIED), slow mode (RESOURCE_EXHAUSTED; owner and
//! moderators exempt), the burst limit (RESOURCE_EXHAUSTED). Nothing is
//! stored for a refused message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use super::{BurstLimiter, BurstSettings};
use crate::auth::Identity;
use crate::domain::{ChatState, Role, Sender, StreamChat, StreamId};
use crate::error::ChatError;
use crate::storage::SharedStore;

/// What an admitted send needs to know.
#[derive(Debug)]
pub struct SendVerdict {
    /// The sender snapshot: the stored profile, else the token's claims.
    pub sender: Sender,
    /// Record this send for slow mode, kept this long (`None`: slow mode off
    /// or the sender is exempt).
    pub slow_mode: Option<Duration>,
}

pub struct SendPolicy {
    store: SharedStore,
    burst: BurstLimiter,
    burst_settings: BurstSettings,
}

impl SendPolicy {
    pub fn new(store: SharedStore, burst_settings: BurstSettings) -> Self {
        Self {
            store,
            burst: BurstLimiter::new(burst_settings),
            burst_settings,
        }
    }

    pub async fn admit(
        &self,
        stream_id: StreamId,
        identity: &Identity,
        now: DateTime<Utc>,
    ) -> Result<SendVerdict, ChatError> {
        let stream = load_stream(&self.store, &stream_id).await?;
        ensure_open(&stream)?;
        let user = identity.user_id;
        let role = stream.role_of(user);
        let slow_mode = stream
            .slow_mode
            .interval()
            .filter(|_| !role.is_privileged());

        // Independent reads, concurrently. The owner cannot be banned, so
        // their ban is not looked up.
        let store = &self.store;
        let (ban, last_sent, profile) = futures::try_join!(
            async {
                if role == Role::Owner {
                    Ok(None)
                } else {
                    store.active_ban(&stream_id, &user, now).await
                }
            },
            async {
                if slow_mode.is_some() {
                    store.last_sent(&stream_id, &user).await
                } else {
                    Ok(None)
                }
            },
            store.profile(&user),
        )?;

        if let Some(ban) = ban {
            return Err(ChatError::PermissionDenied(format!(
                "you are banned from this chat {}",
                ban.describe_until()
            )));
        }
        if let (Some(interval), Some(last_sent)) = (slow_mode, last_sent) {
            let elapsed = (now - last_sent).to_std().unwrap_or_default();
            if elapsed < interval {
                let retry_after = interval - elapsed;
                return Err(ChatError::RateLimited {
                    message: format!(
                        "slow mode is on: one message every {} s; retry after {}",
                        interval.as_secs(),
                        retry_at(now, retry_after)
                    ),
                    retry_after,
                });
            }
        }
        if let Err(retry_after) = self
            .burst
            .try_acquire(stream_id, user, role, Instant::now())
        {
            let limit = if role.is_privileged() {
                self.burst_settings.privileged_limit
            } else {
                self.burst_settings.viewer_limit
            };
            return Err(ChatError::RateLimited {
                message: format!(
                    "too many messages: at most {limit} per {} s; retry after {}",
                    self.burst_settings.window.as_secs(),
                    retry_at(now, retry_after)
                ),
                retry_after,
            });
        }

        let sender = match profile {
            Some(profile) => profile.to_sender(),
            None => Sender {
                username: identity.username.clone(),
                name: identity.name.clone(),
                surname: identity.surname.clone(),
                ..Sender::anonymous(user)
            },
        };
        Ok(SendVerdict { sender, slow_mode })
    }
}

/// The registered stream, or NOT_FOUND.
pub async fn load_stream(
    store: &SharedStore,
    stream_id: &StreamId,
) -> Result<StreamChat, ChatError> {
    store.stream(stream_id).await?.ok_or_else(|| {
        ChatError::NotFound(format!("stream {stream_id} is not registered for chat"))
    })
}

fn ensure_open(stream: &StreamChat) -> Result<(), ChatError> {
    match stream.state {
        ChatState::Open => Ok(()),
        ChatState::Closed => Err(ChatError::FailedPrecondition(
            "the chat of this stream is closed".into(),
        )),
        ChatState::Ended => Err(ChatError::FailedPrecondition(
            "this stream has ended; its chat is closed".into(),
        )),
    }
}

fn retry_at(now: DateTime<Utc>, retry_after: Duration) -> String {
    let at = now + chrono::Duration::from_std(retry_after).unwrap_or_default();
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Shared so that handlers can hold it cheaply.
pub type SharedPolicy = Arc<SendPolicy>;
