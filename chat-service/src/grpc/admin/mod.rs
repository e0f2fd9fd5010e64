//! `allmine.chat.v1.ChatAdminService`: how other Allmine services register
//! streams, open, close and end their chats, change settings, and push user
//! profiles. Every call needs a token whose `roles` include `service`. As in
//! `ChatService`, handlers return `ChatError` and each gets its span from
//! `#[tracing::instrument]`.

mod profiles;
mod streams;

use allmine_chat_proto::v1 as pb;
use pb::chat_admin_service_server::ChatAdminService;
use tonic::{Request, Response, Status};

use crate::auth::Identity;
use crate::error::ChatError;
use std::sync::Arc;

use crate::live::Hub;
use crate::storage::SharedStore;

/// The role a token needs for the admin service.
pub const SERVICE_ROLE: &str = "service";

#[derive(Clone)]
pub struct ChatAdminServiceImpl {
    store: SharedStore,
    hub: Arc<Hub>,
}

impl ChatAdminServiceImpl {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            store: hub.store().clone(),
            hub,
        }
    }
}

/// The verified caller, if it is an Allmine service.
fn require_service<T>(request: &Request<T>) -> Result<Identity, ChatError> {
    let identity = Identity::from_request(request)?;
    if identity.roles.iter().any(|role| role == SERVICE_ROLE) {
        Ok(identity)
    } else {
        Err(ChatError::PermissionDenied(format!(
            "the admin service needs a token with the '{SERVICE_ROLE}' role"
        )))
    }
}

#[tonic::async_trait]
impl ChatAdminService for ChatAdminServiceImpl {
    async fn register_stream(
        &self,
        request: Request<pb::RegisterStreamRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        streams::register(self, request).await.map_err(Status::from)
    }

    async fn set_chat_open(
        &self,
        request: Request<pb::SetChatOpenRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        streams::set_open(self, request).await.map_err(Status::from)
    }

    async fn end_stream(
        &self,
        request: Request<pb::EndStreamRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        streams::end(self, request).await.map_err(Status::from)
    }

    async fn update_stream_settings(
        &self,
        request: Request<pb::UpdateStreamSettingsRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        streams::update_settings(self, request)
            .await
            .map_err(Status::from)
    }

    async fn get_stream(
        &self,
        request: Request<pb::GetStreamRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        streams::get(self, request).await.map_err(Status::from)
    }

    async fn upsert_user_profile(
        &self,
        request: Request<pb::UserProfile>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        profiles::upsert(self, request).await.map_err(Status::from)
    }
}
