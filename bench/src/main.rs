//! `chat-bench`: the benchmark suite and its baseline servers.
//!
//! `chat-bench suite` runs everything and prints the table (see
//! `scripts/bench.sh`, which builds, pins and calls it); `serve-noop-grpc`
//! and `serve-noop-http` are the baselines the suite starts as processes;
//! `load` and `overload` run one experiment against servers already running,
//! for profiling by hand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use allmine_chat_bench::fanout::FanoutPlan;
use allmine_chat_bench::history::HistoryPlan;
use allmine_chat_bench::load::Plan;
use allmine_chat_bench::load::http::HttpRequest;
use allmine_chat_bench::overload::{self, OverloadPlan, OverloadTarget, Watched};
use allmine_chat_bench::payload;
use allmine_chat_bench::suite::{self, EdgeFanoutConfig, FanoutConfig, Sections, SuiteConfig};
use allmine_chat_bench::{noop, report};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "chat-bench", about = "Allmine live chat benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the suite, prints the table, writes results.json and summary.md.
    Suite(Box<SuiteArgs>),
    /// The no-op gRPC baseline server.
    ServeNoopGrpc {
        #[arg(long)]
        addr: SocketAddr,
    },
    /// The no-op HTTP baseline server.
    ServeNoopHttp {
        #[arg(long)]
        addr: SocketAddr,
    },
    /// One load run, for profiling by hand: gRPC SendMessage to `--grpc`,
    /// or REST sends to `--http` (http-edge or the no-op route). Registers a
    /// fresh stream at `--register-at` (default: the `--grpc` address; none
    /// for a no-op target). Prints the outcome as JSON.
    Load(LoadArgs),
    /// The overload experiment (BENCHMARKS.md section 6) once, against
    /// running servers: gRPC SendMessage to `--grpc`, or REST sends to
    /// `--http` (http-edge). Registers a fresh stream at `--register-at`
    /// (default: the `--grpc` address). Prints the run as JSON.
    Overload(OverloadOnceArgs),
}

#[derive(Debug, clap::Args)]
struct OverloadOnceArgs {
    /// chat-service.
    #[arg(long, conflicts_with = "http", required_unless_present = "http")]
    grpc: Option<SocketAddr>,
    /// http-edge.
    #[arg(long, requires = "register_at")]
    http: Option<SocketAddr>,
    /// chat-service, to register the stream at (it must accept the test
    /// secret's tokens). Default: `--grpc`.
    #[arg(long)]
    register_at: Option<SocketAddr>,
    /// Also report the CPU each of these processes used in each phase.
    #[arg(long, value_delimiter = ',')]
    watch_pid: Vec<u32>,
    #[command(flatten)]
    plan: OverloadArgs,
}

/// The overload experiment's settings; unset values take the full run's
/// defaults, or the smoke run's.
#[derive(Debug, clap::Args)]
struct OverloadArgs {
    /// Seconds at the overload rate (20; smoke 1).
    #[arg(long)]
    overload_secs: Option<f64>,
    /// The overload rate, as a multiple of the peak throughput (2).
    #[arg(long)]
    overload_factor: Option<f64>,
    /// Seconds measured at half of peak before the overload (4; smoke 0.5).
    #[arg(long)]
    overload_baseline_secs: Option<f64>,
    /// Seconds at half of peak after the overload (5; smoke 1).
    #[arg(long)]
    overload_recovery_secs: Option<f64>,
    /// Requests the open-loop schedule may hold in flight (8192).
    #[arg(long)]
    overload_max_in_flight: Option<usize>,
    /// Requests in flight (gRPC) or connections (HTTP) of the closed-loop
    /// run that measures the peak (64, as in sections 1 and 2).
    #[arg(long)]
    overload_peak_concurrency: Option<usize>,
    /// Offer multiples of this many requests per second instead of the
    /// measured peak (A/B runs at one load; the criteria still use the
    /// measured peak).
    #[arg(long)]
    overload_rate_base: Option<f64>,
}

