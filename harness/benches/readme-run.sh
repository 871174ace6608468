#!/usr/bin/env bash
# Times the README's main command, `cargo run -p injector-harness -- run`,
# as a user runs it from the checkout: RUNS times in a row (default 3), each
# line giving the wall time, how many `Compiling` lines cargo printed (the
# harness's own build and the process subjects' `cargo run`s), the suite's
# own time (the harness's totals line) and the slowest scenario.
#
#   harness/benches/readme-run.sh [RUNS]
#
# The first run includes whatever build is needed; a warm run should print
# `compiling 0`. The figures go in docs/measurements/, with the commit.
set -euo pipefail

runs=${1:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
for ((i = 1; i <= runs; i++)); do
  t0=$(date +%s.%N)
  rc=0
  cargo run -p injector-harness -- run >"$out/stdout" 2>"$out/stderr" || rc=$?
  t1=$(date +%s.%N)
  compiling=$(grep -c '^ *Compiling ' "$out/stderr" || true)
  totals=$(grep -E '^[0-9]+ scenarios, ' "$out/stdout" || echo "no totals line")
  # The table's TIME column is the last field, e.g. `2816ms`.
  slowest=$(awk '$NF ~ /^[0-9]+ms$/ { t = $NF; sub(/ms$/, "", t); if (t + 0 > max) { max = t + 0; name = $1 } }
    END { if (name != "") printf "%s %d ms", name, max }' "$out/stdout")
  printf 'run %d: wall %.2f s, compiling %d, exit %d; %s; slowest %s\n' \
    "$i" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$compiling" "$rc" "$totals" "${slowest:-?}"
done
