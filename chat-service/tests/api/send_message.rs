//! SendMessage through the real gRPC server: what is stored, what is
//! answered, and that invalid requests change nothing.

use allmine_test_support::TokenBuilder;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{spawn_service, spawn_service_for};
use allmine_test_support::backends::Backend;

allmine_test_support::for_each_backend!(
    a_sent_message_is_stored_and_reads_back_equal,
    message_ids_are_fresh_lowercase_object_ids_in_sending_order,
    a_sender_without_profile_claims_has_null_profile_fields,
    invalid_fields_are_each_reported_and_nothing_is_stored,
    streams_are_kept_apart,
    concurrent_sends_are_all_stored,
);

async fn a_sent_message_is_stored_and_reads_back_equal(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let token = TokenBuilder::new().profile("johndoe", "John", "Doe");

    let reply = service
        .send(
            &token.build(),
            &stream,
            "  Herkese selam! Yayın çok güzel.  ",
        )
        .await
        .expect("accepted");

    assert_eq!(reply.stream_id, stream);
    assert_eq!(reply.content, "Herkese selam! Yayın çok güzel.");
    let sender = reply.sender.clone().expect("sender");
    assert_eq!(sender.id, token.user_id());
    assert_eq!(sender.username.as_deref(), Some("johndoe"));
    assert_eq!(sender.name.as_deref(), Some("John"));
    assert_eq!(sender.surname.as_deref(), Some("Doe"));
    assert_eq!(sender.profile_photo, None);
    assert_eq!(reply.created_at, reply.updated_at);
    let created = reply.created_at.expect("created_at");
    assert_eq!(created.nanos % 1_000_000, 0, "millisecond precision");

    let stored = service.stored(&stream).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        allmine_chat_proto::v1::ChatMessage::from(stored[0].clone()),
        reply
    );
    service.finish().await;
}

async fn message_ids_are_fresh_lowercase_object_ids_in_sending_order(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let mut ids = Vec::new();
    for index in 0..20 {
        let reply = service
            .send_as_anyone(&stream, &format!("message {index}"))
            .await
            .expect("accepted");
        assert_eq!(reply.id.len(), 24);
        assert!(
            reply
                .id
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        ids.push(reply.id);
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids, "ids are unique and increase in sending order");

    let stored: Vec<String> = service
        .stored(&stream)
        .await
        .into_iter()
        .rev()
        .map(|message| message.id.to_string())
        .collect();
    assert_eq!(stored, ids, "the store keeps sending order");
    service.finish().await;
}

async fn a_sender_without_profile_claims_has_null_profile_fields(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let reply = service
        .send_as_anyone(&stream, "hi")
        .await
        .expect("accepted");
    let sender = reply.sender.expect("sender");
    assert_eq!(sender.username, None);
    assert_eq!(sender.name, None);
    assert_eq!(sender.surname, None);
    assert_eq!(sender.availability_status, None);
    service.finish().await;
}

async fn invalid_fields_are_each_reported_and_nothing_is_stored(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let cases: &[(&str, &str, &[&str])] = &[
        (&stream, "", &["content"]),
        (&stream, "   \n\t ", &["content"]),
        (&stream, &"x".repeat(501), &["content"]),
        (&stream, "bell\u{7}", &["content"]),
        ("not-an-id", "hello", &["stream_id"]),
        ("64d15f9e2e6c8f4d5a12300", "hello", &["stream_id"]),
        ("zzd15f9e2e6c8f4d5a123000", "hello", &["stream_id"]),
        ("", "", &["stream_id", "content"]),
    ];
    for (stream_id, content, fields) in cases {
        let status = service
            .send_as_anyone(stream_id, content)
            .await
            .expect_err("rejected");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{stream_id:?} {content:?}"
        );
        let violations = status.get_details_bad_request().expect("field violations");
        let reported: Vec<&str> = violations
            .field_violations
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(&reported, fields, "{stream_id:?} {content:?}");
        assert!(
            violations
                .field_violations
                .iter()
                .all(|v| !v.description.is_empty()),
            "every violation says why"
        );
    }
    assert!(service.stored(&stream).await.is_empty());
    service.finish().await;
}

