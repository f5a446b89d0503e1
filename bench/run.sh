#!/usr/bin/env bash
# Run every benchmark in bench/ (each bench/<stage>.sh compares berth with its
# peer in the same run and prints medians and ratios). `make bench` calls this.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p results
status=0
for b in ./*.sh; do
  [ "$(basename "$b")" = run.sh ] && continue
  echo "=== $(basename "$b" .sh)"
  bash "$b" || { echo "benchmark $b failed" >&2; status=1; }
done
exit $status
