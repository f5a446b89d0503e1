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

echo "## save -o FILE IMAGE (docker-archive), $RUNS runs"
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$WORK/save.json" \
  --prepare "rm -f $WORK/p.tar $WORK/b.tar" \
  -n 'podman save' "$PODMAN save -q -o $WORK/p.tar $IMAGE" \
  -n 'berth save' "$BERTH save -q -o $WORK/b.tar $IMAGE" >/dev/null
report "$WORK/save.json"

echo "## save --format oci-archive -o FILE IMAGE, $RUNS runs"
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$WORK/save-oci.json" \
  --prepare "rm -f $WORK/po.tar $WORK/bo.tar" \
  -n 'podman save --format oci-archive' "$PODMAN save -q --format oci-archive -o $WORK/po.tar $IMAGE" \
  -n 'berth save --format oci-archive' "$BERTH save -q --format oci-archive -o $WORK/bo.tar $IMAGE" >/dev/null
report "$WORK/save-oci.json"

echo "## load -i FILE (podman's docker-archive of the image), $RUNS runs"
$PODMAN save -q -o "$WORK/in.tar" "$IMAGE"
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$WORK/load.json" \
  -n 'podman load' "$PODMAN load -q -i $WORK/in.tar" \
  -n 'berth load' "$BERTH load -q -i $WORK/in.tar" >/dev/null
report "$WORK/load.json"
echo "(archive: $(stat -c %s "$WORK/in.tar") bytes)"
