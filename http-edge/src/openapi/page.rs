//! The API reference page, `GET /docs`: plain HTML, CSS and JavaScript
//! embedded in the binary (files in `http-edge/web/docs/`), no CDN and no
//! build step. The script fetches [`super::DOCUMENT_PATH`] and renders its
//! operations, parameters, answers and schemas, with a form per operation
//! that sends a real request (with the token typed into the page) and shows
//! the answer: this origin only, as the Content-Security-Policy says.

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// The page's path; its script and style sheet are below it.
pub const PAGE_PATH: &str = "/docs";

const PAGE: &[u8] = include_bytes!("../../web/docs/index.html");
const SCRIPT: &[u8] = include_bytes!("../../web/docs/docs.js");
const STYLE: &[u8] = include_bytes!("../../web/docs/docs.css");

/// Scripts, styles and requests to this origin only; no inline code, so
/// nothing in the document (descriptions are text) can run.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PAGE_PATH, get(page))
        .route(&format!("{PAGE_PATH}/docs.js"), get(script))
        .route(&format!("{PAGE_PATH}/docs.css"), get(style))
}

async fn page() -> Response {
    let mut response = asset("text/html; charset=utf-8", PAGE);
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

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// Revalidated on each load (`no-cache`): a new binary's page is never
/// hidden behind a stale copy.
fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets_and_no_inline_script() {
        let html = std::str::from_utf8(PAGE).expect("utf-8");
        assert!(html.contains(&format!("src=\"{PAGE_PATH}/docs.js\"")));
        assert!(html.contains(&format!("href=\"{PAGE_PATH}/docs.css\"")));
        assert!(!html.contains("<script>"), "the CSP forbids inline script");
        let script = std::str::from_utf8(SCRIPT).expect("utf-8");
        assert!(script.contains(super::super::DOCUMENT_PATH));
    }
}
