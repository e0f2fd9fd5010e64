//! `chat_messages_refused_total{reason}`: one reason per rule a send can
//! break. Counted at the one place a [`ChatError`] becomes a `Status`
//! (`grpc/status.rs`), for SendMessage calls only: the gRPC metrics layer marks
//! the calls it sees (`transport::metrics`), and errors of other RPCs, or
//! raised outside a call, are not message refusals.

use crate::error::ChatError;

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

/// The label of `error`: a fixed, small set, one per rule
/// ([`crate::error::RefusalReason::metric_label`]).
pub fn reason(error: &ChatError) -> &'static str {
    error.reason().metric_label()
}
