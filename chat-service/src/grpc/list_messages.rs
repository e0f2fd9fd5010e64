//! `ListMessages`: one page of a stream's history, in either direction,
//! with the cursor to continue.

use allmine_chat_proto::v1 as pb;
use tonic::{Request, Response};
use tracing::field::{Empty, display};

use super::ChatServiceImpl;
use super::request::{request_id, stream_field};
use crate::auth::Identity;
use crate::domain::{Cursor, StreamId};
use crate::error::{ChatError, Violations};
use crate::lookup::registered_stream;
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
        let mut violations = Violations::default();
        let stream_id = violations.check("stream_id", StreamId::parse(&request.stream_id));
        let size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size if (size as usize) <= MAX_PAGE_SIZE => size as usize,
            size => {
                violations.add(
                    "page_size",
                    format!("must be between 1 and {MAX_PAGE_SIZE}, got {size}"),
                );
                DEFAULT_PAGE_SIZE
            }
        };
        let before = request
            .before
            .and_then(|text| violations.check("before", Cursor::parse(&text)));
        let after = request
            .after
            .and_then(|text| violations.check("after", Cursor::parse(&text)));
        let start = match (before, after) {
            (Some(_), Some(_)) => {
                violations.add("after", "give either before or after, not both");
                PageStart::Newest
            }
            (Some(before), None) => PageStart::Before(before.position()),
            (None, Some(after)) => PageStart::After(after.position()),
            (None, None) => PageStart::Newest,
        };
        violations.finish(|| {
            Some(Self {
                stream_id: stream_id?,
                start,
                size,
            })
        })
    }
}

#[tracing::instrument(
    name = "list_messages",
    skip_all,
    fields(
        request_id = %request_id(&request),
        stream_id = %stream_field(&request.get_ref().stream_id),
        user_id = Empty,
    )
)]
pub(super) async fn handle(
    service: &ChatServiceImpl,
    request: Request<pb::ListMessagesRequest>,
) -> Result<Response<pb::ListMessagesResponse>, ChatError> {
    // Any signed-in user may read a registered stream's chat.
    let identity = Identity::from_request(&request)?;
    tracing::Span::current().record("user_id", display(identity.user_id));
    let page = PageRequest::try_from(request.into_inner())?;
    registered_stream(&service.store, &page.stream_id).await?;
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
