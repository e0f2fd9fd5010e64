#!/usr/bin/env bash
# The REST contract, checked from outside: schemathesis (pinned in
# scripts/contract-requirements.txt, installed into .cache/contract-venv/)
# reads the edge's own /openapi.json and sends generated requests, valid and
# invalid, to the real edge in front of the real chat-service (embedded
# store, a fresh data directory, ephemeral ports). It fails on any 5xx other
# than a documented one, and on any answer that does not conform to the
# document: its status, content type, headers and body schema.
# Run by scripts/test.sh after `cargo test`; can be run alone.
#
# Bounded: CONTRACT_MAX_EXAMPLES generated cases per operation (default 40),
# CONTRACT_SEED for a reproducible run (default fixed; `random` for a new one
# each time), a per-request timeout and a wall-clock cap on the whole run
# (CONTRACT_TIMEOUT_SECS, default 600).
#
# The setup, so that the generated requests can succeed, not only be
# refused: the token (`chatctl token`) is the owner's of a registered stream
# whose id is the document's example. The edge may hold one event stream and
# this script holds it open, so that the live route answers every accepted
# request with its documented 503 (shed, `Retry-After`) instead of a stream
# that never ends; the SSE answer itself is checked here once (200,
# text/event-stream) and by the edge's own tests.
#
# CONTRACT_TESTS_BUILD=all-targets (from scripts/test.sh): build as `cargo
# test --workspace` did, so that the binaries reuse its compiled dependencies.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

say() { printf 'contract_tests.sh: %s\n' "$*" >&2; }
need() {
  command -v "$1" >/dev/null 2>&1 || { say "missing '$1': $2"; exit 1; }
}
need python3 "Python 3.9 or later runs schemathesis"
need curl "curl holds the event stream open"

MAX_EXAMPLES=${CONTRACT_MAX_EXAMPLES:-40}
SEED=${CONTRACT_SEED:-20260115}
TIMEOUT_SECS=${CONTRACT_TIMEOUT_SECS:-600}
# No 5xx but the documented 503, and every answer as documented.
CHECKS=${CONTRACT_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}
OUT=$REPO/target/contract-tests
# The document's examples (see http-edge/src/openapi/): the stream the
# generated requests name, and its owner, whose token they carry.
STREAM_ID=64d15f9e2e6c8f4d5a123000
OWNER_ID=64d15f9e2e6c8f4d5a123456

# The venv, rebuilt whenever the pinned list changes.
VENV=$REPO/.cache/contract-venv
REQUIREMENTS=$REPO/scripts/contract-requirements.txt
stamp=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements-sha256" 2>/dev/null)" != "$stamp" ]; then
  say "installing schemathesis into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  echo "$stamp" >"$VENV/.requirements-sha256"
fi

export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
if [ "${CONTRACT_TESTS_BUILD:-}" = all-targets ]; then
  cargo build --locked --workspace --all-targets
else
  cargo build --locked -p chat-service -p http-edge --bins
fi
BIN=$REPO/target/debug

