#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (CI) or a bounded count.
#
#   injector/fuzz/run.sh                  # each target for 20 s (FUZZ_SECONDS)
#   FUZZ_RUNS=10000000 injector/fuzz/run.sh patch_apply   # a long run of one target
#
# New inputs go to a scratch corpus (FUZZ_WORK, default a temporary
# directory); the seed corpus in corpus/<target> is read, never written.
# A crash leaves its input in artifacts/<target>/ and fails the script.
#
# Toolchain: cargo-fuzz passes nightly-only rustc flags (-Zsanitizer,
# sancov passes). No nightly can be downloaded here, so the default is the
# stable toolchain with RUSTC_BOOTSTRAP=1; FUZZ_TOOLCHAIN=nightly uses a
# nightly one instead.
# Sanitizer: none by default (FUZZ_SANITIZER=address for ASan): the code
# under test is safe Rust, and without ASan a run does several times more
# executions in the same time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."   # cargo fuzz looks for fuzz/ under the current directory

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    toolchain=(+"$FUZZ_TOOLCHAIN")
else
    export RUSTC_BOOTSTRAP=1
fi
sanitizer="${FUZZ_SANITIZER:-none}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(review_decode config_load patch_apply)
fi
work="${FUZZ_WORK:-$(mktemp -d)}"
limit=(-max_total_time="${FUZZ_SECONDS:-20}")
if [ -n "${FUZZ_RUNS:-}" ]; then
    limit=(-runs="$FUZZ_RUNS")
fi
for t in "${targets[@]}"; do
    case "$t" in
        config_load) dict="$here/dict/yaml.dict" ;;
        *) dict="$here/dict/json.dict" ;;
    esac
    mkdir -p "$work/$t"
    echo "== fuzz $t (${limit[*]}, sanitizer $sanitizer)"
    cargo "${toolchain[@]}" fuzz run -s "$sanitizer" "$t" "$work/$t" "$here/corpus/$t" -- \
        -dict="$dict" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${limit[@]}"
done
