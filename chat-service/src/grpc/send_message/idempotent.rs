//! The idempotency side of `SendMessage`: finding an earlier send with the
//! same key, and answering with it.

use allmine_chat_proto::IDEMPOTENT_REPLAYED_METADATA;
use allmine_chat_proto::v1 as pb;
use chrono::{DateTime, Utc};
use tonic::Response;
use tonic::metadata::MetadataValue;

use super::NewMessage;
use crate::domain::{ChatMessage, UserId};
use crate::error::ChatError;
use crate::storage::SharedStore;

/// The message an earlier send with this request's key stored, if the
/// request has a key and the key is within its window.
pub(super) async fn earlier_send(
    store: &SharedStore,
    request: &NewMessage,
    user: &UserId,
    now: DateTime<Utc>,
) -> Result<Option<ChatMessage>, ChatError> {
    let Some(key) = &request.idempotency_key else {
        return Ok(None);
    };
    Ok(store
        .keyed_message(&request.stream_id, user, key, now)
        .await?)
}

/// The reply to a retried send: the original message, marked as a replay;
/// ALREADY_EXISTS if the retry's content differs, since then it is not a
/// retry but a second message reusing the key (a client bug to surface, not
/// to paper over by storing it or by answering with the other text).
pub(super) fn replay(
    original: ChatMessage,
    request: &NewMessage,
) -> Result<Response<pb::ChatMessage>, ChatError> {
    if original.content != request.content {
        return Err(ChatError::IdempotencyKeyReused);
    }
    tracing::debug!(message_id = %original.id, "idempotent replay");
    let mut response = Response::new(pb::ChatMessage::from(original));
    response.metadata_mut().insert(
        IDEMPOTENT_REPLAYED_METADATA,
        MetadataValue::from_static("true"),
    );
    Ok(response)
}
