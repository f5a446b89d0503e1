#!/usr/bin/env bash
# Benchmark: pull a 105 MiB, five-layer image from a loopback registry into an
# empty store. berth-pull against `skopeo copy docker://… oci:…` in the same
# hyperfine run, plus the floor: every blob fetched in parallel by curl into
# files (no hashing, no fsync). Prints medians and ratios; the raw numbers go
# to bench/results/pull.json. `make bench` runs this after `make build`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
results="$repo/bench/results"
cache="$results/pull-image"          # the generated image, kept between runs
mkdir -p "$results"
work=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

for tool in hyperfine docker-registry skopeo curl node; do
  command -v "$tool" >/dev/null || { echo "bench/pull.sh: $tool is missing (make deps)" >&2; exit 1; }
done
[ -f "$repo/tools/puller/dist/cli.js" ] || { echo "bench/pull.sh: berth-pull is not built (make build)" >&2; exit 1; }

# 1. The image, generated once (random bytes: ~30 s on two cores).
if [ ! -f "$cache/index.json" ]; then
  echo "generating the benchmark image in $cache" >&2
  (cd "$repo" && npx esbuild bench/pull-image.ts --bundle --platform=node --format=esm \
    --outfile="$work/pull-image.mjs" --external:koffi --log-level=warning \
    --banner:js="import{createRequire as __r}from'node:module';const require=__r(import.meta.url);")
  rm -rf "$cache.tmp" && node "$work/pull-image.mjs" "$cache.tmp" >&2 && mv "$cache.tmp" "$cache"
fi

# 2. A registry on a free loopback port, holding the image.
. "$repo/test/lib/registry.sh"
start_registry "$work"
image="127.0.0.1:$port/bench/image:latest"
skopeo copy --quiet --dest-tls-verify=false "oci:$cache:bench:latest" "docker://$image"

# 3. The curl floor: the blob URLs, fetched all at once.
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$port/v2/bench/image/manifests/latest")
blobs=$(printf '%s' "$manifest" | node -e 'const m=JSON.parse(require("fs").readFileSync(0,"utf8"));for(const d of [m.config,...m.layers])console.log(d.digest)')
{
  echo '#!/usr/bin/env bash'
  echo "mkdir -p $work/out/curl"
  i=0
  for d in $blobs; do
    echo "curl -fsS -o $work/out/curl/$i http://127.0.0.1:$port/v2/bench/image/blobs/$d &"
    i=$((i + 1))
  done
  echo 'wait'
} >"$work/curl-all.sh"
total=$(printf '%s' "$manifest" | node -e 'const m=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log((m.layers.reduce((n,l)=>n+l.size,0)/1048576).toFixed(1))')
echo "image: $image, $(echo "$blobs" | wc -w) blobs, $total MiB of layers" >&2

# 4. hyperfine: every run starts from an empty store.
hyperfine --warmup 1 --runs "${BENCH_RUNS:-7}" --export-json "$results/pull.json" \
  --prepare "rm -rf $work/out && mkdir -p $work/out && sync" \
  -n berth-pull "node $repo/tools/puller/bin/berth-pull.js --tls-verify=false --root $work/out/berth $image" \
  -n skopeo "skopeo copy --quiet --src-tls-verify=false docker://$image oci:$work/out/skopeo:latest" \
  -n curl-floor "bash $work/curl-all.sh"

# 5. Medians and ratios.
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median]));
for (const x of r) console.log(`${x.command.padEnd(11)} median ${(x.median * 1000).toFixed(0)} ms  (min ${(x.min * 1000).toFixed(0)}, max ${(x.max * 1000).toFixed(0)})`);
console.log(`berth-pull / skopeo     = ${(med["berth-pull"] / med.skopeo).toFixed(2)}  (goal < 1)`);
console.log(`berth-pull / curl-floor = ${(med["berth-pull"] / med["curl-floor"]).toFixed(2)}  (goal <= 2)`);
' "$results/pull.json"
