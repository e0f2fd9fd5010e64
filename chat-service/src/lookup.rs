//! Store reads that a request depends on, with an absent record turned into
//! its refusal. Between the store (which answers `Option`) and its callers
//! (the send rules and the handlers), so that "not registered" is decided
//! and worded in one place.

use crate::domain::{ChatMessage, MessageId, StreamChat, StreamId};
use crate::error::ChatError;
use crate::storage::SharedStore;

/// The registered stream, or STREAM_NOT_REGISTERED.
pub async fn registered_stream(
    store: &SharedStore,
    stream_id: &StreamId,
) -> Result<StreamChat, ChatError> {
    store
        .stream(stream_id)
        .await?
        .ok_or(ChatError::StreamNotRegistered(*stream_id))
}

/// The message `message_id` of `stream_id`, or NOT_FOUND.
pub async fn message(
    store: &SharedStore,
    stream_id: &StreamId,
    message_id: &MessageId,
) -> Result<ChatMessage, ChatError> {
    store.find(stream_id, message_id).await?.ok_or_else(|| {
        ChatError::NotFound(format!("message {message_id} not found in this stream"))
    })
}
