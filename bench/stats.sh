#!/usr/bin/env bash
# `stats --no-stream`, `version` and `info --format json` of berth against
# podman: the same busybox image from one loopback registry, one running
# container each (runc under podman, since crun refuses this hybrid host;
# berth with its default berth-runtime), one hyperfine run per comparison.
# Medians and ratios to podman are printed. Everything lives under one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
. bench/lib/engines.sh
engines_setup stats --runtime runc --cgroup-manager cgroupfs
$BERTH run -d --name bench-stats -m 64m "$IMAGE" sleep 600 >/dev/null
$PODMAN run -d --name bench-stats -m 64m $PODMAN_RUN_FLAGS "$IMAGE" sleep 600 >/dev/null

compare() { # title podman-command berth-command
  local json="$WORK/$RANDOM.json"
  echo "## $1"
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" -n "podman $1" "$2" -n "berth $1" "$3" >/dev/null
  report "$json"
}

echo "## $RUNS runs each, one running container (-m 64m)"
compare 'stats --no-stream CTR' "$PODMAN stats --no-stream bench-stats" "$BERTH stats --no-stream bench-stats"
compare 'stats --no-stream --format json' "$PODMAN stats --no-stream --format json" "$BERTH stats --no-stream --format json"
compare 'version' "$PODMAN version" "$BERTH version"
compare 'info --format json' "$PODMAN info --format json" "$BERTH info --format json"
