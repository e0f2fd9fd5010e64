//! Every authentication failure answers UNAUTHENTICATED with a precise
//! reason, never echoes the token, and stores nothing.

use allmine_chat_proto::v1::SendMessageRequest;
use allmine_test_support::{RSA_PUBLIC_PEM, TEST_SECRET, TokenBuilder, key_path};
use chat_service::config::JwtAlgorithm;
use serde_json::json;
use tonic::{Code, Request};

use crate::helpers::{authorized, spawn_service, spawn_service_with};

/// Sends with the raw `authorization` value (or none) and returns the status.
async fn send_with_authorization(
    service: &mut crate::helpers::TestService,
    stream: &str,
    authorization: Option<&str>,
) -> tonic::Status {
    let message = SendMessageRequest {
        stream_id: stream.into(),
        content: "hello".into(),
        idempotency_key: None,
    };
    let request = match authorization {
        Some(value) => authorized(message, value),
        None => Request::new(message),
    };
    service
        .client
        .send_message(request)
        .await
        .expect_err("must be rejected")
}

fn assert_unauthenticated(status: &tonic::Status, reason_fragment: &str, token: &str) {
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains(reason_fragment),
        "expected {reason_fragment:?} in {:?}",
        status.message()
    );
    if !token.is_empty() {
        assert!(!status.message().contains(token), "token echoed back");
    }
}

#[tokio::test]
async fn bad_credentials_are_rejected_with_a_precise_reason_and_store_nothing() {
    let mut service = spawn_service().await;
    let stream = service.open_stream().await;
    let valid = TokenBuilder::new();

    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "missing authorization"),
        (
            "not bearer",
            Some(format!("Basic {}", valid.build())),
            "Bearer <token>",
        ),
        ("empty bearer", Some("Bearer ".into()), "Bearer <token>"),
        (
            "garbage",
            Some("Bearer not.a.jwt".into()),
            "malformed token",
        ),
        (
            "expired",
            Some(format!("Bearer {}", valid.clone().expires_in(-120).build())),
            "expired",
        ),
        (
            "no exp",
            Some(format!(
                "Bearer {}",
                valid.clone().without_claim("exp").build()
            )),
            "'exp'",
        ),
        (
            "not yet valid",
            Some(format!(
                "Bearer {}",
                valid.clone().not_before_in(600).build()
            )),
            "not valid yet",
        ),
        (
            "forged",
            Some(format!(
                "Bearer {}",
                valid
                    .clone()
                    .signed_with_secret(b"another-secret-that-is-long-enough-0000")
                    .build()
            )),
            "signature",
        ),
        (
            "alg none",
            Some(format!("Bearer {}", valid.build_unsigned())),
            "token",
        ),
        (
            "wrong algorithm",
            Some(format!("Bearer {}", valid.clone().signed_rs256().build())),
            "algorithm",
        ),
        (
            "no sub",
            Some(format!(
                "Bearer {}",
                valid.clone().without_claim("sub").build()
            )),
            "'sub'",
        ),
        (
            "sub not an id",
            Some(format!(
                "Bearer {}",
                valid.clone().claim("sub", json!("johndoe")).build()
            )),
            "sub",
        ),
        (
            "claims of the wrong type",
            Some(format!(
                "Bearer {}",
                valid.clone().claim("username", json!(42)).build()
            )),
            "claims",
        ),
    ];
    for (name, authorization, reason) in cases {
        let status = send_with_authorization(&mut service, &stream, authorization.as_deref()).await;
        let token = authorization
            .as_deref()
            .and_then(|value| value.split_once(' ').map(|(_, token)| token))
            .unwrap_or("");
        assert_eq!(status.code(), Code::Unauthenticated, "{name}: {status:?}");
        assert_unauthenticated(&status, reason, token);
    }
    assert!(service.stored(&stream).await.is_empty());
    service.stop().await;
}

