//! Damage to the embedded store's files, done to a stopped store: a cut
//! journal tail is reported (how many bytes, which file, how many
//! acknowledged writes are gone) instead of passing silently; a flipped byte
//! inside a journal batch is refused at open, naming the journal; a flipped
//! byte in a table file is found by the start-up scan, not by a later read.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_chat_proto::v1::{RegisterStreamRequest, SendMessageRequest};
use allmine_test_support::{TEST_SECRET, TokenBuilder, random_object_id};
use chat_service::domain::{
    ChatMessage, MessageContent, ObjectIdGenerator, Sender, StreamId, UserId,
};
use chat_service::storage::MessageStore;
use chat_service::storage::embedded::{EmbeddedStore, Verification};
use tonic::transport::Channel;

use crate::helpers::authorized;

/// The newest journal file (the active one) of the store in `data_dir`.
fn newest_journal(data_dir: &Path) -> PathBuf {
    std::fs::read_dir(data_dir.join("fjall"))
        .expect("database directory")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "jnl"))
        .max_by_key(|path| {
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.parse::<u64>().ok())
        })
        .expect("a journal file")
}

/// Cuts `bytes` off the end of the journal's content (its zero-filled
/// preallocation goes too), as a lost page or a truncating copy would.
fn cut_tail(journal: &Path, bytes: u64) {
    let content = std::fs::read(journal).expect("read journal");
    let end = content
        .iter()
        .rposition(|byte| *byte != 0)
        .expect("content") as u64
        + 1;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(journal)
        .expect("open journal");
    file.set_len(end - bytes).expect("truncate");
}

async fn store_with_messages(data_dir: &Path, count: usize) -> StreamId {
    let store = EmbeddedStore::open(data_dir).expect("open");
    let stream = StreamId::parse(&random_object_id()).expect("id");
    let ids = ObjectIdGenerator::new();
    for n in 0..count {
        let now = chrono::Utc::now();
        let message = ChatMessage {
            id: ids.next(now).into(),
            stream_id: stream,
            content: MessageContent::parse(&format!("acknowledged {n}")).expect("content"),
            sender: Sender::anonymous(UserId::parse(&random_object_id()).expect("id")),
            created_at: now,
            updated_at: now,
        };
        // One at a time: each append is its own acknowledged batch.
        store.append(&message).await.expect("append");
    }
    stream
}

async fn lost_after_cutting(bytes: u64) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let stream = store_with_messages(data_dir.path(), 300).await;
    let journal = newest_journal(data_dir.path());
    cut_tail(&journal, bytes);

    let store = EmbeddedStore::open(data_dir.path()).expect("a cut tail still opens");
    let report = store.recovery_report();
    let stored = store.newest(&stream, 1000).await.expect("read").len() as u64;
    assert!(
        stored < 300,
        "cutting {bytes} bytes lost nothing: the test cut no batch"
    );
    assert_eq!(
        report.lost_acknowledged_writes(),
        300 - stored,
        "the report counts exactly the acknowledged messages that are gone: {report:?}"
    );
    assert_eq!(report.discarded_tails.len(), 1, "{report:?}");
    assert_eq!(report.discarded_tails[0].0, journal);
    assert!(report.discarded_bytes() > 0);
}

#[tokio::test]
async fn a_tail_cut_by_five_bytes_reports_the_lost_acknowledged_message() {
    lost_after_cutting(5).await;
}

#[tokio::test]
async fn a_tail_cut_by_2000_bytes_reports_every_lost_acknowledged_message() {
    lost_after_cutting(2000).await;
}

#[tokio::test]
async fn an_undamaged_store_reopens_with_a_clean_report() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    store_with_messages(data_dir.path(), 50).await;
    let store = EmbeddedStore::open(data_dir.path()).expect("open");
    let report = store.recovery_report();
    assert_eq!(report.lost_acknowledged_writes(), 0, "{report:?}");
    assert_eq!(report.discarded_bytes(), 0, "{report:?}");
    assert!(report.recovered >= 50);
}

#[tokio::test]
async fn a_flipped_byte_inside_the_journal_is_refused_naming_the_file() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    store_with_messages(data_dir.path(), 50).await;
    let journal = newest_journal(data_dir.path());
    let mut content = std::fs::read(&journal).expect("read journal");
    let needle = b"acknowledged 25";
    let at = content
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("message 25 in the journal");
    content[at] ^= 0x01;
    std::fs::write(&journal, content).expect("write journal");

    let Err(error) = EmbeddedStore::open(data_dir.path()) else {
        panic!("a damaged batch inside the journal must not open silently");
    };
    let error = error.to_string();
    assert!(error.contains(&journal.display().to_string()), "{error}");
}

