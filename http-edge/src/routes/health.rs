//! `GET /healthz` (the edge process is alive) and `GET /readyz` (chat-service
//! is reachable and SERVING, so requests can succeed).

use axum::{Json, extract::State};
use serde::Serialize;

use crate::{error::ApiError, grpc::ChatClient, request_id::RequestId};

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Health)]
pub struct HealthBody {
    /// Always `"ok"`.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

const OK: HealthBody = HealthBody { status: "ok" };

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    description = "The edge process is alive; asks nothing of chat-service.",
    tag = "health",
    summary = "Liveness: the edge is up",
    responses((status = 200, description = "Alive.", body = HealthBody)),
    security(()),
)]
/// Liveness: answers without touching chat-service, so that an orchestrator
/// does not restart the edge because chat-service is down.
pub async fn healthz() -> Json<HealthBody> {
    Json(OK)
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    description = "200 when chat-service's health check says SERVING, else 503.",
    tag = "health",
    summary = "Readiness: chat-service is reachable and serving",
    responses((status = 200, description = "Ready.", body = HealthBody)),
    security(()),
)]
/// Readiness: 200 when chat-service's health check says SERVING, else a 503
/// envelope.
pub async fn readyz(
    State(chat): State<ChatClient>,
    request_id: RequestId,
) -> Result<Json<HealthBody>, ApiError> {
    chat.check_ready(&request_id).await?;
    Ok(Json(OK))
}
