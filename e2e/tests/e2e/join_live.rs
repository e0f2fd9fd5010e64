//! The client recipe for joining a live chat, followed from outside on both
//! stores while other users keep sending: read the newest history page (and
//! scroll back to the oldest), subscribe after the newest item's cursor (SSE
//! `?after=` then `Last-Event-ID` on reconnect; gRPC `after`), reconnect once
//! with the last event's cursor, and check that history and live together
//! hold every message exactly once: no gap, no duplicate.

use std::collections::HashMap;
use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_test_support::TokenBuilder;
use allmine_test_support::backends::Backend;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::helpers::{Stack, spawn_stack_with};

allmine_test_support::for_each_backend!(
    rest_history_then_sse_after_the_newest_cursor_has_every_message_exactly_once,
    grpc_history_then_subscribe_after_the_newest_cursor_has_every_message_exactly_once,
);

/// Users sending at once, and how many messages each sends.
const SENDERS: usize = 3;
const MESSAGES_PER_SENDER: usize = 40;
/// Messages acknowledged before the client reads history, so that history is
/// not empty and the senders are still busy while it joins.
const SENT_BEFORE_READING: usize = 10;
/// Live events read before the client drops its connection and resumes.
const EVENTS_BEFORE_RECONNECT: usize = 5;
/// A hang detector, not a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

async fn spawn(backend: Backend) -> Stack {
    spawn_stack_with(backend, |config| {
        config.burst_viewer_limit = 10_000;
    })
    .await
}

/// Users sending through the edge while the client joins.
struct Senders {
    tasks: Vec<JoinHandle<Vec<String>>>,
    acknowledged: watch::Receiver<usize>,
}

impl Senders {
    fn start(stack: &Stack, stream: &str) -> Self {
        let (count, acknowledged) = watch::channel(0usize);
        let tasks = (0..SENDERS)
            .map(|sender| {
                let (client, base, stream) =
                    (stack.client.clone(), stack.base.clone(), stream.to_owned());
                let count = count.clone();
                tokio::spawn(async move {
                    let token = TokenBuilder::new().build();
                    let mut ids = Vec::with_capacity(MESSAGES_PER_SENDER);
                    for index in 0..MESSAGES_PER_SENDER {
                        let body = serde_json::json!({ "content": format!("{sender}-{index}") });
                        let response =
                            crate::helpers::post_message(&client, &base, &stream, &body, &token)
                                .await;
                        assert_eq!(response.status().as_u16(), 201);
                        let message: Value = response.json().await.expect("JSON");
                        ids.push(message["_id"].as_str().expect("an id").to_owned());
                        count.send_modify(|sent| *sent += 1);
                    }
                    ids
                })
            })
            .collect();
        Self {
            tasks,
            acknowledged,
        }
    }

    async fn wait_for_some(&mut self) {
        tokio::time::timeout(
            WAIT,
            self.acknowledged
                .wait_for(|sent| *sent >= SENT_BEFORE_READING),
        )
        .await
        .expect("the first messages are sent")
        .expect("the senders run");
    }

    /// Every id the senders were given.
    async fn finish(self) -> Vec<String> {
        let mut ids = Vec::new();
        for task in self.tasks {
            ids.extend(task.await.expect("a sender finished"));
        }
        ids
    }
}

/// The content of the message sent once every sender is done: it follows all
/// of theirs in the stream's order, so once live delivers it, live has
/// delivered everything it ever will of theirs.
const LAST: &str = "the last one";

/// Waits for the senders, then sends [`LAST`]; returns every id sent.
async fn finish_sending(stack: &Stack, stream: &str, senders: Senders) -> Vec<String> {
    let mut ids = senders.finish().await;
    let response = stack.send(stream, &TokenBuilder::new().build(), LAST).await;
    assert_eq!(response.status().as_u16(), 201);
    let message: Value = response.json().await.expect("JSON");
    ids.push(message["_id"].as_str().expect("an id").to_owned());
    ids
}

/// A live message: its id and content.
type Live = Option<(String, String)>;

