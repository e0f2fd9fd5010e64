#!/usr/bin/env bash
# Single-node Apache Cassandra 5.0 for the test suite, assembled from Maven Central jars.
# (Production runs ScyllaDB; Cassandra speaks the same CQL native protocol v4.)
# One node per call; scripts/cassandra-cluster.sh runs three of them as one cluster through the
# CASSANDRA_HOST / _SEEDS / _CLUSTER_NAME / _INITIAL_TOKEN / _HINTED_HANDOFF settings below.
#
# Usage: scripts/cassandra.sh fetch|start|resume|stop|status|wait
#   fetch   download the server jars into $CASSANDRA_CACHE/lib (skipped when already complete)
#   start   fetch if needed, start a fresh node (run dir wiped) in the background, wait until ready
#   resume  start the node again on the run dir of an earlier `start`, keeping its data and its
#           rendered cassandra.yaml; waits like `start`. Refuses a run dir `start` never set up,
#           and ports that differ from the yaml's. If that node is already running, only waits.
#   stop    stop the node started by `start`/`resume` (pid file; TERM, then KILL after 30 s)
#   status  exit 0 if the node answers CQL queries, 1 otherwise
#   wait    wait (bounded) until the node answers CQL queries
#
# Environment (all optional):
#   CASSANDRA_CACHE          jar cache              (default: <repo>/.cache/cassandra)
#   CASSANDRA_RUN_DIR        data, logs, pid file   (default: <repo>/.cache/cassandra-run; wiped by start,
#                                                    kept by resume)
#   CASSANDRA_HOST           listen and rpc address (default: 127.0.0.1; any 127.x.y.z works)
#   CASSANDRA_PORT           native CQL port        (default: 9042)
#   CASSANDRA_STORAGE_PORT   internode port         (default: 7000)
#   CASSANDRA_START_TIMEOUT  seconds for start/resume/wait (default: 180)
#   CASSANDRA_STOP_TIMEOUT   seconds `stop` waits after TERM before KILL (default: 30)
#   CASSANDRA_HEAP           -Xms/-Xmx              (default: 1G)
#   CASSANDRA_SEEDS          seed list, host:port,… (default: this node, CASSANDRA_HOST:STORAGE_PORT)
#   CASSANDRA_CLUSTER_NAME   cluster_name           (default: chat-test)
#   CASSANDRA_INITIAL_TOKEN  this node's one token  (default: 0; each node of a cluster needs its own)
#   CASSANDRA_HINTED_HANDOFF true|false             (default: false; a single node has no one to hint)
#   CASSANDRA_JMX_PORT       enable JMX on 127.0.0.1 at this port (default: JMX off; no nodetool)
#   CASSANDRA_JVM_OPTS       extra JVM options, whitespace separated
#   CASSANDRA_MVN_OPTS       extra mvn options for fetch, whitespace separated (e.g. -o)
#   JAVA                     java binary (default: java on PATH, Java 17)
#   CHATCTL                  the chatctl binary, whose `cql-ping` is the readiness check
#                            (default: <repo>/target/debug/chatctl; scripts/test.sh builds it)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
CONF_SRC=$SCRIPT_DIR/cassandra

CACHE=$(realpath -m -- "${CASSANDRA_CACHE:-$REPO/.cache/cassandra}")
LIB=$CACHE/lib
MARKER=$LIB/.fetch-complete
RUN_DIR=$(realpath -m -- "${CASSANDRA_RUN_DIR:-$REPO/.cache/cassandra-run}")
RUN_DIR_TAG=$RUN_DIR/.cassandra-run-dir # only a directory holding this tag is ever wiped
PID_FILE=$RUN_DIR/cassandra.pid
LOG_DIR=$RUN_DIR/logs
HOST=${CASSANDRA_HOST:-127.0.0.1}
PORT=${CASSANDRA_PORT:-9042}
STORAGE_PORT=${CASSANDRA_STORAGE_PORT:-7000}
SEEDS=${CASSANDRA_SEEDS:-$HOST:$STORAGE_PORT}
CLUSTER_NAME=${CASSANDRA_CLUSTER_NAME:-chat-test}
INITIAL_TOKEN=${CASSANDRA_INITIAL_TOKEN:-0}
HINTED_HANDOFF=${CASSANDRA_HINTED_HANDOFF:-false}
START_TIMEOUT=${CASSANDRA_START_TIMEOUT:-180}
HEAP=${CASSANDRA_HEAP:-1G}
JAVA=${JAVA:-java}
STOP_TIMEOUT=${CASSANDRA_STOP_TIMEOUT:-30}
CHATCTL=${CHATCTL:-$REPO/target/debug/chatctl}

