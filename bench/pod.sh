#!/usr/bin/env bash
# Pod create + rm time: berth-pod against podman pod, in the same run.
#
# Like for like (network set up): `berth-pod create -p` builds the namespaces
# and runs CNI ADD (bridge, host-local, portmap, firewall) at create time;
# podman only does that when the pod's infra container starts, so its side is
# `podman pod create -p … && podman pod start && podman pod rm -f`.
# Without network: `berth-pod create --network none` (namespaces, no CNI)
# against `podman pod create --network none` + `podman pod rm` (records and
# an infra container that never starts).
#
# podman here needs raised-but-allowed ulimits (root lacks CAP_SYS_RESOURCE)
# and runc (crun 1.8 refuses this cgroup hybrid host): a private
# containers.conf says both. Needs root, hyperfine, podman, the CNI plugins.
# Build first: make build (or cd tools/pod-infra && npm run build).
# Raw numbers go to bench/results/pod.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../tools/pod-infra/bin/berth-pod.js"
work="$(mktemp -d /tmp/berth-bench-pod.XXXXXX)"
port_a=$((20000 + RANDOM % 5000))
port_b=$((port_a + 1))
tag="bench$$"
export CONTAINERS_CONF="$work/containers.conf"
cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
cleanup() {
  node "$bin" rm --run-root "$work/run" --force "$tag-b" >/dev/null 2>&1 || true
  node "$bin" rm --run-root "$work/run" --force "$tag-n" >/dev/null 2>&1 || true
  podman pod rm -f "$tag-p" >/dev/null 2>&1 || true
  podman pod rm -f "$tag-q" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

berth="$bin"   # by path, as a user or a Makefile runs it (the launcher)
results="$here/results"
mkdir -p "$results"
hyperfine --warmup 2 --runs "${BENCH_RUNS:-10}" --export-json "$results/pod.json" \
  -n 'berth-pod create -p + rm' "$berth create --run-root $work/run --name $tag-b -p 127.0.0.1:$port_a:80 >/dev/null && $berth rm --run-root $work/run $tag-b >/dev/null" \
  -n 'podman pod create -p + start + rm' "podman pod create --name $tag-p -p 127.0.0.1:$port_b:80 >/dev/null && podman pod start $tag-p >/dev/null && podman pod rm -f $tag-p >/dev/null" \
  -n 'berth-pod create --network none + rm' "$berth create --run-root $work/run --name $tag-n --network none >/dev/null && $berth rm --run-root $work/run $tag-n >/dev/null" \
  -n 'podman pod create --network none + rm' "podman pod create --name $tag-q --network none >/dev/null && podman pod rm $tag-q >/dev/null"

node -e '
const r = require(process.argv[1]).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median * 1000]));
for (const [k, v] of Object.entries(med)) console.log(`${k.padEnd(40)} median ${v.toFixed(1)} ms`);
console.log(`ratio berth-pod / podman, with network:  ${(med["berth-pod create -p + rm"] / med["podman pod create -p + start + rm"]).toFixed(2)}`);
console.log(`ratio berth-pod / podman, network none:  ${(med["berth-pod create --network none + rm"] / med["podman pod create --network none + rm"]).toFixed(2)}`);
' "$results/pod.json"
