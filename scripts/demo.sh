#!/bin/bash
# demo.sh : the most complete end-to-end run on one machine with bundled data.
set -euo pipefail
cd "$(dirname "$0")/.."
./bin/vmemtrans version
