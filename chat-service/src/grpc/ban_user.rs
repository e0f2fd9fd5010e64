//! `BanUser`: the owner or a moderator bans a user, permanently or for a
//! while (a timeout).

use allmine_chat_proto::v1 as pb;
use chrono::Utc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{ChatServiceImpl, parse_ids, request_id};
use crate::auth::Identity;
use crate::domain::ModerationKind;
use crate::domain::{
    Ban, StreamId, UserId, parse_reason, parse_timeout_seconds, truncate_to_millis,
};
use crate::error::{ChatError, Violation};
use crate::rules::load_stream;

/// A parsed `BanUserRequest`.
struct BanOrder {
    stream_id: StreamId,
    user_id: UserId,
    duration: Option<chrono::Duration>,
    reason: Option<String>,
}

impl TryFrom<pb::BanUserRequest> for BanOrder {
    type Error = ChatError;

    fn try_from(request: pb::BanUserRequest) -> Result<Self, Self::Error> {
        let mut violations = Vec::new();
        let stream_id = StreamId::parse(&request.stream_id)
            .map_err(|error| violations.push(Violation::new("stream_id", error)))
            .ok();
        let user_id = UserId::parse(&request.user_id)
            .map_err(|error| violations.push(Violation::new("user_id", error)))
            .ok();
        let duration = match request.duration_seconds {
            Some(seconds) => parse_timeout_seconds(seconds)
                .map_err(|error| violations.push(Violation::new("duration_seconds", error)))
                .ok(),
            None => None,
        };
        let reason = parse_reason(request.reason.as_deref().unwrap_or_default())
            .map_err(|error| violations.push(Violation::new("reason", error)))
            .ok()
            .flatten();
        match (stream_id, user_id) {
            (Some(stream_id), Some(user_id)) if violations.is_empty() => Ok(Self {
                stream_id,
                user_id,
                duration,
                reason,
            }),
            _ => Err(ChatError::InvalidArgument(violations)),
        }
    }
}

pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::BanUserRequest>,
) -> Result<Response<pb::Ban>, Status> {
    let span = tracing::info_span!("ban_user", request_id = %request_id(&request), user_id = tracing::field::Empty);
    async move {
        let identity = Identity::from_request(&request)?;
        tracing::Span::current().record("user_id", tracing::field::display(identity.user_id));
        let order = BanOrder::try_from(request.into_inner())?;
        let stream = load_stream(&service.store, &order.stream_id).await?;
        stream
            .may_ban(identity.user_id, order.user_id)
            .map_err(|denied| ChatError::PermissionDenied(denied.to_string()))?;

        let now = truncate_to_millis(Utc::now());
        let ban = Ban {
            stream_id: order.stream_id,
            user_id: order.user_id,
            expires_at: order.duration.map(|duration| now + duration),
            reason: order.reason,
            banned_by: identity.user_id,
            created_at: now,
        };
        service.store.put_ban(&ban).await?;
        service
            .hub
            .record_event(
                ban.stream_id,
                ModerationKind::UserBanned {
                    user_id: ban.user_id,
                    expires_at: ban.expires_at,
                },
            )
            .await?;
        tracing::info!(banned = %ban.user_id, stream_id = %ban.stream_id, until = %ban.describe_until(), "user banned");
        Ok(Response::new(pb::Ban::from(ban)))
    }
    .instrument(span)
    .await
    .map_err(|error: ChatError| Status::from(error))
}

/// Used by `unban_user` too: both name a stream and a user.
pub(super) fn parse_stream_and_user(
    stream_id: &str,
    user_id: &str,
) -> Result<(StreamId, UserId), ChatError> {
    parse_ids(
        ("stream_id", stream_id, StreamId::parse),
        ("user_id", user_id, UserId::parse),
    )
}
