#!/usr/bin/env bash
# The one test command (README, and .ci/run): every test of the workspace,
# against both stores.
#
# In order, failing fast: `cargo fmt --check`; one build of every target
# (the tests, chatctl for the CQL check below and the benchmark smoke run all
# use it: one feature set, one copy of each dependency); clippy with
# warnings denied; the proto checks (scripts/proto-check.sh: buf lint and
# breaking); then the tests. Arguments go to `cargo test` only.
#
# ScyllaDB tests need a CQL database. When one answers at CHAT_SCYLLA_NODES
# (default 127.0.0.1:9042) it is used; otherwise a single-node Cassandra 5 is
# assembled from Maven Central and started here (scripts/cassandra.sh), and
# stopped again when the tests end. If neither works, this fails and says why:
# database tests are never skipped.
#
# The node-loss scenarios run on a 3-node cluster of their own (below); set
# CHAT_CLUSTER_TESTS=0 to leave them out of a local run (CI runs them).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

export CHAT_SCYLLA_NODES=${CHAT_SCYLLA_NODES:-127.0.0.1:9042}
first_node=${CHAT_SCYLLA_NODES%%,*}
cql_host=${first_node%:*}
cql_port=${first_node##*:}

say() { printf 'test.sh: %s\n' "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || { say "missing '$1': $2"; exit 1; }
}
need cargo "install Rust (rustup) first"

# One build, no incremental cache: CI builds from scratch, where the cache
# only costs disk (it doubled target/ and ran a CI machine out of space).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

cargo fmt --all --check || { say "cargo fmt --check failed: run \`cargo fmt --all\`"; exit 1; }
cargo build --locked --workspace --all-targets
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/proto-check.sh

# Whatever happens (a failure, Ctrl-C), no database started here outlives the
# run: the cluster test stops its nodes itself, and this stops any it left
# (a test binary killed mid-run cannot).
cleanup() {
  scripts/cassandra-cluster.sh stop >/dev/null 2>&1 || true
  if [ -n "${stop_local_node:-}" ]; then
    CASSANDRA_PORT=$cql_port scripts/cassandra.sh stop || true
  fi
}
trap cleanup EXIT

# chatctl, just built, is the readiness check here and in scripts/cassandra.sh.
export CHATCTL=$REPO/target/debug/chatctl
if "$CHATCTL" cql-ping --nodes "$first_node" --timeout 3 --quiet; then
  say "using the CQL database at $first_node"
else
  need java "Java 17 runs the test Cassandra"
  need mvn "Maven fetches the test Cassandra's jars from Maven Central"
  if [ "$cql_host" != "127.0.0.1" ] && [ "$cql_host" != "localhost" ]; then
    say "no CQL database answers at $first_node, and a local one can only be started on 127.0.0.1"
    exit 1
  fi
  say "no CQL database at $first_node: starting a local Cassandra on port $cql_port"
  stop_local_node=1
  CASSANDRA_PORT=$cql_port scripts/cassandra.sh start
fi

# The fault tests start, stop and resume a Cassandra of their own on these
# ports, so that stopping it never disturbs the shared node above.
export CHAT_FAULT_CASSANDRA_PORT=${CHAT_FAULT_CASSANDRA_PORT:-9142}
export CHAT_FAULT_CASSANDRA_STORAGE_PORT=${CHAT_FAULT_CASSANDRA_STORAGE_PORT:-7100}

# The node-loss scenarios (chat-service's `cluster` test binary, issue 16)
# start a 3-node Cassandra of their own (scripts/cassandra-cluster.sh, from
# the same Maven Central jars): node N on 127.0.0.N, all on these ports, next
# to the shared node on 127.0.0.1:9042; 512 MB of heap each. They run with
# the other tests (cargo runs test binaries one at a time), about 3-4 minutes
# on 2 cores. CHAT_CLUSTER_TESTS=0 skips them (default 1: on, as in CI).
export CHAT_CLUSTER_CQL_PORT=${CHAT_CLUSTER_CQL_PORT:-9342}
export CHAT_CLUSTER_STORAGE_PORT=${CHAT_CLUSTER_STORAGE_PORT:-7300}
CHAT_CLUSTER_TESTS=${CHAT_CLUSTER_TESTS:-1}
case $CHAT_CLUSTER_TESTS in
  1)
    need java "Java 17 runs the 3-node test cluster (CHAT_CLUSTER_TESTS=0 skips it)"
    need mvn "Maven fetches the test Cassandra's jars from Maven Central (CHAT_CLUSTER_TESTS=0 skips the cluster)"
    skip_cluster=()
    ;;
  0)
    say "CHAT_CLUSTER_TESTS=0: the 3-node cluster scenarios are skipped"
    skip_cluster=(--skip node_loss_and_quorum_loss_under_load)
    ;;
  *) say "CHAT_CLUSTER_TESTS must be 1 (run the cluster scenarios, the default) or 0"; exit 1 ;;
esac

# The full-disk tests mount a small tmpfs. As root (CI, and every machine of
# this project) they must run: a failed mount then fails them instead of
# skipping them.
if [ "$(id -u)" = 0 ]; then
  export CHAT_REQUIRE_TMPFS=1
fi

# No `--workspace`: next to it cargo ignores a `-p` among the arguments and
# tests everything. At this virtual workspace's root, no `-p` already means
# every member.
# With CHAT_CLUSTER_TESTS=0 the cluster scenario is left out by name (the
# name is unique in the workspace); `--skip` goes after the arguments' own
# `--`, if they have one.
if [ ${#skip_cluster[@]} -eq 0 ]; then
  cargo test --locked "$@"
elif printf '%s\n' "$@" | grep -qx -- '--'; then
  cargo test --locked "$@" "${skip_cluster[@]}"
else
  cargo test --locked "$@" -- "${skip_cluster[@]}"
fi

# For the whole suite only (no arguments): the web chat page in headless
# Chromium and gRPC-Web through a real client (scripts/web_tests.sh, which
# installs Debian's chromium and the pinned npm packages when missing).
if [ $# -eq 0 ]; then
  WEB_TESTS_BUILD=all-targets scripts/web_tests.sh || { say "the browser and gRPC-Web tests failed (scripts/web_tests.sh)"; exit 1; }
fi

# For the whole suite only (no arguments): the REST contract from outside,
# schemathesis against the real edge and chat-service, bounded in cases and
# time (scripts/contract_tests.sh, which installs its pinned PyPI packages
# into .cache/ when missing).
if [ $# -eq 0 ]; then
  CONTRACT_TESTS_BUILD=all-targets scripts/contract_tests.sh || { say "the REST contract tests failed (scripts/contract_tests.sh)"; exit 1; }
fi

# Last, for the whole suite only (no arguments): a few seconds of the
# benchmark suite with tiny counts (scripts/bench.sh --smoke), so that it
# cannot rot. Its meaningless table goes to target/bench/smoke/ and is shown
# here only when the run fails.
if [ $# -eq 0 ]; then
  mkdir -p target/bench
  if ! BENCH_SMOKE_BUILD=all-targets scripts/bench.sh --smoke >target/bench/smoke-run.log 2>&1; then
    cat target/bench/smoke-run.log >&2
    say "the benchmark smoke run failed (scripts/bench.sh --smoke)"
    exit 1
  fi
  say "benchmark smoke run passed (table: target/bench/smoke/summary.md)"
fi
