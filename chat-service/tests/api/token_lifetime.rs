//! Attack 7 of issue 10: a live subscription does not outlive its token.
//! It ends with UNAUTHENTICATED "token has expired" once the token's `exp`
//! plus the leeway has passed, whether events keep coming or none do, while
//! it received the chat until then.

use std::time::Duration;

use allmine_chat_proto::v1 as pb;
use allmine_test_support::{TokenBuilder, now_secs};
use pb::chat_event::Event;
use serde_json::json;
use tokio::task::JoinHandle;
use tonic::{Code, Status, Streaming};

use crate::helpers::{TestService, authorized, spawn_service_with};

/// A hang detector, not a timing assertion: the tokens below expire within
/// a few seconds, so a subscription still open after this never ends.
const WAIT: Duration = Duration::from_secs(20);

/// Seconds until the subscriber's token expires: enough for one message to
/// be sent and delivered first, even on a loaded machine.
const LIFETIME_SECS: i64 = 3;

async fn spawn() -> TestService {
    spawn_service_with(|config| {
        // No leeway: the token is refused exactly at its `exp`.
        config.jwt_leeway_secs = 0;
        config.live_settle_ms = Some(0);
        config.live_poll_ms = 50;
        config.burst_viewer_limit = 100_000;
    })
    .await
}

/// A subscription to `stream` with a token expiring at `expires_at` (unix
/// seconds); returns the stream and the token.
async fn subscribe_until(
    service: &mut TestService,
    stream: &str,
    expires_at: i64,
) -> (Streaming<pb::ChatEvent>, String) {
    let token = TokenBuilder::new().claim("exp", json!(expires_at)).build();
    let events = service
        .subscribe_as(&token, stream, None)
        .await
        .expect("subscribed while the token is valid");
    (events, token)
}

/// Reads `events` until it fails or ends; returns the messages read and how
/// it ended. Fails at once on a message created after `expires_at` (unix
/// seconds): a subscription that outlived its token.
async fn read_to_the_end(
    events: &mut Streaming<pb::ChatEvent>,
    expires_at: i64,
) -> (Vec<pb::ChatMessage>, Option<Status>) {
    let mut messages = Vec::new();
    loop {
        let next = tokio::time::timeout(WAIT, events.message())
            .await
            .expect("the subscription ends within the wait");
        match next {
            Ok(Some(pb::ChatEvent {
                event: Some(Event::Message(message)),
                ..
            })) => {
                let created = message.created_at.expect("created_at");
                assert!(
                    created.seconds < expires_at,
                    "a message created after the token expired was delivered"
                );
                messages.push(message);
            }
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => return (messages, None),
            Err(status) => return (messages, Some(status)),
        }
    }
}

fn assert_expired(ended: Option<Status>, expires_at: i64) {
    let status = ended.expect("ends with an error, not silently");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(status.message(), "token has expired");
    assert!(
        now_secs() >= expires_at,
        "ended before the token expired (at {expires_at}, now {})",
        now_secs()
    );
}

#[tokio::test]
async fn a_busy_subscription_ends_when_its_token_expires_and_delivers_nothing_after() {
    let mut service = spawn().await;
    let stream = service.open_stream().await;
    let expires_at = now_secs() + LIFETIME_SECS;
    let (mut events, token) = subscribe_until(&mut service, &stream, expires_at).await;

    // Someone else keeps chatting, before and after the expiry.
    let mut sender_side = service.client.clone();
    let sender_stream = stream.clone();
    let chatter: JoinHandle<()> = tokio::spawn(async move {
        let sender = TokenBuilder::new().build();
        for index in 0.. {
            let request = authorized(
                pb::SendMessageRequest {
                    stream_id: sender_stream.clone(),
                    content: format!("message {index}"),
                    idempotency_key: None,
                },
                &format!("Bearer {sender}"),
            );
            if sender_side.send_message(request).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let (messages, ended) = read_to_the_end(&mut events, expires_at).await;
    chatter.abort();
    assert!(!messages.is_empty(), "the chat was delivered until expiry");
    assert_expired(ended, expires_at);
    assert!(
        events.message().await.ok().flatten().is_none(),
        "nothing after the error"
    );

    // The same token is refused everywhere else too.
    let status = service
        .send(&token, &stream, "still here?")
        .await
        .expect_err("expired token refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{status:?}");
    service.stop().await;
}

#[tokio::test]
async fn an_idle_subscription_ends_when_its_token_expires() {
    let mut service = spawn().await;
    let stream = service.open_stream().await;
    let expires_at = now_secs() + LIFETIME_SECS;
    let (mut events, _token) = subscribe_until(&mut service, &stream, expires_at).await;
    let sent = service
        .send_as_anyone(&stream, "one message, then silence")
        .await
        .expect("sent");

    let (messages, ended) = read_to_the_end(&mut events, expires_at).await;
    assert_eq!(messages, [sent], "received before expiry");
    assert_expired(ended, expires_at);
    service.stop().await;
}

#[tokio::test]
async fn a_subscription_resumed_with_a_renewed_token_continues_from_its_cursor() {
    let mut service = spawn().await;
    let stream = service.open_stream().await;
    let expires_at = now_secs() + LIFETIME_SECS;
    let (mut events, _token) = subscribe_until(&mut service, &stream, expires_at).await;
    let first = service
        .send_as_anyone(&stream, "before expiry")
        .await
        .expect("sent");
    let (messages, ended) = read_to_the_end(&mut events, expires_at).await;
    assert_eq!(messages, std::slice::from_ref(&first));
    assert_expired(ended, expires_at);

    // Missed while signed out, then read on resume with a fresh token.
    let missed = service
        .send_as_anyone(&stream, "while signed out")
        .await
        .expect("sent");
    let renewed = TokenBuilder::new().build();
    let mut resumed = service
        .subscribe_as(&renewed, &stream, Some(&first.cursor))
        .await
        .expect("subscribed again");
    let event = tokio::time::timeout(WAIT, resumed.message())
        .await
        .expect("an event within the wait")
        .expect("a healthy stream")
        .expect("the stream is open");
    assert_eq!(event.event, Some(Event::Message(missed)));
    service.stop().await;
}
