//! `AddModerator` and `RemoveModerator`: the owner appoints and removes
//! moderators.

use allmine_chat_proto::v1 as pb;
use chrono::Utc;
use tonic::{Request, Response};
use tracing::field::{Empty, display};

use super::ChatServiceImpl;
use super::request::{parse_stream_and_user, request_id, stream_field};
use crate::auth::Identity;
use crate::domain::truncate_to_millis;
use crate::error::ChatError;
use crate::lookup::registered_stream;

pub(super) async fn add(
    service: &ChatServiceImpl,
    request: Request<pb::ModeratorRequest>,
) -> Result<Response<pb::Stream>, ChatError> {
    change(service, request, true).await
}

pub(super) async fn remove(
    service: &ChatServiceImpl,
    request: Request<pb::ModeratorRequest>,
) -> Result<Response<pb::Stream>, ChatError> {
    change(service, request, false).await
}

#[tracing::instrument(
    name = "moderators",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
        user_id = Empty,
        appoint = appoint,
    )
)]
async fn change(
    service: &ChatServiceImpl,
    request: Request<pb::ModeratorRequest>,
    appoint: bool,
) -> Result<Response<pb::Stream>, ChatError> {
    let identity = Identity::from_request(&request)?;
    tracing::Span::current().record("user_id", display(identity.user_id));
    let request = request.into_inner();
    let (stream_id, user_id) = parse_stream_and_user(&request.stream_id, &request.user_id)?;
    let mut stream = registered_stream(&service.store, &stream_id).await?;
    stream
        .may_manage_moderators(identity.user_id)
        .map_err(|denied| ChatError::PermissionDenied(denied.to_string()))?;
    if user_id == stream.owner {
        return Err(ChatError::invalid(
            "user_id",
            "is the stream's owner, who moderates already",
        ));
    }
    // Read-modify-write of the whole record: admin changes to one stream
    // are rare and made by its owner, so concurrent edits are unlikely;
    // the last write wins if they happen.
    let changed = if appoint {
        stream.moderators.insert(user_id)
    } else {
        stream.moderators.remove(&user_id)
    };
    if changed {
        stream.updated_at = truncate_to_millis(Utc::now());
        service.store.put_stream(&stream).await?;
        tracing::info!(moderator = %user_id, "moderators changed");
    }
    Ok(Response::new(pb::Stream::from(stream)))
}
