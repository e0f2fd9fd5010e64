//! Integration tests of http-edge: the real edge (through [`Application`]) in
//! front of a real, scripted gRPC server, both on ephemeral ports.
//!
//! One binary for all of them, so that cargo links once.
//!
//! [`Application`]: http_edge::Application

mod availability;
mod bans;
mod contract;
mod cors;
mod delete_message;
mod events;
mod fake_chat;
mod grpc_errors;
mod health;
mod helpers;
mod history;
mod hostile;
mod idempotency;
mod lifecycle;
mod metrics;
mod moderators;
mod openapi;
mod raw;
mod refusal_reasons;
mod rejections;
mod request_id;
mod routes;
mod send_message;
mod web_page;
