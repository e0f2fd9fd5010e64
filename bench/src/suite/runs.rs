//! One run of one target, and the set-up around runs: registering the
//! benchmark stream, dropping a benchmark keyspace.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use allmine_chat_proto::v1 as pb;
use allmine_chat_proto::v1::chat_admin_service_client::ChatAdminServiceClient;
use allmine_test_support::backends::scylla_settings;
use allmine_test_support::{TokenBuilder, random_object_id};
use chat_service::storage::scylla::ScyllaStore;

use crate::load::grpc::GrpcSend;
use crate::load::http::{HttpRequest, HttpSlot};
use crate::load::{self, Plan, RunOutcome};
use crate::payload;

/// Requests a run may hold in flight in open-loop mode.
const MAX_IN_FLIGHT: usize = 4_096;

/// Users taking turns in open-loop runs.
const OPEN_LOOP_USERS: usize = 64;

/// What a closed-loop run drives.
#[derive(Clone)]
pub enum Target {
    /// `ChatService/SendMessage` at this address, to the suite's stream.
    Grpc(SocketAddr),
    /// REST sends.
    Http(HttpRequest),
}

impl Target {
    pub async fn closed(
        &self,
        stream_id: &str,
        concurrency: usize,
        plan: Plan,
    ) -> anyhow::Result<RunOutcome> {
        match self {
            Self::Grpc(addr) => grpc_closed(*addr, stream_id, concurrency, plan).await,
            Self::Http(request) => http_closed(request.clone(), concurrency, plan).await,
        }
    }
}

pub async fn grpc_closed(
    addr: SocketAddr,
    stream_id: &str,
    concurrency: usize,
    plan: Plan,
) -> anyhow::Result<RunOutcome> {
    let target = GrpcSend::connect(addr, stream_id, concurrency).await?;
    Ok(load::closed_loop(target.slots(concurrency), plan).await)
}

pub async fn grpc_open(
    addr: SocketAddr,
    stream_id: &str,
    rate: f64,
    plan: Plan,
) -> anyhow::Result<RunOutcome> {
    let target = GrpcSend::connect(addr, stream_id, OPEN_LOOP_USERS).await?;
    load::open_loop(rate, plan, MAX_IN_FLIGHT, move |index| {
        let target = target.clone();
        async move { target.send(index as usize).await }
    })
    .await
}

pub async fn http_closed(
    request: HttpRequest,
    concurrency: usize,
    plan: Plan,
) -> anyhow::Result<RunOutcome> {
    let mut slots = Vec::with_capacity(concurrency);
    for authorization in payload::viewer_authorizations(concurrency) {
        slots.push(HttpSlot::connect(request.clone(), &authorization).await?);
    }
    Ok(load::closed_loop(slots, plan).await)
}

/// Registers a new stream through ChatAdminService, as the stream service
/// would, retrying while chat-service finishes starting.
pub async fn register_stream(addr: SocketAddr) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match register_stream_once(addr).await {
            Ok(stream_id) => return Ok(stream_id),
            Err(status) if Instant::now() > deadline => {
                return Err(anyhow::anyhow!(
                    "cannot register the benchmark stream at {addr}: {status}"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// One `RegisterStream` of a fresh stream with a `service` token.
pub async fn register_stream_once(addr: SocketAddr) -> Result<String, tonic::Status> {
    let unavailable = |error: &dyn std::fmt::Display| tonic::Status::unavailable(error.to_string());
    let stream_id = random_object_id();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|error| unavailable(&error))?
        .connect()
        .await
        .map_err(|error| unavailable(&error))?;
    let mut request = tonic::Request::new(pb::RegisterStreamRequest {
        stream_id: stream_id.clone(),
        owner_id: random_object_id(),
    });
    let token = format!("Bearer {}", TokenBuilder::service().build());
    request.metadata_mut().insert(
        "authorization",
        token.parse().map_err(|error| unavailable(&error))?,
    );
    ChatAdminServiceClient::new(channel)
        .register_stream(request)
        .await?;
    Ok(stream_id)
}

/// Removes a benchmark keyspace; a failure is only reported.
pub async fn drop_keyspace(keyspace: &str) {
    let settings = scylla_settings(keyspace, Duration::from_secs(60));
    let outcome = async {
        ScyllaStore::connect(&settings)
            .await?
            .drop_keyspace()
            .await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = outcome {
        eprintln!("chat-bench: could not drop keyspace {keyspace}: {error}");
    }
}
