//! The two storage backends as test fixtures, and a macro that instantiates
//! a scenario once per backend. ScyllaDB tests run against the CQL node at
//! `CHAT_SCYLLA_NODES` (default 127.0.0.1:9042; `scripts/test.sh` starts a
//! Cassandra there when none answers). They are never skipped: without a
//! database they fail and say why.

use std::sync::Arc;
use std::time::Duration;

use chat_service::storage::SharedStore;
use chat_service::storage::embedded::EmbeddedStore;
use chat_service::storage::scylla::{ConsistencyLevel, Replication, ScyllaSettings, ScyllaStore};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Scylla,
}

/// One store's location (a directory, or a keyspace of its own), which can be
/// opened, closed and reopened like a service restart would.
pub struct StoreFixture {
    backend: Backend,
    directory: TempDir,
    keyspace: String,
    pub bucket_width: Duration,
}

impl StoreFixture {
    pub fn new(backend: Backend) -> Self {
        Self::with_bucket_width(backend, Duration::from_secs(60))
    }

    pub fn with_bucket_width(backend: Backend, bucket_width: Duration) -> Self {
        Self {
            backend,
            directory: tempfile::tempdir().unwrap(),
            keyspace: format!("chat_test_{}", crate::random_object_id()),
            bucket_width,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The embedded store's directory (unused by the ScyllaDB backend).
    pub fn directory(&self) -> &std::path::Path {
        self.directory.path()
    }

    /// The ScyllaDB keyspace (unused by the embedded backend).
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Opens the store (again, after a previous handle was dropped).
    pub async fn open(&self) -> SharedStore {
        match self.backend {
            Backend::Embedded => Arc::new(EmbeddedStore::open(self.directory.path()).unwrap()),
            Backend::Scylla => Arc::new(self.open_scylla().await),
        }
    }

    pub async fn open_scylla(&self) -> ScyllaStore {
        let settings = scylla_settings(&self.keyspace, self.bucket_width);
        match ScyllaStore::connect(&settings).await {
            Ok(store) => store,
            Err(error) => panic!(
                "no CQL database for the ScyllaDB tests at {:?}: {error}. \
                 Run scripts/test.sh (it starts Cassandra when none answers) or set CHAT_SCYLLA_NODES.",
                settings.nodes
            ),
        }
    }

    /// Removes what the fixture created in a shared database.
    pub async fn cleanup(self) {
        if self.backend == Backend::Scylla {
            self.open_scylla().await.drop_keyspace().await.unwrap();
        }
    }
}

pub fn scylla_nodes() -> Vec<String> {
    std::env::var("CHAT_SCYLLA_NODES")
        .unwrap_or_else(|_| "127.0.0.1:9042".into())
        .split(',')
        .map(|node| node.trim().to_owned())
        .filter(|node| !node.is_empty())
        .collect()
}

pub fn scylla_settings(keyspace: &str, bucket_width: Duration) -> ScyllaSettings {
    ScyllaSettings {
        nodes: scylla_nodes(),
        keyspace: keyspace.into(),
        replication: Replication::Simple(1),
        consistency: ConsistencyLevel::LocalQuorum,
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(10),
        credentials: None,
        ttl: None,
        bucket_width,
    }
}

/// Instantiates each named `async fn(Backend)` scenario as one test per
/// backend: `embedded::name` and `scylla::name`.
#[macro_export]
macro_rules! for_each_backend {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::backends::Backend::Embedded).await;
                }
            )*
        }
        mod scylla {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::backends::Backend::Scylla).await;
                }
            )*
        }
    };
}
