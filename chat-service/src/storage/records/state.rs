//! Chat-state records of the embedded store: streams, bans, profiles (the
//! ScyllaDB store keeps these as plain columns).

use std::collections::BTreeSet;

use prost::Message;

use super::message::PhotoRecord;
use super::{RECORD_VERSION, Record, RecordError, TimeRecord, invalid, required_time};
use crate::domain::{Ban, ChatState, SlowMode, StreamChat, StreamId, UserId, UserProfile};

/// A chat state as a number: the values `allmine.chat.v1.ChatState` had
/// (0 was never stored).
pub(super) fn chat_state_number(state: ChatState) -> i32 {
    match state {
        ChatState::Open => 1,
        ChatState::Closed => 2,
        ChatState::Ended => 3,
    }
}

pub(super) fn chat_state(number: i32) -> Result<ChatState, RecordError> {
    match number {
        1 => Ok(ChatState::Open),
        2 => Ok(ChatState::Closed),
        3 => Ok(ChatState::Ended),
        other => Err(invalid("state", other)),
    }
}

/// Tags as `allmine.chat.v1.Stream` had them.
#[derive(Clone, PartialEq, Message)]
pub struct StreamRecord {
    #[prost(string, tag = "1")]
    pub stream_id: String,
    #[prost(string, tag = "2")]
    pub owner_id: String,
    #[prost(int32, tag = "3")]
    pub state: i32,
    #[prost(uint32, tag = "4")]
    pub slow_mode_seconds: u32,
    #[prost(string, repeated, tag = "5")]
    pub moderator_ids: Vec<String>,
    #[prost(message, optional, tag = "6")]
    pub created_at: Option<TimeRecord>,
    #[prost(message, optional, tag = "7")]
    pub updated_at: Option<TimeRecord>,
    #[prost(uint32, tag = "15")]
    pub version: u32,
}

impl Record for StreamChat {
    const KIND: &'static str = "stream";
    type Stored = StreamRecord;

    fn to_stored(&self) -> StreamRecord {
        StreamRecord {
            stream_id: self.id.to_string(),
            owner_id: self.owner.to_string(),
            state: chat_state_number(self.state),
            slow_mode_seconds: self.slow_mode.seconds(),
            moderator_ids: self.moderators.iter().map(ToString::to_string).collect(),
            created_at: Some(TimeRecord::new(self.created_at)),
            updated_at: Some(TimeRecord::new(self.updated_at)),
            version: RECORD_VERSION,
        }
    }

    fn version(stored: &StreamRecord) -> u32 {
        stored.version
    }

    fn from_stored(record: StreamRecord) -> Result<Self, RecordError> {
        let moderators = record
            .moderator_ids
            .iter()
            .map(|id| UserId::parse(id).map_err(|error| invalid("moderator_ids", error)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Self {
            id: StreamId::parse(&record.stream_id).map_err(|error| invalid("stream_id", error))?,
            owner: UserId::parse(&record.owner_id).map_err(|error| invalid("owner_id", error))?,
            state: chat_state(record.state)?,
            slow_mode: SlowMode::parse(record.slow_mode_seconds)
                .map_err(|error| invalid("slow_mode_seconds", error))?,
            moderators,
            created_at: required_time("created_at", record.created_at)?,
            updated_at: required_time("updated_at", record.updated_at)?,
        })
    }
}

/// Tags as `allmine.chat.v1.Ban` had them.
#[derive(Clone, PartialEq, Message)]
pub struct BanRecord {
    #[prost(string, tag = "1")]
    pub stream_id: String,
    #[prost(string, tag = "2")]
    pub user_id: String,
    /// Absent: a permanent ban.
    #[prost(message, optional, tag = "3")]
    pub expires_at: Option<TimeRecord>,
    #[prost(string, optional, tag = "4")]
    pub reason: Option<String>,
    #[prost(string, tag = "5")]
    pub banned_by: String,
    #[prost(message, optional, tag = "6")]
    pub created_at: Option<TimeRecord>,
    #[prost(uint32, tag = "15")]
    pub version: u32,
}

impl Record for Ban {
    const KIND: &'static str = "ban";
    type Stored = BanRecord;

    fn to_stored(&self) -> BanRecord {
        BanRecord {
            stream_id: self.stream_id.to_string(),
            user_id: self.user_id.to_string(),
            expires_at: self.expires_at.map(TimeRecord::new),
            reason: self.reason.clone(),
            banned_by: self.banned_by.to_string(),
            created_at: Some(TimeRecord::new(self.created_at)),
            version: RECORD_VERSION,
        }
    }

    fn version(stored: &BanRecord) -> u32 {
        stored.version
    }

    fn from_stored(record: BanRecord) -> Result<Self, RecordError> {
        let expires_at = match record.expires_at {
            // An expiry that does not read is not a permanent ban.
            Some(at) => Some(
                at.date_time()
                    .ok_or_else(|| invalid("expires_at", "out of range"))?,
            ),
            None => None,
        };
        Ok(Self {
            stream_id: StreamId::parse(&record.stream_id)
                .map_err(|error| invalid("stream_id", error))?,
            user_id: UserId::parse(&record.user_id).map_err(|error| invalid("user_id", error))?,
            expires_at,
            reason: record.reason,
            banned_by: UserId::parse(&record.banned_by)
                .map_err(|error| invalid("banned_by", error))?,
            created_at: required_time("created_at", record.created_at)?,
        })
    }
}

/// Tags as `allmine.chat.v1.UserProfile` had them.
#[derive(Clone, PartialEq, Message)]
pub struct ProfileRecord {
    #[prost(string, tag = "1")]
    pub user_id: String,
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
    #[prost(uint32, tag = "15")]
    pub version: u32,
}

impl Record for UserProfile {
    const KIND: &'static str = "profile";
    type Stored = ProfileRecord;

    fn to_stored(&self) -> ProfileRecord {
        ProfileRecord {
            user_id: self.user_id.to_string(),
            username: self.username.clone(),
            name: self.name.clone(),
            surname: self.surname.clone(),
            profile_photo: self.profile_photo.as_ref().map(PhotoRecord::nested),
            availability_status: self.availability_status.clone(),
            version: RECORD_VERSION,
        }
    }

    fn version(stored: &ProfileRecord) -> u32 {
        stored.version
    }

    fn from_stored(record: ProfileRecord) -> Result<Self, RecordError> {
        Ok(Self {
            user_id: UserId::parse(&record.user_id).map_err(|error| invalid("user_id", error))?,
            username: record.username,
            name: record.name,
            surname: record.surname,
            profile_photo: record.profile_photo.map(PhotoRecord::into_photo),
            availability_status: record.availability_status,
        })
    }
}
