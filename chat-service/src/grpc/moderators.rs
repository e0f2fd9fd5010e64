//! `AddModerator` and `RemoveModerator`: the owner appoints and removes
//! moderators.

use allmine_chat_proto::v1 as pb;
use chrono::Utc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::ban_user::parse_stream_and_user;
use super::{ChatServiceImpl, request_id};
use crate::auth::Identity;
use crate::domain::truncate_to_millis;
use crate::error::ChatError;
use crate::rules::load_stream;

pub(super) async fn add(
    service: &ChatServiceImpl,
    request: Request<pb::ModeratorRequest>,
) -> Result<Response<pb::Stream>, Status> {
    change(service, request, true).await
}

pub(super) async fn remove(
    service: &ChatServiceImpl,
    request: Request<pb::ModeratorRequest>,
) -> Result<Response<pb::Stream>, Status> {
    change(service, request, false).await
}

async fn change(
    service: &ChatServiceImpl,
    request: Request<pb::ModeratorRequest>,
    appoint: bool,
) -> Result<Response<pb::Stream>, Status> {
    let span = tracing::info_span!("moderators", request_id = %request_id(&request), appoint);
    async move {
        let identity = Identity::from_request(&request)?;
        let request = request.into_inner();
        let (stream_id, user_id) = parse_stream_and_user(&request.stream_id, &request.user_id)?;
        let mut stream = load_stream(&service.store, &stream_id).await?;
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
            tracing::info!(moderator = %user_id, %stream_id, "moderators changed");
        }
        Ok(Response::new(pb::Stream::from(stream)))
    }
    .instrument(span)
    .await
    .map_err(|error: ChatError| Status::from(error))
}
