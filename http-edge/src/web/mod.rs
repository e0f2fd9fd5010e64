//! The web chat page: `GET /` and its assets under `/app/`, plain HTML, CSS
//! and JavaScript embedded in the binary (no build step, nothing on disk at
//! run time). The files live in `http-edge/web/`; the page itself talks only
//! to the public REST and SSE routes, like any other client.
//!
//! The stream id and the token travel in the URL *fragment*
//! (`/#stream=<id>&token=<jwt>`), which browsers never send to a server: the
//! token reaches the edge only in `Authorization` headers and, because
//! `EventSource` cannot send headers, as the event stream's `access_token`.
//!
//! Every asset is answered with an `ETag` (a hash of its bytes, computed at
//! compile time) and `Cache-Control: no-cache`: a browser revalidates on each
//! load and gets a 304 with no body while the binary is unchanged, so a new
//! deployment is never hidden behind a stale cache. The HTML carries a
//! Content-Security-Policy that allows scripts, styles and connections to
//! this origin only (images from anywhere: profile photos live on a CDN),
//! and `Referrer-Policy: no-referrer`.

use axum::{
    Router,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// The page's path; its assets are under [`ASSETS_PREFIX`].
pub const PAGE_PATH: &str = "/";
/// Where the page's script and style sheet are served.
pub const ASSETS_PREFIX: &str = "/app";

/// One embedded file.
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    /// FNV-1a of `body`: stable for a given binary, different when the file
    /// changes (a cache validator, not a security measure).
    etag: u64,
}

impl Asset {
    const fn new(content_type: &'static str, body: &'static [u8]) -> Self {
        Self {
            content_type,
            body,
            etag: fnv1a(body),
        }
    }
}

const PAGE: Asset = Asset::new(
    "text/html; charset=utf-8",
    include_bytes!("../../web/index.html"),
);
const SCRIPT: Asset = Asset::new(
    "text/javascript; charset=utf-8",
    include_bytes!("../../web/chat.js"),
);
const STYLE: Asset = Asset::new(
    "text/css; charset=utf-8",
    include_bytes!("../../web/chat.css"),
);

/// What the page may load and where it may connect: its own origin only,
/// except images. No inline script or style is allowed, so an injected
/// message could not run code even if the page's escaping failed.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src * data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The page and its assets, for any router state (they need none).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PAGE_PATH, get(page))
        .route(&format!("{ASSETS_PREFIX}/chat.js"), get(script))
        .route(&format!("{ASSETS_PREFIX}/chat.css"), get(style))
}

async fn page(request_headers: HeaderMap) -> Response {
    let mut response = serve(&PAGE, &request_headers);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn script(request_headers: HeaderMap) -> Response {
    serve(&SCRIPT, &request_headers)
}

async fn style(request_headers: HeaderMap) -> Response {
    serve(&STYLE, &request_headers)
}

/// 200 with the body, or 304 when the client's `If-None-Match` names the
/// current version.
fn serve(asset: &Asset, request_headers: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.etag);
    let fresh = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.trim_start_matches("W/") == etag
        });
    let common: [(HeaderName, String); 3] = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ];
    let mut headers = HeaderMap::new();
    for (name, value) in common {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (StatusCode::OK, headers, asset.body).into_response()
}

/// 64-bit FNV-1a, usable in a `const`.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        index += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_none_match(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(value).expect("a valid header value"),
        );
        headers
    }

    #[test]
    fn an_asset_is_served_with_its_type_and_validator() {
        let response = serve(&SCRIPT, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], SCRIPT.content_type);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert!(
            headers[header::ETAG]
                .to_str()
                .expect("ascii")
                .starts_with('"')
        );
    }

    #[test]
    fn a_matching_validator_gets_a_304_and_another_gets_the_body() {
        let etag = format!("\"{:016x}\"", STYLE.etag);
        let matching = format!("\"other\", W/{etag}");
        assert_eq!(
            serve(&STYLE, &if_none_match(&matching)).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            serve(&STYLE, &if_none_match("\"0000000000000000\"")).status(),
            StatusCode::OK
        );
    }

    #[test]
    fn the_assets_differ_and_so_do_their_validators() {
        assert_ne!(PAGE.etag, SCRIPT.etag);
        assert_ne!(SCRIPT.etag, STYLE.etag);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        let html = std::str::from_utf8(PAGE.body).expect("utf-8");
        assert!(html.contains(&format!("src=\"{ASSETS_PREFIX}/chat.js\"")));
        assert!(html.contains(&format!("href=\"{ASSETS_PREFIX}/chat.css\"")));
        assert!(
            !html.contains("<script>"),
            "no inline script: the CSP forbids it"
        );
    }
}
