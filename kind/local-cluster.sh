#!/usr/bin/env bash
# A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) running as plain processes on 127.0.0.1, built from the Go
# module proxy by kind/build-control-plane.sh. No kubelet, no container runtime:
# objects are stored, validated, admitted (webhooks included), controlled and
# scheduled, but no container ever runs.
#
# Usage:
#   kind/local-cluster.sh up [--version V]
#                                build (no-op when cached), generate certs, start, wait until ready;
#                                V (vX.Y.Z or vX.Y, else $K8S_VERSION, else the default) is a row
#                                of kind/supported-versions.tsv
#   kind/local-cluster.sh down   stop exactly the recorded processes and remove the state dir
#   kind/local-cluster.sh env    print `export KUBECONFIG=...`
#
# State (certs, kubeconfigs, etcd data, logs, pid files, ports) lives in
#   ${HARNESS_STATE:-/tmp/injector-harness}/cluster
# The admin kubeconfig (O=system:masters) is <state>/kubeconfig.
#
# Environment:
#   HARNESS_STATE        root of the state dir (default /tmp/injector-harness)
#   K8S_VERSION          Kubernetes version for `up` when --version is not given
#   CLUSTER_UP_TIMEOUT   seconds to wait for each readiness step (default 180)
#   CLUSTER_STOP_GRACE   seconds between SIGTERM and SIGKILL on `down` (default 20)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state_root=${HARNESS_STATE:-/tmp/injector-harness}
state="$state_root/cluster"
up_timeout=${CLUSTER_UP_TIMEOUT:-180}
stop_grace=${CLUSTER_STOP_GRACE:-20}

# Start order; `down` stops in reverse.
components=(etcd kube-apiserver kube-controller-manager kube-scheduler)

SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1

# shellcheck source=lib.sh disable=SC1091
source "$here/lib.sh"

# ---- processes ---------------------------------------------------------------

pid_of() { [[ -s "$state/pids/$1.pid" ]] && cat "$state/pids/$1.pid"; }

# True if $2 is alive and is the component $1 we started (guards against pid reuse:
# argv[0] of our processes is the full path of the binary named after the component).
is_ours() {
  local name=$1 pid=$2 argv0
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1) || return 1
  [[ "${argv0##*/}" == "$name" ]]
}

alive() {
  local pid
  pid=$(pid_of "$1") || return 1
  is_ours "$1" "$pid"
}

log_tail() {
  local name=$1 f="$state/logs/$1.log"
  if [[ -f "$f" ]]; then
    echo "----- last 40 lines of $f -----" >&2
    tail -n 40 "$f" >&2
    echo "----- end of $name log -----" >&2
  fi
}

start() {
  local name=$1
  shift
  # 8>&-: the child must not inherit the lock that serialises up/down.
  nohup "$@" </dev/null >"$state/logs/$name.log" 2>&1 8>&- &
  local pid=$! i
  echo "$pid" >"$state/pids/$name.pid"
  # Until nohup has exec'd the binary, the pid's argv[0] is still bash or
  # nohup and is_ours would call the component gone; wait for the exec.
  for ((i = 0; i < 100; i++)); do
    is_ours "$name" "$pid" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  log "started $name (pid $pid, log $state/logs/$name.log)"
}

# True once none of the processes in the caller's names/pids arrays is ours
# any more, polling every 0.1 s for at most $1 polls.
gone_within() {
  local polls=$1 waited i left
  for ((waited = 0; waited < polls; waited++)); do
    left=0
    for i in "${!pids[@]}"; do
      is_ours "${names[$i]}" "${pids[$i]}" && left=1
    done
    ((left)) || return 0
    sleep 0.1
  done
  return 1
}

