//! [`Application`]: builds the store and the gRPC server from a [`Config`],
//! binds (port 0 allowed), and runs until a shutdown future resolves. `main`
//! and the integration tests start the service through this same code.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use allmine_chat_proto::v1::chat_admin_service_server::ChatAdminServiceServer;
use allmine_chat_proto::v1::chat_edge_service_server::ChatEdgeServiceServer;
use allmine_chat_proto::{
    CHAT_ADMIN_SERVICE_NAME, CHAT_EDGE_SERVICE_NAME, CHAT_SERVICE_NAME, FILE_DESCRIPTOR_SET,
};
use futures::future::Either;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tonic_web::GrpcWebLayer;
use tower::Layer;

use crate::auth::{Authenticator, JwtConfigError, JwtVerifier};
use crate::config::{Config, ConfigError, StoreKind};
use crate::grpc::ChatServiceImpl;
use crate::grpc::admin::ChatAdminServiceImpl;
use crate::live::limits::SubscriptionCaps;
use crate::live::{Hub, LiveSettings};
use crate::metrics::{self, MetricsEndpoint, TimedStore};
use crate::rules::BurstSettings;
use crate::storage::embedded::EmbeddedStore;
use crate::storage::scylla::ScyllaStore;
use crate::storage::{SharedStore, StorageError};
use crate::transport::cors::AllowedOrigins;
use crate::transport::{
    self, CallMetrics, CallMetricsLayer, Deadline, DeadlineLayer, Drained, LoadShed, LoadShedLayer,
    LoadShedSettings, TransportSettings,
};

/// How often the store's health is checked for the gRPC health service.
const HEALTH_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid JWT configuration: {0}")]
    Jwt(#[from] JwtConfigError),
    #[error("cannot open the store: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A bound, ready-to-run chat-service.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// Set when ChatAdminService has an address of its own.
    admin_listener: Option<(TcpListener, SocketAddr)>,
    /// `/metrics`, unless turned off.
    metrics: Option<MetricsEndpoint>,
    store: SharedStore,
    authenticator: Authenticator,
    burst: BurstSettings,
    idempotency_window: Duration,
    live: LiveSettings,
    transport: TransportSettings,
    load_shed: LoadShedSettings,
    subscription_caps: SubscriptionCaps,
    shutdown_grace: Duration,
    cors: AllowedOrigins,
}