log() { echo "cassandra: $*" >&2; }
die() { log "error: $*"; exit 1; }

cql_ping() { # extra args go to `chatctl cql-ping`; prints the node's release_version
  "$CHATCTL" cql-ping --nodes "$HOST:$PORT" "$@"
}

# The fetch marker records what was fetched, so a version bump in pom.xml refetches.
fetch_stamp() { sha256sum "$CONF_SRC/pom.xml" | cut -d' ' -f1; }

cmd_fetch() {
  local stamp; stamp=$(fetch_stamp)
  if [[ -f $MARKER && $(cat "$MARKER") == "$stamp" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed to download Cassandra's jars from Maven Central)"
  mkdir -p "$CACHE"
  # Serialize concurrent fetches (two test runs starting at once).
  exec 9>"$CACHE/.fetch.lock"
  flock 9
  if [[ -f $MARKER && $(cat "$MARKER") == "$stamp" ]]; then
    exec 9>&-; return 0
  fi
  local version
  version=$(sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$CONF_SRC/pom.xml")
  log "fetching cassandra-all $version and its dependencies from Maven Central into $LIB"
  local start=$SECONDS tmp="$CACHE/lib.tmp.$$"
  rm -rf "$tmp"
  # mvn's output goes to a file (shown only on failure; even -q -B prints stray ANSI codes).
  # shellcheck disable=SC2086
  if ! mvn -q -B -Dstyle.color=never -f "$CONF_SRC/pom.xml" ${CASSANDRA_MVN_OPTS:-} \
        dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime \
        >"$CACHE/fetch.log" 2>&1; then
    tail -n 40 "$CACHE/fetch.log" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (full output: $CACHE/fetch.log)"
  fi
  ls "$tmp"/cassandra-all-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "cassandra-all jar missing after fetch"; }
  ls "$tmp"/jamm-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "jamm jar missing after fetch"; }
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  echo "$stamp" >"$MARKER"
  log "fetched $(find "$LIB" -name '*.jar' | wc -l) jars ($(du -sh "$LIB" | cut -f1)) in $((SECONDS - start)) s"
  exec 9>&-
}

# pid of the node we started, if it is still running (checked against its command line, so a
# recycled pid is never signalled), else empty.
running_pid() {
  [[ -f $PID_FILE ]] || return 0
  local pid; pid=$(cat "$PID_FILE" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  [[ -r /proc/$pid/cmdline ]] || return 0
  local state; state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [[ $state != Z && -n $state ]] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "org.apache.cassandra.service.CassandraDaemon" &&
     tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-Dcassandra.storagedir=$RUN_DIR "; then
    echo "$pid"
  fi
}

# True once pid $1 has fully exited. While the JVM shuts down, its main thread can already be a
# zombie (State Z, empty cmdline) with other threads still running and ports still bound, so a
# zombie only counts as gone when no thread is left.
pid_gone() {
  local status; status=$(cat "/proc/$1/status" 2>/dev/null) || return 0
  [[ $(awk '/^State:/{print $2}' <<<"$status") == Z && $(awk '/^Threads:/{print $2}' <<<"$status") -le 1 ]]
}

port_open() { # true if something accepts TCP connections on $1 (bash's /dev/tcp)
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

show_log_tail() {
  if [[ -s $LOG_DIR/system.log ]]; then
    log "last 60 lines of $LOG_DIR/system.log:"
    tail -n 60 "$LOG_DIR/system.log" >&2
  fi
  # JVM-level failures (bad option, class not found, crash) only reach stdout.log.
  if [[ -s $LOG_DIR/stdout.log ]]; then
    log "last 60 lines of $LOG_DIR/stdout.log (WARN and above, JVM output):"
    tail -n 60 "$LOG_DIR/stdout.log" >&2
  fi
}

# Ready = a driver session (the `scylla` driver, as chat-service connects) answers a query on
# system.local and then one on system_schema (`chatctl cql-ping`): the native port opens at the
# very end of startup, but we want proof that queries are actually served. Fails early if the pid
# we started dies.
wait_ready() {
  local pid=${1:-} deadline=$((SECONDS + START_TIMEOUT)) start=$SECONDS version
  while :; do
    if [[ -n $pid ]] && [[ -z $(running_pid) ]]; then
      log "error: java process $pid exited during startup"
      show_log_tail
      return 1
    fi
    if version=$(cql_ping --timeout 5 2>/dev/null); then
      log "ready on $HOST:$PORT after $((SECONDS - start)) s (release_version $version${pid:+, pid $pid})"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      log "error: no CQL answer on $HOST:$PORT within $START_TIMEOUT s"
      show_log_tail
      return 1
    fi
    sleep 1
  done
}

render_yaml() {
  sed -e "s|@RUN_DIR@|$RUN_DIR|g" \
      -e "s|@LISTEN_ADDRESS@|$HOST|g" \
      -e "s|@NATIVE_PORT@|$PORT|g" \
      -e "s|@STORAGE_PORT@|$STORAGE_PORT|g" \
      -e "s|@SEEDS@|$SEEDS|g" \
      -e "s|@CLUSTER_NAME@|$CLUSTER_NAME|g" \
      -e "s|@HINTED_HANDOFF@|$HINTED_HANDOFF|g" \
      "$CONF_SRC/cassandra.yaml.template" >"$RUN_DIR/conf/cassandra.yaml"
  if grep -q '@[A-Z_]*@' "$RUN_DIR/conf/cassandra.yaml"; then
    die "unrendered placeholder in $RUN_DIR/conf/cassandra.yaml"
  fi
}

require_tools() {
  command -v "$JAVA" >/dev/null || die "java not found"
  require_chatctl
}

# Not built here: this script also runs inside `cargo test` (the fault tests), where a nested
# cargo build would wait for the build directory's lock that the outer cargo holds.
require_chatctl() {
  [[ -x $CHATCTL ]] ||
    die "$CHATCTL not found (it runs the CQL readiness check): run \`cargo build --locked -p chat-service --bin chatctl\` or set CHATCTL"
}

require_ports_free() {
  local p
  for p in "$PORT" "$STORAGE_PORT"; do
    if port_open "$p"; then
      die "port $HOST:$p is already in use by another process (set CASSANDRA_PORT / CASSANDRA_STORAGE_PORT)"
    fi
  done
}

cmd_start() {
  require_tools
  cmd_fetch

  local old; old=$(running_pid)
  if [[ -n $old ]]; then
    log "a node from a previous start is still running (pid $old); stopping it to start clean"
    cmd_stop
  fi
  require_ports_free

  if [[ -d $RUN_DIR && ! -f $RUN_DIR_TAG ]] && [[ -n $(ls -A "$RUN_DIR") ]]; then
    die "$RUN_DIR is not empty and was not created by this script; refusing to wipe it"
  fi
  rm -rf "$RUN_DIR"
  mkdir -p "$RUN_DIR"/{conf,data,commitlog,saved_caches,hints,cdc_raw,logs,triggers}
  touch "$RUN_DIR_TAG"
  render_yaml
  cp "$CONF_SRC/logback.xml" "$RUN_DIR/conf/logback.xml"

  launch_and_wait
}

# The value of a top-level `key: value` line in the rendered yaml.
yaml_value() { sed -n "s/^$1: *\([^ #]*\).*/\1/p" "$RUN_DIR/conf/cassandra.yaml" | head -n 1; }

# Same node, same data: no wipe, no re-render. The yaml fixes the ports, so they must match the
# ones this script would probe (CASSANDRA_PORT / CASSANDRA_STORAGE_PORT); a mismatch is refused
# rather than silently waiting on the wrong port.
cmd_resume() {
  if [[ ! -f $RUN_DIR_TAG || ! -f $RUN_DIR/conf/cassandra.yaml || ! -f $RUN_DIR/conf/logback.xml ]]; then
    die "$RUN_DIR was never initialised by \`$0 start\` (no $(basename "$RUN_DIR_TAG") tag or conf/cassandra.yaml); run start first"
  fi
  local yaml_port yaml_storage_port yaml_host
  yaml_port=$(yaml_value native_transport_port)
  yaml_storage_port=$(yaml_value storage_port)
  yaml_host=$(yaml_value listen_address)
  if [[ $yaml_port != "$PORT" || $yaml_storage_port != "$STORAGE_PORT" ]]; then
    die "$RUN_DIR/conf/cassandra.yaml uses native port ${yaml_port:-?} and storage port ${yaml_storage_port:-?}," \
        "but this call has $PORT and $STORAGE_PORT; set CASSANDRA_PORT=${yaml_port:-?} CASSANDRA_STORAGE_PORT=${yaml_storage_port:-?}"
  fi
  if [[ $yaml_host != "$HOST" ]]; then
    die "$RUN_DIR/conf/cassandra.yaml listens on ${yaml_host:-?}, but this call has $HOST; set CASSANDRA_HOST=${yaml_host:-?}"
  fi
  require_tools
  cmd_fetch

  local old; old=$(running_pid)
  if [[ -n $old ]]; then
    log "the node on $RUN_DIR is already running (pid $old); waiting for it"
    wait_ready "$old" || exit 1 # not stopped: this call did not start it
    return 0
  fi
  require_ports_free
  log "resuming on existing run dir $RUN_DIR (data kept)"
  launch_and_wait
}

# Launches java on the prepared $RUN_DIR, waits until ready; on failure stops it and exits 1.
launch_and_wait() {
  local jamm
  jamm=$(find "$LIB" -maxdepth 1 -name 'jamm-*.jar' | head -n 1)
  [[ -n $jamm ]] || die "jamm jar not found in $LIB (remove $MARKER and fetch again)"

  local -a opts=(
    -Xms"$HEAP" -Xmx"$HEAP" -Xss256k
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
    -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError
    -XX:ErrorFile="$LOG_DIR/hs_err_pid%p.log"
    -javaagent:"$jamm"
    # Java 17 module access, from Cassandra 5.0's conf/jvm17-server.options
    -Djdk.attach.allowAttachSelf=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true
    -Dio.netty.allocator.maxOrder=11
    -Djava.net.preferIPv4Stack=true
    -Dchronicle.analytics.disable=true
    # What bin/cassandra sets
    -Dcassandra.config="file://$RUN_DIR/conf/cassandra.yaml"
    -Dcassandra.storagedir="$RUN_DIR"
    -Dcassandra.logdir="$LOG_DIR"
    -Dcassandra-foreground=yes
    -Dcassandra.triggers_dir="$RUN_DIR/triggers"
    -Dlogback.configurationFile="file://$RUN_DIR/conf/logback.xml"
    # Fast single-node boot
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.ring_delay_ms=1000
    -Dcassandra.superuser_setup_delay_ms=0
    -Dcassandra.load_ring_state=false
    -Dcassandra.initial_token="$INITIAL_TOKEN"
    # Skip the 2 s sleep after the gossip shutdown announcement on stop (a single node has no peers;
    # in a cluster the announcement itself is still sent, so peers mark the node down at once).
    -Dcassandra.shutdown_announce_in_ms=0
    # Throw-away data (the run dir is wiped on start): no fsync, no flush of system/schema
    # tables on every schema change -> much cheaper CREATE/DROP KEYSPACE/TABLE. Still fine for
    # `stop` + `resume`: a clean stop (TERM) drains every memtable, schema included, and unsynced
    # writes sit in the page cache, lost only if the OS dies. After a KILL, rows replay from the
    # commit log, but a table created since the last flush is unknown at replay: its rows are
    # skipped (measured; see scripts/cassandra/README.md).
    -Dcassandra.skip_sync=true
    -Dcassandra.unsafesystem=true
    -Dcassandra.test.flush_local_schema_changes=false
  )
  if [[ -n ${CASSANDRA_JMX_PORT:-} ]]; then
    opts+=(-Dcassandra.jmx.local.port="$CASSANDRA_JMX_PORT")
  fi
  if [[ -n ${CASSANDRA_JVM_OPTS:-} ]]; then
    # shellcheck disable=SC2206
    opts+=(${CASSANDRA_JVM_OPTS})
  fi

  # New session (setsid) so a Ctrl-C in the calling terminal does not hit the node.
  local -a launcher=(setsid)
  # CassandraDaemon always calls mlockall(MCL_CURRENT), with no option to skip it. As root
  # (CAP_IPC_LOCK) that succeeds and pins the whole 1G heap plus every mapping in RAM: ~1.5 GB RSS
  # and a slower boot. Without the capability (and with a small RLIMIT_MEMLOCK, set below) it just
  # logs "Unable to lock JVM memory (ENOMEM)" and goes on.
  if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null && setpriv --bounding-set=-ipc_lock true 2>/dev/null; then
    launcher+=(setpriv --bounding-set=-ipc_lock)
  fi

  log "starting Cassandra on $HOST:$PORT (storage port $STORAGE_PORT, heap $HEAP, run dir $RUN_DIR${CASSANDRA_CLUSTER_NAME:+, cluster $CLUSTER_NAME, seeds $SEEDS})"
  # The inner shell writes its own pid and then execs java, so the pid file holds the java pid.
  (
    cd "$RUN_DIR"
    ulimit -S -l 1024 2>/dev/null || true
    exec "${launcher[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
      "$JAVA" "${opts[@]}" -cp "$RUN_DIR/conf:$LIB/*" org.apache.cassandra.service.CassandraDaemon \
      </dev/null >"$LOG_DIR/stdout.log" 2>&1
  ) &
  local i pid=""
  for i in $(seq 1 50); do
    [[ -s $PID_FILE ]] && pid=$(running_pid) && [[ -n $pid ]] && break
    sleep 0.1
  done
  if [[ -z $pid ]]; then
    log "error: java process exited right after launch"
    show_log_tail
    exit 1
  fi
  if ! wait_ready "$pid"; then
    # Do not leave a half-started node behind.
    [[ -z $(running_pid) ]] || cmd_stop
    exit 1
  fi
}

cmd_stop() {
  local pid; pid=$(running_pid)
  if [[ -z $pid ]]; then
    log "not running (no live pid in $PID_FILE)"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while ! pid_gone "$pid"; do
    if ((SECONDS >= deadline)); then
      log "pid $pid still alive after $STOP_TIMEOUT s; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      local i
      for i in $(seq 1 50); do pid_gone "$pid" && break; sleep 0.1; done
      break
    fi
    sleep 0.5
  done
  pid_gone "$pid" || die "pid $pid did not exit"
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  require_chatctl
  local version pid; pid=$(running_pid)
  if version=$(cql_ping --timeout 3 2>/dev/null); then
    log "up on $HOST:$PORT (release_version $version${pid:+, pid $pid})"
    return 0
  fi
  log "not answering CQL on $HOST:$PORT${pid:+ (pid $pid is running)}"
  return 1
}

cmd_wait() {
  require_chatctl
  wait_ready "$(running_pid)"
}

case ${1:-} in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  resume) cmd_resume ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  wait) cmd_wait ;;
  *)
    echo "usage: $0 fetch|start|resume|stop|status|wait" >&2
    exit 2
    ;;
esac
