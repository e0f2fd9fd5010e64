//! Settings of the ScyllaDB store (filled from `CHAT_SCYLLA_*`).

use std::time::Duration;

use scylla::frame::types::Consistency;

use super::schema::Replication;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct ScyllaSettings {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub replication: Replication,
    pub consistency: ConsistencyLevel,
    /// Per-statement timeout; keep it below the callers' gRPC deadline so a
    /// slow database answers UNAVAILABLE instead of a deadline error.
    pub request_timeout: Duration,
    /// How long start-up keeps trying to reach the cluster.
    pub connect_timeout: Duration,
    pub credentials: Option<(String, Secret)>,
    /// Message retention; `None` keeps messages forever.
    pub ttl: Option<Duration>,
    pub bucket_width: Duration,
}

/// The consistency levels that make sense for chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsistencyLevel {
    /// One replica: a single local node, or when latency beats consistency.
    One,
    LocalOne,
    /// A majority in the local datacenter: acknowledged messages survive the
    /// loss of a minority of replicas, and reads see them.
    LocalQuorum,
    Quorum,
}

impl From<ConsistencyLevel> for Consistency {
    fn from(level: ConsistencyLevel) -> Self {
        match level {
            ConsistencyLevel::One => Consistency::One,
            ConsistencyLevel::LocalOne => Consistency::LocalOne,
            ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
            ConsistencyLevel::Quorum => Consistency::Quorum,
        }
    }
}
