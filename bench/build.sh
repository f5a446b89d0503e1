#!/usr/bin/env bash
# Benchmark: berth-build against `podman build` (Debian's podman 4.3 with
# buildah inside), and berth-build push against `skopeo copy`.
#  1. build: the same Containerfile (FROM busybox in a loopback registry; two
#     RUNs, a COPY), cold (--no-cache, base image already local) and warm
#     (every step cached), in one hyperfine run.
#  2. push: a ~68 MB image of four random-data layers into an empty registry
#     (storage wiped before each run), berth-build push against skopeo copy
#     from the same OCI image layout.
# Prints medians and ratios; raw numbers go to bench/results/build*.json.
# Needs root (overlayfs, namespaces). `make bench` runs this after `make build`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
results="$repo/bench/results"
mkdir -p "$results"
work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
registry_pid=""
podman_cmd="podman --root $work/podman --runroot $work/podman-run --storage-driver overlay --runtime runc"
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  $podman_cmd rmi -a -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in hyperfine docker-registry skopeo podman runc node; do
  command -v "$tool" >/dev/null || { echo "bench/build.sh: $tool is missing (make deps)" >&2; exit 1; }
done
for t in image-builder runtime; do
  [ -f "$repo/tools/$t/dist/cli.js" ] || { echo "bench/build.sh: tools/$t is not built (make build)" >&2; exit 1; }
done
berth_build="node $repo/tools/image-builder/bin/berth-build.js"

# A registry on a free loopback port, with the busybox base image.
. "$repo/test/lib/registry.sh"
start_registry "$work"
push_busybox "$work"
base=$busybox_image

# 1. build
ctx="$work/ctx"
mkdir -p "$ctx/site"
for i in $(seq 1 50); do echo "<p>page $i</p>" >"$ctx/site/page$i.html"; done
cat >"$ctx/Containerfile" <<CF
FROM $base
ARG GIT_HASH=bench
RUN mkdir -p /srv/data && for i in 1 2 3 4 5; do echo \$i > /srv/data/\$i; done && rm /bin/vi
COPY site/ /www/
RUN sed -i "s/page/rev \$GIT_HASH page/" /www/page1.html && echo ok > /srv/ready
ENV PORT=8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
CF
# Both tools get the base image once, outside the timing.
$berth_build --root "$work/berth" --tls-verify=false -q -t bench:1 "$ctx" >/dev/null 2>&1
$podman_cmd build -q --tls-verify=false -t bench:1 "$ctx" >/dev/null 2>&1

hyperfine --warmup 1 --runs "${BENCH_RUNS:-5}" --export-json "$results/build.json" \
  -n berth-cold "$berth_build --root $work/berth -q --no-cache -t bench:1 $ctx" \
  -n podman-cold "$podman_cmd build -q --no-cache -t bench:1 $ctx" \
  -n berth-warm "$berth_build --root $work/berth -q -t bench:1 $ctx" \
  -n podman-warm "$podman_cmd build -q -t bench:1 $ctx" >&2

# 2. push: a ~68 MB image (four 17 MB layers of random bytes) built FROM scratch.
pctx="$work/push-ctx"
mkdir -p "$pctx"
printf 'FROM scratch\n' >"$pctx/Containerfile"
for i in 1 2 3 4; do
  head -c 17000000 /dev/urandom >"$pctx/blob$i"
  printf 'COPY blob%s /blob%s\n' "$i" "$i" >>"$pctx/Containerfile"
done
$berth_build --root "$work/berth" -q -t bench/big:1 "$pctx" >/dev/null 2>&1
size=$(du -sm "$work/berth/images/blobs" | cut -f1)
echo "push image: 4 layers of 17 MB random data (store holds ${size} MiB)" >&2
dest="127.0.0.1:$port/bench/big:1"
hyperfine --warmup 1 --runs "${BENCH_RUNS:-5}" --export-json "$results/build-push.json" \
  --prepare "rm -rf $work/registry/docker $work/berth/builder/blob-locations.json; sync" \
  -n berth-push "$berth_build push --root $work/berth --tls-verify=false bench/big:1 $dest" \
  -n skopeo-copy "skopeo copy --quiet --dest-tls-verify=false oci:$work/berth/images:localhost/bench/big:1 docker://$dest" >&2

node -e '
const fs = require("fs");
const report = (file) => {
  const r = JSON.parse(fs.readFileSync(file, "utf8")).results;
  for (const x of r) console.log(`${x.command.padEnd(12)} median ${(x.median * 1000).toFixed(0)} ms  (min ${(x.min * 1000).toFixed(0)}, max ${(x.max * 1000).toFixed(0)})`);
  return Object.fromEntries(r.map((x) => [x.command, x.median]));
};
const b = report(process.argv[1]);
console.log(`build cold: berth / podman = ${(b["berth-cold"] / b["podman-cold"]).toFixed(2)}`);
console.log(`build warm: berth / podman = ${(b["berth-warm"] / b["podman-warm"]).toFixed(2)}`);
const p = report(process.argv[2]);
console.log(`push 68 MB: berth / skopeo = ${(p["berth-push"] / p["skopeo-copy"]).toFixed(2)}`);
' "$results/build.json" "$results/build-push.json"
