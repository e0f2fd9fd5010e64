//! Authentication of every call: [`Authenticator`] reads the
//! `authorization: Bearer <JWT>` metadata and verifies the token into the
//! caller's [`Identity`]. Failures are [`AuthError`]s; the gRPC layer
//! (`grpc::interceptor`) puts the identity into the request extensions for
//! the handlers and maps a failure to `UNAUTHENTICATED`.

mod jwt;
mod token_cache;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::Request;
use tonic::metadata::MetadataMap;

pub use jwt::{AuthError, JwtConfigError, JwtSettings, JwtVerifier, KeySource, MAX_LEEWAY_SECS};

use crate::domain::UserId;

/// Who is calling, as their verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    pub username: Option<String>,
    pub name: Option<String>,
    pub surname: Option<String>,
    /// Role names (for example `service` for other Allmine services).
    pub roles: Vec<String>,
    /// When the token stops being accepted: its `exp` plus the configured
    /// leeway. A call that outlives its token (a live subscription) ends
    /// then.
    pub valid_until: DateTime<Utc>,
}

impl Identity {
    /// The identity the interceptor attached to `request`.
    pub fn from_request<T>(request: &Request<T>) -> Result<Self, AuthError> {
        request
            .extensions()
            .get::<Identity>()
            .cloned()
            .ok_or(AuthError::MissingCredentials)
    }
}

/// Verifies the credentials of a call (the gRPC layer's interceptor in front
/// of both services).
#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<JwtVerifier>,
}

impl Authenticator {
    pub fn new(verifier: JwtVerifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
        }
    }

    /// The caller whose `authorization` metadata this is.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Identity, AuthError> {
        let header = metadata
            .get("authorization")
            .ok_or(AuthError::MissingCredentials)?
            .to_str()
            .map_err(|_| AuthError::MalformedCredentials)?;
        let token = bearer_token(header).ok_or(AuthError::MalformedCredentials)?;
        self.verifier.verify(token)
    }
}

/// The token in `Bearer <token>` (scheme case-insensitive, RFC 7235).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn a_bearer_header_yields_its_token() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_rejected() {
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("abc.def.ghi"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
    }
}
