#!/usr/bin/env bash
# berth network against podman network with its CNI backend (the one berth
# follows: a conflist per network, the same Debian CNI plugins), same busybox
# image from one loopback registry, one hyperfine run per comparison:
#   1. `network create X && network rm X`: choose a name, subnet and bridge
#      against what exists, write the conflist; read it back, remove it;
#   2. `run --rm --network X IMAGE true` on a network made once: a network
#      namespace attached by CNI ADD (bridge, host-local, portmap, firewall),
#      the container, CNI DEL; with `--network none` beside it, so the
#      network's own share is visible.
# podman runs with runc (crun refuses this hybrid host), --network-backend cni
# and a private --network-config-dir, so its networks stay in the temp dir;
# berth's are in /etc/berth/cni/net.d and are removed on exit. Root only.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
. bench/lib/engines.sh
tag="bn$$"
engines_setup network --runtime runc --cgroup-manager cgroupfs
mkdir -p "$WORK/podman-cni"
PODMAN="$PODMAN --network-backend cni --network-config-dir $WORK/podman-cni"
network_cleanup() {
  $BERTH network rm -f -t 0 "$tag-b" "$tag-loop-b" >/dev/null 2>&1 || true
  $PODMAN network rm -f "$tag-p" "$tag-loop-p" >/dev/null 2>&1 || true
  engines_cleanup
}
trap network_cleanup EXIT

compare() {
  local title=$1 json=$2; shift 2
  echo "## $title, $RUNS runs"
  hyperfine -N --runs "$RUNS" --warmup 2 --export-json "$json" "$@" >/dev/null
  report "$json"
}

compare 'network create && network rm' "$WORK/create-rm.json" \
  -n 'podman network create && rm' "sh -c '$PODMAN network create $tag-loop-p >/dev/null && $PODMAN network rm $tag-loop-p >/dev/null'" \
  -n 'berth network create && rm' "sh -c '$BERTH network create $tag-loop-b >/dev/null && $BERTH network rm $tag-loop-b >/dev/null'"

$BERTH network create "$tag-b" >/dev/null
$PODMAN network create "$tag-p" >/dev/null
compare 'run --rm --network X IMAGE true (and --network none)' "$WORK/run.json" \
  -n 'podman run --rm --network X true' "$PODMAN run --rm --network $tag-p $PODMAN_RUN_FLAGS $IMAGE true" \
  -n 'berth run --rm --network X true' "$BERTH run --rm --network $tag-b $IMAGE true" \
  -n 'podman run --rm --network none true' "$PODMAN run --rm --network none $PODMAN_RUN_FLAGS $IMAGE true" \
  -n 'berth run --rm --network none true' "$BERTH run --rm --network none $IMAGE true"
echo "(ratios are to the first line: podman on a CNI network)"
# Nothing of the runs stayed attached: the bridges have no interface left.
for br in $($BERTH network inspect -f '{{.NetworkInterface}}' "$tag-b") $($PODMAN network inspect -f '{{.NetworkInterface}}' "$tag-p"); do
  if [ -d "/sys/class/net/$br/brif" ] && [ -n "$(ls "/sys/class/net/$br/brif")" ]; then echo "bridge $br still has $(ls "/sys/class/net/$br/brif")" >&2; exit 1; fi
done
