//! History checks, Jepsen's method on the real binary: concurrent clients
//! record each send as ok, failed or unknown ([`load`]); faults are injected
//! while they send ([`scenarios`]); afterwards three readers ([`observe`]):
//! history and a subscription, both from the start of the run, and a live
//! subscriber that followed the run and resumed after each cut, are judged
//! against the record by the pure rules of
//! [`allmine_test_support::history`]: every ok message is read exactly once
//! with its id, no failed one is read, an unknown one at most once, nothing
//! appears that was not sent, one client's acknowledged messages appear in
//! its sending order, and the subscriptions deliver what they share with
//! history in history's order.

mod hooks;
mod load;
mod observe;
mod scenarios;

use std::sync::Arc;
use std::time::Duration;

use allmine_chat_proto::v1::SendMessageRequest;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_test_support::service_process::ServiceProcess;
use allmine_test_support::{TokenBuilder, random_object_id};
use tonic::transport::Channel;

use allmine_test_support::history::{Observed, Outcome, Send, Verdict, check, check_same_order};

use self::load::{Load, LoadSpec, Recorder};
use crate::helpers::authorized;

/// A hang detector for each wait on progress; never a measure of speed.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);

/// One run: a fresh stream, a start marker, the load and its record.
pub struct HistoryRun {
    name: &'static str,
    stream: String,
    tag: String,
    start_cursor: String,
    recorder: Arc<Recorder>,
    load: Load,
    live: tokio::task::JoinHandle<observe::LiveView>,
}

impl HistoryRun {
    /// Registers a stream on `service`, sends a start marker (the cursor the
    /// readers start from) and starts the load.
    pub async fn begin(name: &'static str, service: &ServiceProcess, spec: LoadSpec) -> Self {
        let stream = random_object_id();
        service.register_stream(&stream).await;
        let tag = format!("run-{}", &random_object_id()[..8]);
        let channel = service.channel().await;
        let start = send_until_ok(&channel, &stream, &format!("{tag} start")).await;
        let live = observe::follow_live(
            channel.clone(),
            stream.clone(),
            start.cursor.clone(),
            end_marker(&tag),
        );
        let recorder = Arc::new(Recorder::default());
        let load = Load::start(spec, channel, &stream, &tag, &recorder);
        Self {
            name,
            stream,
            tag,
            start_cursor: start.cursor,
            recorder,
            load,
            live,
        }
    }

    /// Waits until `more` further sends have been acknowledged: the load is
    /// running (before a fault), or the service recovered (after one).
    pub async fn wait_for_acknowledged(&self, more: usize, what: &str) {
        let target = self.recorder.counts().0 + more;
        self.wait_until(what, |(acknowledged, _, _)| acknowledged >= target)
            .await;
    }

    /// Waits until `more` further sends have an unknown outcome: the fault
    /// is being felt.
    pub async fn wait_for_unknown(&self, more: usize, what: &str) {
        let target = self.recorder.counts().2 + more;
        self.wait_until(what, |(_, _, unknown)| unknown >= target)
            .await;
    }

