//! The real chat-service binary as a child process, for tests that kill it
//! (`kill -9`) and start it again on the same store and port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::transport::Channel;

use crate::TEST_SECRET;
use crate::grpc::Admin;

/// How to start the binary: its path (`env!("CARGO_BIN_EXE_chat-service")`
/// in chat-service's own tests), its port and its environment.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    binary: PathBuf,
    port: u16,
    env: Vec<(String, String)>,
}

impl ProcessConfig {
    /// The binary on a free port with the test secret and the embedded store
    /// in `data_dir`.
    pub fn embedded(binary: &Path, data_dir: &Path) -> Self {
        Self::new(binary).env("CHAT_DATA_DIR", &data_dir.to_string_lossy())
    }

    /// The binary on the ScyllaDB store at `nodes` (comma-separated), in
    /// `keyspace` (created at start-up if missing).
    pub fn scylla(binary: &Path, nodes: &str, keyspace: &str) -> Self {
        Self::new(binary)
            .env("CHAT_STORE", "scylla")
            .env("CHAT_SCYLLA_NODES", nodes)
            .env("CHAT_SCYLLA_KEYSPACE", keyspace)
    }

    fn new(binary: &Path) -> Self {
        let port = free_port();
        Self {
            binary: binary.to_owned(),
            port,
            env: vec![
                ("CHAT_GRPC_ADDR".into(), format!("127.0.0.1:{port}")),
                ("CHAT_JWT_SECRET".into(), TEST_SECRET.into()),
                ("RUST_LOG".into(), "warn".into()),
            ],
        }
    }

    /// Sets one more environment variable (a setting of chat-service).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A running chat-service process; killed when dropped.
pub struct ServiceProcess {
    config: ProcessConfig,
    child: Child,
}

impl ServiceProcess {
    pub fn start(config: ProcessConfig) -> Self {
        let child = spawn(&config);
        Self { config, child }
    }

    /// `kill -9`: no chance to flush or drain anything.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// Starts the binary again with the same configuration (same port, same
    /// store), after [`Self::kill_9`].
    pub fn restart(&mut self) {
        self.child = spawn(&self.config);
    }

    pub fn port(&self) -> u16 {
        self.config.port
    }

    /// A channel to the service, retrying while the process starts
    /// (bounded: a process that never listens fails the test).
    pub async fn channel(&self) -> Channel {
        let uri = format!("http://127.0.0.1:{}", self.config.port);
        for _ in 0..600 {
            if let Ok(channel) = Channel::from_shared(uri.clone())
                .expect("uri")
                .connect()
                .await
            {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chat-service did not start on port {}", self.config.port);
    }

    /// Registers `stream` (with a new owner) through the admin service, as
    /// the stream service would.
    pub async fn register_stream(&self, stream: &str) {
        Admin::new(self.channel().await, crate::TokenBuilder::service().build())
            .register(stream, &crate::random_object_id())
            .await;
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &ProcessConfig) -> Child {
    Command::new(&config.binary)
        .envs(config.env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("chat-service binary starts")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    crate::unused_addr().port()
}
