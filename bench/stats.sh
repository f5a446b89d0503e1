#!/usr/bin/env bash
# `stats --no-stream`, `version` and `info --format json` of berth against
# podman: the same busybox image from one loopback registry, one running
# container each (runc under podman, since crun refuses this hybrid host;
# berth with its default berth-runtime), one hyperfine run per comparison.
# Medians and ratios to podman are printed. Everything lives under one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${RUNS:-10}
WORK=$(mktemp -d /tmp/berth-bench-stats.XXXXXX)
registry_pid=""
BERTH="node $REPO/tools/berth/bin/berth.js --root $WORK/root --runroot $WORK/run"
PODMAN="podman --root $WORK/podman-root --runroot $WORK/podman-run --runtime runc --cgroup-manager cgroupfs --events-backend none"
PODMAN_RUN_FLAGS="--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
cleanup() {
  $BERTH rm -f -a >/dev/null 2>&1 || true
  $PODMAN rm -f -a -t 0 >/dev/null 2>&1 || true
  $PODMAN system reset -f >/dev/null 2>&1 || true
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  grep -o "$WORK[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. "$REPO/test/lib/registry.sh"
start_registry "$WORK"
push_busybox "$WORK"
IMAGE=$busybox_image
$BERTH pull --tls-verify=false "$IMAGE" >/dev/null
$PODMAN pull --quiet --tls-verify=false "$IMAGE" >/dev/null
$BERTH run -d --name bench-stats -m 64m "$IMAGE" sleep 600 >/dev/null
$PODMAN run -d --name bench-stats -m 64m $PODMAN_RUN_FLAGS "$IMAGE" sleep 600 >/dev/null

median() { jq -r ".results[$1].median * 1000 | floor" "$2"; }
compare() { # title podman-command berth-command
  local json="$WORK/$RANDOM.json"
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" -n podman "$2" -n berth "$3" >/dev/null
  local p b
  p=$(median 0 "$json"); b=$(median 1 "$json")
  printf '%-36s podman median %5d ms   berth median %5d ms   ratio berth/podman %s\n' "$1" "$p" "$b" "$(echo "scale=2; $b / $p" | bc)"
}

echo "## $RUNS runs each, one running container (-m 64m)"
compare 'stats --no-stream CTR' "$PODMAN stats --no-stream bench-stats" "$BERTH stats --no-stream bench-stats"
compare 'stats --no-stream --format json' "$PODMAN stats --no-stream --format json" "$BERTH stats --no-stream --format json"
compare 'version' "$PODMAN version" "$BERTH version"
compare 'info --format json' "$PODMAN info --format json" "$BERTH info --format json"
