//! The rules a message must pass besides validation: the stream's chat must
//! be open, the sender not banned, and within slow mode and the burst limit.

mod burst;
mod send_policy;

pub use burst::{BurstLimiter, BurstRefusal, BurstSettings};
pub use send_policy::{SendPolicy, SendRecord, SendVerdict, SharedPolicy};
