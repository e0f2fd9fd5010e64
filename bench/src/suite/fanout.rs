//! Section 4, live fan-out: for each subscriber count, the no-op baseline and
//! then the real thing, each in fresh server processes (so that one count's
//! memory does not hide in the next one's figures):
//!
//! - gRPC: `SubscribeMessages` streams to chat-service on the embedded store
//!   (a `SendMessage` sender) against the no-op server's broadcast;
//! - SSE: event streams from http-edge in front of chat-service (a REST
//!   sender through the edge) against the no-op axum route's broadcast.
//!
//! Section 4c (SSE through several edges, tree against relay) is
//! [`super::edges`]; it measures with [`Suite::measure_fanout`] too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use allmine_observability::exposition::scrape;

use super::edges::EdgeFanoutConfig;
use super::results::{FanoutCpu, FanoutMemory, FanoutPoint};
use super::{Suite, register_stream, with_peak_rss};
use crate::fanout::{FanoutPlan, Follow, Sender, Subscribers, WindowOutcome};
use crate::process::{CpuSample, Server, free_local_addr, rss_bytes};
use crate::stats::{Latency, median};

/// Subscriber counts and the sender's pace.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    pub grpc_subscribers: Vec<usize>,
    pub sse_subscribers: Vec<usize>,
    /// Section 4c.
    pub edges: EdgeFanoutConfig,
    pub plan: FanoutPlan,
}

/// Lets idle subscriptions settle before their memory is read.
const SETTLE: Duration = Duration::from_millis(500);

/// What one fan-out measurement needs.
pub(super) struct Setup<'a> {
    pub transport: &'static str,
    pub target: &'static str,
    pub follow: Follow,
    pub stream_id: &'a str,
    pub subscribers: usize,
    pub sender: Sender,
    pub servers: Vec<&'a Server>,
    /// chat-service's `/metrics`, to read `chat_live_subscribers` from
    /// while every subscriber is connected.
    pub metrics: Option<SocketAddr>,
}

/// chat-service on a fresh embedded store, for one fan-out point.
pub(super) struct FanoutChat {
    pub server: Server,
    pub addr: SocketAddr,
    /// Its `/metrics`.
    pub metrics: SocketAddr,
    data_dir: PathBuf,
}

impl FanoutChat {
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop(Duration::from_secs(15)).await?;
        let _ = std::fs::remove_dir_all(&self.data_dir);
        Ok(())
    }
}

impl Suite {
    /// Every fan-out point; a failed point is a failure of the run, not the
    /// end of the suite.
    pub(super) async fn fanout(&mut self) -> Vec<FanoutPoint> {
        let config = self.config.fanout.clone();
        let mut points = Vec::new();
        let runs = config
            .grpc_subscribers
            .iter()
            .flat_map(|&count| [("grpc", "no-op", count), ("grpc", "chat-service", count)])
            .chain(
                config
                    .sse_subscribers
                    .iter()
                    .flat_map(|&count| [("sse", "no-op", count), ("sse", "chat-service", count)]),
            );
        for (transport, target, count) in runs {
            let outcome = match (transport, target) {
                (_, "no-op") => self.noop(transport, count).await,
                ("grpc", _) => self.grpc_chat(count).await,
                _ => self.sse_edge(count).await,
            };
            match outcome {
                Ok(point) => points.push(point),
                Err(error) => self.failures.push(format!(
                    "fan-out, {transport} to {target}, {count} subscribers: {error:#}"
                )),
            }
        }
        points
    }

    /// The no-op broadcast of `transport` (`grpc` or `sse`), in a fresh
    /// baseline server, with a sender on the same server.
    async fn noop(&mut self, transport: &'static str, count: usize) -> anyhow::Result<FanoutPoint> {
        let (name, subcommand) = if transport == "grpc" {
            ("noop-grpc-fanout", "serve-noop-grpc")
        } else {
            ("noop-http-fanout", "serve-noop-http")
        };
        let addr = free_local_addr()?;
        let mut server = self.spawn_bench_server(name, subcommand, addr)?;
        server.wait_for_port(addr, Duration::from_secs(20)).await?;
        let stream_id = allmine_test_support::random_object_id();
        let (follow, sender) = if transport == "grpc" {
            (Follow::Grpc(addr), Sender::grpc(addr, &stream_id).await?)
        } else {
            (
                Follow::Sse(vec![addr]),
                Sender::http(addr, &stream_id).await?,
            )
        };
        let point = self
            .measure_fanout(Setup {
                transport,
                target: "no-op",
                follow,
                stream_id: &stream_id,
                subscribers: count,
                sender,
                servers: vec![&server],
                metrics: None,
            })
            .await;
        // Open SSE streams hold axum's graceful shutdown: the subscribers
        // are gone by now, and the grace period covers the rest.
        server.stop(Duration::from_secs(5)).await?;
        point
    }

