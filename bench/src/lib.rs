//! Benchmarks of Allmine live chat, run by `scripts/bench.sh` (the full
//! suite, a release build) and `scripts/bench.sh --smoke` (a few seconds,
//! part of `scripts/test.sh` so that the suite cannot rot).
//!
//! Every figure is reported beside a baseline measured in the same run:
//!
//! - [`noop`]: the baselines, servers on the same stacks that do no work
//!   (tonic with a no-op SendMessage; axum with a no-op JSON route).
//! - [`load`]: the load generator: closed loop (N request slots) and open
//!   loop (a fixed rate, latency from the intended send time), gRPC through
//!   the generated client and HTTP/1.1 through hyper.
//! - [`process`]: the servers as processes of their own (pinned with
//!   `taskset`), their readiness, memory (`/proc`) and stopping.
//! - [`history`]: newest-50 reads on both stores as a stream grows.
//! - [`fanout`]: one sender, N gRPC or SSE subscribers, delivery latency.
//! - [`overload`]: twice the peak send rate for 20 s: goodput, the latency
//!   of accepted sends, how fast the rest is refused, and recovery.
//! - [`suite`]: the scenarios in order, repeats and medians.
//! - [`report`]: the markdown tables and the targets.
//! - [`stats`], [`payload`], [`machine`]: percentiles, what is sent and
//!   answered, what the numbers were measured on.

pub mod fanout;
pub mod history;
pub mod load;
pub mod machine;
pub mod noop;
pub mod overload;
pub mod payload;
pub mod process;
pub mod report;
pub mod stats;
pub mod suite;
