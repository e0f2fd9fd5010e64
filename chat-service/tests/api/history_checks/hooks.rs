//! HOOKS for the parts of issue 11 built on other branches. Each is the one
//! place to fill when that branch lands; the scenarios that need them are
//! `#[ignore]`d until then (see `scenarios.rs`), so none of them pretends
//! to pass.

use allmine_chat_proto::v1::SendMessageRequest;

/// HOOK (issue 11, idempotent sends): puts `key` on `request`.
///
/// Fill once `SendMessageRequest.idempotency_key` exists, with
/// `request.idempotency_key = Some(key.to_owned());`, and remove the
/// `#[ignore]` of `kill_9_with_idempotent_retries`.
pub fn set_idempotency_key(request: &mut SendMessageRequest, key: &str) {
    let _ = (request, key);
    panic!(
        "SendMessageRequest has no idempotency_key on this branch yet: \
         fill history_checks::hooks::set_idempotency_key"
    );
}
