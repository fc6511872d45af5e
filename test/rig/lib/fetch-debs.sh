#!/bin/bash
# fetch-debs.sh DEBDIR STAGEDIR [EXTRA_PKGS...]
# Downloads Debian's current 6.1 kernel (resolved at run time, never pinned)
# and the rdma-core user space with apt-get download, and unpacks them into
# STAGEDIR. Prints "KREL=<release>" as the last line of stdout.
# Needs a prior apt-get update. Downloads are cached in DEBDIR.
set -euo pipefail
mkdir -p "$1" "$2"; DEBDIR=$(readlink -f "$1"); STAGE=$(readlink -f "$2"); shift 2
mkdir -p "$DEBDIR" "$STAGE"
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}')
[ -n "$KPKG" ] || { echo "fetch-debs: cannot resolve the kernel package (run apt-get update)" >&2; exit 1; }
PKGS="$KPKG libibverbs1 ibverbs-providers ibverbs-utils rdmacm-utils perftest libnl-3-200
      libnl-route-3-200 librdmacm1 libibumad3 libpci3 libudev1 zlib1g iproute2 libmnl0 libbsd0
      libcap2 libmd0 libelf1 libbpf1 $*"
chmod 777 "$DEBDIR" 2>/dev/null || true   # apt-get download runs as _apt when it can
cd "$DEBDIR"
missing=""
for p in $PKGS; do ls "${p}"_*.deb >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] || timeout 900 apt-get download -q $missing >&2
for d in "$DEBDIR"/*.deb; do dpkg -x "$d" "$STAGE"; done
echo "KREL=${KPKG#linux-image-}"
