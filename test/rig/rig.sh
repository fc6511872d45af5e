#!/bin/bash
# rig.sh [WORKDIR] : the QEMU SoftRoCE rig (make rig, .ci/run).
# Boots a Debian 6.1 kernel under TCG with no NIC, brings up rxe0 on a veth
# inside the guest and runs there: the RDMA Transport tests (go test -c -tags
# rdma ./rdma), `vmemtrans subhost --rdma rxe0` + `vmemtrans bench fetch` over
# RDMA, our batched 4 KiB READ path against ib_read_bw -s 4096, and the
# in-guest agent (vmemtrans-agent) over AF_VSOCK loopback and over a
# virtio-serial port that the host reaches through QEMU's chardev. Then, on
# the host, live introspection of a running guest with KASLR on through QMP
# and its memory file (test/rig/live/live-introspect.sh).
# Every check prints "rig: PASS|FAIL name"; the last line is
# "rig: N passed, N failed" and the exit status is non-zero if any failed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
W=${1:-${RIG_DIR:-/tmp/vmemtrans-rig}}
mkdir -p "$W/bin"
export PATH=$PATH:/usr/local/go/bin
PASS=0; FAIL=0
ok() { PASS=$((PASS + 1)); echo "rig: PASS $1"; }
ko() { FAIL=$((FAIL + 1)); echo "rig: FAIL $1"; }
now() { date +%s%N; }
phase() { echo "rig: phase $1 took $(( ($(now) - $2) / 1000000 )) ms"; }
finish() { echo "rig: total $(( ($(now) - TALL) / 1000000 )) ms"; echo "rig: $PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; exit $?; }
abort() { ko "$1"; finish; }
TALL=$(now); T=$TALL

# 1. host packages: qemu, busybox, cpio, kmod, xz, gcc + libc6-dev (a Recommends
#    of gcc, absent with --no-install-recommends), libibverbs + libnl static
#    libs for the static cgo build
need=""
for p in qemu-system-x86 busybox-static cpio kmod xz-utils binutils gcc libc6-dev libibverbs-dev libnl-3-dev libnl-route-3-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  timeout 300 apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends $need >/dev/null ||
    abort "host_packages ($need)"
fi
phase host-packages "$T"; T=$(now)

# 2. Debian kernel (resolved at run time) + rdma-core user space, cached in $W/debs
apt-cache depends linux-image-amd64 2>/dev/null | grep 'Depends: linux-image-6' >/dev/null || timeout 300 apt-get update -q >/dev/null
rm -rf "$W/stage"
out=$(bash "$HERE/lib/fetch-debs.sh" "$W/debs" "$W/stage") || abort fetch_debs
KREL=${out##*KREL=}
cp "$W/stage/boot/vmlinuz-$KREL" "$W/vmlinuz" || abort "kernel_$KREL"
echo "rig: kernel $KREL"
phase fetch-debs "$T"; T=$(now)

# 3. binaries: static cgo with the rxe provider built in (no provider .so,
#    no libnl in the guest); a plain host build for the live phase
PROV=$(basename "$(ls /usr/lib/x86_64-linux-gnu/librxe-rdmav*.a | head -1)" .a); PROV=${PROV#lib}
export CGO_ENABLED=1 CGO_CFLAGS="-O2 -DRDMA_STATIC_PROVIDERS=rxe"
export CGO_LDFLAGS="-Wl,--start-group -libverbs -l$PROV -lnl-route-3 -lnl-3 -Wl,--end-group -lpthread"
STATIC=(-trimpath -tags rdma -ldflags '-linkmode external -extldflags "-static" -s -w')
build() { (cd "$ROOT" && timeout 900 "$@" 2>&1 | grep -vE 'warning: Using|in function|^#' ; exit "${PIPESTATUS[0]}"); }
build go test -c "${STATIC[@]}" -o "$W/bin/rdma.test" ./rdma || abort build_rdma_test
# a broken CLI build fails its checks, not the whole rig
rm -f "$W/bin/vmemtrans" "$W/bin/vmemtrans-host"
build go build "${STATIC[@]}" -o "$W/bin/vmemtrans" ./cmd/vmemtrans || ko build_vmemtrans_rdma
(cd "$ROOT" && CGO_ENABLED=0 timeout 900 go build -trimpath -o "$W/bin/vmemtrans-host" ./cmd/vmemtrans) || ko build_vmemtrans_host
rm -f "$W/bin/vmemtrans-agent"
(cd "$ROOT" && CGO_ENABLED=0 timeout 900 go build -trimpath -ldflags '-s -w' -o "$W/bin/vmemtrans-agent" ./cmd/vmemtrans-agent) || ko build_vmemtrans_agent
GUEST_BINS=("$W/bin/rdma.test"); [ -f "$W/bin/vmemtrans" ] && GUEST_BINS+=("$W/bin/vmemtrans")
[ -f "$W/bin/vmemtrans-agent" ] && GUEST_BINS+=("$W/bin/vmemtrans-agent")
phase go-build "$T"; T=$(now)

# the in-guest agent's key for the virtio-serial check (hex, mode 0600): the
# guest gets it in the initramfs, the host side uses it from $W
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/vmemtrans-agent.key"; echo >> "$W/vmemtrans-agent.key")

# 4. initramfs: modules (rxe, veth, vsock, virtio-serial), rdma-core tools, our binaries and checks
bash "$HERE/lib/mkinitrd.sh" "$W/stage" "$W/initrd.gz" "$HERE/init" \
  "${GUEST_BINS[@]}" "$HERE/guest/checks.sh" "$ROOT/test/fixtures/linux-6.1-attack/memory.elf.zst" \
  "$W/vmemtrans-agent.key" || abort mkinitrd
phase mkinitrd "$T"; T=$(now)

# 5. boot the guest; QEMU runs under timeout and is stopped by its PID only
LOG=$W/guest.log
rm -f "$W/agent.sock"
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -m 2G -smp 2 -nographic -no-reboot -nic none \
  -kernel "$W/vmlinuz" -initrd "$W/initrd.gz" -append 'console=ttyS0 panic=-1 quiet rig.mode=rdma' \
  -device virtio-serial-pci -chardev socket,id=agent,path="$W/agent.sock",server=on,wait=off \
  -device virtserialport,chardev=agent,name=org.vmemtrans.agent \
  </dev/null >"$LOG" 2>&1 &
QPID=$!
# the host side of agent_serial: through QEMU's chardev of the guest's
# virtio-serial port, ask the in-guest agent for two frames until it answers
# (it serves the port once the guest reaches that check)
(for i in $(seq 1 100); do
   kill -0 "$QPID" 2>/dev/null || exit 1
   [ -S "$W/agent.sock" ] && timeout 60 "$W/bin/vmemtrans-host" agent touch --agent "unix:$W/agent.sock" \
     --agent-key-file "$W/vmemtrans-agent.key" --gfn 0x100,0x1000 > "$W/agent-serial.out" 2>&1 && exit 0
   sleep 3
 done; exit 1) &
APID=$!
trap 'kill "$QPID" "$APID" 2>/dev/null' EXIT
wait "$QPID"; echo "rig: qemu rc=$?"
wait "$APID"; arc=$?
trap - EXIT
cat "$W/agent-serial.out" 2>/dev/null
if [ "$arc" = 0 ]; then ok agent_serial_host; else ko "agent_serial_host rc=$arc"; fi
grep -aE '^(RIG|GFN|agent |=== RUN| *--- |    [a-z_]+_test\.go|    suite\.go)|rxe0|"transport"|pages/s' "$LOG" | grep -av RIG-RESULT | tr -d '\r'
want="rxe0_add devices_offers_rdma agent_vsock agent_serial go_rdma_transport_suite rdma_conformance_suite cli_subhost_bench_rdma split_ps_proxy_rdma read_ratio_vs_ib_read_bw"
for name in $want; do
  rc=$(grep -a "^RIG-RESULT $name " "$LOG" | tail -1 | awk '{print $3}' | tr -d '\r')
  if [ "$rc" = 0 ]; then ok "$name"; else ko "$name rc=${rc:-missing}"; fi
done
phase boot-guest "$T"; T=$(now)

# 6. host side: introspect a live guest (KASLR on) through QMP and its memory file
LIVE=$HERE/live/live-introspect.sh
# its own workdir inside ours; the .deb cache is shared, not fetched twice
mkdir -p "$W/live"; [ -e "$W/live/debs" ] || ln -s "$W/debs" "$W/live/debs"
if timeout 900 bash "$LIVE" "$W/bin/vmemtrans-host" "$W/live"; then ok live_introspect; else ko "live_introspect rc=$?"; fi
phase live "$T"; T=$(now)
# the same against Debian's current 7.x kernel (trixie-backports): newer kallsyms layout
mkdir -p "$W/live-7"
if LIVE_KERNEL=7 timeout 900 bash "$LIVE" "$W/bin/vmemtrans-host" "$W/live-7"; then ok live_introspect_7; else ko "live_introspect_7 rc=$?"; fi
phase live-7 "$T"; T=$(now)

# 7. a running guest split across hosts: QEMU (unmodified, under the preload
#    library) on the split-memory runtime, a sub-host on loopback TCP
(cd "$ROOT" && gcc -O2 -Wall -Wextra -shared -fPIC -o "$W/bin/vmemtrans-preload.so" kvmhost/handoff/preload/vmemtrans-preload.c) ||
  ko build_preload
mkdir -p "$W/split"; [ -e "$W/split/debs" ] || ln -s "$W/debs" "$W/split/debs"
if timeout 2400 bash "$HERE/split/split-guest.sh" "$W/bin/vmemtrans-host" "$W/bin/vmemtrans-preload.so" "$W/split"; then
  ok split_guest
else
  ko "split_guest rc=$?"
fi
phase split "$T"

finish
