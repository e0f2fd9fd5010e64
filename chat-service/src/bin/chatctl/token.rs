//! `chatctl token`: an HS256 development token, signed with the secret
//! chat-service verifies with (`CHAT_JWT_SECRET`; `scripts/dev.sh` keeps a
//! generated one in `.cache/dev-jwt-secret`).
//!
//! Never for a deployed service: production tokens come from the Allmine auth
//! service. The tests' token builder (`allmine-test-support`) stays where it
//! is: it exists to mint *invalid* tokens of every kind and other algorithms,
//! which an operator tool must not need; this one only mints valid tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// The shortest secret chat-service accepts for HS256.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The HS256 secret chat-service verifies with (at least 32 bytes).
    #[arg(long, env = "CHAT_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// The user id, `sub` (24 hex digits); default: a fresh random one.
    #[arg(long)]
    sub: Option<String>,
    #[arg(long, default_value = "johndoe")]
    username: String,
    #[arg(long, default_value = "John")]
    name: String,
    #[arg(long, default_value = "Doe")]
    surname: String,
    /// Roles, comma separated (`service` for the admin service).
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// `iss`, when chat-service checks one (CHAT_JWT_ISSUER).
    #[arg(long)]
    issuer: Option<String>,
    /// `aud`, when chat-service checks one (CHAT_JWT_AUDIENCE).
    #[arg(long)]
    audience: Option<String>,
    /// Lifetime in seconds; negative mints a token that has already
    /// expired (to see how clients are told).
    #[arg(long, default_value_t = 24 * 3600, allow_negative_numbers = true)]
    ttl: i64,
}

/// The claims chat-service reads (see `auth::jwt`), plus `iat`.
#[derive(Debug, Serialize)]
struct DevClaims {
    sub: String,
    iat: u64,
    exp: u64,
    username: String,
    name: String,
    surname: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// Prints the token.
pub fn run(args: TokenArgs) -> crate::Outcome {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    println!("{}", mint(args, now)?);
    Ok(())
}

fn mint(args: TokenArgs, now: u64) -> Result<String, Box<dyn std::error::Error>> {
    if args.secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the secret must be at least {MIN_SECRET_BYTES} bytes, as chat-service requires"
        )
        .into());
    }
    let claims = DevClaims {
        sub: args.sub.unwrap_or_else(random_object_id),
        iat: now,
        exp: now.saturating_add_signed(args.ttl),
        username: args.username,
        name: args.name,
        surname: args.surname,
        roles: args
            .roles
            .into_iter()
            .filter(|role| !role.is_empty())
            .collect(),
        iss: args.issuer,
        aud: args.audience,
    };
    let key = EncodingKey::from_secret(args.secret.as_bytes());
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &key,
    )?)
}

/// 24 random lowercase hex digits, the shape of an Allmine user id.
fn random_object_id() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use chat_service::auth::{JwtSettings, JwtVerifier, KeySource};
    use chat_service::secret::Secret;
    use clap::Parser;
    use jsonwebtoken::Algorithm;

    use super::{TokenArgs, mint};

    const SECRET: &str = "a-development-secret-of-32-bytes-or-more";

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: TokenArgs,
    }

    fn args(extra: &[&str]) -> TokenArgs {
        let mut argv = vec!["token", "--secret", SECRET];
        argv.extend_from_slice(extra);
        Wrapper::parse_from(argv).args
    }

    fn verifier(issuer: Option<&str>, audience: Option<&str>) -> JwtVerifier {
        JwtVerifier::new(&JwtSettings {
            algorithm: Algorithm::HS256,
            key: KeySource::HmacSecret(Secret::new(SECRET)),
            issuer: issuer.map(str::to_owned),
            audience: audience.map(str::to_owned),
            leeway_secs: 0,
        })
        .expect("valid settings")
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn chat_service_accepts_the_token_and_reads_every_claim() {
        let token = mint(
            args(&[
                "--sub",
                "64d15f9e2e6c8f4d5a123456",
                "--username",
                "streamer",
                "--roles",
                "service,moderator",
            ]),
            now(),
        )
        .expect("a token");
        let identity = verifier(None, None).verify(&token).expect("accepted");
        assert_eq!(identity.user_id.to_string(), "64d15f9e2e6c8f4d5a123456");
        assert_eq!(identity.username.as_deref(), Some("streamer"));
        assert_eq!(identity.name.as_deref(), Some("John"));
        assert_eq!(identity.surname.as_deref(), Some("Doe"));
        assert_eq!(identity.roles, ["service", "moderator"]);
    }

    #[test]
    fn a_fresh_user_id_each_time_and_issuer_and_audience_when_asked() {
        let verifier = verifier(Some("allmine-auth"), Some("allmine-chat"));
        let extra = ["--issuer", "allmine-auth", "--audience", "allmine-chat"];
        let first = verifier
            .verify(&mint(args(&extra), now()).expect("a token"))
            .expect("accepted");
        let second = verifier
            .verify(&mint(args(&extra), now()).expect("a token"))
            .expect("accepted");
        assert_ne!(first.user_id, second.user_id);
        // Without them, a verifier that checks them refuses the token.
        let bare = mint(args(&[]), now()).expect("a token");
        assert!(verifier.verify(&bare).is_err());
    }

    #[test]
    fn an_expired_token_and_a_short_secret_are_refused() {
        let old = mint(args(&["--ttl", "60"]), now() - 3600).expect("a token");
        assert!(verifier(None, None).verify(&old).is_err());
        // A negative lifetime: expired from the start (the web tests' case).
        let expired = mint(args(&["--ttl", "-3600"]), now()).expect("a token");
        assert!(verifier(None, None).verify(&expired).is_err());
        let short = Wrapper::parse_from(["token", "--secret", "too-short"]).args;
        assert!(mint(short, now()).is_err());
    }
}
