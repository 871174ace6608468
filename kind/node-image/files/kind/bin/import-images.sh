#!/bin/bash
# Imports the image archives under /kind/images into containerd's k8s.io
# namespace (where the CRI plugin looks), then marks the import done for
# wait-images.sh.
set -o errexit -o nounset -o pipefail
marker=/run/injector-harness-images.done
for _ in $(seq 1 300); do
  ctr version >/dev/null 2>&1 && break
  sleep 0.1
done
# Unpack for the snapshotter the CRI plugin uses (the entrypoint may switch it).
snapshotter=$(sed -n 's/^[[:space:]]*snapshotter[[:space:]]*=[[:space:]]*"\(.*\)"/\1/p' /etc/containerd/config.toml)
shopt -s nullglob
for tar in /kind/images/*.tar; do
  start=$EPOCHREALTIME
  ctr -n k8s.io images import --snapshotter "$snapshotter" "$tar" >/dev/null
  echo "import-images: $tar in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }')"
done
ctr -n k8s.io images ls -q
touch "$marker"
