//! Configuration: one clap struct; every flag has an environment fallback
//! (`CHAT_*`), and the doc comments are the `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use jsonwebtoken::Algorithm;

use crate::auth::{JwtSettings, KeySource, MAX_LEEWAY_SECS};
use crate::live::LiveSettings;
use crate::live::limits::SubscriptionCaps;
use crate::rules::BurstSettings;
use crate::secret::Secret;
use crate::storage::scylla::{
    ConsistencyLevel, DEFAULT_BUCKET, MAX_BUCKET, Replication, ScyllaSettings,
};
use crate::transport::cors::AllowedOrigins;
use crate::transport::{LoadShedSettings, TransportSettings};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "chat-service",
    version,
    about = "Allmine live chat gRPC service"
)]
pub struct Config {
    /// Address the gRPC server listens on (port 0 picks a free port).
    #[arg(long, env = "CHAT_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// Which store keeps the messages.
    #[arg(long, env = "CHAT_STORE", value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,

    /// Directory of the embedded store.
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// HS256 shared secret for verifying JWTs (at least 32 bytes).
    #[arg(long, env = "CHAT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// PEM public key file for verifying RS256 or ES256 JWTs.
    #[arg(long, env = "CHAT_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// The one JWT algorithm accepted. Defaults to HS256 with a secret; must be
    /// given (RS256 or ES256) with a public key file.
    #[arg(long, env = "CHAT_JWT_ALGORITHM", value_enum)]
    pub jwt_algorithm: Option<JwtAlgorithm>,

    /// Required `iss` claim, when set.
    #[arg(long, env = "CHAT_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim, when set.
    #[arg(long, env = "CHAT_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Clock skew tolerated on `exp` and `nbf`, in seconds (at most 60).
    #[arg(long, env = "CHAT_JWT_LEEWAY_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=MAX_LEEWAY_SECS))]
    pub jwt_leeway_secs: u64,

    /// How long shutdown waits for in-flight requests, in seconds.
    #[arg(long, env = "CHAT_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Serve ChatAdminService only on this separate (internal) address.
    /// Unset: it shares CHAT_GRPC_ADDR with ChatService.
    #[arg(long, env = "CHAT_ADMIN_GRPC_ADDR")]
    pub admin_grpc_addr: Option<SocketAddr>,

    /// Burst limit window, in seconds.
    #[arg(long, env = "CHAT_BURST_WINDOW_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub burst_window_secs: u64,

    /// Messages a viewer may send per burst window in one stream.
    #[arg(long, env = "CHAT_BURST_VIEWER_LIMIT", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub burst_viewer_limit: u32,

    /// Messages the owner or a moderator may send per burst window.
    #[arg(long, env = "CHAT_BURST_PRIVILEGED_LIMIT", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub burst_privileged_limit: u32,

    /// An extra wait before live delivery, in ms, on top of the watermarks
    /// instances exchange through ScyllaDB (docs/live.md). Default 0; set
    /// 1000 while instances older than the exchange share the database.
    #[arg(long, env = "CHAT_LIVE_SETTLE_MS")]
    pub live_settle_ms: Option<u64>,

    /// How often a live feed reads the store for other instances' messages, in ms.
    #[arg(long, env = "CHAT_LIVE_POLL_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub live_poll_ms: u64,

    /// Events buffered per stream for subscribers that fall behind; a
    /// subscriber further behind gets a gap event.
    #[arg(long, env = "CHAT_LIVE_BUFFER", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(16..=65_536))]
    pub live_buffer: u64,

    /// Subscribers of a stream a live event wakes at once; the stream's feed
    /// yields to other work (sends) between such batches, so that a large
    /// audience's fan-out never holds an acknowledgment back for long.
    #[arg(long, env = "CHAT_LIVE_FANOUT_BATCH", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub live_fanout_batch: u64,

    /// Connections open at once per listening address; a new connection
    /// over the cap is closed at once.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// HTTP/2 streams (calls) open at once per connection; clients queue
    /// beyond it.
    #[arg(long, env = "CHAT_MAX_CONCURRENT_STREAMS", default_value_t = 2_500,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrent_streams: u32,

    /// Unary calls in progress at once on this instance; up to
    /// CHAT_MAX_QUEUED more wait up to CHAT_QUEUE_TIMEOUT_MS, then get
    /// UNAVAILABLE (retry in 1 s).
    #[arg(long, env = "CHAT_MAX_IN_FLIGHT", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: u32,

    /// How long a unary call may wait for room under CHAT_MAX_IN_FLIGHT
    /// before it is shed, in ms (0: never wait).
    #[arg(long, env = "CHAT_QUEUE_TIMEOUT_MS", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub queue_timeout_ms: u64,

