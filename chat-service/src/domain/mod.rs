//! Domain types. Untrusted input is parsed into these once, at the boundary
//! (the gRPC handlers); everything inside the service works with values that
//! are already known to be valid.

mod characters;
mod content;
mod cursor;
mod event;
mod idempotency_key;
mod ids;
mod message;
mod moderation;
mod object_id;
mod profile;
mod rate_quota;
mod stream;

pub use content::{ContentError, MAX_CONTENT_CHARS, MessageContent};
pub use cursor::{Cursor, CursorError, Position};
pub use event::{ModerationEvent, ModerationKind, StreamEvent};
pub use idempotency_key::{IdempotencyKey, IdempotencyKeyError, MAX_IDEMPOTENCY_KEY_LEN};
pub use ids::{MessageId, StreamId, UserId};
pub use message::{ChatMessage, ProfilePhoto, Sender, truncate_to_millis};
pub use moderation::{
    Ban, MAX_REASON_CHARS, MAX_TIMEOUT_SECS, describe_ban_end, parse_reason, parse_timeout_seconds,
};
pub use object_id::{ObjectId, ObjectIdError, ObjectIdGenerator};
pub use profile::{MAX_PROFILE_TEXT_CHARS, UserProfile, parse_profile_text};
pub use rate_quota::{RateQuota, whole_seconds_up};
pub use stream::{ChatState, MAX_SLOW_MODE_SECS, ModerationDenied, Role, SlowMode, StreamChat};
