//! A 3-node Cassandra cluster for the node-loss tests, run through
//! `scripts/cassandra-cluster.sh`: node N on 127.0.0.N, every node on the
//! same ports (`CHAT_CLUSTER_CQL_PORT` / `CHAT_CLUSTER_STORAGE_PORT`, default
//! 9342 / 7300, so it sits next to the shared node on 127.0.0.1:9042), each
//! with its own run directory under `.cache/cassandra-cluster` and 512 MB of
//! heap. Tests stop and resume single nodes to take replicas, or the quorum,
//! away.
//!
//! One cluster per machine: only one test may hold a [`TestCluster`] at a
//! time (its own test binary, which cargo runs alone).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// The cluster; every node is stopped when it is dropped (even if the test
/// fails).
pub struct TestCluster {
    _private: (),
}

impl TestCluster {
    /// Starts a fresh cluster (data of an earlier one wiped) and waits until
    /// every node answers CQL and sees the two others.
    pub async fn start() -> Arc<Self> {
        let cluster = Arc::new(Self { _private: () });
        cluster.run_async(&["start"]).await;
        cluster
    }

    /// The CQL contact points, `127.0.0.N:<port>`, one per node.
    pub fn contact_points(&self) -> Vec<String> {
        let port = std::env::var("CHAT_CLUSTER_CQL_PORT").unwrap_or_else(|_| "9342".into());
        (1..=3)
            .map(|node| format!("127.0.0.{node}:{port}"))
            .collect()
    }

    /// Stops node `node` (1..=3) cleanly: it drains and tells its peers, so
    /// they stop counting on it at once.
    pub async fn stop_node(self: &Arc<Self>, node: u8) {
        self.run_async(&["stop-node", &node.to_string()]).await;
    }

    /// Starts node `node` again on its data, and waits until it answers CQL
    /// and the running nodes see it up.
    pub async fn resume_node(self: &Arc<Self>, node: u8) {
        self.run_async(&["resume-node", &node.to_string()]).await;
    }

    fn run(&self, args: &[String]) {
        let status = Command::new("bash")
            .arg(repo().join("scripts/cassandra-cluster.sh"))
            .args(args)
            .status()
            .expect("scripts/cassandra-cluster.sh runs");
        assert!(
            status.success(),
            "scripts/cassandra-cluster.sh {} failed",
            args.join(" ")
        );
    }

    /// [`Self::run`] off the async runtime (the script waits for the nodes).
    async fn run_async(self: &Arc<Self>, args: &[&str]) {
        let cluster = Arc::clone(self);
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        tokio::task::spawn_blocking(move || cluster.run(&args))
            .await
            .expect("script task");
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.run(&["stop".to_owned()]);
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
