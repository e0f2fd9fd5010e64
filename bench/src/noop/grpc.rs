//! The gRPC baseline: `allmine.chat.v1.ChatService/SendMessage` on tonic,
//! answering a canned [`pb::ChatMessage`] of the real reply's size without
//! looking at the request beyond decoding it; and `SubscribeMessages`, a
//! server stream of every send made while it is open (see [`super::live`]).
//!
//! The service is written out as the generated server code does it (a tower
//! service routing on the path to `tonic::server::Grpc::unary` with the prost
//! codec), rather than by implementing the generated `ChatService` trait, so
//! that new RPCs in the contract never break the baseline. The server is built
//! like chat-service's (HTTP/1.1 accepted, gRPC-Web layer), without the JWT
//! interceptor, validation or store: the transport's ceiling.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use allmine_chat_proto::v1 as pb;
use futures::Stream;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::{NamedService, ServerStreamingService, UnaryService};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::live::{NoopLive, followed};
use crate::payload;

const SEND_MESSAGE_PATH: &str = "/allmine.chat.v1.ChatService/SendMessage";
const SUBSCRIBE_PATH: &str = "/allmine.chat.v1.ChatService/SubscribeMessages";

/// Serves the no-op `ChatService` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = NoopChatService {
        reply: Arc::new(payload::canned_message(
            &allmine_test_support::random_object_id(),
        )?),
        live: Arc::default(),
    };
    Server::builder()
        .accept_http1(true)
        .layer(tonic_web::GrpcWebLayer::new())
        .add_service(service)
        .serve_with_incoming_shutdown(
            // As chat-service: tonic's own `tcp_nodelay` does not apply to a
            // listener handed to it.
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}

/// Binds `addr` and serves until SIGTERM.
pub async fn run(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve(listener, super::terminated()).await
}

#[derive(Clone)]
struct NoopChatService {
    reply: Arc<pb::ChatMessage>,
    live: Arc<NoopLive<pb::ChatEvent>>,
}

impl NamedService for NoopChatService {
    const NAME: &'static str = allmine_chat_proto::CHAT_SERVICE_NAME;
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send + 'static>>;

impl tonic::codegen::Service<http::Request<Body>> for NoopChatService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match request.uri().path() {
            SEND_MESSAGE_PATH => {
                let method = CannedReply {
                    reply: self.reply.clone(),
                    live: self.live.clone(),
                };
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Box::pin(async move { Ok(grpc.unary(method, request).await) })
            }
            SUBSCRIBE_PATH => {
                let method = Follow(self.live.clone());
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Box::pin(async move { Ok(grpc.server_streaming(method, request).await) })
            }
            _ => {
                let status =
                    Status::unimplemented("the baseline serves SendMessage and SubscribeMessages");
                Box::pin(ready(Ok(status.into_http())))
            }
        }
    }
}

struct CannedReply {
    reply: Arc<pb::ChatMessage>,
    live: Arc<NoopLive<pb::ChatEvent>>,
}

impl UnaryService<pb::SendMessageRequest> for CannedReply {
    type Response = pb::ChatMessage;
    type Future = Ready<Result<Response<pb::ChatMessage>, Status>>;

    fn call(&mut self, _request: Request<pb::SendMessageRequest>) -> Self::Future {
        let reply = self
            .live
            .publish_if_followed(&self.reply, |message| pb::ChatEvent {
                cursor: message.cursor.clone(),
                event: Some(pb::chat_event::Event::Message(message.clone())),
            })
            .unwrap_or_else(|| pb::ChatMessage::clone(&self.reply));
        ready(Ok(Response::new(reply)))
    }
}

/// `SubscribeMessages`: every event broadcast from now on; the request is
/// not looked at.
struct Follow(Arc<NoopLive<pb::ChatEvent>>);

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ChatEvent, Status>> + Send>>;

impl ServerStreamingService<pb::SubscribeMessagesRequest> for Follow {
    type Response = pb::ChatEvent;
    type ResponseStream = EventStream;
    type Future = Ready<Result<Response<EventStream>, Status>>;

    fn call(&mut self, _request: Request<pb::SubscribeMessagesRequest>) -> Self::Future {
        let events = followed(self.0.follow(), |event| Ok(pb::ChatEvent::clone(event)));
        ready(Ok(Response::new(Box::pin(events))))
    }
}
