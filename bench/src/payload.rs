//! What every benchmark sends and what the no-op baselines answer, so that
//! the baselines carry the same bytes as the real services.
//!
//! The message is the README's example; the sender's name comes from the
//! token's claims (no stored profile), as for a viewer the user service never
//! described. The canned replies are built from such a message by
//! chat-service's and http-edge's own conversions, so they have the real
//! replies' fields and sizes (~200 bytes of protobuf, ~340 bytes of JSON).

use allmine_chat_proto::v1 as pb;
use allmine_test_support::{TokenBuilder, random_object_id};
use chat_service::domain::{
    ChatMessage, MessageContent, ObjectIdGenerator, Sender, StreamId, UserId, truncate_to_millis,
};
use chrono::Utc;
use http_edge::dto::ChatMessageJson;
use serde_json::json;

/// The text of every message sent.
pub const CONTENT: &str = "Herkese selam! Yayın çok güzel.";

/// The REST body of every send.
pub fn rest_body() -> String {
    json!({ "content": CONTENT }).to_string()
}

/// A viewer's token whose claims name the sender (`viewer0001`, Bench User).
pub fn viewer(index: usize) -> TokenBuilder {
    TokenBuilder::new().profile(&format!("viewer{index:04}"), "Bench", "User")
}

/// `count` viewers' `Bearer …` values, one distinct user each.
pub fn viewer_authorizations(count: usize) -> Vec<String> {
    (0..count)
        .map(|index| format!("Bearer {}", viewer(index).build()))
        .collect()
}

/// The edges' `EDGE_UPSTREAM_TOKEN`: a `service` token, as `scripts/dev.sh`
/// mints one, signed with the secret chat-service runs with here; valid for
/// a day (the shared feeds it opens end when it expires).
pub fn service_token() -> String {
    TokenBuilder::service().expires_in(24 * 3600).build()
}

/// A message like the ones the benchmarks send, as chat-service keeps it.
fn sample_message(stream_id: &str) -> anyhow::Result<ChatMessage> {
    let now = truncate_to_millis(Utc::now());
    Ok(ChatMessage {
        id: ObjectIdGenerator::new().next(now).into(),
        stream_id: StreamId::parse(stream_id)?,
        content: MessageContent::parse(CONTENT)?,
        sender: Sender {
            username: Some("viewer0000".to_owned()),
            name: Some("Bench".to_owned()),
            surname: Some("User".to_owned()),
            ..Sender::anonymous(UserId::parse(&random_object_id())?)
        },
        created_at: now,
        updated_at: now,
    })
}

/// What chat-service answers to a send: its own conversion of such a message
/// (so every field the contract gains, the cursor say, is there too).
pub fn canned_message(stream_id: &str) -> anyhow::Result<pb::ChatMessage> {
    Ok(pb::ChatMessage::from(sample_message(stream_id)?))
}

/// What http-edge answers to a send: its own JSON of that reply.
pub fn canned_json(stream_id: &str) -> anyhow::Result<ChatMessageJson> {
    Ok(ChatMessageJson::from(canned_message(stream_id)?))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn the_canned_replies_have_the_real_replies_sizes() {
        let stream_id = random_object_id();
        let protobuf = canned_message(&stream_id).expect("valid").encoded_len();
        let json = serde_json::to_string(&canned_json(&stream_id).expect("valid"))
            .expect("serialises")
            .len();
        assert!((150..260).contains(&protobuf), "{protobuf} bytes");
        assert!((300..460).contains(&json), "{json} bytes");
    }
}
