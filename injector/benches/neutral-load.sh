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
# Alongside each run, examples/cpu_stalls times a fixed unit of work every
# 2 ms and lists the windows in which the machine itself ran slow (on the VM
# this was measured on: about 14 times slower, for tens of ms, every 1.3 to
# 1.9 s, both cores at once). The percentiles are printed over all requests,
# then over the requests no slow window touched, so a tail the machine made
# can be told from one the server made.
#
# Environment: OHA (the oha binary; default: oha on PATH, else installed
# with `cargo install oha --locked`), OUT (keep oha's per-request CSV, the
# slow windows and the start times there).
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

cargo build --release -q -p sidecar-injector --example cpu_stalls
stalls=$root/target/release/examples/cpu_stalls
# Real-time priority keeps the load from preempting the probe's timed units
# (which would read as the machine slowing down); without it, it still runs.
# The server's user + system time so far, in clock ticks.
server_cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}

probe() {
  if chrt -f 10 true 2>/dev/null; then
    chrt -f 10 "$stalls" "$@"
  else
    "$stalls" "$@"
  fi
}

run() {
  local label=$1
  shift
  echo "neutral-load: $label, $rate req/s for $seconds s" >&2
  probe "$((seconds + 2))" >"$out/$label.stalls" 2>"$out/$label.stalls.log" &
  local probe_pid=$!
  sleep 0.5
  local cpu_before
  cpu_before=$(server_cpu_ticks)
  date +%s.%N >"$out/$label.start"
  "$oha" --no-tui --output-format csv -o "$out/$label.csv" \
    -q "$rate" --latency-correction -n "$((rate * seconds))" \
    -m POST -H 'Content-Type: application/json' -D "$work/review.json" \
    --cacert "$work/ca.crt" "$@" "$url/mutate"
  local cpu_after
  cpu_after=$(server_cpu_ticks)
  wait "$probe_pid"
  cat "$out/$label.stalls.log" >&2
  python3 - "$out/$label" "$label" "$((rate * seconds))" \
    "$(((cpu_after - cpu_before) * 1000000 / $(getconf CLK_TCK)))" <<'EOF'
import csv, sys
base, label, sent, cpu_us = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
start = float(open(base + ".start").read())
windows = [tuple(map(float, l.split()[:2])) for l in open(base + ".stalls") if l.strip()]
rows = list(csv.DictReader(open(base + ".csv")))
ok = [r for r in rows if r["status"] == "200"]
bad = sent - len(ok)
# A request is touched by a slow window when it was due inside one, in the
# 100 ms after it (while the backlog the window left is worked off), or in
# the 50 ms before it: oha's times count from its own start, which comes
# some milliseconds after the launch time taken here (each latency burst
# was seen 15-20 ms ahead of its window), so a request's time is early by
# that much.
def touched(t):
    return any(a - 0.05 <= t <= b + 0.1 for a, b in windows)
def pct(v, q):
    v = sorted(v)
    return 1000 * v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
lat = [float(r["request-duration"]) for r in ok]
clear = [float(r["request-duration"]) for r in ok
         if not touched(start + float(r["request-start"]))]
span = max((float(r["request-start"]) for r in ok), default=0.0)
print(f"{label}: {len(ok)} ok, {bad} failed, {len(ok) / max(span, 1e-9):.0f} req/s, "
      f"p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms, "
      f"p99.9 {pct(lat, .999):.2f} ms, max {max(lat, default=0) * 1000:.2f} ms")
print(f"{label}: outside the machine's slow windows ({len(clear)} requests, "
      f"{100 * len(clear) / max(len(ok), 1):.0f} %): p50 {pct(clear, .5):.2f} ms, "
      f"p99 {pct(clear, .99):.2f} ms, p99.9 {pct(clear, .999):.2f} ms")
# Slow windows inflate it: a core 14 times slower spends 14 times the CPU
# time on the same request.
print(f"{label}: server CPU (user + system) {cpu_us / max(sent, 1):.0f} µs per request")
if bad or not ok:
    statuses = sorted({r["status"] for r in rows})
    print(f"{label}: {bad} of {sent} requests did not get 200 (statuses seen: {statuses})",
          file=sys.stderr)
    sys.exit(1)
EOF
}

run http2 --http2 -c 1 -p 64
run http1 -c 16
echo "server peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$server_pid/status")"
