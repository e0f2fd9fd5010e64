//! Moderators, appointed and removed by the stream's owner:
//!
//! - `PUT /api/v1/live-stream/{streamId}/chat/moderators/{userId}`: appoint;
//! - `DELETE /api/v1/live-stream/{streamId}/chat/moderators/{userId}`: remove.
//!
//! Both answer 200 with the stream's chat state (its moderators included).

use allmine_chat_proto::v1::ModeratorRequest;
use axum::{Json, extract::State};

use super::{StreamUserPath, record_target};
use crate::{
    dto::StreamJson,
    error::ApiError,
    extract::{ApiPath, BearerToken},
    grpc::ChatClient,
    request_id::RequestId,
};

/// Calls `AddModerator`.
#[utoipa::path(
    put,
    path = super::MODERATOR_PATH,
    operation_id = "addModerator",
    description = "Appoints a moderator; the stream's owner only.",
    tag = "moderation",
    summary = "Appoint a moderator (the stream's owner)",
    params(StreamUserPath),
    responses((status = 200, description = "The stream's chat, its moderators included.", body = StreamJson)),
    security(("bearer" = [])),
)]
pub async fn add_moderator(
    State(chat): State<ChatClient>,
    request_id: RequestId,
    token: BearerToken,
    ApiPath(path): ApiPath<StreamUserPath>,
) -> Result<Json<StreamJson>, ApiError> {
    let request = moderator_request(path);
    let stream = chat.add_moderator(request, &token, &request_id).await?;
    Ok(Json(StreamJson::from(stream)))
}

/// Calls `RemoveModerator`.
#[utoipa::path(
    delete,
    path = super::MODERATOR_PATH,
    operation_id = "removeModerator",
    description = "Removes a moderator; the stream's owner only.",
    tag = "moderation",
    summary = "Remove a moderator (the stream's owner)",
    params(StreamUserPath),
    responses((status = 200, description = "The stream's chat, its moderators included.", body = StreamJson)),
    security(("bearer" = [])),
)]
pub async fn remove_moderator(
    State(chat): State<ChatClient>,
    request_id: RequestId,
    token: BearerToken,
    ApiPath(path): ApiPath<StreamUserPath>,
) -> Result<Json<StreamJson>, ApiError> {
    let request = moderator_request(path);
    let stream = chat.remove_moderator(request, &token, &request_id).await?;
    Ok(Json(StreamJson::from(stream)))
}

fn moderator_request(path: StreamUserPath) -> ModeratorRequest {
    record_target(&path.stream_id, &path.user_id);
    ModeratorRequest {
        stream_id: path.stream_id,
        user_id: path.user_id,
    }
}
