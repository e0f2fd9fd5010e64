//! The readers the history checker judges, all on the second instance
//! (instance B; the load sends through A): history (`ListMessages` forwards
//! from a cursor, page after page), a subscription from a cursor, and a live
//! subscriber that follows the whole run and resumes after the last event it
//! had whenever its subscription breaks, as a client is told to.

use std::time::Duration;

use allmine_chat_proto::v1::chat_event::Event;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_chat_proto::v1::{ListMessagesRequest, ListMessagesResponse, SubscribeMessagesRequest};
use allmine_test_support::TokenBuilder;
use allmine_test_support::grpc::bearer;
use allmine_test_support::history::Observed;
use tonic::Status;
use tonic::transport::Channel;

/// A hang detector for each whole read, far above what a read needs.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One history page of `stream` after `cursor`, answered within `deadline`
/// (a timeout becomes DEADLINE_EXCEEDED, which no rule accepts).
pub async fn history_page(
    channel: &Channel,
    stream: &str,
    cursor: &str,
    deadline: Duration,
) -> Result<ListMessagesResponse, Status> {
    let request = bearer(
        ListMessagesRequest {
            stream_id: stream.to_owned(),
            page_size: 100,
            before: None,
            after: Some(cursor.to_owned()),
        },
        &TokenBuilder::new().build(),
    );
    let mut client = ChatServiceClient::new(channel.clone());
    match tokio::time::timeout(deadline, client.list_messages(request)).await {
        Ok(answer) => answer.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded("no history page in time")),
    }
}

/// Every message of `stream` after `cursor`, oldest first.
pub async fn read_history(channel: &Channel, stream: &str, cursor: &str) -> Vec<Observed> {
    let read = async {
        let mut observed = Vec::new();
        let mut after = cursor.to_owned();
        loop {
            let page = history_page(channel, stream, &after, READ_TIMEOUT)
                .await
                .expect("history is readable with a quorum up");
            if page.messages.is_empty() {
                return observed;
            }
            observed.extend(page.messages.into_iter().map(|message| Observed {
                id: message.id,
                content: message.content,
            }));
            after = page
                .next_cursor
                .expect("reading forwards always has a cursor");
        }
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .expect("history read in time")
}

/// Every message of `stream` after `cursor` delivered by a fresh
/// subscription, up to and including the one whose content is `last`.
pub async fn read_subscription(
    channel: &Channel,
    stream: &str,
    cursor: &str,
    last: &str,
) -> Vec<Observed> {
    let follower = follow(
        channel.clone(),
        stream.to_owned(),
        cursor.to_owned(),
        last.to_owned(),
    );
    tokio::time::timeout(READ_TIMEOUT, follower)
        .await
        .expect("the subscription delivered the run in time")
        .expect("subscriber task")
        .observed
}

/// History after `cursor` up to the newest message, or up to and including
/// `last`, and the cursor to subscribe after.
async fn catch_up(
    channel: &Channel,
    stream: &str,
    cursor: &str,
    last: &str,
) -> Result<(Vec<Observed>, String), Status> {
    let mut read = Vec::new();
    let mut after = cursor.to_owned();
    loop {
        let page = history_page(channel, stream, &after, READ_TIMEOUT).await?;
        if page.messages.is_empty() {
            return Ok((read, after));
        }
        for message in page.messages {
            let done = message.content == last;
            read.push(Observed {
                id: message.id,
                content: message.content,
            });
            if done {
                return Ok((read, after));
            }
        }
        after = page
            .next_cursor
            .ok_or_else(|| Status::internal("a forward page without a cursor"))?;
    }
}

/// What a subscriber saw, and how often it had to resume.
pub struct LiveView {
    pub observed: Vec<Observed>,
    pub resumes: usize,
}

/// A subscriber that follows `stream` from `cursor`: when its subscription
/// breaks or cannot be opened it subscribes again after the last event it
/// received, until it receives the message whose content is `last`. A gap
/// is followed by history, then a new subscription, as clients are told.
pub fn follow(
    channel: Channel,
    stream: String,
    cursor: String,
    last: String,
) -> tokio::task::JoinHandle<LiveView> {
    tokio::spawn(async move {
        let mut client = ChatServiceClient::new(channel.clone());
        let token = TokenBuilder::new().build();
        let mut view = LiveView {
            observed: Vec::new(),
            resumes: 0,
        };
        let mut after = cursor;
        loop {
            let request = bearer(
                SubscribeMessagesRequest {
                    stream_id: stream.clone(),
                    after: Some(after.clone()),
                },
                &token,
            );
            let mut events = match client.subscribe_messages(request).await {
                Ok(response) => response.into_inner(),
                Err(_) => {
                    // No quorum: try again shortly.
                    view.resumes += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            while let Ok(Some(event)) = events.message().await {
                match event.event {
                    Some(Event::Message(message)) => {
                        let done = message.content == last;
                        view.observed.push(Observed {
                            id: message.id,
                            content: message.content,
                        });
                        after = event.cursor;
                        if done {
                            return view;
                        }
                    }
                    // Too far behind (a long outage, or a start far back):
                    // the documented recipe, history after the gap's cursor,
                    // then a subscription after the newest page.
                    Some(Event::Gap(_)) => {
                        match catch_up(&channel, &stream, &event.cursor, &last).await {
                            Ok((read, cursor)) => {
                                let done = read.iter().any(|message| message.content == last);
                                view.observed.extend(read);
                                if done {
                                    return view;
                                }
                                after = cursor;
                            }
                            Err(_) => after = event.cursor,
                        }
                        break;
                    }
                    _ => after = event.cursor,
                }
            }
            view.resumes += 1;
        }
    })
}
