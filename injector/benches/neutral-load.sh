#!/usr/bin/env bash
# Drives the release injector with oha, a load generator nobody here wrote,
# so the latency figures do not rest on this project's own client alone.
#
#   injector/benches/neutral-load.sh [RATE] [SECONDS]     (default 2000 30)
#
# Two runs at RATE req/s for SECONDS each, open loop with oha's latency
# correction (a request late on the schedule counts from when it was due):
#   http2  one HTTP/2 connection, up to 64 streams (as an apiserver holds)
#   http1  16 HTTP/1.1 keep-alive connections
# Each POSTs the same AdmissionReview (a Deployment's pod with a
# containerPort 10000, so the answer carries a remap patch) to /mutate over
# TLS, verified against the CA `sidecar-injector certs` made. The script
# fails if any request errors or gets a status other than 200.
#
# Environment: OHA (the oha binary; default: oha on PATH, else installed
# with `cargo install oha --locked`), OUT (keep oha's JSON reports there).
# The server is this checkout's release build, started and stopped (by pid)
# here; its peak RSS (VmHWM) is printed at the end.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rate=${1:-2000}
seconds=${2:-30}

oha=${OHA:-}
if [[ -z $oha ]]; then
  if ! command -v oha >/dev/null 2>&1; then
    echo "neutral-load: installing oha (cargo install oha --locked)" >&2
    cargo install oha --locked >&2
  fi
  oha=$(command -v oha)
fi

cargo build --release -q -p sidecar-injector --bin sidecar-injector
bin=$root/target/release/sidecar-injector

work=$(mktemp -d)
out=${OUT:-$work}
mkdir -p "$out"
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" certs --service sidecar-injector --namespace load --san 127.0.0.1 --out "$work" >/dev/null 2>&1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn "$bin" serve --addr "127.0.0.1:$port" \
  --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" 2>"$work/server.log" &
server_pid=$!

url=https://127.0.0.1:$port
for _ in $(seq 1 100); do
  curl -sf --cacert "$work/ca.crt" "$url/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf --cacert "$work/ca.crt" "$url/readyz" >/dev/null \
  || { echo "neutral-load: the server did not become ready; its log:" >&2; cat "$work/server.log" >&2; exit 1; }

cat >"$work/review.json" <<'EOF'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"0f6f8c2e-5b1a-4c39-9d7e-2f3d4b5a6c7d",
 "kind":{"group":"","version":"v1","kind":"Pod"},
 "resource":{"group":"","version":"v1","resource":"pods"},
 "requestKind":{"group":"","version":"v1","kind":"Pod"},
 "requestResource":{"group":"","version":"v1","resource":"pods"},
 "namespace":"default","operation":"CREATE",
 "userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller"},
 "object":{"apiVersion":"v1","kind":"Pod",
  "metadata":{"generateName":"backend-6bdf5d484b-","namespace":"default","labels":{"app":"backend"}},
  "spec":{"containers":[{"name":"backend","image":"backend-service:v1",
   "ports":[{"containerPort":10000,"protocol":"TCP"}]}]}},
 "oldObject":null,"dryRun":false,
 "options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}}
EOF
# The answer must be the injection, not an error the load would hide.
curl -sf --cacert "$work/ca.crt" -H 'Content-Type: application/json' \
  --data-binary @"$work/review.json" "$url/mutate" >"$work/answer.json"
python3 - "$work/answer.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["response"]
assert r["allowed"] and r.get("patchType") == "JSONPatch", r
EOF

run() {
  local label=$1
  shift
  echo "neutral-load: $label, $rate req/s for $seconds s" >&2
  "$oha" --no-tui --output-format json -o "$out/$label.json" \
    -q "$rate" --latency-correction -n "$((rate * seconds))" \
    -m POST -H 'Content-Type: application/json' -D "$work/review.json" \
    --cacert "$work/ca.crt" "$@" "$url/mutate"
  python3 - "$out/$label.json" "$label" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
s, p = d["summary"], d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
errors = d.get("errorDistribution", {})
ok = sum(n for c, n in codes.items() if c == "200")
bad = sum(n for c, n in codes.items() if c != "200") + sum(errors.values())
ms = lambda v: "%.2f" % (1000 * v) if v is not None else "-"
print(f"{sys.argv[2]}: {ok} ok, {bad} failed, {s['requestsPerSec']:.0f} req/s, "
      f"p50 {ms(p.get('p50'))} ms, p99 {ms(p.get('p99'))} ms, "
      f"p99.9 {ms(p.get('p99.9'))} ms, max {ms(s.get('slowest'))} ms")
if bad or not ok:
    print(f"{sys.argv[2]}: failures: codes {codes}, errors {errors}", file=sys.stderr)
    sys.exit(1)
EOF
}

run http2 --http2 -c 1 -p 64
run http1 -c 16
echo "server peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$server_pid/status")"
