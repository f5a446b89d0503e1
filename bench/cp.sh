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
REPO=$PWD
RUNS=${RUNS:-10}
WORK=$(mktemp -d /tmp/berth-bench-cp.XXXXXX)
registry_pid=""
BERTH="node $REPO/tools/berth/bin/berth.js --root $WORK/root --runroot $WORK/run"
PODMAN="podman --root $WORK/podman-root --runroot $WORK/podman-run --runtime runc --cgroup-manager cgroupfs --events-backend none"
PODMAN_RUN_FLAGS="--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
cleanup() {
  $BERTH rm -f -a >/dev/null 2>&1 || true
  $PODMAN rm -f -t 0 -a >/dev/null 2>&1 || true
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
$BERTH run -d --network none --name bcp "$IMAGE" sleep 600 >/dev/null
$PODMAN run -d $PODMAN_RUN_FLAGS --name pcp "$IMAGE" sleep 600 >/dev/null
head -c 4096 /dev/urandom > "$WORK/file"
script='mkdir -p /data && i=0; while [ $i -lt 200 ]; do echo "file $i" > /data/f$i; i=$((i+1)); done'
$BERTH exec bcp sh -c "$script"
$PODMAN exec pcp sh -c "$script"
mkdir -p "$WORK/out-b" "$WORK/out-p"

median() { jq -r ".results[$1].median * 1000 | floor" "$2"; }
compare() {
  local title=$1 json=$2; shift 2
  echo "## $title, $RUNS runs"
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" "$@" >/dev/null
  local base m
  base=$(median 0 "$json")
  for i in 0 1; do
    m=$(median "$i" "$json")
    printf '%-20s median %5d ms   ratio to podman %s\n' "$(jq -r ".results[$i].command" "$json" | cut -c1-20)" "$m" "$(echo "scale=2; $m / $base" | bc)"
  done
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
