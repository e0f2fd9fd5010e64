//! What the contract test needs from the descriptor set that the proto crate
//! embeds ([`allmine_chat_proto::FILE_DESCRIPTOR_SET`]): each RPC with its
//! `google.api.http` rule, and each message's fields.
//!
//! Read straight from the protobuf wire format: http-edge does not depend on
//! prost (the generated code is the proto crate's), and a generic decoder
//! would drop the `google.api.http` extension anyway (it is an unknown field
//! of `MethodOptions`). Only the descriptor.proto fields used here are read;
//! the others are skipped.

use std::collections::BTreeMap;

/// The `google.api.http` extension's field number in `MethodOptions`.
const HTTP_RULE_EXTENSION: u32 = 72_295_728;

/// The contract as the test sees it.
#[derive(Debug)]
pub struct Contract {
    pub rpcs: Vec<Rpc>,
    /// By fully-qualified name, without the leading dot
    /// (`allmine.chat.v1.ChatMessage`).
    pub messages: BTreeMap<String, Message>,
}

#[derive(Debug)]
pub struct Rpc {
    /// Fully qualified (`allmine.chat.v1.ChatService`).
    pub service: String,
    pub name: String,
    /// Fully qualified, without the leading dot.
    pub input: String,
    pub http: Option<HttpRule>,
}

/// A `google.api.HttpRule`, as far as http-edge can serve one.
#[derive(Debug)]
pub struct HttpRule {
    /// `GET`, `PUT`, `POST`, `DELETE`, `PATCH`, or a custom verb.
    pub method: String,
    /// The path template with proto field names (`{stream_id}`).
    pub path: String,
    /// `""` (no body), `"*"` or a field name.
    pub body: String,
    pub additional_bindings: usize,
}

#[derive(Debug, Default)]
pub struct Message {
    pub fields: Vec<Field>,
    /// The synthetic entry message of a `map<_, _>` field.
    pub map_entry: bool,
}

#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub json_name: String,
    pub kind: Kind,
}

/// The field types the contract uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    String,
    Uint32,
    Bool,
    Enum,
    /// A message type: fully qualified, without the leading dot.
    Message(String),
    Other(u64),
}

impl Message {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }
}

impl Contract {
    pub fn load() -> Self {
        let mut contract = Contract {
            rpcs: Vec::new(),
            messages: BTreeMap::new(),
        };
        for (number, value) in fields(allmine_chat_proto::FILE_DESCRIPTOR_SET) {
            if number == 1 {
                contract.read_file(value.bytes());
            }
        }
        contract
    }

    pub fn message(&self, name: &str) -> &Message {
        self.messages
            .get(name)
            .unwrap_or_else(|| panic!("message {name} is in the descriptor set"))
    }

    /// FileDescriptorProto: 2 package, 4 message_type, 6 service.
    fn read_file(&mut self, file: &[u8]) {
        let package = fields(file)
            .into_iter()
            .find(|(number, _)| *number == 2)
            .map(|(_, value)| value.string())
            .unwrap_or_default();
        for (number, value) in fields(file) {
            match number {
                4 => self.read_message(&package, value.bytes()),
                6 => self.read_service(&package, value.bytes()),
                _ => {}
            }
        }
    }

    /// DescriptorProto: 1 name, 2 field, 3 nested_type, 7 options
    /// (MessageOptions: 7 map_entry).
    fn read_message(&mut self, scope: &str, descriptor: &[u8]) {
        let mut name = String::new();
        let mut message = Message::default();
        let mut nested = Vec::new();
        for (number, value) in fields(descriptor) {
            match number {
                1 => name = value.string(),
                2 => message.fields.push(read_field(value.bytes())),
                3 => nested.push(value.bytes()),
                7 => {
                    message.map_entry = fields(value.bytes())
                        .into_iter()
                        .any(|(number, value)| number == 7 && value.varint() == 1);
                }
                _ => {}
            }
        }
        let full_name = format!("{scope}.{name}");
        for inner in nested {
            self.read_message(&full_name, inner);
        }
        self.messages.insert(full_name, message);
    }

    /// ServiceDescriptorProto: 1 name, 2 method.
    fn read_service(&mut self, package: &str, descriptor: &[u8]) {
        let service = fields(descriptor)
            .into_iter()
            .find(|(number, _)| *number == 1)
            .map(|(_, value)| format!("{package}.{}", value.string()))
            .expect("a service has a name");
        for (number, value) in fields(descriptor) {
            if number == 2 {
                self.rpcs.push(read_method(&service, value.bytes()));
            }
        }
    }
}

