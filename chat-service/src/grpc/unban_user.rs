//! `UnbanUser`: the owner or a moderator lifts a ban or timeout.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::ban_user::parse_stream_and_user;
use super::{ChatServiceImpl, request_id};
use crate::auth::Identity;
use crate::error::ChatError;
use crate::rules::load_stream;

pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::UnbanUserRequest>,
) -> Result<Response<()>, Status> {
    let span = tracing::info_span!("unban_user", request_id = %request_id(&request));
    async move {
        let identity = Identity::from_request(&request)?;
        let request = request.into_inner();
        let (stream_id, user_id) = parse_stream_and_user(&request.stream_id, &request.user_id)?;
        let stream = load_stream(&service.store, &stream_id).await?;
        stream
            .may_unban(identity.user_id)
            .map_err(|denied| ChatError::PermissionDenied(denied.to_string()))?;
        service.store.remove_ban(&stream_id, &user_id).await?;
        tracing::info!(unbanned = %user_id, %stream_id, by = %identity.user_id, "ban lifted");
        Ok(Response::new(()))
    }
    .instrument(span)
    .await
    .map_err(|error: ChatError| Status::from(error))
}
