# Helpers every script under kind/ sources: progress lines, fatal errors,
# timings. Progress lines start with the sourcing script's name.
#
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   # shellcheck source=lib.sh disable=SC1091
#   source "$here/lib.sh"
#
# Progress goes to stderr: stdout is each script's result (a path, a tag).
# shellcheck shell=bash

log_name=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
log() { echo "$log_name: $*" >&2; }
die() { log "error: $*"; exit 1; }
# A timestamp for secs/isecs (bash's own clock: no subprocess).
now() { echo "$EPOCHREALTIME"; }
# secs START END: elapsed time with one decimal and its unit, "12.3s".
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fs", b - a }'; }
# isecs START END: elapsed whole seconds, no unit (for tables).
isecs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }
# A 12-character content hash of stdin, for cache keys.
short_hash() { sha256sum | cut -c1-12; }
