//! Section 4c: SSE viewers through several http-edges (2 by default) on one
//! stream, and what chat-service pays for them.
//!
//! - **tree**: each edge has `EDGE_UPSTREAM_TOKEN` (a `service` token the
//!   suite mints with the secret it gives chat-service), so it holds one
//!   upstream `SubscribeMessages` for the stream whatever its viewer count
//!   (docs/live.md, "Through the edge"); chat-service's
//!   `chat_live_subscribers`, read from its `/metrics` while the viewers
//!   are connected, must be the number of edges.
//! - **relay**: the same edges without the token: every viewer is an
//!   upstream subscription of its own (the edge before issue 15), the
//!   comparison.
//!
//! The sender sends gRPC to chat-service directly, so that the edges' CPU
//! is their fan-out alone. Viewers are spread evenly over the edges; the
//! counts are per edge. Each viewer holds a socket in this process, so the
//! count is capped by the open-file limit (`ulimit -n`): the point then
//! says what was asked and what was reached.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::Suite;
use super::fanout::Setup;
use super::register_stream;
use super::results::FanoutPoint;
use crate::fanout::{Follow, Sender};
use crate::payload;
use crate::process::{Server, free_local_addr};

/// [`FanoutPoint::target`] of the tree's points.
pub const EDGE_TREE: &str = "edge tree";
/// [`FanoutPoint::target`] of the relay's points.
pub const EDGE_RELAY: &str = "edge relay";

/// Open files this process keeps for everything but viewers (the sender's
/// connections, the runtime, logs, scrapes).
const RESERVED_FILES: usize = 256;

/// Upstream subscriptions per HTTP/2 connection a relaying edge is given at
/// most: under chat-service's `CHAT_MAX_SUBSCRIPTIONS_PER_CONNECTION`
/// (2,000) and `CHAT_MAX_CONCURRENT_STREAMS` (2,500).
const RELAY_STREAMS_PER_CONNECTION: usize = 1_500;

#[derive(Debug, Clone, Serialize)]
pub struct EdgeFanoutConfig {
    pub edges: usize,
    /// Viewers per edge, fan-out tree.
    pub tree_viewers: Vec<usize>,
    /// Viewers per edge, relay.
    pub relay_viewers: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tree,
    Relay,
}

impl Mode {
    fn target(self) -> &'static str {
        match self {
            Self::Tree => EDGE_TREE,
            Self::Relay => EDGE_RELAY,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Tree => "tree",
            Self::Relay => "relay",
        }
    }
}

impl Suite {
    /// Every section 4c point, smallest count first, tree then relay at
    /// each; a failed point is a failure of the run, not the end of it.
    pub(super) async fn edge_fanout(&mut self) -> Vec<FanoutPoint> {
        let config = self.config.fanout.edges.clone();
        let mut counts: Vec<usize> = config
            .tree_viewers
            .iter()
            .chain(&config.relay_viewers)
            .copied()
            .collect();
        counts.sort_unstable();
        counts.dedup();
        let mut points = Vec::new();
        for per_edge in counts {
            for (mode, wanted) in [
                (Mode::Tree, &config.tree_viewers),
                (Mode::Relay, &config.relay_viewers),
            ] {
                if !wanted.contains(&per_edge) {
                    continue;
                }
                match self
                    .through_edges(mode, config.edges.max(1), per_edge)
                    .await
                {
                    Ok(point) => {
                        self.check_edges(mode, &point);
                        points.push(point);
                    }
                    Err(error) => self.failures.push(format!(
                        "fan-out, sse through {} edges ({}), {per_edge} viewers each: {error:#}",
                        config.edges,
                        mode.name()
                    )),
                }
            }
        }
        points
    }

    /// chat-service, `edges` edges in front of it, `per_edge` viewers at
    /// each (fewer if the open-file limit says so).
    async fn through_edges(
        &mut self,
        mode: Mode,
        edges: usize,
        per_edge: usize,
    ) -> anyhow::Result<FanoutPoint> {
        let reached = per_edge.min(viewer_cap() / edges);
        anyhow::ensure!(
            reached > 0,
            "the open-file limit leaves no room for viewers"
        );
        let chat = self.start_fanout_chat().await?;
        // Every viewer of an edge is a connection and an event stream there.
        let room = (reached + 100).to_string();
        let token = (mode == Mode::Tree).then(payload::service_token);
        let mut servers = Vec::with_capacity(edges);
        let mut addrs = Vec::with_capacity(edges);
        for index in 1..=edges {
            let addr = free_local_addr()?;
            let mut env: BTreeMap<String, String> = [
                ("EDGE_MAX_CONNECTIONS", room.clone()),
                ("EDGE_MAX_EVENT_STREAMS", room.clone()),
                ("EDGE_METRICS_ADDR", free_local_addr()?.to_string()),
            ]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
            match &token {
                Some(token) => {
                    env.insert("EDGE_UPSTREAM_TOKEN".to_owned(), token.clone());
                }
                None => {
                    let connections = reached.div_ceil(RELAY_STREAMS_PER_CONNECTION).clamp(4, 64);
                    env.insert(
                        "EDGE_UPSTREAM_STREAM_CONNECTIONS".to_owned(),
                        connections.to_string(),
                    );
                }
            }
            let name = format!("http-edge-{}-{index}", mode.name());
            servers.push(self.spawn_edge_with(&name, addr, chat.addr, env)?);
            addrs.push(addr);
        }
        let outcome = async {
            for (server, addr) in servers.iter_mut().zip(&addrs) {
                server.wait_for_port(*addr, Duration::from_secs(20)).await?;
            }
            let stream_id = register_stream(chat.addr).await?;
            let mut watched: Vec<&Server> = servers.iter().collect();
            watched.push(&chat.server);
            self.measure_fanout(Setup {
                transport: "sse",
                target: mode.target(),
                follow: Follow::Sse(addrs.clone()),
                stream_id: &stream_id,
                subscribers: reached * edges,
                sender: Sender::grpc(chat.addr, &stream_id).await?,
                servers: watched,
                metrics: Some(chat.metrics),
            })
            .await
        }
        .await;
        for server in servers {
            server.stop(Duration::from_secs(10)).await?;
        }
        chat.stop().await?;
        let mut point = outcome?;
        point.requested_subscribers = per_edge * edges;
        Ok(point)
    }

    /// The tree's criterion checked from outside: chat-service counts one
    /// subscription per edge, however many viewers.
    fn check_edges(&mut self, mode: Mode, point: &FanoutPoint) {
        if mode != Mode::Tree {
            return;
        }
        let expected = point.edges as f64;
        if point.live_subscribers.is_empty()
            || point
                .live_subscribers
                .iter()
                .any(|&seen| (seen - expected).abs() > f64::EPSILON)
        {
            self.failures.push(format!(
                "fan-out tree, {} viewers through {} edges: chat_live_subscribers read {:?}, expected {expected} (one per edge)",
                point.subscribers, point.edges, point.live_subscribers
            ));
        }
    }
}

/// Viewers this process can hold: its soft open-file limit, less what it
/// keeps for itself; no cap when the limit cannot be read.
fn viewer_cap() -> usize {
    http_edge::server::open_file_limit()
        .and_then(|limit| usize::try_from(limit).ok())
        .map_or(usize::MAX, |limit| limit.saturating_sub(RESERVED_FILES))
}
