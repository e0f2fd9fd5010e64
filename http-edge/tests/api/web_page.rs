//! The web chat page at `/` and its assets under `/app/`: served from the
//! binary, with their types, a validator and the page's security headers.

use crate::helpers::{expect_error, reserve_unused_port, spawn_edge};

#[tokio::test]
async fn the_page_is_served_at_the_root_with_its_security_headers() {
    // The page needs nothing from chat-service to load.
    let edge = spawn_edge(reserve_unused_port()).await;

    let response = edge.get("/").await;

    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers.get("x-request-id").is_some());
    let html = response.text().await.expect("text");
    assert!(html.contains(r#"<script src="/app/chat.js" defer></script>"#));
}

#[tokio::test]
async fn the_assets_have_their_types_and_revalidate_to_304() {
    let edge = spawn_edge(reserve_unused_port()).await;
    for (path, content_type) in [
        ("/app/chat.js", "text/javascript; charset=utf-8"),
        ("/app/chat.css", "text/css; charset=utf-8"),
    ] {
        let response = edge.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let etag = response.headers()["etag"].clone();
        assert!(!response.bytes().await.expect("body").is_empty());

        let revalidated = edge
            .client
            .get(edge.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("the edge answers");
        assert_eq!(revalidated.status().as_u16(), 304, "{path}");
        assert!(revalidated.bytes().await.expect("body").is_empty());
    }
}

#[tokio::test]
async fn an_unknown_asset_is_the_404_envelope() {
    let edge = spawn_edge(reserve_unused_port()).await;

    let response = edge.get("/app/missing.js").await;

    let reply = expect_error(response, 404, "Resource not found").await;
    assert_eq!(
        reply.errors,
        ["Resource not found", "No route for GET /app/missing.js"]
    );
}
