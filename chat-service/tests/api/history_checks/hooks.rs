//! The seams the history checks share with other issue 11 work: the one
//! place that knows how a send carries its idempotency key.

use allmine_chat_proto::v1::SendMessageRequest;

/// Puts `key` on `request` (`SendMessageRequest.idempotency_key`), as a
/// client retrying an unknown send does.
pub fn set_idempotency_key(request: &mut SendMessageRequest, key: &str) {
    request.idempotency_key = Some(key.to_owned());
}