impl Application {
    /// Opens the configured store and binds the gRPC address.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let store = open_store(&config).await?;
        Self::build_with_store(config, store).await
    }

    /// As [`Application::build`], with a store the caller opened (tests share
    /// one store between service instances this way).
    pub async fn build_with_store(
        config: Config,
        store: SharedStore,
    ) -> Result<Self, StartupError> {
        let verifier = JwtVerifier::new(&config.jwt_settings()?)?;
        let (listener, local_addr) = bind(config.grpc_addr).await?;
        let admin_listener = match config.admin_grpc_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let metrics = match config.metrics_addr.addr() {
            Some(addr) => bind_metrics(addr).await,
            None => None,
        };
        let store_label = match config.store {
            StoreKind::Embedded => "embedded",
            StoreKind::Scylla => "scylla",
        };
        Ok(Self {
            listener,
            local_addr,
            admin_listener,
            metrics,
            store: Arc::new(TimedStore::new(store, store_label)),
            authenticator: Authenticator::new(verifier),
            burst: config.burst(),
            idempotency_window: config.idempotency_window(),
            live: config.live(),
            transport: config.transport(),
            load_shed: config.load_shed(),
            subscription_caps: config.subscription_caps(),
            shutdown_grace: config.shutdown_grace(),
            cors: config.cors_allowed_origins.clone(),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` is served on, unless turned off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsEndpoint::local_addr)
    }

    /// The admin service's own address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// Serves until `shutdown` resolves, then drains: health turns
    /// NOT_SERVING, new connections are refused, in-flight calls get up to the
    /// configured grace period to finish, and what is left is closed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // Each port's reflection lists the services that port serves.
        let main_services: &[&str] = if self.admin_listener.is_some() {
            &[CHAT_SERVICE_NAME, CHAT_EDGE_SERVICE_NAME]
        } else {
            &[
                CHAT_SERVICE_NAME,
                CHAT_EDGE_SERVICE_NAME,
                CHAT_ADMIN_SERVICE_NAME,
            ]
        };
        let (reflection_v1, reflection_v1alpha) = (
            reflection(main_services).build_v1()?,
            reflection(main_services).build_v1alpha()?,
        );
        // Cancelled when shutdown begins: ends live feeds and subscriptions,
        // so that streaming calls finish within the drain time.
        let stopping = CancellationToken::new();
        let hub = Hub::new(self.store.clone(), self.live, stopping.clone());
        hub.start_watermark_exchange().await?;
        let chat_impl = ChatServiceImpl::new(
            Arc::clone(&hub),
            self.burst,
            self.subscription_caps,
            self.idempotency_window,
        );
        // http-edge's per-client check (AuthorizeSubscription), on the same
        // handlers' state.
        let edge_service =
            ChatEdgeServiceServer::with_interceptor(chat_impl.clone(), self.authenticator.clone());
        let chat_service =
            crate::grpc::chat_server::chat_service(chat_impl, self.authenticator.clone());
        let admin_service = ChatAdminServiceServer::with_interceptor(
            ChatAdminServiceImpl::new(hub),
            self.authenticator,
        );

        if let Some(endpoint) = self.metrics {
            tokio::spawn(endpoint.serve(&metrics::METRICS, stopping.clone()));
        }
        let health_task = tokio::spawn(watch_store_health(
            self.store.clone(),
            health_reporter.clone(),
            stopping.clone(),
        ));
        let shutdown_signal = {
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down: draining in-flight calls");
                set_status(&health_reporter, ServingStatus::NotServing).await;
                stopping.cancel();
            }
        };
        tokio::spawn(shutdown_signal);

        // One in-flight budget for the instance, whichever port a call uses.
        let load_shed = LoadShedLayer::new(self.load_shed);
        let grace = self.shutdown_grace;
        tracing::info!(addr = %self.local_addr, "chat-service listening");
        let mut main_routes = RoutesBuilder::default();
        main_routes
            .add_service(health_service.clone())
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(chat_service)
            .add_service(edge_service);
        let admin_server = match self.admin_listener {
            None => {
                main_routes.add_service(admin_service);
                None
            }
            Some((listener, addr)) => {
                tracing::info!(%addr, "chat admin service listening on its own address");
                let mut admin_routes = RoutesBuilder::default();
                admin_routes
                    .add_service(health_service)
                    .add_service(reflection(&[CHAT_ADMIN_SERVICE_NAME]).build_v1()?)
                    .add_service(reflection(&[CHAT_ADMIN_SERVICE_NAME]).build_v1alpha()?)
                    .add_service(admin_service);
                // Internal callers only: HTTP/2, no gRPC-Web.
                let transport = TransportSettings {
                    http1: false,
                    ..self.transport
                };
                Some(transport::serve(
                    listener,
                    guarded(admin_routes, &load_shed),
                    transport,
                    stopping.clone(),
                    grace,
                ))
            }
        };
        // gRPC-Web outermost, so that it also translates the answers of the
        // deadline and load-shedding layers for browser clients; CORS (when
        // configured) around it, so that preflights never reach gRPC.
        let main_service = GrpcWebLayer::new().layer(guarded(main_routes, &load_shed));
        let main_server = match transport::cors::layer(&self.cors) {
            Some(cors) => Either::Left(transport::serve(
                self.listener,
                cors.layer(main_service),
                self.transport,
                stopping.clone(),
                grace,
            )),
            None => Either::Right(transport::serve(
                self.listener,
                main_service,
                self.transport,
                stopping.clone(),
                grace,
            )),
        };
        let drained = match admin_server {
            Some(admin_server) => {
                let (main, admin) = tokio::join!(main_server, admin_server);
                main.max(admin)
            }
            None => main_server.await,
        };
        if drained == Drained::GraceExceeded {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "drain time exceeded; closed the remaining calls"
            );
        }
        tracing::info!(shed_calls = load_shed.shed_calls(), "chat-service stopped");
        health_task.abort();
        Ok(())
    }
}

/// `routes` behind the caller's deadline and the instance's load shedding,
/// measured and traced outside both, so that their refusals count too.
fn guarded(
    routes: RoutesBuilder,
    load_shed: &LoadShedLayer,
) -> CallMetrics<Deadline<LoadShed<Routes>>> {
    CallMetricsLayer.layer(DeadlineLayer.layer(load_shed.layer(routes.routes().prepare())))
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    Ok((listener, local_addr))
}

/// The `/metrics` listener. A service that cannot bind it still serves
/// chat (metrics matter less than messages; Prometheus reports the target
/// down): the failure is logged, not fatal. It also lets several instances
/// with the default address run on one machine (tests, benchmarks).
async fn bind_metrics(addr: SocketAddr) -> Option<MetricsEndpoint> {
    match MetricsEndpoint::bind(addr).await {
        Ok(endpoint) => Some(endpoint),
        Err(error) => {
            tracing::error!(%addr, %error, "cannot serve metrics: running without them");
            None
        }
    }
}

async fn open_store(config: &Config) -> Result<SharedStore, StartupError> {
    match config.store {
        StoreKind::Embedded => {
            let data_dir = config.data_dir.clone();
            // Opening replays the journal: blocking file work.
            let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&data_dir))
                .await
                .map_err(|error| StorageError::Internal(error.to_string()))??;
            Ok(Arc::new(store))
        }
        StoreKind::Scylla => Ok(Arc::new(
            ScyllaStore::connect(&config.scylla.settings()).await?,
        )),
    }
}

/// Keeps the health service in step with the store, so that load balancers
/// and http-edge's `/readyz` stop sending work while the database is away.
async fn watch_store_health(
    store: SharedStore,
    reporter: HealthReporter,
    stopping: CancellationToken,
) {
    let mut last = None;
    loop {
        let health = store.check_health().await;
        metrics::store_up(health.is_ok());
        let status = match health {
            Ok(()) => ServingStatus::Serving,
            Err(error) => {
                if last != Some(ServingStatus::NotServing) {
                    tracing::warn!(%error, "store unhealthy: reporting NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        if stopping.is_cancelled() {
            return;
        }
        if last != Some(status) {
            set_status(&reporter, status).await;
            last = Some(status);
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(HEALTH_POLL) => {}
        }
    }
}

/// Sets the overall ("") and the chat service's status together.
async fn set_status(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(CHAT_SERVICE_NAME, status).await;
    reporter
        .set_service_status(CHAT_ADMIN_SERVICE_NAME, status)
        .await;
}

/// Server reflection (what grpcurl reads) listing `services` and health,
/// with every descriptor registered so that any symbol can be described.
fn reflection(services: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(tonic_health::pb::health_server::SERVICE_NAME);
    services
        .iter()
        .fold(builder, |builder, name| builder.with_service_name(*name))
}
