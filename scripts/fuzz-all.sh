#!/bin/bash
# fuzz-all.sh [FUZZTIME] : run every Go fuzz target of the module for a bounded time each.
set -euo pipefail
FUZZTIME=${1:-10s}
cd "$(dirname "$0")/.."
fail=0; n=0
while IFS=: read -r file _ line; do
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  n=$((n+1))
  echo "fuzz: $pkg $name for $FUZZTIME"
  if ! timeout 600 go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"; then
    echo "fuzz: FAIL $pkg $name"; fail=$((fail+1))
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort)
echo "fuzz: $((n-fail)) passed, $fail failed"
[ "$fail" = 0 ]
