//! Message records: the whole message (the embedded store's messages, both
//! stores' idempotent sends) and the sender's photo (also a ScyllaDB column
//! of its own).

use std::collections::BTreeMap;

use prost::Message;

use super::{RECORD_VERSION, Record, RecordError, TimeRecord, invalid, required_time};
use crate::domain::{
    ChatMessage, MessageContent, MessageId, ProfilePhoto, Sender, StreamId, UserId,
};

/// Tags as `allmine.chat.v1.ChatMessage` had them; its tag 7 (the cursor)
/// was never stored: it is derived from the key.
#[derive(Clone, PartialEq, Message)]
pub struct MessageRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub stream_id: String,
    #[prost(string, tag = "3")]
    pub content: String,
    #[prost(message, optional, tag = "4")]
    pub sender: Option<SenderRecord>,
    #[prost(message, optional, tag = "5")]
    pub created_at: Option<TimeRecord>,
    #[prost(message, optional, tag = "6")]
    pub updated_at: Option<TimeRecord>,
    #[prost(uint32, tag = "15")]
    pub version: u32,
}

/// Tags as `allmine.chat.v1.Sender` had them.
#[derive(Clone, PartialEq, Message)]
pub struct SenderRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, optional, tag = "2")]
    pub username: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub surname: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub profile_photo: Option<PhotoRecord>,
    #[prost(string, optional, tag = "6")]
    pub availability_status: Option<String>,
}

/// Tags as `allmine.chat.v1.ProfilePhoto` had them. `version` is set only
/// where the photo is a record of its own (ScyllaDB's photo columns).
#[derive(Clone, PartialEq, Message)]
pub struct PhotoRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub url: String,
    #[prost(string, tag = "3")]
    pub media_type: String,
    /// A sorted map, so that equal photos encode to equal bytes.
    #[prost(btree_map = "string, string", tag = "4")]
    pub variants: BTreeMap<String, String>,
    #[prost(message, optional, tag = "5")]
    pub created_at: Option<TimeRecord>,
    #[prost(message, optional, tag = "6")]
    pub updated_at: Option<TimeRecord>,
    #[prost(uint32, tag = "15")]
    pub version: u32,
}

impl Record for ChatMessage {
    const KIND: &'static str = "message";
    type Stored = MessageRecord;

    fn to_stored(&self) -> MessageRecord {
        MessageRecord {
            id: self.id.to_string(),
            stream_id: self.stream_id.to_string(),
            content: self.content.as_str().to_owned(),
            sender: Some(SenderRecord::new(&self.sender)),
            created_at: Some(TimeRecord::new(self.created_at)),
            updated_at: Some(TimeRecord::new(self.updated_at)),
            version: RECORD_VERSION,
        }
    }

    fn version(stored: &MessageRecord) -> u32 {
        stored.version
    }

    fn from_stored(record: MessageRecord) -> Result<Self, RecordError> {
        let sender = record.sender.ok_or_else(|| invalid("sender", "missing"))?;
        Ok(Self {
            id: MessageId::parse(&record.id).map_err(|error| invalid("id", error))?,
            stream_id: StreamId::parse(&record.stream_id)
                .map_err(|error| invalid("stream_id", error))?,
            content: MessageContent::parse(&record.content)
                .map_err(|error| invalid("content", error))?,
            sender: sender.into_sender()?,
            created_at: required_time("created_at", record.created_at)?,
            updated_at: required_time("updated_at", record.updated_at)?,
        })
    }
}

impl SenderRecord {
    fn new(sender: &Sender) -> Self {
        Self {
            id: sender.id.to_string(),
            username: sender.username.clone(),
            name: sender.name.clone(),
            surname: sender.surname.clone(),
            profile_photo: sender.profile_photo.as_ref().map(PhotoRecord::nested),
            availability_status: sender.availability_status.clone(),
        }
    }

    fn into_sender(self) -> Result<Sender, RecordError> {
        Ok(Sender {
            id: UserId::parse(&self.id).map_err(|error| invalid("sender.id", error))?,
            username: self.username,
            name: self.name,
            surname: self.surname,
            profile_photo: self.profile_photo.map(PhotoRecord::into_photo),
            availability_status: self.availability_status,
        })
    }
}

impl PhotoRecord {
    /// A photo inside another record (no version of its own).
    pub(super) fn nested(photo: &ProfilePhoto) -> Self {
        Self {
            id: photo.id.clone(),
            url: photo.url.clone(),
            media_type: photo.media_type.clone(),
            variants: photo.variants.clone(),
            created_at: photo.created_at.map(TimeRecord::new),
            updated_at: photo.updated_at.map(TimeRecord::new),
            version: 0,
        }
    }

    /// Photo times are the user service's metadata: one out of range reads
    /// as unknown rather than failing the message that carries the photo.
    pub(super) fn into_photo(self) -> ProfilePhoto {
        ProfilePhoto {
            id: self.id,
            url: self.url,
            media_type: self.media_type,
            variants: self.variants,
            created_at: self.created_at.and_then(TimeRecord::date_time),
            updated_at: self.updated_at.and_then(TimeRecord::date_time),
        }
    }
}

impl Record for ProfilePhoto {
    const KIND: &'static str = "profile photo";
    type Stored = PhotoRecord;

    fn to_stored(&self) -> PhotoRecord {
        PhotoRecord {
            version: RECORD_VERSION,
            ..PhotoRecord::nested(self)
        }
    }

    fn version(stored: &PhotoRecord) -> u32 {
        stored.version
    }

    fn from_stored(record: PhotoRecord) -> Result<Self, RecordError> {
        Ok(record.into_photo())
    }
}
