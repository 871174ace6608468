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
# A node image the user already has comes first: KIND_NODE_IMAGE, else the
# stock kindest/node:$K8S_VERSION when the local Docker engine has it (or,
# with KIND_NODE_PULL=1, can pull it within KIND_NODE_PULL_TIMEOUT, 300 s).
# Building is the fallback.
#
# Usage:
#   kind/build-node-image.sh           the image to use, built if that is the choice and
#                                      it is missing; prints the image tag on stdout
#   kind/build-node-image.sh --choose  print "IMAGE<TAB>WHY" for that image (no build)
#   kind/build-node-image.sh --tag     print the tag the current pins give (no build)
#   kind/build-node-image.sh --bins    only build (or find cached) the Go binaries
#   kind/build-node-image.sh --rootfs  only build (or find cached) the Debian rootfs image
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

# The host may set GOFLAGS (e.g. -mod=mod); `go install pkg@version` refuses -mod flags.
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=
cache_root=${INJECTOR_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/injector-harness}
cache=$cache_root/node-image
node_dir=$here/node-image

# shellcheck source=lib.sh disable=SC1091
source "$here/lib.sh"

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

# ---- static Go binaries of the node -----------------------------------------

tools_key=$(
  {
    echo "recipe=$RECIPE"
    echo "CRI_TOOLS_VERSION=$CRI_TOOLS_VERSION COREDNS_VERSION=$COREDNS_VERSION"
    echo "NODE_ETCD_VERSION=$NODE_ETCD_VERSION PAUSE_VERSION=$PAUSE_VERSION"
    go env GOVERSION GOOS GOARCH
    cat "$here/etcd/$NODE_ETCD_VERSION/go.mod" "$here/etcd/$NODE_ETCD_VERSION/go.sum" "$node_dir/pause/go.mod" "$node_dir/pause/main.go"
  } | short_hash
)
tools_dir=$cache_root/node-tools/$tools_key/bin

# build_tool NAME COMMAND...: runs COMMAND (which writes $out/NAME) unless
# NAME is cached; COMMAND sees $out, a fresh temporary directory.
build_tool() {
  local name=$1 t
  shift
  if [[ -x "$tools_dir/$name" ]]; then
    log "$name: cached"
    return
  fi
  t=$(now)
  log "building $name ..."
  out=$(mktemp -d "$tools_dir/../tmp.XXXXXX")
  "$@"
  mv -f "$out/$name" "$tools_dir/$name"
  rm -rf "$out"
  log "$name: built in $(secs "$t" "$(now)")"
}

go_install() { GOBIN=$out go install -trimpath "$@"; }

