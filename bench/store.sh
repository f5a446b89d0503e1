#!/usr/bin/env bash
# berth-store unpack against `umoci unpack` and the floor of `tar -xzf` of the
# same layers in sequence, in one hyperfine run, into tmpfs. The image (three
# real trees from this machine: /usr/include, node_modules, /usr/lib/gcc;
# >= 100 MB compressed, ~400 MB uncompressed) is generated once and
# cached in bench/results/store-image.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cache="$here/results/store-image"
runs="${BENCH_RUNS:-5}"
if [ ! -f "$cache/index.json" ]; then
  rm -rf "$cache"
  mkdir -p "$cache"
  node "$here/store-gen.mjs" "$cache" /usr/include "$repo/node_modules" /usr/lib/gcc >&2 || { rm -rf "$cache"; exit 1; }
fi
(cd "$repo/tools/layer-store" && npm run build >/dev/null)

work="/dev/shm/berth-bench-store"
[ -d /dev/shm ] || work="$(mktemp -d)"
rm -rf "$work"
mkdir -p "$work/root"
ln -s "$cache" "$work/root/images"
trap 'rm -rf "$work"' EXIT

layers=$(node -e '
  const fs = require("fs"); const l = process.argv[1];
  const idx = JSON.parse(fs.readFileSync(l + "/index.json"));
  const m = JSON.parse(fs.readFileSync(l + "/blobs/sha256/" + idx.manifests[0].digest.slice(7)));
  console.log(m.layers.map((x) => l + "/blobs/sha256/" + x.digest.slice(7)).join(" "));' "$cache")
tarcmd=""
i=0
for l in $layers; do tarcmd+="mkdir -p $work/tar/$i && tar -xzf $l -C $work/tar/$i && "; i=$((i+1)); done
tarcmd+="true"
echo "image: $(du -sh --apparent-size "$cache" | cut -f1) compressed, $i layers; target $work" >&2

hyperfine --runs "$runs" --warmup 1 --export-json "$here/results/store.json" \
  -n berth-store --prepare "rm -rf $work/root/snapshots; sync" "node $repo/tools/layer-store/bin/berth-store.js --root $work/root unpack bench:latest" \
  -n umoci --prepare "rm -rf $work/bundle; sync" "umoci unpack --image $cache:bench:latest $work/bundle" \
  -n tar-xzf --prepare "rm -rf $work/tar; sync" "$tarcmd"

node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1])).results;
  const med = Object.fromEntries(r.map((x) => [x.command, x.median]));
  for (const [k, v] of Object.entries(med)) console.log(`${k.padEnd(12)} median ${v.toFixed(3)} s`);
  console.log(`berth-store / umoci   = ${(med["berth-store"] / med.umoci).toFixed(2)}x (goal < 1)`);
  console.log(`berth-store / tar-xzf = ${(med["berth-store"] / med["tar-xzf"]).toFixed(2)}x (goal <= 1.3)`);
' "$here/results/store.json"
