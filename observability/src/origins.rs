//! Which web origins may call a service from a browser (CORS): the one
//! reading of `EDGE_CORS_ALLOWED_ORIGINS` and `CHAT_CORS_ALLOWED_ORIGINS`,
//! so that the setting means the same on both services. Comma-separated
//! origins (`https://app.example,http://localhost:5173`), or `*` alone for
//! any; empty: no CORS headers at all, so browsers allow same-origin pages
//! only. Each service says which methods and headers its routes need
//! ([`AllowedOrigins::layer`]).
//!
//! No credentials mode: both take a bearer token, never cookies, so a page
//! needs none (and `*` could not be combined with it).

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer: short enough that a
/// change of the allowed origins reaches browsers soon.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Which web origins may call the service from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// No CORS headers: same-origin pages only (the default).
    SameOriginOnly,
    /// `*`, set explicitly.
    Any,
    /// Exactly these origins, normalized as browsers send them
    /// (`https://app.example:8443`).
    List(Vec<HeaderValue>),
}

impl AllowedOrigins {
    /// Parses the setting: empty, `*`, or comma-separated origins
    /// (`scheme://host[:port]`, nothing after it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(Self::SameOriginOnly);
        }
        if entries.contains(&"*") {
            return if entries.len() == 1 {
                Ok(Self::Any)
            } else {
                Err("`*` allows every origin and must be given alone".to_owned())
            };
        }
        entries
            .into_iter()
            .map(parse_origin)
            .collect::<Result<_, _>>()
            .map(Self::List)
    }

    /// The layer that grants these origins `methods`, the request headers
    /// `allowed` and reading the response headers `exposed`; `None` for
    /// same-origin only. A preflight succeeds on every path; every response,
    /// refusals included, carries the grant.
    pub fn layer(
        &self,
        methods: &[Method],
        allowed: &[HeaderName],
        exposed: &[HeaderName],
    ) -> Option<CorsLayer> {
        let allow_origin = match self {
            Self::SameOriginOnly => return None,
            Self::Any => AllowOrigin::any(),
            Self::List(origins) => AllowOrigin::list(origins.iter().cloned()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow_origin)
                .allow_methods(methods.to_vec())
                .allow_headers(allowed.to_vec())
                .expose_headers(exposed.to_vec())
                .max_age(PREFLIGHT_MAX_AGE),
        )
    }
}

/// One origin as a browser serializes it in `Origin`: lowercase scheme
/// (`http` or `https`) and host, the port only when given. A path, even a
/// lone `/`, is refused rather than trimmed: `https://app.example/` is a
/// common mistake that would otherwise never match anything.
fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let refused = |why: &str| format!("{text:?} is not an origin (scheme://host[:port]): {why}");
    let uri: Uri = text.parse().map_err(|_| refused("not a URL"))?;
    let scheme = uri
        .scheme_str()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| refused("no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(refused("the scheme must be http or https"));
    }
    let authority = uri.authority().ok_or_else(|| refused("no host"))?;
    if authority.as_str().contains('@') {
        return Err(refused("no user name or password"));
    }
    // `Uri` shows an absent path as "/": compare with the text instead.
    let after_scheme = text.get(scheme.len() + 3..).unwrap_or_default();
    if after_scheme != authority.as_str() {
        return Err(refused(
            "nothing may follow the host and port, not even '/'",
        ));
    }
    let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
    HeaderValue::from_str(&origin).map_err(|_| refused("not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_same_origin_only_and_star_alone_is_any() {
        assert_eq!(
            AllowedOrigins::parse(""),
            Ok(AllowedOrigins::SameOriginOnly)
        );
        assert_eq!(
            AllowedOrigins::parse(" , "),
            Ok(AllowedOrigins::SameOriginOnly)
        );
        assert_eq!(AllowedOrigins::parse("*"), Ok(AllowedOrigins::Any));
        assert!(AllowedOrigins::parse("*,https://app.example").is_err());
        assert!(
            AllowedOrigins::SameOriginOnly
                .layer(&[Method::POST], &[], &[])
                .is_none()
        );
        assert!(
            AllowedOrigins::Any
                .layer(&[Method::POST], &[], &[])
                .is_some()
        );
    }

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        assert_eq!(
            AllowedOrigins::parse("HTTPS://App.Example, http://localhost:5173"),
            Ok(AllowedOrigins::List(vec![
                HeaderValue::from_static("https://app.example"),
                HeaderValue::from_static("http://localhost:5173"),
            ]))
        );
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for text in [
            "https://app.example/",
            "https://app.example/chat",
            "https://app.example?x=1",
            "app.example",
            "ftp://app.example",
            "null",
            "https://user@app.example",
        ] {
            assert!(AllowedOrigins::parse(text).is_err(), "{text}");
        }
    }
}
