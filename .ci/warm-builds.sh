#!/usr/bin/env bash
# Every workspace member built alone after the others compiles nothing: the
# members' dependency features are unified by harness/workspace-hack (cargo
# hakari), so `cargo run -p injector-harness` and a subject's
# `cargo run -p sidecar-injector` never invalidate each other's builds.
# Fails naming the package whose build recompiled, and what it recompiled.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(injector-harness sidecar-injector image-swap-webhook injector-probe)
for p in "${packages[@]}"; do cargo build -q -p "$p"; done
failed=0
for p in "${packages[@]}"; do
  out=$(cargo build -p "$p" 2>&1)
  if compiled=$(grep 'Compiling' <<<"$out"); then
    echo "warm-builds: cargo build -p $p recompiled after the other members were built:" >&2
    echo "$compiled" >&2
    failed=1
  fi
done
if ((failed)); then
  echo "warm-builds: the members' features differ; run: cargo hakari generate && cargo hakari manage-deps (docs/contributing.md)" >&2
  exit 1
fi
echo "warm-builds: each of ${packages[*]} built alone compiles nothing"
