#!/usr/bin/env bash
# berth export against podman export: the same busybox image from the same
# loopback registry, one exited container each (podman with runc, since crun
# refuses this hybrid host) that wrote 500 small files and a 32 MiB file on
# top of the image. One hyperfine run per comparison:
#   1. export CTR > /dev/null (the tar on stdout);
#   2. export -o FILE CTR (written whole, fsynced, renamed).
# Medians and the ratio berth/podman are printed. Everything lives under one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
. bench/lib/engines.sh
engines_setup export --runtime runc --cgroup-manager cgroupfs
script='mkdir -p /data && i=0; while [ $i -lt 500 ]; do echo "file $i" > /data/f$i; i=$((i+1)); done; head -c 33554432 /dev/urandom > /data/big'
$BERTH run --network none --name bexp "$IMAGE" sh -c "$script" >/dev/null
$PODMAN run --network none $PODMAN_RUN_FLAGS --name pexp "$IMAGE" sh -c "$script" >/dev/null

compare() {
  local title=$1 json=$2; shift 2
  echo "## $title, $RUNS runs"
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" "$@" >/dev/null
  report "$json"
}

compare 'export CTR > /dev/null' "$WORK/stdout.json" \
  -n 'podman export > /dev/null' "sh -c '$PODMAN export pexp >/dev/null'" \
  -n 'berth export > /dev/null' "sh -c '$BERTH export bexp >/dev/null'"
compare 'export -o FILE CTR' "$WORK/file.json" \
  --prepare "rm -f $WORK/p.tar" --prepare "rm -f $WORK/b.tar" \
  -n 'podman export -o FILE' "$PODMAN export -o $WORK/p.tar pexp" \
  -n 'berth export -o FILE' "$BERTH export -o $WORK/b.tar bexp"
echo "(tar: podman $(stat -c %s "$WORK/p.tar") bytes, berth $(stat -c %s "$WORK/b.tar") bytes)"
