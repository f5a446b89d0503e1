#!/usr/bin/env bash
# berth (the engine front) against podman, same image from the same loopback
# registry, same network setting (none), one hyperfine run per comparison:
#   1. `run --rm IMAGE true` with the image present (berth with berth-runtime
#      and with runc; podman with runc, since crun refuses this hybrid host);
#   2. the per-container monitor's resident memory (both use conmon);
#   3. `ps -a` with 50 containers.
# Medians and ratios are printed. Everything lives under one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
N=${N:-50}
. bench/lib/engines.sh
engines_setup front --runtime runc --cgroup-manager cgroupfs

echo "## run --rm IMAGE true (image present, --network none), $RUNS runs"
json="$WORK/run.json"
hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" \
  -n 'podman run --rm (runc)' "$PODMAN run --rm --network none $PODMAN_RUN_FLAGS $IMAGE true" \
  -n 'berth run --rm (berth-runtime)' "$BERTH run --rm --network none $IMAGE true" \
  -n 'berth run --rm (runc)' "$BERTH --runtime runc run --rm --network none $IMAGE true" >/dev/null
report "$json"

echo "## the per-container monitor, idle (sleep 60), VmRSS"
bid=$($BERTH --runtime runc run -d --network none "$IMAGE" sleep 60)
pid=$($PODMAN run -d --network none $PODMAN_RUN_FLAGS "$IMAGE" sleep 60)
sleep 1
bmon=$($BERTH inspect "$bid" | jq -r '.[0].State.ConmonPid')
pmon=$($PODMAN inspect "$pid" --format '{{.State.ConmonPid}}')
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
printf '%-34s %6s kB\n' "berth's monitor (conmon, pid $bmon)" "$(rss "$bmon")"
printf '%-34s %6s kB\n' "podman's conmon (pid $pmon)" "$(rss "$pmon")"
echo "(berth leaves no other process per container: no daemon, no shim)"
$BERTH rm -f "$bid" >/dev/null
$PODMAN rm -f -t 0 "$pid" >/dev/null

echo "## ps -a with $N created containers, $RUNS runs"
for i in $(seq 1 "$N"); do
  $BERTH create --network none --name "b$i" "$IMAGE" true >/dev/null
  $PODMAN create --network none $PODMAN_RUN_FLAGS --name "p$i" "$IMAGE" true >/dev/null
done
json="$WORK/ps.json"
hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" \
  -n 'podman ps -a' "$PODMAN ps -a" \
  -n 'berth ps -a' "$BERTH ps -a" >/dev/null
report "$json"