/// FieldDescriptorProto: 1 name, 5 type, 6 type_name, 10 json_name.
fn read_field(descriptor: &[u8]) -> Field {
    let (mut name, mut json_name, mut kind, mut type_name) =
        (String::new(), String::new(), 0, String::new());
    for (number, value) in fields(descriptor) {
        match number {
            1 => name = value.string(),
            5 => kind = value.varint(),
            6 => type_name = value.string(),
            10 => json_name = value.string(),
            _ => {}
        }
    }
    let kind = match kind {
        8 => Kind::Bool,
        9 => Kind::String,
        13 => Kind::Uint32,
        14 => Kind::Enum,
        11 => Kind::Message(type_name.trim_start_matches('.').to_owned()),
        other => Kind::Other(other),
    };
    if json_name.is_empty() {
        json_name = lower_camel_case(&name);
    }
    Field {
        name,
        json_name,
        kind,
    }
}

/// MethodDescriptorProto: 1 name, 2 input_type, 4 options.
fn read_method(service: &str, descriptor: &[u8]) -> Rpc {
    let mut rpc = Rpc {
        service: service.to_owned(),
        name: String::new(),
        input: String::new(),
        http: None,
    };
    for (number, value) in fields(descriptor) {
        match number {
            1 => rpc.name = value.string(),
            2 => rpc.input = value.string().trim_start_matches('.').to_owned(),
            4 => {
                rpc.http = fields(value.bytes())
                    .into_iter()
                    .find(|(number, _)| *number == HTTP_RULE_EXTENSION)
                    .map(|(_, rule)| read_http_rule(rule.bytes()));
            }
            _ => {}
        }
    }
    rpc
}

/// HttpRule: 2 get, 3 put, 4 post, 5 delete, 6 patch, 7 body, 8 custom
/// (CustomHttpPattern: 1 kind, 2 path), 11 additional_bindings.
fn read_http_rule(rule: &[u8]) -> HttpRule {
    let mut http = HttpRule {
        method: String::new(),
        path: String::new(),
        body: String::new(),
        additional_bindings: 0,
    };
    for (number, value) in fields(rule) {
        let method = match number {
            2 => "GET",
            3 => "PUT",
            4 => "POST",
            5 => "DELETE",
            6 => "PATCH",
            7 => {
                http.body = value.string();
                continue;
            }
            8 => {
                for (number, part) in fields(value.bytes()) {
                    match number {
                        1 => http.method = part.string(),
                        2 => http.path = part.string(),
                        _ => {}
                    }
                }
                continue;
            }
            11 => {
                http.additional_bindings += 1;
                continue;
            }
            _ => continue,
        };
        http.method = method.to_owned();
        http.path = value.string();
    }
    http
}

/// The proto3 JSON name protoc derives: underscores dropped, the letter after
/// each one upper-cased.
pub fn lower_camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for character in name.chars() {
        if character == '_' {
            upper = true;
        } else if upper {
            out.extend(character.to_uppercase());
            upper = false;
        } else {
            out.push(character);
        }
    }
    out
}

/// One field's value on the wire.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Value<'a> {
    fn bytes(self) -> &'a [u8] {
        match self {
            Value::Bytes(bytes) => bytes,
            other => panic!("expected a length-delimited field, got {other:?}"),
        }
    }

    fn string(self) -> String {
        String::from_utf8(self.bytes().to_vec()).expect("UTF-8 in a descriptor string")
    }

    fn varint(self) -> u64 {
        match self {
            Value::Varint(value) => value,
            other => panic!("expected a varint, got {other:?}"),
        }
    }
}

/// The (field number, value) pairs of one encoded message, in order.
fn fields(mut input: &[u8]) -> Vec<(u32, Value<'_>)> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let key = varint(&mut input);
        let number = u32::try_from(key >> 3).expect("a field number fits in 32 bits");
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut input)),
            1 => {
                take(&mut input, 8);
                Value::Fixed
            }
            2 => {
                let length = usize::try_from(varint(&mut input)).expect("a small length");
                Value::Bytes(take(&mut input, length))
            }
            5 => {
                take(&mut input, 4);
                Value::Fixed
            }
            wire_type => panic!("unexpected wire type {wire_type} in a descriptor"),
        };
        out.push((number, value));
    }
    out
}

fn varint(input: &mut &[u8]) -> u64 {
    let mut value = 0_u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().expect("a complete varint");
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("a varint longer than 10 bytes")
}

fn take<'a>(input: &mut &'a [u8], length: usize) -> &'a [u8] {
    assert!(input.len() >= length, "a truncated descriptor");
    let (head, rest) = input.split_at(length);
    *input = rest;
    head
}

#[test]
fn json_names_are_lower_camel_case() {
    assert_eq!(lower_camel_case("stream_id"), "streamId");
    assert_eq!(lower_camel_case("slow_mode_seconds"), "slowModeSeconds");
    assert_eq!(lower_camel_case("content"), "content");
}
