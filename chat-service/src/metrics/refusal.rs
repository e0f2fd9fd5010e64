//! `chat_messages_refused_total{reason}`: one reason per rule a send can
//! break. Counted at the one place a [`ChatError`] becomes a `Status`
//! (`error.rs`), for SendMessage calls only: the gRPC metrics layer marks
//! the calls it sees (`transport::metrics`), and errors of other RPCs, or
//! raised outside a call, are not message refusals.

use crate::error::ChatError;
use crate::storage::StorageError;

use super::{MESSAGES_REFUSED, with_recorder};

tokio::task_local! {
    /// Set by the gRPC metrics layer around a SendMessage call.
    pub(crate) static IN_SEND_MESSAGE: bool;
}

/// Counts `error` as a refused message when it answers a SendMessage call.
pub fn record_refusal(error: &ChatError) {
    if IN_SEND_MESSAGE
        .try_with(|in_send| *in_send)
        .unwrap_or(false)
    {
        let reason = reason(error);
        with_recorder(|| metrics::counter!(MESSAGES_REFUSED, "reason" => reason)).increment(1);
    }
}

/// The label of `error`: a fixed, small set.
// The rules' errors share variants (FAILED_PRECONDITION for a closed and an
// ended chat, RESOURCE_EXHAUSTED for slow mode and the burst limit), so
// their messages (send_policy.rs) tell them apart until ChatError names its
// reason itself.
pub fn reason(error: &ChatError) -> &'static str {
    match error {
        ChatError::Unauthenticated(_) => "unauthenticated",
        ChatError::InvalidArgument(_) => "invalid",
        ChatError::NotFound(_) => "not_registered",
        ChatError::PermissionDenied(_) => "banned",
        ChatError::FailedPrecondition(message) if message.contains("ended") => "ended",
        ChatError::FailedPrecondition(_) => "closed",
        ChatError::RateLimited { message, .. } if message.starts_with("slow mode") => "slow_mode",
        ChatError::RateLimited { .. } => "burst",
        ChatError::AlreadyExists(_) => "idempotency_conflict",
        ChatError::LimitReached(_) => "limit",
        ChatError::Overloaded => "overloaded",
        ChatError::RequestTooLarge { .. } => "too_large",
        ChatError::DeadlineExceeded(_) => "deadline",
        ChatError::Storage(StorageError::Unavailable(_)) => "store_unavailable",
        ChatError::Storage(_) => "store_failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_and_an_ended_chat_are_told_apart() {
        let closed = ChatError::FailedPrecondition("the chat of this stream is closed".into());
        let ended =
            ChatError::FailedPrecondition("this stream has ended; its chat is closed".into());
        assert_eq!(reason(&closed), "closed");
        assert_eq!(reason(&ended), "ended");
    }

    #[test]
    fn slow_mode_and_the_burst_limit_are_told_apart() {
        let retry_after = std::time::Duration::from_secs(1);
        let slow = ChatError::RateLimited {
            message: "slow mode is on: one message every 5 s".into(),
            retry_after,
        };
        let burst = ChatError::RateLimited {
            message: "too many messages: at most 5 per 10 s".into(),
            retry_after,
        };
        assert_eq!(reason(&slow), "slow_mode");
        assert_eq!(reason(&burst), "burst");
    }
}
