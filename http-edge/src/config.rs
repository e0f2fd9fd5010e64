//! Runtime configuration: one clap struct, flags with environment fallbacks.

use std::{net::SocketAddr, time::Duration};

use http::Uri;

use crate::cors::AllowedOrigins;

/// The edge's settings. Every flag can also be given through the environment
/// variable named beside it.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "http-edge",
    version,
    about = "The public REST face of Allmine live chat."
)]
pub struct Config {
    /// Address the HTTP server listens on, as IP:port (port 0 picks a free port).
    #[arg(long, env = "EDGE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// chat-service's gRPC endpoint (plaintext HTTP/2, `http://host:port`).
    #[arg(
        long,
        env = "EDGE_CHAT_SERVICE_URL",
        default_value = "http://127.0.0.1:50051",
        value_parser = parse_chat_service_url
    )]
    pub chat_service_url: Uri,

    /// Deadline of each gRPC call to chat-service, in milliseconds; also bounds
    /// connecting to it.
    #[arg(
        long,
        env = "EDGE_GRPC_TIMEOUT_MS",
        default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub grpc_timeout_ms: u64,

    /// Web origins that browser apps may call the edge from (CORS):
    /// comma-separated `scheme://host[:port]`, or `*` for any. Empty: none
    /// (same-origin pages only).
    #[arg(long, env = "EDGE_CORS_ALLOWED_ORIGINS", default_value = "",
          value_parser = AllowedOrigins::parse)]
    pub cors_allowed_origins: AllowedOrigins,
    /// Where Prometheus scrapes `GET /metrics` (docs/operations.md), apart
    /// from the public port; loopback by default. Empty or `off`: no metrics
    /// listener. Port 0 picks a free port.
    #[arg(long, env = "EDGE_METRICS_ADDR", default_value = "127.0.0.1:9465")]
    pub metrics_addr: allmine_observability::metrics::MetricsAddr,

    #[command(flatten)]
    pub limits: Limits,

    /// One upstream subscription per stream, shared by its SSE clients.
    #[command(flatten)]
    pub fanout: crate::fanout::settings::FanoutSettings,
}

/// What one client may hold, and how long the edge waits for it. Every bound
/// answers the client that hits it (README "Limits"); none slows another
/// client.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Seconds a client has to send a request's headers (HTTP/1.1); after
    /// that the connection is closed.
    #[arg(long, env = "EDGE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout_secs: u64,

    /// Seconds a client has to send a whole request body; a slower (or
    /// shorter than its Content-Length) body is answered 408.
    #[arg(long, env = "EDGE_BODY_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub body_read_timeout_secs: u64,

    /// Seconds a connection may go without moving a byte either way before
    /// it is closed: idle keep-alive connections, and clients that stopped
    /// reading their response (event streams send a keep-alive comment every
    /// 15 s, or every half of this timeout if that is sooner, so a live
    /// client is never idle this long).
    #[arg(long, env = "EDGE_IDLE_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub idle_timeout_secs: u64,

    /// Open client connections; over it a new connection gets a 503 and is
    /// closed. Lowered at start-up to fit the process's open-file limit.
    #[arg(long, env = "EDGE_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Open Server-Sent Event streams; over it: 503 with Retry-After.
    #[arg(long, env = "EDGE_MAX_EVENT_STREAMS", default_value_t = 8_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_event_streams: u64,

    /// Events queued for one event-stream client that is not reading; a
    /// client further behind gets a `gap` event with its resume cursor and
    /// its stream ends.
    #[arg(long, env = "EDGE_EVENT_BUFFER", default_value_t = 128,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub event_buffer: u64,

    /// Requests (other than event streams and health checks) handled at
    /// once; up to EDGE_MAX_QUEUED more wait up to EDGE_QUEUE_TIMEOUT_MS,
    /// then get 503. 64 is about what saturates one chat-service core
    /// (BENCHMARKS.md section 6); more in flight only adds latency.
    #[arg(long, env = "EDGE_MAX_IN_FLIGHT", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_in_flight: u64,

    /// Requests that may wait for one of the EDGE_MAX_IN_FLIGHT slots; past
    /// that the edge answers 503 at once, before any other work.
    #[arg(long, env = "EDGE_MAX_QUEUED", default_value_t = 128,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub max_queued: u64,

    /// How long a request may wait for a free slot, in ms, before the
    /// edge sheds it (503 with Retry-After).
    #[arg(long, env = "EDGE_QUEUE_TIMEOUT_MS", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub queue_timeout_ms: u64,

    /// HTTP/2 connections to chat-service that carry event streams (unary
    /// calls have one of their own), so that no stream can starve the
    /// calls of other clients.
    #[arg(long, env = "EDGE_UPSTREAM_STREAM_CONNECTIONS", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub upstream_stream_connections: u64,
}

