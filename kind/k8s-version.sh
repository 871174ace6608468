# shellcheck shell=bash
# Reads kind/supported-versions.tsv. Sourced by bash (kind/versions.env and
# the scripts under kind/); defines functions only, sets nothing by itself.
#
#   k8s_supported_versions      the k8s column, newest first, one per line
#   k8s_default_version         the version used when none is asked for
#   k8s_version_select [VER]    sets and exports the pins of VER (vX.Y.Z, X.Y.Z,
#                               vX.Y or X.Y; empty: k8s_default_version):
#                               K8S_VERSION K8S_STAGING_VERSION K8S_MINOR
#                               ETCD_VERSION NODE_ETCD_VERSION K8S_GO_DIRECTIVE
#                               COREDNS_VERSION PAUSE_VERSION CRI_TOOLS_VERSION
#                               K8S_KUBELET_CGROUPV1; returns 1 with a message
#                               naming the file on an unknown version or a
#                               malformed row
#   k8s_cp_mod_dir / k8s_etcd_mod_dir   the wrapper Go modules of the selection
#   k8s_gotoolchain             GOTOOLCHAIN value for building the selection
#   host_cgroup_version         1 or 2
#   kubelet_config_allows_cgroupv1   whether the kind node's kubelet config sets failCgroupV1: false

K8S_VERSIONS_FILE=${K8S_VERSIONS_FILE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/supported-versions.tsv}

# Rows of the table without comments and blank lines, each prefixed with its
# line number (for error messages).
_k8s_rows() {
  awk '{ sub(/#.*/, "") } NF { print NR, $0 }' "$K8S_VERSIONS_FILE"
}

k8s_supported_versions() {
  _k8s_rows | awk '{ print $2 }'
}

