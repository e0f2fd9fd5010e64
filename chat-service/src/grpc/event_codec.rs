//! The codec of `SubscribeMessages` responses: writes a feed's event as the
//! bytes the feed encoded once for all its subscribers
//! ([`Outgoing::Shared`]), and encodes only a subscriber's own events
//! (replay, gap) with prost, as the generated codec would. Requests are
//! decoded by prost as usual. The wire format is unchanged: tonic frames
//! (and, if a call asked for it, compresses) each message either way, and
//! the shared bytes are exactly prost's encoding of the event.

use allmine_chat_proto::v1 as pb;
use bytes::BufMut;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::live::encoded::Outgoing;

#[derive(Debug, Default, Clone, Copy)]
pub struct EventCodec;

impl Codec for EventCodec {
    type Encode = Outgoing;
    type Decode = pb::SubscribeMessagesRequest;
    type Encoder = EventEncoder;
    type Decoder = ProstDecoder<pb::SubscribeMessagesRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        EventEncoder(ProstEncoder::new(BufferSettings::default()))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}

pub struct EventEncoder(ProstEncoder<pb::ChatEvent>);

impl Encoder for EventEncoder {
    type Item = Outgoing;
    type Error = Status;

    fn encode(&mut self, item: Outgoing, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            // A copy of a few hundred bytes into the response's buffer: the
            // frame is assembled there, with its header, per subscriber.
            Outgoing::Shared(bytes) => {
                dst.put_slice(&bytes);
                Ok(())
            }
            Outgoing::Own(event) => self.0.encode(*event, dst),
        }
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
