#!/bin/bash
# demo.sh : the README's main job, `vmemtrans demo` with no flags: the bundled
# real Debian guest (a rootkit loaded) split across two sub-hosts on
# loopback by the split-memory runtime, a quarter of it resident, a synthetic
# workload running on it, and the IDS suite (ps, lsmod, check syscalls,
# hidden-tasks, kernel-text, a whole-memory scan) through proxy, self and
# adaptive paging beside the unsplit image. It fails when any method's
# answers differ from the unsplit image's.
set -euo pipefail
cd "$(dirname "$0")/.."
V=./bin/vmemtrans
[ -x "$V" ] || go build -trimpath -o bin/ ./cmd/...
exec "$V" demo "$@"
