//! A stream's chat messages, `/api/v1/live-stream/{streamId}/chat/messages`:
//!
//! - `POST`: send a message (201 and the message); with an `Idempotency-Key`
//!   header, a retry returns the original message with
//!   `Idempotent-Replayed: true` instead of sending it twice; the sender's
//!   quota, when chat-service reports it, comes as `RateLimit-*` headers (on
//!   201 here, on a 429 through [`ApiError`]);
//! - `GET ?limit=&before=&after=`: read the history, one page at a time (200,
//!   `{"items": [...], "nextCursor": ...}`);
//!
//! and one message, `.../chat/messages/{messageId}`:
//!
//! - `DELETE`: delete it (204). Who may is chat-service's rule (the sender,
//!   the owner, moderators); its refusals come back through [`ApiError`]
//!   (403, 404, ...).

use allmine_chat_proto::v1::{DeleteMessageRequest, ListMessagesRequest, SendMessageRequest};
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    dto::{ChatMessageJson, ListMessagesQuery, MessagePageJson, SendMessageBody},
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery, BearerToken, IdempotencyKey},
    grpc::ChatClient,
    openapi::StreamPath,
    request_id::RequestId,
};

/// The response header that marks a replayed send.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Parses, calls `SendMessage`, maps the answer.
///
/// The refusals it can answer are listed in [`crate::openapi::refusals`].
#[utoipa::path(
    post,
    path = super::MESSAGES_PATH,
    operation_id = "sendMessage",
    description = "Sends a message as the token's user. With an `Idempotency-Key`, a retry returns the original message (201, `Idempotent-Replayed: true`) instead of sending it twice. The sender's quota comes as `RateLimit-*` headers when chat-service reports it.",
    tag = "messages",
    summary = "Send a message",
    params(
        StreamPath,
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
         pattern = "^[!-~]+$",
         description = "Makes retries safe: a retry with the same key (same sender, same stream) \
                        returns the original message with `Idempotent-Replayed: true`."),
    ),
    request_body(content = SendMessageBody, content_type = "application/json"),
    responses((
        status = 201,
        description = "The message as stored (for a replay: the original one).",
        body = ChatMessageJson,
        headers(
            ("Idempotent-Replayed" = String, description = "`true` when this is the answer to an earlier request with the same `Idempotency-Key`; absent otherwise."),
            ("RateLimit-Limit" = u64, description = "Messages allowed per window (when chat-service reports it)."),
            ("RateLimit-Remaining" = u64, description = "Messages left in the current window."),
            ("RateLimit-Reset" = u64, description = "Seconds until the quota is full again."),
        ),
    )),
    security(("bearer" = [])),
)]
///
/// The token is extracted first, so that a request without one is a 401
/// whatever its body. The stream id comes from the path only (the body cannot
/// carry one) and is passed as-is: chat-service validates it. A replay is
/// 201 with the original body too: the client's first attempt would have
/// seen exactly that.
pub async fn send_message(
    State(chat): State<ChatClient>,
    request_id: RequestId,
    token: BearerToken,
    IdempotencyKey(idempotency_key): IdempotencyKey,
    ApiPath(stream_id): ApiPath<String>,
    ApiJson(body): ApiJson<SendMessageBody>,
) -> Result<(StatusCode, HeaderMap, Json<ChatMessageJson>), ApiError> {
    // On the request's span (see `request_id`), so that every line logged for
    // this request, its final status included, names the stream.
    tracing::Span::current().record("stream_id", stream_id.as_str());
    let request = SendMessageRequest {
        stream_id,
        content: body.content,
        idempotency_key,
    };
    let sent = chat.send_message(request, &token, &request_id).await?;
    let mut headers = HeaderMap::new();
    if sent.replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    if let Some(rate_limit) = sent.rate_limit {
        rate_limit.insert_into(&mut headers);
    }
    Ok((
        StatusCode::CREATED,
        headers,
        Json(ChatMessageJson::from(sent.message)),
    ))
}

/// Parses, calls `ListMessages`, maps the page.
#[utoipa::path(
    get,
    path = super::MESSAGES_PATH,
    operation_id = "listMessages",
    description = "One page of the stream's history: newest first, or oldest first after `after`. Each item carries its `cursor`; `nextCursor` continues in the same direction (`null`: reading backwards reached the oldest message). Subscribing with the newest item's cursor joins live with no gap and no duplicate.",
    tag = "messages",
    summary = "Read the history, one page at a time",
    params(
        StreamPath,
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
         description = "Page size; default 50."),
        ("before" = Option<String>, Query, min_length = 1,
         description = "A cursor: the page of messages older than it, newest first."),
        ("after" = Option<String>, Query, min_length = 1,
         description = "A cursor: the page of messages newer than it, oldest first. Not with `before`."),
    ),
    responses((status = 200, description = "One page of messages.", body = MessagePageJson)),
    security(("bearer" = [])),
)]
///
/// The token is extracted first, so that a request without one is a 401
/// whatever its query. The stream id and the cursors are passed as-is:
/// chat-service validates them (and refuses `before` with `after`).
pub async fn list_messages(
    State(chat): State<ChatClient>,
    request_id: RequestId,
    token: BearerToken,
    ApiPath(stream_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListMessagesQuery>,
) -> Result<Json<MessagePageJson>, ApiError> {
    tracing::Span::current().record("stream_id", stream_id.as_str());
    let request = ListMessagesRequest {
        stream_id,
        page_size: query.page_size(),
        before: query.before,
        after: query.after,
    };
    let page = chat.list_messages(request, &token, &request_id).await?;
    Ok(Json(MessagePageJson::from(page)))
}

/// The path parameters `{streamId}` and `{messageId}`, passed to chat-service
/// as-is: it validates both.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Path)]
pub struct StreamMessagePath {
    #[param(pattern = "^[0-9a-fA-F]{24}$", example = "64d15f9e2e6c8f4d5a123000")]
    pub stream_id: String,
    #[param(pattern = "^[0-9a-fA-F]{24}$", example = "64d15f9e2e6c8f4d5a1230a1")]
    pub message_id: String,
}

/// Calls `DeleteMessage`; 204 and no body.
#[utoipa::path(
    delete,
    path = super::MESSAGE_PATH,
    operation_id = "deleteMessage",
    description = "Deletes a message; followers see a `messageDeleted` event. Its sender, the stream's owner and moderators may.",
    tag = "messages",
    summary = "Delete a message (its sender, the stream's owner or a moderator)",
    params(StreamMessagePath),
    responses((status = 204, description = "Deleted; no body.")),
    security(("bearer" = [])),
)]
pub async fn delete_message(
    State(chat): State<ChatClient>,
    request_id: RequestId,
    token: BearerToken,
    ApiPath(path): ApiPath<StreamMessagePath>,
) -> Result<StatusCode, ApiError> {
    let span = tracing::Span::current();
    span.record("stream_id", path.stream_id.as_str());
    span.record("message_id", path.message_id.as_str());
    let request = DeleteMessageRequest {
        stream_id: path.stream_id,
        message_id: path.message_id,
    };
    chat.delete_message(request, &token, &request_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
