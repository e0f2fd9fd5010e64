//! The fan-out tree through real servers (issue 15): chat-service in process
//! with its `/metrics` listener, and edges in front of it that share one
//! upstream subscription per stream between their SSE clients
//! (`EDGE_UPSTREAM_TOKEN`).
//!
//! A binary of its own, its tests one at a time: `chat_live_subscribers` and
//! `edge_event_feeds_open` are process-wide gauges, and these tests count on
//! them exactly ("many SSE clients on one edge are one subscription").

mod fleet;
mod join;
mod laggard;
mod linger;
mod resume;
mod sharing;
