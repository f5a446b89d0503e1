#!/usr/bin/env bash
# berth-runtime under the engines that drive runc: `podman run --rm IMAGE true`
# with --runtime berth-runtime, runc (and crun when it runs on this host), the
# same flags, one hyperfine run; then `ctr run --rm IMAGE ID true` through a
# private containerd's runc v2 shim with --runc-binary berth-runtime vs runc.
# Medians and ratios to runc. Everything lives under one temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${RUNS:-10}
WORK=$(mktemp -d /tmp/berth-bench-engines.XXXXXX)
chmod 755 "$WORK"
BERTH=$REPO/tools/runtime/bin/berth-runtime.js
[ -f "$REPO/tools/runtime/dist/cli.js" ] || (cd "$REPO/tools/runtime" && npm run build >/dev/null)
CTRD_PID=
PODMAN=(podman --root "$WORK/podman/root" --runroot "$WORK/podman/runroot" --tmpdir "$WORK/podman/tmp"
  --storage-driver overlay --cgroup-manager cgroupfs --events-backend file)
CGROUP_PARENT=/berth-bench-engines-$$
cleanup() {
  "${PODMAN[@]}" rm -a -f >/dev/null 2>&1 || true
  "${PODMAN[@]}" system reset --force >/dev/null 2>&1 || true
  if [ -n "$CTRD_PID" ]; then
    for id in $(ctr --address "$WORK/ctrd.sock" containers ls -q 2>/dev/null); do
      ctr --address "$WORK/ctrd.sock" task delete -f "$id" >/dev/null 2>&1 || true
      ctr --address "$WORK/ctrd.sock" containers delete "$id" >/dev/null 2>&1 || true
    done
    kill "$CTRD_PID" 2>/dev/null || true
    wait "$CTRD_PID" 2>/dev/null || true
  fi
  for d in $(find /sys/fs/cgroup/*/"${CGROUP_PARENT#/}" -depth -type d 2>/dev/null); do rmdir "$d" 2>/dev/null || true; done
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The image: busybox-static and its applets, imported into podman's private store.
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/proc" "$WORK/rootfs/sys" "$WORK/rootfs/dev" "$WORK/rootfs/etc" "$WORK/rootfs/tmp"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
for a in $(/bin/busybox --list | grep -vx busybox); do ln -s busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
IMAGE=localhost/berth-bench/busybox:latest
"${PODMAN[@]}" import --quiet "$WORK/rootfs.tar" "$IMAGE" >/dev/null
"${PODMAN[@]}" save --quiet --format oci-archive -o "$WORK/busybox-oci.tar" "$IMAGE"

median() { jq -r ".results[$1].median * 1000 | floor" "$2"; }
report() { # title json names...
  local title=$1 json=$2; shift 2
  local names=("$@") base
  for i in "${!names[@]}"; do [ "${names[$i]}" = runc ] && base=$(median "$i" "$json"); done
  for i in "${!names[@]}"; do
    local m; m=$(median "$i" "$json")
    printf '%-34s %-14s median %5d ms   ratio to runc %s\n' "$title" "${names[$i]}" "$m" "$(echo "scale=2; $m / $base" | bc)"
  done
}

# podman: same flags for every runtime (root lacks CAP_SYS_RESOURCE here, hence the ulimits).
FLAGS="--rm --network none --cgroup-parent $CGROUP_PARENT --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
names=(berth-runtime runc) runtimes=("$BERTH" "$(command -v runc)")
if "${PODMAN[@]}" --runtime "$(command -v crun)" run $FLAGS "$IMAGE" true >/dev/null 2>"$WORK/crun.err"; then
  names+=(crun); runtimes+=("$(command -v crun)")
else
  echo "crun: left out, it fails on this host: $(tail -1 "$WORK/crun.err")"
fi
args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${PODMAN[*]} --runtime ${runtimes[$i]} run $FLAGS $IMAGE true"); done
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$WORK/podman.json" "${args[@]}" >/dev/null
report "podman run --rm IMAGE true" "$WORK/podman.json" "${names[@]}"

# containerd: a private daemon (no CRI, no network plugins), the image imported from an oci-archive.
cat > "$WORK/containerd.toml" <<TOML
version = 2
root = "$WORK/containerd/root"
state = "$WORK/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$WORK/ctrd.sock"
[ttrpc]
  address = "$WORK/ctrd.sock.ttrpc"
[metrics]
  address = ""
TOML
containerd --config "$WORK/containerd.toml" >"$WORK/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do ctr --address "$WORK/ctrd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr --address "$WORK/ctrd.sock" images import "$WORK/busybox-oci.tar" >/dev/null
# Each run needs a fresh container id: a tiny script per runtime takes one from a counter.
for i in 0 1; do
  bin=$([ $i = 0 ] && echo "$BERTH" || command -v runc)
  cat > "$WORK/ctr-run-$i.sh" <<SH
#!/bin/sh
n=\$(( \$(cat $WORK/ctr-seq-$i 2>/dev/null || echo 0) + 1 )); echo \$n > $WORK/ctr-seq-$i
exec ctr --address $WORK/ctrd.sock run --runc-binary $bin --runc-root $WORK/runtime-$i --cgroup $CGROUP_PARENT/c$i-\$n --rm $IMAGE c$i-\$n true
SH
  chmod +x "$WORK/ctr-run-$i.sh"
done
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$WORK/ctr.json" -n berth-runtime "$WORK/ctr-run-0.sh" -n runc "$WORK/ctr-run-1.sh" >/dev/null
report "ctr run --rm IMAGE ID true" "$WORK/ctr.json" berth-runtime runc
