#!/usr/bin/env bash
# Runs every scenario on each listed Kubernetes version and backend ("leg"),
# each leg on a clean cluster of its own that it removes afterwards, and prints
# one line per leg:
#
#   v1.36.3 kubeconfig 18/18 pass 41 s (snapshots 18/18, up 9 s)
#
# A leg passes when every scenario's expectations hold and every scenario's
# normalized result matches its snapshot in snapshots/. One pass of the e2e
# snapshot test checks both (JUnit in <out>/<version>-<backend>.xml through
# HARNESS_JUNIT, output in <out>/<version>-<backend>.log); with
# --no-snapshots `injector-harness run` checks the expectations alone.
# Exits non-zero if any leg fails.
#
# Usage:
#   kind/matrix.sh [--versions LIST] [--backends LIST] [--out DIR] [--no-snapshots]
#
#   --versions   comma-separated vX.Y.Z or vX.Y, or `all` (default: all rows of
#                kind/supported-versions.tsv; env MATRIX_VERSIONS)
#   --backends   comma-separated: kubeconfig (the local control plane of
#                kind/local-cluster.sh, with the harness's fake kubelet) or kind
#                (default: kubeconfig; env MATRIX_BACKENDS)
#   --out        directory for JUnit files and logs (default: target/matrix;
#                env MATRIX_OUT)
#
# Each leg's cluster state lives in $MATRIX_STATE/<version>-<backend>
# (default /tmp/injector-harness-matrix), so a leg never touches the default
# /tmp/injector-harness cluster of kind/local-cluster.sh, and is stopped by its
# recorded pids (`local-cluster.sh down`) whether the leg passes or not.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=k8s-version.sh disable=SC1091
source "$here/k8s-version.sh"

versions_arg=${MATRIX_VERSIONS:-all}
backends_arg=${MATRIX_BACKENDS:-kubeconfig}
out=${MATRIX_OUT:-$root/target/matrix}
state_base=${MATRIX_STATE:-/tmp/injector-harness-matrix}
snapshots=1

usage() {
  sed -n '/^# Usage:/,/^# Each leg/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --versions) versions_arg=${2:?--versions needs a value}; shift 2 ;;
    --backends) backends_arg=${2:?--backends needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --no-snapshots) snapshots=0; shift ;;
    -h | --help) usage ;;
    *) echo "matrix: unknown argument '$1'" >&2; usage ;;
  esac
done

# shellcheck source=lib.sh disable=SC1091
source "$here/lib.sh"

# Resolve the versions now, so a typo fails before anything is built.
versions=()
if [[ "$versions_arg" == all ]]; then
  mapfile -t versions < <(k8s_supported_versions)
else
  IFS=, read -r -a asked <<<"$versions_arg"
  for v in "${asked[@]}"; do
    (k8s_version_select "$v" >/dev/null) || exit 2
    versions+=("$(k8s_version_select "$v" && echo "$K8S_VERSION")")
  done
fi
IFS=, read -r -a backends <<<"$backends_arg"
for b in "${backends[@]}"; do
  case "$b" in
    kubeconfig | kind) ;;
    *) echo "matrix: unknown backend '$b' (kubeconfig, kind)" >&2; exit 2 ;;
  esac
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"

# Build the harness (and the e2e test binary) once, before any cluster is up,
# so the legs' times are the scenarios' and not cargo's.
log "building injector-harness ..."
cargo build -q -p injector-harness
if ((snapshots)); then
  cargo test -q -p injector-harness --features e2e --test scenarios --no-run 2>/dev/null
fi

# "tests failures" of a JUnit file written by `injector-harness run` or the
# e2e test (HARNESS_JUNIT).
junit_counts() {
  sed -n 's/.*<testsuite [^>]*tests="\([0-9]*\)" failures="\([0-9]*\)".*/\1 \2/p' "$1" | head -n1
}

