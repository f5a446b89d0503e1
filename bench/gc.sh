#!/usr/bin/env bash
# berth-gc benchmark: a store of N small images sharing layers (N = 100 .. 1000;
# each image has a base layer shared with a tenth of the others and one layer of
# its own). Timed with hyperfine, the store restored before each run:
#   full   berth-gc --filter label=batch=even: untag half of the images, then sweep
#   sweep  berth-gc on a store whose index already lost that half (sweep only)
#   umoci  umoci gc --layout on the same store (the peer's mark and sweep)
# Prints medians, the berth/umoci ratio of the sweep, and how the full GC grows
# with N. Run from anywhere; needs the built berth-gc (make build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
gc="$repo/tools/image-gc/bin/berth-gc.js"
sizes="${GC_BENCH_SIZES:-100 250 500 1000}"
runs="${GC_BENCH_RUNS:-5}"
[ -f "$repo/tools/image-gc/dist/cli.js" ] || (cd "$repo/tools/image-gc" && npm run build >/dev/null)
work="$(mktemp -d "${TMPDIR:-/tmp}/berth-gc-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The generator: test/gc/bulk.ts bundled into one script (fast: blob files and
# one index.json written directly, no per-blob fsync).
cat > "$work/gen.ts" <<TS
import { readFileSync, writeFileSync } from 'node:fs';
import { writeBulkStore } from '$repo/test/gc/bulk.ts';
const [dir, n] = process.argv.slice(2);
await writeBulkStore(dir + '/images', { count: Number(n) });
// The same store with the even half already untagged, for the sweep-only runs.
const index = JSON.parse(readFileSync(dir + '/images/index.json', 'utf8'));
index.manifests = index.manifests.filter((_: unknown, i: number) => i % 2 === 1);
writeFileSync(dir + '/untagged-index.json', JSON.stringify(index));
TS
(cd "$repo" && npx esbuild "$work/gen.ts" --bundle --platform=node --format=esm --outfile="$work/gen.mjs" --log-level=warning \
  --banner:js="import{createRequire as __r}from'node:module';const require=__r(import.meta.url);")

median() { jq -r '.results[0].median * 1000 | floor' "$1"; }
# CPU time (user + system, mean): less disturbed than wall time on a busy machine.
cpu() { jq -r '(.results[0].user + .results[0].system) * 1000 | floor' "$1"; }
# hyperfine's own output (and its outlier warnings on a busy machine) goes to a log, shown on failure.
bench() { hyperfine --runs "$runs" --warmup 1 "$@" >>"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log" >&2; exit 1; }; }
printf '%-7s %-7s %9s %9s %9s %7s %11s %11s\n' images blobs full_ms sweep_ms umoci_ms ratio sweep_cpu umoci_cpu
for n in $sizes; do
  t="$work/t$n"
  mkdir -p "$t"
  node "$work/gen.mjs" "$t" "$n"
  cp -a "$t" "$work/s$n"
  cp "$t/untagged-index.json" "$work/s$n/images/index.json"
  blobs=$(ls "$t/images/blobs/sha256" | wc -l)
  bench --export-json "$work/full$n.json" --prepare "rm -rf $work/r && cp -a $t $work/r" \
    "node $gc --root $work/r --filter label=batch=even --grace 0s"
  bench --export-json "$work/sweep$n.json" --prepare "rm -rf $work/r && cp -a $work/s$n $work/r" \
    "node $gc --root $work/r --grace 0s"
  bench --export-json "$work/umoci$n.json" --prepare "rm -rf $work/r && cp -a $work/s$n $work/r" \
    "umoci gc --layout $work/r/images"
  # Both sweeps must leave the same blobs: check once, outside the timing.
  rm -rf "$work/r" && cp -a "$work/s$n" "$work/r" && node "$gc" --root "$work/r" --grace 0s >/dev/null 2>&1
  ours=$(ls "$work/r/images/blobs/sha256" | wc -l)
  rm -rf "$work/r" && cp -a "$work/s$n" "$work/r" && umoci gc --layout "$work/r/images"
  theirs=$(ls "$work/r/images/blobs/sha256" | wc -l)
  [ "$ours" = "$theirs" ] || { echo "berth-gc left $ours blobs, umoci gc $theirs" >&2; exit 1; }
  f=$(median "$work/full$n.json"); s=$(median "$work/sweep$n.json"); u=$(median "$work/umoci$n.json")
  printf '%-7s %-7s %9s %9s %9s %7s %11s %11s\n' "$n" "$blobs" "$f" "$s" "$u" "$(awk -v a="$s" -v b="$u" 'BEGIN { printf "%.2f", a / b }')" "$(cpu "$work/sweep$n.json")" "$(cpu "$work/umoci$n.json")"
  rm -rf "$t" "$work/s$n" "$work/r"
done
echo "(wall-time medians of $runs runs in ms; ratio = berth-gc sweep / umoci gc; full = untag half by label, then sweep;"
echo " *_cpu = mean user+system ms; berth-gc includes ~100 ms of Node start-up)"
