#!/usr/bin/env bash
# Builds an offline kind node image for Kubernetes $K8S_VERSION without any
# container registry (`kind build node-image` pulls base and component images,
# so it cannot be used here):
#
#   1. rootfs   a Debian $NODE_DEBIAN_SUITE root filesystem made by debootstrap
#               (systemd, containerd, runc, CNI plugins, iptables, ...), imported
#               with `docker import` as injector-harness/kind-rootfs:<key>
#   2. bins     kubelet, kubeadm, kubectl, kube-proxy and the control plane
#               (kind/build-control-plane.sh --node); crictl, CoreDNS, etcd
#               $NODE_ETCD_VERSION and our own pause, all static Go binaries
#   3. images   one FROM-scratch image per component, tagged exactly as
#               `kubeadm config images list` prints, saved into one tar
#   4. node     kind/node-image/Dockerfile: rootfs + our entrypoint, systemd
#               units, containerd/kubelet/CNI configuration + binaries + the
#               image tar (imported into the node's containerd at boot, before
#               kubeadm runs) + /kind/version
#
# Everything is cached under
#   ${INJECTOR_HARNESS_CACHE:-~/.cache/injector-harness}/node-image/
# keyed by a hash of the pins, the files under kind/node-image and this
# script, so a second run only checks that the image exists.
#
# Usage:
#   kind/build-node-image.sh           build what is missing; prints the image tag on stdout
#   kind/build-node-image.sh --tag     print the tag the current pins give (no build)
#
# Environment:
#   NODE_DEBIAN_MIRROR   Debian mirror for debootstrap (default: the host's apt source)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env disable=SC1091
source "$here/versions.env"
for v in K8S_VERSION CRI_TOOLS_VERSION NODE_ETCD_VERSION COREDNS_VERSION PAUSE_VERSION NODE_DEBIAN_SUITE; do
  [[ -n "${!v:-}" ]] || { echo "build-node-image: $v missing in kind/versions.env" >&2; exit 1; }
done

# Bump when the recipe changes in a way the hashed files do not show.
RECIPE=1

export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod
cache_root=${INJECTOR_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/injector-harness}
cache=$cache_root/node-image
node_dir=$here/node-image

log() { echo "build-node-image: $*" >&2; }
die() { log "error: $*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fs", b - a }'; }
short_hash() { sha256sum | cut -c1-12; }

# The packages of the node's root filesystem. containerd, runc and the CNI
# plugins are Debian's; the rest is what kubelet, kubeadm, kube-proxy's host
# side, the CNI plugins and our entrypoint call.
node_packages=(
  systemd systemd-sysv
  containerd runc containernetworking-plugins
  iptables conntrack iproute2 ethtool socat util-linux mount kmod procps
  ca-certificates jq bash libseccomp2 pigz
)

rootfs_key=$(
  {
    echo "recipe=$RECIPE suite=$NODE_DEBIAN_SUITE"
    printf '%s\n' "${node_packages[@]}"
  } | short_hash
)
rootfs_dir=$cache/rootfs-$NODE_DEBIAN_SUITE-$rootfs_key
rootfs_tag=injector-harness/kind-rootfs:$NODE_DEBIAN_SUITE-$rootfs_key

# Mirror of the host's own apt sources (deb822 or one-line format), so no
# host name is written into the project.
debian_mirror() {
  if [[ -n "${NODE_DEBIAN_MIRROR:-}" ]]; then
    echo "$NODE_DEBIAN_MIRROR"
    return
  fi
  local m
  m=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z "$m" ]]; then
    m=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  [[ -n "$m" ]] || die "no Debian mirror found in the host's apt sources; set NODE_DEBIAN_MIRROR"
  echo "$m"
}

build_rootfs() {
  if [[ -f "$rootfs_dir.done" ]]; then
    log "rootfs: cached ($rootfs_dir)"
  else
    command -v debootstrap >/dev/null || {
      log "installing debootstrap"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    local t mirror include
    t=$(now)
    mirror=$(debian_mirror)
    include=$(IFS=,; echo "${node_packages[*]}")
    mkdir -p "$cache"
    rm -rf "$rootfs_dir" "$rootfs_dir.tmp"
    log "rootfs: debootstrap --variant=minbase $NODE_DEBIAN_SUITE (log: $rootfs_dir.log) ..."
    if ! debootstrap --variant=minbase --include="$include" "$NODE_DEBIAN_SUITE" "$rootfs_dir.tmp" "$mirror" >"$rootfs_dir.log" 2>&1; then
      tail -20 "$rootfs_dir.log" >&2
      die "debootstrap failed; see $rootfs_dir.log"
    fi
    # Trim what a node never uses: apt lists and caches, docs.
    chroot "$rootfs_dir.tmp" apt-get clean
    rm -rf "$rootfs_dir.tmp"/var/lib/apt/lists/* "$rootfs_dir.tmp"/usr/share/doc/* \
      "$rootfs_dir.tmp"/usr/share/man/* "$rootfs_dir.tmp"/usr/share/locale/*
    mv "$rootfs_dir.tmp" "$rootfs_dir"
    touch "$rootfs_dir.done"
    log "rootfs: built in $(secs "$t" "$(now)")"
  fi
  if docker image inspect "$rootfs_tag" >/dev/null 2>&1; then
    log "rootfs image: cached ($rootfs_tag)"
  else
    local t
    t=$(now)
    tar -C "$rootfs_dir" --numeric-owner -c . | docker import - "$rootfs_tag" >/dev/null
    log "rootfs image: imported as $rootfs_tag in $(secs "$t" "$(now)")"
  fi
}

case "${1:-}" in
  --rootfs)
    "$here/docker.sh" ensure
    build_rootfs
    ;;
  *)
    echo "usage: $0 [--tag]" >&2
    exit 2
    ;;
esac
