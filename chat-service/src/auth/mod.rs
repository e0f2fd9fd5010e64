//! Authentication of every `ChatService` call: a tonic interceptor reads the
//! `authorization: Bearer <JWT>` metadata, verifies the token, and puts the
//! caller's [`Identity`] into the request extensions for the handlers.

mod jwt;
mod token_cache;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

pub use jwt::{AuthError, JwtConfigError, JwtSettings, JwtVerifier, KeySource, MAX_LEEWAY_SECS};

use crate::domain::UserId;
use crate::error::ChatError;

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
    pub fn from_request<T>(request: &Request<T>) -> Result<Self, ChatError> {
        request
            .extensions()
            .get::<Identity>()
            .cloned()
            .ok_or(ChatError::Unauthenticated(AuthError::MissingCredentials))
    }
}

/// The interceptor in front of `ChatService`.
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

    fn authenticate(&self, metadata: &MetadataMap) -> Result<Identity, AuthError> {
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

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match self.authenticate(request.metadata()) {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
                Ok(request)
            }
            Err(error) => {
                tracing::info!(reason = %error, "rejected unauthenticated call");
                Err(ChatError::Unauthenticated(error).into())
            }
        }
    }
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
