//! `ListMessages`: one page of a stream's history, in either direction,
//! with the cursor to continue.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{ChatServiceImpl, request_id};
use crate::auth::Identity;
use crate::domain::{Cursor, StreamId};
use crate::error::{ChatError, Violation};
use crate::rules::load_stream;
use crate::storage::PageStart;

/// The page size when the request names none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page a request may ask for.
pub const MAX_PAGE_SIZE: usize = 100;

struct PageRequest {
    stream_id: StreamId,
    start: PageStart,
    size: usize,
}

impl TryFrom<pb::ListMessagesRequest> for PageRequest {
    type Error = ChatError;

    fn try_from(request: pb::ListMessagesRequest) -> Result<Self, Self::Error> {
        let mut violations = Vec::new();
        let stream_id = StreamId::parse(&request.stream_id)
            .map_err(|error| violations.push(Violation::new("stream_id", error)))
            .ok();
        let size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size if (size as usize) <= MAX_PAGE_SIZE => size as usize,
            size => {
                violations.push(Violation::new(
                    "page_size",
                    format!("must be between 1 and {MAX_PAGE_SIZE}, got {size}"),
                ));
                DEFAULT_PAGE_SIZE
            }
        };
        let mut cursor = |field: &'static str, text: Option<String>| {
            text.and_then(|text| {
                Cursor::parse(&text)
                    .map_err(|error| violations.push(Violation::new(field, error)))
                    .ok()
            })
        };
        let before = cursor("before", request.before);
        let after = cursor("after", request.after);
        let start = match (before, after) {
            (Some(_), Some(_)) => {
                violations.push(Violation::new(
                    "after",
                    "give either before or after, not both",
                ));
                PageStart::Newest
            }
            (Some(before), None) => PageStart::Before(before.position()),
            (None, Some(after)) => PageStart::After(after.position()),
            (None, None) => PageStart::Newest,
        };
        match stream_id {
            Some(stream_id) if violations.is_empty() => Ok(Self {
                stream_id,
                start,
                size,
            }),
            _ => Err(ChatError::InvalidArgument(violations)),
        }
    }
}

pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::ListMessagesRequest>,
) -> Result<Response<pb::ListMessagesResponse>, Status> {
    let span = tracing::info_span!("list_messages", request_id = %request_id(&request));
    async move {
        // Any signed-in user may read a registered stream's chat.
        Identity::from_request(&request)?;
        let page = PageRequest::try_from(request.into_inner())?;
        load_stream(&service.store, &page.stream_id).await?;
        // Pages that reach the newest messages stop at the history horizon,
        // so that a client may subscribe after their newest item and miss
        // nothing (see `Hub::history_horizon_ms`); what is newer comes live.
        let horizon_ms = match page.start {
            PageStart::Newest | PageStart::After(_) => Some(service.hub.history_horizon_ms().await),
            PageStart::Before(_) => None,
        };
        let read = service
            .store
            .page(&page.stream_id, page.start, page.size)
            .await?;
        let full = read.len() == page.size;
        let oldest_read = read.last().map(|message| Cursor::new(message.position()));
        let messages: Vec<_> = read
            .into_iter()
            .filter(|message| {
                horizon_ms.is_none_or(|horizon| message.created_at.timestamp_millis() <= horizon)
            })
            .collect();

        let next_cursor = match page.start {
            // Forwards there may always be more to come: keep the place.
            PageStart::After(after) => Some(
                messages
                    .last()
                    .map_or(Cursor::new(after), |last| Cursor::new(last.position())),
            ),
            // Backwards, a short page means the oldest message was reached
            // (the horizon only ever removes the newest ones).
            PageStart::Newest | PageStart::Before(_) => oldest_read.filter(|_| full),
        };
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages.into_iter().map(pb::ChatMessage::from).collect(),
            next_cursor: next_cursor.map(|cursor| cursor.to_string()),
        }))
    }
    .instrument(span)
    .await
    .map_err(|error: ChatError| Status::from(error))
}
