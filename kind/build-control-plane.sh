#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and etcd from
# the Go module proxy at the versions pinned in kind/versions.env for
# $K8S_VERSION (a row of kind/supported-versions.tsv; unset: the default
# version), through the wrapper modules kind/control-plane/<minor> and
# kind/etcd/<etcd>, into a cache outside the repository (one directory per
# version and pins, so several versions are cached side by side):
#
#   ${INJECTOR_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/injector-harness}/control-plane/<key>/bin/
#
# <key> is a sha256 over the pins, both wrappers' go.mod/go.sum, the Go
# toolchain version, the target platform and this script's build recipe, so a
# binary is rebuilt only when one of those changes. A second run is a no-op.
#
# Usage:
#   kind/build-control-plane.sh [--node]   build what is missing; progress on stderr,
#                                          the bin directory on stdout
#   kind/build-control-plane.sh --bin-dir  print the bin directory only (no build)
#   K8S_VERSION=v1.36.3 kind/build-control-plane.sh   (or v1.36) another supported version
#
# --node also builds the node binaries of the offline kind node image
# (kubelet, kubeadm, kubectl, kube-proxy; see kind/build-node-image.sh) into
# the same bin directory, in the same `go build` so shared packages compile once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env disable=SC1091
source "$here/versions.env"
: "${K8S_VERSION:?missing in versions.env}"
: "${K8S_STAGING_VERSION:?missing in versions.env}"
: "${ETCD_VERSION:?missing in versions.env}"

# Bump when the way the binaries are built (flags, ldflags) changes.
RECIPE=1
# The upstream commit of the release tag cannot be learned from the module
# proxy (the module zip carries no VCS data), so an explicit placeholder is used.
GIT_COMMIT_PLACEHOLDER=0000000000000000000000000000000000000000

# ---- version matrix: per-version modules and toolchain ----
# A tag whose go directive is newer than the local Go is built by the toolchain
# it names (fetched once from the Go module proxy); see k8s_gotoolchain.
GOTOOLCHAIN=$(k8s_gotoolchain)
export GOTOOLCHAIN GOWORK=off CGO_ENABLED=0
# ---- end version matrix ----

cache_root=${INJECTOR_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/injector-harness}
cp_mod=$(k8s_cp_mod_dir)
etcd_mod=$(k8s_etcd_mod_dir)

for f in "$cp_mod/go.mod" "$cp_mod/go.sum" "$etcd_mod/go.mod" "$etcd_mod/go.sum"; do
  [[ -f "$f" ]] || { echo "build-control-plane: missing $f (run kind/gen-control-plane-mod.sh $K8S_VERSION)" >&2; exit 1; }
done

key=$(
  {
    echo "recipe=$RECIPE"
    echo "K8S_VERSION=$K8S_VERSION"
    echo "K8S_STAGING_VERSION=$K8S_STAGING_VERSION"
    echo "ETCD_VERSION=$ETCD_VERSION"
    echo "gitCommit=$GIT_COMMIT_PLACEHOLDER"
    go env GOVERSION GOOS GOARCH
    for f in "$cp_mod/go.mod" "$cp_mod/go.sum" "$etcd_mod/go.mod" "$etcd_mod/go.sum"; do
      echo "== ${f#"$here"/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
)
key_dir="$cache_root/control-plane/$K8S_VERSION-etcd-$ETCD_VERSION-$key"
bin_dir="$key_dir/bin"

with_node=0
if [[ "${1:-}" == "--bin-dir" && $# -eq 1 ]]; then
  echo "$bin_dir"
  exit 0
elif [[ "${1:-}" == "--node" && $# -eq 1 ]]; then
  with_node=1
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--node] | --bin-dir" >&2
  exit 2
fi

# shellcheck source=lib.sh disable=SC1091
source "$here/lib.sh"

mkdir -p "$bin_dir"
# One build per key at a time (e.g. two `local-cluster.sh up` racing).
exec 9>"$key_dir/.lock"
flock 9

t_total=$(now)
log "cache: $bin_dir"

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler)
if ((with_node)); then
  k8s_bins+=(kubelet kubeadm kubectl kube-proxy)
fi
missing=()
for b in "${k8s_bins[@]}"; do
  if [[ -x "$bin_dir/$b" ]]; then
    log "$b: cached (0.0s)"
  else
    missing+=("$b")
  fi
done

tmp=$(mktemp -d "$key_dir/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ((${#missing[@]} > 0)); then
  major=${K8S_VERSION#v}
  major=${major%%.*}
  minor=${K8S_VERSION#v*.}
  minor=${minor%%.*}
  # buildDate: the release's time as recorded by the module proxy, so that the
  # binaries do not depend on when they were built.
  build_date=$(cd "$cp_mod" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
  [[ -n "$build_date" ]] || build_date=1970-01-01T00:00:00Z
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION"
    ldflags+=" -X $pkg.gitMajor=$major"
    ldflags+=" -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=$GIT_COMMIT_PLACEHOLDER"
    ldflags+=" -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=$build_date"
  done
  pkgs=()
  for b in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  log "building ${missing[*]} (one go build, k8s.io/kubernetes $K8S_VERSION) ..."
  t=$(now)
  (cd "$cp_mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
  for b in "${missing[@]}"; do mv -f "$tmp/$b" "$bin_dir/$b"; done
  took=$(secs "$t" "$(now)")
  for b in "${missing[@]}"; do
    if ((${#missing[@]} > 1)); then
      log "$b: built in $took (shared go build of ${missing[*]})"
    else
      log "$b: built in $took"
    fi
  done
fi

if [[ -x "$bin_dir/etcd" ]]; then
  log "etcd: cached (0.0s)"
else
  log "building etcd (go.etcd.io/etcd/server/v3 $ETCD_VERSION) ..."
  t=$(now)
  (cd "$etcd_mod" && go build -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${GIT_COMMIT_PLACEHOLDER:0:7}" \
    -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
  mv -f "$tmp/etcd" "$bin_dir/etcd"
  log "etcd: built in $(secs "$t" "$(now)")"
fi

log "total: $(secs "$t_total" "$(now)")"
echo "$bin_dir"
