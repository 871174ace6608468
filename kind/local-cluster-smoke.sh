#!/usr/bin/env bash
# Smoke test of a running kind/local-cluster.sh cluster: the apiserver answers,
# the controller-manager has created the default ServiceAccount, and the
# scheduler binds a pod to a (kubelet-less) Node object that reports Ready.
#
# Usage: kind/local-cluster.sh up && kind/local-cluster-smoke.sh
set -euo pipefail

state="${HARNESS_STATE:-/tmp/injector-harness}/cluster"
export KUBECONFIG="$state/kubeconfig"
[[ -f "$KUBECONFIG" ]] || { echo "smoke: no cluster ($KUBECONFIG missing); run kind/local-cluster.sh up" >&2; exit 1; }

k() { kubectl --request-timeout=10s "$@"; }
ns=smoke-$$

k version
k get --raw /readyz && echo
k get serviceaccount default -n default

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# No kubelet will ever heartbeat for this node: the node-lifecycle controller
# marks it NotReady/unreachable about 50s (its grace period) after creation, so
# the pod is created right away. The Ready=True condition lets the
# controller remove the not-ready taint that admission puts on new nodes.
k create -f - <<EOF
apiVersion: v1
kind: Node
metadata:
  name: test-node
  labels:
    kubernetes.io/hostname: test-node
status:
  capacity: {cpu: "2", memory: 4Gi, pods: "110"}
  allocatable: {cpu: "2", memory: 4Gi, pods: "110"}
  conditions:
  - type: Ready
    status: "True"
    reason: KubeletReady
    message: fake node for the smoke test
    lastHeartbeatTime: "$now"
    lastTransitionTime: "$now"
EOF
cleanup() {
  k delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  k delete node test-node --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

k create namespace "$ns"
k create -n "$ns" -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: smoke
spec:
  containers:
  - name: c
    image: example.invalid/never-pulled:1
EOF

node=""
for _ in $(seq 1 60); do
  node=$(k get pod smoke -n "$ns" -o jsonpath='{.spec.nodeName}')
  [[ -n "$node" ]] && break
  sleep 0.5
done
k get pod smoke -n "$ns" -o wide
k get node test-node
if [[ "$node" != "test-node" ]]; then
  echo "smoke: FAILED: pod was not bound to test-node (spec.nodeName='$node')" >&2
  k get events -n "$ns" >&2 || true
  k get node test-node -o jsonpath='{.spec.taints}' >&2 || true
  exit 1
fi
echo "smoke: ok: pod $ns/smoke bound to $node by the scheduler"
