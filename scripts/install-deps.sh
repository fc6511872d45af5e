#!/bin/bash
# install-deps.sh : Debian packages the build, the tests and the QEMU rig need.
set -euo pipefail
PKGS="ca-certificates make gcc libc6-dev libibverbs-dev libnl-3-dev libnl-route-3-dev qemu-system-x86 busybox-static cpio kmod xz-utils binutils zstd"
need=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  timeout 600 apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends $need >/dev/null
fi
echo "install-deps: ok"
