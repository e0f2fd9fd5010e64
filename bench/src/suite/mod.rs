//! The whole suite, in the order `scripts/bench.sh` runs it:
//!
//! 1. Start the baselines (no-op gRPC, no-op HTTP), chat-service on the
//!    embedded store and http-edge in front of it, each a process of its own
//!    on the server core; measure their idle memory.
//! 2. gRPC SendMessage against the no-op RPC, per concurrency, the two
//!    alternating within each repeat so that drift on a shared machine hits
//!    both alike.
//! 3. REST send through the edge against the no-op axum route, the same way.
//! 4. Half of the embedded store's peak throughput, open loop, against the
//!    no-op RPC at the same rate.
//! 5. chat-service on the CQL database (fresh keyspace): the same sends and
//!    half-peak run; the keyspace is dropped afterwards.
//! 6. Live fan-out (section 4; 4c: SSE viewers through two edges, the
//!    fan-out tree against the relay), then newest-50 reads as a stream grows, on
//!    both stores, in this process.
//! 7. The overload experiment (section 6), in fresh processes.
//!
//! Memory is sampled from `/proc` while the top-concurrency runs go on.

mod edges;
mod fanout;
mod overload;
mod results;
mod runs;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use allmine_test_support::backends::scylla_settings;
use allmine_test_support::{TEST_SECRET, random_object_id};
use bytes::Bytes;
use chat_service::storage::MessageStore;
use chat_service::storage::embedded::EmbeddedStore;
use chat_service::storage::scylla::ScyllaStore;
use http::StatusCode;

pub use edges::{EDGE_RELAY, EDGE_TREE, EdgeFanoutConfig};
pub use fanout::FanoutConfig;
pub use overload::{OVERLOAD_GRPC, OVERLOAD_REST, OverloadPoint};
pub use results::{FanoutCpu, FanoutMemory, FanoutPoint, HalfPeak, Memory, Point, Report};
pub use runs::{
    Target, grpc_closed, grpc_open, http_closed, register_stream, register_stream_once,
};

use crate::history::{self, HistoryPlan, HistoryPoint};
use crate::load::http::HttpRequest;
use crate::load::{Plan, RunOutcome};
use crate::machine::Machine;
use crate::overload::OverloadPlan;
use crate::payload;
use crate::process::{Launch, Server, free_local_addr, rss_bytes, sibling_binary};

/// The burst limit chat-service runs with here (messages per 30 s per user):
/// high enough never to refuse a benchmark send. The limiter itself still
/// runs on every send, as in production.
pub const BENCH_BURST_LIMIT: u32 = 100_000_000;

/// Memory samples while a run goes on.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct SuiteConfig {
    pub out_dir: PathBuf,
    pub warmup: Duration,
    pub measure: Duration,
    pub repeats: usize,
    pub concurrency: Vec<usize>,
    pub max_requests: u64,
    pub history: HistoryPlan,
    /// Cassandra's history load gets its own budget (it is much slower).
    pub cassandra_load_budget: Duration,
    pub server_cpu: Option<usize>,
    pub cassandra: bool,
    /// `RUST_LOG` of chat-service and http-edge (production default: info,
    /// which makes the edge log one line per request).
    pub server_log_filter: String,
    pub fanout: FanoutConfig,
    pub overload: OverloadPlan,
    /// [`OVERLOAD_GRPC`], [`OVERLOAD_REST`] or both.
    pub overload_targets: Vec<&'static str>,
    /// Set for chat-service and http-edge in every part, on top of the
    /// suite's own settings (`EDGE_MAX_IN_FLIGHT=64`, …).
    pub server_env: Vec<(String, String)>,
    pub sections: Sections,
    pub smoke: bool,
}

/// Which parts of the suite run (all by default; `--only` picks).
#[derive(Debug, Clone, Copy)]
pub struct Sections {
    /// Sections 1, 1b, 2 and 5: sends, REST, half of peak, memory.
    pub sends: bool,
    /// Section 4.
    pub fanout: bool,
    /// Section 3.
    pub history: bool,
    /// Section 6.
    pub overload: bool,
}

struct Binaries {
    chat_service: PathBuf,
    http_edge: PathBuf,
    chat_bench: PathBuf,
}

/// The suite's settings, and what it has measured of memory and failures.
struct Suite {
    config: SuiteConfig,
    binaries: Binaries,
    plan: Plan,
    log_dir: PathBuf,
    memory: BTreeMap<String, Memory>,
    failures: Vec<String>,
}

