//! Names: a field's REST name is its proto3 JSON name (lowerCamelCase), or
//! [`REST_NAMES`] says where REST differs and why. Checked on both sides:
//! the edge's parsers accept the REST names of each rule's non-path fields
//! (and refuse a moved field under its proto name), and each JSON the edge
//! shows has exactly the keys the descriptor and the table give.

use std::collections::BTreeSet;

use allmine_chat_proto::v1 as pb;
use http_edge::{
    dto::{
        self, BanJson, ChatMessageJson, MessagePageJson, StreamJson,
        events::{ChatStateChangedJson, GapJson, MessageDeletedJson, UserBannedJson},
        history::LIST_MESSAGES_REST_NAMES,
    },
    extract::FromQuery,
};
use serde_json::{Map, Value, json};

use super::descriptor::{Contract, Kind};
use super::{ruled, variables};
use crate::helpers::STREAM_ID;

/// Where a field's REST name is not its proto3 JSON name.
#[derive(Debug, Clone, Copy)]
enum Rest {
    /// Another JSON key.
    Key(&'static str),
    /// Another query parameter name.
    Query(&'static str),
    /// Carried in this request header, not in the body.
    Header(&'static str),
    /// Shown only inside this message's JSON, not elsewhere.
    ShownUnder(&'static str),
}

/// One deliberate difference between a proto field and its REST name.
struct RestName {
    message: &'static str,
    field: &'static str,
    rest: Rest,
    #[allow(dead_code)] // Read by people: the reason is the point of the table.
    why: &'static str,
}

/// Every deliberate difference (the same list as the proto's header comment).
/// The public REST API predates the contract; these names are part of it.
const REST_NAMES: &[RestName] = &[
    RestName {
        message: "allmine.chat.v1.ListMessagesRequest",
        field: "page_size",
        rest: Rest::Query("limit"),
        why: "the documented query parameter; an absent `limit` is the default page",
    },
    RestName {
        message: "allmine.chat.v1.ListMessagesResponse",
        field: "messages",
        rest: Rest::Key("items"),
        why: "a page's list is `items` throughout the Allmine API",
    },
    RestName {
        message: "allmine.chat.v1.ChatMessage",
        field: "id",
        rest: Rest::Key("_id"),
        why: "the Allmine API names an ObjectId `_id` (MongoDB's key)",
    },
    RestName {
        message: "allmine.chat.v1.Sender",
        field: "id",
        rest: Rest::Key("_id"),
        why: "the Allmine API names an ObjectId `_id` (MongoDB's key)",
    },
    RestName {
        message: "allmine.chat.v1.ProfilePhoto",
        field: "id",
        rest: Rest::Key("_id"),
        why: "the Allmine API names an ObjectId `_id` (MongoDB's key)",
    },
    RestName {
        message: "allmine.chat.v1.ChatMessage",
        field: "cursor",
        rest: Rest::ShownUnder("allmine.chat.v1.ListMessagesResponse"),
        why: "history items carry it (join live after the newest item); the 201 body and the \
              SSE `message` data keep the documented message shape, the SSE `id:` is the cursor",
    },
    RestName {
        message: "allmine.chat.v1.SendMessageRequest",
        field: "idempotency_key",
        rest: Rest::Header("Idempotency-Key"),
        why: "the HTTP convention (IETF draft Idempotency-Key header)",
    },
];

fn rest_name(message: &str, field: &str) -> Option<Rest> {
    REST_NAMES
        .iter()
        .find(|name| name.message == message && name.field == field)
        .map(|name| name.rest)
}

#[test]
fn the_table_names_real_fields_and_agrees_with_the_edges_error_mapping() {
    let contract = Contract::load();
    for name in REST_NAMES {
        assert!(
            contract.message(name.message).field(name.field).is_some(),
            "REST_NAMES: {}.{} is not a proto field",
            name.message,
            name.field
        );
    }
    // The edge renames chat-service's field violations with its own tables
    // (dto::history, dto::message): they must say what this one says.
    let renamed_in = |message: &str| -> BTreeSet<(String, String)> {
        REST_NAMES
            .iter()
            .filter(|name| name.message == message)
            .filter_map(|name| match name.rest {
                Rest::Query(rest) | Rest::Header(rest) => {
                    Some((name.field.to_owned(), rest.to_owned()))
                }
                Rest::Key(_) | Rest::ShownUnder(_) => None,
            })
            .collect()
    };
    let pairs = |table: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        table
            .iter()
            .map(|(field, rest)| ((*field).to_owned(), (*rest).to_owned()))
            .collect()
    };
    assert_eq!(
        renamed_in("allmine.chat.v1.ListMessagesRequest"),
        pairs(LIST_MESSAGES_REST_NAMES)
    );
    assert_eq!(
        renamed_in("allmine.chat.v1.SendMessageRequest"),
        pairs(dto::SEND_MESSAGE_REST_NAMES)
    );
}

/// Request side: each rule's non-path fields, under their REST names, are
/// accepted by the edge's parser for that RPC (a body or a query string);
/// a field the table moves elsewhere is refused under its proto name.
#[test]
fn requests_use_the_json_names_or_the_tables() {
    let contract = Contract::load();
    for (rpc, rule) in ruled(&contract) {
        let input = contract.message(&rpc.input);
        let in_path = variables(&rule.path);
        let rest_fields: Vec<_> = input
            .fields
            .iter()
            .filter(|field| !in_path.contains(&field.name.as_str()))
            .collect();
        match rule.body.as_str() {
            "*" => {
                let mut body = Map::new();
                let mut elsewhere = Vec::new();
                for field in &rest_fields {
                    match rest_name(&rpc.input, &field.name) {
                        None => {
                            body.insert(field.json_name.clone(), json_sample(&field.kind));
                        }
                        Some(Rest::Key(key)) => {
                            body.insert(key.to_owned(), json_sample(&field.kind));
                        }
                        Some(Rest::Header(_) | Rest::ShownUnder(_)) => elsewhere.push(*field),
                        Some(Rest::Query(_)) => panic!("{}: a query name in a body", rpc.name),
                    }
                }
                assert_eq!(
                    parse_body(&rpc.name, Value::Object(body.clone())),
                    Ok(()),
                    "{}: the body of every REST-named field",
                    rpc.name
                );
                for field in elsewhere {
                    let mut misplaced = body.clone();
                    misplaced.insert(field.json_name.clone(), json_sample(&field.kind));
                    assert!(
                        parse_body(&rpc.name, Value::Object(misplaced)).is_err(),
                        "{}: `{}` is not read from the body",
                        rpc.name,
                        field.json_name
                    );
                }
            }
            "" => {
                let mut query = Vec::new();
                let mut renamed = Vec::new();
                for field in &rest_fields {
                    let sample = query_sample(&field.kind);
                    match rest_name(&rpc.input, &field.name) {
                        None => query.push((field.json_name.clone(), sample)),
                        Some(Rest::Query(name)) => {
                            query.push((name.to_owned(), sample.clone()));
                            renamed.push((field.name.clone(), sample.clone()));
                            renamed.push((field.json_name.clone(), sample));
                        }
                        Some(Rest::Header(_) | Rest::ShownUnder(_)) => {}
                        Some(Rest::Key(_)) => panic!("{}: a body key in a query", rpc.name),
                    }
                }
                if query.is_empty() && renamed.is_empty() {
                    continue;
                }
                assert_eq!(
                    parse_query(&rpc.name, query.clone()),
                    Ok(()),
                    "{}: the query of every REST-named field",
                    rpc.name
                );
                for pair in renamed {
                    let mut with_proto_name = query.clone();
                    with_proto_name.push(pair.clone());
                    assert!(
                        parse_query(&rpc.name, with_proto_name).is_err(),
                        "{}: `{}` is not a query parameter",
                        rpc.name,
                        pair.0
                    );
                }
            }
            field => panic!("{}: body `{field}`: the edge maps only `*`", rpc.name),
        }
    }
}

fn json_sample(kind: &Kind) -> Value {
    match kind {
        Kind::String => json!("64d15f9e2e6c8f4d5a1230e5"),
        Kind::Uint32 => json!(1),
        Kind::Bool => json!(true),
        other => panic!("add a JSON sample for {other:?}"),
    }
}

fn query_sample(kind: &Kind) -> String {
    match kind {
        Kind::String => "64d15f9e2e6c8f4d5a1230e5".to_owned(),
        Kind::Uint32 => "1".to_owned(),
        other => panic!("add a query sample for {other:?}"),
    }
}

/// The edge's body parser of `rpc`.
fn parse_body(rpc: &str, body: Value) -> Result<(), String> {
    match rpc {
        "SendMessage" => serde_json::from_value::<dto::SendMessageBody>(body).map(drop),
        "BanUser" => serde_json::from_value::<dto::BanUserBody>(body).map(drop),
        other => panic!("add {other}'s body type to parse_body"),
    }
    .map_err(|error| error.to_string())
}

/// The edge's query parser of `rpc`.
fn parse_query(rpc: &str, pairs: Vec<(String, String)>) -> Result<(), Vec<String>> {
    match rpc {
        "ListMessages" => dto::ListMessagesQuery::from_query(pairs).map(drop),
        "SubscribeMessages" => dto::SubscribeQuery::from_query(pairs).map(drop),
        other => panic!("add {other}'s query type to parse_query"),
    }
}

/// Response side: each JSON the edge shows, built from a proto message with
/// every field set, has exactly the keys the descriptor and the table say,
/// nested messages included.
#[test]
fn responses_use_the_json_names_or_the_table() {
    let contract = Contract::load();
    let samples: Vec<(&str, Value)> = vec![
        (
            "allmine.chat.v1.ChatMessage",
            to_json(ChatMessageJson::from(full_message())),
        ),
        (
            "allmine.chat.v1.ListMessagesResponse",
            to_json(MessagePageJson::from(pb::ListMessagesResponse {
                messages: vec![full_message()],
                next_cursor: Some("cursor".to_owned()),
            })),
        ),
        (
            "allmine.chat.v1.Ban",
            to_json(BanJson::from(pb::Ban {
                stream_id: STREAM_ID.to_owned(),
                user_id: "64d15f9e2e6c8f4d5a1230b2".to_owned(),
                expires_at: timestamp(),
                reason: Some("spam".to_owned()),
                banned_by: "64d15f9e2e6c8f4d5a1230f6".to_owned(),
                created_at: timestamp(),
            })),
        ),
        (
            "allmine.chat.v1.Stream",
            to_json(StreamJson::from(pb::Stream {
                stream_id: STREAM_ID.to_owned(),
                owner_id: "64d15f9e2e6c8f4d5a1230f6".to_owned(),
                state: pb::ChatState::Open.into(),
                slow_mode_seconds: 10,
                moderator_ids: vec!["64d15f9e2e6c8f4d5a1230b2".to_owned()],
                created_at: timestamp(),
                updated_at: timestamp(),
            })),
        ),
        (
            "allmine.chat.v1.MessageDeleted",
            to_json(MessageDeletedJson::from(pb::MessageDeleted {
                message_id: "64d15f9e2e6c8f4d5a1230a1".to_owned(),
                deleted_by: "64d15f9e2e6c8f4d5a1230f6".to_owned(),
            })),
        ),
        (
            "allmine.chat.v1.UserBanned",
            to_json(UserBannedJson::from(pb::UserBanned {
                user_id: "64d15f9e2e6c8f4d5a1230b2".to_owned(),
                expires_at: timestamp(),
            })),
        ),
        (
            "allmine.chat.v1.ChatStateChanged",
            to_json(ChatStateChangedJson::from(pb::ChatStateChanged {
                state: pb::ChatState::Closed.into(),
            })),
        ),
        (
            "allmine.chat.v1.Gap",
            to_json(GapJson::from(pb::Gap {
                reason: "lagged".to_owned(),
            })),
        ),
    ];
    let mut problems = Vec::new();
    for (message, json) in &samples {
        check_keys(&contract, message, json, message, &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Compares `json`'s keys with `message`'s fields (renamed by the table) and
/// recurses into nested messages; `at` names the place for the report.
fn check_keys(
    contract: &Contract,
    message: &str,
    json: &Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    let Some(object) = json.as_object() else {
        problems.push(format!("{at}: not a JSON object: {json}"));
        return;
    };
    let mut expected = BTreeSet::new();
    for field in &contract.message(message).fields {
        let key = match rest_name(message, &field.name) {
            None => field.json_name.clone(),
            Some(Rest::Key(key)) => key.to_owned(),
            Some(Rest::ShownUnder(parent)) if !at.starts_with(parent) => continue,
            Some(Rest::ShownUnder(_)) => field.json_name.clone(),
            Some(rest @ (Rest::Query(_) | Rest::Header(_))) => {
                problems.push(format!("{at}.{}: {rest:?} in a response", field.name));
                continue;
            }
        };
        if let Kind::Message(nested) = &field.kind {
            let plain =
                nested.starts_with("google.protobuf.") || contract.message(nested).map_entry;
            let values = match object.get(&key) {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(value) => vec![value],
                None => Vec::new(),
            };
            for value in values.into_iter().filter(|_| !plain) {
                check_keys(contract, nested, value, &format!("{at}.{key}"), problems);
            }
        }
        expected.insert(key);
    }
    let actual: BTreeSet<String> = object.keys().cloned().collect();
    if actual != expected {
        problems.push(format!(
            "{at}: REST has {:?} that the contract does not name, and lacks {:?}",
            actual.difference(&expected).collect::<Vec<_>>(),
            expected.difference(&actual).collect::<Vec<_>>()
        ));
    }
}

fn to_json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("serializable")
}

fn timestamp() -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: 1_768_473_000,
        nanos: 0,
    })
}

/// A message with every field set, nested ones included.
fn full_message() -> pb::ChatMessage {
    pb::ChatMessage {
        id: "64d15f9e2e6c8f4d5a1230a1".to_owned(),
        stream_id: STREAM_ID.to_owned(),
        content: "hello".to_owned(),
        sender: Some(pb::Sender {
            id: "64d15f9e2e6c8f4d5a1230b2".to_owned(),
            username: Some("johndoe".to_owned()),
            name: Some("John".to_owned()),
            surname: Some("Doe".to_owned()),
            profile_photo: Some(pb::ProfilePhoto {
                id: "64d15f9e2e6c8f4d5a1230c3".to_owned(),
                url: "https://cdn.example/photo.jpg".to_owned(),
                r#type: "image".to_owned(),
                variants: [("40".to_owned(), "https://cdn.example/40.jpg".to_owned())].into(),
                created_at: timestamp(),
                updated_at: timestamp(),
            }),
            availability_status: Some("online".to_owned()),
        }),
        created_at: timestamp(),
        updated_at: timestamp(),
        cursor: "cursor".to_owned(),
    }
}