impl OverloadArgs {
    fn plan(self, smoke: bool) -> OverloadPlan {
        let defaults = if smoke {
            OverloadPlan::smoke()
        } else {
            OverloadPlan::full()
        };
        let seconds = |given: Option<f64>, default| given.map_or(default, Duration::from_secs_f64);
        OverloadPlan {
            overload_factor: self.overload_factor.unwrap_or(defaults.overload_factor),
            overload: seconds(self.overload_secs, defaults.overload),
            baseline: seconds(self.overload_baseline_secs, defaults.baseline),
            recovery: seconds(self.overload_recovery_secs, defaults.recovery),
            max_in_flight: self
                .overload_max_in_flight
                .unwrap_or(defaults.max_in_flight)
                .max(1),
            peak_concurrency: self
                .overload_peak_concurrency
                .unwrap_or(defaults.peak_concurrency)
                .max(1),
            rate_base: self.overload_rate_base.or(defaults.rate_base),
            ..defaults
        }
    }
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// A ChatService (chat-service or the no-op baseline).
    #[arg(long, conflicts_with = "http", required_unless_present = "http")]
    grpc: Option<SocketAddr>,
    /// An HTTP server with the send route (http-edge or the no-op baseline).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// chat-service, to register the stream at (it must accept the test
    /// secret's tokens). Default: `--grpc`; without either, no registration.
    #[arg(long)]
    register_at: Option<SocketAddr>,
    /// Closed loop: requests in flight (gRPC) or connections (HTTP).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open loop (gRPC only): requests per second instead of a concurrency.
    #[arg(long)]
    rate: Option<f64>,
    /// Measured seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
}

/// Unset values take the full suite's defaults, or the smoke run's with
/// `--smoke`.
#[derive(Debug, clap::Args)]
struct SuiteArgs {
    /// A few seconds with tiny counts: checks that everything runs.
    #[arg(long)]
    smoke: bool,
    /// Where results.json, summary.md and the server logs go
    /// (default target/bench/full or target/bench/smoke).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Warm-up before each measured window, in seconds (1; smoke 0.2).
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// Measured window of each run, in seconds (4; smoke 0.5).
    #[arg(long)]
    measure_secs: Option<f64>,
    /// Runs per point; the median is reported (3; smoke 1).
    #[arg(long)]
    repeats: Option<usize>,
    /// Requests in flight (gRPC) or connections (HTTP), comma-separated
    /// (1,16,64; smoke 1,4).
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    /// Upper bound on requests in one measured window.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Stream sizes for the newest-50 reads (1000,100000,1000000; smoke 100,1000).
    #[arg(long, value_delimiter = ',')]
    history_sizes: Option<Vec<usize>>,
    /// Timed newest-50 reads at each size (2000; smoke 50).
    #[arg(long)]
    history_reads: Option<usize>,
    /// Loading time allowed for the embedded store's history, in seconds.
    #[arg(long, default_value_t = 120)]
    embedded_load_budget_secs: u64,
    /// Loading time allowed for Cassandra's history, in seconds.
    #[arg(long, default_value_t = 150)]
    cassandra_load_budget_secs: u64,
    /// Pin every server to this core (`taskset -c`); pin the generator
    /// elsewhere yourself (scripts/bench.sh does).
    #[arg(long)]
    server_cpu: Option<usize>,
    /// Skip everything that needs the CQL database (CHAT_SCYLLA_NODES).
    #[arg(long)]
    no_cassandra: bool,
    /// RUST_LOG for chat-service and http-edge; `info` is their production
    /// default (the edge then logs one line per request).
    #[arg(long, default_value = "info")]
    server_log_filter: String,
    /// Run only these parts: sends (sections 1, 1b, 2, 5), fanout (4),
    /// history (3), overload (6); comma-separated. Default: all.
    #[arg(long, value_delimiter = ',', value_parser = ["sends", "fanout", "history", "overload"])]
    only: Option<Vec<String>>,
    /// A setting for chat-service and http-edge in every part, as
    /// KEY=VALUE (repeatable), e.g. `--server-env EDGE_MAX_IN_FLIGHT=64`.
    #[arg(long, value_parser = key_value)]
    server_env: Vec<(String, String)>,
    #[command(flatten)]
    overload: OverloadArgs,
    /// The overload part's targets: grpc (chat-service direct), rest
    /// (through http-edge); comma-separated. Default: both.
    #[arg(long, value_delimiter = ',', value_parser = ["grpc", "rest"])]
    overload_targets: Option<Vec<String>>,
    /// gRPC subscriber counts for the fan-out, comma-separated
    /// (100,1000,10000,50000; smoke 20); 0 alone skips it.
    #[arg(long, value_delimiter = ',')]
    fanout_grpc: Option<Vec<usize>>,
    /// SSE subscriber counts for the fan-out (1000; smoke 5); 0 alone skips it.
    #[arg(long, value_delimiter = ',')]
    fanout_sse: Option<Vec<usize>>,
    /// Section 4c: http-edges the SSE viewers are spread over (2).
    #[arg(long, default_value_t = 2)]
    fanout_edges: usize,
    /// Section 4c: SSE viewers per edge through the fan-out tree (each edge
    /// with EDGE_UPSTREAM_TOKEN), comma-separated (1000,5000,10000; smoke
    /// 3); 0 alone skips it. Capped by the open-file limit (`ulimit -n`).
    #[arg(long, value_delimiter = ',')]
    fanout_edge_tree: Option<Vec<usize>>,
    /// Section 4c: SSE viewers per edge through the relay (no token: one
    /// upstream subscription per viewer), for comparison (1000,5000,10000;
    /// smoke 3); 0 alone skips it.
    #[arg(long, value_delimiter = ',')]
    fanout_edge_relay: Option<Vec<usize>>,
    /// Messages per fan-out window (60; smoke 5).
    #[arg(long)]
    fanout_messages: Option<usize>,
    /// Messages per second the fan-out sender sends (10; smoke 20).
    #[arg(long)]
    fanout_rate: Option<f64>,
    /// gRPC subscriber streams per HTTP/2 connection (100; smoke 8).
    #[arg(long)]
    fanout_streams_per_connection: Option<usize>,
}

