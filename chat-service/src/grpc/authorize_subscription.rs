//! `ChatEdgeService.AuthorizeSubscription`: what http-edge asks for each SSE
//! client before serving it from the one subscription it shares between all
//! its clients of a stream (docs/live.md, "Through the edge").
//!
//! The checks are exactly `SubscribeMessages`' before it accepts, in the same
//! order and with the same refusals (the token, the stream id, the stream
//! registered), so that a client of the edge is refused as it would have
//! been by its own subscription. The per-user subscription cap is not
//! checked here (nothing is opened): the answer names the user and the cap,
//! and the edge holds each user's clients to it.

use allmine_chat_proto::v1 as pb;
use pb::chat_edge_service_server::ChatEdgeService;
use tonic::{Request, Response, Status};
use tracing::field::{Empty, display};

use super::ChatServiceImpl;
use super::convert::timestamp;
use super::request::{request_id, stream_field};
use crate::auth::Identity;
use crate::domain::{Cursor, StreamId};
use crate::error::{ChatError, Violations};
use crate::lookup::registered_stream;

#[tonic::async_trait]
impl ChatEdgeService for ChatServiceImpl {
    async fn authorize_subscription(
        &self,
        request: Request<pb::AuthorizeSubscriptionRequest>,
    ) -> Result<Response<pb::AuthorizeSubscriptionResponse>, Status> {
        handle(self, request).await.map_err(Status::from)
    }
}

#[tracing::instrument(
    name = "authorize_subscription",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
        user_id = Empty,
    )
)]
async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::AuthorizeSubscriptionRequest>,
) -> Result<Response<pb::AuthorizeSubscriptionResponse>, ChatError> {
    // Any signed-in user may follow a registered stream's chat.
    let identity = Identity::from_request(&request)?;
    tracing::Span::current().record("user_id", display(identity.user_id));
    let mut violations = Violations::default();
    let stream_id = violations.check("stream_id", StreamId::parse(&request.get_ref().stream_id));
    let stream_id = violations.finish(|| stream_id)?;
    registered_stream(&service.store, &stream_id).await?;
    // Taken after the checks, as SubscribeMessages takes it: the start of a
    // subscription accepted now without a cursor (docs/live.md).
    let start = service.hub.acceptance_position().await;
    tracing::debug!("subscription authorized");
    Ok(Response::new(pb::AuthorizeSubscriptionResponse {
        valid_until: Some(timestamp(identity.valid_until)),
        start_cursor: Cursor::new(start).to_string(),
        user_id: identity.user_id.to_string(),
        max_subscriptions_per_user: u32::try_from(service.subscriptions.caps().per_user)
            .unwrap_or(u32::MAX),
    }))
}
