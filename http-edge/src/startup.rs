//! [`Application`]: the one seam that `main` and the integration tests share.

use std::{future::Future, io, net::SocketAddr};

use allmine_observability::metrics::MetricsEndpoint;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    event_stream::Shutdown,
    fanout::Fanout,
    grpc::ChatClient,
    metrics, routes,
    server::{self, ServerSettings},
};

/// A bound, not yet serving, edge.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    shutdown: Shutdown,
    settings: ServerSettings,
    /// `/metrics`, unless turned off.
    metrics: Option<MetricsEndpoint>,
}

impl Application {
    /// Binds the HTTP listener (port 0 picks a free one) and prepares the
    /// chat-service client.
    ///
    /// The client connects lazily, so the edge starts, and answers 503, while
    /// chat-service is not up yet.
    pub async fn build(config: Config) -> io::Result<Self> {
        let chat = ChatClient::connect_lazy(
            config.chat_service_url.clone(),
            config.grpc_timeout(),
            &config.limits,
        );
        let listener = TcpListener::bind(config.http_addr).await?;
        let local_addr = listener.local_addr()?;
        tracing::info!(
            %local_addr,
            chat_service_url = %config.chat_service_url,
            grpc_timeout_ms = config.grpc_timeout_ms,
            limits = ?config.limits,
            "http-edge bound"
        );
        let shutdown = Shutdown::new();
        let metrics = match config.metrics_addr.addr() {
            Some(addr) => bind_metrics(addr).await,
            None => None,
        };
        // One upstream subscription per stream for every SSE client here
        // (crate::fanout), when the edge has a token of its own for it.
        let fanout = Fanout::new(
            chat.clone(),
            &config.fanout,
            config.limits.event_buffer,
            shutdown.clone(),
        );
        if fanout.is_none() {
            tracing::warn!(
                "EDGE_UPSTREAM_TOKEN is not set: every SSE client is a subscription of its own on chat-service"
            );
        }
        let router = routes::router(
            chat,
            shutdown.clone(),
            &config.limits,
            crate::cors::layer(&config.cors_allowed_origins),
            fanout,
        );
        Ok(Self {
            metrics,
            listener,
            local_addr,
            router,
            shutdown,
            settings: ServerSettings::new(&config.limits, config.grpc_timeout()),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` is served on, unless turned off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::local_addr)
    }

    /// Serves until `shutdown` resolves, then stops accepting connections and
    /// lets in-flight requests finish. Open event streams end at once (their
    /// clients reconnect elsewhere): they would otherwise never finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let streams = self.shutdown;
        let metrics_stopping = CancellationToken::new();
        if let Some(endpoint) = self.metrics {
            tokio::spawn(endpoint.serve(&metrics::METRICS, metrics_stopping.clone()));
        }
        let shutdown = async move {
            shutdown.await;
            streams.trigger();
        };
        server::serve(self.listener, self.router, self.settings, shutdown).await;
        metrics_stopping.cancel();
        tracing::info!("http-edge stopped");
        Ok(())
    }
}

/// The `/metrics` listener. An edge that cannot bind it still serves
/// clients (Prometheus reports the target down): the failure is logged, not
/// fatal; so several edges with the default address can run on one machine
/// (tests, benchmarks).
async fn bind_metrics(addr: SocketAddr) -> Option<MetricsEndpoint> {
    match MetricsEndpoint::bind(addr).await {
        Ok(endpoint) => Some(endpoint),
        Err(error) => {
            tracing::error!(%addr, %error, "cannot serve metrics: running without them");
            None
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM (what container runtimes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received, draining in-flight requests");
}