# Runs the scenarios on the cluster in $KUBECONFIG; sets leg_* for the summary.
# One pass: with snapshots, the e2e test runs every scenario, checks
# expectations and snapshots, and writes the JUnit report (HARNESS_JUNIT);
# without, `injector-harness run` does.
run_scenarios() {
  local backend=$1 version=$2 junit="$out/$2-$1.xml" t0 tests failures
  local log_file="$out/$version-$backend.log" rc=0
  rm -f "$junit"
  t0=$(now)
  if ((snapshots)); then
    # INSTA_UPDATE=no: a mismatch fails the test and writes nothing into
    # snapshots/; the log holds insta's diff for each one.
    HARNESS_BACKEND=$backend HARNESS_JUNIT=$junit INSTA_UPDATE=no CI=true \
      cargo test -q -p injector-harness --features e2e --test scenarios >"$log_file" 2>&1 || rc=$?
  else
    HARNESS_BACKEND=$backend cargo run -q -p injector-harness -- run --backend "$backend" --no-snapshots \
      --junit "$junit" >"$log_file" 2>&1 || rc=$?
  fi
  leg_secs=$(isecs "$t0" "$(now)")
  if [[ ! -s "$junit" ]]; then
    leg_result="ERROR (no JUnit; see $log_file)"
    return 1
  fi
  read -r tests failures < <(junit_counts "$junit")
  leg_counts="$((tests - failures))/$tests"
  if ((rc != 0 || failures != 0)); then leg_result=FAIL; else leg_result=pass; fi

  leg_snap=""
  if ((snapshots)); then
    local bad
    bad=$(grep -c '^Snapshot file: ' "$log_file" || true)
    if ((rc == 0)); then
      leg_snap="snapshots $tests/$tests"
    elif ((bad > 0)); then
      leg_snap="snapshots $((tests - bad))/$tests"
      leg_result=FAIL
    else
      # Failed without a snapshot diff: a scenario errored or broke an
      # expectation, and its snapshot was not compared.
      leg_snap="snapshots not all compared (see $log_file)"
      leg_result=FAIL
    fi
  fi
  [[ "$leg_result" == pass ]]
}

# What failed in a leg, on stdout, so that a CI log that keeps only this
# script's output says which scenario failed and why: the JUnit cases with a
# failure or error (their messages cut at 600 characters), and the end of
# the leg's log.
failure_excerpt() {
  local junit="$out/$1-$2.xml" log_file="$out/$1-$2.log"
  if [[ -s "$junit" ]]; then
    # A failing case is two lines: <testcase name=...> then <failure/error message=...>.
    awk '/<testcase /{ n = $0; sub(/.*<testcase name="/, "", n); sub(/".*/, "", n) }
      /<(failure|error) / { m = $0; sub(/.*message="/, "", m); sub(/".*/, "", m); print "  " n ": " substr(m, 1, 600) }' "$junit"
  fi
  if [[ -s "$log_file" ]]; then
    echo "  -- last lines of $log_file:"
    tail -n 40 "$log_file" | sed 's/^/  | /'
  fi
}