/// The no-op servers, up for the whole suite.
struct Baselines {
    grpc: Server,
    grpc_addr: SocketAddr,
    http: Server,
    http_addr: SocketAddr,
}

/// A target of an alternating comparison, and the servers whose memory is
/// sampled while it runs at the top concurrency.
struct Contender<'a> {
    label: &'static str,
    target: Target,
    watch: Vec<&'a Server>,
}

/// The throughput and latency points, in table order.
#[derive(Default)]
struct Measured {
    grpc: Vec<Point>,
    rest: Vec<Point>,
    half_peak: Vec<HalfPeak>,
}

pub async fn run(config: SuiteConfig) -> anyhow::Result<Report> {
    let started = Instant::now();
    let machine = Machine::describe(config.server_cpu);
    std::fs::create_dir_all(&config.out_dir)?;
    let log_dir = config.out_dir.join("logs");
    let _ = std::fs::remove_dir_all(&log_dir);
    let plan = Plan {
        warmup: config.warmup,
        measure: config.measure,
        max_requests: config.max_requests,
    };
    let mut suite = Suite {
        binaries: Binaries {
            chat_service: sibling_binary("chat-service")?,
            http_edge: sibling_binary("http-edge")?,
            chat_bench: std::env::current_exe()?,
        },
        plan,
        log_dir,
        memory: BTreeMap::new(),
        failures: Vec::new(),
        config,
    };

    let mut measured = Measured::default();
    let sections = suite.config.sections;
    if sections.sends {
        let baselines = suite.start_baselines().await?;
        suite.embedded_sends(&baselines, &mut measured).await?;
        if suite.config.cassandra {
            let keyspace = format!("chat_bench_{}", random_object_id());
            let result = suite
                .cassandra_sends(&keyspace, &baselines, &mut measured)
                .await;
            runs::drop_keyspace(&keyspace).await;
            result?;
        }
        baselines.grpc.stop(Duration::from_secs(5)).await?;
        baselines.http.stop(Duration::from_secs(5)).await?;
    }
    let (fanout, edge_fanout) = if sections.fanout {
        (suite.fanout().await, suite.edge_fanout().await)
    } else {
        (Vec::new(), Vec::new())
    };
    let history = if sections.history {
        suite.history().await?
    } else {
        Vec::new()
    };
    let overload = if sections.overload {
        suite.overload().await?
    } else {
        Vec::new()
    };

    Ok(Report {
        smoke: suite.config.smoke,
        machine,
        load_average_after: crate::machine::load_average(),
        seconds: started.elapsed().as_secs_f64(),
        plan,
        repeats: suite.config.repeats,
        burst_limit: BENCH_BURST_LIMIT,
        server_log_filter: suite.config.server_log_filter.clone(),
        grpc: measured.grpc,
        rest: measured.rest,
        half_peak: measured.half_peak,
        history,
        fanout_plan: suite.config.fanout.plan,
        fanout,
        edge_fanout,
        overload_plan: suite.config.overload,
        overload,
        server_env: suite.config.server_env.clone(),
        memory: suite.memory.into_values().collect(),
        failures: suite.failures,
    })
}

impl Suite {
    async fn start_baselines(&mut self) -> anyhow::Result<Baselines> {
        let grpc_addr = free_local_addr()?;
        let mut grpc = self.spawn_bench_server("noop-grpc", "serve-noop-grpc", grpc_addr)?;
        let http_addr = free_local_addr()?;
        let mut http = self.spawn_bench_server("noop-http", "serve-noop-http", http_addr)?;
        grpc.wait_for_port(grpc_addr, Duration::from_secs(20))
            .await?;
        http.wait_for_port(http_addr, Duration::from_secs(20))
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for server in [&grpc, &http] {
            self.record_idle(&server.name, server.pid());
        }
        Ok(Baselines {
            grpc,
            grpc_addr,
            http,
            http_addr,
        })
    }

