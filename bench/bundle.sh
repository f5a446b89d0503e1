#!/usr/bin/env bash
# Bundle generation time for a busybox image: berth-bundle from a plain
# rootfs (--rootfs/--image-config) and from a rootfs document (overlay mount
# + image config read from an OCI layout), against the peers that write a
# config.json: `runc spec` (a fixed default spec, no image) and `umoci unpack`
# (image layout -> bundle, which also extracts the layer, so it is an upper
# bound, not a like-for-like peer). Needs root (overlay mount), hyperfine,
# busybox-static, runc, umoci. Build first: make build.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../tools/bundle-generator/bin/berth-bundle.js"
work="$(mktemp -d /tmp/berth-bench-bundle.XXXXXX)"
trap 'umount -R "$work/doc-bundle/rootfs" 2>/dev/null || true; rm -rf "$work"' EXIT

# A busybox rootfs and its image config.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
"$work/rootfs/bin/busybox" --install -s "$work/rootfs/bin"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$work/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$work/rootfs/etc/group"
config='{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]}}'
printf '%s' "$config" > "$work/config.json"

# An OCI layout holding just the config blob, and the rootfs document berth-store would print.
hex="$(sha256sum "$work/config.json" | cut -d' ' -f1)"
mkdir -p "$work/images/blobs/sha256" "$work/snap/upper" "$work/snap/work"
cp "$work/config.json" "$work/images/blobs/sha256/$hex"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/images/oci-layout"
size="$(stat -c %s "$work/config.json")"
cat > "$work/rootfs.json" <<JSON
{"kind":"rootfs","store":"$work/images","mounts":[{"type":"overlay","source":"overlay","options":["lowerdir=$work/rootfs","upperdir=$work/snap/upper","workdir=$work/snap/work"]}],"image":{"reference":"busybox:latest","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$hex","size":$size}}}
JSON

# An OCI image for umoci: the same rootfs as one layer.
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:busybox" >/dev/null
umoci unpack --image "$work/oci:busybox" "$work/u0" >/dev/null 2>&1
cp -a "$work/rootfs/." "$work/u0/rootfs/"
umoci repack --image "$work/oci:busybox" "$work/u0" >/dev/null 2>&1

hyperfine --warmup 3 --runs 30 --export-json "$work/result.json" \
  --prepare "rm -rf $work/dir-bundle" \
  -n 'berth-bundle --rootfs' "node $bin --rootfs $work/rootfs --image-config $work/config.json --bundle-dir $work/dir-bundle --name bench -- true" \
  --prepare "umount -R $work/doc-bundle/rootfs 2>/dev/null || true; rm -rf $work/doc-bundle" \
  -n 'berth-bundle ROOTFS_JSON' "node $bin --bundle-dir $work/doc-bundle --name bench $work/rootfs.json -- true" \
  --prepare "mkdir -p $work/runc-spec; rm -f $work/runc-spec/config.json" \
  -n 'runc spec' "runc spec --bundle $work/runc-spec" \
  --prepare "rm -rf $work/u1" \
  -n 'umoci unpack' "umoci unpack --image $work/oci:busybox $work/u1"

node -e '
const r = require(process.argv[1]).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median * 1000]));
for (const [k, v] of Object.entries(med)) console.log(`${k.padEnd(26)} median ${v.toFixed(1)} ms`);
const b = med["berth-bundle --rootfs"], d = med["berth-bundle ROOTFS_JSON"];
console.log(`ratio berth-bundle --rootfs / runc spec:    ${(b / med["runc spec"]).toFixed(2)}`);
console.log(`ratio berth-bundle ROOTFS_JSON / umoci unpack: ${(d / med["umoci unpack"]).toFixed(2)}`);
' "$work/result.json"
