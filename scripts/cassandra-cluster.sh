#!/usr/bin/env bash
# A 3-node Apache Cassandra 5.0 cluster for the node-loss tests, each node a scripts/cassandra.sh
# node with its own address in the loopback range, its own run dir, and the same ports.
#
# Usage: scripts/cassandra-cluster.sh start|stop|status|stop-node N|resume-node N|contact-points
#   start          fresh cluster (run dirs wiped): the three nodes boot in parallel (every node is
#                  a seed, auto_bootstrap is off: no node streams from another), then waits until
#                  each node sees the two others UP
#   stop           stops every node of the cluster that runs (never any other Cassandra)
#   status         exit 0 iff every node answers CQL
#   stop-node N    clean stop (TERM: drain, gossip shutdown) of node N (1..3)
#   resume-node N  starts node N again on its data; waits until it answers CQL and every running
#                  node sees it UP
#   contact-points prints the CQL contact points, comma-separated (for CHAT_SCYLLA_NODES)
#
# Node N listens on 127.0.0.N (CQL and internode). The shared test node stays alone on
# 127.0.0.1:9042/7000: the cluster uses other ports, so it binds next to it without a conflict, and
# a docker-compose ScyllaDB on 0.0.0.0:9042 does not get in the way either.
#
# Environment (all optional):
#   CHAT_CLUSTER_CQL_PORT      native CQL port of every node  (default: 9342)
#   CHAT_CLUSTER_STORAGE_PORT  internode port of every node   (default: 7300)
#   CHAT_CLUSTER_HEAP          heap of each node              (default: 512M)
#   CHAT_CLUSTER_RUN_DIR       holds node1..node3             (default: <repo>/.cache/cassandra-cluster)
#   CASSANDRA_START_TIMEOUT    seconds for start/resume (default: 600 here; 180 for one node)
#   CASSANDRA_STOP_TIMEOUT     seconds a stop waits for the drain before KILL (default: 180 here)
#   CASSANDRA_CACHE, CHATCTL, JAVA: as for scripts/cassandra.sh
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
NODE_SCRIPT=$SCRIPT_DIR/cassandra.sh

CQL_PORT=${CHAT_CLUSTER_CQL_PORT:-9342}
STORAGE_PORT=${CHAT_CLUSTER_STORAGE_PORT:-7300}
HEAP=${CHAT_CLUSTER_HEAP:-512M}
BASE=$(realpath -m -- "${CHAT_CLUSTER_RUN_DIR:-$REPO/.cache/cassandra-cluster}")
NODES=(1 2 3)
# One token per node, evenly spaced over Murmur3's range (num_tokens: 1): with replication 3 every
# node holds every row anyway, but distinct tokens are required to join one ring.
TOKENS=(-9223372036854775808 -3074457345618258603 3074457345618258602)
# A hang detector, not a measure: three JVMs booting at once on 2 busy cores (nice 19, beside
# builds and benchmarks) have taken over 180 s to answer CQL after a resume. Every node's own
# start/resume wait uses it too.
export CASSANDRA_START_TIMEOUT=${CASSANDRA_START_TIMEOUT:-600}
UP_TIMEOUT=$CASSANDRA_START_TIMEOUT
# A clean stop (drain, peers told at once) is what `stop-node` promises; a KILL after 30 s of a
# drain slowed by a busy machine would make it a crash that peers detect only seconds later.
export CASSANDRA_STOP_TIMEOUT=${CASSANDRA_STOP_TIMEOUT:-180}

