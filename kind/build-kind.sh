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
# A kind the user already has is used instead: $KIND when set, else `kind`
# on PATH when its version is one of $KIND_SUPPORTED_MINORS (versions.env).
# Building is the fallback, not the default.
#
# Usage:
#   kind/build-kind.sh          the kind to use (built if that is the choice and it is
#                               missing); progress on stderr, the binary's path on stdout
#   kind/build-kind.sh --choose print "PATH<TAB>WHY" for the kind that would be used (no build)
#   kind/build-kind.sh --path   print the pinned build's path only (no build)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env disable=SC1091
source "$here/versions.env"
: "${KIND_VERSION:?missing in versions.env}"
: "${KIND_SUPPORTED_MINORS:?missing in versions.env}"

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

# shellcheck source=lib.sh disable=SC1091
source "$here/lib.sh"

# The minor (vX.Y) of a `kind version` line ("kind v0.32.0 go1.25 linux/amd64").
kind_minor() { sed -nE 's/^kind (v[0-9]+\.[0-9]+)\.[0-9]+.*/\1/p' <<<"$1"; }

# Prints "PATH<TAB>WHY": the kind this run uses and the reason, one line.
choose() {
  if [[ -n "${KIND:-}" ]]; then
    printf '%s\t%s\n' "$KIND" "KIND is set"
    return
  fi
  local found line minor
  if found=$(command -v kind 2>/dev/null) && [[ -n "$found" ]]; then
    line=$("$found" version 2>/dev/null | head -n1 || true)
    minor=$(kind_minor "$line")
    if [[ -n "$minor" && " $KIND_SUPPORTED_MINORS " == *" $minor "* ]]; then
      printf '%s\t%s\n' "$found" "on PATH, ${line#kind } (supported: $KIND_SUPPORTED_MINORS)"
      return
    fi
    found="$found is '${line:-no version}', not one of $KIND_SUPPORTED_MINORS; "
  else
    found=""
  fi
  if [[ -x "$bin" ]]; then
    printf '%s\t%s\n' "$bin" "${found}the pinned $KIND_VERSION, built earlier"
  else
    printf '%s\t%s\n' "$bin" "${found}building the pinned $KIND_VERSION from its Go module (about 1 min cold)"
  fi
}

case "${1:-}" in
  --path) echo "$bin"; exit 0 ;;
  --choose) choose; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--choose | --path]" >&2; exit 2 ;;
esac

IFS=$'\t' read -r chosen why < <(choose)
log "kind: $chosen ($why)"
if [[ "$chosen" != "$bin" ]]; then
  echo "$chosen"
  exit 0
fi

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