#[tokio::test]
async fn expiry_within_the_leeway_is_accepted() {
    let service = spawn_service().await;
    // Expired 5 s ago, within the default 30 s leeway.
    let token = TokenBuilder::new().expires_in(-5).build();
    let stream = service.open_stream().await;
    service
        .send(&token, &stream, "hi")
        .await
        .expect("accepted within leeway");
    service.stop().await;
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let mut service = spawn_service_with(|config| {
        config.jwt_issuer = Some("https://auth.allmine.example".into());
        config.jwt_audience = Some("allmine-chat".into());
    })
    .await;
    service.service_token = TokenBuilder::service()
        .claim("iss", json!("https://auth.allmine.example"))
        .claim("aud", json!("allmine-chat"))
        .build();
    let stream = service.open_stream().await;
    let good = TokenBuilder::new()
        .claim("iss", json!("https://auth.allmine.example"))
        .claim("aud", json!("allmine-chat"));
    service
        .send(&good.build(), &stream, "hi")
        .await
        .expect("accepted");

    let wrong_issuer = good
        .clone()
        .claim("iss", json!("https://evil.example"))
        .build();
    let status = service
        .send(&wrong_issuer, &stream, "hi")
        .await
        .expect_err("rejected");
    assert_unauthenticated(&status, "issuer", &wrong_issuer);

    let wrong_audience = good.clone().claim("aud", json!("another-service")).build();
    let status = service
        .send(&wrong_audience, &stream, "hi")
        .await
        .expect_err("rejected");
    assert_unauthenticated(&status, "audience", &wrong_audience);

    let no_issuer = good.clone().without_claim("iss").build();
    let status = service
        .send(&no_issuer, &stream, "hi")
        .await
        .expect_err("rejected");
    assert_eq!(status.code(), Code::Unauthenticated);
    service.stop().await;
}

#[tokio::test]
async fn rs256_tokens_verify_against_the_public_key_and_hs_confusion_is_refused() {
    let mut service = spawn_service_with(|config| {
        config.jwt_secret = None;
        config.jwt_public_key_file = Some(key_path("rsa-public.pem"));
        config.jwt_algorithm = Some(JwtAlgorithm::Rs256);
    })
    .await;
    service.service_token = TokenBuilder::service().signed_rs256().build();
    let stream = service.open_stream().await;
    let rs = TokenBuilder::new().signed_rs256();
    service
        .send(&rs.build(), &stream, "hi")
        .await
        .expect("accepted");

    // The classic confusion attack: HS256 signed with the public key as secret.
    let confused = rs
        .clone()
        .signed_with_secret(RSA_PUBLIC_PEM.as_bytes())
        .build();
    let status = service
        .send(&confused, &stream, "hi")
        .await
        .expect_err("rejected");
    assert_unauthenticated(&status, "algorithm", &confused);

    let hs = TokenBuilder::new()
        .signed_with_secret(TEST_SECRET.as_bytes())
        .build();
    let status = service
        .send(&hs, &stream, "hi")
        .await
        .expect_err("rejected");
    assert_unauthenticated(&status, "algorithm", &hs);
    assert_eq!(service.stored(&stream).await.len(), 1);
    service.stop().await;
}

#[tokio::test]
async fn es256_tokens_verify_against_the_public_key() {
    let mut service = spawn_service_with(|config| {
        config.jwt_secret = None;
        config.jwt_public_key_file = Some(key_path("ec-public.pem"));
        config.jwt_algorithm = Some(JwtAlgorithm::Es256);
    })
    .await;
    service.service_token = TokenBuilder::service().signed_es256().build();
    let stream = service.open_stream().await;
    let token = TokenBuilder::new().signed_es256().build();
    service.send(&token, &stream, "hi").await.expect("accepted");
    let rs = TokenBuilder::new().signed_rs256().build();
    let status = service
        .send(&rs, &stream, "hi")
        .await
        .expect_err("rejected");
    assert_unauthenticated(&status, "algorithm", &rs);
    service.stop().await;
}

/// RFC 7515 §4.1.11: a `crit` header names extensions the recipient must
/// understand, and chat-service understands none. A correctly signed token
/// with one is refused on every call, sending and subscribing alike.
#[tokio::test]
async fn a_token_with_a_crit_header_is_refused_on_send_and_subscribe() {
    let mut service = spawn_service().await;
    let stream = service.open_stream().await;
    let token = TokenBuilder::new().build_with_header(&json!({
        "alg": "HS256",
        "typ": "JWT",
        "b64": false,
        "crit": ["b64"],
    }));
    let authorization = format!("Bearer {token}");

    // Twice: a refused token must not become accepted through the cache.
    for _ in 0..2 {
        let status = send_with_authorization(&mut service, &stream, Some(&authorization)).await;
        assert_unauthenticated(&status, "'crit'", &token);
    }
    let status = service
        .subscribe_as(&token, &stream, None)
        .await
        .expect_err("must be rejected");
    assert_unauthenticated(&status, "'crit'", &token);
    assert!(service.stored(&stream).await.is_empty());
    service.stop().await;
}
