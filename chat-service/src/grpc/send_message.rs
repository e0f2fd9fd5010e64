//! `SendMessage`: authenticate (done by the interceptor), validate, persist,
//! reply. The reply goes out only after the store confirms durability.
//!
//! With an idempotency key, the key is looked up before the rules: a retry
//! of a stored send is answered with the original message even if slow mode,
//! the burst limit, a ban or a closed chat would now refuse a new one. The key
//! is then claimed together with the message (atomically, in the store), so
//! of concurrent sends with one key exactly one stores; the others answer
//! with its message.

mod idempotent;

use allmine_chat_proto::v1 as pb;
use chrono::Utc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{ChatServiceImpl, request_id};
use crate::auth::Identity;
use crate::domain::{ChatMessage, IdempotencyKey, MessageContent, StreamId, truncate_to_millis};
use crate::error::{ChatError, Violation};
use crate::storage::KeyedAppend;

/// A request whose every field has been parsed.
struct NewMessage {
    stream_id: StreamId,
    content: MessageContent,
    idempotency_key: Option<IdempotencyKey>,
}

impl TryFrom<pb::SendMessageRequest> for NewMessage {
    type Error = ChatError;

    /// Reports every invalid field at once, so a client fixes them in one go.
    fn try_from(request: pb::SendMessageRequest) -> Result<Self, Self::Error> {
        let stream_id = StreamId::parse(&request.stream_id);
        let content = MessageContent::parse(&request.content);
        let idempotency_key = request
            .idempotency_key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose();
        match (stream_id, content, idempotency_key) {
            (Ok(stream_id), Ok(content), Ok(idempotency_key)) => Ok(Self {
                stream_id,
                content,
                idempotency_key,
            }),
            (stream_id, content, idempotency_key) => {
                let mut violations = Vec::new();
                if let Err(error) = stream_id {
                    violations.push(Violation::new("stream_id", error));
                }
                if let Err(error) = content {
                    violations.push(Violation::new("content", error));
                }
                if let Err(error) = idempotency_key {
                    violations.push(Violation::new("idempotency_key", error));
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
        keyed = request.get_ref().idempotency_key.is_some(),
    );
    async move {
        let identity = Identity::from_request(&request)?;
        tracing::Span::current().record("user_id", tracing::field::display(identity.user_id));
        let new_message = NewMessage::try_from(request.into_inner())?;
        let user = identity.user_id;
        let store = &service.store;

        let received_at = truncate_to_millis(Utc::now());
        if let Some(original) =
            idempotent::earlier_send(store, &new_message, &user, received_at).await?
        {
            return idempotent::replay(original, &new_message);
        }
        let verdict = match service
            .policy
            .admit(new_message.stream_id, &identity, received_at)
            .await
        {
            Ok(verdict) => verdict,
            Err(refusal) => {
                // A concurrent send with the same key may have been stored
                // since the lookup (and tripped slow mode or the burst limit
                // for this one): then this request is its retry, not a new
                // message.
                return match idempotent::earlier_send(store, &new_message, &user, received_at)
                    .await?
                {
                    Some(original) => idempotent::replay(original, &new_message),
                    None => Err(refusal),
                };
            }
        };
        // The creation time comes from the live hub, which holds live
        // delivery back until this append has finished (stored or failed).
        let in_flight = service.hub.begin_append();
        let now = in_flight.created_at;
        let message = ChatMessage {
            id: service.hub.next_id(now).into(),
            stream_id: new_message.stream_id,
            content: new_message.content.clone(),
            sender: verdict.sender,
            created_at: now,
            updated_at: now,
        };
        tracing::Span::current().record("message_id", tracing::field::display(message.id));

        let stored = match &new_message.idempotency_key {
            Some(key) => {
                store
                    .append_keyed(&message, key, service.idempotency_window)
                    .await
            }
            None => store.append(&message).await.map(|()| KeyedAppend::Stored),
        };
        drop(in_flight);
        service.hub.notify(&message.stream_id);
        if let KeyedAppend::Existing(original) = stored? {
            // Another send with this key won the claim; nothing was stored.
            return idempotent::replay(*original, &new_message);
        }
        if let Some(keep_for) = verdict.slow_mode {
            // The message is durable and will be acknowledged: a failure
            // here only weakens slow mode for one message.
            if let Err(error) = store
                .record_sent(&message.stream_id, &user, now, keep_for)
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
