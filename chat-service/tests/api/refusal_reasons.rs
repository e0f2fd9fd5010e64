//! Machine-readable refusals over gRPC: every rule's refusal carries a
//! `google.rpc.ErrorInfo` with its reason and the domain `chat.allmine.tv`
//! (beside the details it carried before), a ban says until when, and sends
//! and rate-limit refusals carry the RateLimit metadata
//! (`ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset`).

use std::sync::Arc;

use allmine_chat_proto::v1 as pb;
use allmine_test_support::{TokenBuilder, random_object_id};
use chat_service::error::RefusalReason;
use chat_service::grpc::status::{
    BANNED_UNTIL, ERROR_DOMAIN, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET,
    RETRY_AFTER_SECONDS,
};
use chat_service::storage::SharedStore;
use chat_service::storage::embedded::EmbeddedStore;
use chrono::{DateTime, Utc};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};
use tonic_types::StatusExt;

use crate::gated_store::{Gate, gated};
use crate::helpers::{TestService, authorized, spawn_service_on, spawn_service_with};

/// How long a test waits for something that must happen (a hang detector,
/// not a speed assertion).
const WAIT: std::time::Duration = std::time::Duration::from_secs(15);

fn bearer(token: &TokenBuilder) -> String {
    format!("Bearer {}", token.build())
}

/// The reason of `status`'s ErrorInfo, after checking its domain.
fn reason(status: &Status) -> String {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, ERROR_DOMAIN, "{status:?}");
    info.reason
}

fn assert_refused(result: Result<impl std::fmt::Debug, Status>, expected: RefusalReason) -> Status {
    let status = result.expect_err("refused");
    assert_eq!(reason(&status), expected.as_str(), "{status:?}");
    status
}

/// One RateLimit metadata entry as a number.
fn rate_field(metadata: &MetadataMap, name: &str) -> u64 {
    metadata
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {metadata:?}"))
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a number")
}

/// (limit, remaining, reset) of `metadata`.
fn quota(metadata: &MetadataMap) -> (u64, u64, u64) {
    (
        rate_field(metadata, RATELIMIT_LIMIT),
        rate_field(metadata, RATELIMIT_REMAINING),
        rate_field(metadata, RATELIMIT_RESET),
    )
}

/// Calls this file makes beyond the harness's typed helpers: with the
/// response metadata, or with the refusal kept.
trait ReasonCalls {
    fn as_service<T>(&self, message: T) -> Request<T>;
    async fn send_with_metadata(
        &mut self,
        sender: &TokenBuilder,
        stream_id: &str,
        content: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Response<pb::ChatMessage>, Status>;
    async fn ban_as(
        &mut self,
        actor: &TokenBuilder,
        stream_id: &str,
        user: &TokenBuilder,
        duration_seconds: Option<u32>,
    ) -> Result<pb::Ban, Status>;
    async fn set_slow_mode_seconds(&mut self, stream_id: &str, seconds: u32);
}

impl ReasonCalls for TestService {
    fn as_service<T>(&self, message: T) -> Request<T> {
        authorized(message, &format!("Bearer {}", self.service_token))
    }