    /// chat-service on the embedded store with http-edge in front: gRPC
    /// against the no-op RPC, REST against the no-op route, half of peak.
    async fn embedded_sends(
        &mut self,
        baselines: &Baselines,
        measured: &mut Measured,
    ) -> anyhow::Result<()> {
        let data_dir = self.config.out_dir.join("data-embedded");
        let _ = std::fs::remove_dir_all(&data_dir);
        let chat_addr = free_local_addr()?;
        let mut chat = self.spawn_chat_service(
            "chat-service-embedded",
            chat_addr,
            [
                ("CHAT_STORE", "embedded".to_owned()),
                ("CHAT_DATA_DIR", data_dir.display().to_string()),
            ],
        )?;
        let edge_addr = free_local_addr()?;
        let mut edge = self.spawn_edge("http-edge", edge_addr, chat_addr)?;
        chat.wait_for_port(chat_addr, Duration::from_secs(60))
            .await?;
        edge.wait_for_port(edge_addr, Duration::from_secs(20))
            .await?;
        let stream_id = register_stream(chat_addr).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for server in [&chat, &edge] {
            self.record_idle(&server.name, server.pid());
        }

        let grpc = self
            .alternate(
                &stream_id,
                [
                    Contender {
                        label: "grpc no-op",
                        target: Target::Grpc(baselines.grpc_addr),
                        watch: vec![&baselines.grpc],
                    },
                    Contender {
                        label: "grpc send embedded",
                        target: Target::Grpc(chat_addr),
                        watch: vec![&chat],
                    },
                ],
            )
            .await?;
        measured.grpc.extend(grpc);

        let body = Bytes::from(payload::rest_body());
        let path: http::Uri = format!("/api/v1/live-stream/{stream_id}/chat/messages").parse()?;
        let rest_to = |addr| {
            Target::Http(HttpRequest {
                addr,
                path: path.clone(),
                body: body.clone(),
                expect: StatusCode::CREATED,
            })
        };
        let rest = self
            .alternate(
                &stream_id,
                [
                    Contender {
                        label: "rest no-op axum",
                        target: rest_to(baselines.http_addr),
                        watch: vec![&baselines.http],
                    },
                    Contender {
                        label: "rest send via edge",
                        target: rest_to(edge_addr),
                        watch: vec![&edge, &chat],
                    },
                ],
            )
            .await?;
        measured.rest.extend(rest);

        let half = self
            .half_peak(
                "embedded",
                "grpc send embedded",
                &measured.grpc,
                chat_addr,
                baselines.grpc_addr,
                &stream_id,
            )
            .await?;
        measured.half_peak.push(half);
        edge.stop(Duration::from_secs(10)).await?;
        chat.stop(Duration::from_secs(15)).await?;
        let _ = std::fs::remove_dir_all(&data_dir);
        Ok(())
    }

    /// chat-service on the CQL database, in a keyspace of its own: gRPC
    /// sends (against the no-op RPC measured above) and half of peak.
    async fn cassandra_sends(
        &mut self,
        keyspace: &str,
        baselines: &Baselines,
        measured: &mut Measured,
    ) -> anyhow::Result<()> {
        let chat_addr = free_local_addr()?;
        let nodes = allmine_test_support::backends::scylla_nodes().join(",");
        let mut chat = self.spawn_chat_service(
            "chat-service-cassandra",
            chat_addr,
            [
                ("CHAT_STORE", "scylla".to_owned()),
                ("CHAT_SCYLLA_NODES", nodes),
                ("CHAT_SCYLLA_KEYSPACE", keyspace.to_owned()),
                ("CHAT_SCYLLA_CONNECT_TIMEOUT_SECS", "60".to_owned()),
            ],
        )?;
        // Start-up applies the schema, which takes a while on Cassandra.
        chat.wait_for_port(chat_addr, Duration::from_secs(180))
            .await?;
        let stream_id = register_stream(chat_addr).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.record_idle(&chat.name, chat.pid());

        let sends = self
            .alternate(
                &stream_id,
                [Contender {
                    label: "grpc send cassandra",
                    target: Target::Grpc(chat_addr),
                    watch: vec![&chat],
                }],
            )
            .await?;
        measured.grpc.extend(sends);
        let half = self
            .half_peak(
                "cassandra",
                "grpc send cassandra",
                &measured.grpc,
                chat_addr,
                baselines.grpc_addr,
                &stream_id,
            )
            .await?;
        measured.half_peak.push(half);
        chat.stop(Duration::from_secs(15)).await?;
        Ok(())
    }

