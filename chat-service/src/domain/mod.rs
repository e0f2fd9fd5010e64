//! Domain types. Untrusted input is parsed into these once, at the boundary
//! (the gRPC handlers); everything inside the service works with values that
//! are already known to be valid.

mod content;
mod ids;
mod message;
mod object_id;

pub use content::{ContentError, MAX_CONTENT_CHARS, MessageContent};
pub use ids::{MessageId, StreamId, UserId};
pub use message::{ChatMessage, ProfilePhoto, Sender, truncate_to_millis};
pub use object_id::{ObjectId, ObjectIdError, ObjectIdGenerator};
