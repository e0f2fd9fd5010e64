//! `SubscribeMessages`: the live chat of a stream, resumable by cursor.
//! Admitted under the caller's subscription caps (`live::limits`); the
//! returned stream holds its slot until it ends.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{ChatServiceImpl, parse_id, request_id};
use crate::auth::Identity;
use crate::domain::{Cursor, StreamId};
use crate::error::ChatError;
use crate::live::subscription::{EventStream, subscribe};
use crate::rules::load_stream;

pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::SubscribeMessagesRequest>,
) -> Result<Response<EventStream>, Status> {
    let request_id = request_id(&request);
    let result: Result<EventStream, ChatError> = async {
        // Any signed-in user may follow a registered stream's chat.
        let identity = Identity::from_request(&request)?;
        let connection = request.remote_addr();
        let request = request.into_inner();
        let stream_id = parse_id("stream_id", &request.stream_id, StreamId::parse)?;
        let after = request
            .after
            .map(|text| Cursor::parse(&text).map_err(|error| ChatError::invalid("after", error)))
            .transpose()?;
        // Before any store read: a caller over its caps costs nothing more.
        let slot = service.subscriptions.admit(connection, identity.user_id)?;
        load_stream(&service.store, &stream_id).await?;
        tracing::info!(%request_id, %stream_id, user_id = %identity.user_id, resume = after.is_some(), "subscribed");
        let events = subscribe(
            &service.hub,
            stream_id,
            after.map(|cursor| cursor.position()),
            identity.valid_until,
        );
        Ok(slot.hold(events))
    }
    .await;
    result.map(Response::new).map_err(Status::from)
}
