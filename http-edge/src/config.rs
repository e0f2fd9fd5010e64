//! Runtime configuration: one clap struct, flags with environment fallbacks.

use std::{net::SocketAddr, time::Duration};

use http::Uri;

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
}

impl Config {
    /// The deadline of each gRPC call.
    pub fn grpc_timeout(&self) -> Duration {
        Duration::from_millis(self.grpc_timeout_ms)
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