    /// Unary calls that may wait for room under CHAT_MAX_IN_FLIGHT; past
    /// that a call is shed at once, before its request is even read.
    #[arg(long, env = "CHAT_MAX_QUEUED", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_queued: u32,

    /// Live subscriptions open at once per connection (http-edge carries
    /// many clients on one connection).
    #[arg(long, env = "CHAT_MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 2_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_subscriptions_per_connection: u32,

    /// Live subscriptions open at once per user (the token's `sub`).
    #[arg(long, env = "CHAT_MAX_SUBSCRIPTIONS_PER_USER", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_subscriptions_per_user: u32,

    /// How long an idempotency key holds its message, in seconds: a retry
    /// with the same key within this window returns the original message.
    /// 24 h covers any client's retry schedule; at most 7 days, since every
    /// keyed send keeps a copy of its message this long.
    #[arg(long, env = "CHAT_IDEMPOTENCY_WINDOW_SECS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub idempotency_window_secs: u64,

    /// Web origins whose pages may call the gRPC-Web endpoint (CORS):
    /// comma-separated `scheme://host[:port]`, or `*` for any. Empty: none
    /// (same-origin pages only).
    #[arg(long, env = "CHAT_CORS_ALLOWED_ORIGINS", default_value = "",
          value_parser = AllowedOrigins::parse)]
    pub cors_allowed_origins: AllowedOrigins,
    /// Where Prometheus scrapes `GET /metrics` (docs/operations.md), apart
    /// from the gRPC port; loopback by default. Empty or `off`: no metrics
    /// listener. Port 0 picks a free port.
    #[arg(long, env = "CHAT_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: crate::metrics::MetricsAddr,

    #[command(flatten)]
    pub scylla: ScyllaConfig,

    /// Print the CQL schema for the configured keyspace and replication, then exit.
    #[arg(long)]
    pub print_schema: bool,
}

/// The ScyllaDB store (`CHAT_STORE=scylla`).
#[derive(Debug, Clone, clap::Args)]
pub struct ScyllaConfig {
    /// Contact points, comma-separated `host:port`.
    #[arg(
        long = "scylla-nodes",
        env = "CHAT_SCYLLA_NODES",
        default_value = "127.0.0.1:9042",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,

    /// Keyspace of the chat tables (created if missing).
    #[arg(
        long = "scylla-keyspace",
        env = "CHAT_SCYLLA_KEYSPACE",
        default_value = "allmine_chat"
    )]
    pub keyspace: String,

    /// Keyspace replication: `simple:1` for a single local node, or
    /// `dc1:3,dc2:3` (NetworkTopologyStrategy) for production.
    #[arg(long = "scylla-replication", env = "CHAT_SCYLLA_REPLICATION", default_value = "simple:1",
          value_parser = Replication::parse)]
    pub replication: Replication,

    /// Consistency of every read and write.
    #[arg(long = "scylla-consistency", env = "CHAT_SCYLLA_CONSISTENCY", value_enum,
          default_value_t = ConsistencyLevel::LocalQuorum)]
    pub consistency: ConsistencyLevel,

    /// Per-statement timeout in milliseconds; keep it below the gRPC deadline
    /// of callers (http-edge uses 5000).
    #[arg(
        long = "scylla-request-timeout-ms",
        env = "CHAT_SCYLLA_REQUEST_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub request_timeout_ms: u64,

    /// How long start-up waits for the cluster, in seconds.
    #[arg(
        long = "scylla-connect-timeout-secs",
        env = "CHAT_SCYLLA_CONNECT_TIMEOUT_SECS",
        default_value_t = 60
    )]
    pub connect_timeout_secs: u64,

    /// User name, when the cluster requires authentication.
    #[arg(
        long = "scylla-username",
        env = "CHAT_SCYLLA_USERNAME",
        requires = "password"
    )]
    pub username: Option<String>,

    /// Password for `CHAT_SCYLLA_USERNAME`.
    #[arg(
        long = "scylla-password",
        env = "CHAT_SCYLLA_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<Secret>,

    /// Message retention in seconds (CQL TTL); unset keeps messages forever.
    #[arg(long = "scylla-ttl-secs", env = "CHAT_SCYLLA_TTL_SECS")]
    pub ttl_secs: Option<u64>,

    /// Width of a time bucket (one partition per stream and bucket), in
    /// seconds, at most 3600. Changing it later loses nothing: each bucket
    /// records its own window.
    #[arg(long = "scylla-bucket-secs", env = "CHAT_SCYLLA_BUCKET_SECS", default_value_t = DEFAULT_BUCKET.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=MAX_BUCKET.as_secs()))]
    pub bucket_secs: u64,
}

