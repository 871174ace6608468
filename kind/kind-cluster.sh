#!/usr/bin/env bash
# Creates and deletes the harness's kind cluster.
#
#   kind/kind-cluster.sh up       create the cluster (or reuse one of that name) and wait for Ready
#   kind/kind-cluster.sh down     delete the cluster, only if `up` created it
#   kind/kind-cluster.sh env      print `export KUBECONFIG=...`
#   kind/kind-cluster.sh load IMAGE...   kind load docker-image into the cluster's nodes
#
# Environment:
#   KIND_CLUSTER_NAME  cluster name (default injector-harness)
#   KIND_NODE_IMAGE    node image; default: the offline image from
#                      kind/build-node-image.sh (built when missing). Online,
#                      a stock kindest/node image of the pinned minor works too.
#   KIND_CONFIG        kind config (default kind/cluster.yaml)
#   KIND_WAIT          how long `kind create cluster` waits for Ready (default 180s)
#   HARNESS_STATE      state root (default /tmp/injector-harness)
#
# State in $HARNESS_STATE/kind: <name>.kubeconfig; <name>.owner, the one
# record of who made the cluster, shared with the harness (`by=kind-cluster.sh`
# or `by=injector-harness`, the node image, the time, a harness run's pid; a
# harness run holds <name>.owner.lock while it lives). `down` deletes only a
# cluster whose record says `up` made it; `up` never reuses a cluster a live
# harness run owns (that run deletes it when it ends), and adopts one a killed
# run left. <name>.network-created marks kind's Docker network "kind" as made
# by `up`.
# No process outlives these commands except the dockerd that kind/docker.sh
# may start (recorded in $HARNESS_STATE/dockerd.pid; `kind/docker.sh stop`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name=${KIND_CLUSTER_NAME:-injector-harness}
config=${KIND_CONFIG:-$here/cluster.yaml}
wait_for=${KIND_WAIT:-180s}
state=${HARNESS_STATE:-/tmp/injector-harness}/kind
kubeconfig=$state/$name.kubeconfig
owner=$state/$name.owner
owner_lock=$state/$name.owner.lock
network_created=$state/$name.network-created

# shellcheck source=lib.sh disable=SC1091
source "$here/lib.sh"

kind_bin() { "$here/build-kind.sh"; }

exists() { "$1" get clusters 2>/dev/null | grep -qx "$name"; }

# record FIELD: a field of the ownership record (empty when absent).
record() { sed -n "s/^$1=//p" "$owner" 2>/dev/null | head -n 1; }
# Whether a harness run holds the record's lock (it lives; the kernel drops
# the lock when it dies, however it dies).
harness_alive() { [[ -f "$owner_lock" ]] && ! flock -n "$owner_lock" true; }
write_record() {
  printf 'by=kind-cluster.sh
image=%s
created=%s
' "$1" "$2" >"$owner"
}

up() {
  "$here/docker.sh" ensure
  local kind image t
  kind=$(kind_bin)
  mkdir -p "$state"
  if harness_alive; then
    die "cluster $name belongs to a running harness run (pid $(record pid)), which deletes it when it ends; use another KIND_CLUSTER_NAME"
  fi
  if exists "$kind"; then
    case $(record by) in
      kind-cluster.sh) log "cluster $name exists (created by an earlier up); reusing it" ;;
      injector-harness)
        log "cluster $name was left by a harness run that did not finish (pid $(record pid)); reusing it, and down will delete it"
        write_record "$(record image)" "$(record created)"
        ;;
      *) log "cluster $name exists; reusing it (down will not delete it)" ;;
    esac
    "$kind" get kubeconfig --name "$name" >"$kubeconfig"
    return 0
  fi
  image=${KIND_NODE_IMAGE:-$("$here/build-node-image.sh")}
  log "creating cluster $name from $image ($config)"
  t=$(now)
  # Recorded before create: a create that fails half-way still leaves
  # containers that down must remove.
  write_record "$image" "$(date +%s)"
  # kind creates the Docker network "kind" when missing and never removes it;
  # down removes it only if this up created it and nothing else uses it.
  if ! docker network inspect kind >/dev/null 2>&1; then
    touch "$network_created"
  fi
  if ! "$kind" create cluster --name "$name" --image "$image" --config "$config" \
    --kubeconfig "$kubeconfig" --wait "$wait_for"; then
    log "kind create cluster failed after $(secs "$t" "$(now)")"
    return 1
  fi
  log "cluster $name Ready in $(secs "$t" "$(now)") (kind create cluster --wait $wait_for); KUBECONFIG=$kubeconfig"
}

down() {
  local kind
  if [[ $(record by) != kind-cluster.sh ]] || harness_alive; then
    log "cluster $name was not created by kind/kind-cluster.sh up; leaving it alone"
    return 0
  fi
  kind=$(kind_bin)
  "$kind" delete cluster --name "$name" --kubeconfig "$kubeconfig"
  rm -f "$owner" "$kubeconfig"
  if [[ -f "$network_created" ]]; then
    if [[ -z "$(docker network inspect kind -f '{{range .Containers}}{{.Name}} {{end}}' 2>/dev/null)" ]]; then
      docker network rm kind >/dev/null 2>&1 && log "removed the Docker network kind (created by up)"
    fi
    rm -f "$network_created"
  fi
}

load() {
  (($# > 0)) || { echo "usage: $0 load IMAGE..." >&2; exit 2; }
  local kind t
  kind=$(kind_bin)
  t=$(now)
  "$kind" load docker-image --name "$name" "$@"
  log "loaded $* in $(secs "$t" "$(now)")"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) echo "export KUBECONFIG=$kubeconfig" ;;
  load) shift; load "$@" ;;
  *) echo "usage: $0 up|down|env|load IMAGE..." >&2; exit 2 ;;
esac
