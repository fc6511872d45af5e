#!/bin/bash
# install-deps.sh [test|demo|all] : install the Debian packages a make target
# needs, when missing. Idempotent: with everything present it is one dpkg
# query (tens of milliseconds) and installs nothing.
#   demo: the build (make, cgo for the race detector's runtime)
#   test: demo's, plus QEMU for the QEMU integration test
#   all:  test's, plus the rig and the RDMA build (libibverbs, busybox, ...)
set -euo pipefail
BASE="ca-certificates make gcc libc6-dev"
case "${1:-all}" in
  demo) PKGS="$BASE" ;;
  test) PKGS="$BASE qemu-system-x86" ;;
  all)  PKGS="$BASE qemu-system-x86 libibverbs-dev libnl-3-dev libnl-route-3-dev busybox-static cpio kmod xz-utils binutils zstd" ;;
  *) echo "usage: $0 [test|demo|all]" >&2; exit 2 ;;
esac
command -v dpkg-query >/dev/null || { echo "install-deps: not a Debian system; install the equivalents of: $PKGS"; exit 0; }
# One query for all packages; a missing one prints nothing or a non-"installed" status.
have=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' $PKGS 2>/dev/null || true) "
need=""
for p in $PKGS; do
  case "$have" in *" $p=installed "*) ;; *) need="$need $p" ;; esac
done
if [ -z "$need" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"
  else echo "install-deps: missing Debian packages:$need; run: sudo apt-get install -y --no-install-recommends$need" >&2; exit 1
  fi
fi
echo "install-deps: installing$need"
$SUDO timeout 600 apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO timeout 900 apt-get install -y -q --no-install-recommends $need >/dev/null
echo "install-deps: ok"