impl ScyllaConfig {
    pub fn settings(&self) -> ScyllaSettings {
        ScyllaSettings {
            nodes: self.nodes.clone(),
            keyspace: self.keyspace.clone(),
            replication: self.replication.clone(),
            consistency: self.consistency,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            credentials: self.username.clone().zip(self.password.clone()),
            ttl: self
                .ttl_secs
                .filter(|secs| *secs > 0)
                .map(Duration::from_secs),
            bucket_width: Duration::from_secs(self.bucket_secs),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// fjall on local disk (`CHAT_DATA_DIR`).
    Embedded,
    /// ScyllaDB or another CQL database.
    Scylla,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    #[value(name = "HS256")]
    Hs256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
}

/// The configuration is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no JWT key configured: set CHAT_JWT_SECRET (HS256) or CHAT_JWT_PUBLIC_KEY_FILE with CHAT_JWT_ALGORITHM"
    )]
    NoJwtKey,
    #[error("set either CHAT_JWT_SECRET or CHAT_JWT_PUBLIC_KEY_FILE, not both")]
    TwoJwtKeys,
    #[error("CHAT_JWT_PUBLIC_KEY_FILE needs CHAT_JWT_ALGORITHM (RS256 or ES256)")]
    AlgorithmRequired,
}

impl Config {
    pub fn jwt_settings(&self) -> Result<JwtSettings, ConfigError> {
        let (key, algorithm) = match (&self.jwt_secret, &self.jwt_public_key_file) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoJwtKeys),
            (None, None) => return Err(ConfigError::NoJwtKey),
            (Some(secret), None) => (
                KeySource::HmacSecret(secret.clone()),
                self.jwt_algorithm.unwrap_or(JwtAlgorithm::Hs256),
            ),
            (None, Some(path)) => (
                KeySource::PublicKeyPem(path.clone()),
                self.jwt_algorithm.ok_or(ConfigError::AlgorithmRequired)?,
            ),
        };
        Ok(JwtSettings {
            algorithm: match algorithm {
                JwtAlgorithm::Hs256 => Algorithm::HS256,
                JwtAlgorithm::Rs256 => Algorithm::RS256,
                JwtAlgorithm::Es256 => Algorithm::ES256,
            },
            key,
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway_secs: self.jwt_leeway_secs,
        })
    }

    pub fn burst(&self) -> BurstSettings {
        BurstSettings {
            window: Duration::from_secs(self.burst_window_secs),
            viewer_limit: self.burst_viewer_limit,
            privileged_limit: self.burst_privileged_limit,
        }
    }

    pub fn live(&self) -> LiveSettings {
        // Instances on one database exchange watermarks (live::watermarks):
        // no fixed settle is needed with either store.
        let default_settle_ms = 0;
        LiveSettings {
            settle: Duration::from_millis(self.live_settle_ms.unwrap_or(default_settle_ms)),
            poll_interval: Duration::from_millis(self.live_poll_ms),
            buffer: usize::try_from(self.live_buffer).unwrap_or(1_024),
            fanout_batch: usize::try_from(self.live_fanout_batch).unwrap_or(64),
        }
    }

    /// The main port's transport (HTTP/1.1 for gRPC-Web as well as HTTP/2).
    pub fn transport(&self) -> TransportSettings {
        TransportSettings {
            max_connections: self.max_connections,
            max_concurrent_streams: self.max_concurrent_streams,
            http1: true,
        }
    }

    pub fn load_shed(&self) -> LoadShedSettings {
        LoadShedSettings {
            max_in_flight: self.max_in_flight as usize,
            max_queued: self.max_queued as usize,
            queue_timeout: Duration::from_millis(self.queue_timeout_ms),
        }
    }

    pub fn subscription_caps(&self) -> SubscriptionCaps {
        SubscriptionCaps {
            per_connection: self.max_subscriptions_per_connection as usize,
            per_user: self.max_subscriptions_per_user as usize,
        }
    }

    pub fn idempotency_window(&self) -> Duration {
        Duration::from_secs(self.idempotency_window_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// Defaults with the given secret, for tests and embedding.
    pub fn with_secret(secret: &str) -> Self {
        let mut config = Self::parse_from(["chat-service"]);
        config.jwt_secret = Some(Secret::new(secret));
        // Instances started this way (tests) would share one fixed port.
        config.metrics_addr = crate::metrics::MetricsAddr::OFF;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let config = Config::with_secret("a-very-secret-value-that-is-long-enough");
        assert!(!format!("{config:?}").contains("a-very-secret"));
    }

    #[test]
    fn a_public_key_needs_an_explicit_algorithm() {
        let mut config = Config::parse_from(["chat-service"]);
        config.jwt_public_key_file = Some("key.pem".into());
        assert!(matches!(
            config.jwt_settings(),
            Err(ConfigError::AlgorithmRequired)
        ));
    }

    #[test]
    fn leeway_over_60_seconds_is_refused() {
        let parsed = Config::try_parse_from(["chat-service", "--jwt-leeway-secs", "61"]);
        assert!(parsed.is_err());
    }

    /// The environment names are the documented interface (README,
    /// docker-compose, the benchmark suite): a renamed field must not
    /// silently rename its variable.
    #[test]
    fn every_setting_reads_its_documented_environment_variable() {
        use clap::CommandFactory;
        let expected = [
            ("grpc_addr", "CHAT_GRPC_ADDR"),
            ("store", "CHAT_STORE"),
            ("data_dir", "CHAT_DATA_DIR"),
            ("jwt_secret", "CHAT_JWT_SECRET"),
            ("jwt_public_key_file", "CHAT_JWT_PUBLIC_KEY_FILE"),
            ("jwt_algorithm", "CHAT_JWT_ALGORITHM"),
            ("jwt_issuer", "CHAT_JWT_ISSUER"),
            ("jwt_audience", "CHAT_JWT_AUDIENCE"),
            ("jwt_leeway_secs", "CHAT_JWT_LEEWAY_SECS"),
            ("shutdown_grace_secs", "CHAT_SHUTDOWN_GRACE_SECS"),
            ("admin_grpc_addr", "CHAT_ADMIN_GRPC_ADDR"),
            ("burst_window_secs", "CHAT_BURST_WINDOW_SECS"),
            ("burst_viewer_limit", "CHAT_BURST_VIEWER_LIMIT"),
            ("burst_privileged_limit", "CHAT_BURST_PRIVILEGED_LIMIT"),
            ("live_settle_ms", "CHAT_LIVE_SETTLE_MS"),
            ("live_poll_ms", "CHAT_LIVE_POLL_MS"),
            ("live_buffer", "CHAT_LIVE_BUFFER"),
            ("live_fanout_batch", "CHAT_LIVE_FANOUT_BATCH"),
            ("max_connections", "CHAT_MAX_CONNECTIONS"),
            ("max_concurrent_streams", "CHAT_MAX_CONCURRENT_STREAMS"),
            ("max_in_flight", "CHAT_MAX_IN_FLIGHT"),
            ("queue_timeout_ms", "CHAT_QUEUE_TIMEOUT_MS"),
            ("max_queued", "CHAT_MAX_QUEUED"),
            (
                "max_subscriptions_per_connection",
                "CHAT_MAX_SUBSCRIPTIONS_PER_CONNECTION",
            ),
            (
                "max_subscriptions_per_user",
                "CHAT_MAX_SUBSCRIPTIONS_PER_USER",
            ),
            ("idempotency_window_secs", "CHAT_IDEMPOTENCY_WINDOW_SECS"),
            ("cors_allowed_origins", "CHAT_CORS_ALLOWED_ORIGINS"),
            ("metrics_addr", "CHAT_METRICS_ADDR"),
            ("nodes", "CHAT_SCYLLA_NODES"),
            ("keyspace", "CHAT_SCYLLA_KEYSPACE"),
            ("replication", "CHAT_SCYLLA_REPLICATION"),
            ("consistency", "CHAT_SCYLLA_CONSISTENCY"),
            ("request_timeout_ms", "CHAT_SCYLLA_REQUEST_TIMEOUT_MS"),
            ("connect_timeout_secs", "CHAT_SCYLLA_CONNECT_TIMEOUT_SECS"),
            ("username", "CHAT_SCYLLA_USERNAME"),
            ("password", "CHAT_SCYLLA_PASSWORD"),
            ("ttl_secs", "CHAT_SCYLLA_TTL_SECS"),
            ("bucket_secs", "CHAT_SCYLLA_BUCKET_SECS"),
        ];
        let command = Config::command();
        let actual: Vec<(String, String)> = command
            .get_arguments()
            .filter_map(|argument| {
                let env = argument.get_env()?.to_str()?.to_owned();
                Some((argument.get_id().to_string(), env))
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(id, env)| ((*id).to_owned(), (*env).to_owned()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn the_limits_have_their_documented_defaults() {
        let config = Config::with_secret("a-very-secret-value-that-is-long-enough");
        assert_eq!(config.max_connections, 10_000);
        assert_eq!(config.max_concurrent_streams, 2_500);
        assert_eq!(config.max_in_flight, 256);
        assert_eq!(config.queue_timeout_ms, 50);
        assert_eq!(config.max_subscriptions_per_connection, 2_000);
        assert_eq!(config.max_subscriptions_per_user, 16);
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        for (flag, value) in [
            ("--max-connections", "0"),
            ("--max-concurrent-streams", "0"),
            ("--max-in-flight", "0"),
            ("--queue-timeout-ms", "10001"),
            ("--max-subscriptions-per-connection", "0"),
            ("--max-subscriptions-per-user", "0"),
        ] {
            let parsed = Config::try_parse_from(["chat-service", flag, value]);
            assert!(parsed.is_err(), "{flag} {value} was accepted");
        }
    }
}