impl SuiteArgs {
    fn config(self: Box<Self>) -> SuiteConfig {
        let smoke = self.smoke;
        let pick = |full: f64, quick: f64| if smoke { quick } else { full };
        let sizes = self.history_sizes.unwrap_or_else(|| {
            if smoke {
                vec![100, 1_000]
            } else {
                vec![1_000, 100_000, 1_000_000]
            }
        });
        SuiteConfig {
            out_dir: self.out.unwrap_or_else(|| suite::default_out_dir(smoke)),
            warmup: Duration::from_secs_f64(self.warmup_secs.unwrap_or(pick(1.0, 0.2))),
            measure: Duration::from_secs_f64(self.measure_secs.unwrap_or(pick(4.0, 0.5))),
            repeats: self.repeats.unwrap_or(if smoke { 1 } else { 3 }).max(1),
            concurrency: self
                .concurrency
                .unwrap_or_else(|| if smoke { vec![1, 4] } else { vec![1, 16, 64] }),
            max_requests: self.max_requests,
            history: HistoryPlan {
                sizes,
                reads: self.history_reads.unwrap_or(if smoke { 50 } else { 2_000 }),
                load_concurrency: 512,
                load_budget: Duration::from_secs(self.embedded_load_budget_secs),
            },
            cassandra_load_budget: Duration::from_secs(self.cassandra_load_budget_secs),
            server_cpu: self.server_cpu,
            cassandra: !self.no_cassandra,
            server_log_filter: self.server_log_filter,
            fanout: FanoutConfig {
                grpc_subscribers: counts(
                    self.fanout_grpc,
                    if smoke {
                        &[20]
                    } else {
                        &[100, 1_000, 10_000, 50_000]
                    },
                ),
                sse_subscribers: counts(self.fanout_sse, if smoke { &[5] } else { &[1_000] }),
                edges: EdgeFanoutConfig {
                    edges: self.fanout_edges.max(1),
                    tree_viewers: counts(
                        self.fanout_edge_tree,
                        if smoke { &[3] } else { &[1_000, 5_000, 10_000] },
                    ),
                    relay_viewers: counts(
                        self.fanout_edge_relay,
                        if smoke { &[3] } else { &[1_000, 5_000, 10_000] },
                    ),
                },
                plan: FanoutPlan {
                    messages: self.fanout_messages.unwrap_or(if smoke { 5 } else { 60 }),
                    rate: self.fanout_rate.unwrap_or(pick(10.0, 20.0)),
                    streams_per_connection: self
                        .fanout_streams_per_connection
                        .unwrap_or(if smoke { 8 } else { 100 }),
                    drain: Duration::from_secs(10),
                },
            },
            overload: self.overload.plan(smoke),
            overload_targets: self.overload_targets.map_or(
                vec![suite::OVERLOAD_GRPC, suite::OVERLOAD_REST],
                |targets| {
                    targets
                        .iter()
                        .map(|target| {
                            if target == "grpc" {
                                suite::OVERLOAD_GRPC
                            } else {
                                suite::OVERLOAD_REST
                            }
                        })
                        .collect()
                },
            ),
            server_env: self.server_env,
            sections: self.only.map_or(
                Sections {
                    sends: true,
                    fanout: true,
                    history: true,
                    overload: true,
                },
                |only| Sections {
                    sends: only.iter().any(|part| part == "sends"),
                    fanout: only.iter().any(|part| part == "fanout"),
                    history: only.iter().any(|part| part == "history"),
                    overload: only.iter().any(|part| part == "overload"),
                },
            ),
            smoke,
        }
    }
}

