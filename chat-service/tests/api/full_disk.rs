//! A full disk under the embedded store, for real: the data directory lives
//! on a small tmpfs that the test mounts (tests run as root) and fills with a
//! file. Sends answer UNAVAILABLE and health goes NOT_SERVING while it is
//! full; once the file is removed, health returns to SERVING and sends
//! succeed again without a restart, and every acknowledged message is still
//! there exactly once.
//!
//! Two paths: the default free-space reserve refuses writes before the disk
//! is full; with no reserve, the journal write itself fails (ENOSPC), fjall
//! poisons its database, and the store must reopen it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use allmine_chat_proto::v1::SendMessageRequest;
use allmine_test_support::TokenBuilder;
use allmine_test_support::tmpfs::Tmpfs;
use chat_service::storage::SharedStore;
use chat_service::storage::embedded::{EmbeddedStore, Reserve};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{TestService, authorized, channel, spawn_service_on};

/// Polls health (bounded: 30 s, far beyond the 2 s poll of the service)
/// until the chat service reports `wanted`; returns the last status.
async fn wait_for_health(service: &TestService, wanted: ServingStatus) -> ServingStatus {
    let mut health = HealthClient::new(channel(service.addr).await);
    let mut last = ServingStatus::Unknown;
    for _ in 0..300 {
        if let Ok(response) = health
            .check(HealthCheckRequest {
                service: "allmine.chat.v1.ChatService".into(),
            })
            .await
        {
            last = response.into_inner().status();
            if last == wanted {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// What the client learned of each send: its content → the stored id, if
/// acknowledged.
#[derive(Default)]
struct History {
    acknowledged: HashMap<String, String>,
    refused: Vec<String>,
}

impl History {
    async fn send(
        &mut self,
        service: &mut TestService,
        stream: &str,
        n: usize,
    ) -> Result<(), Code> {
        // Long content fills journal pages quickly; one new user per send
        // keeps clear of the burst limit.
        let content = format!("message {n} {}", "x".repeat(400));
        match service.send_as_anyone(stream, &content).await {
            Ok(message) => {
                self.acknowledged.insert(content, message.id);
                Ok(())
            }
            Err(status) => {
                self.refused.push(content);
                Err(status.code())
            }
        }
    }

    /// Every acknowledged message is stored exactly once; a refused one at
    /// most once (UNAVAILABLE means the outcome is unknown).
    async fn check(&self, service: &TestService, stream: &str) {
        let stream_id = chat_service::domain::StreamId::parse(stream).expect("id");
        // All of them, not the helper's newest 1,000.
        let stored = service
            .store
            .newest(&stream_id, 1_000_000)
            .await
            .expect("read");
        let mut copies: HashMap<&str, usize> = HashMap::new();
        for message in &stored {
            *copies.entry(message.content.as_str()).or_default() += 1;
        }
        let ids: HashSet<String> = stored
            .iter()
            .map(|message| message.id.to_string())
            .collect();
        for (content, id) in &self.acknowledged {
            assert_eq!(copies.get(content.as_str()), Some(&1), "acknowledged {id}");
            assert!(ids.contains(id), "acknowledged {id} stored under its id");
        }
        for content in &self.refused {
            assert!(copies.get(content.as_str()).copied().unwrap_or(0) <= 1);
        }
    }
}

async fn start(tmpfs: &Tmpfs, reserve: Reserve) -> TestService {
    let store: SharedStore = Arc::new(
        EmbeddedStore::open_with_reserve(&tmpfs.path().join("data"), reserve)
            .expect("store opens on the tmpfs"),
    );
    spawn_service_on(store, |_| {}).await
}

/// Sends until one is refused (bounded); returns the refusal's code.
async fn send_until_refused(
    history: &mut History,
    service: &mut TestService,
    stream: &str,
    first: usize,
) -> Code {
    for n in first..first + 200 {
        if let Err(code) = history.send(service, stream, n).await {
            return code;
        }
    }
    panic!("200 sends were accepted on a full disk");
}

#[tokio::test]
async fn a_full_disk_refuses_sends_with_unavailable_and_heals_once_space_is_freed() {
    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    let mut service = start(&tmpfs, Reserve::Default).await;
    let stream = service.open_stream().await;
    let mut history = History::default();
    for n in 0..20 {
        history
            .send(&mut service, &stream, n)
            .await
            .expect("disk has room");
    }
    assert_eq!(
        wait_for_health(&service, ServingStatus::Serving).await,
        ServingStatus::Serving
    );

    let filler = tmpfs.fill();
    let code = send_until_refused(&mut history, &mut service, &stream, 100).await;
    assert_eq!(code, Code::Unavailable);
    for n in 300..305 {
        assert_eq!(
            history.send(&mut service, &stream, n).await,
            Err(Code::Unavailable)
        );
    }
    assert_eq!(
        wait_for_health(&service, ServingStatus::NotServing).await,
        ServingStatus::NotServing
    );

    std::fs::remove_file(filler).expect("free the space");
    assert_eq!(
        wait_for_health(&service, ServingStatus::Serving).await,
        ServingStatus::Serving
    );
    for n in 400..420 {
        history
            .send(&mut service, &stream, n)
            .await
            .expect("space is back");
    }
    history.check(&service, &stream).await;
    service.stop().await;
}

#[tokio::test]
async fn a_write_that_hits_enospc_poisons_nothing_for_good_the_store_reopens() {
    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    // No reserve: the journal write itself fails with ENOSPC.
    let mut service = start(&tmpfs, Reserve::Bytes(0)).await;
    let stream = service.open_stream().await;
    let mut history = History::default();
    for n in 0..20 {
        history
            .send(&mut service, &stream, n)
            .await
            .expect("disk has room");
    }

    let filler = tmpfs.fill();
    let code = send_until_refused(&mut history, &mut service, &stream, 100).await;
    assert_eq!(
        code,
        Code::Unavailable,
        "a failed journal write is UNAVAILABLE, not INTERNAL"
    );
    // fjall has poisoned the database: writes stay refused, health says so.
    for n in 300..305 {
        assert_eq!(
            history.send(&mut service, &stream, n).await,
            Err(Code::Unavailable)
        );
    }
    assert_eq!(
        wait_for_health(&service, ServingStatus::NotServing).await,
        ServingStatus::NotServing
    );
    // Reads still answer from the poisoned database.
    assert!(!service.stored(&stream).await.is_empty());

    std::fs::remove_file(filler).expect("free the space");
    assert_eq!(
        wait_for_health(&service, ServingStatus::Serving).await,
        ServingStatus::Serving
    );
    for n in 400..420 {
        history
            .send(&mut service, &stream, n)
            .await
            .expect("the store reopened");
    }
    history.check(&service, &stream).await;
    service.stop().await;
}

/// Concurrent senders while the disk fills and is freed again (no reserve,
/// so group commits fail mid-write): every acknowledged message survives the
/// reopen exactly once, and sends succeed again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_through_a_full_disk_lose_no_acknowledged_message() {
    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    let service = start(&tmpfs, Reserve::Bytes(0)).await;
    let stream = service.open_stream().await;
    let history = Arc::new(tokio::sync::Mutex::new(History::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (history, stop, stream) = (history.clone(), stop.clone(), stream.clone());
            let mut client = service.client.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let content = format!("sender {sender} message {n} {}", "y".repeat(300));
                    let request = authorized(
                        SendMessageRequest {
                            stream_id: stream.clone(),
                            content: content.clone(),
                            idempotency_key: None,
                        },
                        &format!("Bearer {}", TokenBuilder::new().build()),
                    );
                    let outcome = client.send_message(request).await;
                    let mut history = history.lock().await;
                    match outcome {
                        Ok(reply) => {
                            history.acknowledged.insert(content, reply.into_inner().id);
                        }
                        Err(status) => {
                            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                            history.refused.push(content);
                            drop(history);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let filler = tmpfs.fill();
    assert_eq!(
        wait_for_health(&service, ServingStatus::NotServing).await,
        ServingStatus::NotServing
    );
    std::fs::remove_file(filler).expect("free the space");
    assert_eq!(
        wait_for_health(&service, ServingStatus::Serving).await,
        ServingStatus::Serving
    );
    let acknowledged_before = history.lock().await.acknowledged.len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.expect("sender");
    }

    let history = history.lock().await;
    assert!(!history.refused.is_empty(), "the full disk refused nothing");
    assert!(
        history.acknowledged.len() > acknowledged_before,
        "sends succeed again after the reopen"
    );
    history.check(&service, &stream).await;
    drop(history);
    service.stop().await;
}

/// Idempotency keys through a failed write and the reopen (no reserve):
/// a key claimed before the fault still holds its original message after
/// it, and the send that failed, retried with its key, ends stored exactly
/// once (whether or not its failed attempt reached the disk).
#[tokio::test]
async fn idempotency_keys_hold_through_a_failed_write_and_the_reopen() {
    use chat_service::domain::{
        ChatMessage, IdempotencyKey, MessageContent, ObjectIdGenerator, Sender, StreamId, UserId,
        truncate_to_millis,
    };
    use chat_service::storage::{KeyedAppend, StorageError};

    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    let store: SharedStore = Arc::new(
        EmbeddedStore::open_with_reserve(&tmpfs.path().join("data"), Reserve::Bytes(0))
            .expect("store opens on the tmpfs"),
    );
    let window = Duration::from_secs(3_600);
    let ids = ObjectIdGenerator::new();
    let stream = StreamId::parse(&allmine_test_support::random_object_id()).expect("id");
    let user = UserId::parse(&allmine_test_support::random_object_id()).expect("id");
    let message = |text: &str| {
        let now = truncate_to_millis(chrono::Utc::now());
        ChatMessage {
            id: ids.next(now).into(),
            stream_id: stream,
            content: MessageContent::parse(text).expect("content"),
            sender: Sender::anonymous(user),
            created_at: now,
            updated_at: now,
        }
    };
    let key = |n: usize| IdempotencyKey::parse(&format!("key-{n}")).expect("key");
    let padding = "x".repeat(400);

    let before = message("before the fault");
    let stored = store.append_keyed(&before, &key(0), window).await;
    assert_eq!(stored.expect("disk has room"), KeyedAppend::Stored);

    let filler = tmpfs.fill();
    let mut failed = None;
    for n in 1..200 {
        let attempt = message(&format!("send {n} {padding}"));
        match store.append_keyed(&attempt, &key(n), window).await {
            Ok(outcome) => assert_eq!(outcome, KeyedAppend::Stored),
            Err(StorageError::Unavailable(_)) => {
                failed = Some((n, attempt));
                break;
            }
            Err(other) => panic!("a failed write is UNAVAILABLE, got {other:?}"),
        }
    }
    let (failed_n, failed_attempt) = failed.expect("the disk filled up within 200 sends");
    std::fs::remove_file(filler).expect("free the space");

    // The retry of the failed send, with its key, until the store reopened
    // (bounded: 30 s, far beyond the first 0.5 s back-off).
    let mut retried = None;
    for _ in 0..300 {
        let _ = store.check_health().await;
        match store
            .append_keyed(&failed_attempt, &key(failed_n), window)
            .await
        {
            Ok(outcome) => {
                retried = Some(outcome);
                break;
            }
            Err(StorageError::Unavailable(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("retry: {other:?}"),
        }
    }
    let retried = retried.expect("the store reopened within 30 s");
    assert!(
        retried == KeyedAppend::Stored
            || retried == KeyedAppend::Existing(Box::new(failed_attempt.clone())),
        "the retry stores the message or finds its first attempt: {retried:?}"
    );

    // The key claimed before the fault still answers with its message.
    let replay = store
        .append_keyed(&message("before the fault"), &key(0), window)
        .await;
    assert_eq!(
        replay.expect("append"),
        KeyedAppend::Existing(Box::new(before.clone()))
    );
    // Concurrent sends with one new key after the reopen store one message.
    let racers: Vec<ChatMessage> = (0..8).map(|_| message("after the reopen")).collect();
    let shared_key = key(1_000);
    let outcomes = futures::future::join_all(
        racers
            .iter()
            .map(|racer| store.append_keyed(racer, &shared_key, window)),
    )
    .await;
    let stored_count = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(KeyedAppend::Stored)))
        .count();
    assert_eq!(stored_count, 1, "{outcomes:?}");

    let history = store.newest(&stream, 10_000).await.expect("read");
    let copies = |id: &chat_service::domain::MessageId| {
        history.iter().filter(|stored| &stored.id == id).count()
    };
    assert_eq!(copies(&before.id), 1);
    assert_eq!(copies(&failed_attempt.id), 1, "the failed send, retried");
    let after = history
        .iter()
        .filter(|stored| stored.content.as_str() == "after the reopen")
        .count();
    assert_eq!(after, 1);
    drop(store);
}