    /// A send as `sender`, with its response (metadata included).
    async fn send_with_metadata(
        &mut self,
        sender: &TokenBuilder,
        stream_id: &str,
        content: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Response<pb::ChatMessage>, Status> {
        let request = authorized(
            pb::SendMessageRequest {
                stream_id: stream_id.into(),
                content: content.into(),
                idempotency_key: idempotency_key.map(Into::into),
            },
            &bearer(sender),
        );
        self.client.send_message(request).await
    }

    async fn ban_as(
        &mut self,
        actor: &TokenBuilder,
        stream_id: &str,
        user: &TokenBuilder,
        duration_seconds: Option<u32>,
    ) -> Result<pb::Ban, Status> {
        let request = authorized(
            pb::BanUserRequest {
                stream_id: stream_id.into(),
                user_id: user.user_id(),
                duration_seconds,
                reason: None,
            },
            &bearer(actor),
        );
        self.client
            .ban_user(request)
            .await
            .map(Response::into_inner)
    }

    async fn set_slow_mode_seconds(&mut self, stream_id: &str, seconds: u32) {
        let request = self.as_service(pb::UpdateStreamSettingsRequest {
            stream_id: stream_id.into(),
            slow_mode_seconds: Some(seconds),
        });
        self.admin
            .update_stream_settings(request)
            .await
            .expect("slow mode set");
    }
}

#[tokio::test]
async fn every_rule_that_refuses_a_call_names_itself() {
    let mut service = spawn_service_with(|_| {}).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    let viewer = TokenBuilder::new();

    // UNAUTHENTICATED: a token that does not verify.
    let request = authorized(
        pb::SendMessageRequest {
            stream_id: stream.clone(),
            content: "hello".into(),
            idempotency_key: None,
        },
        "Bearer not.a.token",
    );
    assert_refused(
        service.client.send_message(request).await,
        RefusalReason::Unauthenticated,
    );

    // VALIDATION, with the field violations as before.
    let status = assert_refused(
        service.send_with_metadata(&viewer, "abc", " ", None).await,
        RefusalReason::Validation,
    );
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("violations")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect();
    assert_eq!(fields, ["stream_id", "content"]);

    // STREAM_NOT_REGISTERED.
    let status = assert_refused(
        service
            .send_with_metadata(&viewer, &random_object_id(), "hello", None)
            .await,
        RefusalReason::StreamNotRegistered,
    );
    assert_eq!(status.code(), Code::NotFound);

    // NOT_FOUND: a message that does not exist.
    let request = authorized(
        pb::DeleteMessageRequest {
            stream_id: stream.clone(),
            message_id: random_object_id(),
        },
        &bearer(&owner),
    );
    assert_refused(
        service.client.delete_message(request).await,
        RefusalReason::NotFound,
    );

    // PERMISSION_DENIED: a viewer may not ban, a user may not call the
    // admin service.
    let other = TokenBuilder::new();
    assert_refused(
        service.ban_as(&viewer, &stream, &other, None).await,
        RefusalReason::PermissionDenied,
    );
    let request = authorized(
        pb::GetStreamRequest {
            stream_id: stream.clone(),
        },
        &bearer(&viewer),
    );
    assert_refused(
        service.admin.get_stream(request).await,
        RefusalReason::PermissionDenied,
    );

    // STREAM_ALREADY_REGISTERED: the same stream for another owner.
    let request = service.as_service(pb::RegisterStreamRequest {
        stream_id: stream.clone(),
        owner_id: other.user_id(),
    });
    assert_refused(
        service.admin.register_stream(request).await,
        RefusalReason::StreamAlreadyRegistered,
    );

    // IDEMPOTENCY_KEY_REUSED: one key, other content.
    service
        .send_with_metadata(&viewer, &stream, "first", Some("key-1"))
        .await
        .expect("stored");
    assert_refused(
        service
            .send_with_metadata(&viewer, &stream, "second", Some("key-1"))
            .await,
        RefusalReason::IdempotencyKeyReused,
    );

    // BANNED: a timeout says until when...
    let banned = TokenBuilder::new();
    let before = Utc::now();
    service
        .ban_as(&owner, &stream, &banned, Some(600))
        .await
        .expect("timed out");
    let status = assert_refused(
        service
            .send_with_metadata(&banned, &stream, "hello", None)
            .await,
        RefusalReason::Banned,
    );
    let info = status.get_details_error_info().expect("error info");
    let until = DateTime::parse_from_rfc3339(&info.metadata[BANNED_UNTIL])
        .expect("RFC 3339")
        .with_timezone(&Utc);
    assert!(
        until >= before + chrono::Duration::seconds(599)
            && until <= Utc::now() + chrono::Duration::seconds(600),
        "{until}"
    );
    // ... a permanent ban does not.
    service
        .ban_as(&owner, &stream, &banned, None)
        .await
        .expect("banned");
    let status = assert_refused(
        service
            .send_with_metadata(&banned, &stream, "hello", None)
            .await,
        RefusalReason::Banned,
    );
    let info = status.get_details_error_info().expect("error info");
    assert!(!info.metadata.contains_key(BANNED_UNTIL), "{info:?}");

    // CHAT_CLOSED, then STREAM_ENDED (for a send, and for reopening).
    let request = service.as_service(pb::SetChatOpenRequest {
        stream_id: stream.clone(),
        open: false,
    });
    service.admin.set_chat_open(request).await.expect("closed");
    assert_refused(
        service
            .send_with_metadata(&viewer, &stream, "hello", None)
            .await,
        RefusalReason::ChatClosed,
    );
    let request = service.as_service(pb::EndStreamRequest {
        stream_id: stream.clone(),
    });
    service.admin.end_stream(request).await.expect("ended");
    assert_refused(
        service
            .send_with_metadata(&viewer, &stream, "hello", None)
            .await,
        RefusalReason::StreamEnded,
    );
    let request = service.as_service(pb::SetChatOpenRequest {
        stream_id: stream.clone(),
        open: true,
    });
    assert_refused(
        service.admin.set_chat_open(request).await,
        RefusalReason::StreamEnded,
    );
    service.stop().await;
}

#[tokio::test]
async fn the_burst_allowance_counts_down_with_each_send_then_refuses_as_burst_limit() {
    let mut service = spawn_service_with(|config| {
        config.burst_window_secs = 60;
        config.burst_viewer_limit = 3;
    })
    .await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();

    // One message's worth of the window is 20 s; each send pushes the full
    // allowance's return 20 s further out.
    for (sent, expected_remaining) in [(1, 2), (2, 1), (3, 0)] {
        let response = service
            .send_with_metadata(&viewer, &stream, &format!("message {sent}"), None)
            .await
            .expect("within the allowance");
        let (limit, remaining, reset) = quota(response.metadata());
        assert_eq!((limit, remaining), (3, expected_remaining));
        assert!(
            reset <= 20 * sent && reset + 5 > 20 * sent,
            "reset {reset} after {sent} sends"
        );
    }
    let status = assert_refused(
        service
            .send_with_metadata(&viewer, &stream, "one too many", None)
            .await,
        RefusalReason::BurstLimit,
    );
    assert_eq!(status.code(), Code::ResourceExhausted);
    let retry = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("retry info as before");
    let info = status.get_details_error_info().expect("error info");
    let retry_after_seconds: u64 = info.metadata[RETRY_AFTER_SECONDS]
        .parse()
        .expect("whole seconds");
    assert_eq!(retry_after_seconds, retry.as_secs_f64().ceil() as u64);
    assert!((1..=20).contains(&retry_after_seconds), "{info:?}");
    let (limit, remaining, reset) = quota(status.metadata());
    assert_eq!((limit, remaining), (3, 0));
    assert!(reset >= retry_after_seconds && reset <= 60, "reset {reset}");

    // Another viewer has an allowance of their own.
    let response = service
        .send_with_metadata(&TokenBuilder::new(), &stream, "hello", None)
        .await
        .expect("a fresh allowance");
    assert_eq!(quota(response.metadata()).1, 2);
    service.stop().await;
}

#[tokio::test]
async fn slow_mode_refuses_as_slow_mode_and_is_the_limit_reported_when_tighter() {
    let mut service = spawn_service_with(|_| {}).await;
    let (stream, owner) = service.open_stream_with_owner().await;
    service.set_slow_mode_seconds(&stream, 30).await;
    let viewer = TokenBuilder::new();

    // After a viewer's send, slow mode allows nothing for 30 s: tighter
    // than the burst limit's 19 more.
    let response = service
        .send_with_metadata(&viewer, &stream, "first", None)
        .await
        .expect("the first message passes");
    let (limit, remaining, reset) = quota(response.metadata());
    assert_eq!((limit, remaining, reset), (1, 0, 30));

    let status = assert_refused(
        service
            .send_with_metadata(&viewer, &stream, "second", None)
            .await,
        RefusalReason::SlowMode,
    );
    assert!(status.get_details_retry_info().is_some(), "{status:?}");
    let info = status.get_details_error_info().expect("error info");
    let retry_after_seconds: u64 = info.metadata[RETRY_AFTER_SECONDS]
        .parse()
        .expect("whole seconds");
    assert!((1..=30).contains(&retry_after_seconds), "{info:?}");
    let (limit, remaining, reset) = quota(status.metadata());
    assert_eq!((limit, remaining), (1, 0));
    assert_eq!(reset, retry_after_seconds);

    // The owner is exempt from slow mode: the burst limit is reported.
    let response = service
        .send_with_metadata(&owner, &stream, "from the owner", None)
        .await
        .expect("owners are exempt");
    let (limit, remaining, _) = quota(response.metadata());
    assert_eq!((limit, remaining), (100, 99));
    service.stop().await;
}

#[tokio::test]
async fn subscription_caps_and_oversized_requests_name_themselves() {
    let mut service = spawn_service_with(|config| {
        config.max_subscriptions_per_user = 1;
    })
    .await;
    let stream = service.open_stream().await;
    let viewer = TokenBuilder::new();
    let subscribe = |client: &mut pb::chat_service_client::ChatServiceClient<_>| {
        let request = authorized(
            pb::SubscribeMessagesRequest {
                stream_id: stream.clone(),
                after: None,
            },
            &bearer(&viewer),
        );
        let mut client = client.clone();
        async move { client.subscribe_messages(request).await }
    };
    let _open = subscribe(&mut service.client).await.expect("the first");
    assert_refused(
        subscribe(&mut service.client).await,
        RefusalReason::SubscriptionLimit,
    );

    let status = assert_refused(
        service
            .send_with_metadata(&viewer, &stream, &"x".repeat(100 * 1024), None)
            .await,
        RefusalReason::RequestTooLarge,
    );
    assert_eq!(status.code(), Code::OutOfRange);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shed_call_names_itself() {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let store: SharedStore = Arc::new(EmbeddedStore::open(data_dir.path()).expect("store"));
    let gate = Gate::new();
    let mut service = spawn_service_on(gated(store, gate.clone()), |config| {
        config.max_in_flight = 1;
        config.queue_timeout_ms = 1;
    })
    .await;
    let stream = service.open_stream().await;

    // One send holds the only permit inside the store: the next is shed,
    // OVERLOADED.
    gate.close();
    let held = {
        let mut client = service.client.clone();
        let request = authorized(
            pb::SendMessageRequest {
                stream_id: stream.clone(),
                content: "held".into(),
                idempotency_key: None,
            },
            &bearer(&TokenBuilder::new()),
        );
        tokio::spawn(async move { client.send_message(request).await })
    };
    tokio::time::timeout(WAIT, gate.until_waiting(1))
        .await
        .expect("the held send reaches the store");
    assert_refused(
        service
            .send_with_metadata(&TokenBuilder::new(), &stream, "shed", None)
            .await,
        RefusalReason::Overloaded,
    );
    gate.open();
    tokio::time::timeout(WAIT, held)
        .await
        .expect("the held send ends")
        .expect("the task")
        .expect("the held send is stored");

    service.stop().await;
}
