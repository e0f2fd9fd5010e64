//! JWT verification. The algorithm and key come from configuration and are
//! pinned: a token's own `alg` header is checked against them, never trusted,
//! so `alg: none` and HS/RS key confusion are rejected.

use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::Identity;
use super::token_cache::{self, TokenCache};
use crate::domain::UserId;
use crate::secret::Secret;

/// The largest clock skew tolerated on `exp` and `nbf`.
pub const MAX_LEEWAY_SECS: u64 = 60;

/// Where the verification key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// An HS256 shared secret.
    HmacSecret(Secret),
    /// A PEM public key file for RS256 or ES256.
    PublicKeyPem(PathBuf),
}

/// Everything needed to verify tokens.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub algorithm: Algorithm,
    pub key: KeySource,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_secs: u64,
}

/// Why the JWT settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    #[error("algorithm {0:?} is not supported (use HS256, RS256 or ES256)")]
    UnsupportedAlgorithm(Algorithm),
    #[error("algorithm {algorithm:?} needs {needs}")]
    KeyMismatch {
        algorithm: Algorithm,
        needs: &'static str,
    },
    #[error("cannot read public key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid public key in {path}: {source}")]
    InvalidKey {
        path: PathBuf,
        source: jsonwebtoken::errors::Error,
    },
    #[error("an HS256 secret must be at least 32 bytes")]
    WeakSecret,
    #[error("leeway must be at most {MAX_LEEWAY_SECS} seconds")]
    LeewayTooLarge,
}

/// Why a presented token is not accepted. The messages are precise so that a
/// client can fix its request, and never include the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing authorization metadata: expected 'Bearer <token>'")]
    MissingCredentials,
    #[error("authorization must be 'Bearer <token>'")]
    MalformedCredentials,
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    #[error("token algorithm is not accepted (expected {expected})")]
    WrongAlgorithm { expected: String },
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token lacks the required claim '{0}'")]
    MissingClaim(String),
    #[error("token claim 'sub' must be a 24-hex-digit user id")]
    InvalidSubject,
}

/// The claims chat-service reads. Unknown claims are ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    /// Checked by the library (required); read here for the cache.
    #[serde(default)]
    exp: Option<f64>,
    // Optional here so that a missing `sub` is reported as such rather than
    // as undecodable claims.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    surname: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Verifies tokens against the configured key and rules.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    algorithm: Algorithm,
    verified: TokenCache,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("JwtVerifier")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    pub fn new(settings: &JwtSettings) -> Result<Self, JwtConfigError> {
        if settings.leeway_secs > MAX_LEEWAY_SECS {
            return Err(JwtConfigError::LeewayTooLarge);
        }
        let key = decoding_key(settings)?;

        let mut validation = Validation::new(settings.algorithm);
        // A configured issuer or audience is required, not merely checked
        // when present.
        let mut required = vec!["exp", "sub"];
        if settings.issuer.is_some() {
            required.push("iss");
        }
        if settings.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_secs;
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
        }
        // Without a configured audience a token's `aud` is not checked (the
        // library would otherwise reject every token that carries one).
        match &settings.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }

        Ok(Self {
            key,
            validation,
            algorithm: settings.algorithm,
            verified: TokenCache::new(token_cache::DEFAULT_CAPACITY),
        })
    }

    /// Checks `token` and returns who it speaks for. A token verified before
    /// is only checked against the clock (see [`TokenCache`]).
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(identity) = self.verified.get(token, now) {
            return Ok(identity);
        }
        let (identity, exp) = self.verify_signed(token)?;
        // The library accepts a token until `exp + leeway` (inclusive);
        // the cache stops one second earlier rather than later.
        let valid_until = exp.saturating_add(self.validation.leeway);
        self.verified.put(token, identity.clone(), valid_until, now);
        Ok(identity)
    }

    /// The full verification: signature, algorithm, time, issuer, audience,
    /// subject. Returns the identity and the token's `exp`.
    fn verify_signed(&self, token: &str) -> Result<(Identity, u64), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| self.reason(error.kind()))?;
        let claims = data.claims;
        // `exp` is required and was validated as a number; a value that does
        // not fit makes the token uncacheable (0), not invalid.
        let exp = claims
            .exp
            .filter(|exp| exp.is_finite() && *exp >= 0.0)
            .map_or(0, |exp| exp as u64);
        let subject = claims
            .sub
            .ok_or_else(|| AuthError::MissingClaim("sub".into()))?;
        let user_id = UserId::parse(&subject).map_err(|_| AuthError::InvalidSubject)?;
        let identity = Identity {
            user_id,
            username: claims.username,
            name: claims.name,
            surname: claims.surname,
            roles: claims.roles,
        };
        Ok((identity, exp))
    }

    fn reason(&self, kind: &ErrorKind) -> AuthError {
        match kind {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm
            | ErrorKind::UnsupportedAlgorithm => AuthError::WrongAlgorithm {
                expected: format!("{:?}", self.algorithm),
            },
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
            ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => {
                AuthError::MalformedToken("claims are not valid JSON of the expected types")
            }
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                AuthError::MalformedToken("not base64url-encoded JSON")
            }
            _ => AuthError::MalformedToken("not a signed JWT"),
        }
    }
}

fn decoding_key(settings: &JwtSettings) -> Result<DecodingKey, JwtConfigError> {
    match (&settings.key, settings.algorithm) {
        (KeySource::HmacSecret(secret), Algorithm::HS256) => {
            // RFC 7518 §3.2: an HS256 key must be at least 256 bits.
            if secret.expose().len() < 32 {
                return Err(JwtConfigError::WeakSecret);
            }
            Ok(DecodingKey::from_secret(secret.expose().as_bytes()))
        }
        (KeySource::PublicKeyPem(path), algorithm @ (Algorithm::RS256 | Algorithm::ES256)) => {
            let pem = std::fs::read(path).map_err(|source| JwtConfigError::KeyFile {
                path: path.clone(),
                source,
            })?;
            let key = if algorithm == Algorithm::RS256 {
                DecodingKey::from_rsa_pem(&pem)
            } else {
                DecodingKey::from_ec_pem(&pem)
            };
            key.map_err(|source| JwtConfigError::InvalidKey {
                path: path.clone(),
                source,
            })
        }
        (KeySource::HmacSecret(_), algorithm @ (Algorithm::RS256 | Algorithm::ES256)) => {
            Err(JwtConfigError::KeyMismatch {
                algorithm,
                needs: "a public key file (CHAT_JWT_PUBLIC_KEY_FILE)",
            })
        }
        (KeySource::PublicKeyPem(_), Algorithm::HS256) => Err(JwtConfigError::KeyMismatch {
            algorithm: Algorithm::HS256,
            needs: "a shared secret (CHAT_JWT_SECRET)",
        }),
        (_, algorithm) => Err(JwtConfigError::UnsupportedAlgorithm(algorithm)),
    }
}