rm -rf "$OUT"
mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# The address a server names in its log, within 60 s.
address_in() {
  local log=$1 pattern=$2 pid=$3
  for _ in $(seq 1 300); do
    local found
    found=$(sed -n "s/.*$pattern[^0-9]*\([0-9.]*:[0-9]*\).*/\1/p" "$log" | head -n 1)
    if [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { say "$(basename "$log" .log) exited during start-up:"; tail -n 30 "$log" >&2; return 1; }
    sleep 0.2
  done
  say "$(basename "$log" .log) did not start within 60 s"
  return 1
}

show_logs() {
  for log in "$OUT"/*.log; do
    [ -e "$log" ] || continue
    say "last lines of $(basename "$log"):"
    tail -n 30 "$log" >&2
  done
}

# A secret for this run only; chatctl and chat-service read it from the
# environment, never from a command line `ps` would show.
CHAT_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export CHAT_JWT_SECRET

CHAT_GRPC_ADDR=127.0.0.1:0 CHAT_STORE=embedded CHAT_DATA_DIR="$work/data" \
  CHAT_SHUTDOWN_GRACE_SECS=2 RUST_LOG=info NO_COLOR=1 \
  "$BIN/chat-service" >"$OUT/chat-service.log" 2>&1 &
pids+=($!)
grpc_addr=$(address_in "$OUT/chat-service.log" "chat-service listening.*addr" "${pids[-1]}")

EDGE_HTTP_ADDR=127.0.0.1:0 EDGE_CHAT_SERVICE_URL="http://$grpc_addr" \
  EDGE_MAX_EVENT_STREAMS=1 RUST_LOG=info NO_COLOR=1 \
  "$BIN/http-edge" >"$OUT/http-edge.log" 2>&1 &
pids+=($!)
edge_addr=$(address_in "$OUT/http-edge.log" "local_addr" "${pids[-1]}")
edge=http://$edge_addr
say "chat-service at $grpc_addr, the edge at $edge"

owner_token=$("$BIN/chatctl" token --sub "$OWNER_ID" --username owner)
service_token=$("$BIN/chatctl" token --username stream-service --roles service)
CHATCTL_URL=http://$grpc_addr CHATCTL_TOKEN=$service_token \
  "$BIN/chatctl" register-stream --stream "$STREAM_ID" --owner "$OWNER_ID" >/dev/null

# The edge's one event stream, held open until the end.
curl -sS -N -D "$work/events-head" -o /dev/null \
  -H "Authorization: Bearer $owner_token" \
  "$edge/api/v1/live-stream/$STREAM_ID/chat/events" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 100); do
  grep -qi '^content-type: text/event-stream' "$work/events-head" 2>/dev/null && break
  sleep 0.1
done
if ! head -n 1 "$work/events-head" 2>/dev/null | grep -q ' 200'; then
  say "the held event stream did not open:"
  cat "$work/events-head" >&2 2>/dev/null || true
  show_logs
  exit 1
fi
grep -qi '^content-type: text/event-stream' "$work/events-head" || {
  say "the event stream is not text/event-stream"
  exit 1
}

seed_option=(--seed "$SEED")
[ "$SEED" = random ] && seed_option=()

say "schemathesis: at most $MAX_EXAMPLES cases per operation, seed $SEED, at most $TIMEOUT_SECS s"
status=0
# From $OUT: schemathesis keeps its example database in the working directory.
(cd "$OUT" && timeout --kill-after=10 "$TIMEOUT_SECS" \
  "$VENV/bin/schemathesis" --no-color --config-file "$REPO/scripts/schemathesis.toml" \
  run "$edge/openapi.json" \
  --checks "$CHECKS" \
  --header "Authorization: Bearer $owner_token" \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" \
  "${seed_option[@]}" \
  --request-timeout 10 \
  --workers 1 \
  --report junit --report-dir "$OUT" \
  >"$OUT/schemathesis.log" 2>&1) || status=$?

if [ "$status" -ne 0 ]; then
  cat "$OUT/schemathesis.log" >&2
  [ "$status" -eq 124 ] && say "schemathesis did not finish within $TIMEOUT_SECS s"
  show_logs
  say "failed (exit $status); the report is in $OUT/"
  exit 1
fi
# 503 is allowed above as shedding only: any other 503 (chat-service
# unreachable, not serving) is a failure of this run.
other_unavailable=$(grep 'status=503 reason=' "$OUT/http-edge.log" | grep -vc 'reason="OVERLOADED"' || true)
if [ "$other_unavailable" -ne 0 ]; then
  grep 'status=503 reason=' "$OUT/http-edge.log" | grep -v 'reason="OVERLOADED"' | head -n 5 >&2
  say "failed: $other_unavailable answers were 503 without being shed load"
  exit 1
fi
tail -n 15 "$OUT/schemathesis.log" >&2
say "passed (the report is in $OUT/)"
