//! The fault scenarios. Each runs a few seconds of load on the real binary,
//! injects its fault while the clients send, waits (bounded) until the
//! service takes sends again, then checks the history.
//!
//! - `kill_9_among_concurrent_senders` (embedded store, and ScyllaDB on the
//!   shared CQL node): `kill -9` of chat-service, restart on the same store,
//!   three times in a run.
//! - `cassandra_stopped_and_restarted_under_load`: the private fault-test
//!   Cassandra node stopped and resumed under the senders' feet.
//! - `full_disk_under_load`: the embedded store on a small tmpfs, filled up
//!   under load, then freed: sends must succeed again without a restart.
//! - `kill_9_with_idempotent_retries_*` (embedded store, and ScyllaDB on the
//!   shared CQL node): the kill -9 scenario with two concurrent first
//!   attempts per key and each unknown send retried with its key
//!   (`hooks::set_idempotency_key`).

use std::sync::Arc;

use allmine_test_support::backends::{Backend, StoreFixture, scylla_nodes};
use allmine_test_support::cassandra::PrivateCassandra;
use allmine_test_support::for_each_backend;
use allmine_test_support::service_process::{ProcessConfig, ServiceProcess};

use super::load::LoadSpec;
use super::{HistoryRun, Summary};
use allmine_test_support::tmpfs::Tmpfs;

const BINARY: &str = env!("CARGO_BIN_EXE_chat-service");
/// Acknowledged sends to wait for before a fault, and again after it.
const BEFORE_FAULT: usize = 100;
const AFTER_FAULT: usize = 100;
/// How often the kill -9 scenarios kill the service (each time once the
/// clients have had `AFTER_FAULT` sends acknowledged again).
const KILLS: usize = 3;

for_each_backend!(kill_9_among_concurrent_senders);

/// The binary on `fixture`'s store, with the burst limit out of the way
/// (the clients send far faster than a viewer may).
fn process_config(fixture: &StoreFixture) -> ProcessConfig {
    let config = match fixture.backend() {
        Backend::Embedded => ProcessConfig::embedded(BINARY.as_ref(), fixture.directory()),
        Backend::Scylla => ProcessConfig::scylla(
            BINARY.as_ref(),
            &scylla_nodes().join(","),
            fixture.keyspace(),
        ),
    };
    unlimited(config)
}

fn unlimited(config: ProcessConfig) -> ProcessConfig {
    config.env("CHAT_BURST_VIEWER_LIMIT", "1000000")
}

async fn kill_9_among_concurrent_senders(backend: Backend) {
    kill_9_scenario("kill -9", backend, LoadSpec::default()).await;
}

async fn kill_9_scenario(name: &'static str, backend: Backend, spec: LoadSpec) -> Summary {
    let fixture = StoreFixture::new(backend);
    let mut service = ServiceProcess::start(process_config(&fixture));
    let run = HistoryRun::begin(name, &service, spec).await;
    run.wait_for_acknowledged(BEFORE_FAULT, "load before the first kill")
        .await;
    for _ in 0..KILLS {
        // SIGKILL among the clients' sends: nothing is flushed or drained.
        service.kill_9();
        service.restart();
        run.wait_for_acknowledged(AFTER_FAULT, "sends after the restart")
            .await;
    }
    let summary = run.finish(&service).await;
    assert!(
        summary.live_resumes >= KILLS,
        "each kill cut the live subscription, which resumed"
    );
    drop(service);
    fixture.cleanup().await;
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_stopped_and_restarted_under_load() {
    let cassandra = Arc::new(PrivateCassandra::new());
    cassandra.run_async("start").await;
    let keyspace = format!("chat_history_{}", allmine_test_support::random_object_id());
    let service = ServiceProcess::start(unlimited(ProcessConfig::scylla(
        BINARY.as_ref(),
        &cassandra.node(),
        &keyspace,
    )));
    let run = HistoryRun::begin("Cassandra restart", &service, LoadSpec::default()).await;
    run.wait_for_acknowledged(BEFORE_FAULT, "load before the outage")
        .await;
    cassandra.run_async("stop").await;
    run.wait_for_unknown(4, "sends fail while the database is down")
        .await;
    cassandra.run_async("resume").await;
    run.wait_for_acknowledged(AFTER_FAULT, "sends after the database is back")
        .await;
    run.finish(&service).await;
    // The node's run directory is wiped by its next `start`.
}

/// As the kill -9 scenario, each send's first
/// attempt being two concurrent requests with one key, and each unknown send
/// retried with its key until it has a definite answer: no send may be
/// stored twice, every attempt must be answered with the same id, and every
/// send must end acknowledged or refused.
async fn kill_9_with_idempotent_retries(backend: Backend) {
    let spec = LoadSpec {
        retry_with_key: true,
        race_first_attempt: true,
        ..LoadSpec::default()
    };
    let summary = kill_9_scenario("kill -9, retries with keys", backend, spec).await;
    assert_eq!(
        summary.ended_unknown, 0,
        "every keyed send ends with a definite answer once retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_idempotent_retries_embedded() {
    kill_9_with_idempotent_retries(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_idempotent_retries_scylla() {
    kill_9_with_idempotent_retries(Backend::Scylla).await;
}

/// The embedded store on a small tmpfs; a filler file fills it under load,
/// sends fail (unknown), the filler is removed, and sends must succeed again
/// without a restart. Then the history is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_under_load() {
    let Some(disk) = Tmpfs::mount("64m") else {
        return;
    };
    let service = ServiceProcess::start(unlimited(ProcessConfig::embedded(
        BINARY.as_ref(),
        &disk.path().join("data"),
    )));
    let run = HistoryRun::begin("full disk", &service, LoadSpec::default()).await;
    run.wait_for_acknowledged(BEFORE_FAULT, "load before the disk fills")
        .await;
    let disk = std::sync::Arc::new(disk);
    let filler = {
        let disk = std::sync::Arc::clone(&disk);
        tokio::task::spawn_blocking(move || disk.fill())
            .await
            .expect("fill task")
    };
    run.wait_for_unknown(4, "sends fail while the disk is full")
        .await;
    tokio::fs::remove_file(&filler)
        .await
        .expect("the filler is removed");
    run.wait_for_acknowledged(AFTER_FAULT, "sends after space is freed, with no restart")
        .await;
    run.finish(&service).await;
}
