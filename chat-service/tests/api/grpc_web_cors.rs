//! CORS on the gRPC-Web endpoint (`CHAT_CORS_ALLOWED_ORIGINS`), spoken as a
//! browser does over HTTP/1.1: a preflight from an allowed origin succeeds
//! for gRPC-Web's headers, its answers (errors included) grant the origin
//! and expose `grpc-status`, an unlisted origin gets no grant, and without
//! the setting nothing changes.

use std::net::SocketAddr;
use std::time::Duration;

use chat_service::transport::cors::AllowedOrigins;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestService, spawn_service, spawn_service_with};

const ALLOWED: &str = "https://app.example";
const UNLISTED: &str = "https://evil.example";
const SEND_PATH: &str = "/allmine.chat.v1.ChatService/SendMessage";
const REQUESTED_HEADERS: &str = "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout";

async fn spawn_with_origins(origins: &str) -> TestService {
    let origins = AllowedOrigins::parse(origins).expect("valid origins");
    spawn_service_with(|config| config.cors_allowed_origins = origins).await
}

/// One HTTP/1.1 exchange on a fresh connection: the answer's head, with
/// header names lowercased.
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut connection = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    connection.write_all(head.as_bytes()).await.expect("writes");
    connection.write_all(body).await.expect("writes");
    let mut response = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(15),
        connection.read_to_end(&mut response),
    )
    .await
    .expect("an answer")
    .expect("reads");
    let response = String::from_utf8_lossy(&response);
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .map(|line| match line.split_once(':') {
            Some((name, value)) => format!("{}:{}", name.to_ascii_lowercase(), value),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn preflight(addr: SocketAddr, origin: &str) -> String {
    let head = format!(
        "OPTIONS {SEND_PATH} HTTP/1.1\r\nhost: chat-service\r\norigin: {origin}\r\n\
         access-control-request-method: POST\r\n\
         access-control-request-headers: {REQUESTED_HEADERS}\r\n\
         connection: close\r\n\r\n"
    );
    exchange(addr, &head, &[]).await
}

/// A gRPC-Web `SendMessage` without a token (so chat-service refuses it
/// with a status in the headers), from `origin`.
async fn unauthenticated_send(addr: SocketAddr, origin: &str) -> String {
    let head = format!(
        "POST {SEND_PATH} HTTP/1.1\r\nhost: chat-service\r\norigin: {origin}\r\n\
         content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
         content-length: 5\r\nconnection: close\r\n\r\n"
    );
    exchange(addr, &head, &[0; 5]).await
}

/// The value of header `name` in `head`, if present.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .map(str::trim)
}

fn list(head: &str, name: &str) -> Vec<String> {
    header(head, name)
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_succeeds_for_grpc_webs_headers() {
    let service = spawn_with_origins(ALLOWED).await;

    let head = preflight(service.addr, ALLOWED).await;

    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "access-control-allow-origin"), Some(ALLOWED));
    assert!(list(&head, "access-control-allow-methods").contains(&"post".to_owned()));
    let allowed = list(&head, "access-control-allow-headers");
    for name in REQUESTED_HEADERS.split(',') {
        assert!(allowed.iter().any(|item| item == name), "{name}: {head}");
    }
    service.stop().await;
}

#[tokio::test]
async fn a_refusal_grants_the_allowed_origin_and_exposes_the_grpc_status() {
    let service = spawn_with_origins(ALLOWED).await;

    let head = unauthenticated_send(service.addr, ALLOWED).await;

    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        header(&head, "grpc-status"),
        Some("16"),
        "UNAUTHENTICATED: {head}"
    );
    assert_eq!(header(&head, "access-control-allow-origin"), Some(ALLOWED));
    let exposed = list(&head, "access-control-expose-headers");
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.iter().any(|item| item == name), "{name}: {head}");
    }
    service.stop().await;
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_grant() {
    let service = spawn_with_origins(ALLOWED).await;

    let preflight = preflight(service.addr, UNLISTED).await;
    let send = unauthenticated_send(service.addr, UNLISTED).await;

    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        None,
        "{preflight}"
    );
    assert_eq!(header(&send, "access-control-allow-origin"), None, "{send}");
    service.stop().await;
}

#[tokio::test]
async fn without_the_setting_grpc_web_answers_carry_no_cors_headers() {
    let service = spawn_service().await;

    let send = unauthenticated_send(service.addr, ALLOWED).await;

    assert_eq!(header(&send, "grpc-status"), Some("16"), "{send}");
    assert_eq!(header(&send, "access-control-allow-origin"), None, "{send}");
    assert_eq!(
        header(&send, "access-control-expose-headers"),
        None,
        "{send}"
    );
    service.stop().await;
}