    async fn wait_until(&self, what: &str, done: impl Fn((usize, usize, usize)) -> bool) {
        let wait = async {
            while !done(self.recorder.counts()) {
                // Every client done (its budget spent, or a panic): nothing
                // more can come.
                assert!(
                    !self.load.finished(),
                    "{}: {what}: every client has stopped ({:?})",
                    self.name,
                    self.recorder.counts()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(PROGRESS_TIMEOUT, wait).await.is_err() {
            panic!(
                "{}: {what}: no progress (acknowledged, refused, unknown so far: {:?})",
                self.name,
                self.recorder.counts()
            );
        }
    }

    /// Stops the load, sends an end marker (retrying until the service takes
    /// it), and asserts that three readers keep every rule of [`check`]:
    /// history and a subscription, both read from the start marker once the
    /// run is over, and the live subscriber that followed the whole run,
    /// resuming after each cut.
    pub async fn finish(self, service: &ServiceProcess) -> Summary {
        self.load.stop().await;
        let channel = service.channel().await;
        let last = end_marker(&self.tag);
        send_until_ok(&channel, &self.stream, &last).await;
        let sends = self.recorder.sends();
        let history = observe::read_history(&channel, &self.stream, &self.start_cursor).await;
        let subscription =
            observe::read_subscription(&channel, &self.stream, &self.start_cursor, &last).await;
        let live = tokio::time::timeout(PROGRESS_TIMEOUT, self.live)
            .await
            .expect("the live subscriber reached the end marker in time")
            .expect("live subscriber task");
        let mut failures = Vec::new();
        for (reader, observed) in [
            ("history", &history),
            ("subscription from the start", &subscription),
            ("live subscription", &live.observed),
        ] {
            let observed = without_marker(observed, &last, reader, &mut failures);
            failures.extend(
                check(&sends, &observed)
                    .into_iter()
                    .map(|violation| format!("{reader}: {violation}")),
            );
        }
        for (reader, observed) in [
            ("subscription from the start", &subscription),
            ("live subscription", &live.observed),
        ] {
            failures.extend(
                check_same_order(&history, observed)
                    .into_iter()
                    .map(|violation| format!("{reader} against history: {violation}")),
            );
        }
        let summary = Summary::new(&sends, &history, live.resumes);
        eprintln!("history check {}: {summary:?}", self.name);
        assert!(
            failures.is_empty(),
            "{}: {} violations ({summary:?}):\n{}",
            self.name,
            failures.len(),
            failures.join("\n")
        );
        summary
    }
}

fn end_marker(tag: &str) -> String {
    format!("{tag} end")
}

/// `observed` without the end marker. It must have been read (the readers
/// would not have reached the end otherwise); it is the scenario's own
/// message, and a retry of it may have stored it twice, so copies are not
/// judged.
fn without_marker(
    observed: &[Observed],
    last: &str,
    reader: &str,
    failures: &mut Vec<String>,
) -> Vec<Observed> {
    if !observed.iter().any(|message| message.content == last) {
        failures.push(format!("{reader}: the end marker was not read"));
    }
    observed
        .iter()
        .filter(|message| message.content != last)
        .cloned()
        .collect()
}

/// What a run came to, printed by every run (for the README's numbers).
#[derive(Debug, Clone, Copy)]
#[allow(dead_code, reason = "read through Debug")]
pub struct Summary {
    pub sends: usize,
    pub acknowledged: usize,
    pub refused: usize,
    pub unknown: usize,
    /// Unknown sends that were stored after all.
    pub unknown_stored: usize,
    /// Unknown sends whose last attempt is unknown too (no retry gave a
    /// definite answer). At most `unknown`: a retry refused by validation (the
    /// run's over-long sends) ends definite, yet the send stays unknown,
    /// since an earlier attempt is not judged by a later refusal.
    pub ended_unknown: usize,
    /// How often the live subscriber had to resume.
    pub live_resumes: usize,
}

impl Summary {
    fn new(sends: &[Send], history: &[Observed], live_resumes: usize) -> Self {
        let mut summary = Self {
            sends: sends.len(),
            acknowledged: 0,
            refused: 0,
            unknown: 0,
            unknown_stored: 0,
            ended_unknown: 0,
            live_resumes,
        };
        for send in sends {
            match send.verdict().0 {
                Verdict::Acknowledged { .. } => summary.acknowledged += 1,
                Verdict::Refused => summary.refused += 1,
                Verdict::Indeterminate => {
                    summary.unknown += 1;
                    if matches!(send.attempts.last(), Some(Outcome::Unknown { .. })) {
                        summary.ended_unknown += 1;
                    }
                    if history
                        .iter()
                        .any(|message| message.content == send.content)
                    {
                        summary.unknown_stored += 1;
                    }
                }
            }
        }
        summary
    }
}

/// Sends `content` as a new user, retrying (bounded) until it is accepted:
/// the markers around a run, sent while the service may still be starting.
async fn send_until_ok(
    channel: &Channel,
    stream: &str,
    content: &str,
) -> allmine_chat_proto::v1::ChatMessage {
    let mut client = ChatServiceClient::new(channel.clone());
    let token = format!("Bearer {}", TokenBuilder::new().build());
    let mut last_error = None;
    for _ in 0..300 {
        let request = authorized(
            SendMessageRequest {
                stream_id: stream.to_owned(),
                content: content.to_owned(),
                idempotency_key: None,
            },
            &token,
        );
        match tokio::time::timeout(Duration::from_secs(5), client.send_message(request)).await {
            Ok(Ok(reply)) => return reply.into_inner(),
            Ok(Err(status)) => last_error = Some(status.to_string()),
            Err(_) => last_error = Some("no answer in time".into()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{content:?} was never accepted: {last_error:?}");
}
