//! `GET /healthz` (the edge process is alive) and `GET /readyz` (chat-service
//! is reachable and SERVING, so requests can succeed).

use axum::{Json, extract::State};
use serde::Serialize;

use crate::{error::ApiError, grpc::ChatClient, request_id::RequestId};

#[derive(Debug, Serialize)]
pub struct HealthBody {
    status: &'static str,
}

const OK: HealthBody = HealthBody { status: "ok" };

/// Liveness: answers without touching chat-service, so that an orchestrator
/// does not restart the edge because chat-service is down.
pub async fn healthz() -> Json<HealthBody> {
    Json(OK)
}

/// Readiness: 200 when chat-service's health check says SERVING, else a 503
/// envelope.
pub async fn readyz(
    State(chat): State<ChatClient>,
    request_id: RequestId,
) -> Result<Json<HealthBody>, ApiError> {
    chat.check_ready(&request_id).await?;
    Ok(Json(OK))
}
