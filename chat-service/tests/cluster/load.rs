//! The send load: concurrent clients, each a user of its own, sending unique
//! contents one after another through one chat-service instance. Every send
//! is recorded with the phase of the cluster it began in and the answer it
//! got, so that the scenario can judge each phase on its own (sends during a
//! node loss must succeed, sends without a quorum must be refused as
//! UNAVAILABLE in time) and the whole run with the history checker.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allmine_chat_proto::v1::SendMessageRequest;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_test_support::TokenBuilder;
use allmine_test_support::grpc::bearer;
use allmine_test_support::history::{Outcome, Send, classify};
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

/// The client's deadline for one send: http-edge's deadline towards
/// chat-service (5 s), above the store's per-statement timeout (2 s), so a
/// database that cannot answer must be turned into a refusal before it.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Pause between one client's sends: a few hundred messages per run.
const PAUSE: Duration = Duration::from_millis(50);
/// Pause after a failed send, doubled up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// What the cluster is going through; each send records the phase it began
/// in. Transitional phases (a node stopping or starting) are judged only by
/// the rules that hold at all times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    AllUp,
    StoppingOne,
    OneDown,
    Resuming,
    ResumedOtherStopping,
    OtherDown,
    StoppingSecond,
    QuorumLost,
    QuorumReturning,
    QuorumBack,
}

impl Phase {
    const ALL: [Self; 10] = [
        Self::AllUp,
        Self::StoppingOne,
        Self::OneDown,
        Self::Resuming,
        Self::ResumedOtherStopping,
        Self::OtherDown,
        Self::StoppingSecond,
        Self::QuorumLost,
        Self::QuorumReturning,
        Self::QuorumBack,
    ];

    fn from_u8(value: u8) -> Self {
        Self::ALL[usize::from(value)]
    }
}

/// How one send was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Refused(Code),
    /// Nothing within [`DEADLINE`].
    Silent,
}

/// One send: what the checker needs, and what the phase rules need.
#[derive(Debug, Clone)]
pub struct Record {
    pub send: Send,
    pub phase: Phase,
    pub answer: Answer,
    /// How long the answer took (for the report of a violation).
    pub took: Duration,
}

/// Every send of the run, and the current phase.
pub struct Recorder {
    records: Mutex<Vec<Record>>,
    phase: AtomicU8,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            records: Mutex::new(Vec::new()),
            phase: AtomicU8::new(Phase::AllUp as u8),
        }
    }
}

impl Recorder {
    pub fn enter(&self, phase: Phase) {
        eprintln!("cluster scenario: phase {phase:?}");
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::SeqCst))
    }

    fn record(&self, record: Record) {
        self.records.lock().expect("recorder lock").push(record);
    }

    pub fn records(&self) -> Vec<Record> {
        self.records.lock().expect("recorder lock").clone()
    }

    /// Sends begun in `phase` that got `answer`.
    pub fn count(&self, phase: Phase, answer: impl Fn(Answer) -> bool) -> usize {
        self.records
            .lock()
            .expect("recorder lock")
            .iter()
            .filter(|record| record.phase == phase && answer(record.answer))
            .count()
    }
}

/// The running clients.
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` senders to `stream` over `channel`; contents start
    /// with `tag`.
    pub fn start(
        clients: usize,
        channel: &Channel,
        stream: &str,
        tag: &str,
        recorder: &Arc<Recorder>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|client| {
                let sender = Sender {
                    client: ChatServiceClient::new(channel.clone()),
                    stream: stream.to_owned(),
                    token: TokenBuilder::new().build(),
                };
                let prefix = format!("{tag} c{client}");
                let stop = Arc::clone(&stop);
                let recorder = Arc::clone(recorder);
                tokio::spawn(async move {
                    let mut backoff = BACKOFF;
                    let mut seq = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let content = format!("{prefix} #{seq}");
                        seq += 1;
                        let phase = recorder.phase();
                        let began = Instant::now();
                        let (outcome, answer) = sender.attempt(&content).await;
                        let took = began.elapsed();
                        recorder.record(Record {
                            send: Send {
                                client,
                                content,
                                attempts: vec![outcome],
                            },
                            phase,
                            answer,
                            took,
                        });
                        if answer == Answer::Ok {
                            backoff = BACKOFF;
                            tokio::time::sleep(PAUSE).await;
                        } else {
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                })
            })
            .collect();
        Self { stop, clients }
    }

    /// Lets each client finish the send it is in, then stops them.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.await.expect("a client task panicked");
        }
    }
}

/// One client: one user, one stream.
struct Sender {
    client: ChatServiceClient<Channel>,
    stream: String,
    token: String,
}

impl Sender {
    async fn attempt(&self, content: &str) -> (Outcome, Answer) {
        let request = bearer(
            SendMessageRequest {
                stream_id: self.stream.clone(),
                content: content.to_owned(),
                idempotency_key: None,
            },
            &self.token,
        );
        let mut client = self.client.clone();
        match tokio::time::timeout(DEADLINE, client.send_message(request)).await {
            Ok(Ok(reply)) => (
                Outcome::Ok {
                    id: reply.into_inner().id,
                },
                Answer::Ok,
            ),
            Ok(Err(status)) => (classify(&status), Answer::Refused(status.code())),
            Err(_) => (
                Outcome::Unknown {
                    reason: "no answer in time".into(),
                },
                Answer::Silent,
            ),
        }
    }
}