/// The largest table file of the store (the flushed messages).
fn largest_table(data_dir: &Path) -> PathBuf {
    let keyspaces = data_dir.join("fjall").join("keyspaces");
    std::fs::read_dir(keyspaces)
        .expect("keyspaces")
        .flatten()
        .flat_map(|keyspace| {
            std::fs::read_dir(keyspace.path().join("tables"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|table| table.path())
        .max_by_key(|path| std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0))
        .expect("a table file")
}

async fn wait_for_verification(store: &EmbeddedStore) -> Verification {
    for _ in 0..200 {
        if let Some(outcome) = store.verification() {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the start-up verification did not finish in 10 s");
}

#[tokio::test]
async fn a_flipped_byte_in_a_table_file_is_found_at_start() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    store_with_messages(data_dir.path(), 2000).await;
    {
        let store = EmbeddedStore::open(data_dir.path()).expect("open");
        store.flush().expect("flush to a table file");
        let outcome = wait_for_verification(&store).await;
        assert!(
            matches!(outcome, Verification::Clean { records } if records >= 2000),
            "an undamaged store must verify clean: {outcome:?}"
        );
    }
    let table = largest_table(data_dir.path());
    let mut content = std::fs::read(&table).expect("read table");
    // Data blocks come first in a table file; its index, filter and
    // metadata (read at open) at the end.
    let at = content.len() / 4;
    content[at] ^= 0x01;
    std::fs::write(&table, content).expect("write table");

    let store = EmbeddedStore::open(data_dir.path()).expect("a damaged data block still opens");
    match wait_for_verification(&store).await {
        Verification::Damaged { keyspace, .. } => assert_eq!(keyspace, "messages"),
        other => panic!("the damaged table went unnoticed: {other:?}"),
    }
}

/// The real binary says it at WARN in its log, on start.
#[tokio::test]
async fn the_binary_warns_at_start_about_a_cut_journal_tail() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_chat-service"))
            .env("CHAT_GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("CHAT_DATA_DIR", data_dir.path())
            .env("CHAT_JWT_SECRET", TEST_SECRET)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts")
    };

    let mut first = start();
    let channel = connect(port).await;
    let stream = random_object_id();
    ChatAdminServiceClient::new(channel.clone())
        .register_stream(authorized(
            RegisterStreamRequest {
                stream_id: stream.clone(),
                owner_id: random_object_id(),
            },
            &format!("Bearer {}", TokenBuilder::service().build()),
        ))
        .await
        .expect("stream registered");
    let mut client = ChatServiceClient::new(channel);
    for n in 0..30 {
        client
            .send_message(authorized(
                SendMessageRequest {
                    stream_id: stream.clone(),
                    content: format!("acknowledged {n}"),
                    idempotency_key: None,
                },
                &format!("Bearer {}", TokenBuilder::new().build()),
            ))
            .await
            .expect("accepted");
    }
    first.kill().expect("kill -9");
    let _ = first.wait();
    let journal = newest_journal(data_dir.path());
    cut_tail(&journal, 5);

    let mut second = start();
    let _ = connect(port).await;
    second.kill().expect("stop");
    let _ = second.wait();
    let mut log = String::new();
    for pipe in [
        second
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn std::io::Read>),
        second
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn std::io::Read>),
    ]
    .into_iter()
    .flatten()
    {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
        }
    }
    let warning = log
        .lines()
        .find(|line| line.contains("WARN") && line.contains("acknowledged writes are missing"))
        .unwrap_or_else(|| panic!("no WARN about the lost acknowledged write in:\n{log}"));
    assert!(warning.contains("lost_acknowledged_writes=1"), "{warning}");
    assert!(
        log.lines().any(|line| line.contains("WARN")
            && line.contains("discarded a damaged journal tail")
            && line.contains(&journal.display().to_string())),
        "no WARN naming the journal in:\n{log}"
    );
}

/// Connects, retrying while the process starts (bounded).
async fn connect(port: u16) -> Channel {
    for _ in 0..200 {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("uri")
            .connect()
            .await
        {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chat-service did not start on port {port}");
}
