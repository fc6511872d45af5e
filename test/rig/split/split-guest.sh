#!/bin/bash
# split-guest.sh VMEMTRANS_BIN PRELOAD_SO [WORKDIR]
# A running Linux guest split across hosts: the fixture guest (Debian 6.1, KASLR on, TCG) boots under
# `vmemtrans mainhost --qemu` (QEMU's RAM on a memfd whose userfaultfd the preload library hands to the
# runtime), the pages beyond the resident share on a `vmemtrans subhost` over loopback TCP. Checks:
#   split_guest_boot    the guest reaches VMT-READY at --resident 50, and at least 40% of the pages it
#                       touched were paged out to the sub-host at some point (the runtime's exit stats)
#   split_guest_ids     ps, lsmod, check syscalls and check hidden-tasks through --method proxy, self and
#                       adaptive on the live split guest equal the guest's own /proc view (serial console)
#   split_guest_writer  an in-guest writer rewrites and re-checks a buffer while the runtime evicts at
#                       --resident 25: 0 corruptions
#   agent_self_paging, split_guest_ids_agent (when the agent is built and `vmemtrans agent touch` exists):
#                       the agent makes N remote frames resident (each local afterwards in the location
#                       map, page-ins up by at least N); ps and lsmod with --method self --agent equal the
#                       guest's view
# Figures (rig: figure ...): boot time unsplit vs split in the same run, pages paged in/out, IDS wall
# time per method (median of 3). Every process runs under timeout and is stopped by its PID only.
# With cmd/vmemtrans-agent in the tree, the agent and a key go into the initramfs (virtio-serial port
# org.vmemtrans.agent, host end $W/agent.sock).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../../.." && pwd); FIX=$REPO/test/rig/fixture
BIN=$(readlink -f "${1:?usage: split-guest.sh VMEMTRANS_BIN PRELOAD_SO [WORKDIR]}")
PRELOAD=$(readlink -f "${2:?usage: split-guest.sh VMEMTRANS_BIN PRELOAD_SO [WORKDIR]}")
W=${3:-/tmp/vmt-split}; mkdir -p "$W"; W=$(readlink -f "$W"); cd "$W"
RAM_MIB=${SPLIT_RAM_MIB:-256}
PASS=0; FAIL=0; PIDS=()
ok() { PASS=$((PASS+1)); echo "rig: PASS $1"; }
ko() { FAIL=$((FAIL+1)); echo "rig: FAIL $1"; }
figure() { echo "rig: figure $*"; }
stop_pids() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done; PIDS=(); }
finish() { stop_pids; echo "split: $PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; exit; }
trap stop_pids EXIT
[ -x "$BIN" ] || { ko "split_guest_boot (no executable $BIN: make build)"; finish; }
[ -f "$PRELOAD" ] || { ko "split_guest_boot (no preload library $PRELOAD: make build)"; finish; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# guest: kernel and initramfs as in test/rig/live (the fixture /init), plus the agent when built
apt-cache show linux-image-amd64 >/dev/null 2>&1 || timeout 300 apt-get update -q >/dev/null
out=$(bash "$REPO/test/rig/lib/fetch-debs.sh" "$W/debs" "$W/stage" 2>"$W/fetch.log") || { ko "split_guest_boot (fetch kernel, see $W/fetch.log)"; finish; }
KREL=${out##*KREL=}
rm -rf kstage && mkdir kstage && dpkg -x debs/linux-image-"$KREL"_*.deb kstage
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$W/fixturetool" ./test/rig/fixture/fixturetool &&
  CGO_ENABLED=0 go build -trimpath -o "$W/vmt_threads" ./test/rig/fixture/threads) || { ko "split_guest_boot (go build helpers)"; finish; }
EXTRA=("$W/vmt_threads"); MODS="veth vsock_loopback dummy"; AGENT=""
if [ -d "$REPO/cmd/vmemtrans-agent" ] &&
   (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$W/vmemtrans-agent" ./cmd/vmemtrans-agent); then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/vmemtrans-agent.key"; echo >> "$W/vmemtrans-agent.key"
  chmod 600 "$W/vmemtrans-agent.key"
  EXTRA+=("$W/vmemtrans-agent" "$W/vmemtrans-agent.key"); MODS="$MODS virtio_pci virtio_console"; AGENT=1
fi
RIG_MODULES="$MODS" bash "$REPO/test/rig/lib/mkinitrd.sh" kstage initrd.gz "$FIX/init" "${EXTRA[@]}" >/dev/null ||
  { ko "split_guest_boot (mkinitrd)"; finish; }
cp kstage/boot/vmlinuz-"$KREL" vmlinuz
echo "split: kernel $KREL, ${RAM_MIB} MiB guest, agent ${AGENT:-not built}; load: $(uptime | sed 's/.*load/load/')"

# qemu_args MODE CTL LOG: the guest's QEMU arguments, RAM on a shared memfd
qemu_args() {
  Q=(qemu-system-x86_64 -accel tcg -cpu qemu64 -m "${RAM_MIB}M" -smp 1 -vga none -nographic -no-reboot -nic none
    -object memory-backend-memfd,id=ram,size="${RAM_MIB}M",share=on -machine pc,memory-backend=ram
    -chardev socket,id=ctl,path="$2",server=on,wait=off -serial file:"$3" -serial chardev:ctl -monitor none
    -device virtio-serial -chardev socket,id=agent0,path="$W/agent.sock",server=on,wait=off
    -device virtserialport,chardev=agent0,name=org.vmemtrans.agent
    -kernel vmlinuz -initrd initrd.gz
    -append "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check vmt.mode=$1 ${4:-}")
}
# wait_log LOG PATTERN SECONDS PID: until PATTERN shows in LOG (PID must live)
wait_log() {
  local end=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt $end ]; do
    grep -a "$2" "$1" >/dev/null 2>&1 && return 0
    kill -0 "$4" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
stats_field() { grep -o "\"$2\":[0-9.]*" "$1" | head -1 | cut -d: -f2; }

# 1. the same guest unsplit (no runtime), for the boot-time baseline
rm -f serial-plain.log ctl-plain.sock; qemu_args live "$W/ctl-plain.sock" "$W/serial-plain.log"
T0=$(now); timeout 600 "${Q[@]}" </dev/null >qemu-plain.log 2>&1 & PIDS+=($!)
if wait_log serial-plain.log "VMT-READY live0" 400 "${PIDS[-1]}"; then BOOT_PLAIN=$(since "$T0"); else BOOT_PLAIN=""; fi
stop_pids

# 2. the split guest: a sub-host on loopback, the runtime at --resident 50
rm -rf sub && mkdir -m 700 sub
timeout 30 "$BIN" subhost keys add vm0 --state-dir sub >/dev/null && timeout 30 "$BIN" subhost keys add vm1 --state-dir sub >/dev/null ||
  { ko "split_guest_boot (subhost keys)"; finish; }
timeout 1800 "$BIN" subhost --listen 127.0.0.1:0 --state-dir sub --rdma off --json >sub.json 2>sub.log & PIDS+=($!); SUBPID=$!
wait_log sub.json '"listen"' 30 $SUBPID || { ko "split_guest_boot (subhost did not start: $(tail -c 300 sub.log))"; finish; }
SUB=$(grep -o '"listen":"[^"]*"' sub.json | cut -d'"' -f4)
# start_split VM PCT MODE CMDLINE [mainhost flags...]: the runtime and its QEMU; sets MPID
start_split() {
  local vm=$1 pct=$2 mode=$3 extra=$4; shift 4
  rm -f "serial-$vm.log" "$W/$vm.sock" "stats-$vm.json"; qemu_args "$mode" "$W/ctl-$vm.sock" "$W/serial-$vm.log" "$extra"
  timeout 1200 "$BIN" mainhost --qemu --vm "$vm" --resident "$pct" --subhost "$SUB" --psk-file sub/psk --rdma off \
    --socket "$W/$vm.sock" --preload "$PRELOAD" --stats-file "$W/stats-$vm.json" --metrics 127.0.0.1:0 --json "$@" \
    -- "${Q[@]}" </dev/null >"main-$vm.json" 2>"main-$vm.log" & MPID=$!; PIDS+=($MPID)
}
start_split vm0 50 live ""; T0=$(now)
if wait_log serial-vm0.log "VMT-READY live0" 900 $MPID; then
  BOOT_SPLIT=$(since "$T0"); BOOTED=1
else
  BOOTED=""; echo "split: guest did not boot: $(tail -c 400 main-vm0.log)"
fi
figure "split_guest_boot_seconds unsplit=${BOOT_PLAIN:-none} split=${BOOT_SPLIT:-none} (same run, ${RAM_MIB} MiB, TCG)"

IDS_OK=$BOOTED
if [ -n "$BOOTED" ]; then
  ./fixturetool truth -log serial-vm0.log -label live0 -name live0 > truth-live0.json 2>truth.err || IDS_OK=""
  grep -a '^VMT-MOD ' serial-vm0.log | awk '{print $2}' | tr -d '\r' | sort > mods-guest.txt
  for m in proxy self adaptive; do
    times=()
    for i in 1 2 3; do
      t=$(now)
      if ! timeout 180 "$BIN" ps --json --vm "$W/vm0.sock" --method $m >"ps-$m.json" 2>"ps-$m.err"; then
        echo "split: ps --method $m failed: $(head -c 300 "ps-$m.err")"; IDS_OK=""; break
      fi
      times+=("$(since "$t")")
    done
    [ ${#times[@]} = 3 ] && figure "split_guest_ps_seconds method=$m median=$(printf '%s\n' "${times[@]}" | median) runs=${times[*]}"
    res=$(./fixturetool compare -prefix "$m" -log serial-vm0.log -label live0 "ps-$m.json" 2>&1)
    echo "$res" | grep -v ": PASS " | sed 's/^/split: /'
    [[ $(echo "$res" | tail -1) =~ \ 0\ failed ]] || IDS_OK=""
    t=$(now)
    timeout 180 "$BIN" lsmod --json --vm "$W/vm0.sock" --method $m >"lsmod-$m.json" 2>"lsmod-$m.err" || IDS_OK=""
    figure "split_guest_lsmod_seconds method=$m $(since "$t")"
    grep -o '"name": *"[^"]*"' "lsmod-$m.json" | cut -d'"' -f4 | sort > "mods-$m.txt"
    if ! diff mods-guest.txt "mods-$m.txt" >/dev/null; then echo "split: lsmod --method $m differs from the guest's"; IDS_OK=""; fi
    for c in syscalls hidden-tasks; do
      t=$(now)
      if ! timeout 180 "$BIN" check $c --vm "$W/vm0.sock" --method $m >"check-$c-$m.out" 2>&1; then
        echo "split: check $c --method $m: $(head -c 300 "check-$c-$m.out")"; IDS_OK=""
      fi
      figure "split_guest_check_${c}_seconds method=$m $(since "$t")"
    done
  done
  # a consistent view: QMP stop/cont around the read
  timeout 180 "$BIN" ps --json --pause --vm "$W/vm0.sock" --method adaptive >ps-paused.json 2>ps-paused.err || IDS_OK=""
  ./fixturetool compare -prefix paused -log serial-vm0.log -label live0 ps-paused.json 2>&1 | tail -1 | grep ' 0 failed' >/dev/null || IDS_OK=""
fi
# self paging through the in-guest agent (when it is built and the CLI speaks it)
if [ -z "$AGENT" ] || ! "$BIN" agent touch --help >/dev/null 2>&1; then
  echo "split: agent checks not run: no cmd/vmemtrans-agent in the tree or no 'vmemtrans agent touch'"
elif [ -n "$BOOTED" ]; then
  N=${SPLIT_AGENT_PAGES:-64}; AG=(--agent "unix:$W/agent.sock" --agent-key-file "$W/vmemtrans-agent.key")
  t=$(now)
  if timeout 180 "$BIN" agent touch --vm "$W/vm0.sock" "${AG[@]}" --pages "$N" --json >touch.json 2>touch.err; then
    req=$(grep -o '"requested": *[0-9]*' touch.json | grep -o '[0-9]*$')
    ver=$(grep -o '"verified": *[0-9]*' touch.json | head -1 | grep -o '[0-9]*$')
    pin=$(grep -o '"page_ins_total": *[0-9]*' touch.json | grep -o '[0-9]*$')
    figure "split_guest_agent_touch pages=$N seconds=$(since "$t") verified=${ver:-none} page_ins_delta=${pin:-none}"
    # every requested remote frame is local afterwards (location map), and the runtime paged at least those in
    if [ "$req" = "$N" ] && [ "$ver" = "$N" ] && [ "${pin:-0}" -ge "$N" ]; then ok agent_self_paging
    else ko "agent_self_paging (requested ${req:-?}, verified local ${ver:-?}, page-ins +${pin:-?})"; fi
  else
    ko "agent_self_paging ($(head -c 300 touch.err))"
  fi
  AGENT_IDS=1
  for c in ps lsmod; do
    t=$(now)
    timeout 180 "$BIN" $c --json --vm "$W/vm0.sock" --method self "${AG[@]}" >"$c-agent.json" 2>"$c-agent.err" || AGENT_IDS=""
    figure "split_guest_${c}_seconds method=self-agent $(since "$t")"
  done
  ./fixturetool compare -prefix agent -log serial-vm0.log -label live0 ps-agent.json 2>&1 | tail -1 | grep ' 0 failed' >/dev/null || AGENT_IDS=""
  grep -o '"name": *"[^"]*"' lsmod-agent.json | cut -d'"' -f4 | sort | diff mods-guest.txt - >/dev/null || AGENT_IDS=""
  if [ -n "$AGENT_IDS" ]; then ok split_guest_ids_agent; else ko "split_guest_ids_agent (see $W/ps-agent.err, lsmod-agent.err)"; fi
fi
kill $MPID 2>/dev/null; wait $MPID 2>/dev/null
if [ -n "$BOOTED" ] && [ -s stats-vm0.json ]; then
  touched=$(stats_field stats-vm0.json touched_pages); out=$(stats_field stats-vm0.json ever_paged_out)
  figure "split_guest_pages touched=$touched ever_paged_out=$out page_ins=$(stats_field stats-vm0.json PageIns) page_outs=$(stats_field stats-vm0.json PageOuts) faults=$(stats_field stats-vm0.json Faults)"
  if [ "${touched:-0}" -gt 0 ] && [ $((out * 100)) -ge $((touched * 40)) ]; then ok split_guest_boot
  else ko "split_guest_boot (paged out $out of $touched touched pages, want >= 40%)"; fi
else
  ko "split_guest_boot (no ready marker or no exit stats, see $W/main-vm0.log)"
fi
if [ -n "$IDS_OK" ]; then ok split_guest_ids; else ko "split_guest_ids (see $W/ps-*.err, lsmod-*.err, check-*.out)"; fi

# 3. the writer under aggressive eviction
start_split vm1 25 writer "vmt.wmb=${SPLIT_WRITER_MIB:-48} vmt.wrounds=${SPLIT_WRITER_ROUNDS:-4}" --min-resident 64
if wait_log serial-vm1.log "VMT-WRITER done" 1200 $MPID; then
  line=$(grep -a "VMT-WRITER done" serial-vm1.log | tr -d '\r')
  kill $MPID 2>/dev/null; wait $MPID 2>/dev/null
  outs=$(stats_field stats-vm1.json PageOuts)
  figure "split_guest_writer ${line#VMT-WRITER } page_ins=$(stats_field stats-vm1.json PageIns) page_outs=$outs wp_faults=$(stats_field stats-vm1.json WPFaults)"
  if [[ $line == *"corruptions 0" ]] && [ "${outs:-0}" -gt 0 ]; then ok split_guest_writer
  else ko "split_guest_writer ($line, $outs page-outs)"; fi
else
  ko "split_guest_writer (no result, see $W/serial-vm1.log and $W/main-vm1.log)"
fi
finish
