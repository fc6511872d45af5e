#!/bin/bash
# demo.sh : the most complete end-to-end run of VMemTrans on one machine with
# bundled data (until `vmemtrans demo` exists):
#   1. a sub-host agent on loopback, a page-fetch benchmark against it over the
#      transport the machine supports (RDMA where a device exists, else TCP);
#   2. IDS checks on the bundled real Debian guest memory (KASLR on), from
#      guest memory alone, then on the same guest after a rootkit struck.
set -euo pipefail
cd "$(dirname "$0")/.."
V=./bin/vmemtrans
[ -x "$V" ] || go build -trimpath -o bin/ ./cmd/...
W=$(mktemp -d); SUB=""
cleanup() { [ -n "$SUB" ] && kill "$SUB" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "RDMA devices and the transport a sub-host would offer"
$V devices

say "sub-host agent on 127.0.0.1 (state in a temp dir, one pre-shared key per VM)"
$V subhost keys add bench --state-dir "$W/sub" >/dev/null
$V subhost keys add bench-latency --state-dir "$W/sub" >/dev/null
$V subhost keys list --state-dir "$W/sub"
$V subhost --listen 127.0.0.1:0 --state-dir "$W/sub" > "$W/sub.log" 2>&1 & SUB=$!
for _ in $(seq 100); do grep -q "listening on" "$W/sub.log" 2>/dev/null && break; sleep 0.1; done
cat "$W/sub.log"
ADDR=$(sed -nE 's/.*listening on ([^ ]+).*/\1/p' "$W/sub.log" | head -1)

say "page fetch benchmark: batch 256, 2 in flight (vs a bare TCP stream on the same path)"
$V bench fetch --subhost "$ADDR" --psk-file "$W/sub/psk" --pages 65536 --batch 256 --inflight 2 --duration 2s
say "page fetch benchmark: batch 1, 1 in flight (vs a bare 4 KiB ping-pong)"
$V bench fetch --subhost "$ADDR" --psk-file "$W/sub/psk" --vm bench-latency --pages 4096 --batch 1 --inflight 1 --duration 2s

CLEAN=test/fixtures/linux-6.1-clean/memory.elf.zst
ATTACK=test/fixtures/linux-6.1-attack/memory.elf.zst
say "processes of a real Debian 6.1 guest, from its memory alone (no symbols, no profile)"
$V ps --image "$CLEAN"
say "its kernel modules"
$V lsmod --image "$CLEAN"
say "integrity checks on the clean guest"
$V check syscalls --image "$CLEAN"
$V check hidden-tasks --image "$CLEAN"
say "the same guest after a rootkit hid a task and hooked a system call"
rc=0; $V check hidden-tasks --image "$ATTACK" || rc=$?
rc2=0; $V check syscalls --image "$ATTACK" || rc2=$?
[ "$rc" = 2 ] && [ "$rc2" = 2 ] || { echo "demo: the attack was not detected (exit codes $rc, $rc2)"; exit 1; }
say "demo: done — the attack was detected"
