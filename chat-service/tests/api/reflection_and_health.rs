//! What grpcurl and load balancers see: reflection (v1 and v1alpha) lists and
//! describes the service without a token; health answers SERVING, and
//! NOT_SERVING once shutdown begins; gRPC-Web clients (HTTP/1.1) are served.

use std::net::SocketAddr;

use allmine_chat_proto::{CHAT_ADMIN_SERVICE_NAME, CHAT_EDGE_SERVICE_NAME, CHAT_SERVICE_NAME};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1 as reflection_v1;
use tonic_reflection::pb::v1alpha as reflection_v1alpha;

use crate::helpers::{channel, spawn_service, spawn_service_with};

#[tokio::test]
async fn reflection_v1_lists_and_describes_the_chat_service() {
    use reflection_v1::server_reflection_client::ServerReflectionClient;
    use reflection_v1::server_reflection_request::MessageRequest;
    use reflection_v1::server_reflection_response::MessageResponse;

    let service = spawn_service().await;
    let names = listed_services(service.addr).await;
    assert!(names.contains(&CHAT_SERVICE_NAME.to_owned()), "{names:?}");
    // The edge's internal check is served (and so listed) here too.
    assert!(
        names.contains(&CHAT_EDGE_SERVICE_NAME.to_owned()),
        "{names:?}"
    );
    // Served on this port too unless CHAT_ADMIN_GRPC_ADDR moves it.
    assert!(
        names.contains(&CHAT_ADMIN_SERVICE_NAME.to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );

    let mut client = ServerReflectionClient::new(channel(service.addr).await);
    let request = reflection_v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(format!(
            "{CHAT_SERVICE_NAME}.SendMessage"
        ))),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let described = responses
        .message()
        .await
        .expect("stream")
        .expect("a response");
    let Some(MessageResponse::FileDescriptorResponse(files)) = described.message_response else {
        panic!("expected file descriptors, got {described:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    service.stop().await;
}

#[tokio::test]
async fn with_the_admin_service_on_its_own_port_each_port_lists_what_it_serves() {
    let service = spawn_service_with(|config| {
        config.admin_grpc_addr = Some("127.0.0.1:0".parse().expect("address"));
    })
    .await;
    let admin_addr = service
        .admin_addr
        .expect("the admin service has its own port");

    let main = listed_services(service.addr).await;
    assert!(main.contains(&CHAT_SERVICE_NAME.to_owned()), "{main:?}");
    assert!(
        !main.contains(&CHAT_ADMIN_SERVICE_NAME.to_owned()),
        "{main:?}"
    );

    let admin = listed_services(admin_addr).await;
    assert!(
        admin.contains(&CHAT_ADMIN_SERVICE_NAME.to_owned()),
        "{admin:?}"
    );
    assert!(!admin.contains(&CHAT_SERVICE_NAME.to_owned()), "{admin:?}");
    assert!(
        admin.contains(&"grpc.health.v1.Health".to_owned()),
        "{admin:?}"
    );
    service.stop().await;
}

/// The service names reflection v1 lists at `addr`.
async fn listed_services(addr: SocketAddr) -> Vec<String> {
    use reflection_v1::server_reflection_client::ServerReflectionClient;
    use reflection_v1::server_reflection_request::MessageRequest;
    use reflection_v1::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(channel(addr).await);
    let request = reflection_v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let listed = responses
        .message()
        .await
        .expect("stream")
        .expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("expected a service list, got {listed:?}");
    };
    list.service
        .into_iter()
        .map(|service| service.name)
        .collect()
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_chat_service_for_older_grpcurl() {
    use reflection_v1alpha::server_reflection_client::ServerReflectionClient;
    use reflection_v1alpha::server_reflection_request::MessageRequest;
    use reflection_v1alpha::server_reflection_response::MessageResponse;

    let service = spawn_service().await;
    let mut client = ServerReflectionClient::new(channel(service.addr).await);
    let request = reflection_v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let listed = responses
        .message()
        .await
        .expect("stream")
        .expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("expected a service list, got {listed:?}");
    };
    assert!(
        list.service
            .iter()
            .any(|service| service.name == CHAT_SERVICE_NAME)
    );
    service.stop().await;
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_chat_service() {
    let service = spawn_service().await;
    let mut health = HealthClient::new(channel(service.addr).await);
    for name in ["", CHAT_SERVICE_NAME] {
        let status = wait_for_status(&mut health, name, ServingStatus::Serving).await;
        assert_eq!(status, ServingStatus::Serving, "service {name:?}");
    }
    service.stop().await;
}

/// Polls (bounded) until `name` reports `wanted`; returns the last status.
async fn wait_for_status(
    health: &mut HealthClient<tonic::transport::Channel>,
    name: &str,
    wanted: ServingStatus,
) -> ServingStatus {
    let mut last = ServingStatus::Unknown;
    for _ in 0..50 {
        if let Ok(response) = health
            .check(HealthCheckRequest {
                service: name.into(),
            })
            .await
        {
            last = response.into_inner().status();
            if last == wanted {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test]
async fn grpc_web_clients_are_served_over_http1() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let service = spawn_service().await;
    let mut health = HealthClient::new(channel(service.addr).await);
    wait_for_status(&mut health, "", ServingStatus::Serving).await;
    // A health check as a browser's gRPC-Web client sends it: HTTP/1.1, one
    // empty message (flag 0, length 0).
    let mut connection = tokio::net::TcpStream::connect(service.addr)
        .await
        .expect("connects");
    let request = "POST /grpc.health.v1.Health/Check HTTP/1.1\r\n\
                   host: chat-service\r\n\
                   content-type: application/grpc-web+proto\r\n\
                   x-grpc-web: 1\r\n\
                   content-length: 5\r\n\
                   connection: close\r\n\r\n";
    connection
        .write_all(request.as_bytes())
        .await
        .expect("writes");
    connection.write_all(&[0; 5]).await.expect("writes");
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        connection.read_to_end(&mut response),
    )
    .await
    .expect("an answer")
    .expect("reads");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.contains("content-type: application/grpc-web+proto"),
        "{response}"
    );
    // SERVING is status 1 (field 1, varint): bytes 0x08 0x01 after the
    // 5-byte frame header; then the trailers frame.
    assert!(response.contains("\u{8}\u{1}"), "{response}");
    assert!(response.contains("grpc-status:0"), "{response}");
    service.stop().await;
}
