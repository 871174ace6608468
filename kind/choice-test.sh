#!/usr/bin/env bash
# Tests of what kind/build-kind.sh and kind/build-node-image.sh choose
# (`--choose`: a kind the user has, a stock node image the local Docker
# engine has, else a build), with stand-in `docker` and `kind` programs on
# PATH: no Docker engine, no network, nothing built.
# Prints "N passed, N failed" and exits non-zero on a failure.
# shellcheck disable=SC2015
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# expect DESCRIPTION EXPECTED ACTUAL: ACTUAL must equal EXPECTED.
expect() { if [[ "$2" == "$3" ]]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
# contains DESCRIPTION NEEDLE ACTUAL
contains() { if [[ "$3" == *"$2"* ]]; then ok; else ko "$1: '$3' lacks '$2'"; fi; }

# A docker that answers `info`, knows the images listed in $tmp/images and
# pulls (adds to that list) only when STUB_PULL_OK=1. Every call is logged.
mkdir -p "$tmp/bin" "$tmp/cache"
cat >"$tmp/bin/docker" <<'EOF'
#!/usr/bin/env bash
echo "$*" >>"$STUB_DIR/docker.log"
case "$1 ${2:-}" in
  "info "*) exit 0 ;;
  "image inspect") grep -qxF "$3" "$STUB_DIR/images" 2>/dev/null ;;
  "pull -q") [[ "${STUB_PULL_OK:-0}" == 1 ]] && echo "$3" >>"$STUB_DIR/images" ;;
  *) exit 3 ;;
esac
EOF
chmod +x "$tmp/bin/docker"
touch "$tmp/images"
export STUB_DIR=$tmp INJECTOR_HARNESS_CACHE=$tmp/cache HARNESS_STATE=$tmp/state
unset KIND KIND_NODE_IMAGE KIND_NODE_PULL

# A PATH with the stand-ins and the tools the scripts need, but no kind.
base_path=$tmp/bin:$(dirname "$(command -v go)"):/usr/bin:/bin
choose_node() { PATH=$base_path "$here/build-node-image.sh" --choose 2>/dev/null; }
choose_kind() { PATH=$1 "$here/build-kind.sh" --choose 2>/dev/null; }

# shellcheck source=versions.env disable=SC1091
source "$here/versions.env"
stock=kindest/node:$K8S_VERSION
offline=$(PATH=$base_path "$here/build-node-image.sh" --tag 2>/dev/null)
contains "the offline tag names the version" "injector-harness/kind-node:$K8S_VERSION-" "$offline"

# ---- node image ----
out=$(choose_node)
expect "nothing local: the offline build" "$offline" "${out%%$'\t'*}"
contains "nothing local: says it builds and how long" "about 10 min" "$out"
contains "nothing local: says how to skip the build" "KIND_NODE_PULL=1" "$out"
! grep -q '^pull' "$tmp/docker.log" && ok || ko "no pull unless KIND_NODE_PULL=1"

echo "$offline" >"$tmp/images"
out=$(choose_node)
expect "offline image built earlier" "$offline"$'\t'"the offline image of $K8S_VERSION, built earlier" "$out"

echo "$stock" >>"$tmp/images"
out=$(choose_node)
expect "a local stock image wins over the offline one" "$stock" "${out%%$'\t'*}"
contains "and says why" "in the local Docker engine" "$out"

out=$(KIND_NODE_IMAGE=example.test/node:x choose_node)
expect "KIND_NODE_IMAGE wins" "example.test/node:x"$'\t'"KIND_NODE_IMAGE is set" "$out"

: >"$tmp/images" && : >"$tmp/docker.log"
out=$(KIND_NODE_PULL=1 STUB_PULL_OK=1 choose_node)
expect "KIND_NODE_PULL=1 pulls the stock image" "$stock" "${out%%$'\t'*}"
grep -qxF "pull -q $stock" "$tmp/docker.log" && ok || ko "the pull names the pinned stock tag"

: >"$tmp/images"
out=$(KIND_NODE_PULL=1 STUB_PULL_OK=0 choose_node)
expect "a failed pull falls back to the build" "$offline" "${out%%$'\t'*}"
contains "and says the pull failed" "the pull failed" "$out"

# ---- kind CLI ----
built=$("$here/build-kind.sh" --path)
out=$(choose_kind "$base_path")
expect "no kind on PATH: the pinned build" "$built" "${out%%$'\t'*}"
contains "no kind on PATH: says it builds" "building the pinned $KIND_VERSION" "$out"

mkdir -p "$tmp/kind-ok" "$tmp/kind-old"
minor=${KIND_SUPPORTED_MINORS%% *}
printf '#!/bin/sh\necho "kind %s.7 go1.99 linux/amd64"\n' "$minor" >"$tmp/kind-ok/kind"
printf '#!/bin/sh\necho "kind v0.1.0 go1.10 linux/amd64"\n' >"$tmp/kind-old/kind"
chmod +x "$tmp/kind-ok/kind" "$tmp/kind-old/kind"
out=$(choose_kind "$tmp/kind-ok:$base_path")
expect "a supported kind on PATH is used" "$tmp/kind-ok/kind" "${out%%$'\t'*}"
contains "and its version is named" "$minor.7" "$out"
out=$(choose_kind "$tmp/kind-old:$base_path")
expect "an unsupported kind on PATH is not used" "$built" "${out%%$'\t'*}"
contains "and the reason names it" "kind v0.1.0 go1.10 linux/amd64', not one of" "$out"
out=$(KIND=/opt/kind choose_kind "$tmp/kind-old:$base_path")
expect "KIND wins" "/opt/kind"$'\t'"KIND is set" "$out"
out=$(PATH=$tmp/kind-ok:$base_path "$here/build-kind.sh" 2>/dev/null)
expect "without --choose, a supported kind on PATH is printed, nothing built" "$tmp/kind-ok/kind" "$out"

echo "$pass passed, $fail failed"
((fail == 0))
