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

use crate::{
    dto::{ChatMessageJson, ListMessagesQuery, MessagePageJson, SendMessageBody},
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery, BearerToken, IdempotencyKey},
    grpc::ChatClient,
    request_id::RequestId,
};

/// The response header that marks a replayed send.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Parses, calls `SendMessage`, maps the answer.
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
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamMessagePath {
    pub stream_id: String,
    pub message_id: String,
}

/// Calls `DeleteMessage`; 204 and no body.
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
