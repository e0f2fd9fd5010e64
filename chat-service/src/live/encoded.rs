//! Events as subscribers receive them: encoded once, shared by all.
//!
//! A feed encodes each event it publishes (protobuf `ChatEvent`) once, when
//! it publishes it; every subscriber of the stream then sends those same
//! bytes ([`Outgoing::Shared`]: a reference count, no copy of the event and
//! no encoding per subscriber). Only what differs per subscriber (a replay
//! after its cursor, its gap) is encoded for that subscriber alone
//! ([`Outgoing::Own`]). The gRPC codec of `SubscribeMessages`
//! (`grpc::event_codec`) writes either into the response; the wire bytes
//! are the ones prost would have produced for the same event.

use allmine_chat_proto::v1 as pb;
use bytes::Bytes;
use prost::Message;

use crate::domain::{Position, StreamEvent};

/// An event of a feed, encoded: what its broadcast carries.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub position: Position,
    /// The protobuf encoding of the event's `ChatEvent` (no gRPC framing:
    /// the codec adds that, with compression if a call asked for it).
    pub encoded: Bytes,
}

impl LiveEvent {
    /// Converts and encodes `event`: the one encoding its subscribers share.
    pub fn encode(event: StreamEvent) -> Self {
        let position = event.position();
        Self {
            position,
            encoded: Bytes::from(pb::ChatEvent::from(event).encode_to_vec()),
        }
    }
}

/// One event for one subscriber.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A feed's event: the bytes every subscriber of the stream shares.
    Shared(Bytes),
    /// This subscriber's own (replayed events, a gap), encoded as it is sent.
    Own(Box<pb::ChatEvent>),
}

impl Outgoing {
    pub fn own(event: pb::ChatEvent) -> Self {
        Self::Own(Box::new(event))
    }

    /// The event itself, decoded again if it is shared. Only for paths that
    /// need the message rather than its bytes (the generated server's
    /// handler; tests): the wire path never decodes.
    pub fn into_event(self) -> Result<pb::ChatEvent, prost::DecodeError> {
        match self {
            Self::Shared(bytes) => pb::ChatEvent::decode(bytes),
            Self::Own(event) => Ok(*event),
        }
    }
}