    async fn grpc_chat(&mut self, count: usize) -> anyhow::Result<FanoutPoint> {
        let chat = self.start_fanout_chat().await?;
        let addr = chat.addr;
        let stream_id = register_stream(addr).await?;
        let point = self
            .measure_fanout(Setup {
                transport: "grpc",
                target: "chat-service",
                follow: Follow::Grpc(addr),
                stream_id: &stream_id,
                subscribers: count,
                sender: Sender::grpc(addr, &stream_id).await?,
                servers: vec![&chat.server],
                metrics: None,
            })
            .await;
        chat.stop().await?;
        point
    }

    async fn sse_edge(&mut self, count: usize) -> anyhow::Result<FanoutPoint> {
        let chat = self.start_fanout_chat().await?;
        let chat_addr = chat.addr;
        let edge_addr = free_local_addr()?;
        let mut edge = self.spawn_edge("http-edge-fanout", edge_addr, chat_addr)?;
        edge.wait_for_port(edge_addr, Duration::from_secs(20))
            .await?;
        let stream_id = register_stream(chat_addr).await?;
        let point = self
            .measure_fanout(Setup {
                transport: "sse",
                target: "chat-service",
                follow: Follow::Sse(vec![edge_addr]),
                stream_id: &stream_id,
                subscribers: count,
                sender: Sender::http(edge_addr, &stream_id).await?,
                servers: vec![&edge, &chat.server],
                metrics: None,
            })
            .await;
        edge.stop(Duration::from_secs(10)).await?;
        chat.stop().await?;
        point
    }

    /// A fresh chat-service on a fresh embedded store, its `/metrics` on a
    /// port of its own.
    pub(super) async fn start_fanout_chat(&mut self) -> anyhow::Result<FanoutChat> {
        let data_dir = self.config.out_dir.join("data-fanout");
        let _ = std::fs::remove_dir_all(&data_dir);
        let addr = free_local_addr()?;
        let metrics = free_local_addr()?;
        let mut server = self.spawn_chat_service(
            "chat-service-fanout",
            addr,
            [
                ("CHAT_STORE", "embedded".to_owned()),
                ("CHAT_DATA_DIR", data_dir.display().to_string()),
                ("CHAT_METRICS_ADDR", metrics.to_string()),
            ],
        )?;
        server.wait_for_port(addr, Duration::from_secs(60)).await?;
        Ok(FanoutChat {
            server,
            addr,
            metrics,
            data_dir,
        })
    }

    /// Connects the subscribers, warms up, reads memory, runs the windows.
    pub(super) async fn measure_fanout(&mut self, setup: Setup<'_>) -> anyhow::Result<FanoutPoint> {
        let Setup {
            transport,
            target,
            follow,
            stream_id,
            subscribers: count,
            mut sender,
            servers,
            metrics,
        } = setup;
        let plan = self.config.fanout.plan;
        let rss = || -> Vec<u64> {
            servers
                .iter()
                .map(|server| rss_bytes(server.pid()).unwrap_or(0))
                .collect()
        };
        let pids: Vec<u32> = servers.iter().map(|server| server.pid()).collect();
        // The same sends with nobody listening, in the same processes: the
        // baseline of what the audience costs a send and the server's CPU.
        let alone = if target != "no-op" {
            Some(
                self.sends_alone(&follow, stream_id, &mut sender, &pids)
                    .await?,
            )
        } else {
            None
        };
        let before = rss();
        let subscribers = Subscribers::connect(&follow, stream_id, count, &plan).await?;
        let warmed = subscribers.warm_up(&mut sender).await;
        if let Err(error) = warmed {
            subscribers.close().await;
            return Err(error);
        }
        tokio::time::sleep(SETTLE).await;
        let subscribed = rss();
        let mut live_subscribers = Vec::new();
        live_subscribers.extend(live_subscribers_at(metrics).await);
        let mut peaks = vec![0_u64; servers.len()];
        let mut windows = Vec::new();
        let mut cpu_per_message = vec![Vec::new(); servers.len()];
        for _ in 0..self.config.repeats {
            let cpu_before = cpu_of(&pids);
            // Read halfway through the window's sends.
            let midway = Duration::from_secs_f64(plan.messages as f64 / plan.rate.max(0.001) / 2.0);
            let during = async {
                tokio::time::sleep(midway).await;
                live_subscribers_at(metrics).await
            };
            let ((window, window_peaks), during) = tokio::join!(
                with_peak_rss(&pids, subscribers.window(&mut sender, &plan)),
                during
            );
            live_subscribers.extend(during);
            for (peak, window_peak) in peaks.iter_mut().zip(window_peaks) {
                *peak = (*peak).max(window_peak);
            }
            push_per_message(&mut cpu_per_message, &cpu_before, &pids, window.messages);
            windows.push(window);
        }
        let (errors, first_error) = subscribers.subscriber_errors();
        let connections = subscribers.connections;
        let connect_seconds = subscribers.connect_seconds;
        subscribers.close().await;

        let memory = servers
            .iter()
            .zip(before.into_iter().zip(subscribed).zip(peaks))
            .map(|(server, ((before, subscribed), peak))| FanoutMemory {
                process: server.name.clone(),
                before_bytes: before,
                subscribed_bytes: subscribed,
                peak_bytes: peak.max(subscribed),
            })
            .collect();
        let cpu = servers
            .iter()
            .zip(cpu_per_message)
            .enumerate()
            .map(|(index, (server, per_message))| FanoutCpu {
                process: server.name.clone(),
                us_per_message: median(per_message),
                us_per_message_alone: alone
                    .as_ref()
                    .map(|alone| median(alone.cpu_per_message[index].clone())),
            })
            .collect();
        let point = FanoutPoint {
            transport: transport.to_owned(),
            target: target.to_owned(),
            subscribers: count,
            requested_subscribers: count,
            edges: match &follow {
                Follow::Sse(addrs) => addrs.len(),
                Follow::Grpc(_) => 0,
            },
            connections,
            connect_seconds,
            deliveries_per_second: median(
                windows
                    .iter()
                    .map(|window| window.deliveries_per_second)
                    .collect(),
            ),
            latency: Latency::median_of(
                &windows
                    .iter()
                    .map(|window| window.latency)
                    .collect::<Vec<_>>(),
            ),
            latency_from_schedule: Latency::median_of(
                &windows
                    .iter()
                    .map(|window| window.latency_from_schedule)
                    .collect::<Vec<_>>(),
            ),
            messages_per_second: median(
                windows
                    .iter()
                    .map(|window| window.messages_per_second)
                    .collect(),
            ),
            missing: windows.iter().map(|window| window.missing).sum(),
            gaps: windows.iter().map(|window| window.gaps).sum(),
            missing_after_gap: windows.iter().map(|window| window.missing_after_gap).sum(),
            live_subscribers,
            unexpected: windows.iter().map(|window| window.unexpected).sum(),
            errors: errors
                + windows.iter().map(|window| window.send_errors).sum::<u64>()
                + alone.as_ref().map_or(0, |alone| alone.errors),
            send_latency: pooled_sends(&windows),
            send_latency_alone: alone.map(|alone| alone.send_latency),
            cpu,
            memory,
            windows,
        };
        self.check_fanout(&point, first_error);
        Ok(point)
    }

