//! The `allmine.chat.v1.ChatService` implementation. Each RPC lives in its
//! own file; handlers are thin: parse the request into domain types, do the
//! work, map the result.

mod send_message;

use std::sync::Arc;

use allmine_chat_proto::v1 as pb;
use pb::chat_service_server::ChatService;
use tonic::{Request, Response, Status};

use crate::domain::ObjectIdGenerator;
use crate::storage::SharedStore;

/// What the handlers share.
#[derive(Clone)]
pub struct ChatServiceImpl {
    store: SharedStore,
    ids: Arc<ObjectIdGenerator>,
}

impl ChatServiceImpl {
    pub fn new(store: SharedStore) -> Self {
        Self {
            store,
            ids: Arc::new(ObjectIdGenerator::new()),
        }
    }
}

#[tonic::async_trait]
impl ChatService for ChatServiceImpl {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::ChatMessage>, Status> {
        send_message::handle(self, request).await
    }
}

/// The caller's `x-request-id` (set by http-edge), for log correlation.
fn request_id<T>(request: &Request<T>) -> &str {
    request
        .metadata()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
}
