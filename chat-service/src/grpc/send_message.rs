//! `SendMessage`: authenticate (done by the interceptor), validate, admit,
//! append, reply. The reply goes out only after the store confirms
//! durability, with the sender's rate-limit quota as response metadata.
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
use tonic::{Request, Response};
use tracing::field::{Empty, display};

use super::ChatServiceImpl;
use super::request::{request_id, stream_field};
use super::status::insert_rate_limit;
use crate::auth::Identity;
use crate::domain::{IdempotencyKey, MessageContent, StreamId, truncate_to_millis};
use crate::error::{ChatError, Violations};
use crate::live::{Appended, MessageDraft};
use crate::rules::SendVerdict;

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
        let mut violations = Violations::default();
        let stream_id = violations.check("stream_id", StreamId::parse(&request.stream_id));
        let content = violations.check("content", MessageContent::parse(&request.content));
        let idempotency_key = violations.check(
            "idempotency_key",
            request
                .idempotency_key
                .as_deref()
                .map(IdempotencyKey::parse)
                .transpose(),
        );
        violations.finish(|| {
            Some(Self {
                stream_id: stream_id?,
                content: content?,
                idempotency_key: idempotency_key?,
            })
        })
    }
}

#[tracing::instrument(
    name = "send_message",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
        user_id = Empty,
        message_id = Empty,
        keyed = request.get_ref().idempotency_key.is_some(),
    )
)]
pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::SendMessageRequest>,
) -> Result<Response<pb::ChatMessage>, ChatError> {
    let identity = Identity::from_request(&request)?;
    tracing::Span::current().record("user_id", display(identity.user_id));
    let new_message = NewMessage::try_from(request.into_inner())?;
    let user = identity.user_id;
    let store = &service.store;

    // The send's one clock reading (see `rules::send_policy`).
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
            return match idempotent::earlier_send(store, &new_message, &user, received_at).await? {
                Some(original) => idempotent::replay(original, &new_message),
                None => Err(refusal),
            };
        }
    };
    let SendVerdict {
        sender,
        quota,
        record,
    } = verdict;
    let draft = MessageDraft {
        stream_id: new_message.stream_id,
        content: new_message.content.clone(),
        sender,
    };
    let idempotency = new_message
        .idempotency_key
        .as_ref()
        .map(|key| (key, service.idempotency_window));
    let message = match service.hub.append_message(draft, idempotency).await? {
        Appended::Stored(message) => message,
        // Another send with this key won the claim; nothing was stored.
        Appended::Existing(original) => return idempotent::replay(original, &new_message),
    };
    tracing::Span::current().record("message_id", display(message.id));
    service.policy.record_sent(record).await;
    tracing::debug!("message stored");

    let mut response = Response::new(pb::ChatMessage::from(message));
    insert_rate_limit(response.metadata_mut(), &quota);
    Ok(response)
}