    /// The fan-out plan's windows with no subscriber connected.
    async fn sends_alone(
        &mut self,
        follow: &Follow,
        stream_id: &str,
        sender: &mut Sender,
        pids: &[u32],
    ) -> anyhow::Result<Alone> {
        let plan = self.config.fanout.plan;
        let nobody = Subscribers::connect(follow, stream_id, 0, &plan).await?;
        nobody.warm_up(sender).await?;
        let mut windows = Vec::new();
        let mut cpu_per_message = vec![Vec::new(); pids.len()];
        for _ in 0..self.config.repeats {
            let cpu_before = cpu_of(pids);
            let window = nobody.window(sender, &plan).await;
            push_per_message(&mut cpu_per_message, &cpu_before, pids, window.messages);
            windows.push(window);
        }
        nobody.close().await;
        Ok(Alone {
            send_latency: pooled_sends(&windows),
            errors: windows.iter().map(|window| window.send_errors).sum(),
            cpu_per_message,
        })
    }

    fn check_fanout(&mut self, point: &FanoutPoint, subscriber_error: Option<String>) {
        let label = format!(
            "fan-out, {} to {}, {} subscribers",
            point.transport, point.target, point.subscribers
        );
        if point.missing > 0 || point.unexpected > 0 || point.errors > 0 {
            let first = point
                .windows
                .iter()
                .find_map(|window: &WindowOutcome| window.first_error.clone())
                .or(subscriber_error);
            self.failures.push(format!(
                "{label}: {} copies missing, {} unexpected, {} errors (first: {})",
                point.missing,
                point.unexpected,
                point.errors,
                first.as_deref().unwrap_or("none")
            ));
        }
    }
}

/// chat-service's `chat_live_subscribers` at `metrics` (none when not
/// given; a failed scrape is left out, and shows as a missing reading).
async fn live_subscribers_at(metrics: Option<SocketAddr>) -> Option<f64> {
    let exposition = scrape(metrics?).await.ok()?;
    Some(exposition.sum("chat_live_subscribers", &[]))
}

/// What the sends cost with nobody listening.
struct Alone {
    send_latency: Latency,
    errors: u64,
    /// Per server: µs of CPU per message, one value per window.
    cpu_per_message: Vec<Vec<f64>>,
}

fn cpu_of(pids: &[u32]) -> Vec<CpuSample> {
    pids.iter().map(|&pid| CpuSample::take(pid)).collect()
}

/// Adds each server's CPU per message since `before` to `per_message`.
fn push_per_message(
    per_message: &mut [Vec<f64>],
    before: &[CpuSample],
    pids: &[u32],
    messages: usize,
) {
    let after = cpu_of(pids);
    for ((values, before), after) in per_message.iter_mut().zip(before).zip(after) {
        values.push(after.seconds_since(before) * 1e6 / messages.max(1) as f64);
    }
}

/// Every window's sends as one set (p99 over all of them, not a median of
/// maxima).
fn pooled_sends(windows: &[WindowOutcome]) -> Latency {
    let mut nanos: Vec<u64> = windows
        .iter()
        .flat_map(|window| window.send_nanos.iter().copied())
        .collect();
    Latency::from_nanos(&mut nanos)
}
