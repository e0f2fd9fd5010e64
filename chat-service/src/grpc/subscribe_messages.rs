//! `SubscribeMessages`: the live chat of a stream, resumable by cursor.
//! Admitted under the caller's subscription caps (`live::limits`); the
//! returned stream holds its slot until it ends.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response};
use tracing::field::{Empty, display};

use super::ChatServiceImpl;
use super::admin::SERVICE_ROLE;
use super::request::{request_id, stream_field};
use crate::auth::Identity;
use crate::domain::{Cursor, StreamId};
use crate::error::{ChatError, Violations};
use crate::live::subscription::{EventStream, subscribe};
use crate::lookup::registered_stream;

/// The span covers the subscription's start; its events are delivered after
/// the handler has returned.
#[tracing::instrument(
    name = "subscribe_messages",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
        user_id = Empty,
    )
)]
pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::SubscribeMessagesRequest>,
) -> Result<Response<EventStream>, ChatError> {
    // Any signed-in user may follow a registered stream's chat.
    let identity = Identity::from_request(&request)?;
    tracing::Span::current().record("user_id", display(identity.user_id));
    let connection = request.remote_addr();
    let request = request.into_inner();
    let mut violations = Violations::default();
    let stream_id = violations.check("stream_id", StreamId::parse(&request.stream_id));
    let after = violations.check(
        "after",
        request.after.as_deref().map(Cursor::parse).transpose(),
    );
    let (stream_id, after) = violations.finish(|| Some((stream_id?, after?)))?;
    // Before any store read: a caller over its caps costs nothing more.
    // An Allmine service (http-edge's shared feed) is not one viewer: only
    // the per-connection cap applies to it.
    let slot = if identity.roles.iter().any(|role| role == SERVICE_ROLE) {
        service.subscriptions.admit_service(connection)?
    } else {
        service.subscriptions.admit(connection, identity.user_id)?
    };
    registered_stream(&service.store, &stream_id).await?;
    tracing::info!(resume = after.is_some(), "subscribed");
    // Without a cursor, "from now": the same on both stores (docs/live.md).
    let after = match after {
        Some(cursor) => cursor.position(),
        None => service.hub.acceptance_position().await,
    };
    let events = subscribe(&service.hub, stream_id, after, identity.valid_until);
    Ok(Response::new(slot.hold(events)))
}
