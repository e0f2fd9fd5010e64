//! `ChatService` as served: the generated server, except `SubscribeMessages`,
//! which is served here with [`EventCodec`] so that subscribers share each
//! event's one encoding (the generated server encodes every response with
//! prost, per subscriber). Same path, same request and response messages,
//! same compression and size settings (tonic's defaults, as the generated
//! server has them here): clients see no difference.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use allmine_chat_proto::v1 as pb;
use futures::future::BoxFuture;
use pb::chat_service_server::{ChatServiceServer, SERVICE_NAME};
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, ServerStreamingService};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};
use tower::Service;

use super::event_codec::EventCodec;
use super::{ChatServiceImpl, subscribe_messages};
use crate::auth::Authenticator;
use crate::live::subscription::EventStream;

const SUBSCRIBE_MESSAGES: &str = "/allmine.chat.v1.ChatService/SubscribeMessages";

/// `ChatService` behind the authenticating interceptor (as
/// `ChatServiceServer::with_interceptor` would be).
pub fn chat_service(
    service: ChatServiceImpl,
    authenticator: Authenticator,
) -> InterceptedService<ChatServer, Authenticator> {
    let service = Arc::new(service);
    InterceptedService::new(
        ChatServer {
            generated: ChatServiceServer::from_arc(Arc::clone(&service)),
            service,
        },
        authenticator,
    )
}

#[derive(Clone)]
pub struct ChatServer {
    generated: ChatServiceServer<ChatServiceImpl>,
    service: Arc<ChatServiceImpl>,
}

impl NamedService for ChatServer {
    const NAME: &'static str = SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for ChatServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != SUBSCRIBE_MESSAGES {
            return self.generated.call(request);
        }
        let method = Subscribe(Arc::clone(&self.service));
        Box::pin(async move {
            Ok(Grpc::new(EventCodec)
                .server_streaming(method, request)
                .await)
        })
    }
}

struct Subscribe(Arc<ChatServiceImpl>);

impl ServerStreamingService<pb::SubscribeMessagesRequest> for Subscribe {
    type Response = crate::live::encoded::Outgoing;
    type ResponseStream = EventStream;
    type Future = BoxFuture<'static, Result<Response<EventStream>, Status>>;

    fn call(&mut self, request: Request<pb::SubscribeMessagesRequest>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move {
            subscribe_messages::handle(&service, request)
                .await
                .map_err(Status::from)
        })
    }
}