    /// Runs the contenders one after the other within each repeat, at each
    /// concurrency, so that drift on a shared machine hits all alike; their
    /// servers' memory is sampled at the top concurrency.
    async fn alternate<const N: usize>(
        &mut self,
        stream_id: &str,
        contenders: [Contender<'_>; N],
    ) -> anyhow::Result<Vec<Point>> {
        let top = self.config.concurrency.iter().copied().max().unwrap_or(1);
        let mut points = Vec::new();
        for concurrency in self.config.concurrency.clone() {
            let mut runs: Vec<Vec<RunOutcome>> = vec![Vec::new(); N];
            for _ in 0..self.config.repeats {
                for (contender, runs) in contenders.iter().zip(runs.iter_mut()) {
                    let watch: &[&Server] = if concurrency == top {
                        &contender.watch
                    } else {
                        &[]
                    };
                    let work = contender.target.closed(stream_id, concurrency, self.plan);
                    runs.push(self.sampled(watch, work).await?);
                }
            }
            for (contender, runs) in contenders.iter().zip(runs) {
                points.push(self.point(contender.label, concurrency, runs));
            }
        }
        Ok(points)
    }

    fn spawn_bench_server(
        &self,
        name: &str,
        subcommand: &str,
        addr: SocketAddr,
    ) -> anyhow::Result<Server> {
        Server::spawn(Launch {
            name,
            program: self.binaries.chat_bench.clone(),
            args: vec![subcommand.to_owned(), "--addr".to_owned(), addr.to_string()],
            env: BTreeMap::new(),
            cpu: self.config.server_cpu,
            log_dir: &self.log_dir,
        })
    }

    /// chat-service as in production (RUST_LOG as configured, info by
    /// default), with the test secret and the burst limit out of the way.
    fn spawn_chat_service<const N: usize>(
        &self,
        name: &str,
        addr: SocketAddr,
        store: [(&str, String); N],
    ) -> anyhow::Result<Server> {
        let mut env: BTreeMap<String, String> = [
            ("CHAT_GRPC_ADDR", addr.to_string()),
            ("CHAT_JWT_SECRET", TEST_SECRET.to_owned()),
            ("CHAT_BURST_VIEWER_LIMIT", BENCH_BURST_LIMIT.to_string()),
            ("CHAT_BURST_PRIVILEGED_LIMIT", BENCH_BURST_LIMIT.to_string()),
            ("CHAT_SHUTDOWN_GRACE_SECS", "5".to_owned()),
            ("RUST_LOG", self.config.server_log_filter.clone()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        env.extend(
            store
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value)),
        );
        env.extend(self.config.server_env.iter().cloned());
        Server::spawn(Launch {
            name,
            program: self.binaries.chat_service.clone(),
            args: Vec::new(),
            env,
            cpu: self.config.server_cpu,
            log_dir: &self.log_dir,
        })
    }

    fn spawn_edge(&self, name: &str, addr: SocketAddr, chat: SocketAddr) -> anyhow::Result<Server> {
        self.spawn_edge_with(name, addr, chat, BTreeMap::new())
    }

    /// http-edge with `extra` settings on top of the suite's (and under
    /// `--server-env`, which wins).
    fn spawn_edge_with(
        &self,
        name: &str,
        addr: SocketAddr,
        chat: SocketAddr,
        extra: BTreeMap<String, String>,
    ) -> anyhow::Result<Server> {
        let mut env: BTreeMap<String, String> = [
            ("EDGE_HTTP_ADDR", addr.to_string()),
            ("EDGE_CHAT_SERVICE_URL", format!("http://{chat}")),
            ("RUST_LOG", self.config.server_log_filter.clone()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        env.extend(extra);
        env.extend(self.config.server_env.iter().cloned());
        Server::spawn(Launch {
            name,
            program: self.binaries.http_edge.clone(),
            args: Vec::new(),
            env,
            cpu: self.config.server_cpu,
            log_dir: &self.log_dir,
        })
    }

    fn record_idle(&mut self, name: &str, pid: u32) {
        let idle = rss_bytes(pid).unwrap_or(0);
        self.memory
            .entry(name.to_owned())
            .or_insert_with(|| Memory {
                process: name.to_owned(),
                idle_bytes: 0,
                load_bytes: 0,
            })
            .idle_bytes = idle;
    }

    /// Runs `work` while sampling the resident memory of `servers`, and keeps
    /// each one's peak.
    async fn sampled<T>(
        &mut self,
        servers: &[&Server],
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let watched: Vec<(String, u32)> = servers
            .iter()
            .map(|server| (server.name.clone(), server.pid()))
            .collect();
        let pids: Vec<u32> = watched.iter().map(|(_, pid)| *pid).collect();
        let (outcome, peaks) = with_peak_rss(&pids, work).await;
        for ((name, _), peak) in watched.into_iter().zip(peaks) {
            let entry = self.memory.entry(name.clone()).or_insert_with(|| Memory {
                process: name,
                idle_bytes: 0,
                load_bytes: 0,
            });
            entry.load_bytes = entry.load_bytes.max(peak);
        }
        outcome
    }

    /// Makes a [`Point`], noting failed or empty runs.
    fn point(&mut self, target: &str, concurrency: usize, runs: Vec<RunOutcome>) -> Point {
        for run in &runs {
            if run.errors > 0 {
                self.failures.push(format!(
                    "{target} at concurrency {concurrency}: {} failed requests, first: {}",
                    run.errors,
                    run.first_error.as_deref().unwrap_or("?")
                ));
            } else if run.ok == 0 {
                self.failures.push(format!(
                    "{target} at concurrency {concurrency}: no request completed"
                ));
            }
        }
        Point::new(target, concurrency, runs)
    }

    /// Offers half of `target`'s best throughput in `points`, open loop, to
    /// chat-service and to the no-op RPC alternately.
    async fn half_peak(
        &mut self,
        store: &str,
        target: &str,
        points: &[Point],
        chat_addr: SocketAddr,
        noop_addr: SocketAddr,
        stream_id: &str,
    ) -> anyhow::Result<HalfPeak> {
        let peak = points
            .iter()
            .filter(|point| point.target == target)
            .map(|point| point.throughput)
            .fold(0.0, f64::max);
        let rate = (peak / 2.0).max(1.0);
        let (mut noop_runs, mut send_runs) = (Vec::new(), Vec::new());
        for _ in 0..self.config.repeats {
            noop_runs.push(runs::grpc_open(noop_addr, stream_id, rate, self.plan).await?);
            send_runs.push(runs::grpc_open(chat_addr, stream_id, rate, self.plan).await?);
        }
        Ok(HalfPeak {
            store: store.to_owned(),
            peak,
            rate,
            send: self.point(&format!("grpc send {store} at half peak"), 0, send_runs),
            noop: self.point(&format!("grpc no-op at {store}'s half peak"), 0, noop_runs),
        })
    }

    async fn history(&mut self) -> anyhow::Result<Vec<HistoryPoint>> {
        let directory = self.config.out_dir.join("history-embedded");
        let _ = std::fs::remove_dir_all(&directory);
        let mut points = {
            let store: Arc<dyn MessageStore> = Arc::new(EmbeddedStore::open(&directory)?);
            history::measure("embedded", store, &self.config.history).await?
        };
        let _ = std::fs::remove_dir_all(&directory);
        if self.config.cassandra {
            let keyspace = format!("chat_bench_{}", random_object_id());
            let plan = HistoryPlan {
                load_budget: self.config.cassandra_load_budget,
                ..self.config.history.clone()
            };
            let result = async {
                let store: Arc<dyn MessageStore> = Arc::new(
                    ScyllaStore::connect(&scylla_settings(&keyspace, Duration::from_secs(60)))
                        .await?,
                );
                history::measure("cassandra", store, &plan).await
            }
            .await;
            runs::drop_keyspace(&keyspace).await;
            points.extend(result?);
        }
        for point in &points {
            if point.messages < point.target_messages && self.config.smoke {
                self.failures.push(format!(
                    "history on {}: loaded {} of {} messages within the budget",
                    point.store, point.messages, point.target_messages
                ));
            }
        }
        Ok(points)
    }
}

/// Runs `work` while sampling the resident memory of `pids` every
/// [`RSS_SAMPLE_EVERY`]; returns its outcome and each process's peak.
async fn with_peak_rss<T>(pids: &[u32], work: impl Future<Output = T>) -> (T, Vec<u64>) {
    let peaks = Arc::new(Mutex::new(vec![0_u64; pids.len()]));
    let sampler = {
        let peaks = peaks.clone();
        let pids = pids.to_vec();
        tokio::spawn(async move {
            loop {
                for (index, pid) in pids.iter().enumerate() {
                    let rss = rss_bytes(*pid).unwrap_or(0);
                    let mut peaks = peaks.lock().unwrap_or_else(PoisonError::into_inner);
                    peaks[index] = peaks[index].max(rss);
                }
                tokio::time::sleep(RSS_SAMPLE_EVERY).await;
            }
        })
    };
    let outcome = work.await;
    sampler.abort();
    let peaks = peaks.lock().unwrap_or_else(PoisonError::into_inner).clone();
    (outcome, peaks)
}

/// Where results go by default: `target/bench/<full|smoke>`.
pub fn default_out_dir(smoke: bool) -> PathBuf {
    Path::new("target")
        .join("bench")
        .join(if smoke { "smoke" } else { "full" })
}
