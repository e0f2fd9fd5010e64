//! Stream registration and chat state changes.

use allmine_chat_proto::v1 as pb;
use chrono::Utc;
use tonic::{Request, Response};

use super::{ChatAdminServiceImpl, require_service};
use crate::domain::{
    ChatState, ModerationKind, SlowMode, StreamChat, StreamId, UserId, truncate_to_millis,
};
use crate::error::{ChatError, Violations};
use crate::grpc::request::{parse_id, request_id, stream_field};
use crate::lookup::registered_stream;

type AdminResult = Result<Response<pb::Stream>, ChatError>;

#[tracing::instrument(
    name = "register_stream",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
    )
)]
pub(super) async fn register(
    service: &ChatAdminServiceImpl,
    request: Request<pb::RegisterStreamRequest>,
) -> AdminResult {
    require_service(&request)?;
    let request = request.into_inner();
    let mut violations = Violations::default();
    let stream_id = violations.check("stream_id", StreamId::parse(&request.stream_id));
    let owner = violations.check("owner_id", UserId::parse(&request.owner_id));
    let (stream_id, owner) = violations.finish(|| Some((stream_id?, owner?)))?;

    // Registering is idempotent for the same owner, so the stream service
    // may retry; another owner is a conflict. (Read then write: the stream
    // service is the one writer of registrations.)
    if let Some(existing) = service.store.stream(&stream_id).await? {
        if existing.owner == owner {
            return Ok(Response::new(existing.into()));
        }
        return Err(ChatError::StreamAlreadyRegistered(stream_id));
    }
    let stream = StreamChat::new(stream_id, owner, truncate_to_millis(Utc::now()));
    service.store.put_stream(&stream).await?;
    tracing::info!(%stream_id, %owner, "stream registered");
    Ok(Response::new(stream.into()))
}

#[tracing::instrument(
    name = "set_chat_open",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
    )
)]
pub(super) async fn set_open(
    service: &ChatAdminServiceImpl,
    request: Request<pb::SetChatOpenRequest>,
) -> AdminResult {
    require_service(&request)?;
    let request = request.into_inner();
    let stream_id = parse_id("stream_id", &request.stream_id, StreamId::parse)?;
    let wanted = if request.open {
        ChatState::Open
    } else {
        ChatState::Closed
    };
    change(service, stream_id, |stream| {
        if stream.state == ChatState::Ended {
            return Err(ChatError::StreamEnded(
                "the stream has ended; its chat cannot be reopened or closed again",
            ));
        }
        stream.state = wanted;
        Ok(())
    })
    .await
}

#[tracing::instrument(
    name = "end_stream",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
    )
)]
pub(super) async fn end(
    service: &ChatAdminServiceImpl,
    request: Request<pb::EndStreamRequest>,
) -> AdminResult {
    require_service(&request)?;
    let stream_id = parse_id("stream_id", &request.get_ref().stream_id, StreamId::parse)?;
    // Ending twice is harmless: the stream service may retry.
    change(service, stream_id, |stream| {
        stream.state = ChatState::Ended;
        Ok(())
    })
    .await
}

#[tracing::instrument(
    name = "update_stream_settings",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
    )
)]
pub(super) async fn update_settings(
    service: &ChatAdminServiceImpl,
    request: Request<pb::UpdateStreamSettingsRequest>,
) -> AdminResult {
    require_service(&request)?;
    let request = request.into_inner();
    let mut violations = Violations::default();
    let stream_id = violations.check("stream_id", StreamId::parse(&request.stream_id));
    let slow_mode = violations.check(
        "slow_mode_seconds",
        request.slow_mode_seconds.map(SlowMode::parse).transpose(),
    );
    let (stream_id, slow_mode) = violations.finish(|| Some((stream_id?, slow_mode?)))?;
    change(service, stream_id, |stream| {
        if let Some(slow_mode) = slow_mode {
            stream.slow_mode = slow_mode;
        }
        Ok(())
    })
    .await
}

#[tracing::instrument(
    name = "get_stream",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
    )
)]
pub(super) async fn get(
    service: &ChatAdminServiceImpl,
    request: Request<pb::GetStreamRequest>,
) -> AdminResult {
    require_service(&request)?;
    let stream_id = parse_id("stream_id", &request.get_ref().stream_id, StreamId::parse)?;
    let stream = registered_stream(&service.store, &stream_id).await?;
    Ok(Response::new(stream.into()))
}

/// Loads, changes and stores a stream (whole-record write; see
/// `grpc/moderators.rs` on concurrent edits).
async fn change(
    service: &ChatAdminServiceImpl,
    stream_id: StreamId,
    apply: impl FnOnce(&mut StreamChat) -> Result<(), ChatError>,
) -> AdminResult {
    let mut stream = registered_stream(&service.store, &stream_id).await?;
    let before = stream.clone();
    apply(&mut stream)?;
    if stream != before {
        stream.updated_at = truncate_to_millis(Utc::now());
        service.store.put_stream(&stream).await?;
        if stream.state != before.state {
            service
                .hub
                .record_event(stream_id, ModerationKind::ChatStateChanged(stream.state))
                .await?;
        }
        tracing::info!(%stream_id, state = ?stream.state, slow_mode = stream.slow_mode.seconds(), "stream changed");
    }
    Ok(Response::new(stream.into()))
}
