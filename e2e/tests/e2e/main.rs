//! End-to-end: public REST calls through the real http-edge to the real
//! chat-service, each on ephemeral ports, on both stores.

mod chat_rules;
mod database_faults;
mod full_disk;
mod helpers;
mod hostile_clients;
mod idempotent_send;
mod join_live;
mod live_events;
mod live_start;
mod reading;
mod send_message;
mod service_availability;