/// Each of `expected` exactly once in history and live together, and nothing
/// else.
fn assert_exactly_once(history: &[String], live: &[String], expected: &[String]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in history.iter().chain(live) {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<&&str> = seen
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !seen.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "a gap: {} of {} messages neither in history ({}) nor live ({}): {missing:?}",
        missing.len(),
        expected.len(),
        history.len(),
        live.len()
    );
    assert_eq!(seen.len(), expected.len(), "nothing but what was sent");
    assert!(
        history.len() >= SENT_BEFORE_READING,
        "history holds what was sent before joining"
    );
}

// REST and SSE.

/// One `GET .../chat/messages` page: its items' ids and cursors, and
/// `nextCursor`.
async fn rest_page(
    stack: &Stack,
    stream: &str,
    token: &str,
    query: &str,
) -> (Vec<(String, String)>, Option<String>) {
    let response = stack
        .client
        .get(format!(
            "{}/api/v1/live-stream/{stream}/chat/messages?{query}",
            stack.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(response.status().as_u16(), 200);
    let page: Value = response.json().await.expect("JSON");
    let items = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["_id"].as_str().expect("an id").to_owned(),
                item["cursor"]
                    .as_str()
                    .expect("every item's cursor")
                    .to_owned(),
            )
        })
        .collect();
    (items, page["nextCursor"].as_str().map(str::to_owned))
}

/// The recipe's first step: the newest page, then older pages down to the
/// oldest. Returns every id read and the newest item's cursor.
async fn rest_history(stack: &Stack, stream: &str, token: &str) -> (Vec<String>, String) {
    let (items, mut next) = rest_page(stack, stream, token, "limit=20").await;
    let newest = items.first().expect("history is not empty").1.clone();
    let mut ids: Vec<String> = items.into_iter().map(|(id, _)| id).collect();
    while let Some(cursor) = next {
        let (items, further) =
            rest_page(stack, stream, token, &format!("limit=20&before={cursor}")).await;
        ids.extend(items.into_iter().map(|(id, _)| id));
        next = further;
    }
    (ids, newest)
}

