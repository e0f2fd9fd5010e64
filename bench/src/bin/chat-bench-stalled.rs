//! `chat-bench-stalled`: what `SubscribeMessages` clients that stop reading
//! cost chat-service in memory (issue: one client cannot hurt another).
//!
//! It opens `--count` subscriptions over `--connections` raw HTTP/2
//! connections whose flow-control windows are as large as HTTP/2 allows, so
//! that flow control does not hold chat-service back, then stops reading
//! those sockets, and sends `--messages` messages of ~500 characters to the
//! stream. Each stalled subscription then costs chat-service whatever it
//! queues for a peer that does not read. The resident memory of the process
//! `--pid` is sampled before, after subscribing, and after the sends.
//!
//! ```sh
//! chat-service &                      # CHAT_JWT_SECRET as chat-bench's tokens
//! target/release/chat-bench-stalled --grpc 127.0.0.1:50051 --pid $! --count 1000
//! ```

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use allmine_chat_bench::{payload, process::rss_bytes};
use allmine_chat_proto::v1 as pb;
use allmine_test_support::{TokenBuilder, random_object_id};
use anyhow::Context as _;
use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use pb::chat_admin_service_client::ChatAdminServiceClient;
use pb::chat_service_client::ChatServiceClient;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
struct Args {
    /// chat-service's gRPC address.
    #[arg(long)]
    grpc: SocketAddr,
    /// chat-service's process id, for its resident memory.
    #[arg(long)]
    pid: u32,
    /// Stalled subscriptions.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// HTTP/2 connections carrying them (at most 100 streams each by
    /// default in many servers; chat-service allows more).
    #[arg(long, default_value_t = 10)]
    connections: usize,
    /// Messages sent once every subscriber has stalled.
    #[arg(long, default_value_t = 400)]
    messages: usize,
}

/// A socket whose reads can be stopped: once `frozen`, a read never
/// completes (and never wakes), as a client that stopped reading.
struct Freezable {
    inner: TcpStream,
    frozen: Arc<AtomicBool>,
}

impl AsyncRead for Freezable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.frozen.load(Ordering::Relaxed) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Freezable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One length-prefixed gRPC message.
fn grpc_frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + body.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
    frame.put_slice(&body);
    frame.freeze()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let stream_id = random_object_id();
    let owner = TokenBuilder::new();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", args.grpc))?
        .connect()
        .await
        .context("connecting to chat-service")?;
    let mut admin = ChatAdminServiceClient::new(channel.clone());
    let mut register = tonic::Request::new(pb::RegisterStreamRequest {
        stream_id: stream_id.clone(),
        owner_id: owner.user_id(),
    });
    register.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", TokenBuilder::service().build()).parse()?,
    );
    admin.register_stream(register).await?;

    let before = rss_bytes(args.pid)?;
    let authorizations = payload::viewer_authorizations(args.count);
    let per_connection = args.count.div_ceil(args.connections.max(1));
    let mut frozen = Vec::new();
    let mut held = Vec::new();
    for chunk in authorizations.chunks(per_connection) {
        let flag = Arc::new(AtomicBool::new(false));
        let io = Freezable {
            inner: TcpStream::connect(args.grpc).await?,
            frozen: flag.clone(),
        };
        let (client, connection) = h2::client::Builder::new()
            .initial_window_size(i32::MAX as u32)
            .initial_connection_window_size(i32::MAX as u32)
            .max_concurrent_reset_streams(0)
            .handshake::<_, Bytes>(io)
            .await?;
        tokio::spawn(connection);
        for authorization in chunk {
            let mut client = client.clone().ready().await?;
            let request = http::Request::post(format!(
                "http://{}/allmine.chat.v1.ChatService/SubscribeMessages",
                args.grpc
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", authorization.as_str())
            .body(())?;
            let (response, mut body) = client.send_request(request, false)?;
            body.send_data(
                grpc_frame(&pb::SubscribeMessagesRequest {
                    stream_id: stream_id.clone(),
                    after: None,
                }),
                true,
            )?;
            let response = tokio::time::timeout(Duration::from_secs(10), response)
                .await
                .context("no answer to a subscription")??;
            anyhow::ensure!(
                response.status() == 200,
                "subscription refused: {response:?}"
            );
            held.push(response);
        }
        frozen.push(flag);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subscribed = rss_bytes(args.pid)?;
    for flag in &frozen {
        flag.store(true, Ordering::Relaxed);
    }

    let mut chat = ChatServiceClient::new(channel);
    let owner_authorization = format!("Bearer {}", owner.build());
    for index in 0..args.messages {
        let mut request = tonic::Request::new(pb::SendMessageRequest {
            stream_id: stream_id.clone(),
            content: format!("{index:05} {}", "é".repeat(490)),
            idempotency_key: None,
        });
        request
            .metadata_mut()
            .insert("authorization", owner_authorization.parse()?);
        chat.send_message(request).await?;
    }
    // Let chat-service push what it will into the stalled streams.
    let mut peak = rss_bytes(args.pid)?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss_bytes(args.pid)?);
    }
    let count = args.count as f64;
    println!(
        "stalled subscribers: {}, messages: {} (~1 KB of event each)",
        args.count, args.messages
    );
    println!(
        "chat-service RSS: before {:.1} MiB, subscribed {:.1} MiB, after the sends {:.1} MiB",
        mib(before),
        mib(subscribed),
        mib(peak)
    );
    println!(
        "per stalled subscriber: {:.1} KiB idle, {:.1} KiB once it has stopped reading",
        (subscribed.saturating_sub(before)) as f64 / 1024.0 / count,
        (peak.saturating_sub(before)) as f64 / 1024.0 / count,
    );
    drop(held);
    Ok(())
}
