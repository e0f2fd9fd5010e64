//! `SendMessage`: authenticate (done by the interceptor), validate, persist,
//! reply. The reply goes out only after the store confirms durability.

use allmine_chat_proto::v1 as pb;
use chrono::Utc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{ChatServiceImpl, request_id};
use crate::auth::Identity;
use crate::domain::{ChatMessage, MessageContent, StreamId, truncate_to_millis};
use crate::error::{ChatError, Violation};

/// A request whose every field has been parsed.
struct NewMessage {
    stream_id: StreamId,
    content: MessageContent,
}

impl TryFrom<pb::SendMessageRequest> for NewMessage {
    type Error = ChatError;

    /// Reports every invalid field at once, so a client fixes them in one go.
    fn try_from(request: pb::SendMessageRequest) -> Result<Self, Self::Error> {
        let stream_id = StreamId::parse(&request.stream_id);
        let content = MessageContent::parse(&request.content);
        match (stream_id, content) {
            (Ok(stream_id), Ok(content)) => Ok(Self { stream_id, content }),
            (stream_id, content) => {
                let mut violations = Vec::new();
                if let Err(error) = stream_id {
                    violations.push(Violation::new("stream_id", error));
                }
                if let Err(error) = content {
                    violations.push(Violation::new("content", error));
                }
                Err(ChatError::InvalidArgument(violations))
            }
        }
    }
}

pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::SendMessageRequest>,
) -> Result<Response<pb::ChatMessage>, Status> {
    let span = tracing::info_span!(
        "send_message",
        request_id = %request_id(&request),
        stream_id = %request.get_ref().stream_id.chars().take(32).collect::<String>(),
        user_id = tracing::field::Empty,
        message_id = tracing::field::Empty,
    );
    async move {
        let identity = Identity::from_request(&request)?;
        tracing::Span::current().record("user_id", tracing::field::display(identity.user_id));
        let new_message = NewMessage::try_from(request.into_inner())?;
        let verdict = service
            .policy
            .admit(
                new_message.stream_id,
                &identity,
                truncate_to_millis(Utc::now()),
            )
            .await?;
        // The creation time comes from the live hub, which holds live
        // delivery back until this append has finished (stored or failed).
        let in_flight = service.hub.begin_append();
        let now = in_flight.created_at;
        let message = ChatMessage {
            id: service.hub.next_id(now).into(),
            stream_id: new_message.stream_id,
            content: new_message.content,
            sender: verdict.sender,
            created_at: now,
            updated_at: now,
        };
        tracing::Span::current().record("message_id", tracing::field::display(message.id));

        let stored = service.store.append(&message).await;
        drop(in_flight);
        service.hub.notify(&message.stream_id);
        stored?;
        if let Some(keep_for) = verdict.slow_mode {
            // The message is durable and will be acknowledged: a failure
            // here only weakens slow mode for one message.
            if let Err(error) = service
                .store
                .record_sent(&message.stream_id, &identity.user_id, now, keep_for)
                .await
            {
                tracing::warn!(%error, "could not record the send for slow mode");
            }
        }
        tracing::debug!("message stored");
        Ok(Response::new(pb::ChatMessage::from(message)))
    }
    .instrument(span)
    .await
    .map_err(|error: ChatError| Status::from(error))
}
