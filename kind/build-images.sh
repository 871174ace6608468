#!/usr/bin/env bash
# Builds the images the kind backend needs, FROM scratch, from static
# binaries built on the host (no base image can be pulled here):
#   sidecar-injector:dev        injector/Dockerfile
#   injector-harness/probe:v1   harness/probe/Dockerfile
#   image-swap-webhook:dev      harness/subjects/image-swap/Dockerfile (the
#                               second webhook the scenarios test)
# Honours CARGO_TARGET_DIR, as cargo does.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
started=$(date +%s)
echo "build-images: static release binaries for $target" >&2
# Stripped: the image carries the binary alone (about 10 MB instead of 80).
RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build --release --locked --target "$target" \
  -p sidecar-injector --bin sidecar-injector -p injector-probe --bin probe \
  -p image-swap-webhook --bin image-swap-webhook
out=${CARGO_TARGET_DIR:-target}/$target/release
for bin in sidecar-injector probe image-swap-webhook; do
  if ! file "$out/$bin" | grep -qE 'statically linked|static-pie linked'; then
    echo "build-images: $out/$bin is not statically linked" >&2
    exit 1
  fi
done
kind/docker.sh ensure
# Each image is built from a context holding its binary alone, a copy. The
# release directory as context is hundreds of MB, and worse, cargo hardlinks
# release/<bin> to deps/<bin>-<hash>: Docker's classic builder sends the
# second name as a hardlink entry without content, whose checksum does not
# change with the binary, so `COPY` stayed cached and the image stale
# (seen: the probe's new --relay flag missing from injector-harness/probe:v1).
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
image() { # DOCKERFILE TAG BINARY
  rm -rf "${context:?}"/*
  cp "$out/$3" "$context/$3"
  docker build -q -f "$1" -t "$2" "$context" >/dev/null
}
image injector/Dockerfile sidecar-injector:dev sidecar-injector
image harness/probe/Dockerfile injector-harness/probe:v1 probe
image harness/subjects/image-swap/Dockerfile image-swap-webhook:dev image-swap-webhook
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(sidecar-injector:dev|injector-harness/probe:v1|image-swap-webhook:dev) '
echo "build-images: done in $(( $(date +%s) - started )) s" >&2
