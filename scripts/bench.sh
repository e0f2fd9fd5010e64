#!/usr/bin/env bash
# The one benchmark command (README, BENCHMARKS.md).
#
#   scripts/bench.sh            the full suite: release build, ~15 minutes;
#                               prints the table, writes target/bench/full/
#                               (results.json, summary.md, logs/)
#   scripts/bench.sh --smoke    a few seconds with tiny counts, debug build;
#                               exits non-zero if anything fails (part of
#                               scripts/test.sh, so the suite cannot rot)
#
# Other arguments go to `chat-bench suite` (`--help` lists them), e.g.
# `scripts/bench.sh --repeats 1 --concurrency 64` or `--no-cassandra`, or
# for the overload part alone (section 6, ~2 minutes per repeat)
# `scripts/bench.sh --only overload --no-cassandra`, with server settings
# such as `--server-env EDGE_MAX_IN_FLIGHT=64`.
#
# Pinning: with 2 or more cores and `taskset`, every server (chat-service,
# http-edge, the no-op baselines) runs on core 0 and the load generator on
# core 1. Override with BENCH_SERVER_CPU / BENCH_GENERATOR_CPU; set
# BENCH_PIN=0 to pin nothing.
#
# The Cassandra figures need a CQL node at CHAT_SCYLLA_NODES (default
# 127.0.0.1:9042). When none answers, one is started here as in
# scripts/test.sh (scripts/cassandra.sh) and stopped at the end.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

say() { printf 'bench.sh: %s\n' "$*" >&2; }

mode=full
args=()
for arg in "$@"; do
  case $arg in
    --smoke) mode=smoke ;;
    *) args+=("$arg") ;;
  esac
done
no_cassandra=false
for arg in "${args[@]+"${args[@]}"}"; do
  [ "$arg" = --no-cassandra ] && no_cassandra=true
done

export CHAT_SCYLLA_NODES=${CHAT_SCYLLA_NODES:-127.0.0.1:9042}
first_node=${CHAT_SCYLLA_NODES%%,*}
cql_host=${first_node%:*}
cql_port=${first_node##*:}

if [ "$mode" = smoke ]; then
  say "building (debug) for the smoke run"
  if [ "${BENCH_SMOKE_BUILD:-}" = all-targets ]; then
    # From scripts/test.sh, which built exactly this before its tests: the
    # same feature set as the tests (dev-dependencies unify features), so
    # this is a no-op instead of a second copy of every dependency.
    cargo build --locked --workspace --all-targets
  else
    cargo build --locked -p allmine-chat-bench -p chat-service -p http-edge --bins
  fi
  BIN=$REPO/target/debug
else
  say "building (release)"
  cargo build --locked --release -p allmine-chat-bench -p chat-service -p http-edge --bins
  BIN=$REPO/target/release
fi

if [ "$no_cassandra" = false ]; then
  # chatctl (built above with the servers) checks readiness, here and in
  # scripts/cassandra.sh.
  export CHATCTL=$BIN/chatctl
  if "$CHATCTL" cql-ping --nodes "$first_node" --timeout 3 --quiet; then
    say "using the CQL database at $first_node"
  else
    if [ "$cql_host" != "127.0.0.1" ] && [ "$cql_host" != "localhost" ]; then
      say "no CQL database answers at $first_node (pass --no-cassandra to skip its figures)"
      exit 1
    fi
    say "no CQL database at $first_node: starting a local Cassandra on port $cql_port"
    CASSANDRA_PORT=$cql_port scripts/cassandra.sh start
    trap 'CASSANDRA_PORT=$cql_port scripts/cassandra.sh stop || true' EXIT
  fi
fi

# Open files: 50,000 gRPC subscribers are 500 connections (100 streams each),
# but SSE viewers hold a connection each, at the generator and at the edge.
# Raise the soft limit as far as the hard one allows (servers inherit it);
# the limit reached is printed, and recorded with the run's logs. Section 4c
# (2 edges x 10,000 viewers) needs 20,000 sockets here plus a few hundred: with
# a lower limit the suite runs as many viewers as fit and says so in its table.
hard_nofile=$(ulimit -Hn)
if [ "$hard_nofile" = unlimited ]; then hard_nofile=1048576; fi
ulimit -n "$hard_nofile" 2>/dev/null || say "could not raise the open-files limit"
say "open-files limit: $(ulimit -n)"

pin=()
server_cpu=()
cores=$(nproc 2>/dev/null || echo 1)
if [ "${BENCH_PIN:-1}" != 0 ] && [ "$cores" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  generator_cpu=${BENCH_GENERATOR_CPU:-1}
  pin=(taskset -c "$generator_cpu")
  server_cpu=(--server-cpu "${BENCH_SERVER_CPU:-0}")
  say "servers on core ${BENCH_SERVER_CPU:-0}, load generator on core $generator_cpu"
else
  say "not pinning (cores: $cores; BENCH_PIN=${BENCH_PIN:-1}; taskset: $(command -v taskset || echo missing))"
fi

smoke=()
[ "$mode" = smoke ] && smoke=(--smoke)

"${pin[@]}" "$BIN/chat-bench" suite "${smoke[@]}" "${server_cpu[@]}" "${args[@]+"${args[@]}"}"
