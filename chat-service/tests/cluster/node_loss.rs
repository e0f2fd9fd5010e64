//! One run through every phase of a node loss and a quorum loss, on one
//! cluster (starting one costs about half a minute), with two chat-service
//! instances in process, each with its own database session: A takes the
//! sends, B serves history and the live subscriber.
//!
//! 1. All up: the load runs.
//! 2. Node 3 stopped: every send begun after the stop succeeds; history
//!    (B) has every acknowledged message.
//! 3. Node 3 resumed, then node 1 (the first contact point) stopped: every
//!    quorum now includes node 3, which must have caught up (hints, read
//!    repair): history has every acknowledged message, and sends succeed.
//! 4. Node 2 stopped as well: no quorum. Every send and a history read are
//!    refused as UNAVAILABLE within the client's deadline, never INTERNAL,
//!    never a hang (the live subscriber resumes if its subscription breaks).
//! 5. Node 1 resumed: quorum back, sends succeed again.
//!
//! At the end the history checker judges three readers against every
//! recorded send: history and a fresh subscription from the start marker,
//! and the live subscriber that followed the whole run. No acknowledged
//! message may be missing or doubled, none that was never sent may appear.

use std::sync::Arc;
use std::time::{Duration, Instant};

use allmine_chat_proto::v1::ChatMessage;
use allmine_test_support::cluster::TestCluster;
use allmine_test_support::history::{Observed, Send, Violation, check, check_same_order};
use allmine_test_support::service::{TestService, spawn_service_on};
use allmine_test_support::{TokenBuilder, random_object_id};
use chat_service::storage::scylla::{ConsistencyLevel, Replication, ScyllaSettings, ScyllaStore};
use tonic::transport::Channel;

use crate::load::{Answer, DEADLINE, Load, Phase, Record, Recorder};
use crate::readers::{follow, read_history, read_subscription};
use crate::rules::{assert_nothing_lost, assert_phase_rules, assert_reads_unavailable};

/// Concurrent senders.
const CLIENTS: usize = 4;
/// Acknowledged sends to wait for in each phase that must take sends.
const ACKS_PER_PHASE: usize = 40;
/// Answered sends to wait for while there is no quorum.
const REFUSALS_WITHOUT_QUORUM: usize = 8;
/// A hang detector for each wait on progress; never a measure of speed.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(120);

fn settings(cluster: &TestCluster, keyspace: &str) -> ScyllaSettings {
    ScyllaSettings {
        nodes: cluster.contact_points(),
        keyspace: keyspace.into(),
        // As in production: a factor of 3 in the (only) datacenter.
        replication: Replication::NetworkTopology(vec![("datacenter1".into(), 3)]),
        consistency: ConsistencyLevel::LocalQuorum,
        // chat-service's defaults.
        request_timeout: Duration::from_millis(2000),
        connect_timeout: Duration::from_secs(60),
        credentials: None,
        ttl: None,
        bucket_width: Duration::from_secs(60),
    }
}

