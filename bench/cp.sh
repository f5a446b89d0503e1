#!/usr/bin/env bash
# berth cp against podman cp, same image from the same loopback registry,
# one running container each (podman with runc, since crun refuses this
# hybrid host), one hyperfine run per comparison:
#   1. a 4 KiB host file into the running container;
#   2. a directory of 200 small files out of it to the host;
#   3. the same directory as a tar on stdout.
# Medians and ratios are printed. Everything lives under one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
. bench/lib/engines.sh
engines_setup cp --runtime runc --cgroup-manager cgroupfs
$BERTH run -d --network none --name bcp "$IMAGE" sleep 600 >/dev/null
$PODMAN run -d --network none $PODMAN_RUN_FLAGS --name pcp "$IMAGE" sleep 600 >/dev/null
head -c 4096 /dev/urandom > "$WORK/file"
script='mkdir -p /data && i=0; while [ $i -lt 200 ]; do echo "file $i" > /data/f$i; i=$((i+1)); done'
$BERTH exec bcp sh -c "$script"
$PODMAN exec pcp sh -c "$script"
mkdir -p "$WORK/out-b" "$WORK/out-p"

compare() {
  local title=$1 json=$2; shift 2
  echo "## $title, $RUNS runs"
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" "$@" >/dev/null
  report "$json"
}

compare 'a 4 KiB file into a running container' "$WORK/in.json" \
  -n 'podman cp in' "$PODMAN cp $WORK/file pcp:/tmp/file" \
  -n 'berth cp in' "$BERTH cp $WORK/file bcp:/tmp/file"
compare 'a directory of 200 files out' "$WORK/out.json" \
  -n 'podman cp out' "$PODMAN cp pcp:/data/. $WORK/out-p" \
  -n 'berth cp out' "$BERTH cp bcp:/data/. $WORK/out-b"
compare 'the directory as a tar on stdout' "$WORK/tar.json" \
  -n 'podman cp tar' "sh -c '$PODMAN cp pcp:/data - >/dev/null'" \
  -n 'berth cp tar' "sh -c '$BERTH cp bcp:/data - >/dev/null'"
