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
docker build -q -f injector/Dockerfile -t sidecar-injector:dev "$out"
docker build -q -f harness/probe/Dockerfile -t injector-harness/probe:v1 "$out"
docker build -q -f harness/subjects/image-swap/Dockerfile -t image-swap-webhook:dev "$out"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(sidecar-injector:dev|injector-harness/probe:v1|image-swap-webhook:dev) '
echo "build-images: done in $(( $(date +%s) - started )) s" >&2