/// One chat-service instance with a database session of its own.
async fn instance(settings: &ScyllaSettings) -> TestService {
    let store = connect(settings).await;
    spawn_service_on(Arc::new(store), |config| {
        // The clients send far faster than a viewer may.
        config.burst_viewer_limit = 1_000_000;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_loss_and_quorum_loss_under_load() {
    let started = Instant::now();
    let cluster = TestCluster::start().await;
    eprintln!("cluster scenario: cluster up after {:?}", started.elapsed());
    let keyspace = format!("chat_cluster_{}", random_object_id());
    let settings = settings(&cluster, &keyspace);
    let sender = instance(&settings).await;
    let reader = instance(&settings).await;
    let stream = sender.open_stream().await;
    let tag = format!("run-{}", &random_object_id()[..8]);
    let start = send_until_ok(&sender.channel(), &stream, &format!("{tag} start")).await;
    let last = format!("{tag} end");
    let live = follow(
        reader.channel(),
        stream.clone(),
        start.cursor.clone(),
        last.clone(),
    );
    let recorder = Arc::new(Recorder::default());
    let load = Load::start(CLIENTS, &sender.channel(), &stream, &tag, &recorder);
    let scenario_started = Instant::now();

    wait_for(&recorder, Phase::AllUp, ACKS_PER_PHASE, is_ok).await;

    // A node lost: sends, history and live go on.
    recorder.enter(Phase::StoppingOne);
    cluster.stop_node(3).await;
    recorder.enter(Phase::OneDown);
    wait_for(&recorder, Phase::OneDown, ACKS_PER_PHASE, is_ok).await;
    assert_nothing_lost(
        &recorder,
        &reader.channel(),
        &stream,
        &start.cursor,
        "node 3 down",
    )
    .await;

    // The node back; another one lost, so that every quorum needs node 3.
    recorder.enter(Phase::Resuming);
    cluster.resume_node(3).await;
    recorder.enter(Phase::ResumedOtherStopping);
    cluster.stop_node(1).await;
    recorder.enter(Phase::OtherDown);
    assert_nothing_lost(
        &recorder,
        &reader.channel(),
        &stream,
        &start.cursor,
        "node 3 resumed, node 1 down",
    )
    .await;
    wait_for(&recorder, Phase::OtherDown, ACKS_PER_PHASE, is_ok).await;

    // The quorum lost: refusals, in time.
    recorder.enter(Phase::StoppingSecond);
    cluster.stop_node(2).await;
    recorder.enter(Phase::QuorumLost);
    wait_for(
        &recorder,
        Phase::QuorumLost,
        REFUSALS_WITHOUT_QUORUM,
        |_| true,
    )
    .await;
    assert_reads_unavailable(&reader.channel(), &stream, &start.cursor).await;

    // A quorum back.
    recorder.enter(Phase::QuorumReturning);
    cluster.resume_node(1).await;
    recorder.enter(Phase::QuorumBack);
    wait_for(&recorder, Phase::QuorumBack, ACKS_PER_PHASE, is_ok).await;

    load.stop().await;
    let scenario_time = scenario_started.elapsed();
    send_until_ok(&sender.channel(), &stream, &last).await;
    let records = recorder.records();
    assert_phase_rules(&records);
    let sends: Vec<Send> = records.iter().map(|record| record.send.clone()).collect();
    let history = read_history(&reader.channel(), &stream, &start.cursor).await;
    let subscription = read_subscription(&reader.channel(), &stream, &start.cursor, &last).await;
    let live = tokio::time::timeout(PROGRESS_TIMEOUT, live)
        .await
        .expect("the live subscriber reached the end marker in time")
        .expect("live subscriber task");
    let mut failures = Vec::new();
    for (name, observed) in [
        ("history", &history),
        ("subscription from the start", &subscription),
        ("live subscription", &live.observed),
    ] {
        let observed: Vec<Observed> = observed
            .iter()
            .filter(|message| message.content != last)
            .cloned()
            .collect();
        failures.extend(
            check(&sends, &observed)
                .into_iter()
                .map(|violation| format!("{name}: {violation}{}", context(&records, &violation))),
        );
    }
    for (name, observed) in [
        ("subscription from the start", &subscription),
        ("live subscription", &live.observed),
    ] {
        failures.extend(
            check_same_order(&history, observed)
                .into_iter()
                .map(|violation| format!("{name} against history: {violation}")),
        );
    }
    let acknowledged_times: Vec<Duration> = records
        .iter()
        .filter(|record| record.answer == Answer::Ok)
        .map(|record| record.took)
        .collect();
    eprintln!(
        "cluster scenario: acknowledged sends slower than 1 s: {}, slowest {:?}",
        acknowledged_times
            .iter()
            .filter(|took| **took > Duration::from_secs(1))
            .count(),
        acknowledged_times.iter().max()
    );
    eprintln!(
        "cluster scenario: {} sends ({} acknowledged), live subscriber resumed {} times; \
         phases took {scenario_time:?}, everything {:?}",
        records.len(),
        records
            .iter()
            .filter(|record| record.answer == Answer::Ok)
            .count(),
        live.resumes,
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} violations:\n{}",
        failures.len(),
        failures.join("\n")
    );

    sender.stop().await;
    reader.stop().await;
    // No DROP KEYSPACE: the nodes stop now and `start` wipes their data, and
    // a schema change is what a busy 3-node cluster is slowest to agree on
    // (over the driver's 60 s once, failing a run whose checks had passed).
    drop(cluster);
}

/// Connects, applying the schema. A fresh cluster on a busy machine can take
/// longer than the driver's wait (60 s) to agree on a new keyspace's schema;
/// the schema statements are `IF NOT EXISTS`, so connecting again simply
/// waits once more (bounded).
async fn connect(settings: &ScyllaSettings) -> ScyllaStore {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match ScyllaStore::connect(settings).await {
            Ok(store) => return store,
            Err(error) if attempts < 3 => {
                eprintln!("cluster scenario: connecting again after: {error}");
            }
            Err(error) => panic!("chat-service connects to the cluster: {error}"),
        }
    }
}

/// The phase a violation's send began in and how long its answer took,
/// for the failure report.
fn context(records: &[Record], violation: &Violation) -> String {
    let content = match violation {
        Violation::Lost { content, .. }
        | Violation::Duplicated { content, .. }
        | Violation::WrongId { content, .. } => content,
        _ => return String::new(),
    };
    records
        .iter()
        .find(|record| &record.send.content == content)
        .map(|record| {
            format!(
                " (sent in {:?}, answered in {:?})",
                record.phase, record.took
            )
        })
        .unwrap_or_default()
}

fn is_ok(answer: Answer) -> bool {
    answer == Answer::Ok
}

/// Waits until `count` more sends begun in `phase` got an answer `answer`
/// accepts.
async fn wait_for(recorder: &Recorder, phase: Phase, count: usize, answer: fn(Answer) -> bool) {
    let wait = async {
        while recorder.count(phase, answer) < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(PROGRESS_TIMEOUT, wait).await.is_err() {
        panic!(
            "{phase:?}: no progress: {} sends of this phase so far, {} answered as wanted",
            recorder.count(phase, |_| true),
            recorder.count(phase, answer)
        );
    }
}

/// Sends `content` as a new user, retrying (bounded) until it is accepted.
async fn send_until_ok(channel: &Channel, stream: &str, content: &str) -> ChatMessage {
    let service =
        allmine_chat_proto::v1::chat_service_client::ChatServiceClient::new(channel.clone());
    let token = TokenBuilder::new().build();
    let mut last_error = None;
    for _ in 0..100 {
        let request = allmine_test_support::grpc::bearer(
            allmine_chat_proto::v1::SendMessageRequest {
                stream_id: stream.to_owned(),
                content: content.to_owned(),
                idempotency_key: None,
            },
            &token,
        );
        match tokio::time::timeout(DEADLINE, service.clone().send_message(request)).await {
            Ok(Ok(reply)) => return reply.into_inner(),
            Ok(Err(status)) => last_error = Some(status.to_string()),
            Err(_) => last_error = Some("no answer in time".into()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{content:?} was never accepted: {last_error:?}");
}
