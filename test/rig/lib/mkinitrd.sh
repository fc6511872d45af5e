#!/bin/bash
# mkinitrd.sh STAGEDIR OUT.cpio.gz INIT_SCRIPT [FILE...]
# Builds a busybox initramfs for a Debian kernel unpacked in STAGEDIR:
# the kernel modules named in $RIG_MODULES (with their modules.dep closure),
# the rdma-core user space and the extra FILEs (copied to /usr/bin with their
# shared-library closure). Host glibc (bookworm) provides libc.
set -euo pipefail
STAGE=$(readlink -f "$1"); OUT=$(readlink -f "$2"); INIT=$(readlink -f "$3"); shift 3
# rdma_rxe needs the crc32 shash, which modules.dep does not list.
MODULES=${RIG_MODULES:-"crc32_generic rdma_rxe ib_uverbs rdma_ucm vsock_loopback vsock_diag veth virtio_pci virtio_console"}
KREL=$(ls "$STAGE"/lib/modules | sort -V | tail -1)
R=$(mktemp -d); trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,var/run,usr/bin,usr/lib/x86_64-linux-gnu,usr/lib64,root}
ln -s usr/lib "$R/lib"; ln -s usr/lib64 "$R/lib64"
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
MD="$STAGE/lib/modules/$KREL"; [ -f "$MD/modules.dep" ] || depmod -b "$STAGE" "$KREL"
declare -A seen; order=()
add_mod() { local m=$1 line deps d
  line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$MD/modules.dep") || { echo "mkinitrd: no module $m" >&2; exit 1; }
  deps=${line#*:}
  for d in $deps; do d=$(basename "$d"); d=${d%%.ko*}; [ -n "${seen[$d]:-}" ] || add_mod "$d"; done
  [ -n "${seen[$m]:-}" ] || { seen[$m]=1; order+=("${line%%:*}"); } }
for m in $MODULES; do add_mod "$m"; done
mkdir -p "$R/lib/modules/$KREL"; : > "$R/etc/modules.order"
# busybox insmod takes plain .ko files: newer kernels ship them xz/zstd-compressed
for p in "${order[@]}"; do
  q=${p%.xz}; q=${q%.zst}; mkdir -p "$(dirname "$R/lib/modules/$KREL/$q")"
  case $p in *.xz) xz -dc "$MD/$p" > "$R/lib/modules/$KREL/$q" ;; *.zst) zstd -qdc "$MD/$p" > "$R/lib/modules/$KREL/$q" ;;
    *) install -D -m644 "$MD/$p" "$R/lib/modules/$KREL/$q" ;; esac
  echo "/lib/modules/$KREL/$q" >> "$R/etc/modules.order"; done
LDP="$STAGE/usr/lib/x86_64-linux-gnu:$STAGE/lib/x86_64-linux-gnu"
copy_libs() { LD_LIBRARY_PATH="$LDP" ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\s*\/lib64/{print $1}' | while read -r l; do
    b=$(basename "$l"); [ -e "$R/usr/lib/x86_64-linux-gnu/$b" ] || cp -L "$l" "$R/usr/lib/x86_64-linux-gnu/$b"; done || true; }
for b in usr/bin/ibv_devices usr/bin/ibv_devinfo usr/bin/ibv_rc_pingpong usr/bin/ib_read_lat usr/bin/ib_read_bw \
         usr/bin/ib_write_bw usr/bin/rping usr/bin/rdma sbin/ip bin/ip usr/sbin/ip; do
  [ -f "$STAGE/$b" ] || continue
  cp "$STAGE/$b" "$R/usr/bin/"; copy_libs "$STAGE/$b"; done
cp -L /lib64/ld-linux-x86-64.so.2 "$R/usr/lib64/"
cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 "$R/usr/lib/x86_64-linux-gnu/"   # dlopen'ed by pthread_cancel
mkdir -p "$R/etc/libibverbs.d" "$R/usr/lib/x86_64-linux-gnu/libibverbs"
if [ -f "$STAGE/etc/libibverbs.d/rxe.driver" ]; then
  cp "$STAGE/etc/libibverbs.d/rxe.driver" "$R/etc/libibverbs.d/"
  cp "$STAGE"/usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so "$R/usr/lib/x86_64-linux-gnu/libibverbs/"
  for l in "$STAGE"/usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so; do copy_libs "$l"; done
fi
for x in "$@"; do cp "$x" "$R/usr/bin/"; copy_libs "$x"; done
cp "$INIT" "$R/init"; chmod 755 "$R/init"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"; echo "root:x:0:" > "$R/etc/group"
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$OUT"
echo "mkinitrd: $OUT $(du -h "$OUT" | cut -f1), kernel $KREL"
