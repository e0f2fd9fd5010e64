//! `DeleteMessage`: the sender deletes their own message; the owner and
//! moderators delete any. Subscribers get a deletion event.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{ChatServiceImpl, parse_ids, request_id};
use crate::auth::Identity;
use crate::domain::{MessageId, ModerationKind, StreamId};
use crate::error::ChatError;
use crate::rules::load_stream;

pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::DeleteMessageRequest>,
) -> Result<Response<()>, Status> {
    let span = tracing::info_span!("delete_message", request_id = %request_id(&request));
    async move {
        let identity = Identity::from_request(&request)?;
        let request = request.into_inner();
        let (stream_id, message_id) = parse_ids(
            ("stream_id", &request.stream_id, StreamId::parse),
            ("message_id", &request.message_id, MessageId::parse),
        )?;
        let stream = load_stream(&service.store, &stream_id).await?;
        let message = service
            .store
            .find(&stream_id, &message_id)
            .await?
            .ok_or_else(|| {
                ChatError::NotFound(format!("message {message_id} not found in this stream"))
            })?;
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
        tracing::info!(%message_id, %stream_id, by = %identity.user_id, "message deleted");
        Ok(Response::new(()))
    }
    .instrument(span)
    .await
    .map_err(|error: ChatError| Status::from(error))
}
