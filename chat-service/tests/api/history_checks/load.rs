//! The load: concurrent clients, each a user of its own sending unique
//! contents one after another, recording every send's outcome in a shared
//! [`Recorder`]. About one send in ten is over-long on purpose, so that the
//! checker's "refused ones are absent" rule is exercised in every run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use allmine_chat_proto::v1::SendMessageRequest;
use allmine_chat_proto::v1::chat_service_client::ChatServiceClient;
use allmine_test_support::TokenBuilder;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::hooks;
use crate::helpers::authorized;
use allmine_test_support::history::{Outcome, Send, Verdict, classify};

/// How long a client waits for one answer before calling it unknown.
/// Above the service's own store timeout (2 s) so that the service usually
/// answers first; a hang still ends here.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between one client's sends. Keeps a run to a few hundred messages.
const PAUSE: Duration = Duration::from_millis(20);
/// Pause after an unknown outcome, doubled after each further one up to
/// [`MAX_BACKOFF`]: an outage of half a minute (a Cassandra restart) costs
/// each client a few dozen sends, not its whole budget.
const BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Retries of one send with its idempotency key before it stays unknown.
const MAX_ATTEMPTS: usize = 100;

/// What the load does.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub clients: usize,
    /// A cap per client, so that no run can outgrow what the readers read.
    pub max_sends_per_client: usize,
    /// Retry each unknown send with the same idempotency key until it gets
    /// a definite answer (the hook in [`hooks::set_idempotency_key`]).
    pub retry_with_key: bool,
    /// With keys: make each send's first attempt two concurrent requests
    /// with the same key (a client that fires its retry too early).
    pub race_first_attempt: bool,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            clients: 8,
            max_sends_per_client: 200,
            retry_with_key: false,
            race_first_attempt: false,
        }
    }
}

/// Every send of a run, as its clients saw them.
#[derive(Default)]
pub struct Recorder {
    // A std Mutex: held only to push or copy, never across an await.
    sends: Mutex<Vec<Send>>,
}

impl Recorder {
    fn record(&self, send: Send) {
        self.sends.lock().expect("recorder lock").push(send);
    }

    pub fn sends(&self) -> Vec<Send> {
        self.sends.lock().expect("recorder lock").clone()
    }

    /// How many sends have each verdict so far: (acknowledged, refused,
    /// indeterminate). Scenarios wait on these to know the load progressed.
    pub fn counts(&self) -> (usize, usize, usize) {
        let sends = self.sends.lock().expect("recorder lock");
        let mut counts = (0, 0, 0);
        for send in sends.iter() {
            match send.verdict().0 {
                Verdict::Acknowledged { .. } => counts.0 += 1,
                Verdict::Refused => counts.1 += 1,
                Verdict::Indeterminate => counts.2 += 1,
            }
        }
        counts
    }
}

/// The running clients.
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `spec.clients` clients sending to `stream` over `channel`;
    /// contents start with `tag`, unique to the run.
    pub fn start(
        spec: LoadSpec,
        channel: Channel,
        stream: &str,
        tag: &str,
        recorder: &Arc<Recorder>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..spec.clients)
            .map(|client| {
                let sender = Sender {
                    client: ChatServiceClient::new(channel.clone()),
                    stream: stream.to_owned(),
                    token: TokenBuilder::new().build(),
                };
                let tag = tag.to_owned();
                let stop = Arc::clone(&stop);
                let recorder = Arc::clone(recorder);
                tokio::spawn(async move {
                    run_client(spec, client, &tag, sender, &stop, &recorder).await;
                })
            })
            .collect();
        Self { stop, clients }
    }

    /// Whether every client has stopped by itself (its budget spent, or a
    /// panic).
    pub fn finished(&self) -> bool {
        self.clients.iter().all(JoinHandle::is_finished)
    }

    /// Lets each client finish the send it is in (retries included), then
    /// stops them.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.await.expect("a client task panicked");
        }
    }
}

async fn run_client(
    spec: LoadSpec,
    client: usize,
    tag: &str,
    sender: Sender,
    stop: &AtomicBool,
    recorder: &Recorder,
) {
    let mut backoff = BACKOFF;
    for seq in 0..spec.max_sends_per_client {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let content = if seq % 10 == 7 {
            // 501+ characters: INVALID_ARGUMENT, a definite refusal.
            format!("{tag} c{client} #{seq} {}", "x".repeat(500))
        } else {
            format!("{tag} c{client} #{seq}")
        };
        let key = spec
            .retry_with_key
            .then(|| format!("{tag}-c{client}-{seq}"));
        let mut attempts = Vec::new();
        loop {
            let outcomes = if spec.race_first_attempt && attempts.is_empty() && key.is_some() {
                // The same key twice at once: one message at most.
                let (first, second) = tokio::join!(
                    sender.attempt(&content, key.as_deref()),
                    sender.attempt(&content, key.as_deref())
                );
                vec![first, second]
            } else {
                vec![sender.attempt(&content, key.as_deref()).await]
            };
            let acknowledged = outcomes
                .iter()
                .any(|outcome| matches!(outcome, Outcome::Ok { .. }));
            let refused = outcomes
                .iter()
                .all(|outcome| matches!(outcome, Outcome::Failed { .. }));
            // Only a stored message shows the fault is over: a refusal
            // (validation) comes before the store is touched.
            if acknowledged {
                backoff = BACKOFF;
            }
            attempts.extend(outcomes);
            if acknowledged || refused || key.is_none() || attempts.len() >= MAX_ATTEMPTS {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        let unknown = matches!(attempts.last(), Some(Outcome::Unknown { .. }));
        recorder.record(Send {
            client,
            content,
            attempts,
        });
        if unknown {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        } else {
            tokio::time::sleep(PAUSE).await;
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
    async fn attempt(&self, content: &str, key: Option<&str>) -> Outcome {
        let mut message = SendMessageRequest {
            stream_id: self.stream.clone(),
            content: content.to_owned(),
            idempotency_key: None,
        };
        if let Some(key) = key {
            hooks::set_idempotency_key(&mut message, key);
        }
        let request = authorized(message, &format!("Bearer {}", self.token));
        let mut client = self.client.clone();
        match tokio::time::timeout(ATTEMPT_TIMEOUT, client.send_message(request)).await {
            Ok(Ok(reply)) => Outcome::Ok {
                id: reply.into_inner().id,
            },
            Ok(Err(status)) => classify(&status),
            Err(_) => Outcome::Unknown {
                reason: "no answer in time".into(),
            },
        }
    }
}
