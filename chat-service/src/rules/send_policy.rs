//! Whether a user may send to a stream now, and as whom; and, once the
//! message is stored, recording it for slow mode. The policy owns slow mode
//! both ways (read when admitting, written after the send), so both use the
//! same time.
//!
//! Checks, in order (the first failure answers): the stream is registered
//! (STREAM_NOT_REGISTERED), its chat is open (CHAT_CLOSED, STREAM_ENDED), the
//! sender is not banned (BANNED), slow mode (SLOW_MODE; owner and moderators
//! exempt), the burst limit (BURST_LIMIT). Nothing is stored for a refused
//! message.
//!
//! One clock reading per send: the `now` given to [`SendPolicy::admit`]
//! decides ban expiry, slow mode and the burst limit, and is what slow mode
//! records. (The message's creation time is the live hub's: it must be read
//! under the hub's in-flight lock, see `live::inflight`.)

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{BurstLimiter, BurstSettings};
use crate::auth::Identity;
use crate::domain::{ChatState, RateQuota, Role, Sender, StreamChat, StreamId, UserId};
use crate::error::{ChatError, RateRule};
use crate::lookup::registered_stream;
use crate::storage::SharedStore;

/// What an admitted send needs to know.
#[derive(Debug)]
pub struct SendVerdict {
    /// The sender snapshot: the stored profile, else the token's claims.
    pub sender: Sender,
    /// What the sender's rate limits allow after this message: the tighter
    /// of the burst limit and (when it applies) slow mode.
    pub quota: RateQuota,
    /// What to record once the message is stored: give it to
    /// [`SendPolicy::record_sent`].
    pub record: SendRecord,
}

/// What slow mode must remember of an admitted send (nothing when slow mode
/// is off or the sender is exempt).
#[derive(Debug)]
pub struct SendRecord(Option<SlowModeSend>);

#[derive(Debug)]
struct SlowModeSend {
    stream_id: StreamId,
    user: UserId,
    at: DateTime<Utc>,
    /// How long the record matters: the slow-mode interval.
    keep_for: Duration,
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

    /// Admits a send received at `now`, or says which rule refuses it.
    pub async fn admit(
        &self,
        stream_id: StreamId,
        identity: &Identity,
        now: DateTime<Utc>,
    ) -> Result<SendVerdict, ChatError> {
        let stream = registered_stream(&self.store, &stream_id).await?;
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
            return Err(ChatError::Banned {
                until: ban.expires_at,
            });
        }
        // Slow mode's wait, if the sender must still wait.
        let slow_wait = match (slow_mode, last_sent) {
            (Some(interval), Some(last_sent)) => {
                let elapsed = (now - last_sent).to_std().unwrap_or_default();
                interval.checked_sub(elapsed).filter(|wait| !wait.is_zero())
            }
            _ => None,
        };
        if let (Some(interval), Some(retry_after)) = (slow_mode, slow_wait) {
            let quota =
                slow_mode_quota(retry_after).tighter(self.burst.quota(stream_id, user, role, now));
            return Err(ChatError::RateLimited {
                rule: RateRule::SlowMode,
                message: format!(
                    "slow mode is on: one message every {} s; retry after {}",
                    interval.as_secs(),
                    retry_at(now, retry_after)
                ),
                retry_after,
                quota,
            });
        }
        let burst_quota = match self.burst.try_acquire(stream_id, user, role, now) {
            Ok(quota) => quota,
            Err(refusal) => {
                let quota = match slow_mode {
                    Some(_) => refusal.quota.tighter(slow_mode_quota(Duration::ZERO)),
                    None => refusal.quota,
                };
                return Err(ChatError::RateLimited {
                    rule: RateRule::Burst,
                    message: format!(
                        "too many messages: at most {} per {} s; retry after {}",
                        self.burst_settings.limit_for(role),
                        self.burst_settings.window.as_secs(),
                        retry_at(now, refusal.retry_after)
                    ),
                    retry_after: refusal.retry_after,
                    quota,
                });
            }
        };
        // After this message, slow mode (when it applies) allows the next
        // one a whole interval from now.
        let quota = match slow_mode {
            Some(interval) => burst_quota.tighter(slow_mode_quota(interval)),
            None => burst_quota,
        };

        let sender = match profile {
            Some(profile) => profile.to_sender(),
            None => Sender {
                username: identity.username.clone(),
                name: identity.name.clone(),
                surname: identity.surname.clone(),
                ..Sender::anonymous(user)
            },
        };
        Ok(SendVerdict {
            sender,
            quota,
            record: SendRecord(slow_mode.map(|keep_for| SlowModeSend {
                stream_id,
                user,
                at: now,
                keep_for,
            })),
        })
    }

    /// Records an admitted send that was stored, for slow mode. The message
    /// is durable and will be acknowledged: a failure here only weakens slow
    /// mode for one message, so it is logged, not returned.
    pub async fn record_sent(&self, record: SendRecord) {
        let Some(send) = record.0 else {
            return;
        };
        if let Err(error) = self
            .store
            .record_sent(&send.stream_id, &send.user, send.at, send.keep_for)
            .await
        {
            tracing::warn!(%error, "could not record the send for slow mode");
        }
    }
}

/// Slow mode as a rate-limit quota: one message per interval, available
/// again after `wait`.
fn slow_mode_quota(wait: Duration) -> RateQuota {
    RateQuota {
        limit: 1,
        remaining: u32::from(wait.is_zero()),
        reset: wait,
    }
}

fn ensure_open(stream: &StreamChat) -> Result<(), ChatError> {
    match stream.state {
        ChatState::Open => Ok(()),
        ChatState::Closed => Err(ChatError::ChatClosed),
        ChatState::Ended => Err(ChatError::StreamEnded(
            "this stream has ended; its chat is closed",
        )),
    }
}

fn retry_at(now: DateTime<Utc>, retry_after: Duration) -> String {
    let at = now + chrono::Duration::from_std(retry_after).unwrap_or_default();
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Shared so that handlers can hold it cheaply.
pub type SharedPolicy = Arc<SendPolicy>;
