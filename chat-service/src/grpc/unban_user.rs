//! `UnbanUser`: the owner or a moderator lifts a ban or timeout.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response};
use tracing::field::{Empty, display};

use super::ChatServiceImpl;
use super::request::{parse_stream_and_user, request_id, stream_field};
use crate::auth::Identity;
use crate::error::ChatError;
use crate::lookup::registered_stream;

#[tracing::instrument(
    name = "unban_user",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
        user_id = Empty,
    )
)]
pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::UnbanUserRequest>,
) -> Result<Response<()>, ChatError> {
    let identity = Identity::from_request(&request)?;
    tracing::Span::current().record("user_id", display(identity.user_id));
    let request = request.into_inner();
    let (stream_id, user_id) = parse_stream_and_user(&request.stream_id, &request.user_id)?;
    let stream = registered_stream(&service.store, &stream_id).await?;
    stream
        .may_unban(identity.user_id)
        .map_err(|denied| ChatError::PermissionDenied(denied.to_string()))?;
    service.store.remove_ban(&stream_id, &user_id).await?;
    tracing::info!(unbanned = %user_id, "ban lifted");
    Ok(Response::new(()))
}
