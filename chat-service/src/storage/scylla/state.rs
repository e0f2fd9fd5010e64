//! Chat state in ScyllaDB: streams, bans, slow-mode bookkeeping, profiles.
//!
//! Unlike the send path, these admin writes bind explicit nulls for absent
//! values: a record is replaced whole, and a replacement must clear what the
//! previous one said (a permanent ban must not keep an old timeout's expiry).
//! The tombstones this leaves are rare: one per admin action.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::{ScyllaSettings, ScyllaStore, errors};
use crate::domain::{
    Ban, ChatState, ModerationEvent, ModerationKind, ObjectId, Position, ProfilePhoto, SlowMode,
    StreamChat, StreamId, UserId, UserProfile,
};
use crate::storage::records::Record;
use crate::storage::{ChatStateStore, InstanceWatermark, StorageError};

pub(super) struct StateStatements {
    put_event: PreparedStatement,
    events_after: PreparedStatement,
    put_stream: PreparedStatement,
    get_stream: PreparedStatement,
    put_ban: PreparedStatement,
    delete_ban: PreparedStatement,
    get_ban: PreparedStatement,
    put_last_sent: PreparedStatement,
    get_last_sent: PreparedStatement,
    put_profile: PreparedStatement,
    get_profile: PreparedStatement,
    put_watermark: PreparedStatement,
    get_watermarks: PreparedStatement,
}

/// The one partition of `live_watermarks`.
const WATERMARK_SCOPE: &str = "all";

/// How long a published watermark row lives: far beyond any lease, so that
/// only rows of instances gone for good disappear.
const WATERMARK_TTL_SECS: i32 = 600;

type StreamRow = (
    String,
    String,
    i32,
    Option<Vec<String>>,
    CqlTimestamp,
    CqlTimestamp,
);
type BanRow = (Option<CqlTimestamp>, Option<String>, String, CqlTimestamp);
type ProfileRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
);

impl StateStatements {
    pub(super) async fn prepare(
        session: &Session,
        settings: &ScyllaSettings,
    ) -> Result<Self, StorageError> {
        let keyspace = &settings.keyspace;
        let prepare = |cql: String| super::prepare_statement(session, settings, cql, true);
        Ok(Self {
            put_event: prepare(format!(
                "INSERT INTO {keyspace}.stream_events (stream_id, created_at, event_id, event) VALUES (?, ?, ?, ?)"
            ))
            .await?,
            events_after: prepare(format!(
                "SELECT created_at, event_id, event FROM {keyspace}.stream_events \
                 WHERE stream_id = ? AND (created_at, event_id) > (?, ?) LIMIT ?"
            ))
            .await?,
            put_stream: prepare(format!(
                "INSERT INTO {keyspace}.streams (stream_id, owner_id, state, slow_mode_seconds, moderator_ids, \
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            get_stream: prepare(format!(
                "SELECT owner_id, state, slow_mode_seconds, moderator_ids, created_at, updated_at \
                 FROM {keyspace}.streams WHERE stream_id = ?"
            ))
            .await?,
            put_ban: prepare(format!(
                "INSERT INTO {keyspace}.bans (stream_id, user_id, expires_at, reason, banned_by, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?) USING TTL ?"
            ))
            .await?,
            delete_ban: prepare(format!(
                "DELETE FROM {keyspace}.bans WHERE stream_id = ? AND user_id = ?"
            ))
            .await?,
            get_ban: prepare(format!(
                "SELECT expires_at, reason, banned_by, created_at FROM {keyspace}.bans \
                 WHERE stream_id = ? AND user_id = ?"
            ))
            .await?,
            put_last_sent: prepare(format!(
                "INSERT INTO {keyspace}.last_sent (stream_id, user_id, sent_at) VALUES (?, ?, ?) USING TTL ?"
            ))
            .await?,
            get_last_sent: prepare(format!(
                "SELECT sent_at FROM {keyspace}.last_sent WHERE stream_id = ? AND user_id = ?"
            ))
            .await?,
            put_profile: prepare(format!(
                "INSERT INTO {keyspace}.user_profiles (user_id, username, name, surname, profile_photo, \
                 availability_status) VALUES (?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            get_profile: prepare(format!(
                "SELECT username, name, surname, profile_photo, availability_status \
                 FROM {keyspace}.user_profiles WHERE user_id = ?"
            ))
            .await?,
            put_watermark: prepare(format!(
                "INSERT INTO {keyspace}.live_watermarks (scope, instance_id, beat, watermark_ms) \
                 VALUES (?, ?, ?, ?) USING TTL {WATERMARK_TTL_SECS}"
            ))
            .await?,
            get_watermarks: prepare(format!(
                "SELECT instance_id, beat, watermark_ms FROM {keyspace}.live_watermarks WHERE scope = ?"
            ))
            .await?,
        })
    }
}

