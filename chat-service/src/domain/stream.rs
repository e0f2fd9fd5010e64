//! A stream's chat: who owns it, who moderates it, whether it is open, and
//! its slow mode. The permission rules live here, beside the data they read.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{StreamId, UserId};

/// Whether a stream's chat takes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatState {
    Open,
    /// Closed by the stream service; may be reopened.
    Closed,
    /// The stream ended; its chat is closed for good.
    Ended,
}

/// What a user is in one stream's chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Moderator,
    Owner,
}

impl Role {
    /// Owner and moderators: exempt from slow mode, may ban.
    pub fn is_privileged(self) -> bool {
        self != Role::Viewer
    }
}

/// The longest slow mode: 120 s between one user's messages.
pub const MAX_SLOW_MODE_SECS: u32 = 120;

/// Minimum time between two messages of one (non-privileged) user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlowMode(u32);

impl SlowMode {
    /// 0 turns slow mode off; at most [`MAX_SLOW_MODE_SECS`].
    pub fn parse(seconds: u32) -> Result<Self, String> {
        if seconds > MAX_SLOW_MODE_SECS {
            return Err(format!(
                "must be between 0 (off) and {MAX_SLOW_MODE_SECS} seconds, got {seconds}"
            ));
        }
        Ok(Self(seconds))
    }

    pub fn seconds(self) -> u32 {
        self.0
    }

    pub fn interval(self) -> Option<Duration> {
        (self.0 > 0).then(|| Duration::from_secs(u64::from(self.0)))
    }
}

/// The chat of one registered stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChat {
    pub id: StreamId,
    pub owner: UserId,
    pub state: ChatState,
    pub slow_mode: SlowMode,
    pub moderators: BTreeSet<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why one user may not act on another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModerationDenied {
    #[error("only the stream's owner and moderators may ban or unban")]
    NotAModerator,
    #[error("only the stream's owner may appoint or remove moderators")]
    NotTheOwner,
    #[error("the stream's owner cannot be banned")]
    TargetIsOwner,
    #[error("a moderator cannot ban another moderator")]
    TargetIsModerator,
}

impl StreamChat {
    /// A newly registered stream: open, no slow mode, no moderators.
    pub fn new(id: StreamId, owner: UserId, now: DateTime<Utc>) -> Self {
        Self {
            id,
            owner,
            state: ChatState::Open,
            slow_mode: SlowMode::default(),
            moderators: BTreeSet::new(),
            created_at: now,
            updated_at: now,
        }
    }

    pub fn role_of(&self, user: UserId) -> Role {
        if user == self.owner {
            Role::Owner
        } else if self.moderators.contains(&user) {
            Role::Moderator
        } else {
            Role::Viewer
        }
    }

    /// Whether `actor` may ban (or unban) `target` here.
    pub fn may_ban(&self, actor: UserId, target: UserId) -> Result<(), ModerationDenied> {
        let actor_role = self.role_of(actor);
        if !actor_role.is_privileged() {
            return Err(ModerationDenied::NotAModerator);
        }
        match self.role_of(target) {
            Role::Owner => Err(ModerationDenied::TargetIsOwner),
            Role::Moderator if actor_role != Role::Owner => {
                Err(ModerationDenied::TargetIsModerator)
            }
            _ => Ok(()),
        }
    }

    /// Whether `actor` may lift a ban here (owner and moderators).
    pub fn may_unban(&self, actor: UserId) -> Result<(), ModerationDenied> {
        if self.role_of(actor).is_privileged() {
            Ok(())
        } else {
            Err(ModerationDenied::NotAModerator)
        }
    }

    /// Whether `actor` may change the moderators (the owner only).
    pub fn may_manage_moderators(&self, actor: UserId) -> Result<(), ModerationDenied> {
        if self.role_of(actor) == Role::Owner {
            Ok(())
        } else {
            Err(ModerationDenied::NotTheOwner)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8) -> UserId {
        UserId::parse(&format!("{n:024x}")).expect("valid id")
    }

    fn stream_with_moderator() -> StreamChat {
        let mut stream = StreamChat::new(
            StreamId::parse("64d15f9e2e6c8f4d5a123000").expect("id"),
            user(1),
            Utc::now(),
        );
        stream.moderators.insert(user(2));
        stream.moderators.insert(user(3));
        stream
    }

    #[test]
    fn roles_follow_ownership_and_appointment() {
        let stream = stream_with_moderator();
        assert_eq!(stream.role_of(user(1)), Role::Owner);
        assert_eq!(stream.role_of(user(2)), Role::Moderator);
        assert_eq!(stream.role_of(user(9)), Role::Viewer);
    }

    #[test]
    fn a_viewer_cannot_ban_anyone() {
        let stream = stream_with_moderator();
        assert_eq!(
            stream.may_ban(user(9), user(8)),
            Err(ModerationDenied::NotAModerator)
        );
    }

    #[test]
    fn nobody_can_ban_the_owner() {
        let stream = stream_with_moderator();
        assert_eq!(
            stream.may_ban(user(2), user(1)),
            Err(ModerationDenied::TargetIsOwner)
        );
        assert_eq!(
            stream.may_ban(user(1), user(1)),
            Err(ModerationDenied::TargetIsOwner)
        );
    }

    #[test]
    fn a_moderator_cannot_ban_another_moderator_but_the_owner_can() {
        let stream = stream_with_moderator();
        assert_eq!(
            stream.may_ban(user(2), user(3)),
            Err(ModerationDenied::TargetIsModerator)
        );
        assert_eq!(stream.may_ban(user(1), user(3)), Ok(()));
    }

    #[test]
    fn moderators_and_the_owner_can_ban_viewers() {
        let stream = stream_with_moderator();
        assert_eq!(stream.may_ban(user(2), user(9)), Ok(()));
        assert_eq!(stream.may_ban(user(1), user(9)), Ok(()));
    }

    #[test]
    fn only_the_owner_manages_moderators() {
        let stream = stream_with_moderator();
        assert_eq!(stream.may_manage_moderators(user(1)), Ok(()));
        assert_eq!(
            stream.may_manage_moderators(user(2)),
            Err(ModerationDenied::NotTheOwner)
        );
    }

    #[test]
    fn slow_mode_is_off_at_zero_and_capped_at_120_seconds() {
        assert_eq!(SlowMode::parse(0).map(SlowMode::interval), Ok(None));
        assert_eq!(
            SlowMode::parse(120).map(SlowMode::interval),
            Ok(Some(Duration::from_secs(120)))
        );
        assert!(SlowMode::parse(121).is_err());
    }
}