async fn streams_are_kept_apart(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let first = service.open_stream().await;
    let second = service.open_stream().await;
    service
        .send_as_anyone(&first, "one")
        .await
        .expect("accepted");
    service
        .send_as_anyone(&second, "two")
        .await
        .expect("accepted");
    service
        .send_as_anyone(&first, "three")
        .await
        .expect("accepted");

    let first_contents: Vec<String> = service
        .stored(&first)
        .await
        .into_iter()
        .map(|message| message.content.as_str().to_owned())
        .collect();
    assert_eq!(first_contents, ["three", "one"]);
    assert_eq!(service.stored(&second).await.len(), 1);
    service.finish().await;
}

async fn concurrent_sends_are_all_stored(backend: Backend) {
    let service = spawn_service_for(backend).await;
    let stream = service.open_stream().await;
    let mut tasks = Vec::new();
    for index in 0..64 {
        let mut client = service.client.clone();
        let stream = stream.clone();
        tasks.push(tokio::spawn(async move {
            let request = crate::helpers::authorized(
                allmine_chat_proto::v1::SendMessageRequest {
                    stream_id: stream,
                    content: format!("concurrent {index}"),
                    idempotency_key: None,
                },
                &format!("Bearer {}", TokenBuilder::new().build()),
            );
            client
                .send_message(request)
                .await
                .map(|r| r.into_inner().id)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task").expect("accepted"));
    }
    let stored = service.stored(&stream).await;
    assert_eq!(stored.len(), 64);
    let mut stored_ids: Vec<String> = stored.iter().map(|m| m.id.to_string()).collect();
    stored_ids.sort();
    ids.sort();
    assert_eq!(stored_ids, ids);
    service.finish().await;
}

/// Attack 8 of issue 10: messages that show nothing, or that reorder the
/// chat around them.
#[tokio::test]
async fn invisible_only_content_and_bidi_overrides_are_refused_with_their_reason() {
    let service = spawn_service().await;
    let stream = service.open_stream().await;
    let cases = [
        (
            "\u{200B}\u{2060}\u{FEFF}\u{3164}\u{2800}",
            "must not be empty or only whitespace/invisible characters",
        ),
        (
            " \u{115F}\u{1160}\u{FFA0}\u{00AD}\u{180E}\u{034F}\u{E0020} ",
            "must not be empty or only whitespace/invisible characters",
        ),
        (
            "invoice \u{202E}fdp.exe",
            "must not contain bidirectional embedding, override or isolate controls (found U+202E)",
        ),
        (
            "\u{2067}reordered\u{2069} tail",
            "must not contain bidirectional embedding, override or isolate controls (found U+2067)",
        ),
    ];
    for (content, reason) in cases {
        let status = service
            .send_as_anyone(&stream, content)
            .await
            .expect_err("rejected");
        assert_eq!(status.code(), Code::InvalidArgument, "{content:?}");
        assert_eq!(
            status.message(),
            format!("content: {reason}"),
            "{content:?}"
        );
        let violations = status.get_details_bad_request().expect("field violations");
        assert_eq!(violations.field_violations.len(), 1);
        assert_eq!(violations.field_violations[0].field, "content");
        assert_eq!(violations.field_violations[0].description, reason);
    }
    assert!(service.stored(&stream).await.is_empty(), "nothing stored");

    // Right-to-left text keeps its implicit marks, and joiners inside
    // visible text stay as sent.
    for content in [
        "שלום!\u{200F}",
        "می\u{200C}خواهم",
        "\u{1F468}\u{200D}\u{1F469}",
    ] {
        let message = service
            .send_as_anyone(&stream, content)
            .await
            .expect("visible text is accepted");
        assert_eq!(message.content, content);
    }
    service.stop().await;
}
