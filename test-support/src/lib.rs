//! Helpers shared by the integration tests of the workspace's crates.
//!
//! The harness (one way to start servers for every suite, like
//! zero-to-production's `spawn_app`):
//! - [`service`] (feature `service`): a real chat-service in process,
//!   [`service::TestService`], on the embedded store or ScyllaDB, with typed
//!   gRPC helpers (send, history, subscribe, ban, moderators).
//! - [`edge`] (feature `edge`): a real http-edge in process,
//!   [`edge::TestEdge`], in front of any chat-service address (the real one
//!   or a scripted fake), with typed REST helpers.
//! - [`stack`] (both features): the two together, [`stack::TestApp`].
//! - [`grpc`]: channels, bearer metadata, the admin API ([`grpc::Admin`]).
//! - [`rest`] (feature `edge`): REST paths and the error-envelope checks.
//! - [`sse`] (feature `edge`): a strict reader of the edge's event stream.
//!
//! The features keep the edge's tests free of chat-service: the edge suite
//! enables `edge` only.
//!
//! Fixtures and tools:
//! - [`TokenBuilder`]: mints JWTs with any combination of valid and invalid
//!   claims, for HS256, RS256 and ES256 (with the test keys under `keys/`).
//! - [`random_object_id`]: fresh 24-hex ids, so tests never share a stream.
//! - [`backends`] (feature `service`): both storage backends as fixtures,
//!   and [`for_each_backend!`] to run a scenario once per backend.
//! - [`tmpfs`]: a small mounted filesystem to fill, for full-disk tests.
//! - [`service_process`]: the real chat-service binary as a child process,
//!   for `kill -9` and restart.
//! - [`cassandra`]: a private Cassandra node that fault tests stop and
//!   resume.
//! - [`cluster`]: a 3-node Cassandra cluster whose nodes the node-loss tests
//!   stop and resume.
//! - [`history`]: the history checker (every acknowledged message read
//!   exactly once, no refused one, …), pure and unit-tested.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "service")]
pub mod backends;
pub mod cassandra;
pub mod cluster;
#[cfg(feature = "edge")]
pub mod edge;
pub mod grpc;
pub mod history;
#[cfg(feature = "edge")]
pub mod rest;
#[cfg(feature = "service")]
pub mod service;
pub mod service_process;
#[cfg(feature = "edge")]
pub mod sse;
#[cfg(all(feature = "service", feature = "edge"))]
pub mod stack;
pub mod tmpfs;

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

/// The HS256 secret the test servers are configured with (32+ bytes).
pub const TEST_SECRET: &str = "test-secret-for-allmine-chat-0123456789";

/// Test key pairs (PEM).
pub const RSA_PRIVATE_PEM: &str = include_str!("../keys/rsa-private.pem");
pub const RSA_PUBLIC_PEM: &str = include_str!("../keys/rsa-public.pem");
pub const EC_PRIVATE_PEM: &str = include_str!("../keys/ec-private.pem");
pub const EC_PUBLIC_PEM: &str = include_str!("../keys/ec-public.pem");

/// Absolute path of a test key file, for configuration that wants a path.
pub fn key_path(file_name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("keys")
        .join(file_name)
}

/// An address nobody listens on right now (until a test binds it).
pub fn unused_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// A new random 24-lowercase-hex id.
pub fn random_object_id() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Builds a JWT. Starts valid (HS256 with [`TEST_SECRET`], `sub` a fresh id,
/// `exp` in an hour); each method changes one thing.
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    claims: Map<String, Value>,
    algorithm: Algorithm,
    key: SigningKey,
}

#[derive(Debug, Clone)]
enum SigningKey {
    Secret(Vec<u8>),
    RsaPem,
    EcPem,
}

impl Default for TokenBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenBuilder {
    pub fn new() -> Self {
        Self::for_user(&random_object_id())
    }

    pub fn for_user(user_id: &str) -> Self {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(user_id));
        claims.insert("exp".into(), json!(now_secs() + 3600));
        claims.insert("iat".into(), json!(now_secs()));
        Self {
            claims,
            algorithm: Algorithm::HS256,
            key: SigningKey::Secret(TEST_SECRET.as_bytes().to_vec()),
        }
    }

    /// Sets (or replaces) any claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.into(), value);
        self
    }

    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// A token of another Allmine service (role `service`), as the admin
    /// service requires.
    pub fn service() -> Self {
        Self::new().claim("roles", json!(["service"]))
    }

    pub fn username(self, username: &str) -> Self {
        self.claim("username", json!(username))
    }

    pub fn profile(self, username: &str, name: &str, surname: &str) -> Self {
        self.claim("username", json!(username))
            .claim("name", json!(name))
            .claim("surname", json!(surname))
    }

    /// `exp` relative to now, in seconds (negative: already expired).
    pub fn expires_in(self, seconds: i64) -> Self {
        self.claim("exp", json!(now_secs() + seconds))
    }

    /// `nbf` relative to now, in seconds.
    pub fn not_before_in(self, seconds: i64) -> Self {
        self.claim("nbf", json!(now_secs() + seconds))
    }

    pub fn signed_with_secret(mut self, secret: &[u8]) -> Self {
        self.algorithm = Algorithm::HS256;
        self.key = SigningKey::Secret(secret.to_vec());
        self
    }

    pub fn signed_rs256(mut self) -> Self {
        self.algorithm = Algorithm::RS256;
        self.key = SigningKey::RsaPem;
        self
    }

    pub fn signed_es256(mut self) -> Self {
        self.algorithm = Algorithm::ES256;
        self.key = SigningKey::EcPem;
        self
    }

    pub fn user_id(&self) -> String {
        self.claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    pub fn build(&self) -> String {
        jsonwebtoken::encode(
            &Header::new(self.algorithm),
            &self.claims,
            &self.encoding_key(),
        )
        .unwrap()
    }

    /// A token with this exact JOSE `header` (any members, for example
    /// `crit`), correctly signed with the builder's key and algorithm.
    pub fn build_with_header(&self, header: &Value) -> String {
        let header = base64url(serde_json::to_string(header).unwrap().as_bytes());
        let payload = base64url(serde_json::to_string(&self.claims).unwrap().as_bytes());
        let message = format!("{header}.{payload}");
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding_key(), self.algorithm)
                .unwrap();
        format!("{message}.{signature}")
    }

    fn encoding_key(&self) -> EncodingKey {
        match &self.key {
            SigningKey::Secret(secret) => EncodingKey::from_secret(secret),
            SigningKey::RsaPem => EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap(),
            SigningKey::EcPem => EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap(),
        }
    }

    /// An unsigned token with `alg: none` (which must always be refused).
    pub fn build_unsigned(&self) -> String {
        let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = base64url(serde_json::to_string(&self.claims).unwrap().as_bytes());
        format!("{header}.{payload}.")
    }
}

/// Unpadded base64url (RFC 4648 §5), enough for hand-made test tokens.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let n = match chunk.len() {
            3 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]),
            2 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8),
            _ => u32::from(chunk[0]) << 16,
        };
        let symbols = chunk.len() + 1;
        for index in 0..symbols {
            out.push(ALPHABET[((n >> (18 - 6 * index)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