build_crictl() {
  go_install -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRI_TOOLS_VERSION#v}" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
}
build_coredns() {
  go_install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
}
build_etcd() {
  (cd "$here/etcd/$NODE_ETCD_VERSION" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}
build_pause() {
  (cd "$node_dir/pause" && go build -trimpath -ldflags "-s -w -X main.version=$PAUSE_VERSION" -o "$out/pause" .)
}

build_bins() {
  mkdir -p "$tools_dir"
  exec 8>"$tools_dir/../.lock"
  flock 8
  build_tool pause build_pause
  build_tool crictl build_crictl
  build_tool coredns build_coredns
  build_tool etcd build_etcd
  exec 8>&-
  k8s_bin=$("$here/build-control-plane.sh" --node)
}

# docker_build ARGS...: `docker build -q` with its output kept in
# $cache/docker-build.log and shown only when the build fails.
docker_build() {
  # --force-rm: a failed step leaves no stopped container behind.
  if ! docker build -q --force-rm "$@" >"$cache/docker-build.log" 2>&1; then
    cat "$cache/docker-build.log" >&2
    die "docker build $* failed"
  fi
}

# ---- component images --------------------------------------------------------

# Reads `kubeadm config images list` and builds each image it names, FROM
# scratch, under exactly that name; fails when a name or tag is not the one
# our pins build. Saves them all into $1/images.tar.
build_component_images() {
  local ctx=$1 ref name tag bin entry
  local -a refs=()
  mapfile -t refs < <("$k8s_bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
  ((${#refs[@]} > 0)) || die "kubeadm config images list printed nothing"
  log "kubeadm $K8S_VERSION expects: ${refs[*]}"
  mkdir -p "$ctx/components"
  for ref in "${refs[@]}"; do
    name=${ref%:*}
    name=${name##*/}
    tag=${ref##*:}
    entry=
    case "$name" in
      kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy)
        [[ "$tag" == "$K8S_VERSION" ]] || die "$ref: tag is not K8S_VERSION $K8S_VERSION"
        bin=$k8s_bin/$name
        ;;
      etcd)
        [[ "$tag" == "${NODE_ETCD_VERSION#v}-0" ]] || die "$ref: kubeadm wants etcd $tag, NODE_ETCD_VERSION is $NODE_ETCD_VERSION (edit kind/versions.env, rerun kind/gen-control-plane-mod.sh)"
        bin=$tools_dir/etcd
        ;;
      coredns)
        [[ "$tag" == "$COREDNS_VERSION" ]] || die "$ref: kubeadm wants CoreDNS $tag, COREDNS_VERSION is $COREDNS_VERSION"
        bin=$tools_dir/coredns
        entry=/usr/local/bin/coredns
        ;;
      pause)
        [[ "$tag" == "$PAUSE_VERSION" ]] || die "$ref: kubeadm wants pause $tag, PAUSE_VERSION is $PAUSE_VERSION"
        bin=$tools_dir/pause
        entry=/usr/local/bin/pause
        ;;
      *) die "kubeadm names an image this script does not know how to build: $ref" ;;
    esac
    local dir=$ctx/components/$name
    mkdir -p "$dir"
    cp "$bin" "$dir/$name"
    if [[ "$name" == kube-proxy ]]; then
      cp "$node_dir/kube-proxy.Dockerfile" "$dir/Dockerfile"
    else
      {
        echo "FROM scratch"
        echo "COPY $name /usr/local/bin/$name"
        echo "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
        [[ -z "$entry" ]] || echo "ENTRYPOINT [\"$entry\"]"
      } >"$dir/Dockerfile"
    fi
    docker_build --build-arg "ROOTFS=$rootfs_tag" -t "$ref" "$dir"
    log "image $ref: built"
  done
  mkdir -p "$ctx/images"
  docker save -o "$ctx/images/images.tar" "${refs[@]}"
  log "saved ${#refs[@]} images ($(du -h "$ctx/images/images.tar" | cut -f1))"
}

# ---- node image --------------------------------------------------------------

node_key() {
  {
    echo "recipe=$RECIPE rootfs=$rootfs_key tools=$tools_key"
    "$here/build-control-plane.sh" --bin-dir
    grep -v '^#' "$here/versions.env"
    cat "${BASH_SOURCE[0]}"
    (cd "$node_dir" && find . -type f ! -path './pause/*' -print0 | sort -z | xargs -0 sha256sum)
  } | short_hash
}
node_tag=injector-harness/kind-node:$K8S_VERSION-$(node_key)

build_node() {
  local t ctx
  t=$(now)
  ctx=$cache/context-${node_tag##*:}
  rm -rf "$ctx"
  mkdir -p "$ctx/bin"
  build_component_images "$ctx"
  cp "$k8s_bin/kubelet" "$k8s_bin/kubeadm" "$k8s_bin/kubectl" "$tools_dir/crictl" "$ctx/bin/"
  cp -a "$node_dir/files" "$ctx/files"
  cp "$node_dir/Dockerfile" "$ctx/Dockerfile"
  log "building $node_tag ..."
  docker_build --build-arg "ROOTFS=$rootfs_tag" --build-arg "K8S_VERSION=$K8S_VERSION" \
    --build-arg "PAUSE_VERSION=$PAUSE_VERSION" -t "$node_tag" "$ctx"
  rm -rf "$ctx"
  log "node image: built in $(secs "$t" "$(now)")"
}

# The stock image kind publishes for the pinned Kubernetes version.
stock_tag=kindest/node:$K8S_VERSION

# Prints "IMAGE<TAB>WHY": the node image a cluster is created from, one line.
# Building is the fallback: a stock image the user has (or, with
# KIND_NODE_PULL=1, can pull) wins. The pull is opt-in: the harness reaches
# no registry unless told to.
choose() {
  if [[ -n "${KIND_NODE_IMAGE:-}" ]]; then
    printf '%s\t%s\n' "$KIND_NODE_IMAGE" "KIND_NODE_IMAGE is set"
  elif docker image inspect "$stock_tag" >/dev/null 2>&1; then
    printf '%s\t%s\n' "$stock_tag" "the stock image of $K8S_VERSION is in the local Docker engine"
  elif [[ "${KIND_NODE_PULL:-0}" == 1 ]] &&
    timeout "${KIND_NODE_PULL_TIMEOUT:-300}" docker pull -q "$stock_tag" >/dev/null 2>&1; then
    printf '%s\t%s\n' "$stock_tag" "pulled the stock image of $K8S_VERSION (KIND_NODE_PULL=1)"
  elif docker image inspect "$node_tag" >/dev/null 2>&1; then
    printf '%s\t%s\n' "$node_tag" "the offline image of $K8S_VERSION, built earlier"
  else
    local pull="KIND_NODE_PULL=1 to pull it"
    [[ "${KIND_NODE_PULL:-0}" == 1 ]] && pull="the pull failed"
    printf '%s\t%s\n' "$node_tag" "no $stock_tag here ($pull; or set KIND_NODE_IMAGE): building the offline image of $K8S_VERSION, about 10 min cold on 2 cores"
  fi
}

main() {
  local t rootfs_pid chosen why
  t=$(now)
  "$here/docker.sh" ensure
  IFS=$'\t' read -r chosen why < <(choose)
  log "node image: $chosen ($why)"
  if [[ "$chosen" != "$node_tag" ]]; then
    echo "$chosen"
    return 0
  fi
  mkdir -p "$cache"
  if docker image inspect "$node_tag" >/dev/null 2>&1; then
    log "node image: cached ($node_tag)"
  else
    # debootstrap waits on the network and dpkg, the Go builds on the CPU:
    # run them side by side. The background job is recorded and, if this
    # script fails first, stopped by its pid.
    # setsid: the job leads its own process group, so debootstrap and dpkg
    # under it stop with it.
    setsid "${BASH_SOURCE[0]}" --rootfs >"$cache/rootfs-job.log" 2>&1 &
    rootfs_pid=$!
    trap 'kill -- -"$rootfs_pid" 2>/dev/null || true' EXIT
    log "rootfs: building in the background (pid $rootfs_pid, log $cache/rootfs-job.log)"
    build_bins
    if ! wait "$rootfs_pid"; then
      cat "$cache/rootfs-job.log" >&2
      die "rootfs build failed"
    fi
    trap - EXIT
    cat "$cache/rootfs-job.log" >&2
    build_node
  fi
  docker tag "$node_tag" "injector-harness/kind-node:$K8S_VERSION"
  log "total: $(secs "$t" "$(now)")"
  echo "$node_tag"
}

case "${1:-}" in
  "") main ;;
  --tag) echo "$node_tag" ;;
  --choose) "$here/docker.sh" ensure && choose ;;
  --bins) build_bins ;;
  --rootfs) build_rootfs ;;
  *)
    echo "usage: $0 [--choose | --tag | --bins | --rootfs]" >&2
    exit 2
    ;;
esac
