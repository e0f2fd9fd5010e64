#!/usr/bin/env bash
# The contract's own checks (part of scripts/test.sh; also runs alone):
#
#   buf lint       the rules of proto/buf.yaml (each exception there says why)
#   buf breaking   proto/proto against the same directory at PROTO_BREAKING_AGAINST
#                  (default HEAD~1: on CI's clone of main, the main before the
#                  change under test; locally, the commit before the last one)
#
# buf is a Go program: when .cache/tools/buf-<version>/buf is missing it is
# installed there once with `go install` at the pinned version below (needs
# `go`; a few minutes the first time, seconds with a warm Go build cache).
#
# The previous commit's protos are taken with `git archive`, so this works in
# a worktree too. In a shallow clone without that commit the breaking check
# cannot run: it says so and is skipped (deepen the clone to run it); lint
# always runs.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

say() { printf 'proto-check.sh: %s\n' "$*" >&2; }

BUF_VERSION=v1.75.0
BUF=${BUF:-$REPO/.cache/tools/buf-$BUF_VERSION/buf}

if [ ! -x "$BUF" ]; then
  command -v go >/dev/null 2>&1 || { say "missing 'go': it installs buf $BUF_VERSION"; exit 1; }
  say "installing buf $BUF_VERSION into $(dirname "$BUF") (go install, once)"
  GOBIN=$(dirname "$BUF") GOFLAGS=-buildvcs=false go install "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
fi

"$BUF" lint proto
say "buf lint: clean"

against=${PROTO_BREAKING_AGAINST:-HEAD~1}
if commit=$(git rev-parse --verify --quiet "$against^{commit}"); then
  previous=$REPO/target/proto-check/previous
  rm -rf "$previous"
  mkdir -p "$previous"
  git archive "$commit" proto/proto | tar -x -C "$previous"
  "$BUF" breaking proto --against "$previous/proto/proto"
  say "buf breaking: nothing breaks against $against ($(git rev-parse --short "$commit"))"
elif [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  say "buf breaking SKIPPED: $against is not in this shallow clone (git fetch --deepen=1, or set PROTO_BREAKING_AGAINST)"
else
  say "buf breaking SKIPPED: no commit $against (the first commit?)"
fi
