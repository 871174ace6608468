#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io when dockerd
# is missing and starts dockerd when none runs. A dockerd this script starts
# is recorded in $STATE/dockerd.pid, so `kind/docker.sh stop` stops exactly
# that process and nothing else.
#
#   kind/docker.sh ensure | stop
set -euo pipefail
STATE=${HARNESS_STATE:-/tmp/injector-harness}
mkdir -p "$STATE"

ensure() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "docker.sh: dockerd not found; installing Debian's docker.io" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
  fi
  echo "docker.sh: starting dockerd (log: $STATE/dockerd.log)" >&2
  nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  echo "docker.sh: dockerd did not answer within 60 s; see $STATE/dockerd.log" >&2
  tail -20 "$STATE/dockerd.log" >&2 || true
  return 1
}

stop() {
  if [ -f "$STATE/dockerd.pid" ]; then
    pid=$(cat "$STATE/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    rm -f "$STATE/dockerd.pid"
  fi
}

case "${1:-}" in
  ensure) ensure ;;
  stop) stop ;;
  *) echo "usage: kind/docker.sh ensure|stop" >&2; exit 2 ;;
esac
