#!/usr/bin/env bash
# The one run command (README): builds and starts chat-service (embedded
# store, no other server needed) and http-edge together in the foreground,
# then prints the URLs, working dev tokens (`chatctl token`) and
# ready-to-paste commands.
# Ctrl-C stops both cleanly.
#
# Environment: everything chat-service and http-edge read (CHAT_*, EDGE_*;
# see README). Without CHAT_JWT_SECRET or CHAT_JWT_PUBLIC_KEY_FILE a dev
# secret is generated and kept in .cache/dev-jwt-secret.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

say() { printf 'dev.sh: %s\n' "$*" >&2; }

export CHAT_GRPC_ADDR=${CHAT_GRPC_ADDR:-127.0.0.1:50051}
export CHAT_DATA_DIR=${CHAT_DATA_DIR:-$REPO/data}
export EDGE_HTTP_ADDR=${EDGE_HTTP_ADDR:-127.0.0.1:8080}
export EDGE_CHAT_SERVICE_URL=${EDGE_CHAT_SERVICE_URL:-http://$CHAT_GRPC_ADDR}
export RUST_LOG=${RUST_LOG:-info}

if [ -z "${CHAT_JWT_SECRET:-}" ] && [ -z "${CHAT_JWT_PUBLIC_KEY_FILE:-}" ]; then
  mkdir -p .cache
  if [ ! -s .cache/dev-jwt-secret ]; then
    # 32 random bytes as 64 hex digits.
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > .cache/dev-jwt-secret
  fi
  CHAT_JWT_SECRET=$(cat .cache/dev-jwt-secret)
  export CHAT_JWT_SECRET
  cat >&2 <<WARN

  ************************************************************************
  *  NO JWT KEY CONFIGURED: using a generated DEVELOPMENT secret from    *
  *  .cache/dev-jwt-secret. Anyone with that file can mint tokens.       *
  *  Set CHAT_JWT_SECRET or CHAT_JWT_PUBLIC_KEY_FILE for anything real.  *
  ************************************************************************

WARN
fi

say "building chat-service and http-edge (first build takes a few minutes)"
cargo build --locked -p chat-service -p http-edge --bins
BIN=$REPO/target/debug

pids=()
stop_all() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# The edge's own token for its shared upstream feeds (one SubscribeMessages
# per stream, whatever the number of viewers): role "service", 30 days.
# Unset (e.g. with only CHAT_JWT_PUBLIC_KEY_FILE), every SSE viewer gets a
# subscription of its own, as before the fan-out.
if [ -z "${EDGE_UPSTREAM_TOKEN:-}" ] && [ -n "${CHAT_JWT_SECRET:-}" ]; then
  EDGE_UPSTREAM_TOKEN=$("$BIN/chatctl" token --username http-edge --roles service --ttl 2592000)
  export EDGE_UPSTREAM_TOKEN
fi

"$BIN/chat-service" & pids+=($!)
"$BIN/http-edge" & pids+=($!)

edge_url="http://$EDGE_HTTP_ADDR"
for _ in $(seq 1 100); do
  if curl -fsS "$edge_url/readyz" >/dev/null 2>&1; then break; fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { say "a service exited during start-up (see its log above)"; exit 1; }
  done
  sleep 0.2
done
curl -fsS "$edge_url/readyz" >/dev/null 2>&1 || { say "not ready after 20 s"; exit 1; }

# A demo stream, registered the way the stream service would (ChatAdminService
# with a `service` token), owned by the user whose token is printed below.
stream_id=64d15f9e2e6c8f4d5a123000
owner_id=64d15f9e2e6c8f4d5a123456
owner_token="" viewer_token="" service_token=""
if [ -n "${CHAT_JWT_SECRET:-}" ]; then
  # chatctl reads the secret from CHAT_JWT_SECRET (exported above), never
  # from the command line, where `ps` would show it.
  owner_token=$("$BIN/chatctl" token --sub "$owner_id" --username streamer --name Stream --surname Owner)
  viewer_token=$("$BIN/chatctl" token)
  service_token=$("$BIN/chatctl" token --username stream-service --roles service)
  CHATCTL_URL=http://$CHAT_GRPC_ADDR CHATCTL_TOKEN=$service_token \
    "$BIN/chatctl" register-stream --stream "$stream_id" --owner "$owner_id" >/dev/null
else
  say "tokens are not printed: with a public-key JWT configuration, mint them with your own key"
fi

cat <<READY

Allmine live chat is running.
  REST (http-edge):     $edge_url        (health: $edge_url/healthz, readiness: $edge_url/readyz)
  Web chat page:        $edge_url/       (open the link with a token below)
  gRPC (chat-service):  $CHAT_GRPC_ADDR  (reflection on; try: grpcurl -plaintext $CHAT_GRPC_ADDR list)
  Data directory:       $CHAT_DATA_DIR
  Demo stream:          $stream_id (registered, chat open, owner $owner_id)

Web chat page (the token rides in the URL fragment, never sent to a server):
  $edge_url/#stream=$stream_id&token=$viewer_token
  As the owner: $edge_url/#stream=$stream_id&token=$owner_token

Development tokens (24 h):
  TOKEN=$viewer_token
  OWNER_TOKEN=$owner_token     # the stream's owner: may ban and appoint moderators
  SERVICE_TOKEN=$service_token # role "service": ChatAdminService (chatctl)

Send a message over REST:
  curl -i -X POST "$edge_url/api/v1/live-stream/$stream_id/chat/messages" \\
    -H "Authorization: Bearer $viewer_token" \\
    -H "Content-Type: application/json" \\
    -d '{"content": "Herkese selam! Yayın çok güzel."}'

Or over gRPC:
  grpcurl -plaintext -H "authorization: Bearer $viewer_token" \\
    -d '{"stream_id": "$stream_id", "content": "Herkese selam!"}' \\
    $CHAT_GRPC_ADDR allmine.chat.v1.ChatService/SendMessage

As the owner, time a user out for 60 s:
  curl -i -X POST "$edge_url/api/v1/live-stream/$stream_id/chat/bans" \\
    -H "Authorization: Bearer $owner_token" -H "Content-Type: application/json" \\
    -d '{"userId": "<user id>", "durationSeconds": 60, "reason": "spam"}'

Admin (as the stream service): target/debug/chatctl --token "\$SERVICE_TOKEN" slow-mode --stream $stream_id --seconds 10
Mint other tokens: CHAT_JWT_SECRET="\$(cat .cache/dev-jwt-secret)" target/debug/chatctl token --username alice
Press Ctrl-C to stop both services.
READY

# Stay in the foreground until a service exits or Ctrl-C.
wait -n "${pids[@]}" || true
say "a service exited; stopping the other"
