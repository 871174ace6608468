#!/usr/bin/env bash
# Builds the kind CLI from its Go module (sigs.k8s.io/kind at $KIND_VERSION
# from kind/versions.env; `go install`, CGO off, static) into a cache outside
# the repository:
#
#   ${INJECTOR_HARNESS_CACHE:-~/.cache/injector-harness}/kind/<version>-<key>/bin/kind
#
# <key> hashes the pin, the Go toolchain, the platform and this recipe, so the
# binary is rebuilt only when one of those changes; a second run is a no-op.
#
# Usage:
#   kind/build-kind.sh          build if missing; progress on stderr, the binary's path on stdout
#   kind/build-kind.sh --path   print the binary's path only (no build)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env disable=SC1091
source "$here/versions.env"
: "${KIND_VERSION:?missing in versions.env}"

# Bump when the build flags change.
RECIPE=1
# `go install pkg@version` builds with the module's own go.mod/go.sum and
# refuses -mod flags; the host's GOFLAGS must not leak in.
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=

cache_root=${INJECTOR_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/injector-harness}
key=$({
  echo "recipe=$RECIPE KIND_VERSION=$KIND_VERSION"
  go env GOVERSION GOOS GOARCH
} | sha256sum | cut -c1-12)
dir=$cache_root/kind/$KIND_VERSION-$key
bin=$dir/bin/kind

case "${1:-}" in
  --path) echo "$bin"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--path]" >&2; exit 2 ;;
esac

log() { echo "build-kind: $*" >&2; }

mkdir -p "$dir/bin"
exec 9>"$dir/.lock"
flock 9
if [[ -x "$bin" ]]; then
  log "kind $KIND_VERSION: cached ($bin)"
else
  started=$EPOCHREALTIME
  tmp=$(mktemp -d "$dir/tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "building sigs.k8s.io/kind@$KIND_VERSION ..."
  GOBIN=$tmp go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
  mv -f "$tmp/kind" "$bin"
  log "kind $KIND_VERSION: built in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }') ($bin)"
fi
"$bin" version >&2
echo "$bin"
