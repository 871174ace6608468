#!/usr/bin/env bash
# Smoke test of a kind cluster made by kind/kind-cluster.sh, with real
# containers: loads the probe image and checks that
#   1. a one-container probe pod becomes Running and Ready (tcpSocket readiness), and
#   2. two probe containers of one pod listening on the same port clash: the
#      second to bind exits, and its termination message (written by the probe
#      itself) says "Address already in use".
# Fails (non-zero) when either does not happen within KIND_SMOKE_TIMEOUT
# seconds (default 120). Pods go into a namespace of their own, deleted at the end.
#
#   kind/kind-smoke.sh            (after kind/kind-cluster.sh up and kind/build-images.sh)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=${PROBE_IMAGE:-injector-harness/probe:v1}
timeout=${KIND_SMOKE_TIMEOUT:-120}
ns=kind-smoke
eval "$("$here/kind-cluster.sh" env)"

# shellcheck source=lib.sh disable=SC1091
source "$here/lib.sh"
fail() { log "FAIL: $*"; kubectl -n "$ns" get pods -o wide >&2 || true; kubectl -n "$ns" get events >&2 || true; exit 1; }

cleanup() { kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$here/kind-cluster.sh" load "$image"
kubectl create namespace "$ns" >/dev/null

t=$(now)
kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: one
spec:
  containers:
    - name: app
      image: $image
      imagePullPolicy: Never
      args: ["--name", "app", "--listen", "10000"]
      readinessProbe:
        tcpSocket: {port: 10000}
        periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: clash
spec:
  containers:
    - name: app
      image: $image
      imagePullPolicy: Never
      args: ["--name", "app", "--listen", "10000"]
    - name: sidecar
      image: $image
      imagePullPolicy: Never
      args: ["--name", "sidecar", "--listen", "10000"]
EOF

kubectl -n "$ns" wait --for=condition=Ready pod/one --timeout="${timeout}s" >/dev/null ||
  fail "pod one did not become Ready within ${timeout}s"
log "pod one: $(kubectl -n "$ns" get pod one -o jsonpath='{.status.phase}') and Ready after $(secs "$t" "$(now)")"

# One of the two containers binds first; the other must fail with the
# probe's own message. Read it from the container's terminated state.
msg=
for ((i = 0; i < timeout; i++)); do
  msg=$(kubectl -n "$ns" get pod clash -o jsonpath='{range .status.containerStatuses[*]}{.name}{"="}{.lastState.terminated.message}{.state.terminated.message}{"\n"}{end}' |
    grep 'Address already in use' || true)
  [[ -n "$msg" ]] && break
  sleep 1
done
[[ -n "$msg" ]] || fail "no container of pod clash reported 'Address already in use' within ${timeout}s"
log "pod clash: $msg"
kubectl -n "$ns" get pods -o wide >&2
log "ok"