log() { echo "cassandra-cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

host_of() { echo "127.0.0.$1"; }

seeds() {
  local n list=()
  for n in "${NODES[@]}"; do list+=("$(host_of "$n"):$STORAGE_PORT"); done
  (IFS=,; echo "${list[*]}")
}

contact_points() {
  local n list=()
  for n in "${NODES[@]}"; do list+=("$(host_of "$n"):$CQL_PORT"); done
  (IFS=,; echo "${list[*]}")
}

check_node() {
  [[ $1 =~ ^[123]$ ]] || die "no node '$1' (nodes are 1, 2 and 3)"
}

# scripts/cassandra.sh <command> for node $1.
node() {
  local n=$1; shift
  CASSANDRA_HOST=$(host_of "$n") \
  CASSANDRA_PORT=$CQL_PORT \
  CASSANDRA_STORAGE_PORT=$STORAGE_PORT \
  CASSANDRA_RUN_DIR=$BASE/node$n \
  CASSANDRA_HEAP=$HEAP \
  CASSANDRA_SEEDS=$(seeds) \
  CASSANDRA_CLUSTER_NAME=chat-cluster-test \
  CASSANDRA_INITIAL_TOKEN=${TOKENS[$((n - 1))]} \
  CASSANDRA_HINTED_HANDOFF=true \
    "$NODE_SCRIPT" "$@"
}

running() { # node $1's pid file names a live process
  local pid_file=$BASE/node$1/cassandra.pid
  [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

# True once node $1's log says that node $2 is UP, after log line $3 (the log of a resumed node
# keeps its earlier lines, which must not count). Gossip's own line, so no JMX/nodetool is needed.
sees_up() {
  local log_file=$BASE/node$1/logs/system.log from=${3:-0}
  [[ -f $log_file ]] || return 1
  tail -n "+$((from + 1))" "$log_file" | grep -qE "(Node|InetAddress) /$(host_of "$2"):$STORAGE_PORT( state jump to NORMAL| is now UP)"
}

log_lines() { local f=$BASE/node$1/logs/system.log; [[ -f $f ]] && wc -l <"$f" || echo 0; }

# Waits until the nodes in $@ see each other UP: every pair, or with $focus set, every pair
# that includes node $focus. $mark_<n> = node n's log lines to skip.
wait_mesh() {
  local deadline=$((SECONDS + UP_TIMEOUT)) a b pending
  while :; do
    pending=""
    for a in "$@"; do
      for b in "$@"; do
        [[ $a == "$b" ]] && continue
        [[ -z ${focus:-} || $a == "${focus:-}" || $b == "${focus:-}" ]] || continue
        local mark_var=mark_$a
        sees_up "$a" "$b" "${!mark_var:-0}" || pending+=" $a->$b"
      done
    done
    [[ -z $pending ]] && return 0
    ((SECONDS < deadline)) || die "gossip did not converge within $UP_TIMEOUT s (not yet UP:$pending)"
    sleep 0.5
  done
}

cmd_start() {
  "$NODE_SCRIPT" fetch
  local start=$SECONDS n pids=() failed=0
  mkdir -p "$BASE"
  for n in "${NODES[@]}"; do
    node "$n" start &
    pids+=($!)
  done
  for n in "${!pids[@]}"; do
    wait "${pids[$n]}" || failed=1
  done
  if ((failed)); then
    cmd_stop
    die "a node failed to start (its log tail is above)"
  fi
  wait_mesh "${NODES[@]}"
  log "3 nodes up on $(contact_points) after $((SECONDS - start)) s"
}

cmd_stop() {
  local n
  for n in "${NODES[@]}"; do
    if [[ -d $BASE/node$n ]]; then node "$n" stop & fi
  done
  wait
}

cmd_status() {
  local n ok=0
  for n in "${NODES[@]}"; do node "$n" status || ok=1; done
  return $ok
}

cmd_resume_node() {
  check_node "$1"
  local n=$1 start=$SECONDS others=() m
  for m in "${NODES[@]}"; do
    [[ $m != "$n" ]] && running "$m" && others+=("$m")
  done
  # Peers' log lines from now on: an earlier "is now UP" for this node must not count.
  for m in "${others[@]}"; do local "mark_$m=$(log_lines "$m")"; done
  local "mark_$n=$(log_lines "$n")"
  node "$n" resume
  local focus=$n
  wait_mesh "$n" "${others[@]}"
  log "node $n back and seen UP by nodes ${others[*]:-none} after $((SECONDS - start)) s"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  stop-node) check_node "${2:-}"; node "$2" stop ;;
  resume-node) cmd_resume_node "${2:-}" ;;
  contact-points) contact_points ;;
  *)
    echo "usage: $0 start|stop|status|stop-node N|resume-node N|contact-points" >&2
    exit 2
    ;;
esac
