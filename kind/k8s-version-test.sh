#!/usr/bin/env bash
# Tests of kind/k8s-version.sh on tables written here (not the real one), and
# of the real table's consistency with docs/versions.md. No network.
# Prints "N passed, N failed" and exits non-zero on a failure.
# SC2016: the single-quoted scripts expand in the child bash. SC2015: ok never fails.
# shellcheck disable=SC2016,SC2015,SC1091
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# expect DESCRIPTION EXPECTED ACTUAL
expect() { if [[ "$2" == "$3" ]]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }

cat >"$tmp/good.tsv" <<'EOF'
# comment
v1.40.1  v0.40.1  v3.8.0  1.99.0  v1.15.0  3.11   v1.40.0  failCgroupV1=false   # newest
v1.39.5  v0.39.5  v3.7.4  1.26.0  v1.14.9  3.10.2 v1.39.0  ok
EOF

# Each case in a subshell: k8s_version_select sets globals.
run() { (export K8S_VERSIONS_FILE=$1 && shift && source "$here/k8s-version.sh" && "$@") 2>&1; }

expect "versions, newest first" "v1.40.1 v1.39.5" "$(run "$tmp/good.tsv" k8s_supported_versions | tr '\n' ' ' | sed 's/ $//')"
echo 'kubeletConfig: {failCgroupV1: false}' >"$tmp/allows.yaml"
echo 'kubeletConfig: {}' >"$tmp/plain.yaml"
expect "default on cgroup v2 is the newest" "v1.40.1" \
  "$(K8S_HOST_CGROUP=2 K8S_KUBELET_CONFIG_PATHS=$tmp/plain.yaml run "$tmp/good.tsv" k8s_default_version)"
expect "default on cgroup v1 skips a kubelet the config does not allow" "v1.39.5" \
  "$(K8S_HOST_CGROUP=1 K8S_KUBELET_CONFIG_PATHS=$tmp/plain.yaml run "$tmp/good.tsv" k8s_default_version)"
expect "default on cgroup v1 with failCgroupV1: false is the newest" "v1.40.1" \
  "$(K8S_HOST_CGROUP=1 K8S_KUBELET_CONFIG_PATHS=$tmp/allows.yaml run "$tmp/good.tsv" k8s_default_version)"
expect "select by minor" "v1.39.5 v3.7.4 v3.7.4 v1.39 ok" \
  "$(run "$tmp/good.tsv" bash -c 'source "$0"; k8s_version_select 1.39 && echo "$K8S_VERSION $ETCD_VERSION $NODE_ETCD_VERSION $K8S_MINOR $K8S_KUBELET_CGROUPV1"' "$here/k8s-version.sh")"
expect "empty selects the default" "v1.40.1" \
  "$(K8S_HOST_CGROUP=2 run "$tmp/good.tsv" bash -c 'source "$0"; k8s_version_select "" && echo "$K8S_VERSION"' "$here/k8s-version.sh")"
out=$(run "$tmp/good.tsv" k8s_version_select v1.38.0)
[[ "$out" == *"v1.38.0 is not in $tmp/good.tsv"* ]] && ok || ko "unknown version: $out"
expect "a tag newer than the local Go uses its toolchain" "go1.99.0" \
  "$(run "$tmp/good.tsv" bash -c 'source "$0"; k8s_version_select v1.40.1 && k8s_gotoolchain' "$here/k8s-version.sh")"
expect "a tag the local Go can build uses it" "local" \
  "$(run "$tmp/good.tsv" bash -c 'source "$0"; k8s_version_select v1.39.5 && k8s_gotoolchain' "$here/k8s-version.sh")"

# Malformed rows are named by file and line.
printf 'v1.40.1 v0.40.1 v3.8.0 1.99.0 v1.15.0 3.11 v1.40.0\n' >"$tmp/short.tsv"
out=$(run "$tmp/short.tsv" k8s_version_select v1.40.1)
[[ "$out" == *"short.tsv:1: expected 8 columns"* ]] && ok || ko "short row: $out"
printf '# x\nv1.40.1 v0.40.2 v3.8.0 1.99.0 v1.15.0 3.11 v1.40.0 ok\n' >"$tmp/staging.tsv"
out=$(run "$tmp/staging.tsv" k8s_version_select v1.40)
[[ "$out" == *"staging.tsv:2: staging v0.40.2 does not match v1.40.1"* ]] && ok || ko "staging mismatch: $out"
printf 'v1.40.1 v0.40.1 3.8.0 1.99.0 v1.15.0 3.11 v1.40.0 ok\n' >"$tmp/etcd.tsv"
out=$(run "$tmp/etcd.tsv" k8s_version_select v1.40.1)
[[ "$out" == *"etcd.tsv:1: ETCD_VERSION '3.8.0'"* ]] && ok || ko "bad etcd: $out"

# versions.env exits its caller on an unknown version.
out=$(K8S_VERSION=v1.0.0 bash -c 'source "$0"; echo reached' "$here/versions.env" 2>&1)
[[ "$out" != *reached* && "$out" == *"v1.0.0 is not in"* ]] && ok || ko "versions.env on an unknown version: $out"

# The real table: every row parses, and docs/versions.md's table is rendered from it.
while read -r v; do
  out=$(run "$here/supported-versions.tsv" k8s_version_select "$v") && ok || ko "$v: $out"
done < <(run "$here/supported-versions.tsv" k8s_supported_versions)
out=$("$here/check-readme-matrix.sh" 2>&1) && ok || ko "docs/versions.md table: $out"

echo "$pass passed, $fail failed"
((fail == 0))
