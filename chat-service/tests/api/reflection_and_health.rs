//! What grpcurl and load balancers see: reflection (v1 and v1alpha) lists and
//! describes the service without a token; health answers SERVING, and
//! NOT_SERVING once shutdown begins.

use std::net::SocketAddr;

use allmine_chat_proto::{CHAT_ADMIN_SERVICE_NAME, CHAT_SERVICE_NAME};
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
