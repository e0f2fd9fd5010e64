//! Configuration: one clap struct; every flag has an environment fallback
//! (`CHAT_*`), and the doc comments are the `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use jsonwebtoken::Algorithm;

use crate::auth::{JwtSettings, KeySource, MAX_LEEWAY_SECS, Secret};

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

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// Defaults with the given secret, for tests and embedding.
    pub fn with_secret(secret: &str) -> Self {
        let mut config = Self::parse_from(["chat-service"]);
        config.jwt_secret = Some(Secret::new(secret));
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
}