host_cgroup_version() {
  # K8S_HOST_CGROUP: for tests of the default on a host of the other kind.
  if [[ -n "${K8S_HOST_CGROUP:-}" ]]; then
    echo "$K8S_HOST_CGROUP"
    return
  fi
  if [[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" == cgroup2fs ]]; then echo 2; else echo 1; fi
}

# True when the kind node's kubelet configuration sets failCgroupV1: false
# (kind/cluster.yaml or the node image's files; override the places searched
# with K8S_KUBELET_CONFIG_PATHS, space-separated).
kubelet_config_allows_cgroupv1() {
  local dir paths
  dir=$(dirname "$K8S_VERSIONS_FILE")
  paths=${K8S_KUBELET_CONFIG_PATHS:-$dir/cluster.yaml $dir/node-image}
  # shellcheck disable=SC2086 # a list of paths
  grep -rqsE 'failCgroupV1:[[:space:]]*false' $paths
}

# The newest version whose kubelet this host can run. On cgroup v2 every
# listed kubelet runs. On cgroup v1, 1.35+ (cgroupv1 column
# `failCgroupV1=false`) run only when their configuration says so, which the
# kind node's configuration does or does not; until it does, the default is
# the newest row whose kubelet runs there as is (v1.34.4 today). The local
# control plane uses the same default although its fake kubelet runs anywhere,
# so that one version is "the default" for both backends.
k8s_default_version() {
  local cg=2 allow=1
  [[ "$(host_cgroup_version)" == 1 ]] && cg=1
  if ((cg == 1)) && ! kubelet_config_allows_cgroupv1; then allow=0; fi
  _k8s_rows | awk -v cg="$cg" -v allow="$allow" '
    cg == 2 || $9 == "ok" || ($9 == "failCgroupV1=false" && allow) { print $2; exit }'
}

k8s_version_select() {
  local want=${1:-} row lineno
  [[ -r "$K8S_VERSIONS_FILE" ]] || { echo "k8s-version: cannot read $K8S_VERSIONS_FILE" >&2; return 1; }
  [[ -n "$want" ]] || want=$(k8s_default_version)
  want=v${want#v}
  if [[ "$want" =~ ^v[0-9]+\.[0-9]+$ ]]; then
    # A minor: its row (one patch per minor).
    row=$(_k8s_rows | awk -v m="$want" 'index($2, m ".") == 1 { print; exit }')
  else
    row=$(_k8s_rows | awk -v v="$want" '$2 == v { print; exit }')
  fi
  if [[ -z "$row" ]]; then
    echo "k8s-version: $want is not in $K8S_VERSIONS_FILE (supported: $(k8s_supported_versions | tr '\n' ' '))" >&2
    return 1
  fi
  local f
  read -r lineno K8S_VERSION K8S_STAGING_VERSION ETCD_VERSION K8S_GO_DIRECTIVE \
    COREDNS_VERSION PAUSE_VERSION CRI_TOOLS_VERSION K8S_KUBELET_CGROUPV1 f <<<"$row"
  if [[ -z "$K8S_KUBELET_CGROUPV1" || -n "$f" ]]; then
    echo "k8s-version: $K8S_VERSIONS_FILE:$lineno: expected 8 columns (k8s staging etcd go coredns pause cri_tools cgroupv1)" >&2
    return 1
  fi
  local col val pat
  for col in K8S_VERSION:'^v1\.[0-9]+\.[0-9]+$' K8S_STAGING_VERSION:'^v0\.[0-9]+\.[0-9]+$' \
    ETCD_VERSION:'^v3\.[0-9]+\.[0-9]+$' K8S_GO_DIRECTIVE:'^1\.[0-9]+(\.[0-9]+)?$' \
    COREDNS_VERSION:'^v[0-9]+\.[0-9]+\.[0-9]+$' PAUSE_VERSION:'^[0-9]+\.[0-9]+(\.[0-9]+)?$' \
    CRI_TOOLS_VERSION:'^v1\.[0-9]+\.[0-9]+$' K8S_KUBELET_CGROUPV1:'^(ok|failCgroupV1=false|no)$'; do
    pat=${col#*:}
    col=${col%%:*}
    val=${!col}
    [[ "$val" =~ $pat ]] || {
      echo "k8s-version: $K8S_VERSIONS_FILE:$lineno: $col '$val' does not match $pat" >&2
      return 1
    }
  done
  # The staging modules carry the same minor and patch as the release.
  if [[ "${K8S_STAGING_VERSION#v0.}" != "${K8S_VERSION#v1.}" ]]; then
    echo "k8s-version: $K8S_VERSIONS_FILE:$lineno: staging $K8S_STAGING_VERSION does not match $K8S_VERSION" >&2
    return 1
  fi
  K8S_MINOR=${K8S_VERSION%.*}
  NODE_ETCD_VERSION=$ETCD_VERSION
  export K8S_VERSION K8S_STAGING_VERSION K8S_MINOR ETCD_VERSION NODE_ETCD_VERSION K8S_GO_DIRECTIVE \
    COREDNS_VERSION PAUSE_VERSION CRI_TOOLS_VERSION K8S_KUBELET_CGROUPV1
}

# Wrapper modules written by kind/gen-control-plane-mod.sh: one per minor for
# k8s.io/kubernetes, one per etcd version (shared by minors that use the same).
k8s_cp_mod_dir() { echo "$(dirname "$K8S_VERSIONS_FILE")/control-plane/$K8S_MINOR"; }
k8s_etcd_mod_dir() { echo "$(dirname "$K8S_VERSIONS_FILE")/etcd/$ETCD_VERSION"; }

# `local` when the machine's Go is at least the tag's go directive; otherwise
# the toolchain named by the directive, which the go command fetches from the
# Go module proxy (golang.org/toolchain) on first use.
k8s_gotoolchain() {
  local have
  have=$(GOTOOLCHAIN=local go env GOVERSION)
  have=${have#go}
  have=${have%%[!0-9.]*}
  if [[ "$(printf '%s\n%s\n' "$K8S_GO_DIRECTIVE" "$have" | sort -V | tail -n1)" == "$have" ]]; then
    echo local
  else
    echo "go$K8S_GO_DIRECTIVE"
  fi
}
