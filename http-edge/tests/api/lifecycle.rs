//! The `Application` seam: bind, serve, stop on the shutdown future.

use std::time::Duration;

use http_edge::{Application, Config};
use tokio::sync::oneshot;

use crate::helpers::reserve_unused_port;

#[tokio::test]
async fn the_edge_stops_when_its_shutdown_future_resolves() {
    let mut config = Config::with_defaults(
        "127.0.0.1:0".parse().expect("a socket address"),
        format!("http://{}", reserve_unused_port())
            .parse()
            .expect("a URL"),
    );
    config.grpc_timeout_ms = 1000;
    let application = Application::build(config).await.expect("the edge builds");
    let address = application.local_addr();
    assert_ne!(address.port(), 0, "port 0 was resolved to a real port");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let healthz = format!("http://{address}/healthz");
    let client = reqwest::Client::new();
    let response = client.get(&healthz).send().await.expect("the edge answers");
    assert_eq!(response.status().as_u16(), 200);

    stop.send(()).expect("the server is running");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the edge stops promptly")
        .expect("the server task did not panic")
        .expect("the server stopped cleanly");

    // A fresh client: the old one may hold a pooled connection.
    let after = reqwest::Client::new().get(&healthz).send().await;
    assert!(after.is_err(), "nothing listens after shutdown");
}
