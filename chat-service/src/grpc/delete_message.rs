//! `DeleteMessage`: the sender deletes their own message; the owner and
//! moderators delete any. Subscribers get a deletion event.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response};
use tracing::field::{Empty, display};

use super::ChatServiceImpl;
use super::request::{request_id, stream_field};
use crate::auth::Identity;
use crate::domain::{MessageId, ModerationKind, StreamId};
use crate::error::{ChatError, Violations};
use crate::lookup;

#[tracing::instrument(
    name = "delete_message",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
        user_id = Empty,
    )
)]
pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::DeleteMessageRequest>,
) -> Result<Response<()>, ChatError> {
    let identity = Identity::from_request(&request)?;
    tracing::Span::current().record("user_id", display(identity.user_id));
    let request = request.into_inner();
    let mut violations = Violations::default();
    let stream_id = violations.check("stream_id", StreamId::parse(&request.stream_id));
    let message_id = violations.check("message_id", MessageId::parse(&request.message_id));
    let (stream_id, message_id) = violations.finish(|| Some((stream_id?, message_id?)))?;

    let stream = lookup::registered_stream(&service.store, &stream_id).await?;
    let message = lookup::message(&service.store, &stream_id, &message_id).await?;
    let is_sender = message.sender.id == identity.user_id;
    if !is_sender && !stream.role_of(identity.user_id).is_privileged() {
        return Err(ChatError::PermissionDenied(
            "only the sender, the stream's owner and moderators may delete a message".into(),
        ));
    }
    service.store.delete(&message).await?;
    service
        .hub
        .record_event(
            stream_id,
            ModerationKind::MessageDeleted {
                message_id,
                deleted_by: identity.user_id,
            },
        )
        .await?;
    tracing::info!(%message_id, "message deleted");
    Ok(Response::new(()))
}
