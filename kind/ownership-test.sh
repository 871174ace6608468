#!/usr/bin/env bash
# Tests of the one ownership record kind/kind-cluster.sh and the harness
# share ($HARNESS_STATE/kind/<name>.owner, and the lock a live harness run
# holds on <name>.owner.lock), with stand-in `kind` and `docker` programs:
# no Docker engine, no cluster. What `up` and `down` do with a cluster they
# made, one a live harness run owns, one a killed run left, and one nobody
# recorded. Prints "N passed, N failed" and exits non-zero on a failure.
# shellcheck disable=SC2015
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
holder=
cleanup() {
  [[ -n "$holder" ]] && kill "$holder" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect() { if [[ "$2" == "$3" ]]; then ok; else ko "$1: expected '$2', got '$3'"; fi; }
contains() { if [[ "$3" == *"$2"* ]]; then ok; else ko "$1: '$3' lacks '$2'"; fi; }

# kind: clusters are lines of $STUB_DIR/clusters; create and delete are logged.
mkdir -p "$tmp/bin"
cat >"$tmp/bin/kind" <<'EOF'
#!/usr/bin/env bash
echo "$*" >>"$STUB_DIR/kind.log"
case "$1 ${2:-}" in
  "version "*) echo "kind v0.32.0 go1.26 linux/amd64" ;;
  "get clusters") cat "$STUB_DIR/clusters" ;;
  "get kubeconfig") echo "apiVersion: v1" ;;
  "create cluster") echo "${4}" >>"$STUB_DIR/clusters" ;;
  "delete cluster") grep -vx "${4}" "$STUB_DIR/clusters" >"$STUB_DIR/c.new"; mv "$STUB_DIR/c.new" "$STUB_DIR/clusters" ;;
  *) exit 3 ;;
esac
EOF
# docker: an engine that answers; the network "kind" exists.
cat >"$tmp/bin/docker" <<'EOF'
#!/usr/bin/env bash
case "$1" in info | network) exit 0 ;; *) exit 3 ;; esac
EOF
chmod +x "$tmp/bin/kind" "$tmp/bin/docker"
: >"$tmp/clusters"
export STUB_DIR=$tmp HARNESS_STATE=$tmp/state KIND=$tmp/bin/kind \
  KIND_CLUSTER_NAME=c KIND_NODE_IMAGE=node:v1 PATH=$tmp/bin:$PATH
state=$tmp/state/kind
script() { "$here/kind-cluster.sh" "$@" 2>&1; }
created() { grep -c '^create cluster' "$tmp/kind.log" 2>/dev/null; }
deleted() { grep -c '^delete cluster' "$tmp/kind.log" 2>/dev/null; }
: >"$tmp/kind.log"

# ---- up creates, records, down deletes ----
script up >/dev/null
expect "up creates the cluster" 1 "$(created)"
expect "the record says the script made it" "by=kind-cluster.sh" "$(head -n 1 "$state/c.owner")"
contains "the record has the image" "image=node:v1" "$(cat "$state/c.owner")"
out=$(script up)
contains "a second up reuses it" "(created by an earlier up); reusing it" "$out"
expect "a second up does not create" 1 "$(created)"
script down >/dev/null
expect "down deletes what up made" 1 "$(deleted)"
[[ ! -e "$state/c.owner" ]] && ok || ko "down removes the record"

# ---- a cluster nobody recorded ----
echo c >"$tmp/clusters"
out=$(script up)
contains "up reuses a cluster it did not make" "down will not delete it" "$out"
out=$(script down)
contains "down leaves it" "leaving it alone" "$out"
expect "down did not delete it" 1 "$(deleted)"

# ---- a live harness run's cluster ----
mkdir -p "$state"
printf 'by=injector-harness\npid=4242\nimage=node:v1\ncreated=1\n' >"$state/c.owner"
# One process holds the lock (bash becomes sleep, keeping the locked fd), so
# killing that pid is the run dying.
bash -c 'exec 9>"$1" && flock 9 && exec sleep 60' _ "$state/c.owner.lock" &
holder=$!
for _ in $(seq 1 50); do flock -n "$state/c.owner.lock" true || break; sleep 0.1; done
out=$(script up)
rc=$?
expect "up refuses a live run's cluster" 1 "$rc"
contains "up names the run" "running harness run (pid 4242)" "$out"
out=$(script down)
contains "down leaves a live run's cluster" "leaving it alone" "$out"
expect "nothing was deleted" 1 "$(deleted)"
grep -qx 'by=injector-harness' "$state/c.owner" && ok || ko "the live run's record is untouched"

# ---- the same cluster once that run is dead (killed: no cleanup ran) ----
kill "$holder"
wait "$holder" 2>/dev/null
holder=
out=$(script up)
contains "up adopts a killed run's leftover" "left by a harness run that did not finish (pid 4242)" "$out"
expect "adopting creates nothing" 1 "$(created)"
grep -qx 'by=kind-cluster.sh' "$state/c.owner" && ok || ko "the record now says the script owns it"
script down >/dev/null
expect "down deletes the adopted cluster" 2 "$(deleted)"

echo "$pass passed, $fail failed"
((fail == 0))
