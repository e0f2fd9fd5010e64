//! The two readers the checker judges: history (`ListMessages` forwards from
//! a cursor, page after page) and a subscription resumed from a cursor
//! (`SubscribeMessages` with `after`, resubscribing at each `gap`, as a
//! client is told to).

use std::time::Duration;

use allmine_chat_proto::v1::chat_event::Event;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_chat_proto::v1::{ListMessagesRequest, SubscribeMessagesRequest};
use allmine_test_support::TokenBuilder;
use tonic::transport::Channel;

use crate::helpers::authorized;
use allmine_test_support::history::Observed;

/// A hang detector for each whole read, far above what a read needs.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Every message of `stream` after `cursor`, oldest first.
pub async fn read_history(channel: &Channel, stream: &str, cursor: &str) -> Vec<Observed> {
    let mut client = ChatServiceClient::new(channel.clone());
    let token = format!("Bearer {}", TokenBuilder::new().build());
    let read = async {
        let mut observed = Vec::new();
        let mut after = cursor.to_owned();
        loop {
            let request = authorized(
                ListMessagesRequest {
                    stream_id: stream.to_owned(),
                    page_size: 100,
                    before: None,
                    after: Some(after.clone()),
                },
                &token,
            );
            let page = client
                .list_messages(request)
                .await
                .expect("history is readable once the service is back")
                .into_inner();
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

/// Every message of `stream` after `cursor` delivered by a subscription,
/// up to and including the one whose content is `last`.
pub async fn read_subscription(
    channel: &Channel,
    stream: &str,
    cursor: &str,
    last: &str,
) -> Vec<Observed> {
    let mut client = ChatServiceClient::new(channel.clone());
    let token = format!("Bearer {}", TokenBuilder::new().build());
    let read = async {
        let mut observed = Vec::new();
        let mut after = cursor.to_owned();
        loop {
            let request = authorized(
                SubscribeMessagesRequest {
                    stream_id: stream.to_owned(),
                    after: Some(after.clone()),
                },
                &token,
            );
            let mut events = client
                .subscribe_messages(request)
                .await
                .expect("subscribes")
                .into_inner();
            loop {
                let event = events
                    .message()
                    .await
                    .expect("the subscription keeps going")
                    .expect("the subscription ends only at a gap");
                match event.event {
                    Some(Event::Message(message)) => {
                        let done = message.content == last;
                        observed.push(Observed {
                            id: message.id,
                            content: message.content,
                        });
                        if done {
                            return observed;
                        }
                    }
                    // Resume where the gap says, as a client would.
                    Some(Event::Gap(_)) => {
                        after = event.cursor;
                        break;
                    }
                    _ => {}
                }
            }
        }
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .expect("the subscription delivered the run in time")
}

/// What a live subscriber saw, and how often it had to resume.
pub struct LiveView {
    pub observed: Vec<Observed>,
    /// Subscriptions that ended under it (a killed server, a failing store)
    /// and were resumed from the last event it had.
    pub resumes: usize,
}

/// A subscriber that follows `stream` live from `cursor` throughout a run,
/// as a client would: when its subscription breaks it subscribes again
/// after the last event it received (retrying while the service is away),
/// until it receives the message whose content is `last`.
pub fn follow_live(
    channel: Channel,
    stream: String,
    cursor: String,
    last: String,
) -> tokio::task::JoinHandle<LiveView> {
    tokio::spawn(async move {
        let mut client = ChatServiceClient::new(channel);
        let token = format!("Bearer {}", TokenBuilder::new().build());
        let mut view = LiveView {
            observed: Vec::new(),
            resumes: 0,
        };
        let mut after = cursor;
        loop {
            let request = authorized(
                SubscribeMessagesRequest {
                    stream_id: stream.clone(),
                    after: Some(after.clone()),
                },
                &token,
            );
            let mut events = match client.subscribe_messages(request).await {
                Ok(response) => response.into_inner(),
                Err(_) => {
                    // The service is away: try again shortly.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            while let Ok(Some(event)) = events.message().await {
                match event.event {
                    Some(Event::Message(message)) => {
                        after = event.cursor;
                        let done = message.content == last;
                        view.observed.push(Observed {
                            id: message.id,
                            content: message.content,
                        });
                        if done {
                            return view;
                        }
                    }
                    Some(Event::Gap(_)) => after = event.cursor,
                    _ => after = event.cursor,
                }
            }
            view.resumes += 1;
        }
    })
}
