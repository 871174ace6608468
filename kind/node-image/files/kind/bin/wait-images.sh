#!/bin/bash
# ExecStartPre of kubelet: waits (at most 5 minutes) until import-images.sh
# has put the node's built-in images into containerd.
set -o errexit -o nounset -o pipefail
marker=/run/injector-harness-images.done
for _ in $(seq 1 3000); do
  [[ -e "$marker" ]] && exit 0
  sleep 0.1
done
echo "wait-images: images not imported after 300 s (see: journalctl -u injector-harness-images)" >&2
exit 1