/// `KEY=VALUE`, for `--server-env`.
fn key_value(given: &str) -> Result<(String, String), String> {
    match given.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {given:?}")),
    }
}

/// Subscriber counts: as given (zeros dropped), or the default.
fn counts(given: Option<Vec<usize>>, default: &[usize]) -> Vec<usize> {
    given
        .unwrap_or_else(|| default.to_vec())
        .into_iter()
        .filter(|&count| count > 0)
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chat-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Suite(args) => run_suite(args.config()).await,
            Command::ServeNoopGrpc { addr } => noop::grpc::run(addr).await.map(|()| true),
            Command::ServeNoopHttp { addr } => noop::http::run(addr).await.map(|()| true),
            Command::Load(args) => load_once(args).await.map(|()| true),
            Command::Overload(args) => overload_once(args).await.map(|()| true),
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chat-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn load_once(args: LoadArgs) -> anyhow::Result<()> {
    let plan = Plan {
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs_f64(args.secs),
        max_requests: 10_000_000,
    };
    let stream_id = match args.register_at.or(args.grpc) {
        None => allmine_test_support::random_object_id(),
        Some(chat) => match suite::register_stream_once(chat).await {
            Ok(stream_id) => stream_id,
            // The no-op baseline has no admin service and needs no stream.
            Err(status)
                if status.code() == tonic::Code::Unimplemented && args.register_at.is_none() =>
            {
                allmine_test_support::random_object_id()
            }
            Err(_) => suite::register_stream(chat).await?,
        },
    };
    let outcome = match (args.grpc, args.http, args.rate) {
        (Some(grpc), _, Some(rate)) => suite::grpc_open(grpc, &stream_id, rate, plan).await?,
        (Some(grpc), _, None) => {
            suite::grpc_closed(grpc, &stream_id, args.concurrency, plan).await?
        }
        (None, Some(http), None) => {
            let request = HttpRequest {
                addr: http,
                path: format!("/api/v1/live-stream/{stream_id}/chat/messages").parse()?,
                body: payload::rest_body().into(),
                expect: http::StatusCode::CREATED,
            };
            suite::http_closed(request, args.concurrency, plan).await?
        }
        _ => anyhow::bail!("--rate works with --grpc only"),
    };
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(())
}

async fn overload_once(args: OverloadOnceArgs) -> anyhow::Result<()> {
    let register_at = args
        .register_at
        .or(args.grpc)
        .ok_or_else(|| anyhow::anyhow!("--http needs --register-at"))?;
    let stream_id = suite::register_stream(register_at).await?;
    let target = match (args.grpc, args.http) {
        (Some(grpc), _) => OverloadTarget::Grpc(grpc),
        (None, Some(http)) => OverloadTarget::Http(HttpRequest {
            addr: http,
            path: format!("/api/v1/live-stream/{stream_id}/chat/messages").parse()?,
            body: payload::rest_body().into(),
            expect: http::StatusCode::CREATED,
        }),
        (None, None) => anyhow::bail!("give --grpc or --http"),
    };
    let watch: Vec<Watched> = args
        .watch_pid
        .iter()
        .map(|&pid| Watched {
            name: format!("pid {pid}"),
            pid,
        })
        .collect();
    let run = overload::run(&target, &stream_id, &args.plan.plan(false), &watch).await?;
    println!("{}", serde_json::to_string_pretty(&run)?);
    Ok(())
}

/// Runs the suite and writes its results; `Ok(false)` when a run failed.
async fn run_suite(config: SuiteConfig) -> anyhow::Result<bool> {
    let out_dir = config.out_dir.clone();
    let report = suite::run(config).await?;
    let table = report::render(&report);
    println!("{table}");
    std::fs::write(out_dir.join("summary.md"), &table)?;
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    eprintln!(
        "chat-bench: results in {} (results.json, summary.md, logs/)",
        out_dir.display()
    );
    if !report.failures.is_empty() {
        eprintln!(
            "chat-bench: {} failure(s), see above",
            report.failures.len()
        );
    }
    Ok(report.failures.is_empty())
}
