//! The live route's answer, `text/event-stream`, as a schema: one event per
//! line group, `id:` (its cursor), `event:` (its type) and `data:` (one
//! line of JSON), shown here as an object of those three fields, one
//! alternative per event type.
//!
//! OpenAPI 3.1 has no vocabulary for an event stream's items; this is the
//! usual way to describe them, and the types are tied to the code: each
//! `data` is the schema of the [`crate::dto`] type the edge serializes, and
//! the event names are [`ChatEventData::event_type`]'s (a test checks every
//! variant is described).
//!
//! [`ChatEventData::event_type`]: crate::dto::ChatEventData::event_type

use std::borrow::Cow;

use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, OneOfBuilder, Ref, RefOr, Schema, Type},
};

/// The event types of a live chat and the schema of each one's `data`, as
/// named by [`crate::dto::ChatEventData::event_type`] and
/// [`crate::event_stream`]'s `error`; whether it has an `id:`; and when it
/// is sent.
pub const EVENT_TYPES: &[(&str, &str, bool, &str)] = &[
    (
        "message",
        "ChatMessage",
        true,
        "A new message: exactly the body of \"send message\".",
    ),
    (
        "messageDeleted",
        "MessageDeletedEvent",
        true,
        "A message was deleted.",
    ),
    (
        "userBanned",
        "UserBannedEvent",
        true,
        "A user was banned (`expiresAt` null) or timed out.",
    ),
    (
        "chatStateChanged",
        "ChatStateChangedEvent",
        true,
        "The chat was opened or closed, or the stream ended.",
    ),
    (
        "gap",
        "GapEvent",
        true,
        "Events were skipped (the client fell behind): its `id` is where to resume, by \
         reconnecting or reading history after it; the stream then ends.",
    ),
    (
        "error",
        "ErrorEvent",
        false,
        "The stream failed (chat-service went away, ...): the envelope's `errors`; the \
         stream then ends. Reconnect with `Last-Event-ID`.",
    ),
];

/// The schema of the event stream (for `#[utoipa::path]`).
pub struct EventStream;

impl PartialSchema for EventStream {
    fn schema() -> RefOr<Schema> {
        let mut events = OneOfBuilder::new().description(Some(
            "Server-Sent Events. Each event has `event:` its type, `data:` one line of JSON \
             and, except `error`, `id:` its cursor (what `EventSource` sends back as \
             `Last-Event-ID`). Idle streams get a `: keep-alive` comment every 15 s at most.",
        ));
        for (name, data, has_id, when) in EVENT_TYPES {
            let mut event = ObjectBuilder::new()
                .title(Some(*name))
                .description(Some(*when))
                .property(
                    "event",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([*name])),
                )
                .required("event")
                .property("data", Ref::from_schema_name(*data))
                .required("data");
            if *has_id {
                event = event
                    .property(
                        "id",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .description(Some("The event's cursor.")),
                    )
                    .required("id");
            }
            events = events.item(event);
        }
        RefOr::T(Schema::OneOf(events.build()))
    }
}

impl ToSchema for EventStream {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ChatEventStream")
    }
}
