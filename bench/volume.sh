#!/usr/bin/env bash
# Named volumes: berth against podman, same image from the same loopback
# registry, --network none, one hyperfine run per comparison:
#   1. `run --rm -v vol:/data IMAGE true` with the volume already there
#      (berth with berth-runtime and with runc; podman with runc, since crun
#      refuses this hybrid host);
#   2. `run --rm -v /data IMAGE true`: an anonymous volume made and removed
#      with the container each time;
#   3. `volume create` + `volume rm` of a named volume.
# Medians and ratios are printed. Everything lives under one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
. bench/lib/engines.sh
engines_setup volume --runtime runc --cgroup-manager cgroupfs
$BERTH volume create bvol >/dev/null
$PODMAN volume create pvol >/dev/null
# First use done outside the timing (copy-up and owner), as a volume in use would have had it.
$BERTH run --rm --network none -v bvol:/data "$IMAGE" true
$PODMAN run --rm --network none $PODMAN_RUN_FLAGS -v pvol:/data "$IMAGE" true

compare() {
  local title=$1 json=$2; shift 2
  echo "## $title, $RUNS runs"
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" "$@" >/dev/null
  report "$json"
}

# The rows without -v are each engine's own baseline: the difference is what the volume costs.
compare 'run --rm -v vol:/data IMAGE true (the volume exists)' "$WORK/named.json" \
  -n 'podman run --rm -v vol (runc)' "$PODMAN run --rm --network none $PODMAN_RUN_FLAGS -v pvol:/data $IMAGE true" \
  -n 'berth run --rm -v vol (berth-runtime)' "$BERTH run --rm --network none -v bvol:/data $IMAGE true" \
  -n 'berth run --rm -v vol (runc)' "$BERTH --runtime runc run --rm --network none -v bvol:/data $IMAGE true" \
  -n 'podman run --rm, no volume (runc)' "$PODMAN run --rm --network none $PODMAN_RUN_FLAGS $IMAGE true" \
  -n 'berth run --rm, no volume (runc)' "$BERTH --runtime runc run --rm --network none $IMAGE true"
compare 'run --rm -v /data IMAGE true (an anonymous volume made and removed)' "$WORK/anon.json" \
  -n 'podman run --rm -v /data (runc)' "$PODMAN run --rm --network none $PODMAN_RUN_FLAGS -v /data $IMAGE true" \
  -n 'berth run --rm -v /data (berth-runtime)' "$BERTH run --rm --network none -v /data $IMAGE true"
compare 'volume create + volume rm' "$WORK/create.json" \
  -n 'podman volume create+rm' "sh -c '$PODMAN volume create tmpvol >/dev/null && $PODMAN volume rm tmpvol >/dev/null'" \
  -n 'berth volume create+rm' "sh -c '$BERTH volume create tmpvol >/dev/null && $BERTH volume rm tmpvol >/dev/null'"
echo "## left behind: berth $($BERTH volume ls -q | wc -l) volume(s), podman $($PODMAN volume ls -q | wc -l) (1 each expected)"
