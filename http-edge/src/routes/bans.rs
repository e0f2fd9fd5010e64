//! Bans and timeouts:
//!
//! - `POST /api/v1/live-stream/{streamId}/chat/bans`: ban a user (201 and the
//!   ban);
//! - `DELETE /api/v1/live-stream/{streamId}/chat/bans/{userId}`: lift a ban
//!   (204).
//!
//! Who may ban whom is chat-service's rule; its refusals come back through
//! [`ApiError`] (403, 404, 409, ...).

use allmine_chat_proto::v1::{BanUserRequest, UnbanUserRequest};
use axum::{Json, extract::State, http::StatusCode};

use super::{StreamUserPath, record_target};
use crate::{
    dto::{BanJson, BanUserBody},
    error::ApiError,
    extract::{ApiJson, ApiPath, BearerToken},
    grpc::ChatClient,
    openapi::StreamPath,
    request_id::RequestId,
};

/// Parses, calls `BanUser`, maps the answer. The token is extracted first, so
/// that a request without one is a 401 whatever its body.
#[utoipa::path(
    post,
    path = super::BANS_PATH,
    operation_id = "banUser",
    description = "Bans a user from the stream's chat; with `durationSeconds`, a timeout. Followers see a `userBanned` event.",
    tag = "moderation",
    summary = "Ban a user, or time them out (the stream's owner or a moderator)",
    params(StreamPath),
    request_body(content = BanUserBody, content_type = "application/json"),
    responses((status = 201, description = "The ban.", body = BanJson)),
    security(("bearer" = [])),
)]
pub async fn ban_user(
    State(chat): State<ChatClient>,
    request_id: RequestId,
    token: BearerToken,
    ApiPath(stream_id): ApiPath<String>,
    ApiJson(body): ApiJson<BanUserBody>,
) -> Result<(StatusCode, Json<BanJson>), ApiError> {
    record_target(&stream_id, &body.user_id);
    let request = BanUserRequest {
        stream_id,
        user_id: body.user_id,
        duration_seconds: body.duration_seconds,
        reason: body.reason,
    };
    let ban = chat.ban_user(request, &token, &request_id).await?;
    Ok((StatusCode::CREATED, Json(BanJson::from(ban))))
}

#[utoipa::path(
    delete,
    path = super::BAN_PATH,
    operation_id = "unbanUser",
    description = "Lifts a ban or timeout; 204 whether or not there was one.",
    tag = "moderation",
    summary = "Lift a ban or a timeout",
    params(StreamUserPath),
    responses((status = 204, description = "Lifted (or there was none); no body.")),
    security(("bearer" = [])),
)]
/// Calls `UnbanUser`; 204 whether or not the user was banned (chat-service
/// treats lifting a missing ban as done).
pub async fn unban_user(
    State(chat): State<ChatClient>,
    request_id: RequestId,
    token: BearerToken,
    ApiPath(path): ApiPath<StreamUserPath>,
) -> Result<StatusCode, ApiError> {
    record_target(&path.stream_id, &path.user_id);
    let request = UnbanUserRequest {
        stream_id: path.stream_id,
        user_id: path.user_id,
    };
    chat.unban_user(request, &token, &request_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
