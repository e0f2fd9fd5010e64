//! `BanUser`: the owner or a moderator bans a user, permanently or for a
//! while (a timeout).

use allmine_chat_proto::v1 as pb;
use chrono::Utc;
use tonic::{Request, Response};
use tracing::field::{Empty, display};

use super::ChatServiceImpl;
use super::request::{request_id, stream_field};
use crate::auth::Identity;
use crate::domain::{
    Ban, ModerationKind, StreamId, UserId, parse_reason, parse_timeout_seconds, truncate_to_millis,
};
use crate::error::{ChatError, Violations};
use crate::lookup::registered_stream;

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
        let mut violations = Violations::default();
        let stream_id = violations.check("stream_id", StreamId::parse(&request.stream_id));
        let user_id = violations.check("user_id", UserId::parse(&request.user_id));
        let duration = violations.check(
            "duration_seconds",
            request
                .duration_seconds
                .map(parse_timeout_seconds)
                .transpose(),
        );
        let reason = violations.check(
            "reason",
            parse_reason(request.reason.as_deref().unwrap_or_default()),
        );
        violations.finish(|| {
            Some(Self {
                stream_id: stream_id?,
                user_id: user_id?,
                duration: duration?,
                reason: reason?,
            })
        })
    }
}

#[tracing::instrument(
    name = "ban_user",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
        user_id = Empty,
    )
)]
pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::BanUserRequest>,
) -> Result<Response<pb::Ban>, ChatError> {
    let identity = Identity::from_request(&request)?;
    tracing::Span::current().record("user_id", display(identity.user_id));
    let order = BanOrder::try_from(request.into_inner())?;
    let stream = registered_stream(&service.store, &order.stream_id).await?;
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
    tracing::info!(banned = %ban.user_id, until = %ban.describe_until(), "user banned");
    Ok(Response::new(pb::Ban::from(ban)))
}
