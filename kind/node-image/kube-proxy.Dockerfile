# kube-proxy for the injector-harness kind node image: the static kube-proxy
# plus the iptables userspace it runs (iptables-nft and iptables-legacy with
# their shared libraries and extension modules), copied out of the node's own
# Debian root filesystem. Everything else is FROM scratch.
ARG ROOTFS
FROM ${ROOTFS} AS iptables
RUN set -eu; \
    out=/out; mkdir -p "$out"; \
    files="$(readlink -f /usr/sbin/xtables-nft-multi) $(readlink -f /usr/sbin/xtables-legacy-multi) $(ls /usr/lib/x86_64-linux-gnu/xtables/*.so)"; \
    for f in $files; do \
      cp --parents -L "$f" "$out"; \
      for lib in $(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do \
        cp --parents -L -n "$lib" "$out"; \
      done; \
    done; \
    cd "$out/usr/sbin"; \
    for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do \
      ln -s xtables-nft-multi "$n"; ln -s xtables-nft-multi "${n%%-*}-nft${n#"${n%%-*}"}"; ln -s xtables-legacy-multi "${n%%-*}-legacy${n#"${n%%-*}"}"; \
    done; \
    mkdir -p "$out/run" "$out/tmp" "$out/var"; ln -s /run "$out/var/run"; \
    ls -la "$out/usr/sbin"

FROM scratch
COPY --from=iptables /out/ /
COPY kube-proxy /usr/local/bin/kube-proxy
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