# Sends TERM to the given components that are alive, waits up to $stop_grace
# seconds, then KILLs what is left.
stop_components() {
  local name pid
  local -a names=() pids=()
  for name in "$@"; do
    if pid=$(pid_of "$name") && is_ours "$name" "$pid"; then
      names+=("$name")
      pids+=("$pid")
      kill -TERM "$pid" 2>/dev/null || true
      log "sent TERM to $name (pid $pid)"
    fi
  done
  ((${#pids[@]} > 0)) || return 0
  gone_within $((stop_grace * 10)) && return 0
  local i
  for i in "${!pids[@]}"; do
    if is_ours "${names[$i]}" "${pids[$i]}"; then
      log "${names[$i]} (pid ${pids[$i]}) still running after ${stop_grace}s; sending KILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  gone_within 50 && return 0
  die "processes still present after KILL: ${pids[*]}"
}

stop_all() {
  # Components that talk to the apiserver first, then the apiserver, then etcd.
  stop_components kube-scheduler kube-controller-manager
  stop_components kube-apiserver
  stop_components etcd
}

# ---- ports -------------------------------------------------------------------

declare -A taken=()
port_free() { [[ -z "${taken[$1]:-}" ]] && ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# pick_port VAR BASE: sets VAR to the first free TCP port at or above BASE that
# was not picked already.
pick_port() {
  local -n out=$1
  local p=$2
  while ! port_free "$p"; do
    p=$((p + 1))
    ((p < 65535)) || die "no free port at or above $2"
  done
  taken[$p]=1
  # shellcheck disable=SC2034 # out is a nameref to the caller's variable
  out=$p
}

# ---- certificates ------------------------------------------------------------

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

serial() { echo "0x$(openssl rand -hex 16)"; }

# make_ca NAME CN -> pki/NAME.key, pki/NAME.crt (self-signed CA)
make_ca() {
  local name=$1 cn=$2 pki="$state/pki"
  ec_key "$pki/$name.key"
  cat >"$pki/$name.cnf" <<EOF
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = $cn
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -key "$pki/$name.key" -config "$pki/$name.cnf" -days 3650 -sha256 \
    -set_serial "$(serial)" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.cnf"
}

# sign [--ca CA] NAME SUBJECT EXTENSIONS...  -> pki/NAME.key, pki/NAME.crt signed by pki/CA (default ca)
sign() {
  local ca=ca
  if [[ "$1" == "--ca" ]]; then
    ca=$2
    shift 2
  fi
  local name=$1 subj=$2
  shift 2
  local pki="$state/pki"
  ec_key "$pki/$name.key"
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$@" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" \
    -set_serial "$(serial)" -days 365 -sha256 -extfile "$pki/$name.ext" \
    -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

gen_pki() {
  local pki="$state/pki"
  mkdir -p "$pki"
  chmod 700 "$pki"

  make_ca ca injector-harness-local-ca
  # Separate CA for the aggregation layer's front proxy (requestheader auth).
  make_ca front-proxy-ca injector-harness-front-proxy-ca
  # etcd gets a CA of its own and requires client certificates from it, so
  # an apiserver can only ever reach its own cluster's etcd: with several
  # clusters on one machine (a matrix, parallel helpers) a plain-HTTP etcd
  # on a reused port once let one cluster's apiserver attach to another's.
  make_ca etcd-ca injector-harness-etcd-ca

  local client=("basicConstraints = critical, CA:FALSE"
    "keyUsage = critical, digitalSignature, keyEncipherment"
    "extendedKeyUsage = clientAuth")
  sign apiserver "/CN=kube-apiserver" \
    "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature, keyEncipherment" \
    "extendedKeyUsage = serverAuth" \
    "subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:$SERVICE_IP"
  sign admin "/O=system:masters/CN=kubernetes-admin" "${client[@]}"
  sign controller-manager "/CN=system:kube-controller-manager" "${client[@]}"
  sign scheduler "/CN=system:kube-scheduler" "${client[@]}"
  sign --ca front-proxy-ca front-proxy-client "/CN=front-proxy-client" "${client[@]}"
  sign --ca etcd-ca etcd-server "/CN=injector-harness-etcd" \
    "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature, keyEncipherment" \
    "extendedKeyUsage = serverAuth, clientAuth" \
    "subjectAltName = IP:127.0.0.1, DNS:localhost"
  sign --ca etcd-ca etcd-client "/CN=kube-apiserver-etcd-client" "${client[@]}"

  # Service-account token signing key pair (RSA, RS256).
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  chmod 600 "$pki"/*.key
}

# write_kubeconfig FILE USER CERT-NAME
write_kubeconfig() {
  local file=$1 user=$2 cert=$3 pki="$state/pki"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: injector-harness
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$pki/$cert.crt")
    client-key-data: $(base64 -w0 "$pki/$cert.key")
contexts:
- name: $user@injector-harness
  context:
    cluster: injector-harness
    user: $user
current-context: $user@injector-harness
EOF
  chmod 600 "$file"
}

# ---- readiness ---------------------------------------------------------------

api_get() {
  curl -sS --max-time 5 --cacert "$state/pki/ca.crt" \
    --cert "$state/pki/admin.crt" --key "$state/pki/admin.key" \
    "https://127.0.0.1:$API_PORT$1"
}

# wait_for WHAT COMPONENTS-TO-WATCH CHECK-COMMAND...
# Polls CHECK until it succeeds; fails early (with the log tail) if a watched
# component exits, and after $up_timeout seconds (with the log tail of the last
# watched component, the one being waited for).
wait_for() {
  local what=$1 watch=$2
  shift 2
  local t0 name
  t0=$(now)
  local deadline=$((SECONDS + up_timeout))
  while ! "$@" >/dev/null 2>&1; do
    for name in $watch; do
      if ! alive "$name"; then
        log "$name exited while waiting for $what"
        log_tail "$name"
        die "$name is not running (see $state/logs/$name.log)"
      fi
    done
    if ((SECONDS >= deadline)); then
      log "timed out after ${up_timeout}s waiting for $what"
      log_tail "${watch##* }"
      die "timed out waiting for $what (logs in $state/logs)"
    fi
    sleep 0.5
  done
  log "$what: ok after $(secs "$t0" "$(now)")"
}

etcd_healthy() {
  local pki="$state/pki"
  curl -fsS --max-time 2 --cacert "$pki/etcd-ca.crt" --cert "$pki/etcd-client.crt" --key "$pki/etcd-client.key" \
    "https://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'
}
apiserver_ready() { [[ "$(api_get /readyz)" == "ok" ]]; }
default_sa_exists() { api_get /api/v1/namespaces/default/serviceaccounts/default | grep -q '"kind": *"ServiceAccount"'; }
secure_healthz() { [[ "$(curl -sk --max-time 2 "https://127.0.0.1:$1/healthz")" == "ok" ]]; }

# ---- commands ----------------------------------------------------------------

cmd_env() {
  echo "export KUBECONFIG=$state/kubeconfig"
}

up_failed() {
  local rc=$?
  trap - EXIT
  if [[ -d "$state/pids" ]]; then
    log "up failed; stopping the processes it started (logs kept in $state/logs)"
    stop_all || true
  fi
  exit "$rc"
}

cmd_up() {
  local t_up
  t_up=$(now)
  command -v openssl >/dev/null || {
    log "openssl not found; installing it with apt-get"
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  }
  for tool in curl ss; do
    command -v "$tool" >/dev/null || die "$tool is required"
  done

  # ---- version matrix: which version, and is that the one running? ----
  # shellcheck source=k8s-version.sh disable=SC1091
  source "$here/k8s-version.sh"
  k8s_version_select "${K8S_VERSION:-}" || exit 1
  if [[ -d "$state/pids" && -s "$state/version" && "$(cat "$state/version")" != "$K8S_VERSION" ]]; then
    die "$state runs Kubernetes $(cat "$state/version"), not $K8S_VERSION; run \`$0 down\` first (or use another HARNESS_STATE)"
  fi
  log "Kubernetes $K8S_VERSION (etcd $ETCD_VERSION)"
  # ---- end version matrix ----

  # Already running?
  if [[ -d "$state/pids" ]]; then
    local live=() dead=() name
    for name in "${components[@]}"; do
      if alive "$name"; then live+=("$name"); else dead+=("$name"); fi
    done
    if ((${#dead[@]} == 0)); then
      log "already running (pids: $(cat "$state"/pids/*.pid | tr '\n' ' '))"
      cmd_env
      return 0
    fi
    if ((${#live[@]} > 0)); then
      log "partially running (${dead[*]} not running); stopping the rest and starting afresh"
      stop_all
    else
      log "stale state from a previous run (no process alive); starting afresh"
    fi
  fi
  rm -rf "$state"
  # If anything below fails, stop what was started; keep the state dir (logs)
  # for inspection. The next `up` finds no live process and starts afresh.
  trap 'up_failed' EXIT

  local t_build bin
  t_build=$(now)
  bin=$("$here/build-control-plane.sh" | tail -n1)
  [[ -x "$bin/kube-apiserver" ]] || die "build-control-plane.sh did not produce binaries in $bin"
  log "binaries ready in $(secs "$t_build" "$(now)") ($bin)"

  mkdir -p "$state"/{pids,logs,etcd-data}
  chmod 700 "$state" "$state/etcd-data"
  echo "$K8S_VERSION" >"$state/version"

  pick_port ETCD_PORT 2379
  pick_port ETCD_PEER_PORT 2380
  pick_port API_PORT 6443
  pick_port CM_PORT 10257
  pick_port SCHED_PORT 10259
  cat >"$state/ports.env" <<EOF
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
API_PORT=$API_PORT
CM_PORT=$CM_PORT
SCHED_PORT=$SCHED_PORT
EOF

  local t_pki
  t_pki=$(now)
  gen_pki
  write_kubeconfig "$state/kubeconfig" kubernetes-admin admin
  write_kubeconfig "$state/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  write_kubeconfig "$state/scheduler.kubeconfig" system:kube-scheduler scheduler
  log "certificates and kubeconfigs in $(secs "$t_pki" "$(now)")"

  local pki="$state/pki"
  start etcd "$bin/etcd" \
    --name=injector-harness \
    --data-dir="$state/etcd-data" \
    --listen-client-urls="https://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="https://127.0.0.1:$ETCD_PORT" \
    --client-cert-auth=true \
    --trusted-ca-file="$pki/etcd-ca.crt" \
    --cert-file="$pki/etcd-server.crt" \
    --key-file="$pki/etcd-server.key" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="injector-harness=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state=new \
    --unsafe-no-fsync=true
  wait_for "etcd /health" "etcd" etcd_healthy

  mkdir -p "$state/apiserver-certs"
  # --endpoint-reconciler-type=none: the apiserver advertises 127.0.0.1, and
  # Endpoints validation rejects loopback addresses, so the default reconciler
  # would fail to publish the `kubernetes` Service's endpoints and log an error
  # on every sync. The Service (10.96.0.1) still exists; nothing here dials it.
  start kube-apiserver "$bin/kube-apiserver" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$API_PORT" \
    --cert-dir="$state/apiserver-certs" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --etcd-servers="https://127.0.0.1:$ETCD_PORT" \
    --etcd-cafile="$pki/etcd-ca.crt" \
    --etcd-certfile="$pki/etcd-client.crt" \
    --etcd-keyfile="$pki/etcd-client.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --endpoint-reconciler-type=none \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" \
    --proxy-client-key-file="$pki/front-proxy-client.key"
  wait_for "kube-apiserver /readyz" "etcd kube-apiserver" apiserver_ready

  # --flex-volume-plugin-dir: otherwise the controller-manager creates
  # /usr/libexec/kubernetes/kubelet-plugins/volume/exec on the host.
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$state/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$CM_PORT" \
    --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" \
    --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --use-service-account-credentials=true \
    --flex-volume-plugin-dir="$state/flexvolume" \
    --leader-elect=false
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$state/scheduler.kubeconfig" \
    --authentication-kubeconfig="$state/scheduler.kubeconfig" \
    --authorization-kubeconfig="$state/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$SCHED_PORT" \
    --leader-elect=false

  wait_for "kube-scheduler /healthz" "kube-scheduler" secure_healthz "$SCHED_PORT"
  wait_for "kube-controller-manager /healthz" "kube-controller-manager" secure_healthz "$CM_PORT"
  wait_for "ServiceAccount default/default" "etcd kube-apiserver kube-controller-manager" default_sa_exists

  trap - EXIT
  log "up in $(secs "$t_up" "$(now)"): apiserver https://127.0.0.1:$API_PORT, state $state"
  cmd_env
}

cmd_down() {
  if [[ ! -d "$state" ]]; then
    log "nothing to stop ($state does not exist)"
    return 0
  fi
  local t0
  t0=$(now)
  stop_all
  rm -rf "$state"
  log "down in $(secs "$t0" "$(now)"); removed $state"
}

main() {
  local cmd=${1:-}
  case "$cmd" in
    up | down)
      if [[ "$cmd" == up && "${2:-}" == --version ]]; then
        [[ -n "${3:-}" ]] || { echo "usage: $0 up [--version vX.Y.Z]" >&2; exit 2; }
        export K8S_VERSION=$3
        shift 2
      fi
      (($# == 1)) || { echo "usage: $0 up [--version vX.Y.Z] | down | env" >&2; exit 2; }
      mkdir -p "$state_root"
      # Serialise up/down on the same state dir.
      exec 8>"$state_root/cluster.lock"
      flock 8
      "cmd_$cmd"
      ;;
    env) cmd_env ;;
    *)
      echo "usage: $0 up [--version vX.Y.Z] | down | env" >&2
      exit 2
      ;;
  esac
}

main "$@"
