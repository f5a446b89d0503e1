#!/usr/bin/env bash
# `pause X && unpause X` of berth against podman's: the same busybox image
# from one loopback registry, one running container each (podman with runc,
# since crun refuses this hybrid host; berth with its default berth-runtime,
# and berth with runc, so the runtime's share is visible), one hyperfine run.
# Each pair freezes and thaws the container's cgroup through the OCI
# runtime's pause/resume. Medians and ratios to podman are printed.
# Everything lives under one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
. bench/lib/engines.sh
engines_setup pause --runtime runc --cgroup-manager cgroupfs
$BERTH run -d --network none --name bpause "$IMAGE" sleep 600 >/dev/null
$BERTH --runtime runc run -d --network none --name bpause-runc "$IMAGE" sleep 600 >/dev/null
$PODMAN run -d --network none $PODMAN_RUN_FLAGS --name ppause "$IMAGE" sleep 600 >/dev/null

json="$WORK/pause.json"
echo "## pause && unpause of a running container, $RUNS runs"
hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" \
  -n 'podman pause && unpause' "sh -c '$PODMAN pause ppause >/dev/null && $PODMAN unpause ppause >/dev/null'" \
  -n 'berth pause && unpause' "sh -c '$BERTH pause bpause >/dev/null && $BERTH unpause bpause >/dev/null'" \
  -n 'berth --runtime runc pause && unpause' "sh -c '$BERTH pause bpause-runc >/dev/null && $BERTH unpause bpause-runc >/dev/null'" \
  >/dev/null
report "$json"
# Every container is running again, not left frozen by the loop.
for s in "$($BERTH inspect -f '{{.State.Status}}' bpause)" "$($BERTH inspect -f '{{.State.Status}}' bpause-runc)" "$($PODMAN inspect -f '{{.State.Status}}' ppause)"; do
  [ "$s" = running ] || { echo "a container was left $s" >&2; exit 1; }
done
