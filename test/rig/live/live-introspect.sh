#!/bin/bash
# live-introspect.sh VMEMTRANS_BIN [WORKDIR] [ROUNDS]
# Boots the fixture guest (Debian 6.1, or $LIVE_KERNEL's generation; KASLR on, TCG) with its RAM in a file on
# /dev/shm (memory-backend-file, share=on) and QMP, then ROUNDS times (default 2):
# asks the guest for a fresh process list on the serial console, runs
#   VMEMTRANS_BIN ps --json --qmp SOCK --mem-path FILE
# against the running guest and compares pid/ppid/comm with the guest's list
# (every round after the first also starts a new process, vmt_round_N, first).
# Prints "live: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../../.." && pwd); FIX=$REPO/test/rig/fixture
BIN=$(readlink -f "${1:?usage: live-introspect.sh VMEMTRANS_BIN [WORKDIR] [ROUNDS]}")
W=${2:-/tmp/vmt-live}; ROUNDS=${3:-2}; mkdir -p "$W"; W=$(readlink -f "$W"); cd "$W"
RAM_MIB=${LIVE_RAM_MIB:-256}
GEN=${LIVE_KERNEL:-6.1}   # kernel generation: 6.1, 6.12 or 7 (see test/rig/lib/fetch-kernel.sh)
CPU=${LIVE_CPU:-qemu64}   # qemu64,+la57: 5-level paging
PASS=0; FAIL=0
ok() { PASS=$((PASS+1)); echo "live: PASS $1"; }
ko() { FAIL=$((FAIL+1)); echo "live: FAIL $1"; }
finish() { echo "live: $PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; exit; }
[ -x "$BIN" ] || { ko "no executable $BIN (build it: make build)"; finish; }

# guest: kernel, initramfs (same /init as the fixtures, vmt.mode=live)
need=""; for p in qemu-system-x86 busybox-static cpio kmod xz-utils binutils; do dpkg -s $p >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  timeout 300 apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends $need >/dev/null
fi
apt-cache show linux-image-amd64 >/dev/null 2>&1 || timeout 300 apt-get update -q >/dev/null
if [ "$GEN" = 6.1 ]; then
  out=$(bash "$REPO/test/rig/lib/fetch-debs.sh" "$W/debs" "$W/stage" 2>"$W/fetch.log") || { ko "fetch kernel (see $W/fetch.log)"; finish; }
  KREL=${out##*KREL=}
  rm -rf kstage && mkdir kstage && dpkg -x debs/linux-image-"$KREL"_*.deb kstage
else # a newer generation from its backports suite (a private apt dir; unpacks into kstage)
  out=$(bash "$REPO/test/rig/lib/fetch-kernel.sh" "$GEN" "$W" 2>"$W/fetch.log") || { ko "fetch $GEN kernel (see $W/fetch.log)"; finish; }
  out=${out##*KREL=}; KREL=${out%% KVER=*}
fi
echo "live: kernel $KREL"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$W/fixturetool" ./test/rig/fixture/fixturetool &&
  CGO_ENABLED=0 go build -trimpath -o "$W/vmt_threads" ./test/rig/fixture/threads) || { ko "go build helpers"; finish; }
RIG_MODULES="veth vsock_loopback dummy" bash "$REPO/test/rig/lib/mkinitrd.sh" kstage initrd.gz "$FIX/init" vmt_threads >/dev/null ||
  { ko mkinitrd; finish; }
cp kstage/boot/vmlinuz-"$KREL" vmlinuz

MEM=/dev/shm/vmt-live-$$; QMP=$W/qmp.sock; CTL=$W/ctl.sock; LOG=$W/serial.log
rm -f "$MEM" "$QMP" "$CTL" "$LOG"
timeout 900 qemu-system-x86_64 -accel tcg -cpu "$CPU" -m "${RAM_MIB}M" -smp 1 -vga none -nographic -no-reboot -nic none \
  -object memory-backend-file,id=mem,size="${RAM_MIB}M",mem-path="$MEM",share=on -machine pc,memory-backend=mem \
  -qmp unix:"$QMP",server=on,wait=off -chardev socket,id=ctl,path="$CTL",server=on,wait=off \
  -serial mon:stdio -serial chardev:ctl \
  -kernel vmlinuz -initrd initrd.gz -append "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check vmt.mode=live" \
  </dev/null >"$LOG" 2>&1 &
QPID=$!
trap 'kill $QPID 2>/dev/null; wait $QPID 2>/dev/null; rm -f "$MEM"' EXIT
wait_ready() { # the first boot takes ~20-50 s under TCG; a later snapshot a few seconds
  for _ in $(seq 1 "$2"); do
    grep "VMT-READY $1" "$LOG" >/dev/null 2>&1 && return 0
    kill -0 $QPID 2>/dev/null || return 1
    sleep 1; done
  return 1
}
for n in $(seq 0 $((ROUNDS-1))); do
  [ "$n" = 0 ] || ./fixturetool send "$CTL" snap
  wait_ready "live$n" $([ "$n" = 0 ] && echo 300 || echo 60) || { ko "guest snapshot live$n (see $LOG)"; finish; }
  ./fixturetool truth -log "$LOG" -label "live$n" -name "live$n" > "truth-live$n.json" &&
    ok "guest ground truth live$n ($(grep -c '"pid"' "truth-live$n.json") tasks)" || ko "guest ground truth live$n"
  if timeout 120 "$BIN" ps --json --qmp "$QMP" --mem-path "$MEM" > "ps-live$n.json" 2> "ps-live$n.err"; then
    ok "vmemtrans ps live$n"
  else
    ko "vmemtrans ps live$n rc=$? ($(head -c 300 "ps-live$n.err"))"; continue
  fi
  res=$(./fixturetool compare -prefix "live$n" -log "$LOG" -label "live$n" "ps-live$n.json" 2>&1)
  echo "$res" | grep -v ": PASS " || true   # failures, notes and the summary
  [ "$n" = 0 ] || { grep "\"comm\": *\"vmt_round_$n\"" "ps-live$n.json" >/dev/null &&
    ok "live$n: new process vmt_round_$n seen" || ko "live$n: new process vmt_round_$n not seen"; }
  line=$(echo "$res" | tail -1)
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    PASS=$((PASS+BASH_REMATCH[1])); FAIL=$((FAIL+BASH_REMATCH[2]))
  else
    ko "compare live$n: $line"
  fi
done
finish
