#!/usr/bin/env bash
# The tests with clients nobody on the team wrote (e2e/js), against the real
# binaries: the web chat page in headless Chromium (playwright-core driving
# Debian's chromium) and chat-service's gRPC-Web endpoint through Connect's
# gRPC-Web transport. Run by scripts/test.sh after `cargo test`; can be run
# alone.
#
# Installs what is missing: Debian's chromium (apt-get, as root; CI runs as
# root) and the npm packages pinned by e2e/js/package-lock.json (`npm ci`).
# Never `playwright install`: no browser is downloaded, playwright-core only
# drives the installed one (CHROMIUM_PATH, else `chromium` on PATH).
#
# WEB_TESTS_BUILD=all-targets (from scripts/test.sh): build as `cargo test
# --workspace` did, so the binaries reuse its compiled dependencies instead of
# a second copy with other features. UPDATE_SCREENSHOTS=1 rewrites
# docs/screenshots/; otherwise screenshots go to target/browser-screenshots/.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

say() { printf 'web_tests.sh: %s\n' "$*" >&2; }
need() {
  command -v "$1" >/dev/null 2>&1 || { say "missing '$1': $2"; exit 1; }
}
need node "Node.js 20 or later runs the tests"
need npm "npm installs their pinned packages"

if [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "no chromium: install Debian's 'chromium' package (as root), or set CHROMIUM_PATH"
    exit 1
  fi
fi

export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
if [ "${WEB_TESTS_BUILD:-}" = all-targets ]; then
  cargo build --locked --workspace --all-targets
else
  cargo build --locked -p chat-service -p http-edge --bins
fi

# The servers' logs of this run (e2e/js/lib/stack.mjs writes them).
rm -rf target/web-tests
cd e2e/js
npm ci --no-audit --no-fund --loglevel=error
# One file at a time: each starts its own chat-service and edge. The
# timeout only detects a hang (each wait inside a test has its own).
if ! node --test --test-concurrency=1 --test-timeout=300000 tests/; then
  for log in "$REPO"/target/web-tests/*.log; do
    [ -e "$log" ] || continue
    say "last lines of $(basename "$log"):"
    tail -n 30 "$log" >&2
  done
  say "failed; screenshots in target/browser-screenshots/, logs in target/web-tests/"
  exit 1
fi