# ---- kubeconfig backend: the local control plane --------------------------------
leg_kubeconfig() {
  local version=$1 state="$state_base/$1-kubeconfig" t0 rc=0
  export HARNESS_STATE=$state
  # A clean cluster: whatever an interrupted earlier leg left is stopped first.
  "$here/local-cluster.sh" down >"$out/$version-kubeconfig-cluster.log" 2>&1
  t0=$(now)
  if ! "$here/local-cluster.sh" up --version "$version" >>"$out/$version-kubeconfig-cluster.log" 2>&1; then
    leg_result="ERROR (cluster did not come up; see $out/$version-kubeconfig-cluster.log)"
    "$here/local-cluster.sh" down >>"$out/$version-kubeconfig-cluster.log" 2>&1 || true
    return 1
  fi
  leg_up=$(isecs "$t0" "$(now)")
  eval "$("$here/local-cluster.sh" env)"
  # The apiserver must say it is the version this leg is for.
  local served pki="$state/cluster/pki" API_PORT
  API_PORT=$(sed -n 's/^API_PORT=//p' "$state/cluster/ports.env")
  served=$(curl -sS --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$API_PORT/version" | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')
  echo "matrix: apiserver /version says ${served:-nothing}" >>"$out/$version-kubeconfig-cluster.log"
  if [[ "$served" != "$version" ]]; then
    leg_result="ERROR (apiserver serves '${served:-?}', not $version)"
    "$here/local-cluster.sh" down >>"$out/$version-kubeconfig-cluster.log" 2>&1 || true
    return 1
  fi
  run_scenarios kubeconfig "$version" || rc=1
  if "$here/local-cluster.sh" down >>"$out/$version-kubeconfig-cluster.log" 2>&1; then
    # down removed <state>/cluster; what is left is its lock file.
    rm -rf "$state"
  else
    leg_result="$leg_result; down FAILED (see $out/$version-kubeconfig-cluster.log)"
    rc=1
  fi
  unset KUBECONFIG HARNESS_STATE
  return "$rc"
}

# ---- kind backend: a kind cluster from the version's offline node image ----------
# The node image of $1 (built once, cached; kubelet 1.35+ on a cgroup v1 host
# gets failCgroupV1: false from the image's entrypoint), a cluster created
# for this leg and deleted after it, the images built and loaded by the
# harness, every scenario through its in-cluster injectors.
leg_kind() {
  local version=$1 name t0 rc=0 image served
  local clog="$out/$1-kind-cluster.log"
  # The harness's own cluster name: its node, injector-harness-control-plane,
  # is the node the scenarios (and the sim) name.
  name=injector-harness
  export HARNESS_STATE="$state_base/$version-kind" KIND_CLUSTER_NAME=$name
  : >"$clog"
  # A leg starts from nothing: a cluster of that name that this leg's state
  # did not create (the user's, or another run's) is never reused or deleted.
  if "$("$here/build-kind.sh" 2>>"$clog")" get clusters 2>/dev/null | grep -qx "$name" \
    && ! grep -qx 'by=kind-cluster.sh' "$HARNESS_STATE/kind/$name.owner" 2>/dev/null; then
    leg_result="ERROR (a kind cluster named $name exists; delete it first: kind delete cluster --name $name)"
    unset HARNESS_STATE KIND_CLUSTER_NAME
    return 1
  fi
  if ! image=$(K8S_VERSION=$version "$here/build-node-image.sh" 2>>"$clog"); then
    leg_result="ERROR (node image did not build; see $clog)"
    unset HARNESS_STATE KIND_CLUSTER_NAME
    return 1
  fi
  # A clean cluster: one an interrupted earlier leg left is deleted first
  # (only if that leg created it; kind-cluster.sh keeps the record).
  "$here/kind-cluster.sh" down >>"$clog" 2>&1 || true
  t0=$(now)
  if ! KIND_NODE_IMAGE=$image "$here/kind-cluster.sh" up >>"$clog" 2>&1; then
    leg_result="ERROR (cluster did not come up; see $clog)"
    "$here/kind-cluster.sh" down >>"$clog" 2>&1 || true
    unset HARNESS_STATE KIND_CLUSTER_NAME
    return 1
  fi
  leg_up=$(isecs "$t0" "$(now)")
  eval "$("$here/kind-cluster.sh" env)"
  served=$(kubectl version -o json 2>>"$clog" | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | tail -n1)
  echo "matrix: apiserver /version says ${served:-nothing}" >>"$clog"
  if [[ "$served" != "$version" ]]; then
    leg_result="ERROR (apiserver serves '${served:-?}', not $version)"
    rc=1
  else
    # The harness reuses the leg's cluster (and never deletes it).
    HARNESS_KIND_CLUSTER=$name run_scenarios kind "$version" || rc=1
  fi
  if "$here/kind-cluster.sh" down >>"$clog" 2>&1; then
    rm -rf "$HARNESS_STATE"
  else
    leg_result="$leg_result; down FAILED (see $clog)"
    rc=1
  fi
  unset KUBECONFIG HARNESS_STATE KIND_CLUSTER_NAME
  return "$rc"
}

failed=0
summary=()
# Interrupted: stop the running leg's cluster by its recorded pids.
on_interrupt() {
  log "interrupted"
  if [[ -n "${HARNESS_STATE:-}" && -d "$HARNESS_STATE/cluster" ]]; then
    "$here/local-cluster.sh" down >&2 || true
  fi
  if [[ -n "${KIND_CLUSTER_NAME:-}" ]]; then
    "$here/kind-cluster.sh" down >&2 || true
  fi
  exit 130
}
trap on_interrupt INT TERM
for version in "${versions[@]}"; do
  for backend in "${backends[@]}"; do
    leg_counts="-" leg_result="" leg_secs=0 leg_up=0 leg_snap=""
    log "$version $backend: starting"
    if "leg_$backend" "$version"; then :; else failed=1; fi
    line="$version $backend $leg_counts $leg_result $leg_secs s ($leg_snap${leg_snap:+, }up $leg_up s)"
    summary+=("$line")
    echo "$line"
    [[ "$leg_result" == pass ]] || failure_excerpt "$version" "$backend"
  done
done

echo
echo "matrix: ${#summary[@]} leg(s); JUnit and logs in $out"
if ((failed)); then
  echo "matrix: FAILED"
  exit 1
fi
echo "matrix: all legs passed"