/// An open SSE response, read one event at a time.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// `GET .../chat/events` with `query` and an optional `Last-Event-ID`.
    async fn open(
        stack: &Stack,
        stream: &str,
        token: &str,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut request = stack
            .client
            .get(format!(
                "{}/api/v1/live-stream/{stream}/chat/events?{query}",
                stack.base
            ))
            .bearer_auth(token)
            // The client's overall timeout would cut a long-lived stream.
            .timeout(Duration::from_secs(300));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the edge answers");
        assert_eq!(response.status().as_u16(), 200);
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's `id` and, for a `message`, the message.
    async fn next(&mut self) -> (String, Live) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        kind = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                let Some(kind) = kind else {
                    continue; // a keep-alive comment
                };
                assert_ne!(kind, "gap", "no gap while keeping up: {data}");
                assert_ne!(kind, "error", "no error: {data}");
                let id = id.expect("every event carries its cursor as id");
                let data: Value = serde_json::from_str(&data).expect("JSON data");
                let message = (kind == "message").then(|| {
                    (
                        data["_id"].as_str().expect("an id").to_owned(),
                        data["content"].as_str().expect("content").to_owned(),
                    )
                });
                return (id, message);
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event within the wait")
                .expect("a healthy stream")
                .expect("the stream is open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

async fn rest_history_then_sse_after_the_newest_cursor_has_every_message_exactly_once(
    backend: Backend,
) {
    let stack = spawn(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    let mut senders = Senders::start(&stack, &stream);
    senders.wait_for_some().await;

    let (history, newest) = rest_history(&stack, &stream, &token).await;
    let follow = async {
        // `EventSource` sends no headers on its first connection: `after`.
        let mut events =
            EventStream::open(&stack, &stream, &token, &format!("after={newest}"), None).await;
        let mut live = Vec::new();
        let mut reconnected = false;
        loop {
            let (event_id, message) = events.next().await;
            let Some((id, content)) = message else {
                continue;
            };
            live.push(id);
            if content == LAST {
                return live;
            }
            if !reconnected && live.len() == EVENTS_BEFORE_RECONNECT {
                // The connection drops; the browser reconnects with the
                // last event id.
                drop(events);
                events = EventStream::open(&stack, &stream, &token, "", Some(&event_id)).await;
                reconnected = true;
            }
        }
    };
    let (live, expected) = tokio::join!(follow, finish_sending(&stack, &stream, senders));
    assert_exactly_once(&history, &live, &expected);
    stack.finish().await;
}

// gRPC, straight to chat-service.

async fn grpc_client(stack: &Stack) -> ChatServiceClient<tonic::transport::Channel> {
    ChatServiceClient::connect(format!("http://{}", stack.service_addr()))
        .await
        .expect("chat-service answers")
}

fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII"),
    );
    request
}

/// The recipe's first step over gRPC: `ListMessages` newest, then `before`
/// down to the oldest. Returns every id read and the newest item's cursor.
async fn grpc_history(
    client: &mut ChatServiceClient<tonic::transport::Channel>,
    stream: &str,
    token: &str,
) -> (Vec<String>, String) {
    let mut before = None;
    let mut newest = None;
    let mut ids = Vec::new();
    loop {
        let request = pb::ListMessagesRequest {
            stream_id: stream.to_owned(),
            page_size: 20,
            before: before.take(),
            after: None,
        };
        let page = client
            .list_messages(authorized(request, token))
            .await
            .expect("a page")
            .into_inner();
        if newest.is_none() {
            newest = Some(
                page.messages
                    .first()
                    .expect("history is not empty")
                    .cursor
                    .clone(),
            );
        }
        ids.extend(page.messages.into_iter().map(|message| message.id));
        match page.next_cursor {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    (ids, newest.expect("a first page"))
}

async fn grpc_subscribe(
    client: &mut ChatServiceClient<tonic::transport::Channel>,
    stream: &str,
    token: &str,
    after: &str,
) -> tonic::Streaming<pb::ChatEvent> {
    let request = pb::SubscribeMessagesRequest {
        stream_id: stream.to_owned(),
        after: Some(after.to_owned()),
    };
    client
        .subscribe_messages(authorized(request, token))
        .await
        .expect("subscribed")
        .into_inner()
}

/// The next event's cursor and, for a message, the message.
async fn grpc_next(events: &mut tonic::Streaming<pb::ChatEvent>) -> (String, Live) {
    let event = tokio::time::timeout(WAIT, events.message())
        .await
        .expect("an event within the wait")
        .expect("a healthy stream")
        .expect("the stream is open");
    let message = match event.event {
        Some(pb::chat_event::Event::Message(message)) => Some((message.id, message.content)),
        Some(pb::chat_event::Event::Gap(gap)) => panic!("no gap while keeping up: {gap:?}"),
        _ => None,
    };
    (event.cursor, message)
}

async fn grpc_history_then_subscribe_after_the_newest_cursor_has_every_message_exactly_once(
    backend: Backend,
) {
    let stack = spawn(backend).await;
    let (stream, _owner) = stack.open_stream().await;
    let token = TokenBuilder::new().build();
    let mut client = grpc_client(&stack).await;
    let mut senders = Senders::start(&stack, &stream);
    senders.wait_for_some().await;

    let (history, newest) = grpc_history(&mut client, &stream, &token).await;
    let follow = async {
        let mut events = grpc_subscribe(&mut client, &stream, &token, &newest).await;
        let mut live = Vec::new();
        let mut reconnected = false;
        loop {
            let (cursor, message) = grpc_next(&mut events).await;
            let Some((id, content)) = message else {
                continue;
            };
            live.push(id);
            if content == LAST {
                return live;
            }
            if !reconnected && live.len() == EVENTS_BEFORE_RECONNECT {
                // A dropped connection: resubscribe after the last event.
                drop(events);
                events = grpc_subscribe(&mut client, &stream, &token, &cursor).await;
                reconnected = true;
            }
        }
    };
    let (live, expected) = tokio::join!(follow, finish_sending(&stack, &stream, senders));
    assert_exactly_once(&history, &live, &expected);
    stack.finish().await;
}