fn state_name(state: ChatState) -> &'static str {
    match state {
        ChatState::Open => "open",
        ChatState::Closed => "closed",
        ChatState::Ended => "ended",
    }
}

fn parse_state(name: &str) -> Option<ChatState> {
    match name {
        "open" => Some(ChatState::Open),
        "closed" => Some(ChatState::Closed),
        "ended" => Some(ChatState::Ended),
        _ => None,
    }
}

fn millis(at: DateTime<Utc>) -> CqlTimestamp {
    CqlTimestamp(at.timestamp_millis())
}

fn date_time(context: &str, at: CqlTimestamp) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp_millis(at.0)
        .ok_or_else(|| StorageError::Corrupt(format!("{context}: timestamp out of range")))
}

fn corrupt(context: &str) -> StorageError {
    StorageError::Corrupt(format!("{context}: invalid value"))
}

/// A TTL in whole seconds, at least 1 (CQL reads 0 as "no expiry").
fn ttl_secs(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

impl ScyllaStore {
    /// Runs a single-row query and returns its row, if any.
    async fn single_row<R>(
        &self,
        context: &str,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Option<R>, StorageError>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
    {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(|error| errors::execution(context, error))?;
        let rows = result
            .into_rows_result()
            .map_err(|error| errors::rows(context, error))?;
        let mut typed = rows
            .rows::<R>()
            .map_err(|error| errors::typed_rows(context, error))?;
        typed
            .next()
            .transpose()
            .map_err(|error| errors::row(context, error))
    }

    async fn execute(
        &self,
        context: &str,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<(), StorageError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(|error| errors::execution(context, error))?;
        Ok(())
    }
}

#[async_trait]
impl ChatStateStore for ScyllaStore {
    async fn put_stream(&self, stream: &StreamChat) -> Result<(), StorageError> {
        let moderators: Vec<String> = stream.moderators.iter().map(ToString::to_string).collect();
        let values = (
            stream.id.to_string(),
            stream.owner.to_string(),
            state_name(stream.state),
            i32::try_from(stream.slow_mode.seconds()).unwrap_or(i32::MAX),
            moderators,
            millis(stream.created_at),
            millis(stream.updated_at),
        );
        self.execute(
            "storing a stream",
            &self.state_statements.put_stream,
            values,
        )
        .await
    }

    async fn stream(&self, stream: &StreamId) -> Result<Option<StreamChat>, StorageError> {
        let row: Option<StreamRow> = self
            .single_row(
                "reading a stream",
                &self.state_statements.get_stream,
                (stream.to_string(),),
            )
            .await?;
        let Some((owner, state, slow_mode, moderators, created_at, updated_at)) = row else {
            return Ok(None);
        };
        let moderators = moderators
            .unwrap_or_default()
            .iter()
            .map(|id| UserId::parse(id).map_err(|_| corrupt("streams.moderator_ids")))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Some(StreamChat {
            id: *stream,
            owner: UserId::parse(&owner).map_err(|_| corrupt("streams.owner_id"))?,
            state: parse_state(&state).ok_or_else(|| corrupt("streams.state"))?,
            slow_mode: u32::try_from(slow_mode)
                .ok()
                .and_then(|seconds| SlowMode::parse(seconds).ok())
                .ok_or_else(|| corrupt("streams.slow_mode_seconds"))?,
            moderators,
            created_at: date_time("streams.created_at", created_at)?,
            updated_at: date_time("streams.updated_at", updated_at)?,
        }))
    }

    async fn put_ban(&self, ban: &Ban) -> Result<(), StorageError> {
        // A timeout's row expires with it (plus a second for rounding); the
        // expiry itself is still checked on read, to the millisecond.
        let ttl = match ban.expires_at {
            Some(expires_at) => {
                let remaining = (expires_at - Utc::now()).to_std().unwrap_or_default();
                ttl_secs(remaining + Duration::from_secs(1))
            }
            None => 0,
        };
        let values = (
            ban.stream_id.to_string(),
            ban.user_id.to_string(),
            ban.expires_at.map(millis),
            ban.reason.as_deref(),
            ban.banned_by.to_string(),
            millis(ban.created_at),
            ttl,
        );
        self.execute("storing a ban", &self.state_statements.put_ban, values)
            .await
    }

    async fn remove_ban(&self, stream: &StreamId, user: &UserId) -> Result<(), StorageError> {
        self.execute(
            "lifting a ban",
            &self.state_statements.delete_ban,
            (stream.to_string(), user.to_string()),
        )
        .await
    }

    async fn active_ban(
        &self,
        stream: &StreamId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Ban>, StorageError> {
        let row: Option<BanRow> = self
            .single_row(
                "reading a ban",
                &self.state_statements.get_ban,
                (stream.to_string(), user.to_string()),
            )
            .await?;
        let Some((expires_at, reason, banned_by, created_at)) = row else {
            return Ok(None);
        };
        let ban = Ban {
            stream_id: *stream,
            user_id: *user,
            expires_at: expires_at
                .map(|at| date_time("bans.expires_at", at))
                .transpose()?,
            reason,
            banned_by: UserId::parse(&banned_by).map_err(|_| corrupt("bans.banned_by"))?,
            created_at: date_time("bans.created_at", created_at)?,
        };
        Ok(ban.is_active(now).then_some(ban))
    }

    async fn last_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        let row: Option<(CqlTimestamp,)> = self
            .single_row(
                "reading the last send",
                &self.state_statements.get_last_sent,
                (stream.to_string(), user.to_string()),
            )
            .await?;
        row.map(|(at,)| date_time("last_sent.sent_at", at))
            .transpose()
    }

    async fn record_sent(
        &self,
        stream: &StreamId,
        user: &UserId,
        at: DateTime<Utc>,
        keep_for: Duration,
    ) -> Result<(), StorageError> {
        self.execute(
            "recording a send",
            &self.state_statements.put_last_sent,
            (
                stream.to_string(),
                user.to_string(),
                millis(at),
                ttl_secs(keep_for),
            ),
        )
        .await
    }

    async fn put_profile(&self, profile: &UserProfile) -> Result<(), StorageError> {
        let photo = profile.profile_photo.as_ref().map(Record::encode_record);
        let values = (
            profile.user_id.to_string(),
            profile.username.as_deref(),
            profile.name.as_deref(),
            profile.surname.as_deref(),
            photo,
            profile.availability_status.as_deref(),
        );
        self.execute(
            "storing a profile",
            &self.state_statements.put_profile,
            values,
        )
        .await
    }

    async fn append_event(&self, event: &ModerationEvent) -> Result<(), StorageError> {
        let values = (
            event.stream_id.to_string(),
            millis(event.created_at),
            event.id.to_string(),
            event.kind.encode_record(),
        );
        self.execute("storing an event", &self.state_statements.put_event, values)
            .await
    }

    async fn publish_watermark(&self, watermark: &InstanceWatermark) -> Result<bool, StorageError> {
        let values = (
            WATERMARK_SCOPE,
            watermark.instance.as_str(),
            watermark.beat,
            watermark.watermark_ms,
        );
        self.execute(
            "publishing the live watermark",
            &self.state_statements.put_watermark,
            values,
        )
        .await?;
        Ok(true)
    }

    async fn watermarks(&self) -> Result<Vec<InstanceWatermark>, StorageError> {
        let context = "reading live watermarks";
        let result = self
            .session
            .execute_unpaged(&self.state_statements.get_watermarks, (WATERMARK_SCOPE,))
            .await
            .map_err(|error| errors::execution(context, error))?;
        let rows = result
            .into_rows_result()
            .map_err(|error| errors::rows(context, error))?;
        rows.rows::<(String, i64, i64)>()
            .map_err(|error| errors::typed_rows(context, error))?
            .map(|row| {
                let (instance, beat, watermark_ms) =
                    row.map_err(|error| errors::row(context, error))?;
                Ok(InstanceWatermark {
                    instance,
                    beat,
                    watermark_ms,
                })
            })
            .collect()
    }

    async fn events_after(
        &self,
        stream: &StreamId,
        after: Position,
        limit: usize,
    ) -> Result<Vec<ModerationEvent>, StorageError> {
        let context = "reading events";
        let values = (
            stream.to_string(),
            CqlTimestamp(after.created_ms),
            after.id.to_string(),
            i32::try_from(limit).unwrap_or(i32::MAX),
        );
        let result = self
            .session
            .execute_unpaged(&self.state_statements.events_after, values)
            .await
            .map_err(|error| errors::execution(context, error))?;
        let rows = result
            .into_rows_result()
            .map_err(|error| errors::rows(context, error))?;
        rows.rows::<(CqlTimestamp, String, Vec<u8>)>()
            .map_err(|error| errors::typed_rows(context, error))?
            .map(|row| {
                let (created_at, id, event) = row.map_err(|error| errors::row(context, error))?;
                Ok(ModerationEvent {
                    id: ObjectId::parse(&id).map_err(|_| corrupt("stream_events.event_id"))?,
                    stream_id: *stream,
                    created_at: date_time("stream_events.created_at", created_at)?,
                    kind: ModerationKind::decode_record(&event)?,
                })
            })
            .collect()
    }

    async fn profile(&self, user: &UserId) -> Result<Option<UserProfile>, StorageError> {
        let row: Option<ProfileRow> = self
            .single_row(
                "reading a profile",
                &self.state_statements.get_profile,
                (user.to_string(),),
            )
            .await?;
        let Some((username, name, surname, photo, availability_status)) = row else {
            return Ok(None);
        };
        let profile_photo = photo
            .map(|bytes| ProfilePhoto::decode_record(&bytes))
            .transpose()?;
        Ok(Some(UserProfile {
            user_id: *user,
            username,
            name,
            surname,
            profile_photo,
            availability_status,
        }))
    }
}