impl Config {
    /// The deadline of each gRPC call.
    pub fn grpc_timeout(&self) -> Duration {
        Duration::from_millis(self.grpc_timeout_ms)
    }

    /// The defaults of every setting, listening on `http_addr` and calling
    /// `chat_service_url` (what tests and embedders start from).
    pub fn with_defaults(http_addr: SocketAddr, chat_service_url: Uri) -> Self {
        use clap::Parser as _;
        let mut config = Self::parse_from(["http-edge"]);
        config.http_addr = http_addr;
        config.chat_service_url = chat_service_url;
        // Instances started this way (tests) would share one fixed port.
        config.metrics_addr = allmine_observability::metrics::MetricsAddr::OFF;
        config
    }
}

impl Limits {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }
}

/// Accepts only `http://host[:port]`: the client is built without TLS, so an
/// `https` URL would fail on every call instead of once at startup.
fn parse_chat_service_url(raw: &str) -> Result<Uri, String> {
    let uri: Uri = raw.parse().map_err(|error| format!("not a URL: {error}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("the URL must start with http:// (TLS is not supported)".to_owned());
    }
    if uri.authority().is_none() {
        return Err("the URL must name a host".to_owned());
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_definition_is_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn each_setting_reads_its_documented_environment_variable() {
        let command = Config::command();
        let env_of = |id: &str| {
            command
                .get_arguments()
                .find(|argument| argument.get_id() == id)
                .and_then(|argument| argument.get_env())
                .and_then(|name| name.to_str())
                .map(str::to_owned)
        };
        assert_eq!(env_of("http_addr").as_deref(), Some("EDGE_HTTP_ADDR"));
        assert_eq!(
            env_of("chat_service_url").as_deref(),
            Some("EDGE_CHAT_SERVICE_URL")
        );
        assert_eq!(
            env_of("grpc_timeout_ms").as_deref(),
            Some("EDGE_GRPC_TIMEOUT_MS")
        );
    }

    #[test]
    fn flags_override_the_defaults() {
        let config = Config::try_parse_from([
            "http-edge",
            "--http-addr",
            "127.0.0.1:0",
            "--chat-service-url",
            "http://chat:7000",
            "--grpc-timeout-ms",
            "250",
        ])
        .expect("valid flags");
        assert_eq!(config.http_addr.port(), 0);
        assert_eq!(config.chat_service_url.to_string(), "http://chat:7000/");
        assert_eq!(config.grpc_timeout(), Duration::from_millis(250));
    }

    #[test]
    fn an_https_or_schemeless_url_is_rejected() {
        assert!(parse_chat_service_url("https://chat:7000").is_err());
        assert!(parse_chat_service_url("chat:7000").is_err());
        assert!(parse_chat_service_url("http://chat:7000").is_ok());
    }

    #[test]
    fn a_zero_timeout_is_rejected() {
        let parsed = Config::try_parse_from(["http-edge", "--grpc-timeout-ms", "0"]);
        assert!(parsed.is_err());
    }
}
