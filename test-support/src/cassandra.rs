//! A private Cassandra node for fault tests: started, stopped and resumed
//! through `scripts/cassandra.sh`, on its own ports
//! (`CHAT_FAULT_CASSANDRA_PORT` / `CHAT_FAULT_CASSANDRA_STORAGE_PORT`,
//! default 9142 / 7100) and run directory (`.cache/cassandra-faults`), so that
//! stopping it disturbs no test using the shared node.
//!
//! One node per machine: two test binaries must not use it at once (cargo
//! runs test binaries one after another; inside one binary, only one test
//! may hold a `PrivateCassandra`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// The node; it is stopped when dropped (even if the test fails).
pub struct PrivateCassandra {
    port: String,
    storage_port: String,
    run_dir: PathBuf,
}

impl Default for PrivateCassandra {
    fn default() -> Self {
        Self::new()
    }
}

impl PrivateCassandra {
    pub fn new() -> Self {
        Self {
            port: std::env::var("CHAT_FAULT_CASSANDRA_PORT").unwrap_or_else(|_| "9142".into()),
            storage_port: std::env::var("CHAT_FAULT_CASSANDRA_STORAGE_PORT")
                .unwrap_or_else(|_| "7100".into()),
            run_dir: repo().join(".cache").join("cassandra-faults"),
        }
    }

    /// Its CQL contact point, `127.0.0.1:<port>`.
    pub fn node(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `scripts/cassandra.sh <command>` (`start`, `stop`, `resume`) for
    /// this node, panicking if it fails.
    pub fn run(&self, command: &str) {
        let status = Command::new("bash")
            .arg(repo().join("scripts/cassandra.sh"))
            .arg(command)
            .env("CASSANDRA_PORT", &self.port)
            .env("CASSANDRA_STORAGE_PORT", &self.storage_port)
            .env("CASSANDRA_RUN_DIR", &self.run_dir)
            .status()
            .expect("scripts/cassandra.sh runs");
        assert!(status.success(), "scripts/cassandra.sh {command} failed");
    }

    /// [`Self::run`] off the async runtime (the script waits for the node).
    pub async fn run_async(self: &Arc<Self>, command: &'static str) {
        let node = Arc::clone(self);
        tokio::task::spawn_blocking(move || node.run(command))
            .await
            .expect("script task");
    }
}

impl Drop for PrivateCassandra {
    fn drop(&mut self) {
        self.run("stop");
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
