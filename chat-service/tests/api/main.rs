//! Integration tests of chat-service: real gRPC servers on ephemeral ports,
//! started through the same `Application` as production. One test binary
//! for all of them (faster to link, shared helpers).

mod auth;
mod durability;
mod helpers;
mod history;
mod idempotency_contract;
mod idempotent_send;
mod live;
mod reflection_and_health;
mod rules;
mod send_message;
mod state_contract;
mod storage_contract;
