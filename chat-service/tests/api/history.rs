//! ListMessages over gRPC on both stores: pages both ways with the cursor,
//! the default and maximum page sizes, and bad parameters.

use allmine_chat_proto::v1 as pb;
use allmine_test_support::backends::Backend;
use allmine_test_support::{TokenBuilder, random_object_id};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestService, spawn_service_for_with};

allmine_test_support::for_each_backend!(
    pages_walk_the_history_both_ways_with_the_cursor,
    the_page_size_defaults_to_50_and_is_capped_at_100,
    bad_parameters_are_reported_per_field,
    an_unregistered_stream_has_no_history,
);

/// A service whose burst limit does not get in the way of filling a stream.
async fn spawn(backend: Backend) -> TestService {
    spawn_service_for_with(backend, |config| {
        config.burst_viewer_limit = 10_000;
        config.burst_privileged_limit = 10_000;
    })
    .await
}

fn contents(response: &pb::ListMessagesResponse) -> Vec<String> {
    response
        .messages
        .iter()
        .map(|m| m.content.clone())
        .collect()
}

async fn pages_walk_the_history_both_ways_with_the_cursor(backend: Backend) {
    let service = spawn(backend).await;
    let stream = service.open_stream().await;
    let mut sent = Vec::new();
    for index in 0..7 {
        sent.push(
            service
                .send_as_anyone(&stream, &format!("m{index}"))
                .await
                .expect("sent"),
        );
    }

    let newest = service.history(&stream, 3, None, None).await.expect("page");
    assert_eq!(contents(&newest), ["m6", "m5", "m4"]);
    assert_eq!(
        newest.messages[0], sent[6],
        "history shows what the send returned"
    );
    let older = service
        .history(&stream, 3, newest.next_cursor.as_deref(), None)
        .await
        .expect("page");
    assert_eq!(contents(&older), ["m3", "m2", "m1"]);
    let oldest = service
        .history(&stream, 3, older.next_cursor.as_deref(), None)
        .await
        .expect("page");
    assert_eq!(contents(&oldest), ["m0"]);
    assert_eq!(oldest.next_cursor, None, "a short backward page is the end");

    let forward = service
        .history(&stream, 4, None, Some(&sent[1].cursor))
        .await
        .expect("page");
    assert_eq!(contents(&forward), ["m2", "m3", "m4", "m5"]);
    let rest = service
        .history(&stream, 4, None, forward.next_cursor.as_deref())
        .await
        .expect("page");
    assert_eq!(contents(&rest), ["m6"]);
    let nothing_yet = service
        .history(&stream, 4, None, rest.next_cursor.as_deref())
        .await
        .expect("page");
    assert!(nothing_yet.messages.is_empty());
    assert_eq!(
        nothing_yet.next_cursor, rest.next_cursor,
        "forwards keeps its place"
    );

    service.send_as_anyone(&stream, "m7").await.expect("sent");
    let new = service
        .history(&stream, 4, None, nothing_yet.next_cursor.as_deref())
        .await
        .expect("page");
    assert_eq!(
        contents(&new),
        ["m7"],
        "polling forwards finds what came since"
    );
    service.finish().await;
}

async fn the_page_size_defaults_to_50_and_is_capped_at_100(backend: Backend) {
    let service = spawn(backend).await;
    let stream = service.open_stream().await;
    let owner = TokenBuilder::new();
    for index in 0..120 {
        service
            .send(&owner.build(), &stream, &format!("m{index}"))
            .await
            .expect("sent");
    }
    assert_eq!(
        service
            .history(&stream, 0, None, None)
            .await
            .expect("page")
            .messages
            .len(),
        50
    );
    assert_eq!(
        service
            .history(&stream, 100, None, None)
            .await
            .expect("page")
            .messages
            .len(),
        100
    );
    let status = service
        .history(&stream, 101, None, None)
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["page_size"]);
    service.finish().await;
}

async fn bad_parameters_are_reported_per_field(backend: Backend) {
    let mut service = spawn(backend).await;
    let stream = service.open_stream().await;
    let sent = service.send_as_anyone(&stream, "hi").await.expect("sent");
    let cases: [(&str, Option<&str>, Option<&str>, &str); 4] = [
        (&stream, Some("not-a-cursor"), None, "before"),
        (&stream, None, Some("%%%"), "after"),
        (&stream, Some(&sent.cursor), Some(&sent.cursor), "after"),
        ("nope", None, None, "stream_id"),
    ];
    for (stream_id, before, after, field) in cases {
        let status = service
            .history(stream_id, 10, before, after)
            .await
            .expect_err("rejected");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        let violations = status
            .get_details_bad_request()
            .expect("violations")
            .field_violations;
        assert_eq!(violations[0].field, field);
    }
    let unauthenticated = tonic::Request::new(pb::ListMessagesRequest {
        stream_id: stream.clone(),
        ..Default::default()
    });
    let status = service
        .client
        .list_messages(unauthenticated)
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    service.finish().await;
}

async fn an_unregistered_stream_has_no_history(backend: Backend) {
    let service = spawn(backend).await;
    let status = service
        .history(&random_object_id(), 10, None, None)
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    service.finish().await;
}
