//! JWT verification. The algorithm and key come from configuration and are
//! pinned: a token's own `alg` header is checked against them, never trusted,
//! so `alg: none` and HS/RS key confusion are rejected. A token is accepted
//! while the clock is before its `exp` plus the leeway, and never if its
//! header has a `crit` member.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

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
    #[error("token header has a 'crit' member: no critical extension is supported")]
    CriticalExtension,
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
    /// is only checked against the clock (see [`TokenCache`]); a refused
    /// token is never remembered.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(identity) = self.verified.get(token, now) {
            return Ok(identity);
        }
        // Before the signature: it is cheap, and a token refused for it
        // costs no signature check.
        refuse_critical_extensions(token)?;
        let (identity, valid_until) = self.verify_signed(token, now)?;
        self.verified.put(token, identity.clone(), valid_until, now);
        Ok(identity)
    }

    /// The full verification: signature, algorithm, time, issuer, audience,
    /// subject. Returns the identity and the unix second from which the
    /// token is refused.
    fn verify_signed(&self, token: &str, now: u64) -> Result<(Identity, u64), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| self.reason(error.kind()))?;
        let claims = data.claims;
        // `exp` is required and the library checked it is a non-negative
        // number; anything else here would be refused as expired below.
        let exp = claims
            .exp
            .filter(|exp| exp.is_finite() && *exp >= 0.0)
            .map_or(0, |exp| exp as u64);
        // The library accepts a token through the whole second `exp +
        // leeway`; RFC 7519 §4.1.4 refuses it *on or after* `exp`. So the
        // token is refused from `exp + leeway` on, the same moment the cache
        // forgets it and a live subscription ends: one instant everywhere.
        let valid_until = exp.saturating_add(self.validation.leeway);
        if now >= valid_until {
            return Err(AuthError::Expired);
        }
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
            valid_until: unix_time(valid_until),
        };
        Ok((identity, valid_until))
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

/// RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` header
/// lists an extension it does not understand, and this service understands
/// none. So any `crit` member is refused, whatever its value (`null` and `[]`
/// included, which the library would read as "no extension"). Reads only the
/// header segment; a header that is not base64url JSON is refused as the
/// library would refuse it.
fn refuse_critical_extensions(token: &str) -> Result<(), AuthError> {
    #[derive(Deserialize)]
    struct HeaderProbe {
        #[serde(default, deserialize_with = "present")]
        crit: bool,
    }
    fn present<'de, D: Deserializer<'de>>(value: D) -> Result<bool, D::Error> {
        IgnoredAny::deserialize(value).map(|_| true)
    }

    // `split` yields at least one piece. In a token the library accepts,
    // the header is the first of exactly three.
    let header = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::MalformedToken("not base64url-encoded JSON"))?;
    let probe: HeaderProbe = serde_json::from_slice(&json)
        .map_err(|_| AuthError::MalformedToken("header is not a JSON object"))?;
    if probe.crit {
        return Err(AuthError::CriticalExtension);
    }
    Ok(())
}

/// `seconds` since the epoch; beyond chrono's range, the end of time.
fn unix_time(seconds: u64) -> DateTime<Utc> {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
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

#[cfg(test)]
mod tests {
    use allmine_test_support::{TEST_SECRET, TokenBuilder, now_secs};
    use serde_json::json;

    use super::*;

    fn verifier(leeway_secs: u64) -> JwtVerifier {
        JwtVerifier::new(&JwtSettings {
            algorithm: Algorithm::HS256,
            key: KeySource::HmacSecret(Secret::new(TEST_SECRET)),
            issuer: None,
            audience: None,
            leeway_secs,
        })
        .expect("valid settings")
    }

    #[test]
    fn the_identity_carries_the_moment_the_token_stops_being_accepted() {
        let exp = now_secs() + 600;
        let token = TokenBuilder::new().claim("exp", json!(exp)).build();
        let identity = verifier(30).verify(&token).expect("valid token");
        assert_eq!(identity.valid_until.timestamp(), exp + 30);
    }

    #[test]
    fn a_token_is_refused_from_exp_plus_leeway_on() {
        // The library alone accepts a token through the second of its `exp`.
        let token = TokenBuilder::new().expires_in(0).build();
        assert_eq!(verifier(0).verify(&token), Err(AuthError::Expired));
        // Within the leeway it is still accepted.
        assert!(verifier(5).verify(&token).is_ok());
    }

    #[test]
    fn a_token_with_any_crit_header_is_refused_and_not_remembered() {
        let verifier = verifier(0);
        let claims = TokenBuilder::new();
        for crit in [
            json!(["exp"]),
            json!(["b64"]),
            json!([]),
            json!(null),
            json!("x"),
        ] {
            let header = json!({"alg": "HS256", "typ": "JWT", "crit": crit});
            let token = claims.build_with_header(&header);
            for attempt in 0..2 {
                assert_eq!(
                    verifier.verify(&token),
                    Err(AuthError::CriticalExtension),
                    "crit {crit}, attempt {attempt}"
                );
            }
        }
        // The same claims under a header without `crit` are fine: the
        // refusal is about the header alone.
        let plain = claims.build_with_header(&json!({"alg": "HS256", "typ": "JWT"}));
        assert!(verifier.verify(&plain).is_ok());
    }

    #[test]
    fn a_header_that_is_not_json_is_malformed() {
        let token = format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("not json"));
        assert!(matches!(
            verifier(0).verify(&token),
            Err(AuthError::MalformedToken(_))
        ));
    }

    #[test]
    fn times_beyond_the_calendar_are_the_end_of_time() {
        assert_eq!(unix_time(u64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(unix_time(0), DateTime::<Utc>::UNIX_EPOCH);
    }
}
