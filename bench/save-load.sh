#!/usr/bin/env bash
# berth save / load against podman save / load: the same busybox image from the
# same loopback registry, each tool with its own store under one temp dir
# (podman with the vfs driver). One hyperfine run per comparison; medians and
# the ratio berth/podman are printed.
#   1. save -o FILE IMAGE (docker-archive, the default)
#   2. save --format oci-archive -o FILE IMAGE
#   3. load -i FILE of the same docker-archive (written by podman)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
. bench/lib/engines.sh
engines_setup save --storage-driver vfs

# save_compare FORMAT: `save -o FILE IMAGE` in that archive format, podman against berth.
save_compare() {
  echo "## save --format $1 -o FILE IMAGE, $RUNS runs"
  hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$WORK/save-$1.json" \
    --prepare "rm -f $WORK/p-$1.tar $WORK/b-$1.tar" \
    -n "podman save --format $1" "$PODMAN save -q --format $1 -o $WORK/p-$1.tar $IMAGE" \
    -n "berth save --format $1" "$BERTH save -q --format $1 -o $WORK/b-$1.tar $IMAGE" >/dev/null
  report "$WORK/save-$1.json"
}
save_compare docker-archive   # the default of both
save_compare oci-archive

echo "## load -i FILE (podman's docker-archive of the image), $RUNS runs"
$PODMAN save -q -o "$WORK/in.tar" "$IMAGE"
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$WORK/load.json" \
  -n 'podman load' "$PODMAN load -q -i $WORK/in.tar" \
  -n 'berth load' "$BERTH load -q -i $WORK/in.tar" >/dev/null
report "$WORK/load.json"
echo "(archive: $(stat -c %s "$WORK/in.tar") bytes)"
