//! The stores' own record types: how a value that is not a plain column is
//! laid out as bytes, in the embedded store (every value) and in ScyllaDB
//! (photos, moderation events, idempotent sends' messages).
//!
//! Why the store owns them: records used to be the public protobuf messages,
//! so a change to the API contract silently changed what is on disk. These
//! structs are written by hand, owned here, and change only on purpose.
//!
//! Encoding: protobuf (prost), with the tags the public messages had, so
//! bytes written before this module existed decode unchanged and new fields
//! can be added compatibly. Fields the stores never wrote (a message's
//! cursor, an event's cursor, message or gap) have no field here; protobuf
//! skips unknown fields.
//!
//! Version: every top-level record carries [`RECORD_VERSION`] in tag 15 (the
//! last one-byte tag, kept free in every record). Absent (0) means written
//! before records carried a version, in the same layout as version 1. A
//! version above [`RECORD_VERSION`] was written by a later release in a
//! layout this build may misread, so it is refused as corruption rather than
//! read. A record inside another (a photo in a message) leaves its version
//! at 0: the enclosing record's version covers it. Because old builds skip
//! tag 15, the release before this one still reads what this one writes.

mod event;
mod message;
mod state;

use chrono::{DateTime, Utc};
use prost::Message;

use super::StorageError;

/// The record layout this build writes, and the newest it reads.
pub const RECORD_VERSION: u32 = 1;

/// A domain value stored as one record.
pub trait Record: Sized {
    /// What the record is, for corruption reports.
    const KIND: &'static str;

    /// The stored form.
    type Stored: Message + Default;

    /// The stored form, at [`RECORD_VERSION`].
    fn to_stored(&self) -> Self::Stored;

    /// The version the stored form says it has (0: none).
    fn version(stored: &Self::Stored) -> u32;

    /// The domain value, or why the stored form is not a valid one.
    fn from_stored(stored: Self::Stored) -> Result<Self, RecordError>;

    fn encode_record(&self) -> Vec<u8> {
        self.to_stored().encode_to_vec()
    }

    /// Decodes a record this or an earlier release wrote; anything else
    /// (undecodable bytes, invalid values, a newer version) is corruption.
    fn decode_record(bytes: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |error: &dyn std::fmt::Display| {
            StorageError::Corrupt(format!("{} record: {error}", Self::KIND))
        };
        let stored = Self::Stored::decode(bytes).map_err(|error| corrupt(&error))?;
        let version = Self::version(&stored);
        if version > RECORD_VERSION {
            return Err(corrupt(&format!(
                "version {version} is newer than this build reads ({RECORD_VERSION}): \
                 written by a later release?"
            )));
        }
        Self::from_stored(stored).map_err(|error| corrupt(&error))
    }
}

/// Why a stored record is not a valid domain value.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RecordError {
    field: &'static str,
    reason: String,
}

fn invalid(field: &'static str, reason: impl ToString) -> RecordError {
    RecordError {
        field,
        reason: reason.to_string(),
    }
}

/// A point in time, laid out as `google.protobuf.Timestamp` (as records
/// always were), owned here all the same.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct TimeRecord {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl TimeRecord {
    fn new(at: DateTime<Utc>) -> Self {
        Self {
            seconds: at.timestamp(),
            // Always within 0..1e9, so the cast cannot truncate.
            nanos: at.timestamp_subsec_nanos() as i32,
        }
    }

    fn date_time(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.seconds, u32::try_from(self.nanos).ok()?)
    }
}

fn required_time(
    field: &'static str,
    at: Option<TimeRecord>,
) -> Result<DateTime<Utc>, RecordError> {
    at.and_then(TimeRecord::date_time)
        .ok_or_else(|| invalid(field, "missing or out of range"))
}

#[cfg(test)]
mod tests;
