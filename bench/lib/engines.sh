# Sourced by the benches that time the berth front against podman on the same
# image (bench/berth.sh, cp.sh, stats.sh, save-load.sh).
#
# engines_setup NAME [PODMAN_OPTION...]: makes $WORK, the command lines
# $BERTH and $PODMAN on private stores inside it (berth run by path, as a user
# types it; podman with the options given, e.g. --runtime runc: crun refuses
# this hybrid host), a loopback registry holding the busybox test image
# ($IMAGE) pulled into both, and an EXIT trap that removes all of it.
# $PODMAN_RUN_FLAGS: podman asks for more open files and processes than the
# caller's hard limits here (see bench/runtime.sh), so its run/create take these.
engines_setup() {
  local name=$1
  shift
  REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  WORK=$(mktemp -d "/tmp/berth-bench-$name.XXXXXX")
  registry_pid=""
  BERTH="$REPO/tools/berth/bin/berth.js --root $WORK/root --runroot $WORK/run"
  PODMAN="podman --root $WORK/podman-root --runroot $WORK/podman-run --events-backend none $*"
  PODMAN_RUN_FLAGS="--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
  trap engines_cleanup EXIT
  . "$REPO/test/lib/registry.sh"
  start_registry "$WORK"
  push_busybox "$WORK"
  IMAGE=$busybox_image
  $BERTH pull -q --tls-verify=false "$IMAGE" >/dev/null
  $PODMAN pull --quiet --tls-verify=false "$IMAGE" >/dev/null
}

engines_cleanup() {
  $BERTH rm -f -a >/dev/null 2>&1 || true
  $PODMAN rm -f -t 0 -a >/dev/null 2>&1 || true
  $PODMAN system reset -f >/dev/null 2>&1 || true
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  grep -o "$WORK[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
  rm -rf "$WORK"
}

# median INDEX JSON: the median of hyperfine result INDEX, in whole ms.
median() { jq -r ".results[$1].median * 1000 | floor" "$2"; }

# report JSON: each command of one hyperfine run with its median and its ratio
# to the first one (the peer, podman, goes first).
report() {
  local json=$1 base m i
  base=$(median 0 "$json")
  for i in $(seq 0 $(($(jq '.results | length' "$json") - 1))); do
    m=$(median "$i" "$json")
    printf '%-40s median %5d ms   ratio to podman %s\n' "$(jq -r ".results[$i].command" "$json" | cut -c1-40)" "$m" "$(echo "scale=2; $m / $base" | bc)"
  done
}
