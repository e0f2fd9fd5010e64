//! Integration tests of chat-service: real gRPC servers on ephemeral ports,
//! started through the same `Application` as production. One test binary
//! for all of them (faster to link, shared helpers).

mod auth;
mod durability;
mod full_disk;
mod gated_store;
mod grpc_web_cors;
mod helpers;
mod history;
mod history_checks;
mod idempotency_contract;
mod idempotent_send;
mod limits;
mod live;
mod live_encoding;
mod live_instances;
mod live_start;
mod metrics;
mod raw_h2;
mod reflection_and_health;
mod refusal_reasons;
mod rules;
mod send_message;
mod state_contract;
mod storage_contract;
mod store_damage;
mod stored_records;
mod token_lifetime;
