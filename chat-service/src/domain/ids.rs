//! Typed identifiers. Each wraps an [`ObjectId`] so that a stream id cannot be
//! passed where a user id is expected.

use std::fmt;

use super::object_id::{ObjectId, ObjectIdError};

macro_rules! object_id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(ObjectId);

        impl $name {
            /// Parses 24 hex digits; the only way in from untrusted input.
            pub fn parse(text: &str) -> Result<Self, ObjectIdError> {
                ObjectId::parse(text).map(Self)
            }

            pub fn object_id(&self) -> ObjectId {
                self.0
            }

            pub fn as_bytes(&self) -> &[u8; 12] {
                self.0.as_bytes()
            }
        }

        impl From<ObjectId> for $name {
            fn from(id: ObjectId) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(formatter)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

object_id_newtype!(
    /// A live stream's id.
    StreamId
);
object_id_newtype!(
    /// A user's id: the `sub` claim of their token.
    UserId
);
object_id_newtype!(
    /// A chat message's id, made by chat-service when it accepts the message.
    MessageId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_id_parses_from_an_object_id_string() {
        let id = StreamId::parse("64d15f9e2e6c8f4d5a123000").expect("valid");
        assert_eq!(id.to_string(), "64d15f9e2e6c8f4d5a123000");
        assert_eq!(format!("{id:?}"), "StreamId(64d15f9e2e6c8f4d5a123000)");
    }

    #[test]
    fn a_user_id_that_is_not_an_object_id_is_rejected() {
        assert!(UserId::parse("johndoe").is_err());
    }
}
